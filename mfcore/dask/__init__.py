"""Training on a Dask cluster with mfcore's own kernels, giving the model one machine gives.

::

    from dask.distributed import Client
    import dask.dataframe as dd, mfcore, mfcore.dask
    client = Client(...)
    model = mfcore.dask.fit(mfcore.ALS(k=64), dd.read_parquet("ratings/"))

``fit`` returns the ordinary fitted estimator (predict, recommend, save ...).
How it trains (LightGBM's pattern: one long-lived worker-side object per worker,
not a task per block):

1. *Scan*: a task per partition checks its ids and ratings (the local checks,
   errors re-numbered to positions in the whole data) and lists its distinct
   ids; the lists are merged in a tree of tasks into the sorted id maps a local
   fit builds (``IdMap.from_sorted``).
2. *Route*: a task per partition maps its ids to rows and cuts its ratings into
   W user bands and W item bands (contiguous row ranges, W workers); each
   band's pieces travel worker to worker to the band's worker. Raw ratings
   never reach the client or the scheduler.
3. *Shards*: one Dask actor per worker, pinned to it, holds band b of the
   ratings by user and by item for the whole fit, merges duplicates (every
   copy of a pair meets in one band, in its input order, so a merged rating is
   the local one) and builds the estimator's layout of its rows, ordered as the
   local layout orders them.
4. *Loop*: the client runs the estimator's own loop (``driver.run``: history,
   validation, early stopping with best-iteration restore, callbacks,
   ``verbose``) over the solver's trainer (``als.py``, ``bayes.py``, ``sgd.py``):

   * ALS: one call per shard and iteration; the shards exchange each solved
     side among themselves, worker to worker (``Shard.allgather``), and return
     scalars (squared error, penalty, finiteness, seconds). The model reaches
     the client at the end, or after every iteration when a callback needs it;
     shard 0 scores the validation data on its copy of the model (the local
     kernel on the same arrays: the same ``val_rmse``) and every shard keeps its
     bands of early stopping's best iteration;
   * SGD: DSGD over the local block grid, one call per shard and epoch; each
     item group passes from shard to shard along the epoch's schedule; the
     shards send each row's penalty term, which the client weighs as the
     local trainer does (the same penalty bit for bit); the model reaches the
     client at the end, or after every epoch when validation data or a
     callback read it;
   * BayesianMF: as ALS, both sides in float64, plus each rating's residual
     (the sampler's running state) from its item shard to its user shard and
     back; every shard draws the hyperparameters redundantly (counter-based).

   Global statistics are exact (``RatingSummary``: an exact sum, so the mean is
   the local one bit for bit; the sampler's sum of squares added chunk by chunk
   as the local sweep adds it).

The fitted arrays equal a local fit's bit for bit for any number of workers and
partitions: ALS and BayesianMF rows are independent given the other side, each
row sees its ratings in the local order and draws the local random numbers
(counter-based); SGD trains every block of the local grid with the local
kernel, records and order. The histories agree too, except ALS's training SSE
and penalty, sums of the shards' sums (equal up to float rounding). Each history
entry also records ``exchanged_bytes`` (bytes through the client: SGD's penalty terms,
the model read by a callback or SGD's validation), ``shard_seconds`` (the
slowest shard's kernel seconds) and ``peer_bytes`` (what the shards sent each other).

A worker lost at any moment raises ``WorkerLostError`` as soon as the scheduler
drops it (killed, or silent past ``distributed.scheduler.worker-ttl``), and the
estimator keeps the state it had.

Not offered: ``validation_fraction`` (pass ``validation=``), ``warm_start`` and
``partial_fit``.

Needs the ``dask`` extra (``pip install "mfcore[dask]"``); ``import mfcore``
never imports this module.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from distributed import default_client

from .. import params as p
from .. import registry
from ..data import RatingSummary, column_names, validation_rows
from ..errors import WorkerLostError  # noqa: F401 (mfcore.WorkerLostError, importable here too)
from ..estimators import driver
from ..ids import IdMap
from ._cluster import cluster_workers, losses_raised, row_counts
from ._cluster import load as _load
from ._staging import ID_STAGES, check_scans, scan, scan_ids, scan_info, tree_union
from .als import ALSIterations
from .bayes import GibbsSweeps
from .sgd import SGDEpochs

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

    from .._typing import ArrayLike
    from ..estimators.base import Estimator

__all__ = ["fit"]  # (WorkerLostError is mfcore.WorkerLostError, importable here too)

COLUMNS = ("user", "item", "rating")


#: The client-side trainer of each estimator declaring the "dask" capability, by name.
_TRAINERS = {"als": ALSIterations, "sgd": SGDEpochs, "bayes": GibbsSweeps}


# --- the entry point -------------------------------------------------------------------

def _edges(n, w):
    return np.array([b * n // w for b in range(w + 1)], dtype=np.int64)


def _trainer_class(estimator):
    """(the client-side trainer class, the checked parameters) of ``estimator``; refuses
    what ``mfcore.dask.fit`` does not train, saying why."""
    if "dask" not in getattr(estimator, "capabilities", ()):
        trains = [c.__name__ for c in registry.ESTIMATORS.values() if "dask" in c.capabilities]
        raise TypeError(f"mfcore.dask.fit trains {', '.join(trains)}; "
                        f"got {type(estimator).__name__}")
    if not estimator.supports("dask"):
        raise NotImplementedError(f"mfcore.dask.fit does not train {estimator!r} yet (a "
                                  "hyperparameter rules it out): fit it locally")
    params = estimator._checked_params()
    if params["validation_fraction"] is not None:
        raise NotImplementedError("mfcore.dask.fit takes validation=..., not "
                                  "validation_fraction (a split needs the data in one place)")
    if estimator.supports("continue") and params["warm_start"] and estimator._is_fitted():
        raise NotImplementedError("mfcore.dask.fit always fits from scratch (warm_start)")
    return _TRAINERS[estimator.name], params


def _columns_and_workers(ratings, columns, client, workers):
    """The checked (user, item, rating) column names and worker addresses of a fit."""
    named = column_names(ratings.columns, columns, optional=(), what="the ratings")
    columns = tuple(named[c] for c in COLUMNS)
    known = sorted(cluster_workers(client))
    addresses = known if workers is None else list(workers)
    if not addresses:
        raise ValueError("the Dask cluster has no workers")
    unknown = [a for a in addresses if a not in known]
    if unknown or len(set(addresses)) < len(addresses):
        raise ValueError(f"workers must be distinct addresses of this cluster's workers "
                         f"{known}, got {unknown[0] if unknown else addresses!r}")
    return columns, addresses


def _local_validation(validation, columns):
    """A validation Dask DataFrame (small, by assumption) as a local triple; else as given."""
    if validation is not None and hasattr(validation, "to_delayed"):
        with losses_raised("while the validation data were gathered"):
            frame = validation[list(columns)].compute()
        return tuple(frame[c] for c in columns)
    return validation


def _train_on_shards(estimator, trainer_class, cluster, built, bands, summary, plan, params,
                     validation, callback):
    """Adopt the shards' rating summary and seen items into ``estimator`` and run the
    solver's trainer on the cluster, atomically: a failure leaves the estimator as it was."""
    with driver.atomic(estimator) as work:
        work._start_summary(summary, params)
        _, val = validation_rows(summary, validation, None, work.rng_)
        keys = ("user_counts", "item_counts")
        band_rows = [[bands[s][b] + c[key][0] for b, c in enumerate(built)]
                     for s, key in enumerate(keys)]
        band_counts = [[c[key][1] for c in built] for key in keys]
        work._adopt_seen(np.concatenate([b["seen"][0] for b in built]),
                         np.concatenate([b["seen"][1] for b in built]),
                         row_counts(work, band_rows, band_counts)[1])
        trainer = trainer_class(work, cluster, band_rows, band_counts, params, plan,
                                watched=callback is not None, validation=val)
        work._run(trainer, summary.n, params, work.max_epochs(params), val, callback)


def _scan(client, ratings, columns, dtype):
    """Stage 1: the partitions' futures, their offsets in the data, the id maps and their
    futures on every worker; the local fit's error for bad data, ``WorkerLostError`` for
    data lost with a worker."""
    with losses_raised("while the partitions were scanned"):
        parts = client.compute(ratings[list(columns)].to_delayed())
        scans = client.map(scan, parts, columns=columns, dtype=dtype, pure=False)
        offsets = check_scans(client.gather(client.map(scan_info, scans, pure=False)))
        maps = [IdMap.from_sorted(tree_union(client, client.map(scan_ids, scans, name=name,
                                                                   pure=False)), name)
                for name, _ in ID_STAGES]
        return parts, offsets, maps, [client.scatter(m, broadcast=True) for m in maps]


def _require_dask_frame(ratings: Any) -> None:
    """Refuse anything but a Dask DataFrame, saying what to do with a pandas one."""
    if not hasattr(ratings, "to_delayed"):
        kind = type(ratings).__module__.split(".")[0] + "." + type(ratings).__name__
        hint = (": it is in one place already, so fit it with estimator.fit(ratings), or "
                "spread it over the cluster with dask.dataframe.from_pandas(ratings, "
                "npartitions=...)" if hasattr(ratings, "iloc") else "")
        raise TypeError(f"mfcore.dask.fit takes a Dask DataFrame of ratings, got {kind}{hint}")


def fit(estimator: Estimator, ratings: dd.DataFrame,
        validation: tuple[ArrayLike, ArrayLike, ArrayLike] | dd.DataFrame | None = None,
        columns: Sequence[str] | None = None, client: Client | None = None,
        callback: Callable[..., Any] | None = None, workers: Sequence[str] | None = None) -> Estimator:
    """Fit ``estimator`` (``mfcore.ALS``, ``mfcore.Model`` or ``mfcore.BayesianMF``) on a
    Dask DataFrame of ratings; return it, fitted.

    ``columns``: the user, item and rating columns as for ``estimator.fit`` (default:
    ``user``, ``item``, ``rating`` or their usual aliases such as ``userId``; else a
    dict or the three names in that order). A pandas DataFrame is in one place
    already: fit it with ``estimator.fit(df)``, or spread it with
    ``dask.dataframe.from_pandas(df, npartitions=...)``. ``validation``:
    a local ``(users, items, ratings)`` triple or table, or a (small) Dask DataFrame with
    the same columns, scored after every iteration as in ``estimator.fit``;
    ``callback`` as there. ``client``: the Dask client (default: the current
    one). ``workers``: the worker addresses to train on (default: all); each
    holds one band of the users and one of the items.

    The fitted model equals ``estimator.fit`` on the concatenated partitions bit
    for bit (see the module docstring). A worker lost mid-fit raises
    ``WorkerLostError`` naming it and the iteration; the estimator keeps the
    state it had before the call.

    Examples
    --------
    A one-worker cluster in this process; the Dask fit equals the local one:

    >>> import numpy as np
    >>> import dask.dataframe as dd
    >>> from distributed import Client
    >>> import mfcore, mfcore.dask
    >>> ratings = mfcore.datasets.synthetic(n_users=200, n_items=50, n_ratings=3000, seed=0)
    >>> with Client(processes=False, n_workers=1, dashboard_address=None) as client:
    ...     model = mfcore.dask.fit(mfcore.ALS(k=4, iterations=5, seed=0),
    ...                             dd.from_pandas(ratings, npartitions=2))
    >>> local = mfcore.ALS(k=4, iterations=5, seed=0).fit(ratings)
    >>> bool(np.array_equal(model.predict([1, 2], [3, 4]), local.predict([1, 2], [3, 4])))
    True
    """
    trainer_class, params = _trainer_class(estimator)
    _require_dask_frame(ratings)
    client = client or default_client()
    columns, addresses = _columns_and_workers(ratings, columns, client, workers)
    dtype = p.DTYPES[params["dtype"]]

    parts, offsets, maps, map_futures = _scan(client, ratings, columns, dtype)
    user_map, item_map = maps
    route = dict(columns=columns, dtype=dtype, user_map=map_futures[0],
                 item_map=map_futures[1])
    parts = (parts, [int(o) for o in offsets[:-1]])
    bands = (_edges(len(user_map), len(addresses)), _edges(len(item_map), len(addresses)))
    held = []  # the shards' futures, released at the end
    try:
        cluster, built, merge = _load(client, parts, route, addresses, bands, params, maps,
                                      held, trainer_class.SHARD)
        summary = RatingSummary.combine([b["summary"] for b in built], user_map, item_map)
        plan = trainer_class.plan(built, bands, summary.n, params)
        if plan is not None and not np.array_equal(plan["user_edges"], bands[0]):
            # the solver needs other user bands (SGD: whole groups of its block grid)
            bands = (plan["user_edges"], bands[1])
            for f in held:
                f.release()
            held.clear()
            cluster, built, merge = _load(client, parts, route, addresses, bands, params,
                                          maps, held, trainer_class.SHARD,
                                          warn_duplicates=False)
        del parts
        _train_on_shards(estimator, trainer_class, cluster, built, bands, summary, plan, params,
                         _local_validation(validation, columns), callback)
    finally:
        for f in held:
            f.release()
    return estimator
