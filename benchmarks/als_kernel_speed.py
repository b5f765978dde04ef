"""Speed of the ALS row solve (a script, not part of the pytest runs).

    python benchmarks/als_kernel_speed.py [rounds] [k,k,...] [threads,...] [simd path]

Times ``mfcore._kernels.rowsolve.solve_rows`` for one half-iteration of biased ALS
(solve every user against fixed item factors) and the other (every item
against fixed user factors) on ratings of MovieLens-1M shape: 6040 users,
3706 items, 900,000 ratings drawn by ``datasets.synthetic`` (power-law users
and items, like the real set), random factors of the trained scale, float32
factors, ALS-WR penalties. Each cell is the median of ``rounds`` runs
(default 3) in seconds, at each k (default 32, 64, 128) and thread count
(default 1, 2), on the widest SIMD path this CPU supports unless one is named.

``cpu`` is the process CPU time of the same half-iterations (all threads
together). On a shared machine a run's wall time stretches while its CPU time
hardly does: with one thread it is near the uncontended time, and with two, a
CPU time near the one-thread one means the work split without overhead.
``max err`` is the largest difference, over 50 sampled rows, from
``numpy.linalg.solve`` of the same normal equations in float64 (the answer is
float32, so about 1e-7 relative is the floor): speed beside accuracy.
"""
import statistics
import sys
import time

import numpy as np

import mfcore
from mfcore import datasets
from mfcore._kernels import rowsolve as als
from mfcore._kernels import simd

SHAPE = {"n_users": 6040, "n_items": 3706, "n_ratings": 900_000, "min_per_user": 20}
REG, REG_BIAS, BASE, COUNT_WEIGHT = 0.05, 0.05, 0.0, 1.0  # ALS-WR


def csr(rows, cols, values, n_rows):
    """Rows grouped in CSR order: (indptr int64, cols int32, values)."""
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, cols[order].astype(np.int32), values[order]


def reference_error(indptr, cols, ratings, other, other_bias, mu, factors, bias, rows):
    """Largest |x - x_numpy| over ``rows`` (the same objective, solved in float64)."""
    worst = 0.0
    k = other.shape[1]
    for u in rows:
        lo, hi = indptr[u], indptr[u + 1]
        a = np.hstack([other[cols[lo:hi]].astype(np.float64), np.ones((hi - lo, 1))])
        y = ratings[lo:hi].astype(np.float64) - mu - other_bias[cols[lo:hi]]
        lam = BASE + COUNT_WEIGHT * (hi - lo)
        penalty = np.r_[np.full(k, REG * lam), REG_BIAS * lam]
        x = np.linalg.solve(a.T @ a + np.diag(penalty), a.T @ y)
        worst = max(worst, np.abs(x[:k] - factors[u]).max(), abs(x[k] - bias[u]))
    return worst


def main(rounds=3, ks=(32, 64, 128), threads=(1, 2), path=None):
    frame = datasets.synthetic(seed=0, **SHAPE)
    users = frame["user"].to_numpy() - 1
    items = frame["item"].to_numpy() - 1
    ratings = frame["rating"].to_numpy().astype(np.float32)
    n_users, n_items = SHAPE["n_users"], SHAPE["n_items"]
    mu = float(ratings.mean())
    by_user = csr(users, items, ratings, n_users)
    by_item = csr(items, users, ratings, n_items)
    path = path or simd.simd_supported()[-1]
    mfcore.simd.select(path)
    print(f"{len(ratings)} ratings, {n_users} users x {n_items} items; float32 factors; "
          f"ALS-WR penalties; SIMD path {path}; median of {rounds} runs")
    print(f"{'k':>4} {'threads':>7} {'users (s)':>10} {'items (s)':>10} {'iteration (s)':>14} "
          f"{'cpu users':>10} {'cpu items':>10} {'max err':>9}")
    rng = np.random.default_rng(1)
    for k in ks:
        P = rng.normal(0, 0.1, (n_users, k)).astype(np.float32)
        Q = rng.normal(0, 0.1, (n_items, k)).astype(np.float32)
        bu = rng.normal(0, 0.3, n_users).astype(np.float32)
        bi = rng.normal(0, 0.3, n_items).astype(np.float32)
        for n_threads in threads:
            cells, cpu = [], []
            for (indptr, cols, vals), out, out_bias, other, other_bias in (
                    (by_user, P, bu, Q, bi), (by_item, Q, bi, P, bu)):
                times, cpu_times = [], []
                for _ in range(rounds):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    als.solve_rows(indptr, cols, vals, other, other_bias, mu, REG, REG_BIAS,
                                   BASE, COUNT_WEIGHT, True, out, out_bias, n_threads)
                    times.append(time.perf_counter() - start)
                    cpu_times.append(time.process_time() - start_cpu)
                cells.append(statistics.median(times))
                cpu.append(statistics.median(cpu_times))
            # after the item half: the items were solved against the users' final factors
            sample = rng.choice(n_items, 50, replace=False)
            err = reference_error(*by_item, P, bu, mu, Q, bi, sample)
            print(f"{k:>4} {n_threads:>7} {cells[0]:>10.3f} {cells[1]:>10.3f} "
                  f"{sum(cells):>14.3f} {cpu[0]:>10.3f} {cpu[1]:>10.3f} {err:>9.1e}", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 3,
         tuple(int(v) for v in args[1].split(",")) if len(args) > 1 else (32, 64, 128),
         tuple(int(v) for v in args[2].split(",")) if len(args) > 2 else (1, 2),
         args[3] if len(args) > 3 else None)
