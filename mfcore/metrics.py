"""Accuracy metrics for rating prediction, and ranking metrics for top-N recommendation."""
import numpy as np

from . import recommend as _recommend
from .data import as_ratings, check_lengths, to_numpy
from .ids import factorize, normalize_ids, sorted_unique

__all__ = ["rmse", "mae", "mse", "ranking_metrics", "hit_metrics"]


def _pair(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.size} != {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("cannot compute a metric over zero ratings")
    return y_true, y_pred


def mse(y_true, y_pred):
    """Mean squared error."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean((y_true - y_pred) ** 2))


def rmse(y_true, y_pred):
    """Root mean squared error."""
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true, y_pred):
    """Mean absolute error."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


# --- ranking metrics --------------------------------------------------------------

def hit_metrics(hits, n_relevant, k):
    """Mean ranking metrics from a hit matrix; every row is one evaluated user.

    ``hits`` (users x k, bool): whether the item at each rank is relevant
    (padded ranks are misses); ``n_relevant``: relevant items per user (> 0).
    Per user, with h hits among the top k and R relevant items:

    * precision@k = h / k;  recall@k = h / R;  hit rate: 1 if h > 0
    * NDCG@k = sum_{hit ranks j} 1/log2(j + 1) over the same sum for min(k, R) hits at the top
    * MAP@k: AP@k = sum_{hit ranks j} precision@j / min(k, R)

    (ranks j counted from 1); each is averaged over users.
    """
    hits = np.asarray(hits, dtype=bool)
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    if hits.ndim != 2 or hits.shape[1] != k or len(n_relevant) != len(hits):
        raise ValueError(f"hits must be (users, k={k}) with one n_relevant per user, got "
                         f"{hits.shape} and {n_relevant.shape}")
    if len(hits) == 0:
        raise ValueError("no user to evaluate: the test data has no relevant rating")
    if (n_relevant <= 0).any():
        raise ValueError("every evaluated user needs at least one relevant item")
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    n_hits = hits.sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k).astype(np.int64) - 1]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return {
        "precision": float(np.mean(n_hits / k)),
        "recall": float(np.mean(n_hits / n_relevant)),
        "ndcg": float(np.mean((hits @ discount) / ideal)),
        "map": float(np.mean((precision_at * hits).sum(axis=1) / np.minimum(n_relevant, k))),
        "hit_rate": float(np.mean(n_hits > 0)),
    }


def ranking_metrics(model, users, items, ratings, k=10, threshold=4.0, exclude_seen=True):
    """Precision, recall, NDCG, MAP and hit rate at ``k``, and catalogue coverage, of a model.

    Relevant: a test (user, item) pair rated ``>= threshold``. Evaluated users:
    every test user with at least one relevant item; each gets the model's
    top-``k`` (``Model.recommend``, skipping training items when
    ``exclude_seen``; users unknown to the model get the popularity fallback and
    are counted in ``unknown_users``). Relevant items unknown to the model count
    in recall's denominator but cannot be hit. Coverage: distinct items
    recommended to the evaluated users over the items in the model. See
    ``hit_metrics`` for the formulas. One kernel call ranks all users; the rest
    is vectorized, so all users of ML-10M-sized data take seconds.
    """
    model._check_fitted()
    model = model._snapshot()  # one fitted state throughout (see FactorModel's thread safety)
    k = _recommend.check_n(k, "k")
    if isinstance(threshold, (bool, np.bool_)) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    ratings = as_ratings(ratings, np.float64)
    users = normalize_ids(to_numpy(users), "users")
    items = normalize_ids(to_numpy(items), "items")
    check_lengths(users=users, items=items, ratings=ratings)
    relevant = ratings >= threshold
    eval_ids, pos = factorize(users[relevant])
    pos = pos.astype(np.int64)  # keys below are pos * (items + 1): past int32 on ML-20M
    n_items = len(model.item_map_)
    item_rows = model.item_map_.lookup(items[relevant], "items").astype(np.int64)
    # distinct relevant (user, item) pairs; an unknown item (row -1) is told apart by its raw id
    codes = factorize(items[relevant])[1].astype(np.int64)
    _, first = np.unique(pos * (codes.max(initial=0) + 1) + codes, return_index=True)
    pos, item_rows = pos[first], item_rows[first]
    n_relevant = np.bincount(pos, minlength=len(eval_ids))
    u = model.user_map_.lookup(eval_ids, "users")
    rows, _ = _recommend.top_rows(model, u, k, exclude_seen)
    known = item_rows >= 0
    relevant_keys = np.sort(pos[known] * (n_items + 1) + item_rows[known])
    hits = np.zeros(rows.shape, dtype=bool)
    if len(relevant_keys):
        rec_keys = np.arange(len(eval_ids), dtype=np.int64)[:, None] * (n_items + 1) + rows
        found = np.minimum(np.searchsorted(relevant_keys, rec_keys), len(relevant_keys) - 1)
        hits = (rows >= 0) & (relevant_keys[found] == rec_keys)
    result = hit_metrics(hits, n_relevant, k)
    result["coverage"] = float(len(sorted_unique(rows[rows >= 0])) / n_items)
    result.update(k=k, threshold=float(threshold), n_users=int(len(eval_ids)),
                  unknown_users=int((u < 0).sum()))
    return result

