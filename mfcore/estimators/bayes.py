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
"""
import zlib

import numpy as np

from .. import params as p
from .._kernels import bayes as _bayes
from .._kernels import predict as _predict
from .._threads import resolve_n_threads
from ..fitted import StateArray, labelled, pair_arguments, reads_state
from ..data import check_lengths, rating_arrays, to_numpy
from ..errors import Message, Setting, UnknownIdWarning, warn
from ..ids import normalize_ids, plain
from .base import (COMMON_PARAMS, UNIT_NAMES, Estimator, from_standard, standard_units,
                   standardized, to_standard)
from .driver import Trainer

__all__ = ["BayesianMF"]

#: Kept factor columns (samples x k) that ``thin=None`` aims at: ML-1M at 2048 columns is
#: 80 MB of float32 factors; below ~50 samples the posterior mean gets noisier.
MAX_KEPT_COLUMNS = 2048
#: Pairs per chunk of the predictive-std computation (memory: chunk x samples x k).
STD_CHUNK = 4096


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


class _Sweeps(Trainer):
    """The driver's trainer for one BayesianMF fit: the sampler state and the kept samples.
    ``implicit``: further implicit pairs (raw ids) of ``fit(implicit=...)``, or None."""

    def __init__(self, model, data, params, n_threads, implicit=None):
        super().__init__(model)
        self.params, self.n_threads = params, n_threads
        n_users, n_items = len(model.user_factors_), len(model.item_factors_)
        (order, self.user_ptr, self.user_items, self.user_pos, self.item_ptr, self.item_users,
         self.item_pos) = sampler_layout(data.u, data.i, n_users, n_items)
        _bayes.check_layout(self.user_ptr, self.user_items, self.user_pos, self.item_ptr,
                            self.item_users, self.item_pos)
        # the chain runs in standardized units (ratings (r - mu) / scale: the priors are
        # defined there); the model's arrays and the kept samples are in rating units
        self._start_state(model)
        self.seed = int(model.rng_.integers(0, 2**63))
        self.sides = params["implicit"]
        self.implicit = None  # the implicit state (_bayes.ImplicitTerms), if any
        # the factors the ratings see: the effective ones with implicit terms (set below)
        self.P_seen, self.Q_seen = self.P, self.Q
        if self.sides:
            self._start_implicit(params, model.rng_, model._implicit_pairs(data, implicit))
        by_item = order[self.item_pos]
        self.residual = (standardized(data.r[by_item], model.global_mean_, self.scale)
                         - self._standardized(self.item_users, data.i[by_item]))
        self.user_residual = np.empty_like(self.residual)
        self.burn_in, self.thin = params["burn_in"], model._thin(params)
        self.kept = []          # (P, Q, bu, bi, alpha, user_hyper, y) of every kept sweep
        self.val_sum = None     # running sum of the kept samples' validation predictions

    def _start_state(self, model):
        """The chain's parameters in standardized units (float64) from the model's initial
        arrays, and the hyperparameters' storage."""
        self.scale, self.root = model.rating_scale_, np.sqrt(model.rating_scale_)
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

    def _standardized(self, u, i):
        """The current sample's predictions in standardized units (without the mean)."""
        out = np.empty(len(u))
        _predict.predict(np.ascontiguousarray(u, np.int32), np.ascontiguousarray(i, np.int32),
                             self.P_seen, self.Q_seen, self.bu, self.bi, 0.0, -np.inf, np.inf,
                             out, self.n_threads)
        return out

    def _hyper_in_rating_units(self):
        """The user groups' (mean, precision): a bias is ``scale`` times its standardized
        value, a factor ``sqrt(scale)`` times."""
        unit = np.full(self.user_hyper.shape[1], self.root)
        unit[0] = self.scale
        return np.stack([self.user_hyper[0] * unit, self.user_hyper[1] / (unit * unit)])

    def step(self, sweep):
        pr = self.params
        alpha, sse = _bayes.gibbs_sweep(
            self.user_ptr, self.user_items, self.user_pos, self.item_ptr, self.item_users,
            self.item_pos, self.residual, self.user_residual, self.P, self.Q, self.bu, self.bi,
            self.user_hyper, self.item_hyper,
            self.seed, sweep - 1, self.n_threads, pr["alpha_0"], pr["beta_0"], 0.0, 1.0,
            pr["alpha_lambda"], pr["beta_lambda"], self.implicit)
        return self._record(sweep, alpha, sse)

    def _record(self, sweep, alpha, sse):
        """After a sweep (in standardized units): the current sample into the model's arrays
        and, past burn-in, into the kept samples, in rating units; the history's fields."""
        m, scale, root = self.model, self.scale, self.root
        for name, state in zip(UNIT_NAMES, (self.P_seen, self.Q_seen, self.bu, self.bi)):
            # the current sample (callbacks, finiteness check)
            from_standard(state, self.units, name, out=getattr(m, name))
        alpha = float(alpha) / (scale * scale)
        self.keeping = sweep > self.burn_in and (sweep - self.burn_in) % self.thin == 0
        if self.keeping:
            y = None if self.implicit is None else self.implicit.y
            self.kept.append((m.user_factors_.copy(), m.item_factors_.copy(),
                              self.bu * scale, self.bi * scale, alpha,
                              self._hyper_in_rating_units(),
                              None if y is None else (y * root).astype(m.user_factors_.dtype)))
        return {"sse": sse * scale * scale, "alpha": alpha}

    def validation_rmse(self, val):
        """RMSE of the running posterior mean (the current sample during burn-in), clipped."""
        u, i, r = val
        pred = self.model.global_mean_ + self.scale * self._standardized(u, i)
        if self.kept:
            if self.keeping:
                self.val_sum = pred if self.val_sum is None else self.val_sum + pred
            pred = self.val_sum / len(self.kept)
        lo, hi = self.model.rating_range_
        err = np.clip(pred, lo, hi) - r
        return float(np.sqrt(np.mean(err * err)))

    def penalty(self):
        return 0.0  # a sampler minimizes nothing: train_loss is the mean squared error

    def finalize(self):
        """The fitted arrays become the kept posterior (see the module docstring)."""
        if not self.kept:  # a callback stopped the chain during burn-in
            raise ValueError(f"BayesianMF kept no sample: training stopped at sweep "
                             f"{self.model.n_epochs_}, within burn_in={self.burn_in}")
        self.model._keep_posterior(self.kept)

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
        factors hold ``kept x k`` columns).
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
    validation_fraction, verbose, dtype, duplicates, seed, n_threads :
        As for ``mfcore.SGD``. Validation data are scored each sweep (the
        running posterior mean) but never stop the chain.

    Reproducibility: the sampler's random numbers are a function of (seed,
    sweep, stream, row, coordinate), so 1, 2 or 8 threads give bit-identical
    models. ``partial_fit`` and ``warm_start`` are not offered: the sampler's
    state is not kept in the fitted model.

    Fitted attributes: those of ``mfcore.fitted.FactorModel`` (factors of
    ``n_kept_ * k`` columns, see the module docstring), plus
    ``user_bias_samples_`` (n_users, S), ``item_bias_samples_`` (n_items, S),
    ``alpha_samples_`` (S,), ``user_hyper_samples_`` (S, 2, k + 1): the kept
    samples' biases, noise precisions and user-side (mean, precision) pairs;
    ``item_implicit_samples_`` (n_items, S, k) with the SVD++ term (else None):
    each kept sample's implicit item vectors y (for fold-in); and ``n_kept_``.
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
    """

    def __init__(self, k=10, n_samples=150, burn_in=50, thin=None, init_std=0.1, alpha_0=1.0,
                 beta_0=1.0, alpha_lambda=1.0, beta_lambda=1.0, implicit=False,
                 validation_fraction=None, verbose=False, dtype="float32", duplicates="mean",
                 seed=0, n_threads=None):
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
        **COMMON_PARAMS,
    }
    name = "bayes"
    epochs_param = "n_samples"
    epoch_word = "sweeps"
    capabilities = frozenset({"fold_in", "dask", "implicit_data"})
    default_grid = {"k": [10, 32, 64]}
    fold_in_shrinkage = 0.0

    @classmethod
    def max_epochs(cls, params):
        """Burn-in and the sweeps kept after it."""
        return params["burn_in"] + params["n_samples"]

    def supports(self, capability):
        """Whether this estimator, with its hyperparameters, has ``capability``: ``"dask"``
        only without implicit terms."""
        if capability == "dask" and self._checked_params()["implicit"]:
            return False
        return super().supports(capability)

    @staticmethod
    def _thin(params):
        if params["thin"] is not None:
            return min(params["thin"], params["n_samples"])
        most = max(1, MAX_KEPT_COLUMNS // params["k"])
        return max(1, -(-params["n_samples"] // most))

    def fit(self, users, items=None, ratings=None, validation=None, callback=None,
            implicit=None, *, columns=None):
        """Train on (user, item, rating) triples; return ``self`` (see ``Estimator.fit``).

        ``implicit=(users, items)``: further implicit pairs without ratings (items
        users are known to have rated or viewed, ratings unknown), added to N(u) and
        N(i) beside the training ratings; needs the ``implicit`` parameter on. Pairs
        of ids the training ratings lack are ignored with an ``UnknownIdWarning``
        (they have no row to join).
        """
        if implicit is not None and not self._checked_params()["implicit"]:
            raise ValueError("fit(implicit=...) needs implicit terms: set implicit=True "
                             f"(or 'user', 'item', 'both'), got implicit={self.implicit!r}")
        inputs = {} if implicit is None else {"implicit": self._raw_pairs(implicit)}
        return self._fit(users, items, ratings, validation, callback, columns, inputs)

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
        return _Sweeps(self, data, params, resolve_n_threads(params["n_threads"]),
                       inputs.get("implicit"))

    def _keep_posterior(self, kept):
        """The fitted arrays from the kept samples (see the module docstring)."""
        P, Q, bu, bi, alpha, hyper, y = zip(*kept)
        self.item_implicit_samples_ = None if y[0] is None else np.stack(y, axis=1)
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

    # --- prediction with uncertainty ----------------------------------------------

    @reads_state
    def predict(self, users, items=None, clip=True, unknown="fallback", return_std=False, *,
                columns=None):
        """Posterior predictive means (see ``FactorModel.predict``); with ``return_std``
        also the predictive standard deviations (float64; a pandas DataFrame in gives two
        Series, "prediction" and "std")."""
        if not return_std:
            return super().predict(users, items, clip=clip, unknown=unknown, columns=columns)
        self._check_fitted()
        users, items, _, index = rating_arrays(users, items, columns=columns,
                                               need_ratings=False, what="predict")
        users, items, single = pair_arguments(users, items)
        u, i, known = self._indices(users, items, unknown)
        mean, std = self._predict_rows(u, i, clip), self._predictive_std(u, i)
        if unknown == "nan":
            mean[~known] = std[~known] = np.nan
        if single:
            return mean[0], std[0]
        return labelled(mean, index, "prediction"), labelled(std, index, "std")

    def _prior_moments(self, kind):
        """The prior of a ``kind`` ("user" or "item") row without ratings, per kept sample:
        the posterior of a row with no data *is* the prior N(m_g, 1/lambda_g) of its group,
        estimated by the mean and variance of that sample's rows (what the sampled
        hyperparameters are drawn from). Returns the bias' (mean, var) of shape (S,) and
        the factors' (mean, var) of shape (S, k), in rating units."""
        S, k = self.n_kept_, self.k
        bias = getattr(self, f"{kind}_bias_samples_").astype(np.float64)        # (n, S)
        factors = getattr(self, f"{kind}_factors_").reshape(len(bias), S, k)
        factors = factors.astype(np.float64) * np.sqrt(S)                       # (n, S, k)
        return bias.mean(axis=0), bias.var(axis=0), factors.mean(axis=0), factors.var(axis=0)

    def _sample_moments(self, u, i, priors):
        """(per-sample predictive means, per-sample variances from unknown rows), both
        (len(u), S), without the global mean: known rows contribute their kept samples,
        an unknown row (-1) its prior (``_prior_moments``: mean and spread)."""
        S, k = self.n_kept_, self.k
        (ub, ubv, uf, ufv), (ib, ibv, iff, ifv) = priors
        ku, ki = u >= 0, i >= 0
        pu = np.broadcast_to(uf, (len(u), S, k)).copy()
        qi = np.broadcast_to(iff, (len(u), S, k)).copy()
        pu[ku] = self.user_factors_[u[ku]].reshape(-1, S, k) * np.sqrt(S)
        qi[ki] = self.item_factors_[i[ki]].reshape(-1, S, k) * np.sqrt(S)
        mean = np.einsum("nsk,nsk->ns", pu, qi)
        mean += np.where(ku[:, None], self.user_bias_samples_[np.maximum(u, 0)], ub)
        mean += np.where(ki[:, None], self.item_bias_samples_[np.maximum(i, 0)], ib)
        # Var(p.q) of independent rows: sum_f (vp q^2 + vq p^2 + vp vq), vp = 0 when known
        vp = np.where(ku[:, None, None], 0.0, ufv)
        vq = np.where(ki[:, None, None], 0.0, ifv)
        var = np.einsum("nsk->ns", vp * qi * qi + vq * pu * pu + vp * vq)
        var += np.where(ku, 0.0, 1.0)[:, None] * ubv + np.where(ki, 0.0, 1.0)[:, None] * ibv
        return mean, var

    def _predict_rows(self, u, i, clip):
        """Posterior predictive means; a pair with an id unknown to the model gets the
        prior's mean for that row (``_prior_moments``), not zero."""
        out = super()._predict_rows(u, i, clip)
        unknown = np.flatnonzero((u < 0) | (i < 0))
        if len(unknown):
            priors = (self._prior_moments("user"), self._prior_moments("item"))
            for start in range(0, len(unknown), STD_CHUNK):
                rows = unknown[start:start + STD_CHUNK]
                mean, _ = self._sample_moments(u[rows], i[rows], priors)
                pred = self.global_mean_ + mean.mean(axis=1)
                out[rows] = np.clip(pred, *self.rating_range_) if clip else pred
        return out

    def _predictive_std(self, u, i):
        """sqrt(variance over the kept samples of their predictions + their mean variance
        from unknown rows' priors + the mean noise variance)."""
        priors = (self._prior_moments("user"), self._prior_moments("item"))
        out = np.empty(len(u))
        for start in range(0, len(u), STD_CHUNK):
            mean, var = self._sample_moments(u[start:start + STD_CHUNK],
                                             i[start:start + STD_CHUNK], priors)
            out[start:start + STD_CHUNK] = np.var(mean, axis=1) + np.mean(var, axis=1)
        return np.sqrt(out + np.mean(1.0 / self.alpha_samples_))

    # --- fold-in --------------------------------------------------------------------

    def _fold_in_rows(self, indptr, items, ratings, shrinkage):
        """Each new user's row drawn, for each kept sample, from its conditional posterior
        given that sample's items, noise precision and user hyperparameters, as a sweep
        would draw it: so the spread over samples, hence ``return_std``, is as wide as
        the user's few ratings leave it (a conditional mean would be as sure as a known
        user's). The draws are keyed on the items the user rated: the same answer
        every time. ``shrinkage`` adds that many ratings' worth of prior precision. With the SVD++
        term the user's N(u) is the items it
        rated here: its stored vector is p + |N(u)|^-1/2 sum of their y (each sample's).
        The flipped term is not updated: the new user joins no item's N(i), whose
        effective vectors stay those of training."""
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
            prior = prec_g * (1.0 + shrinkage)                                  # (S, k + 1)
            lhs = alpha[:, None, None] * np.einsum("smi,smj->sij", A, A)
            lhs[:, np.arange(k + 1), np.arange(k + 1)] += prior
            rhs = alpha[:, None] * np.einsum("smi,sm->si", A, y) + prior * mean_g
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

    # --- persistence ----------------------------------------------------------------

    #: The kept samples' arrays beyond the factor model's ("samples": how many were kept).
    STATE = Estimator.STATE + (
        StateArray("user_bias_samples", ("users", "samples"), "param"),
        StateArray("item_bias_samples", ("items", "samples"), "param"),
        StateArray("alpha_samples", ("samples",), "float64"),
        StateArray("user_hyper_samples", ("samples", 2, "k+1"), "float64"),
        StateArray("item_implicit_samples", ("items", "samples", "k"), "param", optional=True),
    )

    def _state_sizes(self, state, columns):
        """The factor arrays hold ``samples * k`` columns."""
        alpha = state.get("alpha_samples")
        samples = len(alpha) if alpha is not None and alpha.ndim == 1 else 0
        return dict(super()._state_sizes(state, samples * columns), samples=samples, k=columns,
                    **{"k+1": columns + 1})

    def _check_state(self, state, sizes, dtype):
        """What the kept samples must satisfy beyond their shapes: the SVD++ term's vectors
        exactly when ``implicit`` has it, positive noise and prior precisions, and biases
        that keep predictions and the predictive std finite."""
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

    def _restore_fitted_state(self, state):
        super()._restore_fitted_state(state)
        self.n_kept_ = len(self.alpha_samples_)
        return self
