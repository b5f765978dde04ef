"""Cross-validation: fit a fresh copy of a model on each fold and score it on the held-out part."""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .data import as_frame, rating_arrays
from .split import kfold

if TYPE_CHECKING:

    from .estimators.base import Estimator

__all__ = ["cross_validate"]


def _triple(part, columns):
    """(users, items, ratings) of a fold's part: a table or a triple of arrays."""
    if isinstance(part, (tuple, list)):
        return tuple(part[:3])
    return rating_arrays(part, columns=columns, what="cross_validate")[:3]


def cross_validate(model: Estimator, data: Any,
                   cv: int | Iterable[tuple[Any, Any]] = 5, *, seed: int = 0, verbose: bool = False,
                   columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Fit a copy of ``model`` on each fold of ``data``; return per-fold scores with mean and std.

    ``data`` is a table of ratings or a (users, items, ratings) triple, as for
    the ``mfcore.split`` functions (``columns=`` names a table's columns). ``cv`` is
    the number of random folds (``mfcore.split.kfold`` with ``seed``) or an
    iterable of (train, test) DataFrame pairs, e.g. from ``per_user_split`` or
    ``temporal_split``. ``model`` itself is not fitted: each fold trains
    ``type(model)(**model.get_params())``.

    Returns a dict: ``test_rmse``, ``test_mae``, ``fit_time`` (arrays, one
    entry per fold), ``mean_test_rmse``, ``std_test_rmse``, ``mean_test_mae``,
    ``std_test_mae`` (floats), and ``unknown`` (test pairs per fold whose user
    or item was not in that fold's training part; they are predicted with the
    model's fallback).

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> result = mfcore.cross_validate(mfcore.ALS(k=4, iterations=5), ratings, cv=3)
    >>> len(result["test_rmse"]), bool(result["mean_test_rmse"] > 0)
    (3, True)
    """
    if isinstance(cv, (int, np.integer)):
        data, columns = as_frame(data, columns, optional=())
        folds = kfold(data, cv, seed=seed, columns=columns)
    else:
        folds = cv
    rows = []
    for number, (train, test) in enumerate(folds, start=1):
        fold_model = type(model)(**model.get_params())
        start = time.perf_counter()
        fold_model.fit(*_triple(train, columns))
        seconds = time.perf_counter() - start
        users, items, ratings = _triple(test, columns)
        scores = fold_model.evaluate(users, items, ratings)
        known_u = fold_model.user_map_.lookup(users) >= 0
        known_i = fold_model.item_map_.lookup(items) >= 0
        rows.append((scores["rmse"], scores["mae"], seconds, int((~(known_u & known_i)).sum())))
        if verbose:
            print(f"fold {number}: RMSE {scores['rmse']:.4f}  MAE {scores['mae']:.4f}  "
                  f"fit {seconds:.2f} s")
    if not rows:
        raise ValueError("cv gave no folds")
    rmse, mae, fit_time, unknown = (np.array(col) for col in zip(*rows))
    return {"test_rmse": rmse, "test_mae": mae, "fit_time": fit_time, "unknown": unknown,
            "mean_test_rmse": float(rmse.mean()), "std_test_rmse": float(rmse.std()),
            "mean_test_mae": float(mae.mean()), "std_test_mae": float(mae.std())}
