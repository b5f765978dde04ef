"""Accuracy metrics for rating prediction, and ranking metrics for top-N recommendation."""
import numpy as np

from . import recommend as _recommend
from .data import as_ratings, check_lengths, to_numpy
from .ids import factorize, normalize_ids, sorted_unique
from .params import is_real

__all__ = ["rmse", "mae", "mse", "ranking_metrics", "top_n_metrics", "hit_metrics"]


def _pair(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.size} != {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("cannot compute a metric over zero ratings")
    return y_true, y_pred


def mse(y_true, y_pred):
    """Mean squared error.

    Examples
    --------
    >>> from mfcore.metrics import mse
    >>> mse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    1.3333333333333333
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean((y_true - y_pred) ** 2))


def rmse(y_true, y_pred):
    """Root mean squared error.

    Examples
    --------
    >>> from mfcore.metrics import rmse
    >>> rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    1.1547005383792515
    """
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true, y_pred):
    """Mean absolute error.

    Examples
    --------
    >>> from mfcore.metrics import mae
    >>> mae([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    0.6666666666666666
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


# --- ranking metrics --------------------------------------------------------------

#: Users ranked per call of ``recommend`` in ``top_n_metrics`` (and so per call of the
#: top-N kernel in ``ranking_metrics``): memory stays O(BATCH_SIZE x k) for any user count.
BATCH_SIZE = 4096


def _per_user(hits, n_relevant, k):
    """Per-user precision, recall, NDCG, AP and hit at ``k`` (arrays; see ``hit_metrics``)."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    n_hits = hits.sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k).astype(np.int64) - 1]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return {
        "precision": n_hits / k,
        "recall": n_hits / n_relevant,
        "ndcg": (hits @ discount) / ideal,
        "map": (precision_at * hits).sum(axis=1) / np.minimum(n_relevant, k),
        "hit_rate": (n_hits > 0).astype(np.float64),
    }


def hit_metrics(hits, n_relevant, k):
    """Mean ranking metrics from a hit matrix; every row is one evaluated user.

    ``hits`` (users x k, bool): whether the item at each rank is relevant
    (padded ranks are misses); ``n_relevant``: relevant items per user (> 0).
    Per user, with h hits among the top k and R relevant items:

    * precision@k = h / k;  recall@k = h / R;  hit rate: 1 if h > 0
    * NDCG@k = sum_{hit ranks j} 1/log2(j + 1) over the same sum for min(k, R) hits at the top
    * MAP@k: AP@k = sum_{hit ranks j} precision@j / min(k, R)

    (ranks j counted from 1); each is averaged over users.

    Examples
    --------
    >>> import numpy as np
    >>> from mfcore.metrics import hit_metrics
    >>> hits = np.array([[True, False, True], [False, False, False]])   # two users, top 3
    >>> result = hit_metrics(hits, np.array([2, 1]), 3)
    >>> result["hit_rate"], result["recall"]
    (0.5, 0.5)
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
    return {name: float(np.mean(v)) for name, v in _per_user(hits, n_relevant, k).items()}


def _check_threshold(threshold):
    if not is_real(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def _relevant_pairs(users, item_rows, ratings, threshold, n_items):
    """(evaluated user ids, sorted distinct keys ``position * width + item row``, width)."""
    relevant = ratings >= threshold
    eval_ids, pos = factorize(users[relevant])
    width = max(n_items, int(item_rows.max(initial=0)) + 1)  # past every row recommend returns
    keys = sorted_unique(pos.astype(np.int64) * width + item_rows[relevant])
    if len(eval_ids) == 0:
        raise ValueError("no user to evaluate: the test data has no relevant rating "
                         f"(none >= threshold {threshold:g})")
    return eval_ids, keys, width


def top_n_metrics(recommend, users, items, ratings, n_items, k=10, threshold=4.0,
                  batch_size=BATCH_SIZE):
    """The top-N protocol for any recommender whose items are integer rows 0..n_items-1.

    ``users``, ``items``, ``ratings``: held-out pairs; users are any ids, items
    integer rows >= 0 (rows >= ``n_items``, e.g. items the recommender does
    not know, count as relevant but can never be recommended). Relevant: a
    pair rated ``>= threshold`` (a repeated pair counts once); evaluated: every
    user with a relevant pair. ``recommend(user_ids)`` gets blocks of at most
    ``batch_size`` evaluated user ids and returns an int array
    (len(user_ids), k) of item rows, best first, padded with -1; memory stays
    O(batch_size x k). Returns the means of ``hit_metrics`` over the
    evaluated users, ``coverage`` (distinct items recommended / ``n_items``),
    ``k``, ``threshold`` and ``n_users``. Raises ``ValueError`` when no
    held-out rating is relevant or ``k`` exceeds ``n_items``.

    >>> import numpy as np
    >>> everyone_gets_0_1 = lambda ids: np.tile([0, 1], (len(ids), 1))
    >>> m = top_n_metrics(everyone_gets_0_1, ["a", "b"], [1, 2], [5, 4], n_items=3, k=2)
    >>> m["precision"], m["recall"], m["n_users"], round(m["coverage"], 3)
    (0.25, 0.5, 2, 0.667)
    """
    k = _recommend.check_n(k, "k")
    n_items = _recommend.check_n(n_items, "n_items")
    batch_size = _recommend.check_n(batch_size, "batch_size")
    threshold = _check_threshold(threshold)
    if k > n_items:
        raise ValueError(f"k={k} exceeds the {n_items} items of the catalogue: every list "
                         "would be padded, and precision@k could not reach 1")
    ratings = as_ratings(ratings, np.float64)
    users = normalize_ids(to_numpy(users), "users")
    item_rows = np.asarray(to_numpy(items))
    check_lengths(users=users, items=item_rows, ratings=ratings)
    if item_rows.dtype.kind not in "iu" or (item_rows < 0).any():
        raise ValueError("items must be integer item rows >= 0")
    eval_ids, keys, width = _relevant_pairs(users, item_rows.astype(np.int64), ratings, threshold,
                                            n_items)
    n_relevant = np.bincount(keys // width, minlength=len(eval_ids))
    per_user = {}
    recommended = np.zeros(n_items, dtype=bool)
    for start in range(0, len(eval_ids), batch_size):
        block = eval_ids[start:start + batch_size]
        rows = np.asarray(recommend(block))
        if rows.shape != (len(block), k) or rows.dtype.kind not in "iu":
            raise ValueError(f"recommend returned {rows.dtype} of shape {rows.shape}, expected "
                             f"integer item rows of shape ({len(block)}, {k})")
        valid = (rows >= 0) & (rows < n_items)
        wanted = (np.arange(start, start + len(block), dtype=np.int64)[:, None] * width
                  + np.where(valid, rows, 0))
        found = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        hits = valid & (keys[found] == wanted)
        recommended[rows[valid]] = True
        for name, values in _per_user(hits, n_relevant[start:start + len(block)], k).items():
            per_user.setdefault(name, []).append(values)
    result = {name: float(np.mean(np.concatenate(v))) for name, v in per_user.items()}
    result.update(coverage=float(recommended.mean()), k=k, threshold=threshold,
                  n_users=int(len(eval_ids)))
    return result


def ranking_metrics(model, users, items, ratings, k=10, threshold=4.0, exclude_seen=True,
                    rank_by=None, batch_size=BATCH_SIZE):
    """Precision, recall, NDCG, MAP and hit rate at ``k``, and catalogue coverage, of a model.

    The protocol (``top_n_metrics``): relevant means a held-out (user, item)
    pair rated ``>= threshold``; every held-out user with a relevant pair is
    evaluated on the model's top-``k`` (``model.recommend`` with ``rank_by``:
    every item of the model is a candidate, less the user's training items
    when ``exclude_seen``). Users unknown to the model get the popularity fallback
    and are counted in ``unknown_users``; relevant items unknown to the model,
    or rated by the user in training (with ``exclude_seen``), count in recall's
    denominator but cannot be hit. Coverage: distinct items recommended to the
    evaluated users over the items in the model. The top-N kernel ranks
    ``batch_size`` users per call, in parallel: memory O(batch_size x k), and
    all 6,040 users of ML-1M take well under a second.

    Bad input: ``k`` above the number of items, no relevant held-out rating, or
    a non-finite ``threshold`` raise ``ValueError``.

    >>> import mfcore
    >>> model = mfcore.ALS(k=2, iterations=3).fit([1, 1, 2, 2, 3], [10, 11, 10, 12, 11],
    ...                                           [5, 3, 4, 2, 4])
    >>> m = ranking_metrics(model, [1, 3], [12, 12], [5, 4], k=1)
    >>> m["n_users"], m["k"]
    (2, 1)
    """
    model._check_fitted()
    model = model._snapshot()  # one fitted state throughout (see FactorModel's thread safety)
    _recommend.rank_rule(model, rank_by)
    items = normalize_ids(to_numpy(items), "items")
    n_items = len(model.item_map_)
    item_rows = model.item_map_.lookup(items, "items").astype(np.int64)
    unknown = item_rows < 0  # each unknown raw id its own row past the catalogue
    item_rows[unknown] = n_items + factorize(items[unknown])[1]
    n_unknown_users = []

    def recommend(user_ids):
        u = model.user_map_.lookup(user_ids, "users")
        n_unknown_users.append(int((u < 0).sum()))
        return _recommend.top_rows(model, u, k, exclude_seen, rank_by=rank_by)[0]

    result = top_n_metrics(recommend, users, item_rows, ratings, n_items, k, threshold,
                           batch_size)
    result["unknown_users"] = sum(n_unknown_users)
    return result
