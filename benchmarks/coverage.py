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
random_state=0; the test half scored). Target: 85-95% in every row with ratings. Each
row gives the exact (Clopper-Pearson) 95% confidence interval of its coverage: a row of a
few ratings is consistent with 90% when its interval holds 90%. ``--pool`` adds the rows
pooled over the sets (the five ML-100K folds u1-u5: ``--sets ml100k,ml100k-u2,...``).
The splits leave few test ratings of rarely seen users (u1: 17, u2-u4: none) and of
unseen items (ML-1M: 4); ``--sparse 0.05`` fills those rows as the held-out users fill
the unseen users' row: 5% of the users and 5% of the items keep only 1 to 5 of their
training ratings (drawn at random) and 5% of the items none (the rows' definitions are
unchanged: an id's number of ratings in the fit).

Run (mfcore built in place; scikit-learn for the ML-1M split):
    MFCORE_DATA=/path/to/data PYTHONPATH=. python benchmarks/coverage.py [--sets ml100k,ml1m]
    ... coverage.py --sets ml100k,ml100k-u2,ml100k-u3,ml100k-u4,ml100k-u5 --pool
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


def interval(inside, n, level=0.95):
    """The exact (Clopper-Pearson) ``level`` confidence interval of a coverage of
    ``inside`` out of ``n``, in percent."""
    from scipy.stats import beta
    tail = (1 - level) / 2
    lo = beta.ppf(tail, inside, n - inside + 1) if inside else 0.0
    hi = beta.ppf(1 - tail, inside + 1, n - inside) if inside < n else 1.0
    return 100 * lo, 100 * hi


def cell(mask, r, mean, std):
    """(n, inside the interval, squared error, sum of std) of the test ratings ``mask``."""
    err = r[mask] - mean[mask]
    return np.array([mask.sum(), (np.abs(err) <= Z90 * std[mask]).sum(), (err ** 2).sum(),
                     std[mask].sum()])


def row(label, stats):
    n, inside, sq, std = stats
    if not n:
        return f"| {label} | 0 | - | - | - | - |"
    lo, hi = interval(int(inside), int(n))
    return (f"| {label} | {int(n):,} | {np.sqrt(sq / n):.3f} | {std / n:.3f} "
            f"| {100 * inside / n:.1f}% | {lo:.1f}-{hi:.1f}% |")


def load_split(name, root):
    """(train, test): 'ml100k' (u1), 'ml100k-u2' ... 'ml100k-u5', 'ml1m' (notebook split)."""
    if name.startswith("ml100k-u"):
        return tuple(np.loadtxt(os.path.join(root, "ml-100k", f"{name[7:]}.{part}"),
                                dtype=np.int64)[:, :3] for part in ("base", "test"))
    return load(name, root)


def thinned(rows, side, rng, fraction):
    """A mask of ``rows`` without the ratings of ``fraction`` of its ids on ``side`` (0
    users, 1 items) but 1 to 5 of each (drawn at random): rarely seen ids in numbers."""
    ids = np.unique(rows[:, side])
    chosen = rng.choice(ids, size=max(1, int(len(ids) * fraction)), replace=False)
    keep = ~np.isin(rows[:, side], chosen)
    for x in chosen:
        mine = np.flatnonzero(rows[:, side] == x)
        keep[rng.choice(mine, size=min(len(mine), int(rng.integers(1, 6))), replace=False)] = True
    return keep


def run(name, root, seed=0, sparse=0.0, settings=None):
    """(the table's heading, {row label: cell stats}) of one data set; ``sparse``: the
    fraction of the users and of the items cut to 1-5 training ratings (``thinned``),
    and of the items taken out of training, so that those rows have ratings in numbers."""
    train, test = load_split(name, root)
    rng = np.random.default_rng(seed)
    users = np.unique(train[:, 0])
    cold = rng.choice(users, size=max(1, len(users) // 20), replace=False)
    keep = ~np.isin(train[:, 0], cold)
    if sparse:
        for side in (0, 1):
            at = np.flatnonzero(keep)
            keep[at[~thinned(train[at], side, rng, sparse)]] = False
        items = np.unique(train[keep, 1])
        keep &= ~np.isin(train[:, 1], rng.choice(items, int(len(items) * sparse), replace=False))
    fit_part = train[keep]
    start = time.perf_counter()
    model = mfcore.BayesianMF(seed=seed, **(settings or {})).fit(fit_part[:, 0], fit_part[:, 1],
                                                         fit_part[:, 2])
    seconds = time.perf_counter() - start
    u, i, r = test[:, 0], test[:, 1], test[:, 2].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
        mean, std = model.predict(u, i, clip=False, return_std=True)
    user_n = np.bincount(fit_part[:, 0], minlength=max(u.max(), train[:, 0].max()) + 1)[u]
    item_n = np.bincount(fit_part[:, 1], minlength=max(i.max(), train[:, 1].max()) + 1)[i]
    heading = (f"{name}: {len(fit_part):,} training ratings ({len(cold)} users held out"
               f"{f', {sparse:.0%} of users and items thinned to 1-5' if sparse else ''}), "
               f"{len(r):,} test ratings, fit {seconds:.1f} s")
    cells = {"all": cell(np.ones(len(r), bool), r, mean, std)}
    for side, counts in (("users", user_n), ("items", item_n)):
        for label, lo, hi in GROUPS:
            cells[f"{side} {label}"] = cell((counts >= lo) & (counts <= hi), r, mean, std)
    cells["users folded in with 1-5 ratings"] = folded_in(model, train, test, cold, rng)
    return heading, cells


def folded_in(model, train, test, cold, rng):
    """The cell of the held-out users' test ratings, each user folded in with 1 to 5 of
    its training ratings (drawn at random); empty for a model without fold-in (a
    summary posterior)."""
    if not model.supports("fold_in"):
        return np.zeros(4)
    u, i, r = test[:, 0], test[:, 1], test[:, 2].astype(np.float64)
    folded = []
    for user in cold:
        mine = np.flatnonzero(train[:, 0] == user)
        take = rng.choice(mine, size=min(len(mine), int(rng.integers(1, 6))), replace=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
            try:
                model.fold_in(user, train[take, 1], train[take, 2])
            except ValueError:  # none of its items known to the model
                continue
        folded.append(user)
    ok = np.isin(u, folded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
        fmean, fstd = model.predict(u[ok], i[ok], clip=False, return_std=True)
    return cell(np.ones(ok.sum(), bool), r[ok], fmean, fstd)


def table(heading, cells):
    return "\n".join([f"### {heading}", "",
                      "| test ratings of | n | RMSE | mean std | 90% interval covers "
                      "| its 95% confidence interval |", "|---|---|---|---|---|---|",
                      *(row(label, stats) for label, stats in cells.items())])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="ml100k,ml1m",
                        help="ml100k (u1), ml100k-u2 ... ml100k-u5, ml1m")
    parser.add_argument("--pool", action="store_true",
                        help="also print the sets' cells pooled (e.g. the five ML-100K folds)")
    parser.add_argument("--sparse", type=float, default=0.0,
                        help="also cut this fraction of the users and of the items to 1-5 "
                             "training ratings and take as many items out (e.g. 0.05)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--posterior-mb", type=float, default=None,
                        help="BayesianMF's posterior_mb (0: the summary posterior)")
    args = parser.parse_args()
    settings = {} if args.posterior_mb is None else {"posterior_mb": args.posterior_mb}
    root = os.environ.get("MFCORE_DATA")
    if not root:
        sys.exit("set MFCORE_DATA to the folder holding ml-100k/ and ml-1m/")
    print(f"mfcore {mfcore.__version__}, BayesianMF defaults {settings or ''}, seed {args.seed}, "
          f"load {os.getloadavg()[0]:.1f}\n")
    pooled = {}
    for name in args.sets.split(","):
        heading, cells = run(name, root, args.seed, args.sparse, settings)
        print(table(heading, cells), "\n", flush=True)
        for label, stats in cells.items():
            pooled[label] = pooled.get(label, 0) + stats
    if args.pool:
        print(table(f"pooled: {args.sets}", pooled), flush=True)


if __name__ == "__main__":
    main()
