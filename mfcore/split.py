"""Reproducible splits of a rating DataFrame.

Every function takes a table of ratings, as ``fit`` does: a DataFrame (columns
``user``, ``item``, ``rating``, and ``timestamp`` for temporal splits, as
``read_ratings`` returns, or their usual aliases such as ``userId``/``movieId``,
or named by ``columns=``), a pyarrow Table, a polars DataFrame, or a
(users, items, ratings[, timestamps]) sequence of arrays. It returns the parts
as DataFrames (a pandas input's parts keep its columns, index labels and row
order; any other input becomes a DataFrame with ``read_ratings``' column
names), so that the parts are disjoint and together are exactly the input.
``indices=True`` returns integer row positions instead. ``seed`` is an int,
None or a ``numpy.random.Generator``.

* ``train_test_split``: random holdout of a fraction or a count of ratings.
* ``train_val_test_split``: random train / validation / test (e.g. 80/10/10).
* ``kfold``: k random folds; yields (train, test) k times.
* ``per_user_split``: a fraction or a count of each user's ratings.
* ``temporal_split``: a global time cut-off, or each user's last n ratings.

Examples
--------
>>> import mfcore
>>> from mfcore.split import train_test_split
>>> ratings = mfcore.datasets.synthetic(n_users=50, n_items=20, n_ratings=400, seed=0)
>>> train, test = train_test_split(ratings, test_size=0.2, seed=0)
>>> len(train), len(test)
(320, 80)
"""
from __future__ import annotations

import numbers

import numpy as np

from .data import as_frame

__all__ = ["train_test_split", "train_val_test_split", "kfold", "per_user_split",
           "temporal_split"]


def _check_frame(data, columns, need=("user", "item", "rating")):
    """(the data as a DataFrame, {canonical name: its column}) of a non-empty table."""
    frame, names = as_frame(data, columns, need, optional=(), what="data")
    if len(frame) == 0:
        raise ValueError("data is empty: nothing to split")
    return frame, names


def _count(size, n, name):
    """A fraction in (0, 1) or a count in [1, n - 1] as a number of rows."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        count = int(size)
    elif isinstance(size, numbers.Real) and not isinstance(size, bool) and 0 < size < 1:
        count = int(round(size * n))
    else:
        raise ValueError(f"{name} must be a fraction in (0, 1) or a count of ratings, got {size!r}")
    if not 1 <= count <= n - 1:
        raise ValueError(f"{name}={size!r} leaves {count} of {n} ratings for it; "
                         "each part needs at least one rating")
    return count


def _parts(data, indices, positions):
    """The parts as sorted positions, or as DataFrames in input order."""
    positions = [np.sort(p) for p in positions]
    if indices:
        return tuple(positions)
    return tuple(data.iloc[p] for p in positions)


def train_test_split(data, test_size=0.2, *, seed=0, indices=False, columns=None):
    """Random (train, test): ``test_size`` is a fraction or a count of the ratings.

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> train, test = mfcore.split.train_test_split(ratings, test_size=0.2, seed=0)
    >>> len(train), len(test)
    (2400, 600)
    """
    data, _ = _check_frame(data, columns)
    n = len(data)
    n_test = _count(test_size, n, "test_size")
    perm = np.random.default_rng(seed).permutation(n)
    return _parts(data, indices, [perm[n_test:], perm[:n_test]])


def train_val_test_split(data, val_size=0.1, test_size=0.1, *, seed=0, indices=False,
                         columns=None):
    """Random (train, validation, test), e.g. the notebook's 80/10/10 protocol.

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> train, val, test = mfcore.split.train_val_test_split(ratings, 0.1, 0.1, seed=0)
    >>> len(train), len(val), len(test)
    (2400, 300, 300)
    """
    data, _ = _check_frame(data, columns)
    n = len(data)
    n_val = _count(val_size, n, "val_size")
    n_test = _count(test_size, n, "test_size")
    if n_val + n_test >= n:
        raise ValueError(f"val_size={val_size!r} and test_size={test_size!r} leave no training data")
    perm = np.random.default_rng(seed).permutation(n)
    return _parts(data, indices,
                  [perm[n_val + n_test:], perm[n_test:n_test + n_val], perm[:n_test]])


def kfold(data, n_splits=5, *, seed=0, indices=False, columns=None):
    """Yield (train, test) for each of ``n_splits`` random folds; each rating is tested once.

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> [len(test) for train, test in mfcore.split.kfold(ratings, 3, seed=0)]
    [1000, 1000, 1000]
    """
    data, _ = _check_frame(data, columns)
    n = len(data)
    if not isinstance(n_splits, numbers.Integral) or isinstance(n_splits, bool) \
            or not 2 <= n_splits <= n:
        raise ValueError(f"n_splits must be an integer in [2, {n}], got {n_splits!r}")
    perm = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(perm, int(n_splits))
    for k, test in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != k])
        yield _parts(data, indices, [train, test])


def _group_rank(codes, order):
    """Rank of each row within its group, following ``order`` (rows sorted by group, then key)."""
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, sizes)
    return rank


def _per_user_test_counts(codes, size, min_train, name):
    counts = np.bincount(codes)
    if isinstance(size, numbers.Integral) and not isinstance(size, bool) and size >= 1:
        want = np.full(len(counts), int(size))
    elif isinstance(size, numbers.Real) and not isinstance(size, bool) and 0 < size < 1:
        want = np.rint(size * counts).astype(np.int64)
    else:
        raise ValueError(f"{name} must be a fraction in (0, 1) or a count >= 1, got {size!r}")
    if not isinstance(min_train, numbers.Integral) or min_train < 0:
        raise ValueError(f"min_train must be an integer >= 0, got {min_train!r}")
    return np.clip(want, 0, np.maximum(counts - min_train, 0))


def _user_codes(users):
    _, codes = np.unique(np.asarray(users), return_inverse=True)
    return codes.ravel()


def per_user_split(data, test_size=0.2, *, min_train=1, seed=0, indices=False, columns=None):
    """(train, test) holding out ``test_size`` of each user's ratings, chosen at random.

    ``test_size`` is a fraction of each user's ratings (rounded) or a count per
    user; a user always keeps at least ``min_train`` ratings in train, so users
    with few ratings may have fewer (or no) test ratings.

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> train, test = mfcore.split.per_user_split(ratings, test_size=2, seed=0)
    >>> bool((test.groupby("user").size() <= 2).all())
    True
    """
    data, names = _check_frame(data, columns)
    n = len(data)
    codes = _user_codes(data[names["user"]])
    n_test = _per_user_test_counts(codes, test_size, min_train, "test_size")
    key = np.random.default_rng(seed).random(n)
    rank = _group_rank(codes, np.lexsort((key, codes)))
    test = rank < n_test[codes]
    return _parts(data, indices, [np.flatnonzero(~test), np.flatnonzero(test)])


def temporal_split(data, *, cutoff=None, test_size=None, last_n=None, min_train=1, indices=False,
                   columns=None):
    """(train, test) by time; give exactly one of ``cutoff``, ``test_size`` or ``last_n``.

    * ``cutoff``: ratings with ``timestamp >= cutoff`` are test (a global cut).
    * ``test_size``: the latest fraction (or count) of all ratings are test.
    * ``last_n``: each user's ``last_n`` latest ratings are test, keeping at
      least ``min_train`` of each user's ratings in train.

    Ties in time are broken by row order, so the split is deterministic.

    Examples
    --------
    >>> import pandas as pd
    >>> from mfcore.split import temporal_split
    >>> ratings = pd.DataFrame({"user": [1, 1, 1, 2, 2], "item": [1, 2, 3, 1, 3],
    ...                         "rating": [4.0, 3.0, 5.0, 2.0, 4.0], "timestamp": [10, 20, 30, 15, 25]})
    >>> train, test = temporal_split(ratings, last_n=1)
    >>> test[["user", "item", "timestamp"]].values.tolist()
    [[1, 3, 30], [2, 3, 25]]
    """
    data, names = _check_frame(data, columns, ("user", "item", "rating", "timestamp"))
    n = len(data)
    given = [name for name, v in (("cutoff", cutoff), ("test_size", test_size),
                                  ("last_n", last_n)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of cutoff, test_size or last_n (got {given or 'none'})")
    time = np.asarray(data[names["timestamp"]])
    if cutoff is not None:
        test = time >= cutoff
        if test.all() or not test.any():
            raise ValueError(f"cutoff={cutoff!r} puts {'every' if test.any() else 'no'} rating "
                             f"in test (timestamps run from {time.min()} to {time.max()})")
    elif test_size is not None:
        n_test = _count(test_size, n, "test_size")
        order = np.argsort(time, kind="stable")
        test = np.zeros(n, dtype=bool)
        test[order[n - n_test:]] = True
    else:
        codes = _user_codes(data[names["user"]])
        n_test = _per_user_test_counts(codes, last_n, min_train, "last_n")
        # rank from the latest: sort by user, time, row; count back from each user's end
        rank = _group_rank(codes, np.lexsort((np.arange(n), time, codes)))
        from_end = np.bincount(codes)[codes] - 1 - rank
        test = from_end < n_test[codes]
    return _parts(data, indices, [np.flatnonzero(~test), np.flatnonzero(test)])
