"""ALS on the shards, worker to worker.

Shard b solves user band b, then item band b, with the local row solve (``solve_rows_in_blocks``).
After each half the shards allgather the solved side among themselves (``Shard.allgather``:
each sends its band straight to every other worker), so every shard holds the whole model,
bit for bit the arrays a local fit's solve reads. Per iteration the client makes one call
per shard and gets scalars back: its item band's squared error, its bands' penalty, whether
they are finite, and seconds. The model reaches the client at the end, and after every
iteration only when validation data or a callback need it.
"""
import time

import numpy as np

from .._kernels import predict as _predict
from ..estimators.als import ALSIterations as _LocalIterations
from ..estimators.als import solve_rows_in_blocks
from ._shard import Shard


class ALSShard(Shard):
    """A worker's bands of ALS's two CSR layouts, and a copy of the whole model."""

    def als_setup(self, item_factors, item_bias, n_users, band_rows, terms, mu):
        """Hold the model's initial item side (the user side is solved first, every row of
        it: its initial values are never read), the rated rows of every band of both sides
        (``band_rows[side][band]``), the penalty ``terms`` (``ALSPenalty``) and the mean."""
        Q, bi = np.array(item_factors), np.array(item_bias)  # own, writable copies
        self.model = [(np.zeros((n_users, Q.shape[1]), Q.dtype), np.zeros(n_users, bi.dtype)),
                      (Q, bi)]
        self.band_rows, self.terms, self.mu = band_rows, terms, mu
        items = self.sides[1]
        self.sse_items = np.repeat((items.present + items.lo).astype(np.int32), items.counts)

    def iterate(self, epoch, timeout):
        """One iteration: solve this shard's user band, allgather the user side; the same for
        items. Returns (the squared error of this item band's ratings, the penalty of its
        user and item bands, whether they are finite, kernel seconds, bytes sent)."""
        t, sent, seconds = self.terms, 0, 0.0
        for s in (0, 1):
            start = time.perf_counter()
            side, (other_factors, other_bias) = self.sides[s], self.model[1 - s]
            factors = np.empty((len(side.present), other_factors.shape[1]), other_factors.dtype)
            bias = np.empty(len(side.present), other_bias.dtype)
            solve_rows_in_blocks(side.indptr, side.cols, side.values, other_factors, other_bias,
                                 self.mu, t.reg, t.reg_bias, t.base, t.count_weight, True,
                                 factors, bias, self.n_threads, t.bias_shrinkage,
                                 between=self.check_aborted)
            seconds += time.perf_counter() - start
            parts = self.allgather((epoch, s), (factors, bias), timeout)
            sent += (len(parts) - 1) * (factors.nbytes + bias.nbytes)
            all_factors, all_bias = self.model[s]
            for rows, (band_factors, band_bias) in zip(self.band_rows[s], parts):
                all_factors[rows], all_bias[rows] = band_factors, band_bias
        start = time.perf_counter()
        items = self.sides[1]
        sse = _predict.squared_error(items.cols, self.sse_items, items.values, self.model[0][0],
                                     self.model[1][0], self.model[0][1], self.model[1][1],
                                     self.mu, -np.inf, np.inf, self.n_threads)
        penalty, finite = [], True
        for s, (factors, bias) in zip((0, 1), self.bands()):
            penalty.append(t.of_rows(factors, bias, self.sides[s].counts))
            finite = finite and bool(np.isfinite(factors).all() and np.isfinite(bias).all())
        return sse, penalty, finite, seconds + time.perf_counter() - start, sent

    def bands(self):
        """This shard's rows of the model: (factors, biases) of its user band, of its item
        band."""
        return [(factors[rows], bias[rows]) for (factors, bias), rows
                in zip(self.model, (self.band_rows[0][self.band], self.band_rows[1][self.band]))]


class ALSIterations(_LocalIterations):
    """ALS's trainer over the shards: one ``iterate`` call per shard and iteration; the
    history's SSE and penalty are the shards' sums, in band order (equal to the local ones
    up to float rounding); the model is gathered when someone reads it."""

    SHARD = ALSShard

    @staticmethod
    def plan(built, bands, n_ratings, params):
        """ALS solves any bands: no plan."""
        return None

    def __init__(self, model, cluster, band_rows, band_counts, params, plan, watched=False):
        super().__init__(model, None, params, None)  # the penalty terms; the rest is sharded
        self.cluster, self.band_rows, self.watched = cluster, band_rows, watched
        self.penalty_now = 0.0
        cluster.connect()
        cluster.call("als_setup", 0, model.item_factors_, model.item_bias_,
                     len(model.user_factors_), band_rows, self.terms, model.global_mean_)

    def step(self, epoch):
        results = self.cluster.call("iterate", epoch, epoch, self.cluster.EXCHANGE_TIMEOUT)
        sse, penalty = 0.0, 0.0
        for band_sse, *_ in results:  # in band order
            sse += band_sse
        for s in (0, 1):  # the user side's parts, then the item side's, as the local sum
            for _, parts, *_ in results:
                penalty += parts[s]
        self.penalty_now = penalty
        finite = all(r[2] for r in results)
        # exchanged_bytes: factor bytes through the client (only to watch the model);
        # peer_bytes: what the shards sent each other; shard_seconds: the slowest shard's
        # kernel seconds (the rest of an iteration is exchange and waiting)
        return {"sse": sse if finite else np.nan,
                "exchanged_bytes": self._gather(epoch) if self.watched and finite else 0,
                "peer_bytes": sum(r[4] for r in results),
                "shard_seconds": max(r[3] for r in results)}

    def _gather(self, epoch):
        """Write every shard's bands into the model's arrays; return the bytes received."""
        m, received = self.model, 0
        for rows, bands in zip(zip(*self.band_rows), self.cluster.call("bands", epoch)):
            for kind, band_rows, (factors, bias) in zip(("user", "item"), rows, bands):
                getattr(m, f"{kind}_factors_")[band_rows] = factors
                getattr(m, f"{kind}_bias_")[band_rows] = bias
                received += factors.nbytes + bias.nbytes
        return received

    def penalty(self):
        return self.penalty_now

    def finalize(self):
        """The model, once, at the end (watched: it is already there, maybe restored to the
        best iteration)."""
        if not self.watched and self.model.n_epochs_:  # (no iteration: the initial model)
            self._gather(self.model.n_epochs_)
