"""Side features in ALS: accuracy on MovieLens, cold start, and the cost of an iteration,
with and without the features (one run, the same splits as ``benchmarks/features.py``,
whose data loading, cold-start split and helpers it reuses).

Features: ``mfcore.datasets.movielens_features`` (ML-100K ``u.user`` + ``u.item``; ML-1M
``users.dat`` + ``movies.dat``), as in ``benchmarks/features.py``. ALS with its defaults
(k=64, reg=0.09, 15 iterations; ``reg_features=1.0``, chosen on a validation carve of
ML-100K u1.base) unless told otherwise; the model "without" is the same ALS fitted
without the tables.

Tables (``--tables``):
  accuracy   ML-100K u1 (``--folds`` for u2..u5): test RMSE without features, with the
             user table, with the item table, with both; ML-1M's notebook split: validation
             / test RMSE without and with both.
  cold       hold out 20% of the users entirely (then 20% of the items; seed 0) of ML-100K
             u1 and of ML-1M's notebook split (``features.cold_split``): RMSE on their
             ratings with features against the model without (its fallback for an unknown
             id: the global mean and the known bias), the known ids' RMSE; then fold-in of
             3 and 10 of each held-out user's ratings, with its feature row or without.
  speed      seconds per iteration without and with features on ML-100K u1's and ML-1M's
             training parts (``--repeats`` alternated fits of ``--speed-iterations``, the
             median iteration of each fit's history; the ratio is the median of the pairs'
             ratios).

Run (mfcore built in place):
    OMP_WAIT_POLICY=passive MFCORE_DATA=/path/to/data PYTHONPATH=.:benchmarks \\
        python benchmarks/als_features.py [--tables accuracy,cold,speed] [--sets ml100k,ml1m]
        [--k 64] [--iterations 15] [--reg-features 1.0] [--threads 2] [--repeats 3]
"""
import argparse
import os

import numpy as np

import mfcore
from mfcore import datasets

from _data import notebook_split
from features import cold_split, fold_in_rows, load_u, quiet, rmse


def fit_als(train, args, tables=None, iterations=None):
    """ALS on ``train`` (user, item, rating columns), with the (user, item) tables or without."""
    model = mfcore.ALS(k=args.k, iterations=iterations or args.iterations, seed=0,
                       reg_features=args.reg_features, n_threads=args.threads)
    extra = {} if tables is None else dict(user_features=tables[0], item_features=tables[1])
    return model.fit(train[:, 0], train[:, 1], train[:, 2], **extra)


def score(model, test, tables=None):
    extra = {} if tables is None else dict(user_features=tables[0], item_features=tables[1])
    return rmse(quiet(model.predict, test[:, 0], test[:, 1], **extra), test[:, 2])


def load():
    return f"load {os.getloadavg()[0]:.1f}"


def accuracy(args, sets):
    print(f"\n## Accuracy (RMSE; ALS k={args.k}, {args.iterations} iterations, "
          f"reg_features={args.reg_features}; {args.threads} threads; {load()})")
    print("| data | model | RMSE |\n|---|---|---|")
    for name, train, tests, (users, items) in sets:
        variants = [("ALS", None), ("+ user features", (users, None)),
                    ("+ item features", (None, items)), ("+ user and item features",
                                                          (users, items))]
        if len(tests) > 1:  # ML-1M: without and with both
            variants = [variants[0], variants[3]]
        for label, tables in variants:
            model = fit_als(train, args, tables)
            print(f"| {name} | {label} | "
                  + " / ".join(f"{score(model, t, tables):.4f}" for t in tests) + " |",
                  flush=True)


def cold(args, sets):
    print(f"\n## Cold start: 20% of users (items) held out entirely (ALS k={args.k}, "
          f"{args.iterations} iterations; {load()})")
    print("| data | held out | cold ratings | with features | without (fallback) | "
          "known ids (with features) |\n|---|---|---|---|---|---|")
    folds = []
    for name, parts, tables in sets:
        for side, col in (("users", 0), ("items", 1)):
            train, test, warm = cold_split(parts, col)
            feats, plain = fit_als(train, args, tables), fit_als(train, args)
            print(f"| {name} | {side} | {len(test):,} | {score(feats, test, tables):.4f} | "
                  f"{score(plain, test):.4f} | {score(feats, warm, tables):.4f} |", flush=True)
            if side == "users":
                folds.append((name, feats, plain, test, tables))
    print(f"\n## Fold-in: each held-out user with n of its ratings folded in (RMSE on its "
          f"ratings after the first 10, the same pairs for every n; {load()})")
    print("| data | users | n | with features | without |\n|---|---|---|---|---|")
    for name, feats, plain, test, tables in folds:
        for n, with_f, without in fold_in_rows(feats, plain, test, tables):
            print(f"| {name} | {len(np.unique(test[:, 0])):,} | {n} | {with_f:.4f} | "
                  f"{without:.4f} |", flush=True)


def speed(args, sets):
    print(f"\n## Speed (ALS k={args.k}, {args.speed_iterations} iterations, {args.threads} "
          f"threads; medians of {args.repeats} alternated fits; {load()})")
    print("| data | model | median iteration s |\n|---|---|---|")
    for name, train, tables in sets:
        rows = {"ALS": [], "ALS + features": []}
        for _ in range(args.repeats):
            for label, t in zip(rows, (None, tables)):
                model = fit_als(train, args, t, args.speed_iterations)
                rows[label].append(np.median([h["seconds"] for h in model.history_]))
        for label, values in rows.items():
            print(f"| {name} | {label} | {np.median(values):.4f} |")
        ratio = np.median([f / p for p, f in zip(*rows.values())])
        print(f"{name}: an iteration with features / without {ratio:.2f}x (median of the "
              f"pairs' ratios); {load()}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default="accuracy,cold,speed")
    ap.add_argument("--sets", default="ml100k,ml1m")
    ap.add_argument("--folds", default="1")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--reg-features", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="speed: fits of each model")
    ap.add_argument("--speed-iterations", type=int, default=5)
    args = ap.parse_args(argv)
    root = os.environ.get("MFCORE_DATA")
    if not root:
        raise SystemExit("set MFCORE_DATA to the folder holding ml-100k/ and ml-1m/")
    tables, sets = set(args.tables.split(",")), set(args.sets.split(","))
    t100 = datasets.movielens_features("ml-100k", download=False) if "ml100k" in sets else None
    t1m = datasets.movielens_features("ml-1m", download=False) if "ml1m" in sets else None
    m1 = notebook_split(root) if "ml1m" in sets else None
    if "accuracy" in tables:
        runs = [(f"ML-100K u{f}", load_u(root, f)[0][:, :3], [load_u(root, f)[1][:, :3]],
                 t100) for f in args.folds.split(",")] if t100 is not None else []
        if m1 is not None:
            runs.append(("ML-1M notebook (val / test)", m1[0], [m1[1], m1[2]], t1m))
        accuracy(args, runs)
    if "cold" in tables:
        runs = [] if t100 is None else [("ML-100K u1", [p[:, :3] for p in load_u(root, 1)],
                                         t100)]
        if m1 is not None:
            runs.append(("ML-1M notebook", list(m1), t1m))
        cold(args, runs)
    if "speed" in tables:
        runs = [] if t100 is None else [("ML-100K u1", load_u(root, 1)[0][:, :3], t100)]
        if m1 is not None:
            runs.append(("ML-1M notebook (train)", m1[0], t1m))
        speed(args, runs)


if __name__ == "__main__":
    main()
