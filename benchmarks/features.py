"""Side features in BayesianMF: accuracy on MovieLens, cold start, and the cost of a sweep,
beside myFM with the same features (one run, the same splits).

Features (``mfcore.datasets.movielens_features``, encoded once by
``mfcore.features.FeatureEncoding``, so both libraries see the same numbers): ML-100K
``u.user`` (gender, occupation, first zip digit: categorical; age: numeric) and ``u.item``
(genres: multi-valued; release year: numeric); ML-1M ``users.dat`` (gender, age group,
occupation, first zip digit: categorical) and ``movies.dat`` (genres: multi-valued; year
from the title: numeric). myFM gets them as
relation blocks, a user block [user one-hot | user features] and an item block [item
one-hot | item features], one group per one-hot and per feature column (the groups
mfcore gives them); as a factorization machine it also has the interactions within a
block (user x own features), terms constant per user, i.e. extra biases.

Tables (``--tables``):
  accuracy   ML-100K u1 (``--folds`` for u2..u5) and ML-1M's notebook split (data
             README): RMSE without features, with user+item features, with implicit
             terms, both; on ML-100K (which has timestamps) also with the time terms
             (``fit(times=...)``, user_day), alone and with features and implicit
             terms, and that model with the ordered probit
             (``likelihood="ordered_probit"``: RMSE of the expected rating); myFM with
             the features (on ML-100K also with implicit terms and the date, as
             regression and as its ordered probit, ``MyFMOrderedProbit``).
  cold       hold out 20% of the users entirely (then 20% of the items) of ML-100K's
             u.data and of ML-1M's training part of the notebook split: RMSE on their
             ratings with features, the fallback without them (the model's prediction
             for an unknown id) and myFM with the features.
  speed      seconds per sweep on ML-1M's training part, 2 threads: without features,
             with features, and myFM (single-threaded) with features; equal k and sweeps.

Run (the environment with myfm; mfcore built in place):
    OMP_WAIT_POLICY=passive MFCORE_DATA=/path/to/data PYTHONPATH=.:benchmarks \\
        python benchmarks/features.py [--tables accuracy,cold,speed] [--sets ml100k,ml1m]
        [--k 10] [--sweeps 200] [--burn-in 50] [--seeds 0] [--threads 2] [--skip-myfm]
        [--rows TEXT,...]
"""
import argparse
import os
import time
import warnings

import numpy as np

import mfcore
from mfcore import datasets
from mfcore.features import FeatureEncoding

from _data import notebook_split
from bayes_compare import import_myfm

def load_u(root, fold):
    """(train, test) of ML-100K's fold: user, item, rating, timestamp columns."""
    return tuple(np.loadtxt(os.path.join(root, "ml-100k", f"u{fold}.{part}"),
                            dtype=np.int64)[:, :4] for part in ("base", "test"))


def rmse(pred, truth):
    return float(np.sqrt(np.mean((np.asarray(pred, float) - truth) ** 2)))


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
        return fn(*args, **kw)


# --- mfcore -----------------------------------------------------------------------------

def fit_mfcore(train, args, seed, features=None, implicit=False, times=False,
               likelihood="gaussian"):
    """BayesianMF on ``train``; ``times``: with the time terms (its fourth column)."""
    model = mfcore.BayesianMF(k=args.k, n_samples=args.sweeps - args.burn_in,
                              burn_in=args.burn_in, seed=seed, n_threads=args.threads,
                              implicit=implicit, likelihood=likelihood)
    start = time.perf_counter()
    model.fit(train[:, 0], train[:, 1], train[:, 2], times=train[:, 3] if times else None,
              **({} if features is None else dict(user_features=features[0],
                                                  item_features=features[1])))
    return model, time.perf_counter() - start


def predict_mfcore(model, test, features=None):
    extra = {} if features is None else dict(user_features=features[0],
                                             item_features=features[1])
    if model.time_encoding_ is not None:
        extra["times"] = test[:, 3]
    return quiet(model.predict, test[:, 0], test[:, 1], **extra)


# --- myFM with the same features --------------------------------------------------------

def side_block(ids, table, what):
    """[one-hot of ``ids`` | their encoded features] (scipy CSR) and the group sizes."""
    import scipy.sparse as sps
    enc = FeatureEncoding.fit(table, what)
    (rows, feats, vals), _ = quiet(enc.encode, table, ids, what)
    n = len(ids)
    onehot = sps.identity(n, format="csr")
    feat = sps.csr_matrix((vals, (rows, feats)), shape=(n, enc.n_features))
    return sps.hstack([onehot, feat], format="csr"), [n] + list(np.diff(enc.group_ptr))


def implicit_block(own, other, train, n_other):
    """Each ``own`` id's rated ``other`` rows in ``train`` (columns 0/1), scaled by
    |N|^-1/2: myFM's form of the SVD++ sums (CSR, one row per ``own`` id)."""
    import scipy.sparse as sps
    rows, cols = train[:, 0], train[:, 1]
    m = sps.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(own), n_other))
    norm = 1.0 / np.sqrt(np.maximum(np.asarray(m.sum(axis=1)).ravel(), 1.0))
    return sps.diags(norm) @ m


def fit_myfm(myfm, train, tests, tables, args, seed, implicit=False, times=False,
             probit=False):
    """myFM with relation blocks; ``implicit``: both SVD++ sums in the blocks (as mfcore's
    implicit=True), ``times``: the rating's date one-hot as the dense part (myFM's
    ML-100K extended example); ``probit``: its ordered probit (classes: the distinct
    training ratings), predicting the expected rating. Returns the predictions for each
    of ``tests`` and the fit's seconds."""
    import scipy.sparse as sps
    uid = np.unique(np.concatenate([train[:, 0]] + [t[:, 0] for t in tests]))
    iid = np.unique(np.concatenate([train[:, 1]] + [t[:, 1] for t in tests]))
    ublock, ugroups = side_block(uid, tables[0], "user_features")
    iblock, igroups = side_block(iid, tables[1], "item_features")
    if implicit:
        rows = np.c_[np.searchsorted(uid, train[:, 0]), np.searchsorted(iid, train[:, 1])]
        ublock = sps.hstack([ublock, implicit_block(uid, iid, rows, len(iid))], format="csr")
        iblock = sps.hstack([iblock, implicit_block(iid, uid, rows[:, ::-1], len(uid))],
                            format="csr")
        ugroups, igroups = ugroups + [len(iid)], igroups + [len(uid)]
    days = np.unique(train[:, 3] // 86400) if times else np.zeros(0, np.int64)

    def dense(part):
        if not times:
            return sps.csr_matrix((len(part), 0))
        at = np.searchsorted(days, part[:, 3] // 86400)
        hit = (at < len(days)) & (days[np.minimum(at, len(days) - 1)] == part[:, 3] // 86400)
        return sps.csr_matrix((np.ones(hit.sum()), (np.flatnonzero(hit), at[hit])),
                              shape=(len(part), len(days)))

    def blocks(part):
        return [myfm.RelationBlock(np.searchsorted(uid, part[:, 0]), ublock),
                myfm.RelationBlock(np.searchsorted(iid, part[:, 1]), iblock)]

    groups = ([len(days)] if times else []) + ugroups + igroups
    classes = np.unique(train[:, 2])
    start = time.perf_counter()
    kind, target = ((myfm.MyFMOrderedProbit, np.searchsorted(classes, train[:, 2])) if probit
                    else (myfm.MyFMRegressor, train[:, 2].astype(float)))
    fm = kind(rank=args.k, random_seed=seed).fit(
        dense(train), target, X_rel=blocks(train),
        n_iter=args.sweeps, n_kept_samples=args.sweeps - args.burn_in,
        group_shapes=groups, callback=lambda *a: (False, None))
    seconds = time.perf_counter() - start
    if probit:
        return [fm.predict_proba(dense(t), X_rel=blocks(t)) @ classes for t in tests], seconds
    lo, hi = train[:, 2].min(), train[:, 2].max()
    return [np.clip(fm.predict(dense(t), X_rel=blocks(t)), lo, hi) for t in tests], seconds


# --- the tables -------------------------------------------------------------------------

def accuracy(args, myfm, sets):
    print(f"\n## Accuracy (RMSE; k={args.k}, {args.sweeps} sweeps, "
          f"{args.sweeps - args.burn_in} kept; seeds {args.seeds}; {args.threads} threads)")
    print("| data | model | RMSE | fit s |\n|---|---|---|---|")
    for name, train, tests, tables in sets:
        variants = [("BayesianMF", None, False, False), ("+ features", tables, False, False),
                    ("+ implicit", None, True, False),
                    ("+ features + implicit", tables, True, False)]
        if train.shape[1] > 3:  # timestamps (ML-100K)
            variants += [("+ time (user_day)", None, False, True),
                         ("+ features + implicit + time", tables, True, True)]
        variants = [v + ("gaussian",) for v in variants]
        if train.shape[1] > 3:  # the ordinal output beside its regression twin
            variants.append(("+ features + implicit + time, ordered probit", tables, True,
                             True, "ordered_probit"))
        for label, feats, imp, times, likelihood in picked(variants, args):
            scores, secs = [], []
            for seed in args.seeds:
                model, s = fit_mfcore(train, args, seed, feats, imp, times, likelihood)
                scores.append([rmse(predict_mfcore(model, t, feats), t[:, 2]) for t in tests])
                secs.append(s)
            print(f"| {name} | {label} | {fmt(scores)} | {np.median(secs):.1f} |")
        peers = [("myFM + features", False, False, False)]
        if train.shape[1] > 3:
            peers += [("myFM + features + implicit + date", True, True, False),
                      ("myFM + features + implicit + date, ordered probit", True, True, True)]
        for label, imp, times, probit in picked(peers, args) if myfm is not None else []:
            scores, secs = [], []
            for seed in args.seeds:
                preds, s = fit_myfm(myfm, train, tests, tables, args, seed, imp, times, probit)
                scores.append([rmse(p, t[:, 2]) for p, t in zip(preds, tests)])
                secs.append(s)
            print(f"| {name} | {label} | {fmt(scores)} | {np.median(secs):.1f} |")


def picked(rows, args):
    """The rows whose label holds one of ``--rows``' comma-separated texts (all without)."""
    wanted = [w for w in (args.rows or "").split(",") if w]
    return [r for r in rows if not wanted or any(w in r[0] for w in wanted)]


def fmt(scores):
    """Median over seeds of each test part's RMSE ("validation / test" for two parts)."""
    return " / ".join(f"{v:.4f}" for v in np.median(np.array(scores), axis=0))


def cold(args, myfm, sets):
    print("\n## Cold start: 20% of users (items) held out entirely (RMSE on their ratings)")
    print("| data | held out | ratings | with features | fallback (no features) | myFM + "
          "features |\n|---|---|---|---|---|---|")
    for name, data, tables in sets:
        for side, col in (("users", 0), ("items", 1)):
            ids = np.unique(data[:, col])
            held = np.random.default_rng(0).choice(ids, len(ids) // 5, replace=False)
            test_mask = np.isin(data[:, col], held)
            train, test = data[~test_mask], data[test_mask]
            # the other side's ids must be known to be a cold-start case of this side only
            other = 1 - col
            test = test[np.isin(test[:, other], train[:, other])]
            model, _ = fit_mfcore(train, args, args.seeds[0], tables)
            with_f = rmse(predict_mfcore(model, test, tables), test[:, 2])
            fallback = rmse(predict_mfcore(model, test), test[:, 2])
            peer = "not run"
            if myfm is not None:
                (pred,), _ = fit_myfm(myfm, train, [test], tables, args, args.seeds[0])
                peer = f"{rmse(pred, test[:, 2]):.4f}"
            print(f"| {name} | {side} | {len(test):,} | {with_f:.4f} | {fallback:.4f} | "
                  f"{peer} |")


def speed(args, myfm, train, tables):
    print(f"\n## Speed on ML-1M's training part (s per sweep, k={args.k}, {args.sweeps} "
          f"sweeps; mfcore {args.threads} threads, myFM 1); load {os.getloadavg()[0]:.1f}")
    rows = {}
    for _ in range(3):  # alternate, medians
        for label, feats in (("BayesianMF", None), ("+ features", tables)):
            _, s = fit_mfcore(train, args, 0, feats)
            rows.setdefault(label, []).append(s / args.sweeps)
    if myfm is not None:
        _, s = fit_myfm(myfm, train, [train[:10]], tables, args, 0)
        rows["myFM + features"] = [s / args.sweeps]
    for label, values in rows.items():
        print(f"| {label} | {np.median(values):.4f} |")
    base, feat = np.median(rows["BayesianMF"]), np.median(rows["+ features"])
    print(f"features / plain: {feat / base:.2f}x", end="")
    if "myFM + features" in rows:
        print(f"; myFM / mfcore with features: {rows['myFM + features'][0] / feat:.1f}x")
    print(f"; load after {os.getloadavg()[0]:.1f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default="accuracy,cold,speed")
    ap.add_argument("--sets", default="ml100k,ml1m")
    ap.add_argument("--folds", default="1")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--sweeps", type=int, default=200)
    ap.add_argument("--burn-in", type=int, default=50)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-myfm", action="store_true")
    ap.add_argument("--rows", default="", help="accuracy rows whose label holds one of these "
                    "comma-separated texts (e.g. 'implicit + time,implicit + date')")
    args = ap.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    root = os.environ.get("MFCORE_DATA")
    if not root:
        raise SystemExit("set MFCORE_DATA to the folder holding ml-100k/ and ml-1m/")
    myfm = None if args.skip_myfm else import_myfm()
    tables, sets = set(args.tables.split(",")), set(args.sets.split(","))
    t100 = datasets.movielens_features("ml-100k", download=False) if "ml100k" in sets else None
    t1m = datasets.movielens_features("ml-1m", download=False) if "ml1m" in sets else None
    m1 = notebook_split(root) if "ml1m" in sets else None
    if "accuracy" in tables:
        runs = [(f"ML-100K u{f}", *((lambda tr, te: (tr, [te]))(*load_u(root, f))), t100)
                for f in args.folds.split(",")] if t100 is not None else []
        if m1 is not None:
            runs.append(("ML-1M notebook (val / test)", m1[0], [m1[1], m1[2]], t1m))
        accuracy(args, myfm, runs)
    if "cold" in tables:
        runs = []
        if t100 is not None:
            runs.append(("ML-100K", np.loadtxt(os.path.join(root, "ml-100k", "u.data"),
                                               dtype=np.int64)[:, :3], t100))
        if m1 is not None:
            runs.append(("ML-1M", m1[0], t1m))
        cold(args, myfm, runs)
    if "speed" in tables and m1 is not None:
        speed(args, myfm, m1[0], t1m)


if __name__ == "__main__":
    main()
