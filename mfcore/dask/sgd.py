"""DSGD on the shards over the local block grid (``SGD(block_grid=...)``): shard w owns whole
user groups of the grid; each round of an epoch sends every block of the round the item
group it pairs with, to the shard owning its user group, and takes the group back; the user
bands come back after the last round."""
import time

import numpy as np

from .._kernels import sgd as _sgd_kernels
from ..estimators.base import from_standard, standard_units, standardized, to_standard
from ..estimators.sgd import SGDEpochs as _LocalEpochs
from ..estimators.sgd import choose_grid, groups_of_counts, layout_blocks, schedule
from ._cluster import row_counts
from ._shard import Shard


class SGDShard(Shard):
    """A worker's user groups of the block grid: their records and user parameters."""

    def _users_built(self, u, i, r, g):
        """Keep the user band's ratings in the local data's order (SGD's layout)."""
        data_order = np.argsort(g, kind="stable")
        self.data = (u[data_order], i[data_order], r[data_order])

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


class SGDEpochs(_LocalEpochs):
    """SGD's trainer over the shards (DSGD on the local block grid): shard w owns the user
    groups ``plan["owned"][w]``; each of an epoch's rounds sends every block of the round
    the item group it pairs with, to the shard owning its user group, and takes the
    group back; the user bands come back after the last round."""

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
                "owned": owned, "user_edges": edges,
                "item_starts": np.searchsorted(item_groups, np.arange(g + 1))}

    def __init__(self, model, cluster, band_rows, band_counts, params, plan, watched=False):
        super().__init__(model, None, params, *row_counts(model, band_rows, band_counts))
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
            bands = [r[3] for r in results]  # the user bands, returned by the last round
        edges = plan["user_edges"]
        for b, users in enumerate(bands):
            m.user_factors_[edges[b]:edges[b + 1]], m.user_bias_[edges[b]:edges[b + 1]] = users
            exchanged += users[0].nbytes + users[1].nbytes
        from_standard(Q, units, "item_factors_", out=m.item_factors_)
        from_standard(bi, units, "item_bias_", out=m.item_bias_)
        sse = 0.0
        for value in block_sse:  # in block order, as the local kernel adds them
            sse += value
        return {"sse": sse * m.rating_scale_ ** 2, "lr": lr, "exchanged_bytes": exchanged, "shard_seconds": compute}


