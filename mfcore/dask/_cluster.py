"""The shards of one Dask fit and the waits on them: placing one shard per worker, calling
them, and telling a lost worker (``WorkerLostError``) from an error of the shard's code."""
import asyncio
import operator
import threading
import time
import warnings

import numpy as np
from distributed import KilledWorker

from ..data import report_duplicates
from ..errors import DuplicateRatingsWarning, WorkerLostError
from ._staging import route


def _is_lost(exc):
    """Whether an actor call failed because its worker (or the connection) is gone, rather
    than by an error of the shard's code, which Dask re-raises as it was."""
    return (isinstance(exc, (OSError, TimeoutError, asyncio.CancelledError, KilledWorker))
            or (type(exc) is RuntimeError and "lost" in str(exc)))


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
        """``method(*args[b])`` on shard b, all at once; the results in band order."""
        futures, results = [], []
        for stage in ("send", "receive"):
            for b, shard in enumerate(self.shards):
                try:
                    if stage == "send":
                        futures.append(getattr(shard, method)(*args[b]))
                    else:
                        results.append(self._result(futures[b]))
                except KeyboardInterrupt:  # the shards stop at their next check
                    self._abort("the fit was interrupted")
                    raise
                except Exception as exc:
                    self._abort(f"shard {b} failed in {method}")
                    if not _is_lost(exc):  # the shard code's own error
                        raise
                    raise self._lost(b, epoch, exc) from exc
        return results

    def _result(self, future, poll=0.25):
        """``future.result()``, raising ``OSError`` as soon as a worker of the fit is gone."""
        while True:
            try:
                return future.result(timeout=poll)
            except TimeoutError:
                if future.done():  # (the call's own TimeoutError)
                    return future.result()
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
