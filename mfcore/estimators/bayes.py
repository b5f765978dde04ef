"""Bayesian MF, the estimator ``mfcore.BayesianMF``: Gibbs sampling, the posterior kept compactly.

The sampler (``mfcore._kernels.bayes.gibbs_sweep``) draws every bias and factor
from its full conditional, users in parallel then items, with Normal-Gamma
hyperpriors per group and a sampled noise precision. Its random numbers are
keyed on (seed, sweep, stream, row, coordinate), so a fit is bit-identical for
any thread count.

What is kept of the posterior: the S kept samples' factors, concatenated and
scaled by 1/sqrt(S), as the model's ``user_factors_``/``item_factors_``
(shape (rows, S k)), so that ``p . q`` of the concatenation is the mean over
samples of ``p_s . q_s`` and ``predict``, ``recommend`` and ``save`` of the
fitted-model type work unchanged; the biases' posterior means as
``user_bias_``/``item_bias_``; and, for the predictive std and fold-in, each
sample's biases, noise precision and user-side hyperparameters.

With implicit terms (``implicit=True``: SVD++ and its flipped item side) the
kept factors are each sample's *effective* vectors, p_u + ybar_u and q_i +
zbar_i, so prediction is unchanged; each sample's implicit item vectors y are
kept too (``item_implicit_samples_``), for fold-in of a new user from the items
it rated.

The kept samples' size is bounded by ``posterior_mb`` whatever the data size: thinning
keeps as many samples as fit (at most ``MAX_KEPT_COLUMNS // k``), and when fewer than
``MIN_KEPT_SAMPLES`` fit, the posterior is kept as a *summary* (``PosteriorSums``):
every row's posterior mean and per-coordinate std of (bias, factors), accumulated over
every sweep after burn-in, the prior of a row without ratings and the mean noise
variance, about 1.5 times a point estimate's bytes (docs/posterior.md).
"""
import zlib

import numpy as np

from .. import params as p
from .._kernels import bayes as _bayes
from .._kernels import bayes_features as _features
from .._kernels import predict as _predict
from .._threads import resolve_n_threads
from ..fitted import (FEATURE_STATE, StateArray, check_feature_state, labelled,
                      no_time_terms, pair_arguments, reads_state)
from ..data import check_lengths, rating_arrays, to_numpy
from ..errors import Message, Setting, UnknownIdWarning, warn
from ..features import feature_inputs
from ..ids import normalize_ids, plain
from ..ordinal import MAX_CLASSES, LatentRatings, class_moments, expected_ratings
from ..timeterms import TimeEncoding, TimeSampler, TimeTerms, as_seconds, time_means, time_moments
from .base import (COMMON_PARAMS, UNIT_NAMES, Estimator, standard_units,
                   standardized, to_standard)
from .driver import Trainer

__all__ = ["BayesianMF", "GibbsSweeps"]

#: Kept factor columns (samples x k) that ``thin=None`` aims at: ML-1M at 2048 columns is
#: 80 MB of float32 factors; below ~50 samples the posterior mean gets noisier.
MAX_KEPT_COLUMNS = 2048
#: Fewest samples ``thin=None`` keeps: when ``posterior_mb`` holds fewer (of n_samples), the
#: posterior is kept as a summary (``PosteriorSums``), whose moments use every sweep.
MIN_KEPT_SAMPLES = 20
#: Pairs per chunk of the predictive-std computation (memory: chunk x samples x k).
STD_CHUNK = 4096


def sample_bytes(params, n_users, n_items, itemsize):
    """Bytes one kept sample takes: each row's bias and k factors (and, with the SVD++
    term, each item's k implicit factors), at ``itemsize`` bytes a value."""
    k = params["k"]
    implicit = n_items * k if "user" in params["implicit"] else 0
    return ((n_users + n_items) * (k + 1) + implicit) * itemsize


def sampler_layout(u, i, n_users, n_items):
    """The sampler's two CSR views of the ratings (user rows ``u``, item rows ``i``).

    Returns (order, user_ptr, user_items, user_pos, item_ptr, item_users,
    item_pos): the ratings in user order are ``order`` (by user, then item);
    user u's are positions user_ptr[u]:user_ptr[u + 1], of items user_items,
    at item-order positions user_pos; item i's, in item order, are
    item_ptr[i]:item_ptr[i + 1], of users item_users, at user-order positions
    item_pos. The residuals live in item order (``order[item_pos]``).
    """
    order = np.lexsort((i, u))
    uo, io = u[order].astype(np.int64), i[order].astype(np.int64)
    user_ptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(uo, minlength=n_users), out=user_ptr[1:])
    item_pos = np.argsort(io, kind="stable").astype(np.int64)
    user_pos = np.empty_like(item_pos)
    user_pos[item_pos] = np.arange(len(item_pos))
    item_ptr = np.zeros(n_items + 1, np.int64)
    np.cumsum(np.bincount(io, minlength=n_items), out=item_ptr[1:])
    return (order, user_ptr, io.astype(np.int32), user_pos, item_ptr,
            uo[item_pos].astype(np.int32), item_pos)


#: ``implicit`` values and the sides they switch on (y: the users' SVD++ term, z: the items')
IMPLICIT_SIDES = {False: (), None: (), True: ("user", "item"), "both": ("user", "item"),
                  "user": ("user",), "item": ("item",)}


class ImplicitSides(p.Constraint):
    """An ``implicit`` value: normalised to the sides it switches on (``IMPLICIT_SIDES``)."""

    def accepts(self, v):
        key = bool(v) if isinstance(v, np.bool_) else v
        return (isinstance(key, (bool, str)) or key is None) and key in IMPLICIT_SIDES

    def normalize(self, v):
        return IMPLICIT_SIDES[bool(v) if isinstance(v, np.bool_) else v]

    def __str__(self):
        return "False, True, 'user', 'item' or 'both'"

    def invalid_values(self):
        return ["users", 1, "nonsense"]

    def cli_type(self):
        return p.Boolean().cli_type()


def implicit_layout(u, i, n_users, n_items):
    """The implicit pairs (user rows ``u``, item rows ``i``; repeats merged) in two CSR
    orders: (user_ptr, user_items) gives N(u), (item_ptr, item_users) N(i), each sorted."""
    keys = np.unique(np.asarray(u, np.int64) * n_items + np.asarray(i, np.int64))
    uu, ii = keys // n_items, keys % n_items
    user_ptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(uu, minlength=n_users), out=user_ptr[1:])
    by_item = np.argsort(ii, kind="stable")  # keys are sorted by user: users stay sorted
    item_ptr = np.zeros(n_items + 1, np.int64)
    np.cumsum(np.bincount(ii, minlength=n_items), out=item_ptr[1:])
    return (user_ptr, ii.astype(np.int32), item_ptr, uu[by_item].astype(np.int32))


def feature_layout(rows, feats, vals, n_features, group_ptr):
    """The sampler's view of one side's feature values (triplets: row, feature, value):
    by feature (CSC, rows ascending within a feature) as ``bayes_features`` takes it."""
    order = np.lexsort((rows, feats))
    ptr = np.zeros(n_features + 1, np.int64)
    np.cumsum(np.bincount(feats, minlength=n_features), out=ptr[1:])
    return {"ptr": ptr, "rows": rows[order].astype(np.int32),
            "x": np.ascontiguousarray(vals[order], np.float64),
            "group_ptr": np.ascontiguousarray(group_ptr, np.int64)}


def feature_terms(layout, theta, n_rows):
    """sum_g x_vg theta_g of every row v (n_rows, k + 1), added in the layout's order."""
    feats = np.repeat(np.arange(len(layout["ptr"]) - 1), np.diff(layout["ptr"]))
    out = np.zeros((n_rows, theta.shape[1]))
    np.add.at(out, layout["rows"], layout["x"][:, None] * theta[feats])
    return out


class PosteriorSums:
    """The summary posterior: running sums, over every sweep after burn-in, of each row's
    (bias, factors) and their squares, of the noise variance and of the groups'
    hyperparameters, so the posterior's means and per-coordinate variances cost two
    arrays the size of the model whatever the number of sweeps.

    ``add`` takes one sweep's rows (n, k + 1) in rating units; sums run in float64, each
    element in sweep order (numpy, one thread), shifted by the first sweep's values so
    that a variance small beside its mean keeps its digits: exact up to rounding,
    deterministic, independent of the thread count."""

    def __init__(self):
        self.count, self.noise = 0, 0.0
        self.shift, self.sums, self.squares, self.hyper = {}, {}, {}, {}

    def add(self, rows, noise, hyper):
        """One sweep: ``rows`` and ``hyper`` ((mean, precision) of the groups, (2, k + 1))
        per side ("user", "item"), ``noise`` its noise variance 1/alpha."""
        for side, values in rows.items():
            values = values.astype(np.float64)
            if not self.count:
                self.shift[side] = values.copy()
                self.sums[side], self.squares[side] = np.zeros_like(values), np.zeros_like(values)
                self.hyper[side] = np.zeros((3, values.shape[1]))
            values -= self.shift[side]
            self.sums[side] += values
            values *= values
            self.squares[side] += values
            mean, precision = hyper[side]
            self.hyper[side] += (mean, mean * mean, 1.0 / precision)
        self.noise += noise
        self.count += 1

    def moments(self, side):
        """(means, variances) of a side's rows (n, k + 1), and its prior's: the (mean,
        variance) (2, k + 1) of a row without ratings, N(m_g, 1/lambda_g) averaged over
        the sweeps (variance: the mean of 1/lambda_g plus the variance of m_g)."""
        n = self.count
        mean = self.sums[side] / n
        var = np.maximum(self.squares[side] / n - mean * mean, 0.0)
        m, m2, spread = self.hyper[side] / n
        return mean + self.shift[side], var, np.stack([m, spread + np.maximum(m2 - m * m, 0.0)])


def posterior_rmse(pred, r, rating_range, n_kept, keeping, val_sum):
    """(RMSE against ``r`` of the running posterior mean, clipped to ``rating_range``, the
    running sum of the kept samples' predictions): ``pred`` are this sweep's predictions,
    added to ``val_sum`` if the sweep is kept (``keeping``); with no sample kept yet (burn-in)
    they are scored themselves. ``mfcore.dask``'s shards score with it too."""
    if n_kept:
        if keeping:
            val_sum = pred if val_sum is None else val_sum + pred
        pred = val_sum / n_kept
    lo, hi = rating_range
    err = np.clip(pred, lo, hi) - r
    return float(np.sqrt(np.mean(err * err))), val_sum


class GibbsSweeps(Trainer):
    """The driver's trainer for one BayesianMF fit: the sampler state and the kept samples.
    ``implicit``: further implicit pairs (raw ids) of ``fit(implicit=...)``, or None;
    ``features``: per side the training rows' feature values (``feature_layout``)."""

    time = None  # the time terms (``mfcore.timeterms.TimeSampler``), with fit(times=...)
    latent = None  # the ordered probit's state (``mfcore.ordinal.LatentRatings``)
    summary = None  # the summary posterior (``PosteriorSums``) when no samples are kept

    def __init__(self, model, data, params, n_threads, implicit=None, features=None):
        super().__init__(model)
        self.params, self.n_threads = params, n_threads
        n_users, n_items = len(model.user_factors_), len(model.item_factors_)
        (order, self.user_ptr, self.user_items, self.user_pos, self.item_ptr, self.item_users,
         self.item_pos) = sampler_layout(data.u, data.i, n_users, n_items)
        _bayes.check_layout(self.user_ptr, self.user_items, self.user_pos, self.item_ptr,
                            self.item_users, self.item_pos)
        # the chain runs in standardized units (ratings (r - mu) / scale: the priors are
        # defined there); the model's arrays and the kept samples are in rating units. The
        # ordered probit's latent ratings have unit noise: its chain's unit is that
        probit = params["likelihood"] == "ordered_probit"
        self._start_state(model, 1.0 if probit else None)
        self.seed = int(model.rng_.integers(0, 2**63))
        self.sides = params["implicit"]
        self.implicit = None  # the implicit state (_bayes.ImplicitTerms), if any
        # the factors the ratings see: the effective ones with implicit terms (set below)
        self.P_seen, self.Q_seen = self.P, self.Q
        if self.sides:
            self._start_implicit(params, model.rng_, model._implicit_pairs(data, implicit))
        self.features = features or {}
        if self.features:
            self._start_features(params, model.rng_)
        by_item = order[self.item_pos]
        if probit:  # the residuals are z - f, the latent ratings' (ordinal.LatentRatings)
            self.latent = LatentRatings(data.r[by_item], n_threads)
            self.residual = -self._standardized(self.item_users, data.i[by_item])
            self.latent.start(self.residual, self.seed)
        else:
            self.residual = (standardized(data.r[by_item], model.global_mean_, self.scale)
                             - self._standardized(self.item_users, data.i[by_item]))
        self.user_residual = np.empty_like(self.residual)
        if data.t is not None:
            self.time = TimeSampler(TimeEncoding.fit(params["time_terms"], params["time_bins"],
                                                     data.t), data.u, data.i, data.t, by_item)
        self.burn_in, self.thin = params["burn_in"], model._thin(params, n_users, n_items)
        if self.thin is None:
            self._refuse_summary(params, data)
            self.summary = PosteriorSums()
        self.kept = []  # (P, Q, bu, bi, alpha, user_hyper, y, features) of every kept sweep
        self.val_sum = None     # running sum of the kept samples' validation predictions

    def _refuse_summary(self, params, data):
        """Raise ValueError for what the summary posterior cannot serve: the ordered
        probit (its class probabilities need each sample's cut points), side features and
        time terms (their cold rows and groups are per-sample priors)."""
        parts = [name for name, used in (
            ("likelihood='ordered_probit'", params["likelihood"] != "gaussian"),
            ("side features", bool(self.features)), ("times", data.t is not None)) if used]
        if parts:
            size = sample_bytes(params, len(self.P), len(self.Q),
                                self.model.user_factors_.dtype.itemsize)
            raise ValueError(
                f"BayesianMF with {' and '.join(parts)} keeps posterior samples, but "
                f"posterior_mb={params['posterior_mb']:g} holds fewer than "
                f"{min(params['n_samples'], MIN_KEPT_SAMPLES)} of {size / 1e6:,.1f} MB "
                "(the summary posterior serves the Gaussian likelihood without them): raise "
                "posterior_mb or lower k")

    def _start_state(self, model, scale=None):
        """The chain's parameters in standardized units (float64) from the model's initial
        arrays, and the hyperparameters' storage; ``scale``: the chain's unit in rating
        units (default: the ratings' spread)."""
        self.scale = model.rating_scale_ if scale is None else scale
        self.root = np.sqrt(self.scale)
        self.units = standard_units(self.scale)
        self.P, self.Q, self.bu, self.bi = (
            to_standard(getattr(model, name).astype(np.float64), self.units, name)
            for name in UNIT_NAMES)
        k = self.P.shape[1]
        self.user_hyper, self.item_hyper = np.zeros((2, k + 1)), np.zeros((2, k + 1))

    def _start_implicit(self, params, rng, pairs):
        """The implicit state: N(u) and N(i) from ``pairs`` (user rows, item rows), y and z
        drawn like the factors (only for the sides asked for), their sums, the effective
        factors."""
        n_users, k = self.P.shape
        n_items = len(self.Q)
        ptrs = implicit_layout(*pairs, n_users, n_items)
        y = (rng.normal(0.0, params["init_std"], (n_items, k)) if "user" in self.sides
             else None)
        z = (rng.normal(0.0, params["init_std"], (n_users, k)) if "item" in self.sides
             else None)
        ybar, zbar = np.zeros((n_users, k)), np.zeros((n_items, k))
        if y is not None:
            _bayes.implicit_means(ptrs[0], ptrs[1], y, ybar, self.n_threads)
        if z is not None:
            _bayes.implicit_means(ptrs[2], ptrs[3], z, zbar, self.n_threads)
        self.P_seen, self.Q_seen = self.P + ybar, self.Q + zbar
        self.implicit = _bayes.ImplicitTerms(
            *ptrs, y=y, z=z, ybar=ybar, zbar=zbar, user_effective=self.P_seen,
            item_effective=self.Q_seen, y_hyper=None if y is None else np.zeros((2, k)),
            z_hyper=None if z is None else np.zeros((2, k)))

    def _start_features(self, params, rng):
        """The side features' state: each feature's (linear weight, factor vector) theta,
        the weights 0 and the vectors drawn like the factors; the rows' shifts (their
        feature terms plus any implicit term, in one ``ImplicitTerms``) and effective
        parameters (see ``bayes_features``). The bias arrays hold the effective biases
        from here on."""
        k, imp = self.P.shape[1], self.implicit
        ybar = np.zeros_like(self.P) if imp is None else imp.ybar
        zbar = np.zeros_like(self.Q) if imp is None else imp.zbar
        bias_shift = {}
        for side, factor_shift, bias in (("user", ybar, self.bu), ("item", zbar, self.bi)):
            bias_shift[side] = np.zeros(len(bias))
            layout = self.features.get(side)
            if layout is not None:
                theta = np.zeros((len(layout["ptr"]) - 1, k + 1))
                theta[:, 1:] = rng.normal(0.0, params["init_std"], (len(theta), k))
                term = feature_terms(layout, theta, len(bias))
                factor_shift += term[:, 1:]
                bias_shift[side] += term[:, 0]
                bias += term[:, 0]
                layout.update(theta=theta, hyper=np.zeros((len(layout["group_ptr"]) - 1, 2,
                                                           k + 1)))
        self.P_seen, self.Q_seen = self.P + ybar, self.Q + zbar
        pairs = (None,) * 4 if imp is None else (imp.user_ptr, imp.user_items, imp.item_ptr,
                                                  imp.item_users)
        vectors = {} if imp is None else dict(y=imp.y, z=imp.z, y_hyper=imp.y_hyper,
                                              z_hyper=imp.z_hyper)
        self.implicit = _bayes.ImplicitTerms(
            *pairs, ybar=ybar, zbar=zbar, user_effective=self.P_seen,
            item_effective=self.Q_seen, user_bias_shift=bias_shift["user"],
            item_bias_shift=bias_shift["item"], **vectors)
        self.feature_sides = [
            _features.FeatureSide(
                side, layout["ptr"], layout["rows"], layout["x"], layout["group_ptr"],
                layout["theta"], layout["hyper"], *self._side_arrays(side), self.n_threads)
            for side, layout in self.features.items()]

    def _side_arrays(self, side):
        """The arrays of one side a ``FeatureSide`` updates: effective bias and factors,
        bias and factor shifts, own factors, the row group's hyperparameters."""
        imp = self.implicit
        if side == "user":
            return (self.bu, self.P_seen, imp.user_bias_shift, imp.ybar, self.P,
                    self.user_hyper)
        return self.bi, self.Q_seen, imp.item_bias_shift, imp.zbar, self.Q, self.item_hyper

    def _standardized(self, u, i):
        """The current sample's predictions in standardized units (without the mean)."""
        out = np.empty(len(u))
        _predict.predict(np.ascontiguousarray(u, np.int32), np.ascontiguousarray(i, np.int32),
                             self.P_seen, self.Q_seen, self.bu, self.bi, 0.0, -np.inf, np.inf,
                             out, self.n_threads)
        return out

    def _hyper_in_rating_units(self, hyper=None):
        """The user groups' (or ``hyper``'s) (mean, precision): a bias is ``scale`` times its
        standardized value, a factor ``sqrt(scale)`` times."""
        hyper = self.user_hyper if hyper is None else hyper
        unit = self._column_units()
        return np.stack([hyper[0] * unit, hyper[1] / (unit * unit)])

    def _column_units(self):
        """Rating units per standardized unit of a (bias, factors) row of k + 1 columns."""
        unit = np.full(self.user_hyper.shape[1], self.root)
        unit[0] = self.scale
        return unit

    def _kept_features(self, dtype):
        """What a kept sample holds of the side features, in rating units: each side's
        theta (as ``dtype``) and, with item features, the item groups' hyperparameters."""
        out = {f"{side}_theta": (layout["theta"] * self._column_units()).astype(dtype)
               for side, layout in self.features.items()}
        if "item" in self.features:
            out["item_hyper"] = self._hyper_in_rating_units(self.item_hyper)
        return out

    def step(self, sweep):
        pr = self.params
        alpha, sse = _bayes.gibbs_sweep(
            self.user_ptr, self.user_items, self.user_pos, self.item_ptr, self.item_users,
            self.item_pos, self.residual, self.user_residual, self.P, self.Q, self.bu, self.bi,
            self.user_hyper, self.item_hyper,
            self.seed, sweep - 1, self.n_threads, pr["alpha_0"], pr["beta_0"], 0.0, 1.0,
            pr["alpha_lambda"], pr["beta_lambda"], self.implicit,
            0.0 if self.latent is None else 1.0)
        if self.features:
            _features.feature_sweep(self.feature_sides, self.seed, sweep - 1, self.n_threads,
                                    0.0, 1.0, pr["alpha_lambda"], pr["beta_lambda"])
        if self.time is not None:
            self.time.sweep(self.residual, alpha, self.seed, sweep - 1, pr["alpha_lambda"],
                            pr["beta_lambda"])
        if self.latent is not None:  # (cut points, latent ratings) given the new f
            sse = self.latent.sweep(self.residual, self.seed, sweep - 1)
        return self._record(sweep, alpha, sse)

    def _record(self, sweep, alpha, sse):
        """After a sweep (in standardized units): the current sample into the model's arrays
        and, past burn-in, into the kept samples, in rating units; the history's fields."""
        m, scale, root = self.model, self.scale, self.root
        # the current sample (callbacks, finiteness check), rows in parallel
        units = (1.0, 1.0) if self.units is None else (self.units["user_factors_"],
                                                       self.units["user_bias_"])
        self.sample_finite = _bayes.rating_units(
            self.P_seen, self.Q_seen, self.bu, self.bi, *m._parameters(), *units,
            self.n_threads)
        alpha = float(alpha) / (scale * scale)
        if self.summary is not None:
            self.keeping = sweep > self.burn_in
            if self.keeping:
                self.summary.add(
                    {"user": np.column_stack([self.bu * scale, m.user_factors_]),
                     "item": np.column_stack([self.bi * scale, m.item_factors_])}, 1.0 / alpha,
                    {"user": self._hyper_in_rating_units(),
                     "item": self._hyper_in_rating_units(self.item_hyper)})
            return {"sse": sse * scale * scale, "alpha": alpha}
        self.keeping = sweep > self.burn_in and (sweep - self.burn_in) % self.thin == 0
        if self.keeping:
            y = None if self.implicit is None else self.implicit.y
            self.kept.append((m.user_factors_.copy(), m.item_factors_.copy(),
                              self.bu * scale, self.bi * scale, alpha,
                              self._hyper_in_rating_units(),
                              None if y is None else (y * root).astype(m.user_factors_.dtype),
                              self._kept_features(m.user_factors_.dtype),
                              None if self.time is None else self.time.kept(scale),
                              None if self.latent is None else self.latent.cut.copy()))
        return {"sse": sse * scale * scale, "alpha": alpha}

    def validation_rmse(self, val):
        """RMSE of the running posterior mean (the current sample during burn-in), clipped."""
        u, i, r = val
        if self.latent is not None:
            f = self._standardized(u, i)
            if self.time is not None and getattr(val, "times", None) is not None:
                f += self.time.current(u, i, val.times)
            pred = expected_ratings(f, self.latent.cut, self.latent.values, self.n_threads)
        else:
            pred = self.model.global_mean_ + self.scale * self._standardized(u, i)
            if self.time is not None and getattr(val, "times", None) is not None:
                pred += self.scale * self.time.current(u, i, val.times)
        rmse, self.val_sum = posterior_rmse(pred, r, self.model.rating_range_, self.n_kept(),
                                            self.keeping, self.val_sum)
        return rmse

    def finite(self, sse):
        """The SSE and the model's arrays, which ``_record`` checked as it wrote them."""
        return bool(np.isfinite(sse)) and self.sample_finite

    def n_kept(self):
        """Sweeps kept so far: samples, or sweeps added to the summary."""
        return len(self.kept) if self.summary is None else self.summary.count

    def penalty(self):
        return 0.0  # a sampler minimizes nothing: train_loss is the mean squared error

    def finalize(self):
        """The fitted arrays become the kept posterior (see the module docstring)."""
        if not self.n_kept():  # a callback stopped the chain during burn-in
            raise ValueError(f"BayesianMF kept no sample: training stopped at sweep "
                             f"{self.model.n_epochs_}, within burn_in={self.burn_in}")
        if self.summary is not None:
            self.model._keep_summary(self.summary)
        else:
            self.model._keep_posterior(self.kept, self.time, self.latent)

    def diverged(self, epoch, info):
        return Message("the Gibbs sampler produced non-finite values at sweep {0}; the "
                       "ratings may be too large for the priors (rescale them or use {1})",
                       epoch, Setting("dtype", "float64"))


class BayesianMF(Estimator):
    """Bayesian biased matrix factorization by Gibbs sampling (as libFM's and myFM's MCMC).

    The model: ``r(u, i) = mu + b_u + b_i + p_u . q_i + eps``, ``eps ~ N(0, 1/alpha)``,
    ``mu`` the mean training rating. Each group of parameters (user biases, item
    biases, each user factor column, each item factor column) is drawn from
    ``N(m_g, 1/lambda_g)`` with a Normal-Gamma hyperprior on (m_g, lambda_g)
    (``lambda_g ~ Gamma(alpha_lambda/2, beta_lambda/2)``, ``m_g ~ N(0, 1/lambda_g)``),
    and ``alpha ~ Gamma(alpha_0/2, beta_0/2)``. Every sweep draws alpha, the
    hyperparameters, then every user's bias and factors given the items (users
    in parallel), then every item's. There is no learning rate and no
    regularisation to tune: the penalties are sampled. The chain runs on
    ratings standardized by their mean and spread (``rating_scale_``), where
    the priors below are defined, so they suit any rating scale; the fitted
    arrays are in rating units.

    Predictions are the posterior predictive mean over the kept samples (the
    sweeps after ``burn_in``, every ``thin``-th), clipped to the training range.
    ``predict(..., return_std=True)`` also gives the predictive standard
    deviation: ``sqrt(var_s[pred_s] + mean_s[1/alpha_s])``, the spread of the
    kept samples' predictions plus the noise; ``mean +- 1.645 std`` is a
    central 90% predictive interval under a normal approximation (unclipped).
    It reads each pair's S x k kept factors once (about 1.5 us a pair at
    S x k = 1500 on one thread, a few times ``predict``; docs/posterior.md).
    An id the model has not seen has no data, so its posterior is the prior of
    its group: its bias and factors are predicted by the prior's mean and add
    the prior's spread (estimated per sample from that sample's rows), so its
    interval is as wide as the model's ignorance (``benchmarks/coverage.py``:
    89.9% for unseen users and 87.5% for unseen items on ML-100K u1).
    ``fold_in`` draws the new user's row in each kept sample from its
    conditional posterior, so a user folded in from 3 ratings gets a wider
    interval than one with 200::

        bmf = mfcore.BayesianMF(seed=0).fit(train)              # a DataFrame of ratings
        mean, std = bmf.predict(test, return_std=True)           # two Series on test's index
        covered = ((test["rating"] - mean).abs() <= 1.645 * std).mean()   # about 0.9

    Parameters
    ----------
    k : int, default 10
        Number of latent factors.
    n_samples : int, default 150
        Sweeps after burn-in; their samples (every ``thin``-th) make the posterior.
    burn_in : int, default 50
        Sweeps run first and discarded.
    thin : int or None, default None
        Keep every ``thin``-th sample after burn-in. None: 1, or the smallest
        step that keeps at most ``MAX_KEPT_COLUMNS // k`` samples (the fitted
        factors hold ``kept x k`` columns) and at most what ``posterior_mb``
        holds. A ``thin`` whose samples exceed ``posterior_mb`` is refused.
    posterior_mb : float, default 1000.0
        Bound on the kept samples, in MB (1e6 bytes): a sample holds each row's
        bias and k factors (and with the SVD++ term each item's y), ``(users +
        items) x (k + 1)`` values of ``dtype``. When fewer than
        ``MIN_KEPT_SAMPLES`` (20, or n_samples) fit, the model keeps the
        summary posterior instead (and 0 asks for it): each row's posterior
        mean as its factors and biases, and each coordinate's posterior std
        (``user_posterior_std_``, ``item_posterior_std_``: (rows, k + 1),
        float16), accumulated over every sweep after burn-in, so its file is
        about 1.5 times a point estimate's whatever ``n_samples`` is.
        Prediction is then ``mu + b_u + b_i + p_u . q_i`` of the means, and
        ``return_std`` treats the coordinates as independent:
        ``var(b_u) + var(b_i) + sum_f (m_p^2 v_q + m_q^2 v_p + v_p v_q)`` plus
        the mean noise variance. The summary serves the Gaussian likelihood,
        with or without implicit terms; an ordered probit, side features or
        times with too small a budget are refused; ``fold_in`` gives a new user
        its Gaussian posterior given the items' means (docs/posterior.md). At
        k = 10 and float32, 1000 MB hold the 150 samples of 150,000 rows
        (ML-10M: 80,000), 20 of 1.1 million.
    init_std : float, default 0.1
        Standard deviation of the initial factors (myFM's; docs/tuning.md).
    alpha_0, beta_0 : float, default 1.0
        Gamma prior of the noise precision (shape/2, rate/2; vague).
    alpha_lambda, beta_lambda : float, default 1.0
        Gamma prior of each group's precision (vague).
    implicit : bool or {"user", "item", "both"}, default False
        Implicit feedback: which items a user rated says something beyond the
        ratings. "user" adds Koren's SVD++ term to the user's vector,
        ``p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j``; "item" the mirror term
        ("flipped", Rendle et al. 2019) to the item's, ``q_i + |N(i)|^-1/2
        sum_{v in N(i)} z_v``; True or "both" adds both. y and z are drawn in
        the same sweeps under their own Normal-Gamma group per column (see
        docs/design.md). N(u) and N(i) are the pairs of the training ratings
        (after any validation split) plus those given as ``fit(...,
        implicit=(users, items))``. Training pairs only is the stricter
        protocol: which test pairs exist is itself information about their
        ratings (a user rates what it chose to see), so using them as implicit
        data scores a model on knowledge it would not have when recommending.
        It gains about 0.02 RMSE on MovieLens for about twice the CPU a sweep
        (docs/tuning.md).
    time_terms, time_bins :
        The time terms ``fit(..., times=...)`` switches on (``mfcore.timeterms``).
    likelihood : {"gaussian", "ordered_probit"}, default "gaussian"
        "gaussian": the model above. "ordered_probit": for ratings on a small
        ordered scale (2 to 20 distinct whole or half stars, the classes
        ``classes_``), the rating is the class a latent rating fell in,

            z = b_u + b_i + p_u . q_i (+ implicit, feature, time terms) + eps,
            eps ~ N(0, 1),   class c  <=>  cut_{c-1} < z <= cut_c,

        so ``P(c) = Phi(cut_c - f) - Phi(cut_{c-1} - f)`` with the cut points
        learnt (Albert and Chib 1993's data augmentation, as myFM's ordered
        probit; ``mfcore.ordinal``): each sweep draws the parameters given the
        latent ratings (the sweep above with the noise precision fixed at 1),
        the cut points by a Metropolis-Hastings step, and the latent ratings
        from their truncated normals. ``predict`` gives the expected rating
        ``sum_c classes_[c] P(c)``, ``predict_proba`` the class probabilities,
        ``return_std`` the spread over the classes. Not with ``fold_in`` or
        ``mfcore.dask`` (``supports``): refit instead.
    validation_fraction, verbose, dtype, duplicates, seed, n_threads :
        As for ``mfcore.SGD``. Validation data are scored each sweep (the
        running posterior mean) but never stop the chain.

    Reproducibility: the sampler's random numbers are a function of (seed,
    sweep, stream, row, coordinate), so 1, 2 or 8 threads give bit-identical
    models. ``partial_fit`` and ``warm_start`` are not offered: the sampler's
    state is not kept in the fitted model.

    Fitted attributes of a posterior kept as samples (a summary's: under
    ``posterior_mb``): those of ``mfcore.fitted.FactorModel`` (factors of
    ``n_kept_ * k`` columns, see the module docstring), plus
    ``user_bias_samples_`` (n_users, S), ``item_bias_samples_`` (n_items, S),
    ``alpha_samples_`` (S,), ``user_hyper_samples_`` (S, 2, k + 1): the kept
    samples' biases, noise precisions and user-side (mean, precision) pairs;
    ``item_implicit_samples_`` (n_items, S, k) with the SVD++ term (else None):
    each kept sample's implicit item vectors y (for fold-in); and ``n_kept_``.
    With ``likelihood="ordered_probit"`` also ``classes_`` (C,): the rating values,
    ascending, and ``cutpoint_samples_`` (S, C - 1): each kept sample's cut points
    (else None); the factors and biases are then on the latent scale (without the
    global mean: ``recommend`` ranks by the latent posterior mean), ``alpha_samples_``
    are 1, and the history's train_rmse is that of the current sample's expected
    ratings.
    With implicit terms the factors are the effective vectors (p_u + ybar_u,
    q_i + zbar_i). Each ``history_`` entry holds epoch (the sweep), alpha,
    train_rmse (the current sample), val_rmse (the running posterior mean),
    seconds and updates_per_sec.

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> bmf = mfcore.BayesianMF(k=4, burn_in=5, n_samples=10, seed=0)
    >>> bmf = bmf.fit(ratings.user, ratings.item, ratings.rating)
    >>> mean, std = bmf.predict([1, 2], [3, 4], return_std=True)
    >>> bool((std > 0).all())
    True

    Stars as ordered classes:

    >>> import numpy as np
    >>> stars = np.clip(np.round(ratings.rating), 1, 5)
    >>> probit = mfcore.BayesianMF(k=4, burn_in=5, n_samples=10, likelihood="ordered_probit")
    >>> probit = probit.fit(ratings.user, ratings.item, stars)
    >>> probit.classes_.tolist()
    [1.0, 2.0, 3.0, 4.0, 5.0]
    >>> proba = probit.predict_proba([1, 2], [3, 4])        # (2, 5), rows sum to 1
    >>> bool(np.allclose(probit.predict([1, 2], [3, 4]), proba @ probit.classes_))
    True
    """

    def __init__(self, k=10, n_samples=150, burn_in=50, thin=None, init_std=0.1, alpha_0=1.0,
                 beta_0=1.0, alpha_lambda=1.0, beta_lambda=1.0, implicit=False,
                 time_terms="user_day", time_bins=30, likelihood="gaussian",
                 posterior_mb=1000.0, validation_fraction=None, verbose=False,
                 dtype="float32", duplicates="mean", seed=0, n_threads=None):
        self._store(locals())

    PARAMS = {
        "n_samples": p.Interval(int, 1),
        "burn_in": p.Interval(int, 0),
        "thin": p.Optional(p.Interval(int, 1)),
        "alpha_0": p.Interval(float, 0.0, closed="neither"),
        "beta_0": p.Interval(float, 0.0, closed="neither"),
        "alpha_lambda": p.Interval(float, 0.0, closed="neither"),
        "beta_lambda": p.Interval(float, 0.0, closed="neither"),
        "implicit": ImplicitSides(),
        "time_terms": TimeTerms(),
        "time_bins": p.Interval(int, 1, 100_000),
        "likelihood": p.Options("gaussian", "ordered_probit"),
        "posterior_mb": p.Interval(float, 0.0),
        **COMMON_PARAMS,
    }
    name = "bayes"
    epochs_param = "n_samples"
    epoch_word = "sweeps"
    capabilities = frozenset({"fold_in", "dask", "implicit_data", "features", "times"})
    default_grid = {"k": [10, 32, 64]}
    fold_in_shrinkage = 0.0
    unknown_fallback = ("predicted from the prior of their group (its mean bias and factors; "
                        "return_std adds its spread)")

    @classmethod
    def max_epochs(cls, params):
        """Burn-in and the sweeps kept after it."""
        return params["burn_in"] + params["n_samples"]

    def supports(self, capability):
        """Whether this estimator, with its hyperparameters, has ``capability``: ``"dask"``
        only without implicit terms, and ``"dask"`` and ``"fold_in"`` only with the
        Gaussian likelihood (the ordered probit's latent ratings and cut points are
        sampled here only: a Dask shard and fold-in's row draw have neither)."""
        params = self._checked_params()
        if capability == "dask" and params["implicit"]:
            return False
        if capability in ("dask", "fold_in") and params["likelihood"] != "gaussian":
            return False
        return super().supports(capability)

    @staticmethod
    def _thin(params, n_users=0, n_items=0):
        """Every how many sweeps after burn-in a sample is kept, for a model of ``n_users``
        and ``n_items`` rows: the kept samples fit ``posterior_mb`` and hold at most
        ``MAX_KEPT_COLUMNS`` factor columns. None: fewer than ``MIN_KEPT_SAMPLES`` (or
        n_samples) fit, so the posterior is kept as a summary; an explicit ``thin``
        whose samples do not fit raises ValueError."""
        n, size = params["n_samples"], sample_bytes(
            params, n_users, n_items, np.dtype(params["dtype"]).itemsize)
        fit = int(params["posterior_mb"] * 1e6 // size) if size else n
        if params["thin"] is not None:
            thin = min(params["thin"], n)
            if n // thin > fit:
                raise ValueError(
                    f"thin={params['thin']} keeps {n // thin} samples of {size / 1e6:,.1f} MB "
                    f"({n // thin * size / 1e6:,.1f} MB), over posterior_mb="
                    f"{params['posterior_mb']:g}: raise thin or posterior_mb, or set "
                    "thin=None (thinned to fit, or a summary posterior)")
            return thin
        if fit < min(n, MIN_KEPT_SAMPLES):
            return None
        most = max(1, min(MAX_KEPT_COLUMNS // params["k"], fit))
        return max(1, -(-n // most))

    def fit(self, users, items=None, ratings=None, validation=None, callback=None,
            implicit=None, *, columns=None, user_features=None, item_features=None,
            times=None):
        """Train on (user, item, rating) triples; return ``self`` (see ``Estimator.fit``).

        ``user_features``, ``item_features``: side features (``mfcore.features``), a
        pandas DataFrame indexed by raw id or a ``(matrix, ids)`` pair. Each feature gets
        a linear weight and a factor vector added to the bias and factors of the rows
        that have it (see the class docstring); ids without a row have no features.
        Their encoding is kept (``user_feature_encoding_``, ``item_feature_encoding_``)
        and saved, for ``predict(..., user_features=...)`` of ids unseen in training.

        ``implicit=(users, items)``: further implicit pairs without ratings (items
        users are known to have rated or viewed, ratings unknown), added to N(u) and
        N(i) beside the training ratings; needs the ``implicit`` parameter on. Pairs
        of ids the training ratings lack are ignored with an ``UnknownIdWarning``
        (they have no row to join).

        ``times``: each rating's time (Unix seconds, or datetimes) switches on the
        ``time_terms`` (``mfcore.timeterms``: a user's bias on the day, an item's in
        its time bin, the day's); ``predict(..., times=...)`` then uses them. A
        ``validation`` table's timestamp column (or a fourth array) gives its times.
        """
        if implicit is not None and not self._checked_params()["implicit"]:
            raise ValueError("fit(implicit=...) needs implicit terms: set implicit=True "
                             f"(or 'user', 'item', 'both'), got implicit={self.implicit!r}")
        inputs = {} if implicit is None else {"implicit": self._raw_pairs(implicit)}
        if times is not None:
            inputs["times"] = as_seconds(times, None)
        inputs.update(feature_inputs(user_features, item_features))
        return self._fit(users, items, ratings, validation, callback, columns, inputs)

    def _feature_layouts(self, inputs):
        """The training rows' feature values per side (``feature_layout``) from the tables
        given to ``fit`` (``inputs``); records their encodings (None for a side without)."""
        layouts = {}
        for side, triplets in self._encode_features(inputs).items():
            encoding = getattr(self, f"{side}_feature_encoding_")
            layouts[side] = feature_layout(*triplets, encoding.n_features, encoding.group_ptr)
            _features.check_features(layouts[side]["ptr"], layouts[side]["rows"],
                                     layouts[side]["x"], layouts[side]["group_ptr"],
                                     len(getattr(self, f"{side}_map_")))
        return layouts

    @staticmethod
    def _raw_pairs(pairs):
        """Checked raw (users, items) id arrays of ``fit(implicit=...)``."""
        if not isinstance(pairs, (tuple, list)) or len(pairs) != 2:
            raise ValueError("implicit must be a (users, items) pair of id sequences, got "
                             f"{type(pairs).__name__}"
                             + (f" of {len(pairs)}" if isinstance(pairs, (tuple, list)) else ""))
        users = normalize_ids(to_numpy(pairs[0]), "implicit users")
        items = normalize_ids(to_numpy(pairs[1]), "implicit items")
        check_lengths(**{"implicit users": users, "implicit items": items})
        return users, items

    def _implicit_pairs(self, data, extra):
        """(user rows, item rows) of N(u) and N(i): the training ratings' pairs, plus the
        ``extra`` pairs given to ``fit`` (raw ids, or None) whose ids the model knows."""
        u, i = data.u, data.i
        if extra is not None:
            eu = self.user_map_.lookup(extra[0], "implicit users")
            ei = self.item_map_.lookup(extra[1], "implicit items")
            known = (eu >= 0) & (ei >= 0)
            if not known.all():
                first = np.flatnonzero(~known)[0]
                warn(f"fit: ignored {int((~known).sum())} implicit pair(s) of ids without "
                     f"training ratings (e.g. user {plain(extra[0][first])!r}, item "
                     f"{plain(extra[1][first])!r}): they have no row", UnknownIdWarning)
            u, i = np.concatenate([u, eu[known]]), np.concatenate([i, ei[known]])
        return u, i

    def _trainer(self, data, params, layouts, inputs):
        return GibbsSweeps(self, data, params, resolve_n_threads(params["n_threads"]),
                       inputs.get("implicit"), self._feature_layouts(inputs))

    def _keep_posterior(self, kept, time=None, latent=None):
        """The fitted arrays from the kept samples (see the module docstring); ``time``: the
        chain's time terms (``TimeSampler``) or None; ``latent``: the ordered probit's
        state (``ordinal.LatentRatings``) or None."""
        P, Q, bu, bi, alpha, hyper, y, features, time_kept, cut = zip(*kept)
        self._keep_time_terms(time, time_kept)
        self.classes_ = None if latent is None else latent.values.copy()
        self.cutpoint_samples_ = None if latent is None else np.stack(cut)
        self.item_implicit_samples_ = None if y[0] is None else np.stack(y, axis=1)
        for side in ("user", "item"):
            name = f"{side}_theta"
            setattr(self, f"{side}_feature_samples_",
                    np.stack([f[name] for f in features], axis=1) if name in features[0]
                    else None)
        self.item_hyper_samples_ = (np.stack([f["item_hyper"] for f in features])
                                    if "item_hyper" in features[0] else None)
        scale = 1.0 / np.sqrt(len(kept))
        dtype = P[0].dtype
        self.user_factors_ = np.ascontiguousarray(np.hstack(P) * dtype.type(scale))
        self.item_factors_ = np.ascontiguousarray(np.hstack(Q) * dtype.type(scale))
        bu, bi = np.stack(bu, axis=1), np.stack(bi, axis=1)
        self.user_bias_samples_, self.item_bias_samples_ = bu.astype(dtype), bi.astype(dtype)
        self.user_bias_ = bu.mean(axis=1).astype(dtype)
        self.item_bias_ = bi.mean(axis=1).astype(dtype)
        self.alpha_samples_ = np.array(alpha)
        self.user_hyper_samples_ = np.stack(hyper)
        self.n_kept_ = len(kept)
        self.user_posterior_std_ = self.item_posterior_std_ = None
        self.user_prior_ = self.item_prior_ = self.noise_variance_ = None

    def _keep_summary(self, sums):
        """The fitted arrays from the summary posterior (``PosteriorSums``): the factors and
        biases are the posterior means, ``{side}_posterior_std_`` each row's posterior std
        of (bias, factors) as float16 (relative precision 5e-4, ample for an interval),
        ``{side}_prior_`` the (mean, variance) of a row without ratings,
        ``noise_variance_`` the posterior mean of 1/alpha; no samples are kept
        (``n_kept_`` 0)."""
        dtype = self.user_factors_.dtype
        for side in ("user", "item"):
            mean, var, prior = sums.moments(side)
            if not var.max(initial=0.0) < float(np.finfo(np.float16).max) ** 2:
                raise ValueError(f"the {side}s' posterior std reaches "
                                 f"{np.sqrt(var.max()):.3g}, beyond float16's range: the "
                                 "summary posterior cannot keep it (raise posterior_mb)")
            setattr(self, f"{side}_bias_", mean[:, 0].astype(dtype))
            setattr(self, f"{side}_factors_", np.ascontiguousarray(mean[:, 1:], dtype))
            setattr(self, f"{side}_posterior_std_", np.sqrt(var).astype(np.float16))
            setattr(self, f"{side}_prior_", prior)
        self.noise_variance_ = np.array([sums.noise / sums.count])
        self.user_bias_samples_ = self.item_bias_samples_ = None
        self.alpha_samples_ = self.user_hyper_samples_ = self.item_implicit_samples_ = None
        self.user_feature_samples_ = self.item_feature_samples_ = None
        self.item_hyper_samples_ = self.classes_ = self.cutpoint_samples_ = None
        self._keep_time_terms(None, None)
        self.n_kept_ = 0

    def _summarized(self):
        """Whether the fitted posterior is a summary (``_keep_summary``), not samples."""
        return getattr(self, "user_posterior_std_", None) is not None

    def _keep_time_terms(self, sampler, kept):
        """The time terms' posterior (``kept``: each kept sample's (weights, precisions)), or
        None for a fit without times."""
        self.time_encoding_ = None if sampler is None else sampler.encoding
        self.time_keys_ = self.time_term_ptr_ = None
        self.time_samples_ = self.time_precision_samples_ = None
        if sampler is not None:
            self.time_keys_, self.time_term_ptr_ = sampler.layout()
            weights, precisions = zip(*kept)
            self.time_samples_ = np.stack(weights, axis=1).astype(self.user_factors_.dtype)
            self.time_precision_samples_ = np.stack(precisions, axis=1)

    def _time_part(self, u, i, seconds, moments=False):
        """The pairs' time terms: their posterior means, or with ``moments`` the per-sample
        (means, variances) (``mfcore.timeterms``); None without ``seconds``, an error when
        the model has no time terms."""
        if seconds is None:
            return None
        if getattr(self, "time_encoding_", None) is None:
            raise no_time_terms()
        layout = (self.time_encoding_, self.time_keys_, self.time_term_ptr_)
        if moments:
            return time_moments(*layout, self.time_samples_.astype(np.float64),
                                self.time_precision_samples_, u, i, seconds)
        return time_means(*layout, self.time_samples_.mean(axis=1, dtype=np.float64), u, i,
                          seconds)

    # --- prediction with uncertainty ----------------------------------------------

    @reads_state
    def predict(self, users, items=None, clip=True, unknown="fallback", return_std=False, *,
                columns=None, user_features=None, item_features=None, times=None):
        """Posterior predictive means (see ``FactorModel.predict``); with ``return_std``
        also the predictive standard deviations (float64; a pandas DataFrame in gives two
        Series, "prediction" and "std").

        ``user_features``/``item_features`` (tables as for ``fit``, with the columns the
        model was fitted with): ids unseen in training that have a row there are
        predicted from their features (cold start): each kept sample's prior mean of
        the row, its group mean plus its feature terms; the std then adds the prior
        spread of the row's own parameters, so it is wider than for a known id. Known
        ids keep what they learnt in training (their rows there are not read again).

        ``times`` (one per pair; a model fitted with ``fit(times=...)``): add the time
        terms of each pair's groups, a group unseen in training its prior (mean 0,
        the std wider). Without ``times`` the time terms are left out.

        With ``likelihood="ordered_probit"`` the prediction is the expected rating
        ``sum_c classes_[c] P(c)`` (``predict_proba``; ``clip`` changes nothing, it lies
        within the scale) and the std the spread of that distribution over the classes.
        """
        if (not return_std and user_features is None and item_features is None
                and times is None):
            return super().predict(users, items, clip=clip, unknown=unknown, columns=columns)
        u, i, known, cold, seconds, index, single = self._pairs(
            users, items, unknown, columns, user_features, item_features, times, "predict")
        if self._ordinal():
            mean, std = class_moments(self._class_proba(u, i, cold, seconds), self.classes_)
        else:
            mean = self._predict_rows(u, i, clip, cold, seconds)
            std = self._predictive_std(u, i, cold, seconds) if return_std else None
        if unknown == "nan":
            mean[~known] = np.nan
            if return_std:
                std[~known] = np.nan
        if single:
            return (mean[0], std[0]) if return_std else mean[0]
        mean = labelled(mean, index, "prediction")
        return (mean, labelled(std, index, "std")) if return_std else mean

    @reads_state
    def predict_proba(self, users, items=None, unknown="fallback", *, columns=None,
                      user_features=None, item_features=None, times=None):
        """Each class's probability for the (user, item) pairs, a model fitted with
        ``likelihood="ordered_probit"``: an array (n, C) whose columns are the classes
        ``classes_`` (the rating values, ascending) and whose rows sum to 1; one pair gives
        one row (C,), a pandas table a DataFrame on its index with the classes as columns.

        The probabilities are the posterior predictive ones, the mean over the kept
        samples of ``Phi(cut_c - f) - Phi(cut_{c-1} - f)`` (``mfcore.ordinal``); an
        unknown id (the fallback) or one predicted from its features (``user_features``
        ...) or an unseen time group adds its prior's spread to the latent noise, so its
        distribution is wider. The arguments are ``predict``'s; ``unknown="nan"`` gives
        NaN rows for pairs with an unknown id.

        >>> import numpy as np, mfcore
        >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
        >>> bmf = mfcore.BayesianMF(k=4, burn_in=5, n_samples=10, likelihood="ordered_probit")
        >>> bmf = bmf.fit(ratings.user, ratings.item, np.clip(np.round(ratings.rating), 1, 5))
        >>> proba = bmf.predict_proba(1, 3)                  # user 1, item 3: one row
        >>> proba.shape, round(float(proba.sum()), 9)
        ((5,), 1.0)
        """
        self._check_fitted()
        if not self._ordinal():
            raise ValueError("predict_proba needs a model fitted with likelihood="
                             "'ordered_probit' (this one is Gaussian: its predict gives the "
                             "mean and return_std the spread)")
        u, i, known, cold, seconds, index, single = self._pairs(
            users, items, unknown, columns, user_features, item_features, times,
            "predict_proba")
        proba = self._class_proba(u, i, cold, seconds)
        if unknown == "nan":
            proba[~known] = np.nan
        if single:
            return proba[0]
        if index is None:
            return proba
        import pandas as pd
        return pd.DataFrame(proba, index=index, columns=self.classes_)

    def _pairs(self, users, items, unknown, columns, user_features, item_features, times,
               what):
        """The checked pairs of ``predict``/``predict_proba``: (user rows, item rows, known
        (an id of the model or one predicted from its feature row), cold (``_cold_side``
        per side), seconds or None, the input table's index, single)."""
        self._check_fitted()
        users, items, _, index = rating_arrays(users, items, columns=columns,
                                               need_ratings=False, what=what)
        users, items, single = pair_arguments(users, items)
        u, i, known, cold = self._cold_pairs(users, items, unknown, user_features,
                                             item_features)
        seconds = None if times is None else as_seconds(times, len(u))
        return u, i, known, cold, seconds, index, single

    def _ordinal(self):
        """Whether the fitted model is an ordered probit (its ``classes_`` are kept)."""
        return getattr(self, "classes_", None) is not None

    def _cold_parameters(self, cold):
        """(bias, factors) of the rows of ``cold`` (``_cold_side``) in the layout of the kept
        factors: the posterior mean of their prior rows (``recommend``'s cold users)."""
        rows = cold["rows"]
        return (rows[..., 0].mean(axis=1),
                rows[..., 1:].reshape(len(rows), -1) / np.sqrt(self.n_kept_))

    def _cold_side(self, side, raw, table, known_too=False):
        """The kept samples' prior rows of the ids of ``raw`` unknown to the model that
        ``table`` has a row for: dict(ids, index (per position of ``raw``: row among
        them, -1 for others), rows (n, S, k + 1): bias and factors, prec (S, k + 1)); or
        None without a table. ``known_too``: every id of ``raw`` (fold-in)."""
        if table is None:
            return None
        ids, index, (rows, feats, vals) = self._feature_rows(side, raw, table, known_too)
        theta = getattr(self, f"{side}_feature_samples_").astype(np.float64)  # (F, S, k + 1)
        hyper = (self.user_hyper_samples_ if side == "user" else self.item_hyper_samples_)
        out = np.zeros((len(ids),) + theta.shape[1:])
        np.add.at(out, rows, vals[:, None, None] * theta[feats])
        out += hyper[:, 0]
        return {"ids": ids, "index": index, "rows": out, "prec": hyper[:, 1]}

    def _prior_moments(self, kind):
        """The prior of a ``kind`` ("user" or "item") row without ratings, per kept sample:
        the posterior of a row with no data *is* the prior N(m_g, 1/lambda_g) of its group,
        estimated by the mean and variance of that sample's rows (what the sampled
        hyperparameters are drawn from). Returns the bias' (mean, var) of shape (S,) and
        the factors' (mean, var) of shape (S, k), in rating units."""
        S, k = self.n_kept_, self.k
        bias = getattr(self, f"{kind}_bias_samples_")                            # (n, S)
        factors = getattr(self, f"{kind}_factors_")                              # (n, S k)
        mean, var = (factors.mean(axis=0, dtype=np.float64), factors.var(axis=0, dtype=np.float64))
        return (bias.mean(axis=0, dtype=np.float64), bias.var(axis=0, dtype=np.float64),
                mean.reshape(S, k) * np.sqrt(S), var.reshape(S, k) * S)

    def _sample_moments(self, u, i, priors, cold=None):
        """(per-sample predictive means, per-sample variances from unknown rows), both
        (len(u), S), without the global mean: known rows contribute their kept samples,
        an unknown row (-1) its prior (``_prior_moments``: mean and spread), or, with a
        feature row (``cold``: per side ``_cold_side``'s, its index for these pairs),
        its group's prior shifted by its feature terms (mean) and spread (1/lambda)."""
        S, k = self.n_kept_, self.k
        (ub, ubv, uf, ufv), (ib, ibv, iff, ifv) = priors
        ku, ki = u >= 0, i >= 0
        pu = np.broadcast_to(uf, (len(u), S, k)).copy()
        qi = np.broadcast_to(iff, (len(u), S, k)).copy()
        pu[ku] = self.user_factors_[u[ku]].reshape(-1, S, k) * np.sqrt(S)
        qi[ki] = self.item_factors_[i[ki]].reshape(-1, S, k) * np.sqrt(S)
        bu = np.where(ku[:, None], self.user_bias_samples_[np.maximum(u, 0)], ub)
        bi = np.where(ki[:, None], self.item_bias_samples_[np.maximum(i, 0)], ib)
        # Var(p.q) of independent rows: sum_f (vp q^2 + vq p^2 + vp vq), vp = 0 when known
        vp = np.where(ku[:, None, None], 0.0, ufv)
        vq = np.where(ki[:, None, None], 0.0, ifv)
        vbu = np.where(ku, 0.0, 1.0)[:, None] * ubv
        vbi = np.where(ki, 0.0, 1.0)[:, None] * ibv
        for side, b, f, vb, vf in (("user", bu, pu, vbu, vp), ("item", bi, qi, vbi, vq)):
            c = None if cold is None else cold[side]
            if c is not None and (c["index"] >= 0).any():
                at = c["index"] >= 0
                rows = c["rows"][c["index"][at]]                                # (m, S, k + 1)
                b[at], f[at] = rows[..., 0], rows[..., 1:]
                vb[at], vf[at] = 1.0 / c["prec"][:, 0], 1.0 / c["prec"][:, 1:]
        mean = np.einsum("nsk,nsk->ns", pu, qi)
        mean += bu
        mean += bi
        var = np.einsum("nsk->ns", vp * qi * qi + vq * pu * pu + vp * vq)
        var += vbu + vbi
        return mean, var

    @staticmethod
    def _cold_part(cold, rows):
        """``cold`` (per side ``_cold_side``'s or None) for the pairs ``rows`` only."""
        if cold is None:
            return None
        return {side: None if c is None else dict(c, index=c["index"][rows])
                for side, c in cold.items()}

    def _predict_rows(self, u, i, clip, cold=None, seconds=None):
        """Posterior predictive means; a pair with an id unknown to the model gets the
        prior's mean for that row (``_prior_moments``, or its features' with ``cold``),
        not zero; with ``seconds``, plus the pairs' time terms. An ordered probit's are
        its expected ratings (``_class_proba``)."""
        if self._ordinal():
            proba = self._class_proba(u, i, cold, seconds)
            return class_moments(proba, self.classes_)[0].astype(self.user_factors_.dtype)
        out = super()._predict_rows(u, i, False)
        unknown = np.flatnonzero((u < 0) | (i < 0))
        if len(unknown) and self._summarized():
            mean_u, _ = self._summary_rows("user", u[unknown])
            mean_i, _ = self._summary_rows("item", i[unknown])
            out[unknown] = self.global_mean_ + mean_u[:, 0] + mean_i[:, 0] + np.einsum(
                "nk,nk->n", mean_u[:, 1:], mean_i[:, 1:])
        elif len(unknown):
            priors = (self._prior_moments("user"), self._prior_moments("item"))
            for start in range(0, len(unknown), STD_CHUNK):
                rows = unknown[start:start + STD_CHUNK]
                mean, _ = self._sample_moments(u[rows], i[rows], priors,
                                               self._cold_part(cold, rows))
                out[rows] = self.global_mean_ + mean.mean(axis=1)
        time = self._time_part(u, i, seconds)
        if time is not None:
            out += time
        return np.clip(out, *self.rating_range_, out=out) if clip else out

    def _predictive_std(self, u, i, cold=None, seconds=None):
        """sqrt(variance over the kept samples of their predictions + their mean variance
        from unknown rows' priors (and unseen time groups') + the mean noise variance).
        Pairs of known ids (without ``seconds``) take the kernel
        (``_kernels.predict.sample_variance``: one pass over the two rows' samples, no
        temporaries); the others the per-sample moments (``_moment_chunks``). A summary
        posterior has its own rule (``_summary_variance``)."""
        if self._summarized():
            return np.sqrt(self._summary_variance(u, i) + self.noise_variance_[0])
        out = np.empty(len(u))
        known = (u >= 0) & (i >= 0) if seconds is None else np.zeros(len(u), bool)
        if known.any():
            rows = np.flatnonzero(known)
            part = np.empty(len(rows))
            _predict.sample_variance(
                np.ascontiguousarray(u[rows], np.int32), np.ascontiguousarray(i[rows], np.int32),
                self.user_factors_, self.item_factors_, self.user_bias_samples_,
                self.item_bias_samples_, part, self._threads())
            out[rows] = part
        rest = np.flatnonzero(~known)
        for part, mean, var in () if not len(rest) else self._moment_chunks(u[rest], i[rest],
                                                   self._cold_part(cold, rest),
                                                   None if seconds is None else seconds[rest]):
            out[rest[part]] = np.var(mean, axis=1) + np.mean(var, axis=1)
        return np.sqrt(out + np.mean(1.0 / self.alpha_samples_))

    def _summary_rows(self, side, rows):
        """A summary posterior's (means, variances) (n, k + 1) of the (bias, factors) of a
        side's ``rows`` (-1: unknown, its prior's), float64."""
        prior = getattr(self, f"{side}_prior_")
        known = rows >= 0
        at = np.where(known, rows, 0)
        mean = np.column_stack([getattr(self, f"{side}_bias_")[at],
                                getattr(self, f"{side}_factors_")[at]]).astype(np.float64)
        var = np.square(getattr(self, f"{side}_posterior_std_")[at], dtype=np.float64)
        mean[~known], var[~known] = prior[0], prior[1]
        return mean, var

    def _summary_variance(self, u, i):
        """The variance of b_u + b_i + p_u . q_i under a summary posterior, every coordinate
        independent: var(b_u) + var(b_i) + sum_f (m_p^2 v_q + m_q^2 v_p + v_p v_q), in
        chunks of ``STD_CHUNK`` pairs (numpy, fixed order: any thread count)."""
        out = np.empty(len(u))
        for start in range(0, len(u), STD_CHUNK):
            part = slice(start, start + STD_CHUNK)
            (mp, vp), (mq, vq) = self._summary_rows("user", u[part]), self._summary_rows(
                "item", i[part])
            out[part] = vp[:, 0] + vq[:, 0] + np.einsum(
                "nk,nk->n", mp[:, 1:] ** 2 + vp[:, 1:], vq[:, 1:]) + np.einsum(
                "nk,nk->n", mq[:, 1:] ** 2, vp[:, 1:])
        return out

    def _moment_chunks(self, u, i, cold, seconds):
        """(positions, per-sample means, per-sample variances from unknown rows' priors)
        of the pairs' predictions without the global mean (``_sample_moments`` plus the
        time terms' moments), each (m, S), in chunks of ``STD_CHUNK`` pairs."""
        priors = (self._prior_moments("user"), self._prior_moments("item"))
        for start in range(0, len(u), STD_CHUNK):
            part = slice(start, start + STD_CHUNK)
            mean, var = self._sample_moments(u[part], i[part], priors,
                                             self._cold_part(cold, np.arange(len(u))[part]))
            time = self._time_part(u[part], i[part], None if seconds is None else
                                   seconds[part], moments=True)
            if time is not None:
                mean += time[0]
                var += time[1]
            yield part, mean, var

    def _class_proba(self, u, i, cold=None, seconds=None):
        """An ordered probit's class probabilities (n, C) of the pairs: per kept sample the
        latent rating is N(mean, 1 + variance) (``_moment_chunks``), cut by that sample's
        cut points; averaged over the samples (``_kernels.bayes.class_probabilities``)."""
        out = np.empty((len(u), len(self.classes_)))
        for part, mean, var in self._moment_chunks(u, i, cold, seconds):
            _bayes.class_probabilities(np.ascontiguousarray(mean), np.ascontiguousarray(var),
                                       self.cutpoint_samples_, out[part], self._threads())
        return out

    def fold_in(self, users, items=None, ratings=None, shrinkage=None, *, columns=None,
                user_features=None):
        """Add users from their ratings (see ``FactorModel.fold_in`` and ``_fold_in_rows``:
        each kept sample's row drawn from its conditional posterior). Not for an ordered
        probit: a new user's row there would need its latent ratings and row drawn in turn,
        a chain of its own per kept sample, which is not built; refit instead. A summary
        posterior gives each new user its Gaussian conditional posterior given the items'
        means (``_fold_in_summary``)."""
        if self._is_fitted() and self._ordinal():
            raise NotImplementedError(
                "fold_in is not implemented for likelihood='ordered_probit' (a new user's "
                "row would need a Gibbs chain over its latent ratings per kept sample): refit "
                "with the new users' ratings, or use likelihood='gaussian'")
        if self._is_fitted() and self._summarized() and "user" in self._checked_params()[
                "implicit"]:
            raise NotImplementedError(
                "fold_in is not implemented for a summary posterior with the SVD++ term "
                "(the items' implicit vectors y are not kept): refit with the new users' "
                "ratings, or with a posterior_mb that keeps samples")
        return super().fold_in(users, items, ratings, shrinkage, columns=columns,
                               user_features=user_features)

    # --- fold-in --------------------------------------------------------------------

    def _fold_in_prior(self, ids, user_features):
        """Per user of ``ids`` and kept sample the shift of its (bias, factors) prior mean
        by its features (n, S, k + 1); zero for a user without a feature row."""
        cold = self._cold_side("user", ids, user_features, known_too=True)
        out = np.zeros((len(ids), self.n_kept_, self.k + 1))
        has = cold["index"] >= 0
        out[has] = cold["rows"][cold["index"][has]] - self.user_hyper_samples_[:, 0]
        return out

    def _fold_in_rows(self, indptr, items, ratings, shrinkage, prior=None):
        """Each new user's row drawn, for each kept sample, from its conditional posterior
        given that sample's items, noise precision and user hyperparameters, as a sweep
        would draw it: so the spread over samples, hence ``return_std``, is as wide as
        the user's few ratings leave it (a conditional mean would be as sure as a known
        user's). The draws are keyed on the items the user rated: the same answer
        every time. ``shrinkage`` adds that many ratings' worth of prior precision;
        ``prior`` (n, S, k + 1) shifts each user's prior mean (its side features,
        ``_fold_in_prior``). With the SVD++ term the user's N(u) is the items it
        rated here: its stored vector is p + |N(u)|^-1/2 sum of their y (each sample's).
        The flipped term is not updated: the new user joins no item's N(i), whose
        effective vectors stay those of training."""
        if self._summarized():
            return self._fold_in_summary(indptr, items, ratings, shrinkage)
        S, k, dtype = self.n_kept_, self.k, self.user_factors_.dtype
        n = len(indptr) - 1
        factors, bias = np.empty((n, S * k), dtype), np.empty(n, dtype)
        bias_samples = np.empty((n, S), dtype)
        Q = self.item_factors_.reshape(len(self.item_factors_), S, k).astype(np.float64)
        Q *= np.sqrt(S)
        alpha = self.alpha_samples_
        mean_g, prec_g = self.user_hyper_samples_[:, 0], self.user_hyper_samples_[:, 1]
        Y = self.item_implicit_samples_
        for row in range(n):
            cols = items[indptr[row]:indptr[row + 1]]
            y = (ratings[indptr[row]:indptr[row + 1]].astype(np.float64) - self.global_mean_
                 - self.item_bias_samples_[cols].T.astype(np.float64))          # (S, m)
            ybar = np.zeros((S, k))
            if Y is not None:  # SVD++: the user's N(u) is the items it rated here
                ybar = Y[cols].sum(axis=0, dtype=np.float64) / np.sqrt(len(cols))
                y -= np.einsum("msk,sk->sm", Q[cols], ybar)
            A = np.concatenate([np.ones((S, len(cols), 1)), Q[cols].transpose(1, 0, 2)], axis=2)
            precision = prec_g * (1.0 + shrinkage)                              # (S, k + 1)
            lhs = alpha[:, None, None] * np.einsum("smi,smj->sij", A, A)
            lhs[:, np.arange(k + 1), np.arange(k + 1)] += precision
            mean = mean_g if prior is None else mean_g + prior[row]
            rhs = alpha[:, None] * np.einsum("smi,sm->si", A, y) + precision * mean
            x = np.linalg.solve(lhs, rhs[..., None])[..., 0]                     # (S, k + 1)
            # + L^-T z, z ~ N(0, I), has covariance lhs^-1 (L L^T = lhs)
            rng = np.random.default_rng(zlib.crc32(cols.tobytes()))  # (not on the ratings:
            # z is unit-free, so the draw rescales with them, as the fit does)
            chol = np.linalg.cholesky(lhs)
            z = rng.standard_normal((S, k + 1, 1))
            x += np.linalg.solve(np.swapaxes(chol, 1, 2), z)[..., 0]
            bias_samples[row] = x[:, 0]
            bias[row] = x[:, 0].mean()
            factors[row] = ((x[:, 1:] + ybar) / np.sqrt(S)).ravel()
        return factors, bias, {"user_bias_samples_": bias_samples}

    def _fold_in_summary(self, indptr, items, ratings, shrinkage):
        """A summary posterior's fold-in: each new user's (bias, factors) posterior given
        its ratings, the items' posterior means and the mean noise variance, under the
        prior of a row without ratings (``user_prior_``; ``shrinkage`` adds that many
        ratings' worth of its precision): Gaussian, ``N(x, H^-1)`` with ``H = A'A / noise
        + diag(precision)``; the row keeps x and the std sqrt(diag(H^-1)). The items'
        own uncertainty is not in H (their std enters ``return_std`` as for any pair)."""
        k, dtype, n = self.k, self.user_factors_.dtype, len(indptr) - 1
        out = np.empty((n, k + 1))
        std = np.empty((n, k + 1), np.float16)
        precision = (1.0 + shrinkage) / self.user_prior_[1]
        Q = np.column_stack([np.ones(len(self.item_factors_)), self.item_factors_])
        for row in range(n):
            cols = items[indptr[row]:indptr[row + 1]]
            A = Q[cols]
            y = (ratings[indptr[row]:indptr[row + 1]].astype(np.float64) - self.global_mean_
                 - self.item_bias_[cols])
            lhs = np.einsum("mi,mj->ij", A, A) / self.noise_variance_[0] + np.diag(precision)
            inverse = np.linalg.inv(lhs)
            out[row] = inverse @ (np.einsum("mi,m->i", A, y) / self.noise_variance_[0]
                                  + precision * self.user_prior_[0])
            std[row] = np.sqrt(np.diag(inverse))
        return (np.ascontiguousarray(out[:, 1:], dtype), out[:, 0].astype(dtype),
                {"user_posterior_std_": std})

    # --- persistence ----------------------------------------------------------------

    #: The kept samples' arrays beyond the factor model's ("samples": how many were kept).
    #: A summary posterior (``_keep_summary``) holds the last five instead of the first four.
    STATE = Estimator.STATE + (
        StateArray("user_bias_samples", ("users", "samples"), "param", optional=True),
        StateArray("item_bias_samples", ("items", "samples"), "param", optional=True),
        StateArray("alpha_samples", ("samples",), "float64", optional=True),
        StateArray("user_hyper_samples", ("samples", 2, "k+1"), "float64", optional=True),
        StateArray("item_implicit_samples", ("items", "samples", "k"), "param", optional=True),
        # side features (mfcore.features): each feature's (weight, vector) per kept sample,
        # and the item groups' hyperparameters (cold items' prior); the encodings are text
        StateArray("user_feature_samples", (None, "samples", "k+1"), "param", optional=True),
        StateArray("item_feature_samples", (None, "samples", "k+1"), "param", optional=True),
        StateArray("item_hyper_samples", ("samples", 2, "k+1"), "float64", optional=True),
        # time terms (mfcore.timeterms): each group's key and weight per kept sample, where
        # each term's groups start, each term's prior precision per sample; the encoding text
        StateArray("time_keys", (None,), "int64", optional=True),
        StateArray("time_term_ptr", (None,), "int64", optional=True),
        StateArray("time_samples", (None, "samples"), "param", optional=True),
        StateArray("time_precision_samples", (None, "samples"), "float64", optional=True),
        # the ordered probit (mfcore.ordinal): the class values, each kept sample's cut points
        StateArray("classes", (None,), "float64", optional=True),
        StateArray("cutpoint_samples", ("samples", None), "float64", optional=True),
        # the summary posterior: each row's posterior std of (bias, factors), a row without
        # ratings' (mean, variance), the mean noise variance
        StateArray("user_posterior_std", ("users", "k+1"), "float16", optional=True),
        StateArray("item_posterior_std", ("items", "k+1"), "float16", optional=True),
        StateArray("user_prior", (2, "k+1"), "float64", optional=True),
        StateArray("item_prior", (2, "k+1"), "float64", optional=True),
        StateArray("noise_variance", (1,), "float64", optional=True),
    )
    SAMPLES = ("user_bias_samples", "item_bias_samples", "alpha_samples", "user_hyper_samples")
    SUMMARY = ("user_posterior_std", "item_posterior_std", "user_prior", "item_prior",
               "noise_variance")
    STATE_EXTRA = FEATURE_STATE + ("time_encoding",)

    def _fitted_state(self):
        state = super()._fitted_state()
        if state is not None and getattr(self, "time_encoding_", None) is not None:
            state.update(self.time_encoding_.to_state())
        return state

    def _state_sizes(self, state, columns):
        """The factor arrays hold ``samples * k`` columns (a summary's: k)."""
        alpha = state.get("alpha_samples")
        samples = len(alpha) if alpha is not None and alpha.ndim == 1 else 0
        factors = columns if state.get("user_posterior_std") is not None else samples * columns
        return dict(super()._state_sizes(state, factors), samples=samples, k=columns,
                    **{"k+1": columns + 1})

    def _check_state(self, state, sizes, dtype):
        """What the kept samples must satisfy beyond their shapes: the SVD++ term's vectors
        exactly when ``implicit`` has it, positive noise and prior precisions, and biases
        that keep predictions and the predictive std finite; or the summary posterior
        (``_check_summary_state``)."""
        if self._check_summary_state(state, sizes):
            return
        implicit = self._checked_params()["implicit"]
        with_y = "user" in implicit
        if with_y and state.get("item_implicit_samples") is None:
            raise ValueError("item_implicit_samples is missing")
        if not with_y and state.get("item_implicit_samples") is not None:
            raise ValueError(f"item_implicit_samples given but implicit={implicit!r} has no "
                             "user-side (SVD++) term")
        if sizes["samples"] == 0 or (state["alpha_samples"] <= 0).any():
            raise ValueError("alpha_samples must hold at least one positive noise precision")
        with np.errstate(divide="ignore", over="ignore"):
            noise = np.mean(1.0 / state["alpha_samples"])
        if not np.isfinite(noise):
            raise ValueError("alpha_samples holds noise precisions so small that the predictive "
                             "std overflows")
        if (state["user_hyper_samples"][:, 1] <= 0).any():
            raise ValueError("user_hyper_samples holds a prior precision <= 0 (fold_in's "
                             "system would be singular)")
        limit = float(np.finfo(dtype).max) / 4
        for name in ("user_bias_samples", "item_bias_samples"):
            if state[name].size and not np.abs(state[name]).max() < limit:
                raise ValueError(f"{name} reach {np.abs(state[name]).max():.3g}: predictions "
                                 f"would overflow {dtype} (at most {limit:.3g})")
        self._check_feature_state(state)
        self._check_time_state(state)
        self._check_ordinal_state(state, self._checked_params()["likelihood"])

    def _check_summary_state(self, state, sizes):
        """Whether ``state`` is a summary posterior: its arrays all present, and none of the
        samples' (nor of features, time terms, an ordered probit); stds >= 0, prior
        variances and the noise variance > 0, and a predictive variance that stays finite.
        False for a state of samples; ValueError for a mix."""
        summary = [name for name in self.SUMMARY if state.get(name) is not None]
        if not summary:
            return False
        others = [field.name for field in self.STATE[len(Estimator.STATE):]
                  if field.name not in self.SUMMARY and state.get(field.name) is not None]
        if len(summary) < len(self.SUMMARY) or others:
            missing = sorted(set(self.SUMMARY) - set(summary))
            raise ValueError(f"a summary posterior holds {', '.join(self.SUMMARY)} and no "
                             f"samples (missing: {missing}, present: {others})")
        extra = [name for name in self.STATE_EXTRA if state.get(name) is not None]
        if extra:
            raise ValueError(f"a summary posterior has no {extra[0]} (no features or time terms)")
        variances = []
        for side in ("user", "item"):
            std, prior = state[f"{side}_posterior_std"], state[f"{side}_prior"]
            if std.size and std.min() < 0:
                raise ValueError(f"{side}_posterior_std holds negative values")
            if not (prior[1] > 0).all():
                raise ValueError(f"{side}_prior holds a variance <= 0")
            largest = max(np.abs(state[f"{side}_factors"]).max(initial=0.0),
                          np.abs(prior[0, 1:]).max())
            spread = max(std.max(initial=0).astype(np.float64), np.sqrt(prior[1].max()))
            variances.append((np.float64(largest), spread))
        (mu, su), (mi, si) = variances
        with np.errstate(over="ignore", invalid="ignore"):
            bound = state["noise_variance"][0] + sizes["k"] * (
                (mu * si) ** 2 + (mi * su) ** 2 + (su * si) ** 2) + su ** 2 + si ** 2
        if not state["noise_variance"][0] > 0 or not np.isfinite(bound):
            raise ValueError("noise_variance must be > 0, and the predictive variance finite")
        return True

    @staticmethod
    def _check_ordinal_state(state, likelihood):
        """The ordered probit's classes and cut points, exactly with that likelihood: 2 to
        ``MAX_CLASSES`` classes increasing strictly, C - 1 cut points per kept sample
        increasing strictly (finite: ``StateArray``)."""
        classes, cut = state.get("classes"), state.get("cutpoint_samples")
        ordinal = likelihood == "ordered_probit"
        if (classes is None) != (cut is None) or (classes is not None) != ordinal:
            raise ValueError(f"classes and cutpoint_samples come together, exactly with "
                             f"likelihood='ordered_probit' (likelihood={likelihood!r})")
        if not ordinal:
            return
        if not 2 <= len(classes) <= MAX_CLASSES or (np.diff(classes) <= 0).any():
            raise ValueError(f"classes must be 2 to {MAX_CLASSES} increasing values, got "
                             f"{classes.tolist()[:MAX_CLASSES + 1]}")
        if cut.shape[1] != len(classes) - 1:
            raise ValueError(f"cutpoint_samples has {cut.shape[1]} cut points per sample for "
                             f"{len(classes)} classes (needs {len(classes) - 1})")
        if (np.diff(cut, axis=1) <= 0).any():
            bad = int(np.flatnonzero((np.diff(cut, axis=1) <= 0).any(axis=1))[0])
            raise ValueError(f"cutpoint_samples of kept sample {bad} do not increase "
                             f"strictly: {cut[bad].tolist()}")

    @staticmethod
    def _check_time_state(state):
        """Time terms: the encoding and the four arrays together, a term's keys strictly
        increasing, a weight row per key, positive precisions per term."""
        names = ("time_encoding", "time_keys", "time_term_ptr", "time_samples",
                 "time_precision_samples")
        present = [state.get(name) is not None for name in names]
        if not any(present):
            return
        if not all(present):
            raise ValueError(f"{', '.join(names)} come together")
        terms = TimeEncoding.from_state(state).terms
        keys, ptr = state["time_keys"], state["time_term_ptr"]
        if (len(ptr) != len(terms) + 1 or ptr[0] != 0 or ptr[-1] != len(keys)
                or (np.diff(ptr) < 0).any()):
            raise ValueError(f"time_term_ptr {ptr.tolist()[:8]} does not split the "
                             f"{len(keys)} time_keys into {len(terms)} terms")
        if any((np.diff(keys[a:b]) <= 0).any() for a, b in zip(ptr[:-1], ptr[1:])):
            raise ValueError("time_keys must increase strictly within each term")
        if len(state["time_samples"]) != len(keys):
            raise ValueError(f"time_samples has {len(state['time_samples'])} rows for "
                             f"{len(keys)} time_keys")
        precisions = state["time_precision_samples"]
        if len(precisions) != len(terms) or not (precisions > 0).all():
            raise ValueError("time_precision_samples needs a positive row per time term")

    @staticmethod
    def _check_feature_state(state):
        """Side features: each side's encoding and samples together, a sample row per
        feature; item features with the item groups' hyperparameters."""
        check_feature_state(state, "{side}_feature_samples")
        if (state.get("item_feature_samples") is None) != (state.get("item_hyper_samples")
                                                           is None):
            raise ValueError("item_feature_samples and item_hyper_samples come together")
        if state.get("item_hyper_samples") is not None and \
                (state["item_hyper_samples"][:, 1] <= 0).any():
            raise ValueError("item_hyper_samples holds a prior precision <= 0")

    def _restore_fitted_state(self, state):
        super()._restore_fitted_state(state)
        self.time_encoding_ = (TimeEncoding.from_state(state)
                               if state.get("time_encoding") is not None else None)
        self.n_kept_ = 0 if self.alpha_samples_ is None else len(self.alpha_samples_)
        return self
