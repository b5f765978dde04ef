"""ALS, the estimator ``mfcore.ALS``: alternating least squares with user and item biases.

Each iteration solves every user's bias and factors with the items fixed, then
every item's with the users fixed. A row's solve is a small regularised
least-squares problem over its ratings: exactly (``solver="cholesky"``,
``mfcore._kernels.rowsolve.solve_rows``: accumulated and Cholesky-factored in float64),
or by a fixed number of conjugate-gradient steps from the row's current value
(``solver="cg"``, ``mfcore._kernels.ials.solve_rows`` with no all-pairs term), rows in
parallel. Rows are independent given the other side, so a fit is bit-identical for any
thread count.
"""
import collections
import math
import re

import numpy as np

from .. import params as p
from .._kernels import predict as _predict
from .._kernels.ials import solve_rows as cg_solve_rows
from .._kernels.layout import scatter_rows, sort_rows
from .._kernels.rowsolve import solve_rows
from ..data import StreamedRatings
from ..errors import Message, Setting, warn
from ..features import add_terms, by_rank, feature_inputs
from ..fitted import FEATURE_STATE, StateArray, check_feature_state
from .._threads import resolve_n_threads
from .base import COMMON_PARAMS, EARLY_STOPPING_PARAMS, Estimator, bias_reg
from .driver import Trainer

__all__ = ["ALS", "ALSLayout", "ALSSide", "ALSIterations", "ALSPenalty", "FeatureStep",
           "MAX_DENSE_GROUP", "solve_in_blocks", "solve_rows_in_blocks"]

_NO_LOSS = np.zeros(0)  # (the CG solve's per-row loss, not wanted)

#: One side of ALS's layout (users, or items): the rows rated here (None: all of them),
#: their ratings as CSR (indptr int64, columns int32: the other side's rows, values) and
#: the ratings per row; ``table``, when not None, holds the distinct ratings and
#: ``values`` their uint8 codes (a streamed fit of ratings with at most 256 values: a
#: byte a rating, ``side_values``). The penalty needs only ``present`` and ``counts``
#: (``mfcore.dask`` solves the CSR on its shards and passes None for the rest).
ALSSide = collections.namedtuple("ALSSide", "present indptr cols values counts table",
                                 defaults=(None,))


def side_values(side, part=slice(None)):
    """The ratings of ``side`` (of ``part`` of it) as ratings, decoded if they are codes."""
    return side.values[part] if side.table is None else side.table[side.values[part]]


class ALSLayout:
    """The training ratings twice, as CSR by user and by item (the two half-iterations),
    over the rows that have ratings here (a ``partial_fit`` may cover only some).

    Each row's ratings are sorted by column (the other side's row; repeated pairs in input
    order), so a row's solve sums in an order that does not depend on the order of the
    input, and the user side's columns are the seen items (``ALS._trainer`` shares them).
    Depends on the data alone, so search reuses it across trials.
    """

    def __init__(self, u, i, r, n_users, n_items):
        self.sides = (self._side(u, i, r, n_users), self._side(i, u, r, n_items))

    @classmethod
    def from_chunks(cls, data, n_threads):
        """The layout of ``StreamedRatings`` (every row has ratings), bit for bit the one of
        the whole arrays, holding nothing the size of the data but the two sides: each
        side by one pass over the chunks (a counting sort by row in input order, then each
        row sorted by column, stably)."""
        self = cls.__new__(cls)
        self.sides = tuple(cls._streamed_side(data, s, counts, n_threads)
                           for s, counts in enumerate(data.row_counts()))
        return self

    @staticmethod
    def _streamed_side(data, s, counts, n_threads):
        """The ``ALSSide`` by users (``s`` 0) or items (1) of ``data``'s chunks."""
        indptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        table = data.rating_values  # (at most 256 distinct ratings: a byte a rating)
        cols = np.empty(len(data), np.int32)
        values = np.empty(len(data), data.dtype if table is None else np.uint8)
        cursor, changed = indptr[:-1].copy(), not counts.all()
        for u, i, r in data.chunks():
            if table is not None:  # (each rating's code; a rating not in the table: changed)
                codes = np.searchsorted(table, r).clip(0, len(table) - 1)
                changed |= not np.array_equal(table[codes], r)
                r = codes
            scatter_rows(*((u, i) if s == 0 else (i, u)), r.astype(values.dtype, copy=False),
                         cursor, cols, values)
        if changed or not np.array_equal(cursor, indptr[1:]):
            raise data.changed()
        sort_rows(indptr, cols, values, n_threads)
        return ALSSide(None, indptr, cols, values, np.asarray(counts), table)

    @staticmethod
    def _side(rows, cols, values, n_rows):
        """The ``ALSSide`` of the ratings by ``rows``."""
        counts = np.bincount(rows, minlength=n_rows)
        present = np.flatnonzero(counts)
        order = np.lexsort((cols, rows))  # (stable: repeated pairs in input order)
        indptr = np.zeros(len(present) + 1, dtype=np.int64)
        np.cumsum(counts[present], out=indptr[1:])
        return ALSSide(None if len(present) == n_rows else present, indptr,
                       np.ascontiguousarray(cols[order], dtype=np.int32),
                       np.ascontiguousarray(values[order]), counts[present])


#: ratings a block of ``side_squared_error`` expands the row of (its temporaries' size)
SSE_BLOCK = 1 << 18


def side_squared_error(side, model, n_threads):
    """The training ratings' squared error under ``model``, from one ``ALSSide`` (the
    user side: rows are users), a block of rows at a time (int32 row ids of a block, no
    copy of the ratings); blocks and their order depend on the layout alone, so the sum is
    the same for any thread count."""
    rows = np.arange(len(side.indptr) - 1) if side.present is None else side.present
    n = int(side.indptr[-1])
    bounds = np.unique(np.r_[np.searchsorted(side.indptr, np.arange(0, n, SSE_BLOCK),
                                             side="right") - 1, len(rows)].clip(0))
    total = 0.0
    for a, b in zip(bounds[:-1], bounds[1:]):
        lo, hi = side.indptr[a], side.indptr[b]
        u = np.repeat(rows[a:b].astype(np.int32), np.diff(side.indptr[a:b + 1]))
        total += _predict.squared_error(u, side.cols[lo:hi], side_values(side, slice(lo, hi)),
                                        *model._parameters(), model.global_mean_, -np.inf,
                                        np.inf, n_threads)
    return total


class ALSPenalty(collections.namedtuple("ALSPenalty", "reg reg_bias base count_weight "
                                        "bias_shrinkage rating_scale")):
    """ALS's penalty in rating units: a row with n ratings pays ``(base + count_weight n)
    (reg |p|^2 + reg_bias b^2) + bias_shrinkage b^2`` (the row solve's arguments too);
    ``rating_scale``: the model's ``rating_scale_``, by which the CG solve standardizes."""

    @classmethod
    def of_params(cls, params, rating_scale):
        # reg is defined on standardized ratings: in rating units a factor penalty scales with
        # the ratings' spread, a bias penalty not at all (see ALS's docstring)
        return cls(params["reg"] * rating_scale, bias_reg(params), *ALS._penalty_scale(params),
                   params["bias_shrinkage"], float(rating_scale))

    def of_rows(self, factors, bias, counts, total=0.0):
        """``total`` plus the penalty of some rows of one side, given their factors, biases
        and rating counts (``mfcore.dask``'s shards add up their bands' with it)."""
        bias = bias.astype(np.float64)
        squares = np.einsum("ij,ij->i", factors, factors, dtype=np.float64)
        scale = self.base + self.count_weight * counts
        total += float(scale @ (self.reg * squares + self.reg_bias * bias * bias))
        total += self.bias_shrinkage * float(bias @ bias)
        return total


#: The most features of a group whose rows may hold several of them (a multi-valued column,
#: a matrix) that ``FeatureStep`` solves: its system is dense, that many squared doubles.
MAX_DENSE_GROUP = 4096


class FeatureStep:
    """One side's side features in an ALS fit: each group's exact least-squares step.

    Given the side's effective rows e_v = (bias, factors) just solved, the weights theta
    (F, k + 1) enter the objective only through the rows' penalties, centred on the
    feature terms t_v = sum_f x_vf theta_f: sum_v |e_v - t_v|^2 weighted per column by
    the row's penalty (``row_penalty``: lam_b(v) for the bias column, lam_p(v) for the
    factors), plus the weights' own penalty: ``relative`` times the diagonal of
    X^T W_c X (each feature's rows' penalties, weighted by x^2) plus ``penalty`` (bias,
    factors). Each group g in turn (a column of the table) is solved exactly given the
    others, column by column c (W_c: the rows' penalties of that column, D_gc: the
    diagonal of X_g^T W_c X_g):

        (X_g^T W_c X_g + relative D_gc + penalty_c I) theta_gc
            = X_g^T W_c (e_c - t_c + X_g theta_gc)

    A group whose rows hold at most one of its features (a categorical column, a numeric
    one) has a diagonal system, one division per feature and column; another (a
    multi-valued column, a matrix) a dense one of at most ``MAX_DENSE_GROUP`` features,
    formed from the pairs of features rows share and solved by LU in float64. A feature
    no training row has keeps weight 0. Everything runs in a fixed order: the same bits
    for any thread count.
    """

    def __init__(self, triplets, group_ptr, n_rows, row_penalty, penalty, relative, names):
        rows, feats, vals = triplets
        self.ranked, self.n_rows = by_rank(rows, feats, vals), n_rows
        self.row_penalty, self.penalty = row_penalty, penalty  # (n_rows, 2), (2,): bias, factor
        self.relative = relative
        self.groups = []
        for g, (a, b) in enumerate(zip(group_ptr[:-1], group_ptr[1:])):
            take = np.flatnonzero((feats >= a) & (feats < b))
            r, f, v = rows[take], feats[take] - a, vals[take]
            disjoint = not len(r) or np.bincount(r).max() <= 1
            if not disjoint and b - a > MAX_DENSE_GROUP:
                raise ValueError(f"ALS side features: column {names[g]!r} has {b - a} features "
                                 f"and rows holding several of them; ALS solves such a group "
                                 f"exactly with a dense system of at most {MAX_DENSE_GROUP}")
            by_feature = np.argsort(f, kind="stable")
            self.groups.append({"range": (a, b), "ranked": by_rank(r, f, v), "disjoint": disjoint,
                                "by_feature": (r[by_feature], f[by_feature], v[by_feature]),
                                "pairs": None if disjoint else self._pairs(r, f, v)})

    @staticmethod
    def _pairs(r, f, v):
        """(row, feature a, feature b, x_a x_b) of every ordered pair of a row's features."""
        starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        counts = np.diff(np.r_[starts, len(r)])
        per = np.repeat(counts, counts)                     # each entry pairs with its row's
        first = np.repeat(np.arange(len(r)), per)
        offset = np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)
        second = np.repeat(np.repeat(starts, counts), per) + offset
        return r[first], f[first], f[second], v[first] * v[second]

    def terms(self, theta):
        """t_v = sum_f x_vf theta_f of every row (n_rows, k + 1), float64."""
        return add_terms(np.zeros((self.n_rows, theta.shape[1])), self.ranked, theta)

    def step(self, effective, theta, terms):
        """Solve every group's weights in turn, in place in ``theta``, given the side's
        effective rows ``effective`` (n_rows, k + 1: bias, factors; float64) and their
        feature terms ``terms`` (``terms(theta)``); returns the new terms (up to rounding,
        ``terms(theta)`` of the new weights: kept current through the steps)."""
        resid = effective - terms                        # e - t, kept current
        for group in self.groups:
            a, b = group["range"]
            add_terms(resid, group["ranked"], theta[a:b])
            theta[a:b] = self._solve(group, resid, b - a)
            add_terms(resid, group["ranked"], theta[a:b], -1.0)
        return np.subtract(effective, resid, out=resid)  # the new terms

    def _solve(self, group, target, width):
        """The group's exact weights (width, k + 1) for the rows' ``target``."""
        r, f, v = group["by_feature"]
        out = np.zeros((width, target.shape[1]))
        if not len(r):
            return out
        weight = self.row_penalty[r]                     # (m, 2): each value's row penalty
        col = np.r_[0, np.ones(target.shape[1] - 1, np.int64)]   # column -> bias/factor
        starts = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])
        rhs = np.add.reduceat((weight[:, col] * v[:, None]) * target[r], starts, axis=0)
        if group["disjoint"]:
            diag = (1.0 + self.relative) * np.add.reduceat(weight * (v * v)[:, None], starts,
                                                            axis=0) + self.penalty
            den = diag[:, col]
            out[f[starts]] = np.divide(rhs, den, out=np.zeros_like(rhs), where=den > 0)
            return out
        pr, fa, fb, vv = group["pairs"]
        present = f[starts]
        for c, cols in ((0, slice(0, 1)), (1, slice(1, None))):
            gram = np.bincount(fa * width + fb, weights=self.row_penalty[pr, c] * vv,
                               minlength=width * width).reshape(width, width)
            gram = gram[np.ix_(present, present)]
            gram[np.diag_indices_from(gram)] *= 1.0 + self.relative
            gram[np.diag_indices_from(gram)] += self.penalty[c]
            active = np.diag(gram) > 0
            if active.any():
                out[present[active], cols] = np.linalg.solve(
                    gram[np.ix_(active, active)], rhs[active][:, cols])
        return out


class ALSIterations(Trainer):
    """The driver's trainer for one ALS fit: both half-iterations and the objective, over
    ``sides`` (two ``ALSSide``: users, items; the user side also gives the training error)."""

    def __init__(self, model, sides, params, n_threads, features=None):
        super().__init__(model)
        self.sides, self.n_threads = sides, n_threads
        self.terms = ALSPenalty.of_params(params, model.rating_scale_)
        self.reg, self.reg_bias, self.base, self.count_weight, self.bias_shrinkage, _ = self.terms
        self.cg_steps = params["cg_steps"] if params["solver"] == "cg" else 0
        self._cg_inputs = {}
        self.features = {}  # side -> FeatureStep, with features (``features``: triplets)
        self._feature_terms = {}  # side -> the feature terms of the current weights
        for kind, triplets in (features or {}).items():
            self.features[kind] = self._feature_step(kind, triplets, params["reg_features"])

    def _feature_step(self, kind, triplets, reg_features):
        """The ``FeatureStep`` of side ``kind``: each row weighs in with its penalty (none
        for a row without training ratings here: its effective row is its feature terms),
        each feature's weights with ``reg_features`` times its rows' (see ``ALS``), the
        bias weight also with ``bias_shrinkage``, as every bias."""
        side = self.sides[0 if kind == "user" else 1]
        n_rows = len(getattr(self.model, f"{kind}_bias_"))
        counts = np.zeros(n_rows)
        counts[slice(None) if side.present is None else side.present] = side.counts
        weight = np.where(counts > 0, self.base + self.count_weight * counts, 0.0)
        row_penalty = np.stack([np.where(counts > 0, self.reg_bias * weight
                                         + self.bias_shrinkage, 0.0), self.reg * weight], 1)
        encoding = getattr(self.model, f"{kind}_feature_encoding_")
        return FeatureStep(triplets, encoding.group_ptr, n_rows, row_penalty,
                           np.array([self.bias_shrinkage, 0.0]), reg_features,
                           [c["name"] for c in encoding.columns])

    def _solve(self, s, side, other_factors, other_bias, factors, bias, prior=None):
        """Solve the rows of ``side`` (``s``: 0 users, 1 items) into ``factors`` and ``bias``,
        in place; the CG starts from the values they hold. ``prior``: the rows' feature
        terms (n, k + 1), where their penalties are centred (None: at 0)."""
        if self.cg_steps:
            if s not in self._cg_inputs:  # (made once per fit)
                self._cg_inputs[s] = cg_inputs(side_values(side), side.counts, self.model.global_mean_,
                                               self.terms, self.model.user_factors_.dtype)
            cg_solve_rows_in_blocks(side.indptr, side.cols, self._cg_inputs[s], other_factors,
                                    other_bias, self.terms, self.cg_steps, factors, bias,
                                    self.n_threads, prior=prior)
        else:
            solve_rows_in_blocks(side.indptr, side.cols, side.values, other_factors,
                                 other_bias, self.model.global_mean_, self.reg, self.reg_bias,
                                 self.base, self.count_weight, True, factors, bias,
                                 self.n_threads, self.bias_shrinkage, prior=prior,
                                 table=side.table)

    def _sides(self):
        m = self.model
        yield self.sides[0], "user", (m.item_factors_, m.item_bias_)
        yield self.sides[1], "item", (m.user_factors_, m.user_bias_)

    def step(self, epoch):
        m = self.model
        for s, (side, kind, (other_factors, other_bias)) in enumerate(self._sides()):
            present = side.present
            factors, bias = getattr(m, f"{kind}_factors_"), getattr(m, f"{kind}_bias_")
            if present is not None:  # solve the rows rated here, keep the others
                out_factors, out_bias = factors[present], bias[present]
            else:
                out_factors, out_bias = factors, bias
            step = self.features.get(kind)
            terms = None if step is None else self._terms(kind)
            prior = None if step is None else terms[slice(None) if present is None else present]
            self._solve(s, side, other_factors, other_bias, out_factors, out_bias, prior)
            if present is not None:
                factors[present], bias[present] = out_factors, out_bias
            if step is not None:
                self._feature_update(kind, step, present, factors, bias, terms)
        return {"sse": side_squared_error(self.sides[0], m, self.n_threads)}

    def _weights(self, kind):
        """The side's feature weights theta (F, k + 1), the model's array."""
        return getattr(self.model, f"{kind}_feature_weights_")

    def _terms(self, kind):
        """The side's feature terms of the current weights: those the last feature step
        left (``_feature_terms``), else computed."""
        if kind not in self._feature_terms:
            self._feature_terms[kind] = self.features[kind].terms(self._weights(kind))
        return self._feature_terms[kind]

    def _feature_update(self, kind, step, present, factors, bias, terms):
        """The feature step of side ``kind`` after its rows were solved (``FeatureStep``;
        ``terms``: the rows' feature terms before it); rows without training ratings here
        then take their new feature terms."""
        effective = np.concatenate([bias[:, None], factors], axis=1).astype(np.float64)
        terms = self._feature_terms[kind] = step.step(effective, self._weights(kind), terms)
        if present is not None:
            empty = np.ones(len(bias), bool)
            empty[present] = False
            bias[empty], factors[empty] = terms[empty, 0], terms[empty, 1:]

    def penalty(self):
        m = self.model
        total = 0.0
        for side, kind, _ in self._sides():
            present, counts = side.present, side.counts
            rows = slice(None) if present is None else present
            factors, bias = getattr(m, f"{kind}_factors_")[rows], getattr(m, f"{kind}_bias_")[rows]
            step = self.features.get(kind)
            if step is not None:  # the rows' penalties are on what their features leave
                theta = self._weights(kind)
                terms = self._terms(kind)[rows]
                factors, bias = factors - terms[:, 1:], bias - terms[:, 0]
                total += float(step.penalty[1] * np.sum(theta[:, 1:] ** 2)
                               + step.penalty[0] * np.sum(theta[:, 0] ** 2))
            total = self.terms.of_rows(factors, bias, counts, total)
        return total

    def keep_best(self):
        """The model's arrays and the feature weights (early stopping's best iteration)."""
        return super().keep_best() + [self._weights(kind).copy() for kind in self.features]

    def restore_best(self, kept):
        n = len(kept) - len(self.features)
        super().restore_best(kept[:n])
        for kind, theta in zip(self.features, kept[n:]):
            self._weights(kind)[...] = theta
        self._feature_terms = {}

    def diverged(self, epoch, info):
        return Message("ALS produced non-finite parameters at iteration {0}; the ratings may "
                       "be too large for float32 (try {1} or rescale them)", epoch,
                       Setting("dtype", "float64"))


#: floating-point operations of one block of row solves (``solve_in_blocks``) per thread:
#: about a tenth of a second, the longest a Ctrl-C waits
BLOCK_FLOPS = 1e9


def row_blocks(indptr, k, n_threads, cg_steps=0):
    """Boundaries ``[0, ..., n_rows]`` of blocks of CSR rows that each cost about
    ``BLOCK_FLOPS`` per thread to solve. Exactly (``cg_steps`` 0), a row of n ratings adds
    n (k+1)^2 outer-product terms (2 flops each) and factors a (k+1)x(k+1) system
    ((k+1)^3/3); by conjugate gradient, each step applies the row's matrix through its
    ratings (two passes of 2 n (k+1)) and updates a few vectors of k+1."""
    size = k + 1
    counts = np.diff(indptr).astype(np.float64)
    if cg_steps:
        per_row = cg_steps * (4.0 * size * counts + 10.0 * size)
    else:
        per_row = 2.0 * size * size * counts + size ** 3 / 3.0
    cost = np.cumsum(per_row)
    budget = BLOCK_FLOPS * n_threads
    if not len(cost) or cost[-1] <= budget:
        return np.array([0, len(cost)])
    cuts = np.searchsorted(cost, np.arange(budget, cost[-1], budget), side="right")
    return np.unique(np.concatenate([[0], cuts, [len(cost)]]))


def solve_in_blocks(indptr, k, n_threads, solve_block, cg_steps=0, between=None):
    """Call ``solve_block(a, b, block_indptr, lo, hi)`` for each block of rows ``a:b`` of a
    CSR layout (``row_blocks``; ``block_indptr``: the block's ``indptr`` less ``lo``, its
    ratings ``lo:hi``), so that a Ctrl-C is honoured between blocks instead of after the
    whole side (16 s at k=256 on ML-10M): Python runs signal handlers there. ``between()``,
    if given, runs before every block but the first (a Dask shard's check that the fit was
    aborted). Rows are independent: the result is the same bit for bit. A
    ``FloatingPointError`` naming a row of the block is raised naming the side's row."""
    bounds = row_blocks(indptr, k, n_threads, cg_steps)
    for a, b in zip(bounds[:-1], bounds[1:]):
        if between is not None and a:
            between()
        lo, hi = indptr[a], indptr[b]
        try:
            solve_block(a, b, indptr[a:b + 1] - lo, lo, hi)
        except FloatingPointError as exc:  # (it names the row within the block)
            found = re.match(r"row (\d+)(.*)", str(exc), re.S)
            if found is None:
                raise
            raise FloatingPointError(f"row {int(found[1]) + a}{found[2]}") from None


class _centre:
    """The row solves' keyword arguments of ``prior`` (n, k + 1: bias, factors; or None)
    for the rows ``a:b`` of a block: ``prior_factors``, ``prior_bias`` (float64)."""

    def __init__(self, prior):
        self.parts = None if prior is None else (np.ascontiguousarray(prior[:, 1:], np.float64),
                                                 np.ascontiguousarray(prior[:, 0], np.float64))

    def get(self, a, b):
        if self.parts is None:
            return {}
        return {"prior_factors": self.parts[0][a:b], "prior_bias": self.parts[1][a:b]}


def cg_inputs(values, counts, mu, terms, dtype):
    """(conf, target, scale) of one side's rows for the CG solve: weights 1, the ratings
    less the mean ``mu`` in standard units (divided by ``terms.rating_scale``) in the
    factors' ``dtype``, each row's penalty multiplier (``terms``: ``ALSPenalty``;
    ``counts``: each row's ratings)."""
    target = ((values.astype(np.float64) - mu) / terms.rating_scale).astype(dtype)
    scale = np.ascontiguousarray(terms.base + terms.count_weight * counts, np.float64)
    return np.ones(len(target), dtype), target, scale


def cg_solve_rows_in_blocks(indptr, cols, inputs, other_factors, other_bias, terms, cg_steps,
                            factors, bias, n_threads, between=None, prior=None):
    """``cg_steps`` CG steps (``mfcore._kernels.ials.solve_rows`` with no all-pairs term) for
    each row of a CSR layout, starting from the values ``factors`` and ``bias`` hold,
    solved in place, on blocks of rows (``solve_in_blocks``, ``between`` as there);
    ``inputs``: the side's ``cg_inputs``; ``prior`` (n, k + 1: bias, factors) centres the
    rows' penalties, as in ``solve_rows_in_blocks``.

    The CG runs in standard units: biases divided by the ratings' scale s
    (``terms.rating_scale``), factors by its square root, the factor penalty by s. Unlike
    the exact solve, a few CG steps are not equivariant under the different scalings of
    the bias and the factor columns (nor is its stopping test), so solving in rating
    units made the fit depend on the ratings' unit."""
    conf, target, row_scale = inputs
    s = terms.rating_scale
    root = math.sqrt(s)
    dtype = factors.dtype
    other_factors = (other_factors / root).astype(dtype)
    other_bias = (other_bias / s).astype(dtype)
    x, x_bias = (factors / root).astype(dtype), (bias / s).astype(dtype)
    if prior is not None:
        prior = np.concatenate([prior[:, :1] / s, prior[:, 1:] / root], axis=1)
    centre = _centre(prior)

    def block(a, b, block_indptr, lo, hi):
        cg_solve_rows(block_indptr, cols[lo:hi], conf[lo:hi], target[lo:hi], other_factors,
                      other_bias, 0.0, terms.reg / s, terms.reg_bias, row_scale[a:b], True,
                      cg_steps, x[a:b], x_bias[a:b], _NO_LOSS, n_threads, terms.bias_shrinkage,
                      **centre.get(a, b))
    solve_in_blocks(indptr, factors.shape[1], n_threads, block, cg_steps, between)
    factors[...] = x * root
    bias[...] = x_bias * s


def solve_rows_in_blocks(indptr, cols, ratings, other_factors, other_bias, mu, reg, reg_bias,
                         base, count_weight, fit_bias, factors, bias, n_threads,
                         bias_shrinkage=0.0, between=None, prior=None, table=None):
    """``mfcore._kernels.rowsolve.solve_rows`` (the exact solve) on blocks of rows
    (``solve_in_blocks``, ``between`` as there); ``prior`` (n, k + 1: bias, factors;
    float64) centres the rows' penalties; with ``table`` (the distinct ratings),
    ``ratings`` holds their uint8 codes (``ALSSide``)."""
    centre = _centre(prior)

    def block(a, b, block_indptr, lo, hi):
        values, extra = ratings[lo:hi], centre.get(a, b)
        if table is not None:
            values, extra["codes"] = table, values
        solve_rows(block_indptr, cols[lo:hi], values, other_factors, other_bias, mu,
                   reg, reg_bias, base, count_weight, fit_bias, factors[a:b], bias[a:b],
                   n_threads, bias_shrinkage, **extra)
    solve_in_blocks(indptr, factors.shape[1], n_threads, block, between=between)


#: floating-point operations an ALS iteration may take before ``warn_of_cost`` says so
#: (about a minute at 10 GFLOP/s, roughly what one core of the solve kernel reaches)
COSTLY_ITERATION = 6e11


def warn_of_cost(n_ratings, n_rows, k, n_threads):
    """Warn, stating the expected cost, when one ALS iteration will take minutes: each
    rating adds a (k+1)^2 outer product on both sides and each user and item row factors a
    (k+1)x(k+1) system, k^3/3 operations (a k of 2000 costs 8000x a k of 100 per row)."""
    size = k + 1
    flops = 2.0 * n_ratings * size * size + n_rows * size ** 3 / 3.0
    if flops > COSTLY_ITERATION:
        minutes = flops / (1e10 * n_threads) / 60.0
        warn(Message("ALS with {0}: an iteration takes about {1} floating-point operations "
                     "({2} systems of {3}x{3} and {4} ratings' outer products), roughly {5} "
                     "minute(s) on {6} thread(s); the cost grows as k^3: a k of 32-256 is usual",
                     Setting("k", k), f"{flops:.1e}", f"{n_rows:,}", size, f"{n_ratings:,}",
                     f"{minutes:,.0f}", n_threads), RuntimeWarning)


class ALS(Estimator):
    """Biased matrix factorization by alternating least squares.

    Predicts ``r(u, i) = mu + b_u + b_i + p_u . q_i`` (``mu``: the mean
    training rating, fixed). Each iteration solves, for every user u with the
    items fixed::

        min_{b_u, p_u}  sum_{i in R(u)} (r_ui - mu - b_i - b_u - p_u . q_i)^2
                        + s_u (reg |p_u|^2 + reg_bias b_u^2) + bias_shrinkage b_u^2

    and then the same for every item with the users fixed. Penalties and
    ``init_std`` are defined for ratings standardized by their spread
    ``sigma`` (``rating_scale_``), so in rating units the factor penalty is
    ``sigma reg``: the same defaults serve any rating scale. ``s_u`` is the
    number of ratings of the row with ``count_weighted=True`` (ALS-WR, Zhou et
    al. 2008: the penalty grows with the data, as in SGD where it is applied
    once per rating) or 1 without. The bias is one more unknown of the row's
    system (an all-ones column on the other side) with its own penalty.
    ``bias_shrinkage`` adds that many ratings' worth of penalty to every bias
    whatever its count, as a prior would: count-weighted alone, the bias of an
    item rated once at 5 stars was barely shrunk (``reg_bias`` 0.03 of one
    rating), so such items topped lists ranked by predicted rating.

    Parameters
    ----------
    k : int, default 64
        Number of latent factors.
    iterations : int, default 15
        Alternations (each solves both sides); the most, with early stopping.
        0 only initialises (biases 0: predicts about the global mean).
    reg : float, default 0.09
        L2 penalty of the factors (per rating with ``count_weighted``), on
        standardized ratings.
    reg_bias : float or None, default 0.03
        L2 penalty of the biases; None means ``reg``.
    bias_shrinkage : float, default 1.0
        Extra L2 penalty of every bias, in ratings' worth, not scaled by the
        count: a bias from n ratings is shrunk by about n / (n + 1) more.
    count_weighted : bool, default True
        Scale each row's penalty by its number of ratings (ALS-WR).
    solver : {"cholesky", "cg"}, default "cholesky"
        How a row's system is solved. "cholesky": exactly, forming the
        row's (k+1)x(k+1) Gram matrix in float64 (n k^2 / 2 + k^3 / 6
        operations for a row of n ratings). "cg": ``cg_steps`` steps of
        conjugate gradient from the row's value of the previous iteration,
        in the factors' dtype, never forming the matrix (Takacs et al. 2011;
        about 2 n k operations a step): several times faster at k >= 64,
        near the exact solve's accuracy once the iterations have warmed
        the rows up. A fixed step count keeps fits deterministic.
        ``fold_in`` always solves exactly.
    cg_steps : int, default 3
        Conjugate-gradient steps per row and half-iteration (``solver="cg"``).
    reg_features : float, default 1.0
        Penalty of the side features' weights, relative to the penalties of the
        rows that have each feature: a categorical level's weights are the
        penalty-weighted mean of its rows' effective parameters (less their
        other features' terms) shrunk by 1 / (1 + reg_features). Relative,
        because an absolute penalty is negligible beside a feature's many rows
        and let the fit trade small user vectors for large feature vectors (an
        ever-decreasing objective that overfits). Chosen on validation data
        (a 10% carve of ML-100K u1.base, k=64): 0.3, 1 and 3 gave 0.9143,
        0.9062 and 0.9097 against 0.9155 without features.

    init_std : float, default 0.1
        Standard deviation of the initial factors (only the item side's
        matters: users are solved first).
    validation_fraction, n_iter_no_change, tol, warm_start, verbose, dtype,
    duplicates, seed, n_threads :
        As for ``mfcore.SGD`` (early stopping counts iterations).

    The defaults were chosen on validation data only: ``reg`` is the
    compromise between ML-100K (which wants more penalty per rating) and the
    denser ML-1M (docs/tuning.md). Held-out figures beside cmfrec and
    LensKit: ``benchmarks/als_compare.py``.

    Reproducibility: rows are solved independently given the other side, in
    float64, so 1, 2 or 8 threads give bit-identical models.

    Fitted attributes: those of ``mfcore.fitted.FactorModel``. Each
    ``history_`` entry holds epoch (the iteration), train_loss (regularized
    objective per rating), train_rmse, val_rmse (with validation data),
    seconds, updates_per_sec (ratings per second).

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> als = mfcore.ALS(k=8, iterations=5, seed=0).fit(ratings.user, ratings.item, ratings.rating)
    >>> items, scores = als.recommend(1, n=3)
    >>> len(items)
    3
    """

    def __init__(self, k=64, iterations=15, reg=0.09, reg_bias=0.03, bias_shrinkage=1.0,
                 count_weighted=True, solver="cholesky", cg_steps=3, reg_features=1.0,
                 init_std=0.1, validation_fraction=None, n_iter_no_change=3, tol=0.0,
                 warm_start=False, verbose=False, dtype="float32", duplicates="mean", seed=0,
                 n_threads=None):
        self._store(locals())

    PARAMS = {
        "iterations": p.Interval(int, 0),
        "reg": p.Interval(float, 0.0),
        "reg_bias": p.Optional(p.Interval(float, 0.0)),
        "bias_shrinkage": p.Interval(float, 0.0),
        "reg_features": p.Interval(float, 0.0, closed="neither"),
        "count_weighted": p.Boolean(),
        "solver": p.Options("cholesky", "cg"),
        "cg_steps": p.Interval(int, 1),
        **COMMON_PARAMS,
        **EARLY_STOPPING_PARAMS,
    }
    name = "als"
    epochs_param = "iterations"
    epoch_word = "iterations"
    capabilities = frozenset({"early_stopping", "continue", "fold_in", "dask", "features",
                              "streaming"})
    default_grid = {"k": [32, 64, 128], "reg": [0.05, 0.1, 0.2]}
    fold_in_shrinkage = 0.0

    #: The fitted state beyond the factor model's: each side's feature weights (bias
    #: weight, then the factor vector, per feature), with the encodings (text)
    STATE = Estimator.STATE + (
        StateArray("user_feature_weights", (None, "k+1"), "float64", optional=True),
        StateArray("item_feature_weights", (None, "k+1"), "float64", optional=True),
    )
    STATE_EXTRA = FEATURE_STATE

    def fit(self, users, items=None, ratings=None, validation=None, callback=None, *,
            columns=None, user_features=None, item_features=None):
        """Train on (user, item, rating) triples; return ``self`` (see ``Estimator.fit``).

        ``user_features``, ``item_features``: side features (``mfcore.features``), a
        pandas DataFrame indexed by raw id or a ``(matrix, ids)`` pair. Each feature f
        gets weights theta_f (a bias weight and a factor vector) and a row's bias and
        factors are its feature terms ``sum_f x_f theta_f`` plus what its ratings add
        (see the class docstring); ids without a row have no features. The encodings
        (``user_feature_encoding_``, ``item_feature_encoding_``) and weights
        (``user_feature_weights_``, ``item_feature_weights_``) are kept and saved, for
        ``predict``, ``recommend`` and ``fold_in`` of ids unseen in training. Either
        solver takes them; a fit with features does not continue (``partial_fit``,
        ``warm_start``): refit.

        >>> import mfcore, pandas as pd
        >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
        >>> people = pd.DataFrame({"group": ["a", "b"] * 50, "age": range(100)}, index=range(100))
        >>> als = mfcore.ALS(k=4, iterations=5, seed=0).fit(ratings, user_features=people)
        >>> als.user_feature_weights_.shape   # group=a, group=b, age; bias weight + 4 factors
        (3, 5)
        >>> newcomer = pd.DataFrame({"group": ["b"], "age": [30]}, index=[1000])
        >>> float(als.predict(1000, 5, user_features=newcomer)) > 0
        True
        """
        inputs = feature_inputs(user_features, item_features)
        if inputs:
            params = self._checked_params()
            if params["warm_start"] and self._is_fitted():
                raise NotImplementedError("warm_start does not continue a fit with side "
                                          "features: set warm_start=False to refit")
        return self._fit(users, items, ratings, validation, callback, columns, inputs)

    def partial_fit(self, users, items=None, ratings=None, epochs=1, validation=None,
                    callback=None, *, columns=None):
        """See ``Estimator.partial_fit``; not for a model fitted with side features (their
        tables are not kept): refit it."""
        if any(getattr(self, f"{side}_feature_encoding_", None) is not None
               for side in ("user", "item")):
            raise NotImplementedError("partial_fit does not continue a fit with side "
                                      "features (the tables are not kept): refit with fit")
        return super().partial_fit(users, items, ratings, epochs, validation, callback,
                                   columns=columns)

    def _start_summary(self, summary, params):
        """A fresh fit (see ``Estimator._start_summary``) starts without side features;
        ``_trainer`` adds those given."""
        super()._start_summary(summary, params)
        for side in ("user", "item"):
            setattr(self, f"{side}_feature_encoding_", None)
            setattr(self, f"{side}_feature_weights_", None)

    def _state_sizes(self, state, columns):
        return dict(super()._state_sizes(state, columns), **{"k+1": columns + 1})

    def _check_state(self, state, sizes, dtype):
        """Side features: each side's encoding and weights together, a row per feature."""
        check_feature_state(state, "{side}_feature_weights")

    @staticmethod
    def _penalty_scale(params):
        """(base, count_weight): a row with n ratings is penalised ``base + count_weight * n``."""
        return (0.0, 1.0) if params["count_weighted"] else (1.0, 0.0)

    def _trainer(self, data, params, layouts, inputs):
        if params["solver"] == "cholesky":  # (the CG's cost is linear in k)
            warn_of_cost(len(data), len(self.user_factors_) + len(self.item_factors_),
                         params["k"], resolve_n_threads(params["n_threads"]))

        key = ("als", params["dtype"])
        if key not in layouts:  # the layout depends on the data alone: reused across trials
            if isinstance(data, StreamedRatings):
                layouts[key] = ALSLayout.from_chunks(data, resolve_n_threads(params["n_threads"]))
            else:
                layouts[key] = ALSLayout(data.u, data.i, data.r, len(self.user_factors_),
                                         len(self.item_factors_))
        layout = layouts[key]
        self._share_seen(layout.sides[0])
        features = self._encode_features(inputs)
        for side in ("user", "item"):
            encoding = getattr(self, f"{side}_feature_encoding_")
            setattr(self, f"{side}_feature_weights_", None if encoding is None else
                    np.zeros((encoding.n_features, params["k"] + 1)))
        return ALSIterations(self, layout.sides, params, resolve_n_threads(params["n_threads"]),
                             features)

    def _share_seen(self, side):
        """Hold the seen items as the user side's columns (the same CSR: every user has
        ratings here, a row's items sorted, no pair repeated): 4 B a rating less in a fit
        from arrays (a streamed fit builds its seen items after training). Neither is ever
        written in place."""
        if (side.present is None and self.seen_items_ is not None
                and self.seen_items_ is not side.cols
                and np.array_equal(self.seen_indptr_, side.indptr)
                and np.array_equal(self.seen_items_, side.cols)):
            self.seen_indptr_, self.seen_items_ = side.indptr, side.cols

    def _fold_in_penalty(self, shrinkage):
        """Fold-in solves exactly ALS's user step (``shrinkage`` 0, the default); ``shrinkage``
        adds that many ratings' worth of penalty."""
        params = self._checked_params()
        base, count_weight = self._penalty_scale(params)
        return (params["reg"] * self.rating_scale_, bias_reg(params), base + shrinkage,
                count_weight, params["bias_shrinkage"])
