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
             regression and as its ordered probit, ``MyFMOrderedProbit``). On ML-1M it
             gives validation / test RMSE.
  cold       hold out 20% of the users entirely (then 20% of the items; seed 0) of
             ML-100K's u1 split and of ML-1M's notebook split: train on the training
             part without them, score every part's ratings of the held-out ids (whose
             other id was trained). RMSE with features, without them (a model fitted
             without features: its prediction for an unknown id, the prior fallback),
             myFM with the features; the known ids' RMSE on the later parts; the mean
             predictive std (``return_std``) on held-out vs known ids. Then fold-in:
             each held-out user folds 3, then 10 of its ratings into the model (with its
             feature row, or into the model without features), scored on its ratings
             after its first 10 (n = 0: cold start on the same pairs).
  speed      seconds per sweep on ML-100K u1's and ML-1M's training parts, without and
             with features (``--repeats`` alternated fits, medians; the fit's seconds and
             the median sweep of its history) and myFM (single-threaded) with features:
             its fit time for the same sweeps. myFM's relation blocks are built before
             its clock starts, while mfcore's fit time includes its own data preparation
             (feature encoding included), so the fit-time ratio favours myFM.

Run (the environment with myfm; mfcore built in place):
    OMP_WAIT_POLICY=passive MFCORE_DATA=/path/to/data PYTHONPATH=.:benchmarks \\
        python benchmarks/features.py [--tables accuracy,cold,speed] [--sets ml100k,ml1m]
        [--k 10] [--sweeps 200] [--burn-in 50] [--seeds 0] [--threads 2] [--skip-myfm]
        [--repeats 3] [--rows TEXT,...]
One command per table (the figures in docs/guide/models.md):
    cold start, both sets:   ... features.py --tables cold
    ML-1M notebook split:    ... features.py --tables accuracy --sets ml1m
    speed:                   ... features.py --tables speed
    ordered probit, ML-100K: ... features.py --tables accuracy --sets ml100k --k 8
                                 --sweeps 400 --burn-in 100 --seeds 0,1,2
                                 --rows "features + implicit + time,features + implicit + date"
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
    if getattr(model, "time_encoding_", None) is not None:  # (ALS has no time terms)
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


def cold_split(parts, col, seed=0):
    """Hold out 20% of the ids of column ``col`` (0 users, 1 items) of a split's ``parts``
    (train first) entirely: (train: the first part without them; cold: every part's
    ratings of the held ids whose other id is in train; warm: the later parts' ratings of
    ids both in train, the known ids' reference)."""
    ids = np.unique(np.concatenate([p[:, col] for p in parts]))
    held = np.random.default_rng(seed).choice(ids, len(ids) // 5, replace=False)
    train = parts[0][~np.isin(parts[0][:, col], held)]
    rest = np.concatenate(parts)
    cold = rest[np.isin(rest[:, col], held) & np.isin(rest[:, 1 - col], train[:, 1 - col])]
    later = np.concatenate(parts[1:])
    warm = later[np.isin(later[:, 0], train[:, 0]) & np.isin(later[:, 1], train[:, 1])]
    return train, cold, warm


def mean_std(model, test, features=None):
    """The mean predictive std of ``model`` over the pairs of ``test``."""
    extra = {} if features is None else dict(user_features=features[0],
                                             item_features=features[1])
    return float(np.mean(quiet(model.predict, test[:, 0], test[:, 1], return_std=True,
                               **extra)[1]))


def cold(args, myfm, sets):
    """The cold-start tables: RMSE and mean std on held-out users (items), and fold-in."""
    print(f"\n## Cold start: 20% of users (items) held out entirely (k={args.k}, "
          f"{args.sweeps} sweeps, seed {args.seeds[0]}; load {os.getloadavg()[0]:.1f})")
    print("| data | held out | cold ratings | with features | without (fallback) | myFM + "
          "features | known ids (with features) | mean std cold / known, with features | "
          "without |\n|---|---|---|---|---|---|---|---|---|")
    folds = []
    for name, parts, tables in sets:
        for side, col in (("users", 0), ("items", 1)):
            train, test, warm = cold_split(parts, col)
            feats, _ = fit_mfcore(train[:, :3], args, args.seeds[0], tables)
            plain, _ = fit_mfcore(train[:, :3], args, args.seeds[0])
            peer = "not run"
            if myfm is not None:
                (pred,), _ = fit_myfm(myfm, train[:, :3], [test[:, :3]], tables, args,
                                      args.seeds[0])
                peer = f"{rmse(pred, test[:, 2]):.4f}"
            stds = [f"{mean_std(m, test, f):.3f} / {mean_std(m, warm, f):.3f}"
                    for m, f in ((feats, tables), (plain, None))]
            print(f"| {name} | {side} | {len(test):,} | "
                  f"{rmse(predict_mfcore(feats, test, tables), test[:, 2]):.4f} | "
                  f"{rmse(predict_mfcore(plain, test), test[:, 2]):.4f} | {peer} | "
                  f"{rmse(predict_mfcore(feats, warm, tables), warm[:, 2]):.4f} | "
                  f"{stds[0]} | {stds[1]} |")
            if side == "users":
                folds.append((name, feats, plain, test, tables))
    print("\n## Fold-in: each held-out user with n of its ratings folded in (RMSE on its "
          "ratings after the first 10, the same pairs for every n)")
    print("| data | users | n | with features | without |\n|---|---|---|---|---|")
    for name, feats, plain, test, tables in folds:
        for n, with_f, without in fold_in_rows(feats, plain, test, tables):
            print(f"| {name} | {len(np.unique(test[:, 0])):,} | {n} | {with_f:.4f} | "
                  f"{without:.4f} |")


def fold_in_rows(feats, plain, test, tables, first=(3, 10), seed=0):
    """(n, RMSE with features, RMSE without) for n = 0 (cold start) and each of ``first``:
    each held-out user of ``test`` folds in n of its ratings (a fixed random order) into
    ``feats`` (with its feature row) and into ``plain``; scored on its ratings after the
    first max(first), the same pairs for every n."""
    order = np.random.default_rng(seed).permutation(len(test))
    test = test[order[np.argsort(test[order, 0], kind="stable")]]  # by user, shuffled
    rank = np.arange(len(test)) - np.searchsorted(test[:, 0], test[:, 0])
    score = test[rank >= max(first)]
    out = [(0, rmse(predict_mfcore(feats, score, tables), score[:, 2]),
            rmse(predict_mfcore(plain, score), score[:, 2]))]
    for n in first:
        part = test[rank < n]
        scores = []
        for model, extra in ((feats, dict(user_features=tables[0])), (plain, {})):
            model = quiet(model.fold_in, part[:, 0], part[:, 1], part[:, 2], **extra)
            scores.append(rmse(predict_mfcore(model, score), score[:, 2]))
        out.append((n, *scores))
    return out


def speed(args, myfm, sets):
    """Seconds per sweep: BayesianMF without and with features alternated, ``args.repeats``
    fits each (medians), myFM with the features once, mid-way; equal k and sweeps."""
    print(f"\n## Speed (k={args.k}, {args.sweeps} sweeps; mfcore {args.threads} threads, "
          f"myFM 1; medians of {args.repeats} alternated fits; load "
          f"{os.getloadavg()[0]:.1f})")
    print("| data | model | fit s | fit s / sweep | median sweep s |\n|---|---|---|---|---|")
    for name, train, tables in sets:
        rows = {"BayesianMF": [], "BayesianMF + features": []}
        for rep in range(args.repeats):
            for label, feats in zip(rows, (None, tables)):
                model, s = fit_mfcore(train, args, 0, feats)
                rows[label].append((s, np.median([h["seconds"] for h in model.history_])))
            if rep == 0 and myfm is not None:
                _, s = fit_myfm(myfm, train, [train[:10]], tables, args, 0)
                rows["myFM + features"] = [(s, np.nan)]
        fit = {label: np.median([v[0] for v in values]) for label, values in rows.items()}
        for label, values in rows.items():
            sweep = np.median([v[1] for v in values])
            print(f"| {name} | {label} | {fit[label]:.2f} | {fit[label] / args.sweeps:.4f} | "
                  + ("-" if np.isnan(sweep) else f"{sweep:.4f}") + " |")
        # the ratio of each pair of fits run one after the other (robust to load drifting
        # between pairs), then their median
        pairs = [(f[1] / p[1], f[0] / p[0]) for p, f in zip(*(rows[k] for k in list(rows)[:2]))]
        line = (f"{name}: a sweep with features / without {np.median([r[0] for r in pairs]):.2f}x"
                f" (fits {np.median([r[1] for r in pairs]):.2f}x; medians of the pairs' ratios)")
        if "myFM + features" in fit:
            line += (f"; myFM + features / BayesianMF + features, fit time "
                     f"{fit['myFM + features'] / fit['BayesianMF + features']:.1f}x")
        print(line + f"; load {os.getloadavg()[0]:.1f}")


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
    ap.add_argument("--repeats", type=int, default=3, help="speed: fits of each mfcore model")
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
            runs.append(("ML-100K u1", [p[:, :3] for p in load_u(root, 1)], t100))
        if m1 is not None:
            runs.append(("ML-1M notebook", list(m1), t1m))
        cold(args, myfm, runs)
    if "speed" in tables:
        runs = [] if t100 is None else [("ML-100K u1", load_u(root, 1)[0][:, :3], t100)]
        if m1 is not None:
            runs.append(("ML-1M notebook (train)", m1[0], t1m))
        speed(args, myfm, runs)


if __name__ == "__main__":
    main()
