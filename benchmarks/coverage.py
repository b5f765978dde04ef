"""Coverage of BayesianMF's central 90% predictive interval, by how well the model knows the ids.

For each data set, ``mfcore.BayesianMF`` (defaults, seed 0) is fitted on the training
part with the ratings of 5% of its users (drawn with seed 0) taken out, so that there
are held-out ratings of users the model has never seen (the random splits leave almost
none). Every test rating is then predicted with ``return_std=True`` and the interval
``mean +- 1.645 std`` (unclipped) is checked; the rows group the test ratings by how
many training ratings their user (then their item) has: known (more than 5), rarely
seen (1-5), unseen (0). "folded in" rows: each held-out user is then folded in with 1
to 5 of its training ratings (``fold_in``; drawn at random) and its test ratings scored.

Data: ML-100K u1 (u1.base -> u1.test) and ML-1M with the notebook split of the data
README (train_test_split(test_size=0.2, random_state=888), the rest halved with
random_state=0; the test half scored). Target: 85-95% in every row with ratings.

Run (mfcore built in place; scikit-learn for the ML-1M split):
    MFCORE_DATA=/path/to/data PYTHONPATH=. python benchmarks/coverage.py [--sets ml100k,ml1m]
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bayes_compare import Z90, load  # noqa: E402  (the same splits as the speed comparison)

import mfcore  # noqa: E402

GROUPS = (("known (>5)", 6, np.inf), ("rarely seen (1-5)", 1, 5), ("unseen (0)", 0, 0))


def row(label, mask, r, mean, std):
    n = int(mask.sum())
    if not n:
        return f"| {label} | 0 | - | - | - |"
    err = r[mask] - mean[mask]
    inside = np.abs(err) <= Z90 * std[mask]
    return (f"| {label} | {n:,} | {np.sqrt(np.mean(err ** 2)):.3f} | {std[mask].mean():.3f} "
            f"| {100 * inside.mean():.1f}% |")


def run(name, root, seed=0):
    train, test = load(name, root)
    rng = np.random.default_rng(seed)
    users = np.unique(train[:, 0])
    cold = rng.choice(users, size=max(1, len(users) // 20), replace=False)
    is_cold = np.isin(train[:, 0], cold)
    fit_part = train[~is_cold]
    start = time.perf_counter()
    model = mfcore.BayesianMF(seed=seed).fit(fit_part[:, 0], fit_part[:, 1], fit_part[:, 2])
    seconds = time.perf_counter() - start
    u, i, r = test[:, 0], test[:, 1], test[:, 2].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
        mean, std = model.predict(u, i, clip=False, return_std=True)
    user_n = np.bincount(fit_part[:, 0], minlength=max(u.max(), train[:, 0].max()) + 1)[u]
    item_n = np.bincount(fit_part[:, 1], minlength=max(i.max(), train[:, 1].max()) + 1)[i]
    lines = [f"### {name}: {len(fit_part):,} training ratings ({len(cold)} users held out), "
             f"{len(r):,} test ratings, fit {seconds:.1f} s", "",
             "| test ratings of | n | RMSE | mean std | 90% interval covers |",
             "|---|---|---|---|---|",
             row("all", np.ones(len(r), bool), r, mean, std)]
    for side, counts in (("users", user_n), ("items", item_n)):
        for label, lo, hi in GROUPS:
            lines.append(row(f"{side} {label}", (counts >= lo) & (counts <= hi), r, mean, std))
    # fold-in: each held-out user with 1-5 of its training ratings
    held = np.isin(u, cold)
    folded = {}
    for user in cold:
        mine = np.flatnonzero(train[:, 0] == user)
        take = rng.choice(mine, size=min(len(mine), int(rng.integers(1, 6))), replace=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
            try:
                model.fold_in(user, train[take, 1], train[take, 2])
            except ValueError:  # none of its items known to the model
                continue
        folded[user] = len(take)
    ok = held & np.isin(u, list(folded))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
        fmean, fstd = model.predict(u[ok], i[ok], clip=False, return_std=True)
    lines.append(row("users folded in with 1-5 ratings", np.ones(ok.sum(), bool), r[ok],
                     fmean, fstd))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="ml100k,ml1m")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = os.environ.get("MFCORE_DATA")
    if not root:
        sys.exit("set MFCORE_DATA to the folder holding ml-100k/ and ml-1m/")
    print(f"mfcore {mfcore.__version__}, BayesianMF defaults, seed {args.seed}, "
          f"load {os.getloadavg()[0]:.1f}\n")
    for name in args.sets.split(","):
        print(run(name, root, args.seed), "\n", flush=True)


if __name__ == "__main__":
    main()
