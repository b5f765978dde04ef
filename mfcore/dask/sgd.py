"""DSGD on the shards over the local block grid (``SGD(block_grid=...)``), worker to worker.

Shard w owns whole user groups of the grid (its user band) and trains, in each round of an
epoch, the blocks of its user groups with the local block kernel, records and order. An
item group travels from shard to shard along the epoch's schedule (known to all at its
start): after round s the shard that used it sends it straight to the shard that pairs it
in round s + 1 (``Shard.send``); with one worker nothing moves and the epoch is one kernel
call on the shard's records as laid out, as locally.

The client makes one call per shard and epoch: the schedule and the seed out; the blocks'
squared errors, finiteness and each row's penalty per rating (``penalty_terms``, 8 bytes a
row of its user band and held item groups) back, from which the client weighs the
history's penalty as the local trainer does (``penalty_of``: the local value bit for bit,
which a sum of the shards' sums would not be). An epoch's call goes out while the shards
still run the epoch before (its inputs do not depend on that epoch's results), so a shard
goes from one epoch to the next without waiting for a round trip through the client. The
model reaches the client at the end, and after every epoch only when validation data or a
callback read it (then each call waits for the model of the epoch before).
"""
import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._kernels import sgd as _sgd_kernels
from ..estimators.base import from_standard, standard_units, standardized, to_standard
from ..estimators.sgd import SGDEpochs as _LocalEpochs
from ..estimators.sgd import (choose_grid, groups_of_counts, layout_blocks, on_cache_lines,
                               penalty_terms, schedule)
from ._cluster import Packed, ShardsCheckFinite, row_counts
from ._shard import Shard


class SGDShard(Shard):
    """A worker's user groups of the block grid: their records and user parameters, and the
    item groups it holds."""

    def _users_built(self, u, i, r, g):
        """Keep the user band's ratings in the local data's order (SGD's layout)."""
        data_order = np.argsort(g, kind="stable")
        self.data = (u[data_order], i[data_order], r[data_order])

    def sgd_setup(self, grid, user_groups, item_groups, owner, user_factors, user_bias,
                  item_factors, item_bias, mu, scale):
        """SGD's layout of this user band: the local block grid's records of its blocks, in
        the local order (``layout_records``: data order, then each block's fixed shuffle),
        with band-relative user rows and standardized ratings; the band's user parameters
        and the whole initial item side in standardized units; ``owner``: the shard of
        every user group. Returns the band's size of every block."""
        u, i, r = self.data
        r = standardized(r, mu, scale, r.dtype)
        self.data = None
        self.grid, self.owner = grid, owner
        block = user_groups[u] * np.int32(grid) + item_groups[i]
        self.records, self.block_ptr, sizes = layout_blocks(
            block, (u - self.user_range[0]).astype(np.int32), i, r, grid * grid, self.n_threads)
        self.record_bytes = self.records.view(np.uint8)
        self.sizes, self.scale = sizes, scale
        self.units = standard_units(scale)
        # the parameters the kernel trains, in standardized units, starting on a cache line
        # as the local trainer's (``SGDEpochs._work``); ``rated``: the same in rating units
        self.names = ("user_factors_", "user_bias_", "item_factors_", "item_bias_")
        self.trained = [to_standard(a, self.units, name, out=on_cache_lines(a.shape, a.dtype))
                        for a, name in zip((user_factors, user_bias, item_factors, item_bias),
                                           self.names)]
        self.P, self.bu, self.Q, self.bi = self.trained
        self.rated = [np.empty_like(a) for a in self.trained]
        self.scratch = np.empty(_sgd_kernels.scratch_size(int(sizes.max(initial=0)),
                                                          self.n_threads), dtype=np.int32)
        self.item_starts = np.searchsorted(item_groups, np.arange(grid + 1))
        self.holder = None  # who holds each item group (None: everyone, at the start)
        self.epochs_run, self.finite, self.turn = 0, True, asyncio.Condition()
        self.runner = ThreadPoolExecutor(1, thread_name_prefix=f"mfcore-sgd-shard-{self.band}")
        return sizes

    async def sgd_epoch(self, epoch, inputs):
        """Epoch ``epoch`` (``_epoch``, its ``inputs``: ``Packed(rounds, seed, lr, reg,
        reg_bias, timeout)``) on this shard's own thread, once epoch ``epoch - 1`` has run:
        the client sends an epoch's call before the last one's results are back
        (``SGDEpochs.step``), and two calls sent together may arrive in either order. Waits
        on the worker's event loop (an ``async`` method), at most ``timeout`` seconds; after
        a non-finite epoch it trains no more (the fit has failed) and returns None."""
        rounds, seed, lr, reg, reg_bias, timeout = inputs.values
        deadline = time.monotonic() + timeout
        async with self.turn:
            while self.epochs_run < epoch - 1:
                self._still_waiting(("epoch", epoch), deadline)
                with contextlib.suppress(asyncio.TimeoutError):  # (to check for an abort)
                    await asyncio.wait_for(self.turn.wait(), 0.25)
        if not self.finite:
            return None
        out = await asyncio.get_running_loop().run_in_executor(
            self.runner, self._epoch, epoch, rounds, seed, lr, reg, reg_bias, deadline)
        async with self.turn:
            self.epochs_run, self.finite = epoch, out[1]
            self.turn.notify_all()
        return Packed(*out)

    def _epoch(self, epoch, rounds, seed, lr, reg, reg_bias, deadline):
        """One epoch of this band's blocks, round by round, the item groups passed along the
        schedule. Returns (the squared error of each block, 0 for others' blocks, whether
        the band and held groups are finite, kernel seconds, bytes sent, the held item
        groups, the penalty terms of the band's users and of the held groups' items)."""
        g, me = self.grid, self.band
        pairs = rounds.reshape(g, g)
        user_of = np.empty((g, g), dtype=np.int64)  # round s: the user group item group c meets
        user_of[np.arange(g)[:, None], pairs % g] = pairs // g
        holders = self.owner[user_of]
        block_sse, seconds, sent = np.zeros(g * g), 0.0, 0
        if len(self.peers) == 1:  # the whole epoch in one call, as locally
            start = time.perf_counter()
            self._train(rounds, self.record_bytes, self.block_ptr, seed, lr, reg, reg_bias,
                        block_sse)
            seconds = time.perf_counter() - start
        in_flight = []  # the last round's sends: settled once this round has trained
        if len(self.peers) > 1 and self.holder is not None:  # from the last epoch's holders
            in_flight = self._pass_on(epoch, 0, self.holder, holders[0])
        for s in range(g) if len(self.peers) > 1 else ():
            self._take(epoch, s, self.holder if s == 0 else holders[s - 1], holders[s], deadline)
            start = time.perf_counter()
            self._train_round(pairs[s], rounds, seed, lr, reg, reg_bias, block_sse)
            seconds += time.perf_counter() - start
            self.settle([f for f, _ in in_flight], (epoch, s), deadline)
            sent += sum(n for _, n in in_flight)
            in_flight = self._pass_on(epoch, s + 1, holders[s], holders[s + 1]) if s + 1 < g else []
        self.holder = holders[-1]
        runs, finite = self._rating_units()
        terms = self._penalty_terms(runs, reg * self.scale, reg_bias) if finite else (None, None)
        return (block_sse, finite, seconds, sent, np.flatnonzero(self.holder == me), *terms)

    def _train(self, rounds, records, ptr, seed, lr, reg, reg_bias, block_sse):
        """The local block kernel over ``records`` (their bytes, grouped by block at
        ``ptr``)."""
        _sgd_kernels.sgd_blocks(records, ptr, rounds, self.grid, seed, True,
                                self.scratch, self.P, self.Q, self.bu, self.bi, 0.0, lr, reg,
                                reg_bias, block_sse, self.n_threads)

    def _train_round(self, blocks, rounds, seed, lr, reg, reg_bias, block_sse):
        """This band's blocks of one round (``blocks``: the round's block ids)."""
        g = self.grid
        mine = sorted(int(b) for b in blocks if self.owner[b // g] == self.band and self.sizes[b])
        if not mine:
            return
        sizes = np.zeros(g * g, dtype=np.int64)
        sizes[mine] = self.sizes[mine]
        ptr = np.zeros(g * g + 1, dtype=np.int64)
        np.cumsum(sizes, out=ptr[1:])
        size = self.records.itemsize  # (bytes: a structured concatenate is 30x slower)
        records = np.concatenate([self.record_bytes[self.block_ptr[b] * size:
                                                    self.block_ptr[b + 1] * size] for b in mine])
        sse = np.zeros(g * g)  # (the kernel writes every block's entry)
        self._train(rounds, records, ptr, seed, lr, reg, reg_bias, sse)
        block_sse[mine] = sse[mine]

    def _pass_on(self, epoch, s, now, then):
        """Start sending the item groups this shard holds (``now``) to their holders in round
        ``s`` (``then``), one message to each receiving shard; returns (each send's future,
        its bytes). Their receivers wait for them (``_take``); the sender settles them a
        round later, so that waiting for the acknowledgements is not on the way from one
        round to the next."""
        moving = np.flatnonzero((now == self.band) & (then != self.band))
        sends = []
        for b in np.unique(then[moving]):
            groups = [(int(c), self.Q[lo:hi].copy(), self.bi[lo:hi].copy())
                      for c in moving[then[moving] == b]
                      for lo, hi in [(self.item_starts[c], self.item_starts[c + 1])]]
            sends.append((self.send(int(b), (epoch, s), Packed(*groups)),
                          sum(q.nbytes + bias.nbytes for _, q, bias in groups)))
        return sends

    def _take(self, epoch, s, then, now, deadline):
        """Receive the item groups this shard holds in round ``s`` (``now``) from the shards
        that held them (``then``; None at the start: every shard holds the initial ones)."""
        if then is None:
            return
        coming = np.flatnonzero((now == self.band) & (then != self.band))
        got = self.receive([((epoch, s), int(b)) for b in np.unique(then[coming])], deadline)
        for part in got.values():
            for c, factors, bias in part.values:
                lo, hi = self.item_starts[c], self.item_starts[c + 1]
                self.Q[lo:hi], self.bi[lo:hi] = factors, bias

    def _held_runs(self):
        """The item rows of the item groups this shard holds, as ``(start, stop)`` runs
        (adjacent groups joined), in row order."""
        runs = []
        for c in np.flatnonzero(self.holder == self.band):
            lo, hi = int(self.item_starts[c]), int(self.item_starts[c + 1])
            if runs and runs[-1][1] == lo:
                runs[-1][1] = hi
            else:
                runs.append([lo, hi])
        return runs

    def _rating_units(self):
        """The epoch's end: this band's user rows and the held item rows into rating units
        (``self.rated``) and back into standardized units, in place, as the local epoch's
        parameters go out and back in (the same rounding). Returns (the held item runs,
        whether all those rows are finite)."""
        runs, finite = self._held_runs(), True
        everyone = [(0, len(self.P))]
        for name, a, out, rows in zip(self.names, self.trained, self.rated,
                                      (everyone, everyone, runs, runs)):
            for lo, hi in rows:
                from_standard(a[lo:hi], self.units, name, out=out[lo:hi])
                to_standard(out[lo:hi], self.units, name, out=a[lo:hi])
                finite = finite and bool(np.isfinite(out[lo:hi]).all())
        return runs, finite

    def _penalty_terms(self, runs, reg, reg_bias):
        """(the band's users' ``penalty_terms``, the held items', in row order) in rating
        units (``reg`` too)."""
        P, bu, Q, bi = self.rated
        items = [penalty_terms(Q[lo:hi], bi[lo:hi], reg, reg_bias) for lo, hi in runs]
        return penalty_terms(P, bu, reg, reg_bias), np.concatenate([np.empty(0), *items])

    def bands(self):
        """The last epoch's end in rating units: this band's user factors and biases, the
        held item groups' rows (a mask), their factors and biases."""
        held = np.zeros(len(self.Q), dtype=bool)
        for lo, hi in self._held_runs():
            held[lo:hi] = True
        P, bu, Q, bi = self.rated
        return (P.copy(), bu.copy(), Q[held], bi[held]), held


class SGDEpochs(ShardsCheckFinite, _LocalEpochs):
    """SGD's trainer over the shards (DSGD on the local block grid): shard w owns the user
    groups ``plan["owned"][w]``; one ``sgd_epoch`` call per shard and epoch; the penalty
    from the shards' per-row terms; the model gathered when validation or a callback reads
    it, else at the end."""

    SHARD = SGDShard

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
                "owned": owned, "user_edges": edges}

    def __init__(self, model, cluster, band_rows, band_counts, params, plan, watched=False,
                 validation=None):
        super().__init__(model, None, params, *row_counts(model, band_rows, band_counts))
        self.cluster, self.plan_ = cluster, plan
        self.gathering, self.penalty_now = watched or validation is not None, 0.0
        self.last_epoch = model.n_epochs_ + model.max_epochs(params)
        self.sent = {}  # epoch: (its rate, its calls), sent ahead (``step``)
        g, edges, m = plan["grid"], plan["user_edges"], model
        owner = np.repeat(np.arange(len(plan["owned"])), [hi - lo for lo, hi in plan["owned"]])
        cluster.connect()
        sizes = cluster.call_each("sgd_setup", 0, [
            (g, plan["user_groups"], plan["item_groups"], owner, m.user_factors_[lo:hi],
             m.user_bias_[lo:hi], m.item_factors_, m.item_bias_, m.global_mean_,
             m.rating_scale_) for lo, hi in zip(edges[:-1], edges[1:])])
        self.block_sizes = np.sum(sizes, axis=0)  # of all the data, as the local layout's

    def step(self, epoch):
        """One epoch in standardized units on the shards, as the local ``SGDEpochs.step``.
        Unless the model is read after every epoch, the next epoch's call goes out before
        this one's results are waited for: its inputs (the rate, the schedule and the seed,
        drawn in the local order) do not depend on them, so the shards start it as soon as
        this one ends, without a round trip through the client between epochs."""
        lr, pending = self.sent.pop(epoch, None) or self._send(epoch)
        if not self.gathering and epoch < self.last_epoch:
            self.sent[epoch + 1] = self._send(epoch + 1)
        results = [r.values for r in self.cluster.results(pending)]
        block_sse = np.sum([r[0] for r in results], axis=0)  # (each block on one shard)
        sse = 0.0
        for value in block_sse:  # in block order, as the local kernel adds them
            sse += value
        finite = all(r[1] for r in results)
        received = self._penalty(results) if finite else 0
        # exchanged_bytes: through the client (the penalty terms; the model when read);
        # peer_bytes: the item groups the shards passed each other
        if self.gathering and finite:
            received += self._gather(epoch)
        return {"sse": sse * self.model.rating_scale_ ** 2 if finite else np.nan, "lr": lr,
                "exchanged_bytes": received, "peer_bytes": sum(r[3] for r in results),
                "shard_seconds": max(r[2] for r in results)}

    def _send(self, epoch):
        """(the rate, the pending ``sgd_epoch`` calls) of epoch ``epoch``, its schedule and
        seed drawn from the model's generator as the local epoch draws them."""
        lr = self.lr(epoch)
        rounds = schedule(self.plan_["grid"], self.block_sizes, self.model.rng_)
        seed = int(self.model.rng_.integers(0, 2**63))
        return lr, self.cluster.send("sgd_epoch", epoch, epoch, Packed(
            rounds, seed, lr, self.reg, self.reg_bias, self.cluster.EXCHANGE_TIMEOUT))

    def _penalty(self, results):
        """The history's penalty from the shards' per-row terms, as the local trainer weighs
        them (``penalty_of``); returns the bytes received."""
        edges, groups = self.plan_["user_edges"], self.plan_["item_groups"]
        user_terms, item_terms = np.empty(len(self.user_counts)), np.empty(len(groups))
        for b, (*_, held, users, items) in enumerate(results):
            user_terms[edges[b]:edges[b + 1]] = users
            item_terms[np.isin(groups, held)] = items
        self.penalty_now = self.penalty_of(user_terms, item_terms)
        return sum(r[5].nbytes + r[6].nbytes + r[4].nbytes for r in results)

    def penalty(self):
        return self.penalty_now

    def finalize(self):
        """The model, once, at the end (when gathered every epoch it is here already, maybe
        restored to the best epoch)."""
        if not self.gathering and self.model.n_epochs_:  # (no epoch: the initial model)
            self._gather(self.model.n_epochs_)

    def _gather(self, epoch):
        """Write every shard's user band and held item groups into the model's arrays (in
        rating units); return the bytes received."""
        m, edges, received = self.model, self.plan_["user_edges"], 0
        for b, ((P, bu, Q, bi), held) in enumerate(self.cluster.call("bands", epoch)):
            m.user_factors_[edges[b]:edges[b + 1]], m.user_bias_[edges[b]:edges[b + 1]] = P, bu
            m.item_factors_[held], m.item_bias_[held] = Q, bi
            received += P.nbytes + bu.nbytes + Q.nbytes + bi.nbytes + held.nbytes
        return received
