"""Implicit feedback in the Bayesian model: plain BayesianMF, BayesianMF(implicit=True)
(SVD++ plus its flipped item side) and myFM's same feature set through relation blocks,
one run, the same splits, medians over seeds.

The same feature set on both sides: r = mu + b_u + b_i + (p_u + |N(u)|^-1/2 sum_{j in
N(u)} y_j) . (q_i + |N(i)|^-1/2 sum_{v in N(i)} z_v) + noise, N(u) and N(i) from the
training ratings only. myFM expresses it with two relation blocks (its documented
SVD++-flipped model): a user block of [user one-hot, the user's rated items scaled by
|N(u)|^-1/2] and an item block of [item one-hot, the item's raters scaled likewise],
``group_shapes=[n_users, n_items, n_items, n_users]``. As a factorization machine it also
has the within-block interactions (p_u . ybar_u, y_j . y_j') and linear weights of the
implicit columns: terms constant for a user (or an item), i.e. extra biases; mfcore's
model has none of them.

Rows: ML-100K u1 (and u1..u5 with ``--folds``: the mean over folds of each seed's RMSE,
then the median over seeds) and ML-1M with the notebook split of the data README
(validation and test RMSE, beside mfcore's SGD defaults). All fits: k (default 10), 200
sweeps of which the last 150 are kept, predictions clipped to the training range. Speed:
milliseconds per sweep (the fit's wall time / sweeps; myFM single-threaded) and the
ratio of implicit to plain mfcore at the same k and thread count, measured in this run.

Run (the environment with myfm; mfcore built in place):
    OMP_WAIT_POLICY=passive MFCORE_DATA=/path/to/data PYTHONPATH=. \\
        python benchmarks/bayes_implicit_compare.py [--sets ml100k,ml1m] [--folds 1,2,3,4,5]
        [--k 10] [--seeds 0,1,2] [--threads 1,2] [--myfm-seeds 0,1,2] [--skip-myfm]
"""
import argparse
import io
import os
import time
import warnings

import numpy as np

import mfcore

from bayes_compare import import_myfm, rows


def load_fold(root, fold):
    return tuple(np.loadtxt(os.path.join(root, "ml-100k", f"u{fold}.{part}"),
                            dtype=np.int64)[:, :3] for part in ("base", "test"))


def load_ml1m(root):
    """(train, validation, test) of the notebook split (data README)."""
    import pandas as pd
    from sklearn.model_selection import train_test_split
    with open(os.path.join(root, "ml-1m", "ratings.dat")) as fh:
        text = fh.read().replace("::", "\t")
    d = pd.read_csv(io.StringIO(text), sep="\t", header=None).to_numpy(np.int64)
    x_train, x_rest, y_train, y_rest = train_test_split(d[:, :2], d[:, 2], test_size=0.2,
                                                        random_state=888)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5,
                                                    random_state=0)
    return np.c_[x_train, y_train], np.c_[x_val, y_val], np.c_[x_test, y_test]


def rmse(pred, truth):
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def run_mfcore(train, tests, k, sweeps, burn_in, seed, n_threads, implicit):
    """Test RMSEs (one per set in ``tests``) and ms per sweep of one BayesianMF fit."""
    model = mfcore.BayesianMF(k=k, n_samples=sweeps - burn_in, burn_in=burn_in, seed=seed,
                              n_threads=n_threads, implicit=implicit)
    start = time.perf_counter()
    model.fit(train[:, 0], train[:, 1], train[:, 2])
    ms = 1000 * (time.perf_counter() - start) / sweeps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
        return [rmse(model.predict(t[:, 0], t[:, 1]), t[:, 2]) for t in tests], ms


def run_sgd(train, tests, seed, n_threads):
    model = mfcore.Model(seed=seed, n_threads=n_threads)
    start = time.perf_counter()
    model.fit(train[:, 0], train[:, 1], train[:, 2])
    seconds = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
        return [rmse(model.predict(t[:, 0], t[:, 1]), t[:, 2]) for t in tests], seconds


def relation_blocks(myfm, u, i, n_users, n_items, N_user, N_item):
    """myFM's SVD++-flipped features of the pairs (u, i): a user block and an item block."""
    import scipy.sparse as sps
    eye_u, eye_i = sps.identity(n_users, format="csr"), sps.identity(n_items, format="csr")
    user_rows = sps.hstack([eye_u, N_user]).tocsr()   # [one-hot user | N(u) scaled]
    item_rows = sps.hstack([eye_i, N_item]).tocsr()   # [one-hot item | N(i) scaled]
    return [myfm.RelationBlock(u.astype(np.int64), user_rows),
            myfm.RelationBlock(i.astype(np.int64), item_rows)]


def run_myfm(myfm, train, tests, k, sweeps, burn_in, seed):
    """Test RMSEs and ms per sweep of myFM's SVD++-flipped model (relation blocks)."""
    import scipy.sparse as sps
    everything = np.concatenate([train] + list(tests))
    tu, ti, _, _, n_users, n_items = rows(train, everything)
    uid = np.unique(everything[:, 0])
    iid = np.unique(everything[:, 1])
    start = time.perf_counter()
    A = sps.csr_matrix((np.ones(len(tu)), (tu, ti)), shape=(n_users, n_items))
    A.data[:] = 1.0  # repeated pairs count once
    A.sum_duplicates()
    A.data[:] = 1.0
    nu = np.asarray(A.sum(axis=1)).ravel()
    ni = np.asarray(A.sum(axis=0)).ravel()
    N_user = sps.diags(1 / np.sqrt(np.maximum(nu, 1))) @ A
    N_item = sps.diags(1 / np.sqrt(np.maximum(ni, 1))) @ A.T.tocsr()
    blocks = relation_blocks(myfm, tu, ti, n_users, n_items, N_user, N_item)
    fm = myfm.MyFMRegressor(rank=k, random_seed=seed)
    fm.fit(None, train[:, 2].astype(np.float64), X_rel=blocks, n_iter=sweeps,
           n_kept_samples=sweeps - burn_in, group_shapes=[n_users, n_items, n_items, n_users],
           callback=lambda *args: (False, None))
    ms = 1000 * (time.perf_counter() - start) / sweeps
    lo, hi = train[:, 2].min(), train[:, 2].max()
    out = []
    for t in tests:
        qu, qi = np.searchsorted(uid, t[:, 0]), np.searchsorted(iid, t[:, 1])
        pred = fm.predict(None, X_rel=relation_blocks(myfm, qu, qi, n_users, n_items, N_user,
                                                       N_item))
        out.append(rmse(np.clip(pred, lo, hi), t[:, 2]))
    return out, ms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="ml100k,ml1m")
    ap.add_argument("--folds", default="1,2,3,4,5")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--sweeps", type=int, default=200)
    ap.add_argument("--burn-in", type=int, default=50)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--myfm-seeds", default=None, help="default: --seeds")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--skip-myfm", action="store_true")
    args = ap.parse_args(argv)
    root = os.environ.get("MFCORE_DATA", "/work/shared/data")
    myfm = None if args.skip_myfm else import_myfm()
    seeds = [int(x) for x in args.seeds.split(",")]
    myfm_seeds = seeds if args.myfm_seeds is None else [int(x) for x in
                                                         args.myfm_seeds.split(",")]
    threads = [int(x) for x in args.threads.split(",")]
    k, sweeps, burn_in = args.k, args.sweeps, args.burn_in
    print(f"load average {os.getloadavg()}; k={k}, {sweeps} sweeps, {burn_in} burn-in; "
          f"seeds {seeds} (myFM {myfm_seeds}); OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}", flush=True)
    table = []

    def runs(train, tests, label):
        """{run name: [(rmses, ms) per seed]} for one split."""
        out = {}
        for seed in seeds:
            now = {}
            for t in threads:
                for implicit in (False, True):
                    name = f"mfcore {'implicit' if implicit else 'plain'} {t}t"
                    now[name] = run_mfcore(train, tests, k, sweeps, burn_in, seed, t, implicit)
            if myfm is not None and seed in myfm_seeds:
                now["myFM relation 1t"] = run_myfm(myfm, train, tests, k, sweeps, burn_in, seed)
            for name, result in now.items():
                out.setdefault(name, []).append(result)
            print(f"  {label} seed {seed}: " + ", ".join(
                f"{name} {' / '.join(f'{x:.4f}' for x in rm)} ({ms:.1f} ms/sweep)"
                for name, (rm, ms) in now.items()), flush=True)
        return out

    if "ml100k" in args.sets.split(","):
        folds = [int(x) for x in args.folds.split(",")]
        per_fold = {}
        for fold in folds:
            train, test = load_fold(root, fold)
            for name, vals in runs(train, [test], f"ml100k u{fold}").items():
                per_fold.setdefault(name, []).append(vals)
        for name, fold_vals in per_fold.items():
            # fold_vals[f][s] = ([rmse], ms); u1: the median over seeds; all folds: each
            # seed's mean over folds, then the median
            u1 = np.median([r[0][0] for r in fold_vals[0]])
            by_seed = np.array([[r[0][0] for r in fv] for fv in fold_vals])  # folds x seeds
            mean5 = np.median(by_seed.mean(axis=0)) if len(folds) > 1 else np.nan
            ms = np.median([r[1] for fv in fold_vals for r in fv])
            table.append(("ml100k", name, f"u{folds[0]} {u1:.4f}",
                          f"{len(folds)}-fold mean {mean5:.4f}", ms))
    if "ml1m" in args.sets.split(","):
        train, val, test = load_ml1m(root)
        out = runs(train, [val, test], "ml1m")
        for seed in seeds:
            for t in threads[-1:]:
                out.setdefault(f"SGD defaults {t}t", []).append(
                    run_sgd(train, [val, test], seed, t))
        for name, vals in out.items():
            v, te = (float(np.median([r[0][j] for r in vals])) for j in (0, 1))
            ms = float(np.median([r[1] for r in vals]))
            table.append(("ml1m", name, f"val {v:.4f}", f"test {te:.4f}",
                          ms if not name.startswith("SGD") else np.nan))
    print()
    print(f"{'data':7} {'run':22} {'':>12} {'':>20} {'ms/sweep':>9}")
    for data, name, a, b, ms in table:
        print(f"{data:7} {name:22} {a:>12} {b:>20} {ms:9.1f}")
    for data in ("ml100k", "ml1m"):
        ms = {name: m for d, name, _, _, m in table if d == data}
        for t in threads:
            plain, imp = ms.get(f"mfcore plain {t}t"), ms.get(f"mfcore implicit {t}t")
            if plain and imp:
                line = f"{data}: implicit / plain per sweep at {t} thread(s): {imp / plain:.2f}x"
                if "myFM relation 1t" in ms:
                    line += f"; myFM relation (1 thread) / implicit: {ms['myFM relation 1t'] / imp:.2f}x"
                print(line)


if __name__ == "__main__":
    main()
