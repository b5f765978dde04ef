"""The shards of one Dask fit and the waits on them: placing one shard per worker, calling
them, and telling a lost worker (``WorkerLostError``) from an error of the shard's code."""
import asyncio
import contextlib
import operator
import threading
import time
import warnings
from concurrent.futures import CancelledError

import numpy as np
from distributed import KilledWorker

from ..data import report_duplicates
from ..errors import DuplicateRatingsWarning, WorkerLostError
from ._staging import route


def _is_lost(exc):
    """Whether a call or task failed because a worker (or the connection) is gone, rather
    than by an error of the shard's code, which Dask re-raises as it was. That includes a
    task Dask cancelled because data it needs was lost with a worker and cannot be
    recomputed (``FutureCancelledError``, "lost dependencies": a scattered id map or
    partition whose every replica was on workers that left), whichever worker held it."""
    return (isinstance(exc, (OSError, TimeoutError, asyncio.CancelledError, CancelledError,
                             KilledWorker))
            or (type(exc) is RuntimeError and "lost" in str(exc)))


def lost_error(exc, when):
    """The ``WorkerLostError`` for ``exc`` (``_is_lost``), raised ``when`` (e.g. "while the
    ids were listed"): naming the lost worker if ``exc`` does, else the lost data."""
    what = ("data the fit needs was lost with a worker" if isinstance(exc, CancelledError)
            else "a worker of the cluster was lost")
    return WorkerLostError(f"{what} {when}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def losses_raised(when):
    """Turn a lost worker or lost data (``_is_lost``) inside the block into
    ``WorkerLostError`` (``lost_error``); any other error passes through as it was."""
    try:
        yield
    except WorkerLostError:
        raise
    except Exception as exc:
        if not _is_lost(exc):
            raise
        raise lost_error(exc, when) from exc


def cluster_workers(client):
    """Every worker's address (distributed 2025.4 and later list only five unless asked)."""
    try:
        return client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # (distributed before n_workers=: it lists every worker)
        return client.scheduler_info()["workers"]


def _lost_worker(client, addresses):
    """The first of ``addresses`` no longer in the cluster, or None."""
    workers = cluster_workers(client)
    return next((a for a in addresses if a not in workers), None)


def pinned_result(client, future, addresses, poll=0.25):
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


class Packed:
    """Values a shard's call takes or returns as one object (``.values``), serialized in one
    go: Dask serializes each argument of a call, and each item of a tuple result, on its
    own, at some 0.1 ms apiece, which a call made every few milliseconds feels."""

    def __init__(self, *values):
        self.values = values


class Pending:
    """Calls of ``method`` sent to the shards (``Cluster.send``) for iteration ``epoch``:
    their futures by band, and the band a failure is charged to."""

    def __init__(self, method, epoch):
        self.method, self.epoch, self.futures, self.band = method, epoch, {}, 0


class Cluster:
    """The shards of one fit and the calls to them, with a clear error for a lost worker.

    Every wait is bounded: a call's result is awaited while watching the fit's workers, so
    a worker the scheduler drops (killed, or silent past ``distributed.scheduler.worker-ttl``)
    ends the wait at once with ``WorkerLostError``; a failed call stops the shards still
    waiting for it (``Shard.abort``), and so does a Ctrl-C on the client: an ALS shard
    stops between blocks of rows (``Shard.check_aborted``)."""

    #: seconds a shard waits for the other shards' part of an exchange
    EXCHANGE_TIMEOUT = 3600.0

    def __init__(self, client, shards, addresses, bands):
        self.client, self.shards, self.addresses, self.bands = client, shards, addresses, bands

    def connect(self):
        """Give every shard the handles of all shards (for ``Shard.allgather``)."""
        self.call("connect", 0, self.addresses, [shard.key for shard in self.shards])

    def call(self, method, epoch, *args):
        """``method(*args)`` on every shard at once; the results in band order. ``epoch`` (0
        while the shards are set up) names the iteration in the error for a lost worker;
        the shard code's own errors (bad data, a singular system) pass through."""
        return self.call_each(method, epoch, [args] * len(self.shards))

    def call_each(self, method, epoch, args):
        """``method(*args[b])`` on shard b, all at once; the results in band order. The
        first call to fail, in any band, stops the others (a shard waiting for a failed
        one's part of an exchange would otherwise wait out ``EXCHANGE_TIMEOUT``)."""
        return self.results(self.send_each(method, epoch, args))

    def send(self, method, epoch, *args):
        """Start ``method(*args)`` on every shard and return at once: the pending calls,
        whose results ``results`` waits for. A shard runs its calls one at a time in the
        order sent, so a trainer may send the next iteration's call before the last one's
        results are in (its inputs known), and the shard starts it without waiting for a
        round trip through the client."""
        return self.send_each(method, epoch, [args] * len(self.shards))

    def send_each(self, method, epoch, args):
        """``send`` of ``method(*args[b])`` to shard b."""
        pending = Pending(method, epoch)
        with self._failures(pending):
            for b, shard in enumerate(self.shards):
                pending.band = b
                pending.futures[b] = getattr(shard, method)(*args[b])
        return pending

    def results(self, pending):
        """The results of the calls ``pending`` (``send``), in band order, once all are in."""
        futures, results = pending.futures, {}
        with self._failures(pending):
            while len(results) < len(futures):
                pending.band = self._next_done(futures, results)
                results[pending.band] = futures[pending.band].result()
        return [results[b] for b in range(len(futures))]

    @contextlib.contextmanager
    def _failures(self, pending):
        """A failed call (of shard ``pending.band``) or a Ctrl-C stops every shard's wait;
        a lost worker raises ``WorkerLostError``, the shard code's own error passes through."""
        try:
            yield
        except KeyboardInterrupt:  # the shards stop at their next check
            self._abort("the fit was interrupted")
            raise
        except Exception as exc:
            self._abort(f"shard {pending.band} failed in {pending.method}")
            if not _is_lost(exc):  # the shard code's own error
                raise
            raise self._lost(pending.band, pending.epoch, exc) from exc

    def _next_done(self, futures, results, poll=0.25):
        """The first band whose call is done and not yet in ``results``, waiting ``poll``
        seconds at a time on the first pending one; raises ``OSError`` as soon as a worker
        of the fit is gone."""
        while True:
            pending = [b for b in futures if b not in results]
            done = next((b for b in pending if futures[b].done()), None)
            if done is not None:
                return done
            try:
                futures[pending[0]].result(timeout=poll)
                return pending[0]
            except TimeoutError:
                if futures[pending[0]].done():  # (the call's own TimeoutError)
                    return pending[0]
            except Exception:  # noqa: BLE001 (done: raised again by the caller)
                return pending[0]
            lost = _lost_worker(self.client, self.addresses)
            if lost is not None:
                raise OSError(f"worker {lost} is no longer in the cluster")

    def _lost(self, b, epoch, exc, wait=5.0):
        """The ``WorkerLostError`` for a lost-worker failure of shard b's call: naming the
        worker the scheduler dropped (shard b may only have failed to reach it), once known."""
        deadline = time.monotonic() + wait
        lost = _lost_worker(self.client, self.addresses)
        while lost is None and time.monotonic() < deadline:
            time.sleep(0.05)
            lost = _lost_worker(self.client, self.addresses)
        b = b if lost is None else self.addresses.index(lost)
        when = f"at iteration {epoch}" if epoch else "while its shard was set up"
        return WorkerLostError(f"worker {self.addresses[b]} (shard {b} of {len(self.shards)}) "
                               f"was lost {when}: {type(exc).__name__}: {exc}")

    def _abort(self, reason):
        """Stop every shard's wait for the others (fire and forget: some may be gone)."""
        for shard in self.shards:
            try:
                shard.abort(reason)
            except Exception:  # noqa: BLE001 (a lost worker's shard cannot be told)
                pass


class ShardsCheckFinite:
    """Mixed into a solver's client-side trainer: the shards check their bands, and a
    step's SSE is NaN when one was not finite, so the driver's finiteness check reads the
    SSE alone, not the client's copy of the model (the last gathered, or the initial)."""

    def finite(self, sse):
        return bool(np.isfinite(sse))


def row_counts(model, band_rows, band_counts):
    """Ratings per user row and per item row, from the shards' rated rows and their counts."""
    out = []
    for kind, rows, counts in zip(("user", "item"), band_rows, band_counts):
        full = np.zeros(len(getattr(model, f"{kind}_map_")), dtype=np.int64)
        full[np.concatenate(rows)] = np.concatenate(counts)
        out.append(full)
    return out


def load(client, parts, routing, addresses, bands, params, maps, held, shard_class,
         warn_duplicates=True):
    """Route the partitions (``parts``: their futures and offsets in the data) to one
    ``shard_class`` actor per worker (user band b and item band b on worker b), merge
    duplicates there; return the cluster, each shard's ``build`` and whether
    duplicates were merged. The shards' futures are appended to ``held``."""
    routed = client.map(route, *parts, user_edges=bands[0], item_edges=bands[1],
                        pure=False, **routing)
    for b, address in enumerate(addresses):
        pieces = [client.map(operator.getitem, routed, [(s, b)] * len(routed), pure=False)
                  for s in (0, 1)]
        held.append(client.submit(
            shard_class, b, *pieces, tuple(bands[0][b:b + 2].tolist()),
            tuple(bands[1][b:b + 2].tolist()), len(maps[1]), params["n_threads"],
            workers=[address], allow_other_workers=False, actor=True, pure=False))
    shards = []
    for b, f in enumerate(held):
        try:
            shards.append(pinned_result(client, f, addresses))
        except Exception as exc:
            if not _is_lost(exc):
                raise
            if isinstance(exc, CancelledError):  # (its inputs were lost, not its worker)
                raise lost_error(exc, f"while shard {b} of {len(held)} was loaded") from exc
            raise WorkerLostError(f"worker {addresses[b]} (shard {b} of {len(held)}) was lost "
                                  f"while its shard was loaded: {type(exc).__name__}: "
                                  f"{exc}") from exc
    del routed
    cluster = Cluster(client, shards, addresses, bands)
    dups = cluster.call("duplicates", 0)
    with warnings.catch_warnings():
        if not warn_duplicates:
            warnings.simplefilter("ignore", DuplicateRatingsWarning)
        merge = _duplicates(dups, params["duplicates"], *maps)
    built = cluster.call("build", 0, merge, params["duplicates"], bands)
    return cluster, built, merge


def _duplicates(dups, policy, user_map, item_map):
    """Whether to merge duplicates, after the local fit's error or warning for them."""
    n_dup = sum(n for n, _ in dups)
    if n_dup == 0 or policy == "keep":
        return False
    u, i = next(first for n, first in dups if n)
    report_duplicates(n_dup, (user_map.ids[u], item_map.ids[i]), policy)
    return True
