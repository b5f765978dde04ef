"""mfcore.BayesianMF against myFM: the same Gibbs-sampled model, one run, the same splits.

The same model on both sides: r = mu + b_u + b_i + p_u . q_i + noise, Normal-Gamma priors
per side (myFM: one-hot user and item columns with ``group_shapes=[n_users, n_items]``),
200 sweeps of which the last 150 are kept, the posterior predictive mean clipped to [1, 5].
Data: ML-100K u1.base -> u1.test, and ML-1M with the notebook split of the data README
(train_test_split(test_size=0.2, random_state=888), then the rest halved with
random_state=0; scored on that test half). k = 10 and 32; mfcore on 1 and 2 threads
(myFM's Gibbs sampler is single-threaded), seeds 0, 1, 2 (``--seeds``). myFM gets every
id of both parts as a column (test-only ids get prior draws); mfcore trains on the
training ids and predicts a test-only id from what is known (the fallback).

Seconds are wall time from the raw id arrays (myFM: its sparse matrix) to the test
predictions: the same work on both sides, fit and posterior mean predictions. mfcore's
predictive standard deviations (predict with return_std, which myFM does not compute) are
timed apart, in the column "std s", and give the coverage of the 90% intervals. "vs
myFM" is the median over the seeds of myFM's seconds over this row's, seed by seed.
CPU seconds (all threads) are printed beside them: on a shared machine the wall time of
a 2-thread run depends on what else runs, and there OMP_WAIT_POLICY=passive keeps OpenMP's
spinning at the sweep's barriers from eating the cores (with the default policy a 2-thread
sweep took 8x longer than a 1-thread one at a load average of 5 on 2 cores).

Run (the environment with myfm; mfcore built in place):
    OMP_WAIT_POLICY=passive MFCORE_DATA=/path/to/data PYTHONPATH=. \
        python benchmarks/bayes_compare.py [--sets ml100k,ml1m]
        [--ranks 10,32] [--sweeps 200] [--burn-in 50] [--skip-myfm]
"""
import argparse
import importlib.metadata
import io
import os
import sys
import time
import types
import warnings

import numpy as np

import mfcore

Z90 = 1.6448536269514722


def load(name, root):
    """(train, test) (user, item, rating) arrays: 'ml100k' (u1), 'ml1m' (notebook split)."""
    if name == "ml100k":
        return tuple(np.loadtxt(os.path.join(root, "ml-100k", f"u1.{part}"), dtype=np.int64)[:, :3]
                     for part in ("base", "test"))
    import pandas as pd
    from sklearn.model_selection import train_test_split
    with open(os.path.join(root, "ml-1m", "ratings.dat")) as fh:
        text = fh.read().replace("::", "\t")
    d = pd.read_csv(io.StringIO(text), sep="\t", header=None).to_numpy(np.int64)
    x_train, x_rest, y_train, y_rest = train_test_split(d[:, :2], d[:, 2], test_size=0.2,
                                                        random_state=888)
    _, x_test, _, y_test = train_test_split(x_rest, y_rest, test_size=0.5, random_state=0)
    return np.c_[x_train, y_train], np.c_[x_test, y_test]


def import_myfm():
    """myfm, or None. myfm 0.5 imports pkg_resources, which new setuptools no longer ships:
    stand in for its one use (the version lookup) without touching the environment."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        shim = types.ModuleType("pkg_resources")
        shim.DistributionNotFound = importlib.metadata.PackageNotFoundError
        shim.get_distribution = lambda name: types.SimpleNamespace(
            version=importlib.metadata.version(name))
        sys.modules["pkg_resources"] = shim
    try:
        import myfm
    except ImportError as exc:
        print(f"myFM not run: {exc}")
        return None
    return myfm


def one_hot(u, i, n_users, n_items):
    import scipy.sparse as sps
    n = len(u)
    cols = np.c_[u, i + n_users].ravel()
    return sps.csr_matrix((np.ones(2 * n), (np.repeat(np.arange(n), 2), cols)),
                          shape=(n, n_users + n_items))


def rows(train, test):
    """Column indices for the ids of both parts (myFM's one-hot catalogue)."""
    uid = np.unique(np.concatenate([train[:, 0], test[:, 0]]))
    iid = np.unique(np.concatenate([train[:, 1], test[:, 1]]))
    return (np.searchsorted(uid, train[:, 0]), np.searchsorted(iid, train[:, 1]),
            np.searchsorted(uid, test[:, 0]), np.searchsorted(iid, test[:, 1]),
            len(uid), len(iid))


def run_myfm(myfm, data, k, sweeps, burn_in, seed):
    tu, ti, qu, qi, n_users, n_items, r, _ = data
    x_train, x_test = one_hot(tu, ti, n_users, n_items), one_hot(qu, qi, n_users, n_items)
    wall, cpu = time.perf_counter(), time.process_time()
    fm = myfm.MyFMRegressor(rank=k, random_seed=seed).fit(
        x_train, r, n_iter=sweeps, n_kept_samples=sweeps - burn_in,
        group_shapes=[n_users, n_items], callback=lambda *args: (False, None))
    pred = fm.predict(x_test)
    return np.clip(pred, 1, 5), time.perf_counter() - wall, time.process_time() - cpu


def run_mfcore(train, test, k, sweeps, burn_in, n_threads, seed, std=True):
    """(clipped predictions, raw predictions, predictive std, seconds and CPU seconds of
    fit + predict, seconds of the predictive std); ``std=False``: no predictive std (None,
    and nan seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    model = mfcore.BayesianMF(k=k, n_samples=sweeps - burn_in, burn_in=burn_in, seed=seed,
                              n_threads=n_threads)
    model.fit(train[:, 0], train[:, 1], train[:, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
        raw = model.predict(test[:, 0], test[:, 1], clip=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if not std:
            return np.clip(raw, *model.rating_range_), raw, None, wall, cpu, np.nan
        start = time.perf_counter()
        same, std = model.predict(test[:, 0], test[:, 1], clip=False, return_std=True)
        std_wall = time.perf_counter() - start
    assert np.array_equal(same, raw)
    pred = np.clip(raw, *model.rating_range_)
    return pred, raw, std, wall, cpu, std_wall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="ml100k,ml1m")
    ap.add_argument("--ranks", default="10,32")
    ap.add_argument("--sweeps", type=int, default=200)
    ap.add_argument("--burn-in", type=int, default=50)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--skip-myfm", action="store_true")
    args = ap.parse_args(argv)
    root = os.environ.get("MFCORE_DATA", "/work/shared/data")
    myfm = None if args.skip_myfm else import_myfm()
    seeds = [int(x) for x in args.seeds.split(",")]
    print(f"load average {os.getloadavg()}; {args.sweeps} sweeps, {args.burn_in} burn-in; "
          f"medians over seeds {seeds}", flush=True)
    header = (f"{'data':7} {'k':>3} {'run':18} {'RMSE':>7} {'cover90':>7} {'seconds':>8} "
              f"{'cpu s':>7} {'std s':>6} {'vs myFM':>8}")
    table = []
    for name in args.sets.split(","):
        train, test = load(name, root)
        tu, ti, qu, qi, n_users, n_items = rows(train, test)
        truth = test[:, 2].astype(np.float64)
        data = (tu, ti, qu, qi, n_users, n_items, train[:, 2].astype(np.float64), truth)
        print(f"{name}: {len(train)} training and {len(test)} test ratings", flush=True)
        for k in (int(x) for x in args.ranks.split(",")):
            results = {}
            for seed in seeds:
                if myfm is not None:
                    pred, wall, cpu = run_myfm(myfm, data, k, args.sweeps, args.burn_in, seed)
                    results.setdefault("myFM (1 thread)", []).append(
                        (np.sqrt(np.mean((pred - truth) ** 2)), np.nan, wall, cpu, np.nan))
                for t in (1, 2):
                    pred, raw, std, wall, cpu, std_wall = run_mfcore(
                        train, test, k, args.sweeps, args.burn_in, t, seed)
                    cover = float(np.mean(np.abs(truth - raw) <= Z90 * std))
                    results.setdefault(f"mfcore {t} thread{'s' * (t > 1)}", []).append(
                        (np.sqrt(np.mean((pred - truth) ** 2)), cover, wall, cpu, std_wall))
                print(f"  {name} k={k} seed {seed}: " + ", ".join(
                    f"{label} {vals[-1][0]:.4f} in {vals[-1][2]:.1f}s"
                    for label, vals in results.items()), flush=True)
            base = [r[2] for r in results["myFM (1 thread)"]] if myfm else None
            for label, vals in results.items():
                rmse, cover, wall, cpu, std_wall = (float(np.median(col)) for col in zip(*vals))
                speed = f"{np.median([b / v[2] for b, v in zip(base, vals)]):.1f}x" if base else ""
                table.append(f"{name:7} {k:3d} {label:18} {rmse:7.4f} {cover:7.3f} {wall:8.2f} "
                             f"{cpu:7.2f} {std_wall:6.2f} {speed:>8}")
    print(f"\nload average {os.getloadavg()}")
    print(header)
    print("\n".join(table))


if __name__ == "__main__":
    main()
