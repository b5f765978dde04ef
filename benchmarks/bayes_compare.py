"""mfcore's Gibbs sampler (the prototype driver ``mfcore._bayes_proto``) against myFM.

The same model on both sides: r = mu + b_u + b_i + p_u . q_i + noise, Normal-Gamma priors
per side (myFM: one-hot user and item columns with ``group_shapes=[n_users, n_items]``),
200 sweeps of which the last 150 are kept, the posterior predictive mean clipped to [1, 5].
Data: ML-100K u1.base -> u1.test, and ML-1M with the notebook split of the data README
(train_test_split(test_size=0.2, random_state=888), then the rest halved with
random_state=0; scored on that test half). k = 10 and 32; mfcore on 1 and 2 threads
(myFM's Gibbs sampler is single-threaded), and as 4 chains x 50 sweeps on 2 threads (the
same 200 sweeps of work; burn-in 15 each and init_std 0.3, chosen on a validation tenth
of u1.base, see mfcore/_bayes_proto.py).

Seconds are wall time from the id arrays (or myFM's sparse matrix) to the test
predictions: layout, initialization, the sweeps and the prediction of the kept samples.
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

import numpy as np

from mfcore import _bayes_proto as proto


def load(name, root):
    """(train, test) (user, item, rating) arrays: 'ml100k' (u1), 'ml1m' (notebook split)."""
    if name == "ml100k":
        return proto.read_fold(os.path.join(root, "ml-100k"), 1)
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


def run_myfm(myfm, data, k, sweeps, burn_in):
    tu, ti, qu, qi, n_users, n_items, r, _ = data
    x_train, x_test = one_hot(tu, ti, n_users, n_items), one_hot(qu, qi, n_users, n_items)
    wall, cpu = time.perf_counter(), time.process_time()
    fm = myfm.MyFMRegressor(rank=k, random_seed=0).fit(
        x_train, r, n_iter=sweeps, n_kept_samples=sweeps - burn_in,
        group_shapes=[n_users, n_items], callback=lambda *args: (False, None))
    pred = fm.predict(x_test)
    return np.clip(pred, 1, 5), time.perf_counter() - wall, time.process_time() - cpu


def run_mfcore(data, k, sweeps, burn_in, n_threads, n_chains=1, init_std=0.1):
    tu, ti, qu, qi, n_users, n_items, r, _ = data
    wall, cpu = time.perf_counter(), time.process_time()
    out = proto.fit_predict(tu, ti, r, qu, qi, n_users, n_items, k=k, n_sweeps=sweeps,
                            burn_in=burn_in, n_chains=n_chains, seed=0, n_threads=n_threads,
                            init_std=init_std)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="ml100k,ml1m")
    ap.add_argument("--ranks", default="10,32")
    ap.add_argument("--sweeps", type=int, default=200)
    ap.add_argument("--burn-in", type=int, default=50)
    ap.add_argument("--skip-myfm", action="store_true")
    args = ap.parse_args(argv)
    root = os.environ.get("MFCORE_DATA", "/work/shared/data")
    myfm = None if args.skip_myfm else import_myfm()
    header = (f"{'data':7} {'k':>3} {'run':24} {'RMSE':>7} {'cover90':>7} {'seconds':>8} "
              f"{'cpu s':>7} {'vs myFM':>8}")
    rows = []
    for name in args.sets.split(","):
        train, test = load(name, root)
        tu, ti, qu, qi, n_users, n_items = proto.rows(train, test)
        truth = test[:, 2].astype(np.float64)
        data = (tu, ti, qu, qi, n_users, n_items, train[:, 2].astype(np.float64), truth)
        print(f"{name}: {len(train)} training and {len(test)} test ratings, "
              f"{n_users} users, {n_items} items", flush=True)
        for k in (int(x) for x in args.ranks.split(",")):
            base = None
            if myfm is not None:
                pred, wall, cpu = run_myfm(myfm, data, k, args.sweeps, args.burn_in)
                base = wall
                rmse = np.sqrt(np.mean((pred - truth) ** 2))
                rows.append(f"{name:7} {k:3d} {'myFM (1 thread)':24} {rmse:7.4f} {'':>7} "
                            f"{wall:8.2f} {cpu:7.2f} {'1.0x':>8}")
                print(rows[-1], flush=True)
            runs = [(f"mfcore {t} thread{'s' * (t > 1)}", args.sweeps, args.burn_in, t, 1, 0.1)
                    for t in (1, 2)]
            runs.append((f"mfcore 2 thr, 4x{args.sweeps // 4} swp", args.sweeps // 4,
                         15, 2, 4, 0.3))
            for label, sweeps, burn_in, n_threads, n_chains, init_std in runs:
                out, wall, cpu = run_mfcore(data, k, sweeps, burn_in, n_threads, n_chains,
                                            init_std)
                rmse = np.sqrt(np.mean((out["mean"] - truth) ** 2))
                cover = proto.coverage(out["raw_mean"], out["std"], truth)
                speed = f"{base / wall:.1f}x" if base else ""
                rows.append(f"{name:7} {k:3d} {label:24} {rmse:7.4f} {cover:7.3f} "
                            f"{wall:8.2f} {cpu:7.2f} {speed:>8}")
                print(rows[-1], flush=True)
    print()
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
