"""ImplicitALS against implicit's ALS on MovieLens 1M: time per sweep, and recommending for
every user.

Both learn from who rated what (all 1,000,209 pairs of ML-1M, values ignored), with 64
factors, 15 iterations, on one thread (BLAS limited to one thread too); the two fits
alternate ``--rounds`` times and the medians are printed, as wall-clock and as this
process's CPU time (on a shared machine the CPU time is the steadier of the two). A
sweep's time is (fit of 15 iterations - fit of 0 iterations) / 15 for both libraries, so
that neither's set-up (implicit's CSR conversion, mfcore's id maps and layouts) counts. Then
each model recommends 10 unseen items to every user (mfcore's ``recommend`` with a list of
all users; implicit's batch ``recommend`` with the users' rows), medians of the rounds.

    MFCORE_DATA=/path/to/data python benchmarks/ials_speed.py [--rounds 3] [--threads 1]

Needs ``pip install implicit threadpoolctl scipy``.
"""
import argparse
import os
import statistics
import time

import numpy as np

import mfcore

K, ITERATIONS, N = 64, 15, 10


def timed(fn):
    """(result, wall seconds, CPU seconds of this process) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    frame = mfcore.datasets.movielens("ml-1m", download=False)
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy()
    user_ids, u = np.unique(users, return_inverse=True)
    _, i = np.unique(items, return_inverse=True)
    X = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)))
    print(f"ML-1M who-rated-what: {X.nnz:,} pairs, {X.shape[0]:,} users x {X.shape[1]:,} items; "
          f"k={K}, {ITERATIONS} iterations, {args.threads} thread(s), {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rows = {name: [] for name in ("implicit fit", "mfcore fit", "implicit set-up",
                                  "mfcore set-up", "implicit recommend", "mfcore recommend")}
    with threadpool_limits(1):
        for _ in range(args.rounds):
            peer = AlternatingLeastSquares(factors=K, iterations=ITERATIONS, random_state=0,
                                           num_threads=args.threads,
                                           calculate_training_loss=False)
            _, wall, cpu = timed(lambda: peer.fit(X, show_progress=False))
            rows["implicit fit"].append((wall, cpu))
            model = mfcore.ImplicitALS(k=K, iterations=ITERATIONS, n_threads=args.threads)
            _, wall, cpu = timed(lambda: model.fit(users, items))
            rows["mfcore fit"].append((wall, cpu))
            empty = AlternatingLeastSquares(factors=K, iterations=0, random_state=0,
                                            num_threads=args.threads,
                                            calculate_training_loss=False)
            _, wall, cpu = timed(lambda: empty.fit(X, show_progress=False))
            rows["implicit set-up"].append((wall, cpu))
            _, wall, cpu = timed(lambda: mfcore.ImplicitALS(k=K, iterations=0).fit(users, items))
            rows["mfcore set-up"].append((wall, cpu))
            _, wall, cpu = timed(lambda: peer.recommend(np.arange(X.shape[0]), X, N=N,
                                                        filter_already_liked_items=True))
            rows["implicit recommend"].append((wall, cpu))
            _, wall, cpu = timed(lambda: model.recommend(user_ids, n=N))
            rows["mfcore recommend"].append((wall, cpu))
    for lib in ("implicit", "mfcore"):  # one sweep: (fit - set-up) / iterations, per round
        rows[f"{lib} sweep"] = [((fw - sw) / ITERATIONS, (fc - sc) / ITERATIONS) for (fw, fc), (sw, sc)
                                in zip(rows[f"{lib} fit"], rows[f"{lib} set-up"])]
    print(f"{'':20s} {'wall s':>8s} {'CPU s':>8s}  (medians)")
    for name, values in rows.items():
        print(f"{name:20s} {statistics.median(w for w, _ in values):8.3f} "
              f"{statistics.median(c for _, c in values):8.3f}")
    for kind in ("sweep", "fit", "recommend"):
        pairs = list(zip(rows[f"implicit {kind}"], rows[f"mfcore {kind}"]))
        print(f"{kind}: mfcore is {statistics.median(p[0] / m[0] for p, m in pairs):.2f}x "
              f"implicit's speed (wall), {statistics.median(p[1] / m[1] for p, m in pairs):.2f}x "
              "(CPU)")


if __name__ == "__main__":
    main()
