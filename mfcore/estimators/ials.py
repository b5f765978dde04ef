"""ImplicitALS, the estimator ``mfcore.ImplicitALS``: weighted ALS over all user-item pairs,
for top-N recommendation from which items people chose (implicit feedback).

Each iteration solves every user row with the items fixed, then every item row, in the
kernel ``mfcore._kernels.ials.solve_rows``: a few conjugate-gradient steps per row over its
observed pairs plus the Gram matrix of the whole other side (the all-pairs term costs
O(k^2) a row, never users x items). Rows are independent given the other side, so a fit is
bit-identical for any thread count.
"""
import warnings

import numpy as np

from .. import params as p
from .._kernels.ials import solve_rows
from .._threads import resolve_n_threads
from ..data import is_chunked, rating_arrays
from ..errors import ImplicitFeedbackWarning
from ..fitted import StateArray
from .base import COMMON_PARAMS, Estimator
from .driver import Trainer

__all__ = ["ImplicitALS", "ImplicitLayout"]


class ImplicitLayout:
    """The observed pairs twice, as CSR by user and by item over every row of the model,
    with each pair's confidence and target (see ``ImplicitALS``). Depends on the data,
    ``alpha`` and ``targets`` alone, so search reuses it across trials."""

    def __init__(self, u, i, r, n_users, n_items, alpha, targets, mean, dtype):
        conf = _confidences(r, alpha, mean, dtype)
        target = _targets(r, targets, mean, dtype)
        self.sides = (self._side(u, i, conf, target, n_users),
                      self._side(i, u, conf, target, n_items))
        self.u, self.i, self.conf = u, i, conf

    @staticmethod
    def _side(rows, cols, conf, target, n_rows):
        """(CSR indptr, columns, confidences, targets, confidence per row)."""
        counts = np.bincount(rows, minlength=n_rows)
        order = np.argsort(rows, kind="stable")
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        per_row = np.bincount(rows, weights=conf.astype(np.float64), minlength=n_rows)
        return (indptr, np.ascontiguousarray(cols[order], dtype=np.int32),
                np.ascontiguousarray(conf[order]), np.ascontiguousarray(target[order]), per_row)


def _check_values(values, mean, why):
    """Values must be >= 0 with a positive mean for ``why`` (alpha > 0, targets="values")."""
    if not mean > 0 or (len(values) and values.min() < 0):
        low = values.min() if len(values) else mean
        raise ValueError(f"ImplicitALS with {why} needs values >= 0 with a positive mean "
                         f"(counts, ratings, or none at all); got {low:g}")


def _confidences(values, alpha, mean, dtype):
    """c = 1 + alpha v / mean, as ``dtype``; with alpha > 0 values must be >= 0."""
    values = np.asarray(values, np.float64)
    if alpha == 0:
        return np.ones(len(values), dtype=dtype)
    _check_values(values, mean, "alpha > 0")
    return (1.0 + alpha * values / mean).astype(dtype)


def _targets(values, targets, mean, dtype):
    """t = v / mean ("values"; values must be >= 0) or 1 ("ones"), as ``dtype``."""
    values = np.asarray(values, np.float64)
    if targets == "ones":
        return np.ones(len(values), dtype=dtype)
    _check_values(values, mean, 'targets="values"')
    return (values / mean).astype(dtype)


class _Iterations(Trainer):
    """The driver's trainer for one ImplicitALS fit: both half-iterations and the objective."""

    def __init__(self, model, layout, params, n_threads):
        super().__init__(model)
        self.layout, self.n_threads = layout, n_threads
        self.params = params
        self.w0 = params["unobserved_weight"]
        n_users, n_items = len(model.user_factors_), len(model.item_factors_)
        self.scales = tuple(
            ImplicitALS._penalty_scale(params, side[4], n_other,
                                       ImplicitALS._penalty_norm(params, side[4], n_other))
            for side, n_other in zip(layout.sides, (n_items, n_users)))

    def step(self, epoch):
        m, prm = self.model, self.params
        loss = np.zeros(len(m.item_factors_))
        for (indptr, cols, conf, target, _), scale, kind, other, row_loss in (
                (self.layout.sides[0], self.scales[0], "user", "item", np.zeros(0)),
                (self.layout.sides[1], self.scales[1], "item", "user", loss)):
            solve_rows(indptr, cols, conf, target, getattr(m, f"{other}_factors_"),
                       getattr(m, f"{other}_bias_"), self.w0, prm["reg"], prm["reg"], scale,
                       prm["fit_bias"], prm["cg_steps"], getattr(m, f"{kind}_factors_"),
                       getattr(m, f"{kind}_bias_"), row_loss, self.n_threads)
        return {"sse": float(loss.sum()) + self.w0 * self.all_pairs_squares()}

    def all_pairs_squares(self):
        """sum over every (user, item) of the score's square, by the Gram trick:
        s_ui = [p_u, b_u, 1] . [q_i, 1, b_i], so the sum is <A^T A, B^T B>."""
        m = self.model
        A = np.c_[m.user_factors_, m.user_bias_, np.ones(len(m.user_bias_))].astype(np.float64)
        B = np.c_[m.item_factors_, np.ones(len(m.item_bias_)), m.item_bias_].astype(np.float64)
        return float(np.einsum("ij,ij->", np.einsum("ni,nj->ij", A, A), np.einsum("ni,nj->ij", B, B)))

    def penalty(self):
        m, reg = self.model, self.params["reg"]
        total = 0.0
        for kind, scale in zip(("user", "item"), self.scales):
            factors = getattr(m, f"{kind}_factors_")
            bias = getattr(m, f"{kind}_bias_").astype(np.float64)
            squares = np.einsum("ij,ij->i", factors, factors, dtype=np.float64)
            total += float(scale @ (reg * (squares + bias * bias)))
        return total

    def diverged(self, epoch, info):
        return (f"ImplicitALS produced non-finite parameters at iteration {epoch}; try a larger "
                "reg or dtype='float64'")


class ImplicitALS(Estimator):
    """Implicit-feedback matrix factorization: weighted ALS over all user-item pairs.

    Learns which items people choose, and how much they like them, for top-N
    recommendation (``recommend``). Every observed (user, item) pair is a
    positive with target t_ui; every pair at all, observed or not, is pulled
    towards 0 with the small weight ``w0`` (``unobserved_weight``). It
    minimises::

        sum_{(u,i) observed} c_ui (t_ui - s_ui)^2  +  w0 sum_{all u, i} s_ui^2
          + reg sum_u  (W_u / mean_u W_u)^nu (|p_u|^2 + b_u^2)
          + reg sum_i  (W_i / mean_i W_i)^nu (|q_i|^2 + b_i^2),

        W_u = C_u + w0 n_items,   W_i = C_i + w0 n_users,

        s_ui = b_u + b_i + p_u . q_i,    c_ui = 1 + alpha v_ui / mean(v),
        t_ui = v_ui / mean(v)  (targets="values")  or  1  (targets="ones"),

    where v_ui is the value given for the pair (a rating, a count; 1 when
    ``fit`` gets no values), C_u, C_i the sums of the row's confidences (its
    number of pairs when ``alpha`` is 0) and W_u, W_i a row's whole weight in
    the data terms. With ``targets="ones"`` this is
    Hu, Koren and Volinsky's (2008) model; with rating targets (the default)
    it is Steck's (2010) AllRank with unobserved pairs imputed to 0: a pair
    rated 5 stars pulls the score up more than one rated 1, which lifts
    MovieLens's NDCG@10 (see the recommending guide). The
    regularization is scaled by frequency (exponent ``nu``, ``reg_exponent``)
    as Rendle et al. (2022, "Revisiting the performance of iALS on item
    recommendation benchmarks") recommend, relative to a row of mean weight
    (their shifted scale with reference nu = 0): ``reg`` is the penalty of an
    average row, so its good values move little with nu, the catalogue size
    and ``w0`` (one default serves MovieLens 100K and 1M). The second sum runs over users x
    items pairs but costs O(k^2) a row: it equals ``w0 x^T G x - 2 w0 x^T g +
    const`` with G the Gram matrix of the other side. A half-iteration fixes
    one side and, for each row, runs ``cg_steps`` conjugate-gradient steps from
    its current value (``cg_steps=0``: an exact Cholesky solve, slower): a
    sweep costs O(pairs k cg_steps + rows k^2 cg_steps).

    ``predict`` and ``recommend`` give the preference score ``s_ui``
    (``global_mean_`` is 0; predictions clip to 0 up to the largest target,
    1 without values): about the target for items the user would choose,
    about 0 for the rest. It is not a rating (``predicts_ratings`` is False),
    so ``evaluate``'s RMSE against ratings means little; use
    ``mfcore.metrics.ranking_metrics``. For rating prediction use
    ``BayesianMF`` or ``ALS``; for top-N lists, this.

    Data: ``fit(users, items)`` with no values (views, clicks, purchases), or
    ``fit(users, items, values)`` with ratings or counts: they set the targets
    (``targets="values"``) and, through ``alpha``, the confidences. Values must
    be >= 0 with a positive mean where they are used; scaling them all by one
    factor changes nothing. For counts (plays, clicks), whose size says how
    sure a choice is rather than how good, use ``targets="ones"`` with
    ``alpha`` > 0. Duplicate pairs merge by ``duplicates`` ("keep" counts every
    copy as one more observation).

    Parameters
    ----------
    k : int, default 64
        Number of latent factors.
    iterations : int, default 15
        Alternations (each solves users, then items).
    reg : float, default 8.0
        L2 penalty of factors and biases of a row of mean weight (times
        the frequency scale). The default suits thousands of items with
        tens of choices per user (MovieLens); on tiny data (a few choices
        per user of a hundred items) it leaves little beyond popularity:
        take about 1.
    unobserved_weight : float, default 0.3
        w0, the weight pulling every pair's score to 0 (Rendle's alpha_0).
    reg_exponent : float, default 1.0
        nu: 0 gives every row the same penalty, 1 a penalty growing with
        its data.
    alpha : float, default 0.0
        Extra confidence from the values (see c_ui above).
    targets : {"values", "ones"}, default "values"
        What an observed pair's score is pulled to: its value over the
        mean value, or 1 whatever the value (see t_ui above).
    cg_steps : int, default 3
        Conjugate-gradient steps per row and half-iteration; 0 solves exactly.
    fit_bias : bool, default True
        Learn user and item biases (an always-one factor); False: scores are
        p_u . q_i.
    init_std : float, default 0.1
        Standard deviation of the initial factors.
    validation_fraction, verbose, dtype, duplicates, seed, n_threads :
        As for ``mfcore.Model``. Validation is scored (RMSE of the preference
        score against the held-out values, a rough check) but never stops
        training.

    Fitted attributes: those of ``mfcore.fitted.FactorModel``. Each
    ``history_`` entry holds epoch, train_loss (the objective above per
    observed pair), train_rmse (the root of its data terms per observed pair),
    seconds and updates_per_sec (observed pairs per second).

    Examples
    --------
    >>> import numpy as np, mfcore
    >>> rng = np.random.default_rng(0)
    >>> users = np.repeat(np.arange(50), 6)                # 50 users, 6 picks each,
    >>> items = (users % 5) * 20 + rng.integers(0, 20, 300)  # from their group's 20 items
    >>> model = mfcore.ImplicitALS(k=8, iterations=5, reg=1.0, duplicates="keep")
    >>> model = model.fit(users, items)           # (tiny data: a smaller penalty)
    >>> top, scores = model.recommend(7, n=3)
    >>> (top // 20).tolist()                                # items of user 7's group, 2
    [2, 2, 2]
    """

    def __init__(self, k=64, iterations=15, reg=8.0, unobserved_weight=0.3, reg_exponent=1.0,
                 alpha=0.0, targets="values", cg_steps=3, fit_bias=True, init_std=0.1,
                 validation_fraction=None, verbose=False, dtype="float32", duplicates="mean",
                 seed=0, n_threads=None):
        self._store(locals())

    PARAMS = {
        "iterations": p.Interval(int, 0),
        "reg": p.Interval(float, 0.0),
        "unobserved_weight": p.Interval(float, 0.0),
        "reg_exponent": p.Interval(float, 0.0),
        "alpha": p.Interval(float, 0.0),
        "targets": p.Options("values", "ones"),
        "cg_steps": p.Interval(int, 0),
        "fit_bias": p.Boolean(),
        **COMMON_PARAMS,
    }
    name = "ials"
    epochs_param = "iterations"
    epoch_word = "iterations"
    # no "continue" (every unobserved pair is part of the objective: refit on all data), no
    # "early_stopping" (validation RMSE is not what it aims at), no "dask" yet;
    # no default_grid: ``mfcore tune`` scores RMSE
    capabilities = frozenset({"fold_in"})
    #: penalty_norm: the users' mean weight, which ``reg`` is relative to (fold_in needs it;
    #: None in files written before: 1, the penalty was not normalised then)
    STATE = Estimator.STATE + (StateArray("value_mean", (), "float64"),
                               StateArray("penalty_norm", (), "float64", optional=True))
    #: its scores already say how likely a user picks an item: rank by them as they are
    default_rank_by = "prediction"
    #: ... which are preference scores, not ratings (fold_in's values are counts or ratings
    #: on any scale)
    predicts_ratings = False
    unknown_fallback = "scored from the known bias alone (no factors; the mean is 0)"

    def fit(self, users, items=None, values=None, validation=None, callback=None, *,
            columns=None):
        """Train on (user, item) pairs, with optional values (counts or ratings, which weigh
        the pairs through ``alpha``); return ``self``. A table works too (its rating column,
        if any, gives the values; a ``RatingChunks`` file's ratings too). See ``Estimator.fit``."""
        if is_chunked(users):  # (read whole: ``Estimator._prepare_chunks``)
            return self._fit(users, items, values, validation, callback, columns, {})
        users, items, values, _ = rating_arrays(users, items, values, columns, need_ratings=False)
        return self._fit(users, items, self._values(items, values), validation, callback, None, {})

    def fold_in(self, users, items=None, values=None, shrinkage=None, *, columns=None):
        """Add users (or refresh known ones) from the items they chose, items held fixed, by
        an exact solve of their rows of the objective; see ``FactorModel.fold_in``."""
        users, items, values, _ = rating_arrays(users, items, values, columns,
                                                need_ratings=False, what="fold_in")
        return super().fold_in(users, items, self._values(items, values), shrinkage)

    @staticmethod
    def _values(items, values):
        if values is not None:
            return values
        return np.ones(len(items) if np.ndim(items) else 1, dtype=np.float64)

    @staticmethod
    def _penalty_norm(params, per_row, n_other):
        """A side's mean weight ``mean(C) + w0 n_other``, the row weight at which the penalty
        is ``reg`` (1 when it is 0: no pairs and ``w0`` = 0)."""
        norm = float(np.mean(per_row)) + params["unobserved_weight"] * n_other if len(per_row) else 0.0
        return norm if norm > 0 else 1.0

    @staticmethod
    def _penalty_scale(params, per_row, n_other, norm):
        """Each row's penalty multiplier ``((C + w0 n_other) / norm)^nu`` (float64)."""
        base = (np.asarray(per_row, np.float64) + params["unobserved_weight"] * n_other) / norm
        return np.ascontiguousarray(base ** params["reg_exponent"])

    def _start_summary(self, summary, params):
        # values are confidences or targets, not ratings: no mean to centre on and no spread
        # to scale by (all-equal values are the normal case here, not a warning)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImplicitFeedbackWarning)
            super()._start_summary(summary, params)
        for why, used in (("alpha > 0", params["alpha"] > 0),
                          ('targets="values"', params["targets"] == "values")):
            if used and not (summary.mean > 0 and summary.low >= 0):
                raise ValueError(f"ImplicitALS with {why} needs values >= 0 with a positive "
                                 "mean (counts, ratings, or none at all); got values from "
                                 f"{summary.low:g} to {summary.high:g}")
        self.value_mean_ = np.float64(summary.mean)
        self.global_mean_ = 0.0
        self.rating_scale_ = 1.0

    def _factor_std(self, params):
        return params["init_std"]  # scores are preferences: nothing scales with the values

    def _train(self, data, params, n_epochs, validation, callback, val=None, layouts=None,
               inputs=None):
        trainer = super()._train(data, params, n_epochs, validation, callback, val, layouts,
                                 inputs)
        # the preference score's range, for clipping: 0 to the largest target
        top = self.rating_range_[1] / self.value_mean_ if params["targets"] == "values" else 1.0
        self.rating_range_ = (0.0, float(max(top, 1.0)))
        return trainer

    def _trainer(self, data, params, layouts, inputs):
        key = ("ials", params["dtype"], params["alpha"], params["targets"], self.value_mean_)
        if key not in layouts:
            layouts[key] = ImplicitLayout(data.u, data.i, data.r, len(self.user_factors_),
                                          len(self.item_factors_), params["alpha"],
                                          params["targets"], self.value_mean_,
                                          p.DTYPES[params["dtype"]])
        self.penalty_norm_ = np.float64(self._penalty_norm(params, layouts[key].sides[0][4],
                                                           len(self.item_factors_)))
        return _Iterations(self, layouts[key], params, resolve_n_threads(params["n_threads"]))

    def _fold_in_rows(self, indptr, items, ratings, shrinkage):
        """The exact solve of each folded-in user's row (``shrinkage`` adds that many pairs'
        worth of penalty); confidences from the values as in training."""
        params = self._checked_params()
        n, k, dtype = len(indptr) - 1, self.user_factors_.shape[1], self.user_factors_.dtype
        conf = _confidences(ratings, params["alpha"], self.value_mean_, dtype)
        target = _targets(ratings, params["targets"], self.value_mean_, dtype)
        per_row = np.add.reduceat(conf.astype(np.float64), indptr[:-1]) if len(conf) else np.zeros(n)
        norm = 1.0 if self.penalty_norm_ is None else float(self.penalty_norm_)
        scale = self._penalty_scale(params, per_row + shrinkage, len(self.item_factors_), norm)
        factors, bias = np.zeros((n, k), dtype), np.zeros(n, dtype)
        solve_rows(indptr, items, conf, target, self.item_factors_,
                   self.item_bias_, params["unobserved_weight"], params["reg"], params["reg"],
                   scale, params["fit_bias"], 0, factors, bias, np.zeros(0),
                   self._threads())
        return factors, bias, {}
