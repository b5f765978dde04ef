"""ImplicitALS's top-N accuracy beside EASE, tuned on validation data only.

Protocol (issue 18): train on the training part (ML-100K u1.base; the ML-1M notebook
split's 800,167 ratings); candidates are every item the user did not rate in training;
relevant: a test rating >= 4; NDCG@10 and recall@10 over the test users with a relevant
item, by ``mfcore.metrics.ranking_metrics``. Hyperparameters are chosen on a validation
cut (10% of the training part, seed 0: fit on the other 90%, score the cut) and the
chosen ones are refitted on the whole training part and scored once on the test part.
ImplicitALS gets the ratings too (its default ``targets="values"`` pulls each pair's score
to its rating over the mean).
EASE (Steck 2019; lambda chosen from LAMBDAS the same way) runs in the same script as
the reference.

    MFCORE_DATA=/path/to/data python benchmarks/ials_topn.py [ml100k] [ml1m]
"""
import os
import sys
import time
import warnings

import numpy as np

import mfcore
from mfcore.metrics import ranking_metrics

#: the validation grid of ImplicitALS (k=64, 15 iterations, 3 CG steps; the defaults first)
GRID = [{"unobserved_weight": w, "reg": r} for w, r in
        ((0.3, 8.0), (0.3, 5.0), (0.3, 12.0), (0.2, 8.0), (0.5, 8.0))]
LAMBDAS = (100.0, 250.0, 500.0, 1000.0)


def load(name):
    """(train, test) triples of (users, items, ratings)."""
    if name == "ml100k":
        folder = os.path.dirname(mfcore.datasets.movielens_path("ml-100k", download=False))
        parts = [mfcore.read_ratings(os.path.join(folder, f)) for f in ("u1.base", "u1.test")]
        return [tuple(f[c].to_numpy() for c in ("user", "item", "rating")) for f in parts]
    from sklearn.model_selection import train_test_split
    frame = mfcore.datasets.movielens("ml-1m", download=False)
    train, rest = train_test_split(np.arange(len(frame)), test_size=0.2, random_state=888)
    _, test = train_test_split(rest, test_size=0.5, random_state=0)
    cols = [frame[c].to_numpy() for c in ("user", "item", "rating")]
    return [tuple(c[idx] for c in cols) for idx in (train, test)]


def validation_cut(train, seed=0):
    held = np.random.default_rng(seed).random(len(train[2])) < 0.1
    return tuple(a[~held] for a in train), tuple(a[held] for a in train)


def ease(train, lam):
    """EASE as a factor model (ranking_metrics needs one): a user's factors are its row of
    the who-rated-what matrix X, an item's are its column of B = I - P diagMat(1 / diag P),
    P = (X^T X + lam I)^-1, so p_u . q_i is EASE's score."""
    model = mfcore.ImplicitALS(k=1, iterations=0).fit(train[0], train[1])
    n_users, n_items = len(model.user_map_), len(model.item_map_)
    X = np.zeros((n_users, n_items))
    X[np.repeat(np.arange(n_users), np.diff(model.seen_indptr_)), model.seen_items_] = 1.0
    P = np.linalg.inv(X.T @ X + lam * np.eye(n_items))
    B = -P / np.diag(P)
    np.fill_diagonal(B, 0.0)
    model.user_factors_, model.item_factors_ = X.astype(np.float32), B.T.astype(np.float32)
    model.user_bias_, model.item_bias_ = np.zeros(n_users, np.float32), np.zeros(n_items, np.float32)
    return model


def score(model, test):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ranking_metrics(model, *test, k=10, threshold=4.0)


def run(name):
    train, test = load(name)
    fit, val = validation_cut(train)
    print(f"{name}: {len(train[2]):,} training ratings, {len(test[2]):,} test ratings; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    best = max(LAMBDAS, key=lambda lam: score(ease(fit, lam), val)["ndcg"])
    start = time.perf_counter()
    res = score(ease(train, best), test)
    print(f"  EASE lambda={best:g} (validation)       test NDCG@10 {res['ndcg']:.4f}  "
          f"recall@10 {res['recall']:.4f}  {time.perf_counter() - start:.1f} s", flush=True)
    found = []
    for params in GRID:
        ndcg = score(mfcore.ImplicitALS(**params).fit(*fit), val)["ndcg"]
        found.append((ndcg, params))
        print(f"  ImplicitALS {params}: validation NDCG@10 {ndcg:.4f}", flush=True)
    chosen = max(found, key=lambda t: t[0])[1]
    for label, params in (("defaults", {}), ("validation-chosen", chosen)):
        start = time.perf_counter()
        model = mfcore.ImplicitALS(**params).fit(*train)
        seconds = time.perf_counter() - start
        res = score(model, test)
        print(f"  ImplicitALS {label} {params}: test NDCG@10 {res['ndcg']:.4f}  recall@10 "
              f"{res['recall']:.4f}  coverage {res['coverage']:.3f}  fit {seconds:.1f} s",
              flush=True)


if __name__ == "__main__":
    for dataset in sys.argv[1:] or ("ml100k", "ml1m"):
        run(dataset)
