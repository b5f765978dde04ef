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
   ``verbose``) over a trainer whose ``step`` exchanges, through the client,
   only what the solver needs (hub and spokes; see each trainer):

   * ALS: per half-iteration the fixed factor side to every shard, each shard's
     band of the solved side back;
   * SGD: DSGD over the local block grid: per round of the epoch
     the item groups of the round's blocks to the shards owning their user
     groups and back, the user bands once an epoch;
   * BayesianMF: as ALS, plus each rating's residual (the sampler's running
     state) from its item shard to its user shard and back, every sweep.

   Global statistics are exact (``RatingSummary``: an exact sum, so the mean is
   the local one bit for bit; the sampler's sum of squares added chunk by chunk
   as the local sweep adds it).

The fitted arrays equal a local fit's bit for bit for any number of workers and
partitions: ALS and BayesianMF rows are independent given the other side, each
row sees its ratings in the local order and draws the local random numbers
(counter-based); SGD trains every block of the local grid with the local
kernel, records and order. The histories agree too, except ALS's training SSE,
a sum of the shards' sums (equal up to float rounding). Each history entry
also records ``exchanged_bytes`` (factors, and residuals, sent and received by
the client) and ``shard_seconds`` (the slowest shard's kernel seconds).

Not offered: ``validation_fraction`` (pass ``validation=``), ``warm_start`` and
``partial_fit``.

Needs the ``dask`` extra (``pip install "mfcore[dask]"``); ``import mfcore``
never imports this module.
"""
from __future__ import annotations

import asyncio
import operator
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from distributed import KilledWorker, default_client, get_worker

from . import params as p
from . import registry
from ._kernels import bayes as _bayes
from ._kernels import predict as _predict
from ._kernels import sgd as _sgd_kernels
from ._kernels.rowsolve import solve_rows
from ._threads import resolve_n_threads
from .data import (RatingSummary, as_ratings, column_names, merge_sorted, report_duplicates,
                   validation_rows)
from .errors import DuplicateRatingsWarning, WorkerLostError
from .estimators import driver
from .estimators.base import from_standard, standard_units, standardized, to_standard
from .estimators.als import ALSSide, _Iterations
from .estimators.bayes import _Sweeps
from .estimators.sgd import _Epochs, choose_grid, groups_of_counts, layout_blocks, schedule
from .ids import IdMap, normalize_ids, plain, sorted_unique

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

    from ._typing import ArrayLike
    from .estimators.base import Estimator

__all__ = ["fit"]  # (WorkerLostError is mfcore.WorkerLostError, importable here too)

COLUMNS = ("user", "item", "rating")
_ID_STAGES = (("users", 0), ("items", 1))


# --- 1. scan: checks and distinct ids, one task per partition ---------------------------

def _scan(frame, columns, dtype):
    """One partition's length, first raw ids, id kinds, distinct ids and check errors."""
    out = {"n": len(frame), "errors": {}, "kind": {}, "first": {}, "ids": {}}
    missing = [c for c in columns if c not in frame.columns]
    if missing:  # (a partition built by hand can lack what the frame's metadata promises)
        out["errors"]["columns"] = ValueError(
            f"a partition has no column {missing[0]!r} (its columns: {list(frame.columns)})")
        return out
    for name, col in _ID_STAGES:
        raw = frame[columns[col]].to_numpy()
        try:
            ids = normalize_ids(raw, name)
        except ValueError as exc:
            out["errors"][name] = exc
            out["ids"][name] = None
            continue
        out["ids"][name] = sorted_unique(ids)
        out["kind"][name] = "str" if ids.dtype.kind == "U" else "int"
        out["first"][name] = plain(raw[0]) if len(raw) else None
    try:
        as_ratings(frame[columns[2]].to_numpy(), dtype)
    except ValueError as exc:
        out["errors"]["ratings"] = exc
    return out


def _scan_info(scan):
    return {key: value for key, value in scan.items() if key != "ids"}


def _scan_ids(scan, name):
    return scan["ids"][name]


def _union(*parts):
    parts = [a for a in parts if a is not None and len(a)]
    return sorted_unique(np.concatenate(parts)) if parts else None


def _tree_union(client, futures, fan_in=8):
    """The sorted distinct ids of all partitions, merged on the workers in a tree."""
    while len(futures) > 1:
        futures = [client.submit(_union, *futures[s:s + fan_in], pure=False)
                   for s in range(0, len(futures), fan_in)]
    return futures[0].result()


def _renumbered(exc, offset):
    """``exc`` with its 'position N' moved by ``offset`` (a partition's start in the data)."""
    text = re.sub(r"position (\d+)", lambda m: f"position {int(m[1]) + offset}", str(exc))
    return type(exc)(text)


def _check_scans(infos):
    """Raise the error a local fit of the concatenated partitions would raise, if any."""
    offsets = np.concatenate([[0], np.cumsum([info["n"] for info in infos])])
    for info in infos:
        if "columns" in info["errors"]:
            raise info["errors"]["columns"]
    for name in ("users", "items", "ratings"):
        for info, offset in zip(infos, offsets):
            if name in info["errors"]:
                raise _renumbered(info["errors"][name], int(offset))
        if name == "ratings":
            break
        kinds = [(info["kind"][name], info["first"][name], off)
                 for info, off in zip(infos, offsets) if info["n"]]
        if len({kind for kind, _, _ in kinds}) > 1:
            num = next(first for kind, first, _ in kinds if kind == "int")
            string, pos = next((first, off) for kind, first, off in kinds if kind == "str")
            raise ValueError(f"{name}: mixed id types: {num!r} and {string!r} (position {pos}); "
                             "use all integers or all strings")
    if offsets[-1] == 0:
        raise ValueError("cannot fit on empty data: no ratings given")
    return offsets


# --- 2. route: rows and bands, one task per partition ---------------------------------

def _route(frame, offset, columns, dtype, user_map, item_map, user_edges, item_edges):
    """One partition's ratings as rows, cut into user bands and item bands: a dict
    ``(side, band) -> (u, i, r, g)`` (g: the rating's position in the whole data)."""
    u = user_map.lookup(frame[columns[0]].to_numpy(), "users")
    i = item_map.lookup(frame[columns[1]].to_numpy(), "items")
    r = as_ratings(frame[columns[2]].to_numpy(), dtype)
    g = np.arange(offset, offset + len(r), dtype=np.int64)
    out = {}
    for side, rows, edges in ((0, u, user_edges), (1, i, item_edges)):
        band = np.searchsorted(edges, rows, side="right") - 1
        for b in range(len(edges) - 1):
            keep = band == b
            out[side, b] = (u[keep], i[keep], r[keep], g[keep])
    return out


# --- 3. shards: one actor per worker -------------------------------------------------

class _Side:
    """One band of one side's ratings as the local layout holds them: the band's rated rows
    (``present``, band-relative), CSR ``indptr``/``cols``/``values`` and the counts."""

    def __init__(self, rows, cols, values, lo, hi):
        self.lo, self.hi = lo, hi
        local = (rows - lo).astype(np.int64)
        counts = np.bincount(local, minlength=hi - lo)
        self.present = np.flatnonzero(counts)
        self.counts = counts[self.present]
        self.indptr = np.zeros(len(self.present) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=self.indptr[1:])
        self.cols = np.ascontiguousarray(cols, dtype=np.int32)
        self.values = np.ascontiguousarray(values)
        self.full_ptr = np.zeros(hi - lo + 1, dtype=np.int64)  # over every row of the band
        np.cumsum(counts, out=self.full_ptr[1:])


class _Shard:
    """A worker's part of the fit (a Dask actor pinned to the worker): band ``band`` of the
    ratings by user and by item, and the kernels run on it."""

    def __init__(self, band, user_pieces, item_pieces, user_range, item_range, n_items,
                 n_threads):
        self.band, self.n_items = band, n_items
        self.user_range, self.item_range = user_range, item_range
        self.n_threads = n_threads or self._worker_threads()
        self.raw = [tuple(np.concatenate(parts) for parts in zip(*pieces))
                    for pieces in (user_pieces, item_pieces)]

    @staticmethod
    def _worker_threads():
        """The threads of the Dask worker this shard runs on (the default thread rule off a
        worker)."""
        try:
            return get_worker().state.nthreads
        except (ValueError, AttributeError):
            return resolve_n_threads(None)

    def duplicates(self):
        """(number of duplicate ratings, (u, i) of the lowest duplicated pair or None) in this
        user band: every copy of a pair is here."""
        u, i, _, _ = self.raw[0]
        key = np.sort(u.astype(np.int64) * self.n_items + i)
        dup = np.flatnonzero(key[1:] == key[:-1])
        first = None if not len(dup) else (int(key[dup[0]] // self.n_items),
                                           int(key[dup[0]] % self.n_items))
        return len(dup), first

    def build(self, merge, policy, layout="als", bands=None):
        """Merge duplicates if the data hold any (``merge``), order both sides as the local
        ``layout`` does and return this band's summary, counts and seen items. "als": a
        row's ratings in data order; "sgd": also the user band in data order (for the
        records); "bayes": a row's ratings by the other side's row, then data order (the
        sampler's layout), and which of them each band of the other side (``bands``)
        exchanges residuals with."""
        sides = []
        for s, (u, i, r, g) in enumerate(self.raw):
            key = u.astype(np.int64) * self.n_items + i
            order = np.lexsort((g, key))
            key, g, r = key[order], g[order], r[order]
            if merge:  # the local data are the distinct keys in order: order by key alone
                key, r = merge_sorted(key, r, policy)
                g = key
            u, i = (key // self.n_items).astype(np.int32), (key % self.n_items).astype(np.int32)
            rows, cols = (u, i) if s == 0 else (i, u)
            if layout == "bayes":
                order = np.lexsort((g, cols, rows))
            else:
                order = np.lexsort((g, rows))  # a row's ratings in the local data order
            lo, hi = self.user_range if s == 0 else self.item_range
            sides.append(_Side(rows[order], cols[order], r[order], lo, hi))
            if layout == "bayes":  # the pieces of each band of the other side, in (u, i, t)
                own, other, t = rows[order], cols[order], g[order]
                canon = np.lexsort((t, own, other) if s else (t, other, own))
                band = np.searchsorted(bands[1 - s], other[canon], side="right") - 1
                sides[-1].exchange = [canon[band == b] for b in range(len(bands[1 - s]) - 1)]
            if s == 0:
                seen = sorted_unique(key)
                r_user = r
                if layout == "sgd":  # the ratings in the local data's order (SGD's layout)
                    data_order = np.argsort(g, kind="stable")
                    self.data = (u[data_order], i[data_order], r[data_order])
        self.sides = sides
        self.raw = None
        seen_rows = np.bincount((seen // self.n_items - self.user_range[0]).astype(np.int64),
                                minlength=self.user_range[1] - self.user_range[0])
        return {"summary": RatingSummary.of(r_user), "user_counts": (sides[0].present,
                sides[0].counts), "item_counts": (sides[1].present, sides[1].counts),
                "seen": (seen_rows, (seen % self.n_items).astype(np.int32))}

    # --- BayesianMF ---

    def bayes_setup(self, P, Q, bu, bi, mu, scale, item_offset):
        """The sampler's state of this shard: the band's parameters (float64) and the
        residuals of its item band's ratings from the initial parameters (as the local
        sampler computes them); returns their pieces for the user bands and the partial
        sums of squares (``_chunks``)."""
        users, items = self.sides
        self.bayes = [(P[slice(*self.user_range)].copy(), bu[slice(*self.user_range)].copy()),
                      (Q[slice(*self.item_range)].copy(), bi[slice(*self.item_range)].copy())]
        self.residual = [np.empty(len(users.values)), np.empty(len(items.values))]
        self.item_offset = item_offset
        rows = np.repeat(np.arange(*self.item_range, dtype=np.int32), np.diff(items.full_ptr))
        pred = np.empty(len(rows))
        _predict.predict(items.cols, rows, P, Q, bu, bi, 0.0, -np.inf, np.inf, pred,
                             self.n_threads)  # the parameters are in standardized units
        self.residual[1][:] = standardized(items.values, mu, scale) - pred
        return [self.residual[1][idx] for idx in items.exchange], self._chunks()

    def _chunks(self):
        """This item band's part of the sweep's sum of squared residuals: the sums of the
        item-CSR chunks (``bayes.CHUNK``) wholly inside it, and the residuals of the chunks it
        shares with its neighbours, ``(chunk, "sum" or "raw", values)``."""
        e, start, C = self.residual[1], self.item_offset, _bayes.CHUNK
        end = start + len(e)
        first, last = -(-start // C) * C, end // C * C  # whole chunks: first..last
        out = []
        if not len(e):
            return out
        if first > start or first >= end:
            out.append((start // C, "raw", e[:min(first, end) - start]))
        if last > first:
            out.append((first // C, "sum", _bayes.chunk_sse(e[first - start:last - start])))
        if last < end and last >= first:
            out.append((last // C, "raw", e[last - start:]))
        return out

    def bayes_half(self, s, pieces, other_factors, hyper, alpha, seed, sweep):
        """One side's half-sweep on this band (``gibbs_rows``) after placing the other side's
        residual pieces; returns the band's new parameters, the residual pieces for the
        other side's bands, the chunk sums (item half) and the seconds it took."""
        start = time.perf_counter()
        side, e = self.sides[s], self.residual[s]
        for idx, piece in zip(side.exchange, pieces):
            e[idx] = piece
        factors, bias = self.bayes[s]
        _bayes.gibbs_rows(side.full_ptr, side.cols, e, factors, bias, other_factors, hyper,
                          alpha, seed, ("user", "item")[s], sweep, side.lo, self.n_threads)
        out = [e[idx] for idx in side.exchange]
        return (factors, bias, out, self._chunks() if s == 1 else None,
                time.perf_counter() - start)

    def sgd_setup(self, grid, user_groups, item_groups, user_factors, user_bias, mu, scale):
        """SGD's layout of this user band: the local block grid's records of its blocks, in
        the local order (``layout_records``: data order, then each block's fixed shuffle),
        with band-relative user rows and standardized ratings; and the band's user
        parameters in standardized units. Returns the band's size of every block."""
        u, i, r = self.data
        r = standardized(r, mu, scale, r.dtype)
        self.data = None
        lo = self.user_range[0]
        self.grid = grid
        block = user_groups[u] * np.int32(grid) + item_groups[i]
        self.records, self.block_ptr, sizes = layout_blocks(
            block, (u - lo).astype(np.int32), i, r, grid * grid, self.n_threads)
        self.units = standard_units(scale)
        self.P = np.array(to_standard(user_factors, self.units, "user_factors_"))
        self.bu = np.array(to_standard(user_bias, self.units, "user_bias_"))
        self.Q = np.zeros((len(item_groups), self.P.shape[1]), self.P.dtype)
        self.bi = np.zeros(len(item_groups), self.P.dtype)
        self.item_starts = np.searchsorted(item_groups, np.arange(grid + 1))
        return sizes

    def sgd_round(self, schedule, seed, blocks, item_parts, mu, lr, reg, reg_bias, last):
        """Train this band's ``blocks`` of one round (each with the item group's parameters
        given, in ``item_parts``) by the local block kernel; return the item groups'
        new parameters, the blocks' squared errors, the seconds and, in the last round,
        the band's user parameters."""
        start = time.perf_counter()
        g, starts = self.grid, self.item_starts
        for b, (factors, bias) in zip(blocks, item_parts):
            c = b % g
            self.Q[starts[c]:starts[c + 1]], self.bi[starts[c]:starts[c + 1]] = factors, bias
        sizes = np.zeros(g * g, dtype=np.int64)
        for b in blocks:
            sizes[b] = self.block_ptr[b + 1] - self.block_ptr[b]
        ptr = np.zeros(g * g + 1, dtype=np.int64)
        np.cumsum(sizes, out=ptr[1:])
        records = np.concatenate([self.records[self.block_ptr[b]:self.block_ptr[b + 1]]
                                  for b in sorted(blocks)]) if blocks else self.records[:0]
        scratch = np.empty(_sgd_kernels.scratch_size(int(sizes.max(initial=0)), self.n_threads),
                           dtype=np.int32)
        block_sse = np.zeros(g * g)
        _sgd_kernels.sgd_blocks(records.view(np.uint8), ptr, schedule, g, seed, True, scratch,
                                self.P, self.Q, self.bu, self.bi, mu, lr, reg, reg_bias,
                                block_sse, self.n_threads)
        new = [(self.Q[starts[b % g]:starts[b % g + 1]].copy(),
                self.bi[starts[b % g]:starts[b % g + 1]].copy()) for b in blocks]
        users = None
        if last:  # the epoch's end: rating units out, and back in as the local epoch does
            users = (from_standard(self.P, self.units, "user_factors_"),
                     from_standard(self.bu, self.units, "user_bias_"))
            self.P = np.array(to_standard(users[0], self.units, "user_factors_"))
            self.bu = np.array(to_standard(users[1], self.units, "user_bias_"))
        return new, block_sse[blocks], time.perf_counter() - start, users

    def solve(self, s, other_factors, other_bias, mu, reg, reg_bias, base, count_weight,
              bias_shrinkage):
        """ALS's half-iteration on this band of side ``s`` (0 users, 1 items): the solved rows'
        factors and biases; after the item half also the SSE of this band's ratings; and the
        seconds it took."""
        start = time.perf_counter()
        side = self.sides[s]
        factors = np.empty((len(side.present), other_factors.shape[1]), other_factors.dtype)
        bias = np.empty(len(side.present), other_bias.dtype)
        solve_rows(side.indptr, side.cols, side.values, other_factors, other_bias, mu, reg,
                   reg_bias, base, count_weight, True, factors, bias, self.n_threads,
                   bias_shrinkage)
        sse = None
        if s == 1:
            band_factors = np.zeros((side.hi - side.lo, factors.shape[1]), factors.dtype)
            band_bias = np.zeros(side.hi - side.lo, bias.dtype)
            band_factors[side.present], band_bias[side.present] = factors, bias
            items = np.repeat(side.present.astype(np.int32), side.counts)
            sse = _predict.squared_error(side.cols, items, side.values, other_factors,
                                             band_factors, other_bias, band_bias, mu, -np.inf,
                                             np.inf, self.n_threads)
        return factors, bias, sse, time.perf_counter() - start


# --- 4. the client's trainer -----------------------------------------------------------

def _is_lost(exc):
    """Whether an actor call failed because its worker (or the connection) is gone, rather
    than by an error of the shard's code, which Dask re-raises as it was."""
    return (isinstance(exc, (OSError, TimeoutError, asyncio.CancelledError, KilledWorker))
            or (type(exc) is RuntimeError and "lost" in str(exc)))


def _cluster_workers(client):
    """Every worker's address (distributed 2025.4 and later list only five unless asked)."""
    try:
        return client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # (distributed before n_workers=: it lists every worker)
        return client.scheduler_info()["workers"]


def _lost_worker(client, addresses):
    """The first of ``addresses`` no longer in the cluster, or None."""
    workers = _cluster_workers(client)
    return next((a for a in addresses if a not in workers), None)


def _pinned_result(client, future, addresses, poll=0.25):
    """``future.result()`` of a task pinned to one of the fit's workers (``addresses``),
    raising ``OSError`` (a lost worker) as soon as any of them is no longer in the cluster:
    the task would otherwise wait forever for it (a nanny restarts a killed worker at another
    address), or be cancelled because its inputs were on the lost worker. (Waits on an event:
    ``Future.result(timeout=)`` cancels the wait it abandons.)"""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    while not done.wait(poll):
        lost = _lost_worker(client, addresses)
        if lost is not None:
            raise OSError(f"worker {lost} is no longer in the cluster")
    try:
        return future.result()
    except Exception:  # (e.g. cancelled as a worker left: the loss is the reason)
        lost = _lost_worker(client, addresses)
        if lost is not None:
            raise OSError(f"worker {lost} is no longer in the cluster") from None
        raise


class _Cluster:
    """The shards of one fit and the calls to them, with a clear error for a lost worker."""

    def __init__(self, client, shards, addresses, bands):
        self.client, self.shards, self.addresses, self.bands = client, shards, addresses, bands

    def call(self, method, epoch, *args):
        """``method(*args)`` on every shard at once; the results in band order. ``epoch`` (0
        while the shards are set up) names the iteration in the error for a lost worker;
        the shard code's own errors (bad data, a singular system) pass through."""
        return self.call_each(method, epoch, [args] * len(self.shards))

    def call_each(self, method, epoch, args):
        """``method(*args[b])`` on shard b, all at once; the results in band order."""
        futures, results = [], []
        for stage in ("send", "receive"):
            for b, shard in enumerate(self.shards):
                try:
                    if stage == "send":
                        futures.append(getattr(shard, method)(*args[b]))
                    else:
                        results.append(futures[b].result())
                except Exception as exc:
                    if not _is_lost(exc):  # the shard code's own error
                        raise
                    when = f"at iteration {epoch}" if epoch else "while its shard was set up"
                    raise WorkerLostError(
                        f"worker {self.addresses[b]} (shard {b} of {len(self.shards)}) was lost "
                        f"{when}: {type(exc).__name__}: {exc}") from exc
        return results


def _row_counts(model, band_rows, band_counts):
    """Ratings per user row and per item row, from the shards' rated rows and their counts."""
    out = []
    for kind, rows, counts in zip(("user", "item"), band_rows, band_counts):
        full = np.zeros(len(getattr(model, f"{kind}_map_")), dtype=np.int64)
        full[np.concatenate(rows)] = np.concatenate(counts)
        out.append(full)
    return out


class _ALSIterations(_Iterations):
    """ALS's trainer over the shards: each half-iteration sends the fixed side to every shard
    and writes each shard's solved band into the model's arrays."""

    LAYOUT = "als"

    @staticmethod
    def plan(built, bands, n_ratings, params):
        """ALS solves any bands: no plan."""
        return None

    def __init__(self, model, cluster, band_rows, band_counts, params, plan):
        sides = []
        for kind, rows, counts in zip(("user", "item"), band_rows, band_counts):
            present, counts = np.concatenate(rows), np.concatenate(counts)
            n = len(getattr(model, f"{kind}_factors_"))
            sides.append(ALSSide(None if len(present) == n else present, None, None, None,
                                 counts))
        # the penalty is the local one: it needs only the rated rows and their counts
        super().__init__(model, tuple(sides), params, None)
        self.cluster, self.band_rows = cluster, band_rows

    def step(self, epoch):
        m, exchanged, sse, compute = self.model, 0, 0.0, 0.0
        for s, kind, other in ((0, "user", (m.item_factors_, m.item_bias_)),
                               (1, "item", (m.user_factors_, m.user_bias_))):
            results = self.cluster.call("solve", epoch, s, *other, m.global_mean_, self.reg,
                                        self.reg_bias, self.base, self.count_weight,
                                        self.bias_shrinkage)
            exchanged += len(results) * (other[0].nbytes + other[1].nbytes)
            factors, bias = getattr(m, f"{kind}_factors_"), getattr(m, f"{kind}_bias_")
            for rows, (band_factors, band_bias, band_sse, _) in zip(self.band_rows[s], results):
                factors[rows], bias[rows] = band_factors, band_bias
                exchanged += band_factors.nbytes + band_bias.nbytes
                if band_sse is not None:
                    sse += band_sse
            compute += max(seconds for *_, seconds in results)
        # exchanged_bytes: factor sides sent and received; shard_seconds: the slowest shard's
        # kernel time of each half, added (the rest of an iteration is transfer and waiting)
        return {"sse": sse, "exchanged_bytes": exchanged, "shard_seconds": compute}


class _SGDEpochs(_Epochs):
    """SGD's trainer over the shards (DSGD on the local block grid): shard w owns the user
    groups ``plan["owned"][w]``; each of an epoch's rounds sends every block of the round
    the item group it pairs with, to the shard owning its user group, and takes the
    group back; the user bands come back after the last round."""

    LAYOUT = "sgd"

    @staticmethod
    def plan(built, bands, n_ratings, params):
        """The block grid a local fit of these data would use, its groups, and the user bands
        of whole groups (shard w gets groups ``w g / W`` to ``(w + 1) g / W``)."""
        user_counts = np.concatenate([c["user_counts"][1] for c in built])  # every row rated
        item_counts = np.concatenate([c["item_counts"][1] for c in built])
        g = choose_grid(n_ratings, len(user_counts), len(item_counts), params["block_grid"])
        user_groups = groups_of_counts(user_counts, g)
        item_groups = groups_of_counts(item_counts, g)
        w = len(built)
        owned = [(b * g // w, (b + 1) * g // w) for b in range(w)]
        starts = np.searchsorted(user_groups, np.arange(g + 1))  # first row of each group
        edges = np.array([starts[lo] for lo, _ in owned] + [len(user_counts)], np.int64)
        return {"grid": g, "user_groups": user_groups, "item_groups": item_groups,
                "owned": owned, "user_edges": edges,
                "item_starts": np.searchsorted(item_groups, np.arange(g + 1))}

    def __init__(self, model, cluster, band_rows, band_counts, params, plan):
        super().__init__(model, None, params, *_row_counts(model, band_rows, band_counts))
        self.cluster, self.plan_ = cluster, plan
        g, edges = plan["grid"], plan["user_edges"]
        m = model
        sizes = cluster.call_each("sgd_setup", 0, [
            (g, plan["user_groups"], plan["item_groups"], m.user_factors_[lo:hi],
             m.user_bias_[lo:hi], m.global_mean_, m.rating_scale_)
            for lo, hi in zip(edges[:-1], edges[1:])])
        self.shard_sizes = sizes
        self.block_sizes = np.sum(sizes, axis=0)  # of all the data, as the local layout's

    def step(self, epoch):
        """One epoch in standardized units, as the local ``_Epochs.step``: the item side here,
        the user bands on their shards."""
        m, lr, plan = self.model, self.lr(epoch), self.plan_
        g, starts = plan["grid"], plan["item_starts"]
        units = standard_units(m.rating_scale_)
        Q = to_standard(m.item_factors_, units, "item_factors_")
        bi = to_standard(m.item_bias_, units, "item_bias_")
        rounds = schedule(g, self.block_sizes, m.rng_)
        seed = int(m.rng_.integers(0, 2**63))
        block_sse, exchanged, compute = np.zeros(g * g), 0, 0.0
        for s in range(g):
            blocks = rounds[s * g:(s + 1) * g]
            jobs = [[int(b) for b in blocks if lo <= b // g < hi and sizes[b]]
                    for (lo, hi), sizes in zip(plan["owned"], self.shard_sizes)]
            parts = [[(Q[starts[b % g]:starts[b % g + 1]], bi[starts[b % g]:starts[b % g + 1]])
                      for b in job] for job in jobs]
            results = self.cluster.call_each(
                "sgd_round", epoch, [(rounds, seed, job, part, 0.0, lr, self.reg,
                                      self.reg_bias, s == g - 1) for job, part in zip(jobs, parts)])
            for job, part, (new, sse, _seconds, _users) in zip(jobs, parts, results):
                for _b, (factors, bias), (new_factors, new_bias) in zip(job, part, new):
                    factors[...], bias[...] = new_factors, new_bias
                    exchanged += 2 * (factors.nbytes + bias.nbytes)
                block_sse[job] = sse
            compute += max(r[2] for r in results)
        edges = plan["user_edges"]
        for b, (*_, users) in enumerate(results):
            m.user_factors_[edges[b]:edges[b + 1]], m.user_bias_[edges[b]:edges[b + 1]] = users
            exchanged += users[0].nbytes + users[1].nbytes
        from_standard(Q, units, "item_factors_", out=m.item_factors_)
        from_standard(bi, units, "item_bias_", out=m.item_bias_)
        sse = 0.0
        for value in block_sse:  # in block order, as the local kernel adds them
            sse += value
        return {"sse": sse * m.rating_scale_ ** 2, "lr": lr, "exchanged_bytes": exchanged, "shard_seconds": compute}


class _BayesSweeps(_Sweeps):
    """BayesianMF's trainer over the shards. The client holds the whole state's parameters
    (float64), draws the hyperparameters and the noise precision from them
    (``draw_hyper_and_noise``, with the sum of squares added chunk by chunk as the local
    sweep adds it); each half-sweep sends the other side's factors to every shard, which
    draws its band's rows (``gibbs_rows``, the local counters). The residuals are the
    sampler's running state, so they travel too: each rating's, from the shard of its item
    band to that of its user band and back, every sweep."""

    LAYOUT = "bayes"

    @staticmethod
    def plan(built, bands, n_ratings, params):
        return None

    def __init__(self, model, cluster, band_rows, band_counts, params, plan):
        self.model, self.params, self.cluster = model, params, cluster
        self.n_threads = resolve_n_threads(params["n_threads"])
        self.n = int(sum(c.sum() for c in band_counts[0]))
        self._start_state(model)
        self.implicit, self.P_seen, self.Q_seen = None, self.P, self.Q
        self.features = {}  # side features are not trained on Dask (fit takes none)
        offsets = np.concatenate([[0], np.cumsum([c.sum() for c in band_counts[1]])])
        out = cluster.call_each("bayes_setup", 0, [
            (self.P, self.Q, self.bu, self.bi, model.global_mean_, model.rating_scale_, int(o))
            for o in offsets[:-1]])
        self.pieces, self.chunks = [o[0] for o in out], [o[1] for o in out]
        self.bands = cluster.bands
        self.seed = int(model.rng_.integers(0, 2**63))
        self.burn_in, self.thin = params["burn_in"], model._thin(params)
        self.kept, self.val_sum = [], None

    def _sse(self):
        """The sum of squared residuals as the local sweep adds it: chunk sums in order."""
        sums, raw = {}, {}
        for band in self.chunks:
            for chunk, kind, values in band:
                if kind == "sum":
                    sums.update(zip(range(chunk, chunk + len(values)), values.tolist()))
                else:
                    raw.setdefault(chunk, []).append(values)
        for chunk, parts in raw.items():
            sums[chunk] = float(_bayes.chunk_sse(np.concatenate(parts))[0])
        sse = 0.0
        for chunk in range(len(sums)):
            sse += sums[chunk]
        return sse

    def step(self, sweep):
        pr, w = self.params, len(self.cluster.shards)
        sse = self._sse()
        alpha = _bayes.draw_hyper_and_noise(
            self.P, self.Q, self.bu, self.bi, self.user_hyper, self.item_hyper, self.n, sse,
            self.seed, sweep - 1, self.n_threads, pr["alpha_0"], pr["beta_0"], 0.0, 1.0,
            pr["alpha_lambda"], pr["beta_lambda"])
        exchanged, compute = 0, 0.0
        for s, (other, hyper, target) in enumerate((
                (self.Q, self.user_hyper, (self.P, self.bu)),
                (self.P, self.item_hyper, (self.Q, self.bi)))):
            args = [(s, [self.pieces[b][c] for b in range(w)], other, hyper, alpha, self.seed,
                     sweep - 1) for c in range(w)]
            results = self.cluster.call_each("bayes_half", sweep, args)
            exchanged += w * other.nbytes + sum(p.nbytes for a in args for p in a[1])
            edges = self.bands[s]
            for c, (factors, bias, pieces, _chunks, _seconds) in enumerate(results):
                target[0][edges[c]:edges[c + 1]], target[1][edges[c]:edges[c + 1]] = factors, bias
                exchanged += factors.nbytes + bias.nbytes + sum(p.nbytes for p in pieces)
            self.pieces = [r[2] for r in results]
            if s == 1:
                self.chunks = [r[3] for r in results]
            compute += max(r[4] for r in results)
        return dict(self._record(sweep, alpha, sse), exchanged_bytes=exchanged,
                    shard_seconds=compute)


#: The client-side trainer of each estimator declaring the "dask" capability, by name.
_TRAINERS = {"als": _ALSIterations, "sgd": _SGDEpochs, "bayes": _BayesSweeps}


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
    known = sorted(_cluster_workers(client))
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
        frame = validation[list(columns)].compute()
        return tuple(frame[c] for c in columns)
    return validation


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
    """
    trainer_class, params = _trainer_class(estimator)
    if not hasattr(ratings, "to_delayed"):
        kind = type(ratings).__module__.split(".")[0] + "." + type(ratings).__name__
        hint = (": it is in one place already, so fit it with estimator.fit(ratings), or "
                "spread it over the cluster with dask.dataframe.from_pandas(ratings, "
                "npartitions=...)" if hasattr(ratings, "iloc") else "")
        raise TypeError(f"mfcore.dask.fit takes a Dask DataFrame of ratings, got {kind}{hint}")
    client = client or default_client()
    columns, addresses = _columns_and_workers(ratings, columns, client, workers)
    dtype = p.DTYPES[params["dtype"]]

    parts = client.compute(ratings[list(columns)].to_delayed())
    scans = client.map(_scan, parts, columns=columns, dtype=dtype, pure=False)
    offsets = _check_scans(client.gather(client.map(_scan_info, scans, pure=False)))
    maps = [IdMap.from_sorted(_tree_union(client, client.map(_scan_ids, scans, name=name,
                                                               pure=False)), name)
            for name, _ in _ID_STAGES]
    del scans
    user_map, item_map = maps
    map_futures = [client.scatter(m, broadcast=True) for m in maps]
    route = dict(columns=columns, dtype=dtype, user_map=map_futures[0],
                 item_map=map_futures[1])
    parts = (parts, [int(o) for o in offsets[:-1]])
    bands = (_edges(len(user_map), len(addresses)), _edges(len(item_map), len(addresses)))
    held = []  # the shards' futures, released at the end
    try:
        layout = trainer_class.LAYOUT
        cluster, built, merge = _load(client, parts, route, addresses, bands, params, maps,
                                      held, layout)
        summary = RatingSummary.combine([b["summary"] for b in built], user_map, item_map)
        plan = trainer_class.plan(built, bands, summary.n, params)
        if plan is not None and not np.array_equal(plan["user_edges"], bands[0]):
            # the solver needs other user bands (SGD: whole groups of its block grid)
            bands = (plan["user_edges"], bands[1])
            for f in held:
                f.release()
            held.clear()
            cluster, built, merge = _load(client, parts, route, addresses, bands, params,
                                          maps, held, layout, warn_duplicates=False)
        del parts
        with driver.atomic(estimator) as work:
            work._start_summary(summary, params)
            _, val = validation_rows(summary, _local_validation(validation, columns), None,
                                     work.rng_)
            keys = ("user_counts", "item_counts")
            band_rows = [[bands[s][b] + c[key][0] for b, c in enumerate(built)]
                         for s, key in enumerate(keys)]
            band_counts = [[c[key][1] for c in built] for key in keys]
            work._adopt_seen(np.concatenate([b["seen"][0] for b in built]),
                             np.concatenate([b["seen"][1] for b in built]),
                             _row_counts(work, band_rows, band_counts)[1])
            trainer = trainer_class(work, cluster, band_rows, band_counts, params, plan)
            work._run(trainer, summary.n, params, work.max_epochs(params), val, callback)
    finally:
        for f in held:
            f.release()
    return estimator


def _load(client, parts, route, addresses, bands, params, maps, held, layout,
          warn_duplicates=True):
    """Route the partitions (``parts``: their futures and offsets in the data) to one shard
    per worker (user band b and item band b on worker
    b), merge duplicates there; return the cluster, each shard's ``build`` and whether
    duplicates were merged. The shards' futures are appended to ``held``."""
    routed = client.map(_route, *parts, user_edges=bands[0], item_edges=bands[1],
                        pure=False, **route)
    for b, address in enumerate(addresses):
        pieces = [client.map(operator.getitem, routed, [(s, b)] * len(routed), pure=False)
                  for s in (0, 1)]
        held.append(client.submit(
            _Shard, b, *pieces, tuple(bands[0][b:b + 2].tolist()),
            tuple(bands[1][b:b + 2].tolist()), len(maps[1]), params["n_threads"],
            workers=[address], allow_other_workers=False, actor=True, pure=False))
    shards = []
    for b, f in enumerate(held):
        try:
            shards.append(_pinned_result(client, f, addresses))
        except Exception as exc:
            if not _is_lost(exc):
                raise
            raise WorkerLostError(f"worker {addresses[b]} (shard {b} of {len(held)}) was lost "
                                  f"while its shard was loaded: {type(exc).__name__}: "
                                  f"{exc}") from exc
    del routed
    cluster = _Cluster(client, shards, addresses, bands)
    dups = cluster.call("duplicates", 0)
    with warnings.catch_warnings():
        if not warn_duplicates:
            warnings.simplefilter("ignore", DuplicateRatingsWarning)
        merge = _duplicates(dups, params["duplicates"], *maps)
    built = cluster.call("build", 0, merge, params["duplicates"], layout, bands)
    return cluster, built, merge


def _duplicates(dups, policy, user_map, item_map):
    """Whether to merge duplicates, after the local fit's error or warning for them."""
    n_dup = sum(n for n, _ in dups)
    if n_dup == 0 or policy == "keep":
        return False
    u, i = next(first for n, first in dups if n)
    report_duplicates(n_dup, (user_map.ids[u], item_map.ids[i]), policy)
    return True
