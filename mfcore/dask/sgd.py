"""DSGD on the shards over the local block grid (``SGD(block_grid=...)``), worker to worker.

Shard w owns whole user groups of the grid (its user band) and trains, in each round of an
epoch, the blocks of its user groups with the local block kernel, records and order. An
item group travels from shard to shard along the epoch's schedule (known to all at its
start): after round s the shard that used it sends it straight to the shard that pairs it
in round s + 1 (``Shard.send``); with one worker nothing moves and the epoch is one kernel
call, as locally. The client makes one call per shard and epoch: the schedule and the seed
out; the blocks' squared errors, finiteness and each row's penalty per rating
(``penalty_terms``, 8 bytes a row of its user band and held item groups) back, from which
the client weighs the history's penalty as the local trainer does (``penalty_of``: the
local value bit for bit, which a sum of the shards' sums would not be). The model reaches
the client at the end, and after every epoch only when validation data or a callback read
it.
"""
import time

import numpy as np

from .._kernels import sgd as _sgd_kernels
from ..estimators.base import from_standard, standard_units, standardized, to_standard
from ..estimators.sgd import SGDEpochs as _LocalEpochs
from ..estimators.sgd import choose_grid, groups_of_counts, layout_blocks, penalty_terms, schedule
from ._cluster import ShardsCheckFinite, row_counts
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
        self.sizes, self.scale = sizes, scale
        self.units = standard_units(scale)
        self.P, self.bu, self.Q, self.bi = (
            np.array(to_standard(a, self.units, name)) for a, name in (
                (user_factors, "user_factors_"), (user_bias, "user_bias_"),
                (item_factors, "item_factors_"), (item_bias, "item_bias_")))
        self.item_starts = np.searchsorted(item_groups, np.arange(grid + 1))
        self.holder = None  # who holds each item group (None: everyone, at the start)
        return sizes

    def sgd_epoch(self, epoch, rounds, seed, lr, reg, reg_bias, timeout):
        """One epoch of this band's blocks, round by round, the item groups passed along the
        schedule. Returns (the squared error of each block, 0 for others' blocks, whether
        the band and held groups are finite, kernel seconds, bytes sent, the held item
        groups, the penalty terms of the band's users and of the held groups' items)."""
        g, me = self.grid, self.band
        deadline = time.monotonic() + timeout
        pairs = rounds.reshape(g, g)
        user_of = np.empty((g, g), dtype=np.int64)  # round s: the user group item group c meets
        user_of[np.arange(g)[:, None], pairs % g] = pairs // g
        holders = self.owner[user_of]
        block_sse, seconds, sent = np.zeros(g * g), 0.0, 0
        if len(self.peers) == 1:  # the whole epoch in one call, as locally
            start = time.perf_counter()
            self._train(rounds, self.records, self.block_ptr, seed, lr, reg, reg_bias,
                        block_sse)
            seconds = time.perf_counter() - start
        if len(self.peers) > 1 and self.holder is not None:  # from the last epoch's holders
            sent += self._pass_on(epoch, 0, self.holder, holders[0], deadline)
        for s in range(g) if len(self.peers) > 1 else ():
            previous = self.holder if s == 0 else holders[s - 1]
            wanted = [c for c in range(g) if holders[s, c] == me and previous is not None
                      and previous[c] != me]
            got = self.receive([((epoch, s, c), previous[c]) for c in wanted], deadline)
            for c in wanted:
                rows = slice(self.item_starts[c], self.item_starts[c + 1])
                self.Q[rows], self.bi[rows] = got[(epoch, s, c), previous[c]]
            start = time.perf_counter()
            self._train_round(pairs[s], rounds, seed, lr, reg, reg_bias, block_sse)
            seconds += time.perf_counter() - start
            if s + 1 < g:
                sent += self._pass_on(epoch, s + 1, holders[s], holders[s + 1], deadline)
        self.holder = holders[-1]
        # the epoch's end: rating units out, and back in as the local epoch does
        self.bands_now = self._rating_units()
        (P, bu, Q, bi), _ = self.bands_now
        finite = all(np.isfinite(a).all() for a in self.bands_now[0])
        terms = [penalty_terms(f, b, reg * self.scale, reg_bias) if finite else None
                 for f, b in ((P, bu), (Q, bi))]
        return (block_sse, finite, seconds, sent, np.flatnonzero(self.holder == me), *terms)

    def _train(self, rounds, records, ptr, seed, lr, reg, reg_bias, block_sse):
        """The local block kernel over ``records`` (grouped by block at ``ptr``)."""
        scratch = np.empty(_sgd_kernels.scratch_size(int(np.diff(ptr).max(initial=0)),
                                                     self.n_threads), dtype=np.int32)
        _sgd_kernels.sgd_blocks(records.view(np.uint8), ptr, rounds, self.grid, seed, True,
                                scratch, self.P, self.Q, self.bu, self.bi, 0.0, lr, reg,
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
        records = np.concatenate([self.records[self.block_ptr[b]:self.block_ptr[b + 1]]
                                  for b in mine])
        sse = np.zeros(g * g)  # (the kernel writes every block's entry)
        self._train(rounds, records, ptr, seed, lr, reg, reg_bias, sse)
        block_sse[mine] = sse[mine]

    def _pass_on(self, epoch, s, now, then, deadline):
        """Send the item groups this shard holds (``now``) to their holders in round ``s``
        (``then``); returns the bytes sent."""
        sent, futures = 0, []
        for c in np.flatnonzero((now == self.band) & (then != self.band)):
            rows = slice(self.item_starts[c], self.item_starts[c + 1])
            part = (self.Q[rows].copy(), self.bi[rows].copy())
            futures.append(self.send(int(then[c]), (epoch, s, int(c)), part))
            sent += part[0].nbytes + part[1].nbytes
        self.settle(futures, (epoch, s), deadline)
        return sent

    def _rating_units(self):
        """(this band's user factors and biases, the held item groups' rows (a mask), their
        factors and biases) in rating units, after the parameters went out and back in as
        the local epoch's do."""
        held = np.zeros(len(self.Q), dtype=bool)
        for c in np.flatnonzero(self.holder == self.band):
            held[self.item_starts[c]:self.item_starts[c + 1]] = True
        out = []
        for name, a, rows in (("user_factors_", self.P, slice(None)),
                              ("user_bias_", self.bu, slice(None)),
                              ("item_factors_", self.Q, held), ("item_bias_", self.bi, held)):
            value = from_standard(a[rows], self.units, name)
            a[rows] = to_standard(value, self.units, name)
            out.append(value)
        return out, held

    def bands(self):
        """The last epoch's end in rating units (see ``_rating_units``)."""
        return self.bands_now


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
        g, edges, m = plan["grid"], plan["user_edges"], model
        owner = np.repeat(np.arange(len(plan["owned"])), [hi - lo for lo, hi in plan["owned"]])
        cluster.connect()
        sizes = cluster.call_each("sgd_setup", 0, [
            (g, plan["user_groups"], plan["item_groups"], owner, m.user_factors_[lo:hi],
             m.user_bias_[lo:hi], m.item_factors_, m.item_bias_, m.global_mean_,
             m.rating_scale_) for lo, hi in zip(edges[:-1], edges[1:])])
        self.block_sizes = np.sum(sizes, axis=0)  # of all the data, as the local layout's

    def step(self, epoch):
        """One epoch in standardized units on the shards, as the local ``SGDEpochs.step``."""
        m, lr, g = self.model, self.lr(epoch), self.plan_["grid"]
        rounds = schedule(g, self.block_sizes, m.rng_)
        seed = int(m.rng_.integers(0, 2**63))
        results = self.cluster.call("sgd_epoch", epoch, epoch, rounds, seed, lr, self.reg,
                                    self.reg_bias, self.cluster.EXCHANGE_TIMEOUT)
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
        return {"sse": sse * m.rating_scale_ ** 2 if finite else np.nan, "lr": lr,
                "exchanged_bytes": received, "peer_bytes": sum(r[3] for r in results),
                "shard_seconds": max(r[2] for r in results)}

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
