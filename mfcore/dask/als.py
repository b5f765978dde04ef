"""ALS on the shards: each half-iteration sends the fixed side to every shard, which solves
its band of the other side with the local row solve (``solve_rows``); the client writes the
bands into the model."""
import time

import numpy as np

from .._kernels import predict as _predict
from .._kernels.rowsolve import solve_rows
from ..estimators.als import ALSIterations as _LocalIterations
from ..estimators.als import ALSSide
from ._shard import Shard


class ALSShard(Shard):
    """A worker's bands of ALS's two CSR layouts, solved by ``solve``."""

    def solve(self, s, other_factors, other_bias, mu, reg, reg_bias, base, count_weight,
              bias_shrinkage):
        """ALS's half-iteration on this band of side ``s`` (0 users, 1 items): the solved rows'
        factors and biases; after the item half also the SSE of this band's ratings; and the
        seconds it took."""
        start = time.perf_counter()
        side = self.sides[s]
        factors = np.empty((len(side.present), other_factors.shape[1]), other_factors.dtype)
        bias = np.empty(len(side.present), other_bias.dtype)
        solve_rows(side.indptr, side.cols, side.values, other_factors, other_bias, mu, reg,
                   reg_bias, base, count_weight, True, factors, bias, self.n_threads,
                   bias_shrinkage)
        sse = None
        if s == 1:
            band_factors = np.zeros((side.hi - side.lo, factors.shape[1]), factors.dtype)
            band_bias = np.zeros(side.hi - side.lo, bias.dtype)
            band_factors[side.present], band_bias[side.present] = factors, bias
            items = np.repeat(side.present.astype(np.int32), side.counts)
            sse = _predict.squared_error(side.cols, items, side.values, other_factors,
                                             band_factors, other_bias, band_bias, mu, -np.inf,
                                             np.inf, self.n_threads)
        return factors, bias, sse, time.perf_counter() - start




class ALSIterations(_LocalIterations):
    """ALS's trainer over the shards: each half-iteration sends the fixed side to every shard
    and writes each shard's solved band into the model's arrays."""

    SHARD = ALSShard

    @staticmethod
    def plan(built, bands, n_ratings, params):
        """ALS solves any bands: no plan."""
        return None

    def __init__(self, model, cluster, band_rows, band_counts, params, plan):
        sides = []
        for kind, rows, counts in zip(("user", "item"), band_rows, band_counts):
            present, counts = np.concatenate(rows), np.concatenate(counts)
            n = len(getattr(model, f"{kind}_factors_"))
            sides.append(ALSSide(None if len(present) == n else present, None, None, None,
                                 counts))
        # the penalty is the local one: it needs only the rated rows and their counts
        super().__init__(model, tuple(sides), params, None)
        self.cluster, self.band_rows = cluster, band_rows

    def step(self, epoch):
        m, exchanged, sse, compute = self.model, 0, 0.0, 0.0
        for s, kind, other in ((0, "user", (m.item_factors_, m.item_bias_)),
                               (1, "item", (m.user_factors_, m.user_bias_))):
            results = self.cluster.call("solve", epoch, s, *other, m.global_mean_, self.reg,
                                        self.reg_bias, self.base, self.count_weight,
                                        self.bias_shrinkage)
            exchanged += len(results) * (other[0].nbytes + other[1].nbytes)
            factors, bias = getattr(m, f"{kind}_factors_"), getattr(m, f"{kind}_bias_")
            for rows, (band_factors, band_bias, band_sse, _) in zip(self.band_rows[s], results):
                factors[rows], bias[rows] = band_factors, band_bias
                exchanged += band_factors.nbytes + band_bias.nbytes
                if band_sse is not None:
                    sse += band_sse
            compute += max(seconds for *_, seconds in results)
        # exchanged_bytes: factor sides sent and received; shard_seconds: the slowest shard's
        # kernel time of each half, added (the rest of an iteration is transfer and waiting)
        return {"sse": sse, "exchanged_bytes": exchanged, "shard_seconds": compute}


