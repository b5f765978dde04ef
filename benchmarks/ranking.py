"""Top-N recommendation (issue 18): mfcore's estimators beside the strong simple peers.

Data: ML-100K u1.base -> u1.test, and the ML-1M notebook split of the data README
(train_test_split(test_size=0.2, random_state=888) over the file's rows; the rest halved
with random_state=0, scored on the test half). The protocol is ``mfcore.metrics``'s
(``top_n_metrics``, which ``ranking_metrics`` runs for mfcore's models): every item the
user did not rate in training is a candidate, a test rating >= 4 is relevant, metrics at
k=10 averaged over the test users with a relevant item.

Recommenders, each fitted on the whole training part:

* mfcore's estimators at their defaults (``Model`` (SGD), ``ALS``, ``BayesianMF``,
  ``BayesianMF(implicit=True)``, and ``ImplicitALS``, also with ``targets="ones"``, when
  this mfcore has it), ranked by their default ``recommend`` and, in the notes, by
  predicted rating alone (``rank_by="prediction"``); RMSE on the test ratings where the
  model predicts ratings (not ImplicitALS's scores);
* the most-rated items; EASE (Steck 2019: closed-form item-item regression on who rated
  what, a grid of its penalty lambda); PureSVD (Cremonesi et al. 2010: truncated SVD of
  the rating matrix with missing = 0, a grid of ranks); implicit's ALS
  (Hu-Koren-Volinsky, 64 factors, 15 iterations) and BPR (64 factors) when ``implicit``
  is installed, one BLAS thread.

Peers' grids are chosen on a validation cut of the TRAINING part only (10% of its ratings
at random, seed 0; fitted on the other 90%), then refitted on the whole training part.
Fit seconds are wall time of the final fit (the machine's load is printed: compare rows
of one run only).

    MFCORE_DATA=/path/to/data PYTHONPATH=. python benchmarks/ranking.py [--sets ml100k,ml1m]
        [--quick] [--skip-mfcore] [--skip-peers]

``--quick`` uses smaller peer grids. Needs numpy and scipy (EASE, PureSVD); implicit is
optional.
"""
import argparse
import io
import os
import time
import warnings

import numpy as np

import mfcore
from mfcore.metrics import ranking_metrics, top_n_metrics

K = 10
THRESHOLD = 4.0
BLOCK = 1024  # users scored at once by the NumPy peers: a dense block of BLOCK x items


# --- data ------------------------------------------------------------------------------

def _read(path, sep):
    import pandas as pd
    with open(path) as fh:
        text = fh.read().replace("::", "\t") if sep == "::" else fh.read()
    return pd.read_csv(io.StringIO(text), sep="\t", header=None).to_numpy(np.int64)[:, :3]


def load(name, root):
    """(train, test): int64 arrays of rows (user, item, rating)."""
    if name == "ml100k":
        return (_read(os.path.join(root, "ml-100k", "u1.base"), "\t"),
                _read(os.path.join(root, "ml-100k", "u1.test"), "\t"))
    from sklearn.model_selection import train_test_split
    d = _read(os.path.join(root, "ml-1m", "ratings.dat"), "::")
    train, rest = train_test_split(d, test_size=0.2, random_state=888)
    _, test = train_test_split(rest, test_size=0.5, random_state=0)
    return train, test


def validation_cut(train, fraction=0.1, seed=0):
    """(fit part, validation part) of the training ratings: the peers' grids see only these."""
    held = np.random.default_rng(seed).random(len(train)) < fraction
    return train[~held], train[held]


class Rows:
    """Training ids -> rows 0..n-1 (the peers' matrices), and the training matrix."""

    def __init__(self, train):
        import scipy.sparse as sp
        self.users, u = np.unique(train[:, 0], return_inverse=True)
        self.items, i = np.unique(train[:, 1], return_inverse=True)
        shape = (len(self.users), len(self.items))
        self.ratings = sp.csr_matrix((train[:, 2].astype(np.float64), (u, i)), shape=shape)
        self.seen = (self.ratings > 0).astype(np.float64).tocsr()

    def item_rows(self, items):
        """Rows of test items; an item not in training gets a row past the catalogue
        (relevant, never recommended), as ``ranking_metrics`` counts it."""
        pos = np.searchsorted(self.items, items).clip(0, len(self.items) - 1)
        rows = np.where(self.items[pos] == items, pos, -1)
        unknown = rows < 0
        rows[unknown] = len(self.items) + np.unique(items[unknown], return_inverse=True)[1]
        return rows

    def user_rows(self, users):
        pos = np.searchsorted(self.users, users).clip(0, len(self.users) - 1)
        return np.where(self.users[pos] == users, pos, -1)

    def evaluate(self, scores_of, test):
        """``top_n_metrics`` of a peer whose ``scores_of(user rows)`` gives dense scores; a
        user unknown to training gets the most-rated items."""
        counts = np.asarray(self.seen.sum(axis=0)).ravel()
        popular = np.argsort(-counts, kind="stable")[:K]

        def recommend(user_ids):
            rows = self.user_rows(np.asarray(user_ids))
            out = np.tile(popular, (len(rows), 1))
            known = np.flatnonzero(rows >= 0)
            for start in range(0, len(known), BLOCK):
                block = known[start:start + BLOCK]
                scores = np.array(scores_of(rows[block]), dtype=np.float64)
                seen = self.seen[rows[block]]
                scores[np.repeat(np.arange(len(block)), np.diff(seen.indptr)), seen.indices] = -np.inf
                top = np.argpartition(-scores, K, axis=1)[:, :K]
                order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
                out[block] = np.take_along_axis(top, order, 1)
            return out

        return top_n_metrics(recommend, test[:, 0], self.item_rows(test[:, 1]), test[:, 2],
                             len(self.items), k=K, threshold=THRESHOLD)


# --- the peers -------------------------------------------------------------------------

def fit_popular(rows, _):
    counts = np.asarray(rows.seen.sum(axis=0)).ravel()
    return lambda u: np.broadcast_to(counts, (len(u), len(counts)))


def fit_ease(rows, lam):
    X = rows.seen
    G = (X.T @ X).toarray()
    G[np.diag_indices_from(G)] += lam
    P = np.linalg.inv(G)
    B = P / -np.diag(P)
    B[np.diag_indices_from(B)] = 0.0
    return lambda u: X[u] @ B


def fit_puresvd(rows, rank):
    from scipy.sparse.linalg import svds
    _, _, vt = svds(rows.ratings, k=rank, random_state=0)
    V = vt.T
    return lambda u: (rows.ratings[u] @ V) @ V.T


def _implicit_factors(model):
    to_numpy = lambda a: a.to_numpy() if hasattr(a, "to_numpy") else np.asarray(a)  # noqa: E731
    return to_numpy(model.user_factors), to_numpy(model.item_factors)


def fit_implicit(rows, params):
    import implicit
    from threadpoolctl import threadpool_limits
    kind, settings = params[0], dict(params[1])
    with threadpool_limits(1, "blas"):
        if kind == "als":
            alpha = settings.pop("alpha")
            model = implicit.cpu.als.AlternatingLeastSquares(
                factors=64, iterations=15, random_state=0, **settings)
            model.fit((rows.seen * alpha).tocsr(), show_progress=False)
        else:
            model = implicit.cpu.bpr.BayesianPersonalizedRanking(
                factors=64, iterations=100, random_state=0, **settings)
            model.fit(rows.seen, show_progress=False)
    U, V = _implicit_factors(model)
    return lambda u: U[u] @ V.T


def peer_grids(quick):
    grids = {
        "most-rated": (fit_popular, [None]),
        "EASE": (fit_ease, [250.0, 500.0] if quick else [100.0, 250.0, 500.0, 1000.0]),
        "PureSVD": (fit_puresvd, [20, 50] if quick else [10, 20, 50, 100]),
    }
    try:
        import implicit  # noqa: F401
    except ImportError as exc:
        print(f"implicit's ALS and BPR skipped: {exc}")
        return grids
    als = [("als", {"alpha": a, "regularization": r})
           for a in ((1.0, 10.0) if quick else (1.0, 5.0, 20.0))
           for r in ((0.1,) if quick else (0.01, 0.1, 1.0))]
    bpr = [("bpr", {"learning_rate": lr, "regularization": 0.01})
           for lr in ((0.05,) if quick else (0.01, 0.05, 0.1))]
    grids["implicit ALS (64)"] = (fit_implicit, als)
    grids["implicit BPR (64)"] = (fit_implicit, bpr)
    return grids


def _setting(value):
    if isinstance(value, tuple):
        return ", ".join(f"{k}={v:g}" for k, v in value[1].items())
    return "" if value is None else f"{value:g}"


def run_peers(train, test, quick):
    fit_part, validation = validation_cut(train)
    small, whole = Rows(fit_part), Rows(train)
    out = []
    for name, (fit, grid) in peer_grids(quick).items():
        scores = {}
        for value in grid:
            if len(grid) > 1:
                scores[grid.index(value)] = small.evaluate(fit(small, value), validation)["ndcg"]
        best = grid[max(scores, key=scores.get)] if scores else grid[0]
        start = time.perf_counter()
        scorer = fit(whole, best)
        seconds = time.perf_counter() - start
        m = whole.evaluate(scorer, test)
        chosen = " ".join(f"{_setting(v)}: {s:.4f}" for v, s in zip(grid, scores.values()))
        out.append(dict(name=f"{name} {_setting(best)}".strip(), ndcg=m["ndcg"],
                        precision=m["precision"], recall=m["recall"], n_users=m["n_users"],
                        seconds=seconds, note=f"validation NDCG {chosen}" if scores else ""))
        print(f"  {out[-1]['name']}: NDCG@10 {m['ndcg']:.4f}  ({out[-1]['note']})", flush=True)
    return out


# --- mfcore ----------------------------------------------------------------------------

def mfcore_estimators():
    ests = {"mfcore SGD (Model)": lambda: mfcore.Model(seed=0),
            "mfcore ALS": lambda: mfcore.ALS(seed=0),
            "mfcore BayesianMF": lambda: mfcore.BayesianMF(seed=0),
            "mfcore BayesianMF(implicit=True)": lambda: mfcore.BayesianMF(implicit=True, seed=0)}
    if hasattr(mfcore, "ImplicitALS"):
        ests["mfcore ImplicitALS"] = lambda: mfcore.ImplicitALS(seed=0)
        # the same at targets="ones" (Hu-Koren-Volinsky: who rated what, not how): what the
        # ratings as targets add
        ests['mfcore ImplicitALS(targets="ones")'] = lambda: mfcore.ImplicitALS(
            targets="ones", seed=0)
    else:
        print("mfcore ImplicitALS skipped: this mfcore has no mfcore.ImplicitALS")
    return ests


def run_mfcore(train, test):
    out = []
    args = (test[:, 0], test[:, 1], test[:, 2])
    for name, make in mfcore_estimators().items():
        start = time.perf_counter()
        model = make().fit(train[:, 0], train[:, 1], train[:, 2])
        seconds = time.perf_counter() - start
        row = dict(name=name, seconds=seconds, note="scores, not ratings")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
            m = ranking_metrics(model, *args, k=K, threshold=THRESHOLD)
            if getattr(model, "predicts_ratings", True):  # a score has no RMSE
                by_rating = ranking_metrics(model, *args, k=K, threshold=THRESHOLD,
                                            rank_by="prediction")
                row.update(rmse=model.evaluate(*args)["rmse"],
                           note=f"by predicted rating alone: NDCG {by_rating['ndcg']:.4f}")
        row.update(ndcg=m["ndcg"], precision=m["precision"], recall=m["recall"],
                   n_users=m["n_users"])
        out.append(row)
        print(f"  {name}: NDCG@10 {m['ndcg']:.4f}  ({out[-1]['note']})", flush=True)
    return out


def table(rows):
    lines = ["| recommender | NDCG@10 | precision@10 | recall@10 | RMSE | fit s | notes |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["ndcg"]):
        rmse = f"{r['rmse']:.4f}" if "rmse" in r else ""
        lines.append(f"| {r['name']} | {r['ndcg']:.4f} | {r['precision']:.4f} | "
                     f"{r['recall']:.4f} | {rmse} | {r['seconds']:.1f} | {r['note']} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="ml100k,ml1m")
    parser.add_argument("--quick", action="store_true", help="smaller peer grids")
    parser.add_argument("--skip-mfcore", action="store_true")
    parser.add_argument("--skip-peers", action="store_true")
    args = parser.parse_args()
    root = os.environ.get("MFCORE_DATA", "../shared/data")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"mfcore {mfcore.__version__}; {'quick' if args.quick else 'full'} grids")
    for name in args.sets.split(","):
        train, test = load(name, root)
        print(f"\n## {name}: {len(train):,} training ratings, {len(test):,} test ratings",
              flush=True)
        rows = [] if args.skip_peers else run_peers(train, test, args.quick)
        rows += [] if args.skip_mfcore else run_mfcore(train, test)
        print(f"\n{name}, test users with a relevant item: {rows[0]['n_users']:,}; "
              f"load average now {os.getloadavg()[0]:.1f}\n")
        print(table(rows), flush=True)


if __name__ == "__main__":
    main()
