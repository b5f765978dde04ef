"""BayesianMF on the shards, worker to worker.

Every shard holds the sampler's whole state (the parameters in standardized units,
float64, and the hyperparameters) and draws, redundantly, the hyperparameters and the
noise precision (``draw_hyper_and_noise``: counter-based, so every shard draws the
numbers the local sweep draws) from the sum of squared residuals, which it adds chunk by
chunk as the local sweep adds it, from every shard's chunk sums (a small allgather). Then
each half-sweep draws the shard's band of one side (``gibbs_rows``, the local counters)
and allgathers it. The residuals are the sampler's running state: each rating's goes from
the shard of its item band to the shard of its user band and back every sweep, shard to
shard (``Shard.alltoall``); none reaches the client. Per sweep the client makes one call
per shard and gets scalars back (the noise precision, the sum of squares, the user
hyperparameters, finiteness, seconds, and shard 0's score of the validation data by the
local sampler's rule, ``posterior_rmse``); the kept samples stay on the shards, in bands,
until the end, when the client gathers them (and the current sample after every sweep when
a callback needs it).
"""
import time

import numpy as np

from .._kernels import bayes as _bayes
from .._kernels import predict as _predict
from .._threads import resolve_n_threads
from ..estimators.base import standardized
from ..estimators.bayes import GibbsSweeps as _LocalSweeps
from ..estimators.bayes import posterior_rmse
from ._cluster import ShardsCheckFinite
from ._shard import Shard


def sum_of_squares(chunks):
    """The sweep's sum of squared residuals as the local sweep adds it, from every item
    band's ``BayesShard.chunks``: the chunk sums in chunk order."""
    sums, raw = {}, {}
    for band in chunks:
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


class BayesShard(Shard):
    """A worker's bands in the sampler's layout, their residuals, and the whole state."""

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

    def bayes_setup(self, state, mu, scale, item_offset, n, seed, priors, keep, bands,
                    validation=None):
        """The sampler's whole ``state`` (P, Q, bu, bi in standardized units, float64), the
        residuals of this item band's ratings from it (as the local sampler computes them),
        this band's start in the item-CSR order (``item_offset``: the sum of squares' chunks),
        the number of ratings, the chain's seed, the priors (alpha_0, beta_0, alpha_lambda,
        beta_lambda), ``keep`` (burn-in, thinning: which sweeps' samples are kept), the
        edges of every band of both sides and the validation rows this shard scores,
        ``(u, i, r, (lo, hi))`` or None."""
        users, items = self.sides
        self.state = [np.array(a) for a in state]  # own, writable copies
        P, Q, bu, bi = self.state
        k = P.shape[1]
        self.hyper = np.zeros((2, k + 1)), np.zeros((2, k + 1))
        self.n, self.seed, self.priors, self.keep, self.bands_of = n, seed, priors, keep, bands
        self.residual = [np.empty(len(users.values)), np.empty(len(items.values))]
        self.item_offset, self.kept = item_offset, {}
        self.mu, self.scale, self.validation, self.val_sum = mu, scale, validation, None
        # with one shard every residual is here: each side gathers its residuals from the
        # other side's order in one pass (``direct``), as the local sweep does
        self.direct = [None, None]
        if len(bands[0]) == 2:
            for s in (0, 1):
                self.direct[s] = np.empty(len(self.sides[s].values), dtype=np.int64)
                self.direct[s][self.sides[s].exchange[0]] = self.sides[1 - s].exchange[0]
        rows = np.repeat(np.arange(*self.item_range, dtype=np.int32), np.diff(items.full_ptr))
        pred = np.empty(len(rows))
        _predict.predict(items.cols, rows, P, Q, bu, bi, 0.0, -np.inf, np.inf, pred,
                         self.n_threads)
        self.residual[1][:] = standardized(items.values, mu, scale) - pred
        first, last = self._whole_chunks()  # the first sweep's sums of squares
        self.sums = _bayes.chunk_sse(self.residual[1][first:last])

    def _whole_chunks(self):
        """The first and the end of the item-CSR chunks (``bayes.CHUNK``) wholly inside this
        item band, relative to the band's start."""
        start, n, C = self.item_offset, len(self.residual[1]), _bayes.CHUNK
        first = min(-(-start // C) * C - start, n)
        return first, max((start + n) // C * C - start, first)

    def chunks(self):
        """This item band's part of the sweep's sum of squared residuals: the sums of the
        item-CSR chunks wholly inside it (``self.sums``: the last item half-sweep's, or the
        set-up's), and the residuals of the chunks it shares with its neighbours,
        ``(chunk, "sum" or "raw", values)``."""
        e, start, C = self.residual[1], self.item_offset, _bayes.CHUNK
        first, last = self._whole_chunks()
        out = []
        if not len(e):
            return out
        if first > 0:
            out.append((start // C, "raw", e[:first]))
        if last > first:
            out.append(((start + first) // C, "sum", self.sums.copy()))
        if last < len(e) and first < len(e):
            out.append(((start + last) // C, "raw", e[last:]))
        return out

    def sweep(self, sweep, timeout):
        """One sweep: the sum of squares, the draws of the hyperparameters and the noise, then
        per side the residuals in, the band drawn and allgathered, the residuals out.
        Returns (alpha, the sum of squares, the user and item hyperparameters, whether this
        shard's bands are finite, kernel seconds, bytes sent, the validation RMSE or None)."""
        start, sent = time.perf_counter(), 0
        chunks = self.chunks()
        sse = sum_of_squares(self.allgather((sweep, "sse"), chunks, timeout))
        P, Q, bu, bi = self.state
        a0, b0, a_lambda, b_lambda = self.priors
        alpha = _bayes.draw_hyper_and_noise(P, Q, bu, bi, *self.hyper, self.n, sse, self.seed,
                                            sweep - 1, self.n_threads, a0, b0, 0.0, 1.0,
                                            a_lambda, b_lambda)
        waited = 0.0
        for s, (factors, bias, other) in enumerate(((P, bu, Q), (Q, bi, P))):
            side, e = self.sides[s], self.residual[s]
            mark = time.perf_counter()  # the other side's shards send this band's residuals
            sent += self._residuals_in(sweep, s, timeout)
            waited += time.perf_counter() - mark
            band = slice(*(self.user_range, self.item_range)[s])
            # one shard gathers in the kernel; the item half adds the next sweep's squares
            gather = {} if self.direct[s] is None else {"pos": self.direct[s],
                                                        "source": self.residual[1 - s]}
            if s == 1:
                gather.update(chunk_sums=self.sums, chunk_start=self._whole_chunks()[0])
            _bayes.gibbs_rows(side.full_ptr, side.cols, e, factors[band], bias[band], other,
                              self.hyper[s], alpha, self.seed, ("user", "item")[s], sweep - 1,
                              side.lo, self.n_threads, **gather)
            mark = time.perf_counter()  # (views: sent before allgather returns)
            parts = self.allgather((sweep, s), (factors[band], bias[band]), timeout)
            edges = self.bands_of[s]
            for b, (band_factors, band_bias) in enumerate(parts):
                if b != self.band:
                    factors[edges[b]:edges[b + 1]] = band_factors
                    bias[edges[b]:edges[b + 1]] = band_bias
            sent += (len(parts) - 1) * (parts[0][0].nbytes + parts[0][1].nbytes)
            waited += time.perf_counter() - mark
        sent += (len(self.peers) - 1) * sum(v.nbytes for _, _, v in chunks)
        burn_in, thin = self.keep
        keeping = sweep > burn_in and (sweep - burn_in) % thin == 0
        if keeping:
            self.kept[sweep] = self.bands()
        finite = all(np.isfinite(a).all() for a in self._band_views())
        return (alpha, sse, self.hyper[0].copy(), self.hyper[1].copy(), finite,
                time.perf_counter() - start - waited, sent,
                self._score(keeping) if finite else None)

    def _score(self, keeping):
        """The validation rows' RMSE (``posterior_rmse``, as the local sampler scores them:
        the current sample's predictions, added to the running sum if kept), or None."""
        if self.validation is None:
            return None
        u, i, r, rating_range = self.validation
        P, Q, bu, bi = self.state
        pred = np.empty(len(u))
        _predict.predict(u, i, P, Q, bu, bi, 0.0, -np.inf, np.inf, pred, self.n_threads)
        rmse, self.val_sum = posterior_rmse(self.mu + self.scale * pred, r, rating_range,
                                            len(self.kept), keeping, self.val_sum)
        return rmse

    def _residuals_in(self, sweep, s, timeout):
        """Side ``s``'s residuals, in its order, from the other side's: the pieces of the
        other bands' shards (``Shard.alltoall``); with one shard ``gibbs_rows`` gathers them
        (``self.direct``). Returns the bytes sent."""
        e, source = self.residual[s], self.residual[1 - s]
        if self.direct[s] is not None:  # (gathered by the kernel)
            return 0
        out = [source[idx] for idx in self.sides[1 - s].exchange]
        for idx, piece in zip(self.sides[s].exchange, self.alltoall((sweep, s, "residual"),
                                                                    out, timeout)):
            e[idx] = piece
        return sum(piece.nbytes for c, piece in enumerate(out) if c != self.band)

    def _band_views(self):
        """This shard's rows of the state: its user band's P and bu, its item band's Q and bi."""
        P, Q, bu, bi = self.state
        users, items = slice(*self.user_range), slice(*self.item_range)
        return P[users], Q[items], bu[users], bi[items]

    def bands(self, sweep=None):
        """Copies of this shard's rows of the state (``_band_views``) now, or at kept
        ``sweep``."""
        if sweep is not None:
            return self.kept[sweep]
        return tuple(a.copy() for a in self._band_views())


class GibbsSweeps(ShardsCheckFinite, _LocalSweeps):
    """BayesianMF's trainer over the shards: one ``sweep`` call per shard and sweep; the
    client keeps only the scalars and the hyperparameters, and gathers the state when
    someone reads it (watched) and the kept samples at the end."""

    SHARD = BayesShard

    @staticmethod
    def plan(built, bands, n_ratings, params):
        return None

    def __init__(self, model, cluster, band_rows, band_counts, params, plan, watched=False,
                 validation=None):
        self.model, self.params, self.cluster, self.watched = model, params, cluster, watched
        self.val_rmse = None
        self.n_threads = resolve_n_threads(params["n_threads"])
        self.n = int(sum(c.sum() for c in band_counts[0]))
        self._start_state(model)
        self.implicit, self.P_seen, self.Q_seen = None, self.P, self.Q
        self.features = {}  # side features are not trained on Dask (fit takes none)
        self.seed = int(model.rng_.integers(0, 2**63))
        self.burn_in, self.thin = params["burn_in"], model._thin(params, len(self.P), len(self.Q))
        if self.thin is None:
            raise ValueError(f"mfcore.dask keeps BayesianMF's posterior as samples, but "
                             f"posterior_mb={params['posterior_mb']:g} holds too few for "
                             f"{len(self.P):,} users and {len(self.Q):,} items: raise "
                             "posterior_mb, or fit locally (a summary posterior)")
        self.kept, self.val_sum, self.kept_sweeps = [], None, []
        offsets = np.concatenate([[0], np.cumsum([c.sum() for c in band_counts[1]])])
        priors = tuple(params[name] for name in ("alpha_0", "beta_0", "alpha_lambda",
                                                  "beta_lambda"))
        scored = None if validation is None else (
            *(np.ascontiguousarray(a, np.int32) for a in validation[:2]), validation[2],
            model.rating_range_)
        cluster.connect()
        cluster.call_each("bayes_setup", 0, [
            ((self.P, self.Q, self.bu, self.bi), model.global_mean_, model.rating_scale_,
             int(o), self.n, self.seed, priors, (self.burn_in, self.thin), cluster.bands,
             scored if b == 0 else None) for b, o in enumerate(offsets[:-1])])

    def step(self, sweep):
        results = self.cluster.call("sweep", sweep, sweep, self.cluster.EXCHANGE_TIMEOUT)
        alpha, sse, user_hyper, item_hyper = results[0][:4]  # (every shard drew the same)
        self.val_rmse = results[0][7]
        self.user_hyper[...], self.item_hyper[...] = user_hyper, item_hyper
        finite = all(r[4] for r in results)
        if self.watched and finite:
            exchanged = self._gather(sweep)
            info = self._record(sweep, alpha, sse)
        else:  # the kept samples are gathered at the end
            exchanged, scale = 0, self.scale
            self.keeping = sweep > self.burn_in and (sweep - self.burn_in) % self.thin == 0
            if self.keeping:
                self.kept_sweeps.append((sweep, alpha, user_hyper))
            info = {"sse": sse * scale * scale, "alpha": float(alpha) / (scale * scale)}
        if not finite:
            info["sse"] = np.nan
        # exchanged_bytes: state bytes through the client (only to watch the model);
        # peer_bytes: what the shards sent each other (bands and residuals)
        return dict(info, exchanged_bytes=exchanged, peer_bytes=sum(r[6] for r in results),
                    shard_seconds=max(r[5] for r in results))

    def validation_rmse(self, val):
        """Shard 0's score of ``val`` (the local sampler's rule on the same arrays)."""
        return self.val_rmse

    def _gather(self, epoch, sweep=None):
        """The shards' bands (now, or at kept ``sweep``) into the state; the bytes received."""
        received, (user_edges, item_edges) = 0, self.cluster.bands
        for b, (P, Q, bu, bi) in enumerate(self.cluster.call("bands", epoch, sweep)):
            users, items = slice(user_edges[b], user_edges[b + 1]), slice(item_edges[b],
                                                                          item_edges[b + 1])
            self.P[users], self.Q[items], self.bu[users], self.bi[items] = P, Q, bu, bi
            received += P.nbytes + Q.nbytes + bu.nbytes + bi.nbytes
        return received

    def finalize(self):
        """Gather the kept samples (unless watched: then they are here), then keep the
        posterior as the local sampler does."""
        for sweep, alpha, user_hyper in self.kept_sweeps:
            self._gather(self.model.n_epochs_, sweep)
            self.user_hyper[...] = user_hyper
            self._record(sweep, alpha, 0.0)
        super().finalize()
