"""What every solver's shard shares: one Dask actor per worker, pinned to it, holding band b
of the ratings by user and by item for the whole fit, ordered as the local layout orders
them (a solver's module subclasses ``Shard`` with its kernels)."""
import asyncio
import threading
import time

import numpy as np
from distributed import Actor, get_worker
from distributed.utils import sync

from .._threads import resolve_n_threads
from ..data import RatingSummary, merge_sorted
from ..ids import sorted_unique


class Side:
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


class Shard:
    """A worker's part of the fit: band ``band`` of the ratings by user and by item (the
    routed pieces, concatenated) until ``build`` lays them out."""

    def __init__(self, band, user_pieces, item_pieces, user_range, item_range, n_items,
                 n_threads):
        self.band, self.n_items = band, n_items
        self.user_range, self.item_range = user_range, item_range
        self.n_threads = n_threads or self._worker_threads()
        self.raw = [tuple(np.concatenate(parts) for parts in zip(*pieces))
                    for pieces in (user_pieces, item_pieces)]
        self.peers, self.inbox, self.arrived, self.aborted = [], {}, threading.Condition(), None

    @staticmethod
    def _worker_threads():
        """The threads of the Dask worker this shard runs on (the default thread rule off a
        worker)."""
        try:
            return get_worker().state.nthreads
        except (ValueError, AttributeError):
            return resolve_n_threads(None)

    # --- exchange among the shards, worker to worker ---

    def connect(self, addresses, keys):
        """Hold a handle of every shard of the fit (``addresses``, actor ``keys``, in band
        order) bound to this worker: calls made through them go straight to the other
        worker, never through the client or the scheduler."""
        worker = get_worker()
        self.peers = [Actor(type(self), a, key, worker=worker) for a, key in zip(addresses, keys)]
        self.loop = worker.loop  # (the worker's event loop, which runs the calls to them)

    async def put(self, tag, band, payload):
        """Receive shard ``band``'s ``payload`` for exchange ``tag``. Runs on the worker's
        event loop (an ``async`` actor method), not on the actor thread, which may be
        waiting for this very payload."""
        with self.arrived:
            self.inbox[tag, band] = payload
            self.arrived.notify_all()

    async def abort(self, reason):
        """Wake a wait for the other shards and make it raise (the client saw a shard fail)."""
        with self.arrived:
            self.aborted = reason
            self.arrived.notify_all()

    def allgather(self, tag, payload, timeout):
        """Every shard's ``payload`` for exchange ``tag``, in band order: this one's sent to
        every other shard, theirs received (see ``alltoall``)."""
        return self.alltoall(tag, [payload] * len(self.peers), timeout)

    def alltoall(self, tag, parts, timeout):
        """What every shard sent this one in exchange ``tag``, in band order: ``parts[c]``
        goes to shard c (this one's own stays here). Waits at most ``timeout`` seconds, and
        stops waiting when the client aborts the fit (a shard failed, a worker was lost)."""
        deadline = time.monotonic() + timeout
        others = [b for b in range(len(self.peers)) if b != self.band]
        self.settle([self.send(b, tag, parts[b]) for b in others], tag, deadline)
        got = self.receive([(tag, b) for b in others], deadline)
        return [parts[b] if b == self.band else got[tag, b] for b in range(len(self.peers))]

    def send(self, b, tag, payload):
        """Start sending ``payload`` to shard b as its part of exchange ``tag``; returns the
        call's future (``settle`` it)."""
        return self.peers[b].put(tag, self.band, payload)

    def settle(self, futures, tag, deadline):
        """Wait until the ``send`` calls ``futures`` are received (or raise their error): all
        awaited on the worker's event loop in one hop from this thread, a quarter second at
        a time (``ActorFuture.result`` would make a hop of each)."""
        async def received():
            for sent in futures:
                await sent
        while futures:
            try:
                return sync(self.loop, received, callback_timeout=0.25)
            except (TimeoutError, asyncio.TimeoutError):
                if all(sent.done() for sent in futures):  # (a call's own TimeoutError)
                    raise
                self._still_waiting(tag, deadline)

    def receive(self, keys, deadline):
        """``{(tag, band): payload}`` once every one of ``keys`` has arrived."""
        with self.arrived:
            while not all(key in self.inbox for key in keys):
                self._still_waiting(keys, deadline)
                self.arrived.wait(deadline - time.monotonic())
            return {key: self.inbox.pop(key) for key in keys}

    def check_aborted(self):
        """Raise if the client aborted the fit (a shard failed, a worker was lost, Ctrl-C):
        called while waiting and between blocks of work, so a shard stops soon after."""
        if self.aborted:
            raise RuntimeError(f"shard {self.band} stopped: {self.aborted}")

    def _still_waiting(self, tag, deadline):
        """Raise if the fit was aborted or exchange ``tag`` is past its ``deadline``."""
        self.check_aborted()
        if time.monotonic() >= deadline:
            raise TimeoutError(f"shard {self.band} waited too long for the other shards' "
                               f"part of exchange {tag}")

    # --- set-up ---

    def duplicates(self):
        """(number of duplicate ratings, (u, i) of the lowest duplicated pair or None) in this
        user band: every copy of a pair is here."""
        u, i, _, _ = self.raw[0]
        key = np.sort(u.astype(np.int64) * self.n_items + i)
        dup = np.flatnonzero(key[1:] == key[:-1])
        first = None if not len(dup) else (int(key[dup[0]] // self.n_items),
                                           int(key[dup[0]] % self.n_items))
        return len(dup), first

    def build(self, merge, policy, bands):
        """Merge duplicates if the data hold any (``merge``), order both sides as the local
        layout does (``_row_order``) and return this band's summary, counts and seen items.
        ``bands``: the edges of every band of both sides."""
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
            order = self._row_order(rows, cols, g)
            lo, hi = self.user_range if s == 0 else self.item_range
            sides.append(Side(rows[order], cols[order], r[order], lo, hi))
            self._side_built(s, sides[-1], rows[order], cols[order], g[order], bands)
            if s == 0:
                seen, r_user = sorted_unique(key), r
                self._users_built(u, i, r, g)
        self.sides = sides
        self.raw = None
        seen_rows = np.bincount((seen // self.n_items - self.user_range[0]).astype(np.int64),
                                minlength=self.user_range[1] - self.user_range[0])
        return {"summary": RatingSummary.of(r_user), "user_counts": (sides[0].present,
                sides[0].counts), "item_counts": (sides[1].present, sides[1].counts),
                "seen": (seen_rows, (seen % self.n_items).astype(np.int32))}

    # --- what a solver's shard may change in ``build`` ---

    @staticmethod
    def _row_order(rows, cols, g):
        """The order of one side's ratings in its layout: a row's ratings in the local data
        order (``g``: each rating's position in the data, or its key once merged)."""
        return np.lexsort((g, rows))

    def _side_built(self, s, side, rows, cols, g, bands):
        """Called with each side once laid out (``rows``, ``cols``, ``g`` in its order)."""

    def _users_built(self, u, i, r, g):
        """Called with the user band's ratings (merged, ordered by key)."""
