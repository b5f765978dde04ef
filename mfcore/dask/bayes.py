"""BayesianMF on the shards: the client holds the sampler's parameters (float64) and draws
the hyperparameters and the noise precision from them (``draw_hyper_and_noise``, with the
sum of squares added chunk by chunk as the local sweep adds it); each half-sweep sends the
other side's factors to every shard, which draws its band's rows (``gibbs_rows``, the
local counters). The residuals are the sampler's running state, so they travel too: each
rating's, from the shard of its item band to that of its user band and back."""
import time

import numpy as np

from .._kernels import bayes as _bayes
from .._kernels import predict as _predict
from .._threads import resolve_n_threads
from ..estimators.base import standardized
from ..estimators.bayes import GibbsSweeps as _LocalSweeps
from ._shard import Shard


class BayesShard(Shard):
    """A worker's bands in the sampler's layout, with their residuals."""

    @staticmethod
    def _row_order(rows, cols, g):
        """A row's ratings by the other side's row, then data order (the sampler's layout)."""
        return np.lexsort((g, cols, rows))

    def _side_built(self, s, side, rows, cols, g, bands):
        """Which of this side's ratings each band of the other side exchanges residuals
        with, in (u, i, t) order."""
        canon = np.lexsort((g, rows, cols) if s else (g, cols, rows))
        band = np.searchsorted(bands[1 - s], cols[canon], side="right") - 1
        side.exchange = [canon[band == b] for b in range(len(bands[1 - s]) - 1)]

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


class GibbsSweeps(_LocalSweeps):
    """BayesianMF's trainer over the shards. The client holds the whole state's parameters
    (float64), draws the hyperparameters and the noise precision from them
    (``draw_hyper_and_noise``, with the sum of squares added chunk by chunk as the local
    sweep adds it); each half-sweep sends the other side's factors to every shard, which
    draws its band's rows (``gibbs_rows``, the local counters). The residuals are the
    sampler's running state, so they travel too: each rating's, from the shard of its item
    band to that of its user band and back, every sweep."""

    SHARD = BayesShard

    @staticmethod
    def plan(built, bands, n_ratings, params):
        return None

    def __init__(self, model, cluster, band_rows, band_counts, params, plan, watched=False):
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


