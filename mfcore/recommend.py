"""Recommending with a fitted model: top-N items, similar items/users, the seen items.

``FactorModel.recommend``, ``similar_items`` and ``similar_users`` are thin
methods that call the functions here (any object with the fitted arrays works). Ranking runs in the parallel
partial-selection kernel ``mfcore._kernels.recommend.top_n``; this module maps raw ids
to rows, gathers the query vectors and candidate columns, and maps the result
back to raw ids.

``exclude_seen`` skips the items each user rated in training: the model's
seen-items CSR (``seen_indptr_``, ``seen_items_``; built by ``mfcore.data``).
"""

import numpy as np

from ._kernels import recommend as _recommend
from .errors import Message, Setting, UnknownIdError, UnknownIdWarning, warn
from .ids import normalize_ids, plain, sorted_unique

__all__ = ["recommend", "similar", "top_rows", "check_n", "rank_rule", "RANK_BY", "CHOICE_WEIGHT"]

UNKNOWN_USER_POLICIES = ("fallback", "error")

#: What ``recommend`` can rank by: the model's prediction, or a choice model that weighs
#: it with how often the item was chosen (rated) in training (see ``FactorModel.recommend``).
RANK_BY = ("prediction", "choice")

#: rank_by="choice" scores ``prediction + CHOICE_WEIGHT * rating_scale_ * log(1 + n_i)``.
#: Chosen on validation data with SGD, ALS, BayesianMF and BayesianMF(implicit=True) at
#: their defaults: the ML-1M notebook split's validation part preferred 1 (NDCG@10 0.114-0.121
#: over 1, 1.5, 2, 3, 5; 1.5 within 0.001), a 10% carve of ML-100K u1.base preferred 2
#: (0.116-0.121; 1 lost 0.004-0.006); every weight beat the most-rated items on both.
CHOICE_WEIGHT = 1.5


# --- top-N ----------------------------------------------------------------------

def check_n(n, name="n"):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
    return int(n)


def _rows(idmap, raw, name):
    """(rows, normalized raw ids, whether ``raw`` was a single id)."""
    single = np.ndim(raw) == 0
    arr = normalize_ids(np.array([raw], dtype=object) if single else raw, name)
    return idmap.lookup(arr, name), arr, single


def _known_rows(idmap, raw, name):
    """``_rows`` for ids that must all be known: ``UnknownIdError`` names the first that is not."""
    rows, arr, single = _rows(idmap, raw, name)
    if (rows < 0).any():
        raise UnknownIdError(f"{name}: {int((rows < 0).sum())} id(s) unknown to the model "
                             f"(e.g. {plain(arr[rows < 0][0])!r})")
    return rows, single


def _candidate_columns(model, items):
    """(packed factors, bias, item rows) of the candidate items, rows ascending."""
    Q, bi = model.item_factors_, model.item_bias_
    if items is None:
        return _recommend.pack_columns(Q), bi, np.arange(len(bi), dtype=np.int32)
    rows, _ = _known_rows(model.item_map_, [items] if np.ndim(items) == 0 else items, "items")
    rows = sorted_unique(rows).astype(np.int32)
    return _recommend.pack_columns(Q[rows]), np.ascontiguousarray(bi[rows]), rows


def _fill_value(idmap):
    return "" if idmap.kind == "str" else -1


def _to_raw(idmap, rows, scores, single):
    """Map result rows to raw ids; a single query drops the padding, a batch keeps it."""
    if single:
        keep = rows[0] >= 0
        return idmap.ids[rows[0][keep]], scores[0][keep]
    ids = idmap.ids[np.maximum(rows, 0)] if len(idmap) else np.empty(rows.shape, idmap.ids.dtype)
    ids[rows < 0] = _fill_value(idmap)
    return ids, scores


def popular_rows(model, col_items, n):
    """The ``n`` most popular of the candidate item rows: the most rated in training (ties:
    the larger bias, then the lower row); by item bias alone for a model without counts."""
    bias = model.item_bias_[col_items]
    counts = model.item_counts_
    keys = (col_items, -bias) if counts is None else (col_items, -bias, -counts[col_items])
    return col_items[np.lexsort(keys)[:n]]


def rank_rule(model, rank_by):
    """The checked ranking rule of ``model`` for ``rank_by`` (None: the model's default,
    ``default_rank_by`` of its class, or "prediction" when it keeps no item counts)."""
    counts = model.item_counts_
    if rank_by is None:
        rank_by = getattr(model, "default_rank_by", "prediction") if counts is not None else "prediction"
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {RANK_BY}, got {rank_by!r}")
    if rank_by == "choice" and counts is None:
        raise ValueError("rank_by='choice' needs the training rating counts of the items, which "
                         "this model does not keep (saved by an older mfcore): pass "
                         "rank_by='prediction' or refit")
    return rank_by


def _column_shift(model, col_items, rank_by):
    """What rank_by adds to the candidates' biases: 0, or the choice model's popularity term."""
    if rank_by == "prediction":
        return 0.0
    return CHOICE_WEIGHT * model.rating_scale_ * np.log1p(model.item_counts_[col_items])


def top_rows(model, u, n, exclude_seen=True, items=None, rank_by=None):
    """Best ``n`` item rows and scores for user rows ``u`` (-1: unknown, given the most
    popular items, see ``popular_rows``).

    Scores are ``mu + b_u + b_i + p_u . q_i`` (unclipped), plus the popularity term of
    ``rank_by="choice"`` (``rank_rule``). Padding: row -1, score NaN. At most as many
    columns as there are candidates: an ``n`` beyond the catalogue allocates nothing more.
    """
    rank_by = rank_rule(model, rank_by)
    u = np.ascontiguousarray(u, dtype=np.int32)
    P, dtype = model.user_factors_, model.user_factors_.dtype
    known = u >= 0
    queries = np.zeros((len(u), P.shape[1]), dtype=dtype)
    queries[known] = P[u[known]]
    offsets = np.full(len(u), model.global_mean_, dtype=dtype)
    offsets[known] += model.user_bias_[u[known]]
    packed, col_bias, col_items = _candidate_columns(model, items)
    n = min(n, len(col_items))  # (more than the candidates would be padding alone)
    col_bias = col_bias + _column_shift(model, col_items, rank_by)
    start = np.zeros(len(u), dtype=np.int64)
    end = np.zeros(len(u), dtype=np.int64)
    seen = np.empty(0, dtype=np.int32)
    if exclude_seen:
        if model.seen_indptr_ is None:
            raise ValueError(Message("this model holds no training interactions (saved with "
                                     "seen_items=False or by an older mfcore, or still training "
                                     "from a RatingChunks source, which builds them after its "
                                     "last epoch), so it cannot exclude seen items: pass {0}, "
                                     "or refit", Setting("exclude_seen", False)))
        start[known] = model.seen_indptr_[u[known]]
        end[known] = model.seen_indptr_[u[known] + 1]
        seen = model.seen_items_
    out_rows = np.empty((len(u), n), dtype=np.int32)
    out_scores = np.empty((len(u), n), dtype=dtype)
    _recommend.top_n(queries, offsets, packed, np.ascontiguousarray(col_bias, dtype=dtype),
                     col_items, start, end, seen, out_rows, out_scores,
                     model._threads())
    if not known.all():  # their scores stay the predicted ratings mu + b_i
        top = popular_rows(model, col_items, n)
        out_rows[~known], out_scores[~known] = -1, np.nan
        out_rows[~known, :len(top)] = top
        out_scores[~known, :len(top)] = (model.global_mean_ + model.item_bias_[top]
                                          + _column_shift(model, top, rank_by))
    return out_rows, out_scores


def recommend(model, users, n=10, exclude_seen=None, items=None, unknown="fallback",
              rank_by=None, as_frame=False):
    """Top-``n`` items for one user or a batch; see ``FactorModel.recommend``."""
    n = check_n(n)
    rank_rule(model, rank_by)
    if exclude_seen is None:  # re-ranking a given list ranks all of it
        exclude_seen = items is None
    if unknown not in UNKNOWN_USER_POLICIES:
        raise ValueError(f"unknown must be one of {UNKNOWN_USER_POLICIES}, got {unknown!r}")
    u, raw, single = _rows(model.user_map_, users, "users")
    n_unknown = int((u < 0).sum())
    if n_unknown:
        message = (f"{n_unknown} user id(s) unknown to the model among {len(u)} "
                   f"(e.g. {plain(raw[u < 0][0])!r})")
        if unknown == "error":
            raise UnknownIdError(message)
        fallback = ("the most-rated items" if model.item_counts_ is not None
                    else "the items with the largest bias (this model keeps no rating counts)")
        warn(f"{message}; recommended {fallback}", UnknownIdWarning)
    rows, scores = top_rows(model, u, n, exclude_seen, items, rank_by)
    if as_frame:
        return long_frame(raw, model.item_map_, rows, scores)
    return _to_raw(model.item_map_, rows, scores, single)


def long_frame(users, item_map, rows, scores):
    """Top-n lists as a long pandas DataFrame: columns user, rank (1 = best), item, score;
    one row per recommendation (no padding), users in the order given."""
    import pandas as pd

    keep = rows >= 0
    user_at, rank_at = np.nonzero(keep)
    return pd.DataFrame({"user": users[user_at], "rank": rank_at + 1,
                         "item": item_map.ids[rows[keep]], "score": scores[keep]})


# --- similar items / users ---------------------------------------------------------

def similar(model, kind, ids, n=10):
    """Most cosine-similar ``kind`` ("item" or "user") rows by factors; see
    ``FactorModel.similar_items``."""
    n = check_n(n)
    idmap = getattr(model, f"{kind}_map_")
    F = getattr(model, f"{kind}_factors_")
    rows, single = _known_rows(idmap, ids, f"{kind}s")
    n = min(n, max(len(F) - 1, 0))  # (each row's own is left out)
    norms = np.linalg.norm(F.astype(np.float64), axis=1)
    unit = (F / np.where(norms > 0, norms, 1.0)[:, None]).astype(F.dtype)  # zero rows stay zero
    start = np.arange(len(rows), dtype=np.int64)
    out_rows = np.empty((len(rows), n), dtype=np.int32)
    out_scores = np.empty((len(rows), n), dtype=F.dtype)
    _recommend.top_n(np.ascontiguousarray(unit[rows]), np.zeros(len(rows), F.dtype),
                     _recommend.pack_columns(unit), np.zeros(len(F), F.dtype),
                     np.arange(len(F), dtype=np.int32), start, start + 1,
                     np.ascontiguousarray(rows, dtype=np.int32), out_rows, out_scores,
                     model._threads())
    return _to_raw(idmap, out_rows, out_scores, single)
