"""ALS on the shards, worker to worker.

Shard b solves user band b, then item band b, with the local row solve
(``solve_rows_in_blocks``; with ``solver="cg"`` the local CG steps,
``cg_solve_rows_in_blocks``, from the band's current rows, which the shard's copy of the
model holds: the local warm start). After each half the shards allgather the solved side
among themselves (``Shard.allgather``: each sends its band straight to every other worker),
so every shard holds the whole model, bit for bit the arrays a local fit's solve reads. Per
iteration the client makes one call per shard and gets scalars back: its item band's squared
error, its bands' penalty, whether they are finite, and seconds; shard 0 also scores the
validation data on its copy of the model (the local kernel on the same arrays: the local
``val_rmse`` bit for bit). For early stopping every shard keeps its bands of the best
iteration. The model reaches the client at the end, and after every iteration only when a
callback needs it.
"""
import time

import numpy as np

from .._kernels import predict as _predict
from ..estimators.als import ALSIterations as _LocalIterations
from ..estimators.als import cg_inputs, cg_solve_rows_in_blocks, solve_rows_in_blocks
from ._cluster import ShardsCheckFinite
from ._shard import Shard


class ALSShard(Shard):
    """A worker's bands of ALS's two CSR layouts, and a copy of the whole model."""

    @staticmethod
    def _row_order(rows, cols, g):
        """A row's ratings by column, repeated pairs in the local data order (``g``), as the
        local ``ALSLayout`` orders them."""
        return np.lexsort((g, cols, rows))

    def als_setup(self, item_factors, item_bias, user_side, band_rows, terms, mu, cg_steps,
                  validation=None):
        """Hold the model's initial item side and ``user_side``: the initial (factors,
        biases) of this user band's rated rows with ``cg_steps`` (the CG starts from them),
        else the number of users (the exact solve reads no initial user value); the rated
        rows of every band of both sides (``band_rows[side][band]``), the penalty ``terms``
        (``ALSPenalty``), the mean and the validation rows this shard scores,
        ``(u, i, r, (lo, hi))`` or None."""
        Q, bi = np.array(item_factors), np.array(item_bias)  # own, writable copies
        n_users = user_side if not cg_steps else int(user_side[2])
        self.model = [(np.zeros((n_users, Q.shape[1]), Q.dtype), np.zeros(n_users, bi.dtype)),
                      (Q, bi)]
        self.band_rows, self.terms, self.mu, self.validation = band_rows, terms, mu, validation
        self.best, self.cg_steps, self.cg_inputs = None, cg_steps, None
        if cg_steps:  # the band's starting rows, each side's CG inputs (as the local fit's)
            P, bu = self.model[0]
            rows = band_rows[0][self.band]
            P[rows], bu[rows] = user_side[0], user_side[1]
            self.cg_inputs = [cg_inputs(side.values, side.counts, mu, terms, Q.dtype)
                              for side in self.sides]
        items = self.sides[1]
        self.sse_items = np.repeat((items.present + items.lo).astype(np.int32), items.counts)

    def iterate(self, epoch, timeout):
        """One iteration: solve this shard's user band, allgather the user side; the same for
        items. Returns (the squared error of this item band's ratings, the penalty of its
        user and item bands, whether they are finite, kernel seconds, bytes sent, the
        validation rows' clipped squared error or None)."""
        t, sent, seconds = self.terms, 0, 0.0
        for s in (0, 1):
            start = time.perf_counter()
            side, (other_factors, other_bias) = self.sides[s], self.model[1 - s]
            if self.cg_steps:  # from the band's current rows (this shard's copy of them)
                rows = self.band_rows[s][self.band]
                factors, bias = self.model[s][0][rows], self.model[s][1][rows]
                cg_solve_rows_in_blocks(side.indptr, side.cols, self.cg_inputs[s],
                                        other_factors, other_bias, t, self.cg_steps, factors,
                                        bias, self.n_threads, between=self.check_aborted)
            else:
                factors = np.empty((len(side.present), other_factors.shape[1]),
                                   other_factors.dtype)
                bias = np.empty(len(side.present), other_bias.dtype)
                solve_rows_in_blocks(side.indptr, side.cols, side.values, other_factors,
                                     other_bias, self.mu, t.reg, t.reg_bias, t.base,
                                     t.count_weight, True, factors, bias, self.n_threads,
                                     t.bias_shrinkage, between=self.check_aborted)
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
        val_sse = None
        if self.validation is not None and finite:  # (as fitted._rmse_rows, on this model)
            u, i, r, (lo, hi) = self.validation
            val_sse = _predict.squared_error(u, i, r, self.model[0][0], self.model[1][0],
                                             self.model[0][1], self.model[1][1], self.mu, lo,
                                             hi, self.n_threads)
        return sse, penalty, finite, seconds + time.perf_counter() - start, sent, val_sse

    def keep_best(self):
        """Keep this shard's bands as they are now (early stopping's best iteration)."""
        self.best = self.bands()

    def bands(self, best=False):
        """This shard's rows of the model (those ``keep_best`` kept, with ``best``):
        (factors, biases) of its user band, of its item band."""
        if best:
            return self.best
        return [(factors[rows], bias[rows]) for (factors, bias), rows
                in zip(self.model, (self.band_rows[0][self.band], self.band_rows[1][self.band]))]


class ALSIterations(ShardsCheckFinite, _LocalIterations):
    """ALS's trainer over the shards: one ``iterate`` call per shard and iteration; the
    history's SSE and penalty are the shards' sums, in band order (equal to the local ones
    up to float rounding); shard 0 scores the validation data; the model is gathered when
    someone reads it (a callback), else at the end, from the best iteration the shards kept
    if early stopping chose one."""

    SHARD = ALSShard

    @staticmethod
    def plan(built, bands, n_ratings, params):
        """ALS solves any bands: no plan."""
        return None

    def __init__(self, model, cluster, band_rows, band_counts, params, plan, watched=False,
                 validation=None):
        super().__init__(model, None, params, None)  # the penalty terms; the rest is sharded
        self.cluster, self.band_rows, self.watched = cluster, band_rows, watched
        self.penalty_now, self.val_sse, self.restored = 0.0, None, False
        cluster.connect()
        n_users, scored = len(model.user_factors_), None
        if validation is not None:
            scored = (*validation, model.rating_range_)
        cluster.call_each("als_setup", 0, [
            (model.item_factors_, model.item_bias_,
             (model.user_factors_[rows], model.user_bias_[rows], n_users) if self.cg_steps
             else n_users, band_rows, self.terms, model.global_mean_, self.cg_steps,
             scored if b == 0 else None) for b, rows in enumerate(band_rows[0])])

    def step(self, epoch):
        results = self.cluster.call("iterate", epoch, epoch, self.cluster.EXCHANGE_TIMEOUT)
        sse, penalty = 0.0, 0.0
        for band_sse, *_ in results:  # in band order
            sse += band_sse
        for s in (0, 1):  # the user side's parts, then the item side's, as the local sum
            for _, parts, *_ in results:
                penalty += parts[s]
        self.penalty_now, self.val_sse = penalty, results[0][5]
        finite = all(r[2] for r in results)
        # exchanged_bytes: factor bytes through the client (only to watch the model);
        # peer_bytes: what the shards sent each other; shard_seconds: the slowest shard's
        # kernel seconds (the rest of an iteration is exchange and waiting)
        return {"sse": sse if finite else np.nan,
                "exchanged_bytes": self._gather(epoch) if self.watched and finite else 0,
                "peer_bytes": sum(r[4] for r in results),
                "shard_seconds": max(r[3] for r in results)}

    def _gather(self, epoch, best=False):
        """Write every shard's bands (those kept as the best, with ``best``) into the model's
        arrays; return the bytes received."""
        m, received = self.model, 0
        for rows, bands in zip(zip(*self.band_rows), self.cluster.call("bands", epoch, best)):
            for kind, band_rows, (factors, bias) in zip(("user", "item"), rows, bands):
                getattr(m, f"{kind}_factors_")[band_rows] = factors
                getattr(m, f"{kind}_bias_")[band_rows] = bias
                received += factors.nbytes + bias.nbytes
        return received

    def penalty(self):
        return self.penalty_now

    def validation_rmse(self, val):
        """Shard 0's score of ``val`` (the local ``_rmse_rows`` on the same arrays)."""
        return float(np.sqrt(self.val_sse / len(val[2])))

    def keep_best(self):
        """The shards keep their bands (the model stays there, unless watched)."""
        if self.watched:
            return super().keep_best()
        self.cluster.call("keep_best", self.model.n_epochs_)
        return None

    def restore_best(self, kept):
        if self.watched:
            super().restore_best(kept)
        self.restored = True

    def finalize(self):
        """The model, once, at the end: the shards' last bands, or the best they kept
        (watched: it is already there, maybe restored to the best iteration)."""
        if not self.watched and self.model.n_epochs_:  # (no iteration: the initial model)
            self._gather(self.model.n_epochs_, self.restored)
