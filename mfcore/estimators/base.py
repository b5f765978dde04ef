"""What every estimator shares: its declarations, ``fit``/``partial_fit``, the loop.

A solver subclasses ``Estimator``, declares on the class what it is and can do,
and provides how it trains:

* ``__init__`` storing its hyperparameters (scikit-learn style: arguments
  only, no validation) and ``PARAMS``, a table ``name -> check`` (see
  ``mfcore.params``; ``COMMON_PARAMS`` holds the shared ones) applied in ``fit``;
* the declarations (see ``Estimator``): ``name`` (``--algorithm``, model
  files), ``epochs_param``, ``epoch_word``, ``max_epochs(params)``,
  ``capabilities`` (from ``CAPABILITIES``) and ``default_grid``; the CLI,
  search, the Dask layer and the contract suite read them, never the
  signature;
* ``_trainer(data, params, layouts, inputs)``: a ``driver.Trainer`` that runs
  one epoch, possibly reusing a training layout cached in ``layouts`` (a dict
  search keeps per fold); ``inputs`` holds fit-time inputs beyond the ratings
  (``fit(implicit=...)``'s pairs), by name;
* ``_fold_in_penalty(shrinkage)``: fold-in's row objective (with ``"fold_in"``);
* ``_initialize(data, params)`` and ``_grow(params)`` where the defaults
  (factors drawn from N(0, init_std^2), biases 0) do not fit.

Then one line, ``register(TheClass)`` (``mfcore.estimators``), makes it an
``--algorithm``, loadable, and part of everything that lists estimators.

The estimator is its own fitted model (a ``FactorModel``), so ``predict``,
``recommend``, ``save`` ... work on it after ``fit``.
"""
import inspect
import math
import os

import numpy as np

from .. import params as p
from ..data import (DUPLICATE_POLICIES, StreamedRatings, concatenated, is_chunked, merge_seen,
                    prepare, prepare_chunks, rating_arrays, validation_rows,
                    warn_if_implausible)
from ..errors import ImplicitFeedbackWarning, Message, Setting, warn
from ..fitted import PARAMETER_NAMES, FactorModel
from .._threads import available_cpus, resolve_n_threads
from . import driver

__all__ = ["Estimator", "CAPABILITIES", "COMMON_PARAMS", "EARLY_STOPPING_PARAMS", "bias_reg",
           "check_factor_memory", "rating_scale", "standardized", "UNIT_NAMES", "standard_units",
           "to_standard", "from_standard"]

#: What an estimator may declare it can do (``Estimator.capabilities``), and what that means.
CAPABILITIES = {
    "early_stopping": "validation data stop training (n_iter_no_change, tol); a search refits "
                      "the best epoch count",
    "continue": "partial_fit and warm_start continue a fit",
    "fold_in": "fold_in adds users from their ratings without retraining",
    "dask": "mfcore.dask.fit trains it on a cluster",
    "implicit_data": "fit(..., implicit=(users, items)) takes further pairs without ratings",
    "features": "fit takes side features of users and items",
    "times": "fit(..., times=...) takes each rating's time (time terms: mfcore.timeterms)",
    "streaming": "fit lays out a RatingChunks source for training straight from its file, "
                 "without holding the ratings as arrays (others read it whole)",
}

#: The parameters a capability needs (``register`` checks the declarations against them).
_CAPABILITY_PARAMS = {"early_stopping": ("n_iter_no_change", "tol"), "continue": ("warm_start",)}

#: The checks of the parameters every estimator has (the factors, validation, data, threads).
COMMON_PARAMS = {
    "k": p.Interval(int, 1),
    "init_std": p.Interval(float, 0.0),
    "validation_fraction": p.Optional(p.Interval(float, 0, 1, closed="neither")),
    "verbose": p.Boolean(),
    "dtype": p.Options(*p.DTYPES),
    "duplicates": p.Options(*DUPLICATE_POLICIES),
    "seed": p.Seed(),
    "n_threads": p.Threads(),
}

#: ... and those of the estimators that stop early and continue fits (SGD, ALS).
EARLY_STOPPING_PARAMS = {
    "n_iter_no_change": p.Interval(int, 1),
    "tol": p.Interval(float, 0.0),
    "warm_start": p.Boolean(),
}


def _physical_memory():
    """Bytes of RAM of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def bias_reg(params):
    """The biases' penalty of checked ``params``: ``reg_bias``, or ``reg`` when that is None."""
    return params["reg"] if params["reg_bias"] is None else params["reg_bias"]


#: the magnitudes of ratings, and of their spread, that training works with: their squares
#: (losses, variances) stay finite and normal in float64
TRAINABLE = (1e-150, 1e150)


def rating_scale(summary):
    """The unit training works in: the spread (standard deviation) of the ratings of
    ``summary`` (a ``RatingSummary``: exact, so parts of the data give it bit for bit).

    Every estimator trains as if on ``(r - mean) / scale`` with its
    hyperparameters (learning rate, penalties, priors, initial spread) defined
    in those units and maps the parameters back to rating units, so the same
    defaults fit 1-5 stars, 0.5-5, 1-100 points or 0-1 alike (LIBMF's
    standardisation). Ratings with a single value have no spread: they warn
    (implicit feedback, not ratings) and train in their own units (scale 1).
    """
    scale = summary.spread
    largest = max(abs(summary.low), abs(summary.high))
    if largest > TRAINABLE[1] or 0 < scale < TRAINABLE[0]:
        raise ValueError(f"ratings from {summary.low:g} to {summary.high:g} (spread {scale:g}) "
                         f"are beyond what training can square in float64 (magnitudes and "
                         f"spreads from {TRAINABLE[0]:g} to {TRAINABLE[1]:g}): rescale them, "
                         f"e.g. divide them by {2.0 ** round(math.log2(scale or largest)):g}")
    if not scale > 0:
        if summary.n > 1:
            warn(f"all {summary.n:,} training ratings are {summary.low:g}: this looks like "
                 "implicit feedback (which items were chosen, not how they were liked), from "
                 "which a rating model learns only the mean; give explicit ratings, or use an "
                 "implicit-feedback library", ImplicitFeedbackWarning)
        return 1.0
    return scale


def standardized(r, mu, scale, dtype=np.float64):
    """Ratings ``r`` in the units training works in, ``(r - mu) / scale`` (computed in
    float64), as ``dtype``."""
    return ((np.asarray(r, dtype=np.float64) - mu) / scale).astype(dtype, copy=False)


#: The fitted parameter arrays (``FactorModel._parameters``), whose units
#: ``standard_units`` gives.
UNIT_NAMES = PARAMETER_NAMES


def standard_units(scale):
    """Rating units per standardized unit of each parameter array (a factor carries the
    square root of the ratings' spread, a bias all of it); None when the spread is 1."""
    if scale == 1.0:
        return None
    root = np.sqrt(scale)
    return {"user_factors_": root, "item_factors_": root, "user_bias_": scale,
            "item_bias_": scale}


def to_standard(a, units, name, out=None):
    """``a`` (the parameter array ``name``) in standardized units: a copy, or ``a`` itself
    when ``units`` is None; into ``out`` when given."""
    if out is None:
        return a if units is None else a / a.dtype.type(units[name])
    if units is None:
        out[...] = a
    else:
        np.divide(a, a.dtype.type(units[name]), out=out)
    return out


def from_standard(a, units, name, out=None):
    """``a`` back in rating units, into ``out`` when given (nothing to do when both are one
    array and ``units`` is None; no temporary array otherwise)."""
    if units is not None:
        return np.multiply(a, a.dtype.type(units[name]), out=out)
    if out is None or out is a:
        return a
    out[...] = a
    return out


def _warn_if_oversubscribed(n_threads):
    """More threads than CPUs only add overhead (and, on a shared machine, slow the others)."""
    cpus = available_cpus()
    if n_threads is not None and n_threads > cpus:
        warn(Message("{0} is more than the {1} CPU(s) available to this process; the extra "
                     "threads only add overhead (the result is the same)",
                     Setting("n_threads", n_threads), cpus), RuntimeWarning)


def check_factor_memory(n_rows, k):
    """Refuse factors that would take over half of the machine's memory (drawn in float64):
    a slip such as k=10**9 would otherwise swap for minutes instead of failing."""
    need, total = n_rows * k * 8, _physical_memory()
    if total and need > total // 2:
        raise ValueError(Message("{0} needs {1:,.1f} GiB of factors for {2:,} users and "
                                 "items, over half of this machine's {3:,.1f} GiB; choose a "
                                 "smaller k", Setting("k", k), need / 2**30, n_rows,
                                 total / 2**30))


class Estimator(FactorModel):
    """Base of the estimators; see the module docstring for what a solver adds.

    The declarations, read by everything that serves any estimator (the CLI,
    ``Search``, ``mfcore.dask``, the contract suite):

    * ``name``: the stable name of ``--algorithm``, ``ALGORITHMS`` and model
      files (None on a base class, which is never registered);
    * ``epochs_param``: the parameter counting epochs, which a search that
      stopped early refits; ``epoch_word``: what one epoch is called in messages;
    * ``max_epochs(params)``: how many epochs a fit with ``params`` runs at the most;
    * ``capabilities``: what it can do, from ``CAPABILITIES``;
    * ``default_grid``: what ``mfcore tune`` searches when no grid is given;
    * ``predicts_ratings`` and ``default_rank_by`` (``FactorModel``'s): whether
      ``predict`` gives ratings (False: a score, whose fold-in values are not
      checked against the training ratings' range) and what ``recommend`` ranks by;
    * ``unknown_fallback`` (from ``FactorModel``): how ``predict`` fills in an unknown
      id, which its ``UnknownIdWarning`` states.

    Examples
    --------
    >>> import mfcore
    >>> mfcore.BayesianMF.name, mfcore.BayesianMF.epoch_word
    ('bayes', 'sweeps')
    >>> "fold_in" in mfcore.BayesianMF.capabilities
    True
    """

    name = None
    epochs_param = "epochs"
    epoch_word = "epochs"
    capabilities = frozenset()
    default_grid = {}
    PARAMS = {}

    @classmethod
    def max_epochs(cls, params):
        """Epochs (iterations, sweeps) a fit with checked ``params`` runs at the most."""
        return params[cls.epochs_param]

    def supports(self, capability):
        """Whether this estimator, with its hyperparameters, has ``capability`` (see
        ``CAPABILITIES``): what the class declares, narrowed where a hyperparameter rules
        it out (BayesianMF's implicit terms do not run on Dask)."""
        return capability in self.capabilities

    @classmethod
    def _check_declarations(cls):
        """Raise ValueError where the declarations contradict the parameters (``register``)."""
        names = set(cls._param_names())
        problems = [f"parameter {n!r} has no check in PARAMS" for n in sorted(names - set(cls.PARAMS))]
        if cls.epochs_param not in names:
            problems.append(f"epochs_param {cls.epochs_param!r} is not a parameter")
        problems += [f"capability {c!r} is not one of {sorted(CAPABILITIES)}"
                     for c in sorted(set(cls.capabilities) - set(CAPABILITIES))]
        for capability, needed in _CAPABILITY_PARAMS.items():
            if (capability in cls.capabilities) != names.issuperset(needed):
                problems.append(f"capability {capability!r} goes with the parameters {needed}")
        problems += [f"default_grid names {n!r}, which is not a parameter"
                     for n in sorted(set(cls.default_grid) - names)]
        if problems:
            raise ValueError(f"{cls.__qualname__} declares itself wrongly: {'; '.join(problems)}")

    # --- scikit-learn style parameter handling --------------------------------

    @classmethod
    def _param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def _store(self, arguments):
        """``__init__``'s body: keep every hyperparameter of ``arguments`` (its ``locals()``)
        as given, scikit-learn style (no validation here: ``fit`` checks)."""
        for name in self._param_names():
            setattr(self, name, arguments[name])

    def get_params(self, deep=True):
        """Hyperparameters as a dict (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set hyperparameters by name; unknown names raise ``ValueError``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid: {valid}")
            setattr(self, name, value)
        return self

    def _checked_params(self):
        return {name: self.PARAMS[name].check(name, getattr(self, name)) for name in self._param_names()}

    def __repr__(self):
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{n}={v!r}" for n, v in self.get_params().items()
                   if n in defaults and defaults[n] is not v and defaults[n] != v]
        return f"{type(self).__name__}({', '.join(changed)})"

    # --- training ------------------------------------------------------------

    def fit(self, users, items=None, ratings=None, validation=None, callback=None, *,
            columns=None):
        """Train on (user, item, rating) triples; return ``self``.

        ``users`` and ``items`` hold raw ids (integers or strings, see
        ``mfcore.ids``); ``ratings`` numbers. Any sequence, numpy array or pandas
        Series works. Or pass one table of ratings instead of the three: a
        pandas DataFrame (pyarrow Table, polars DataFrame, scipy.sparse matrix)
        whose columns are named ``user``, ``item``, ``rating`` or a usual alias
        (``userId``, ``movieId``...), or named by ``columns=`` (see ``mfcore.data``)::

            model.fit(ratings_df)                                   # read_ratings' names
            model.fit(df, columns={"user": "cust", "item": "sku", "rating": "stars"})

        ``validation=(users, items, ratings)`` or a table (or the ``validation_fraction``
        parameter, which holds out that share of the given ratings) is scored
        after every epoch; training stops after ``n_iter_no_change`` epochs
        without an improvement of more than ``tol``, and the parameters of the
        best validation epoch are kept (``best_epoch_``).
        ``callback(model, epoch, metrics)`` runs after every epoch; returning
        True stops training (``model`` is the model being trained: a working copy,
        whose fitted state replaces this object's when the fit succeeds).

        With ``warm_start=True`` a fitted model continues from its current
        parameters for more epochs (like ``partial_fit``). If training
        diverges a ``TrainingDivergedError`` is raised and the model keeps the
        state it had before this call.
        """
        return self._fit(users, items, ratings, validation, callback, columns, {})

    def _fit(self, users, items, ratings, validation, callback, columns, inputs):
        """``fit`` with fit-time ``inputs`` beyond the ratings, by name (see ``_trainer``)."""
        if is_chunked(users):
            params = self._checked_params()
            data = self._prepare_chunks(users, items, ratings, columns, params, inputs)
        else:
            users, items, ratings, _ = rating_arrays(users, items, ratings, columns)
            params = self._checked_params()
            if "continue" in self.capabilities and params["warm_start"] and self._is_fitted():
                return self.partial_fit(users, items, ratings, self.max_epochs(params),
                                        validation=validation, callback=callback)
            data = self._prepare(users, items, ratings, params, times=inputs.get("times"))
        warn_if_implausible(data)
        streamed = isinstance(data, StreamedRatings)
        with driver.atomic(self) as work:
            work._start(data, params, seen=not streamed)
            work._train(data, params, self.max_epochs(params), validation, callback,
                        inputs=inputs)
            if streamed:  # once the layout is gone: a streamed fit holds one or the other
                (work.seen_indptr_, work.seen_items_), _ = data.build_seen()
        return self

    def partial_fit(self, users, items=None, ratings=None, epochs=1, validation=None,
                    callback=None, *, columns=None):
        """Train ``epochs`` more epochs on these ratings, keeping what was learnt so far.

        The data are three arrays or a table, as for ``fit``. New users and items are appended to the id maps
        with fresh parameters;
        the global mean stays that of the first fit. The random stream
        continues where the previous call left it, so two ``partial_fit`` calls
        of one epoch equal one ``fit`` of two epochs on the same data and seed.
        ``validation_fraction`` is not applied here (a fresh split each call
        would train on earlier validation ratings): pass ``validation=`` to
        score and early-stop these epochs. Only estimators with the
        ``"continue"`` capability have it.
        """
        if "continue" not in self.capabilities:
            raise NotImplementedError(
                f"{type(self).__name__} cannot continue a fit (its training state is not kept "
                f"in the fitted model): refit with more {self.epochs_param}")
        users, items, ratings, _ = rating_arrays(users, items, ratings, columns, what="partial_fit")
        params = dict(self._checked_params(), validation_fraction=None)
        epochs = p.Interval(int, 0).check("epochs", epochs)
        if not self._is_fitted():
            data = self._prepare(users, items, ratings, params)
            with driver.atomic(self) as work:
                work._start(data, params)
                work._train(data, params, epochs, validation, callback)
            return self
        with driver.atomic(self) as work:
            factors = work.user_factors_
            if np.dtype(p.DTYPES[params["dtype"]]) != factors.dtype:
                raise ValueError(f"dtype={params['dtype']!r} differs from the fitted model's "
                                 f"{factors.dtype}; refit from scratch instead")
            if params["k"] != factors.shape[1]:
                raise ValueError(f"k={params['k']} differs from the fitted model's "
                                 f"{factors.shape[1]}; refit from scratch instead")
            data = work._prepare(users, items, ratings, params, extend=True)
            work._grow(params)
            work._record_seen(data)
            work._train(data, params, epochs, validation, callback)
        return self

    def _fit_prepared(self, data, val, layouts):
        """Fit on prepared ``Ratings``, early-stopping on prepared validation rows (search:
        ``layouts`` caches training layouts across trials of one fold; no seen items)."""
        params = self._checked_params()
        with driver.atomic(self) as work:
            work._start(data, params, seen=False)
            work._train(data, params, self.max_epochs(params), None, None, val=val,
                        layouts=layouts)
        return self

    def _prepare_chunks(self, source, items, ratings, columns, params, inputs):
        """Training data from a source of rating chunks (``io.RatingChunks``): streamed
        (``data.prepare_chunks``) with the ``"streaming"`` capability, else read whole."""
        if items is not None or ratings is not None or columns is not None:
            raise TypeError("fit: give a RatingChunks source alone (its file holds the users, "
                            "items and ratings), not with items, ratings or columns")
        if "times" in inputs:
            raise NotImplementedError("fit(times=...) needs the ratings in memory: pass "
                                      "read_ratings(path) and its timestamps instead of "
                                      "RatingChunks")
        if params.get("warm_start") and self._is_fitted():
            raise NotImplementedError("warm_start does not continue from a RatingChunks "
                                      "source: pass read_ratings(path), or set warm_start=False")
        dtype = p.DTYPES[params["dtype"]]
        if "streaming" not in self.capabilities:
            return self._prepare(*concatenated(source, dtype), params)
        return prepare_chunks(source, dtype, params["duplicates"],
                              resolve_n_threads(params["n_threads"]))

    def _prepare(self, users, items, ratings, params, extend=False, times=None):
        """Validated ``Ratings``; with ``extend`` the fitted id maps grow with the new ids;
        ``times``: checked seconds (``timeterms.as_seconds``) kept as ``Ratings.t``."""
        maps = (self.user_map_, self.item_map_) if extend else (None, None)
        return prepare(users, items, ratings, p.DTYPES[params["dtype"]], params["duplicates"], *maps,
                       times=times)

    def _start(self, data, params, seen=True):
        """A fresh fit: the generator, the id maps, the estimator's initial parameters and,
        with ``seen``, the seen-items CSR of the data."""
        self._start_summary(data.summary(), params)
        if seen:
            self.seen_indptr_, self.seen_items_ = data.seen_csr()
        else:
            self.seen_indptr_ = self.seen_items_ = None

    def _start_summary(self, summary, params):
        """A fresh fit from a ``RatingSummary`` (all ``mfcore.dask`` has of the whole data):
        the generator, the id maps, the mean and spread (``rating_scale``), the initial
        parameters, the range and fresh bookkeeping."""
        self.rng_ = np.random.default_rng(params["seed"])
        self.user_map_, self.item_map_ = summary.user_map, summary.item_map
        check_factor_memory(len(summary.user_map) + len(summary.item_map), params["k"])
        self.global_mean_ = summary.mean
        self.rating_scale_ = rating_scale(summary)
        self._initialize(summary, params)
        self.rating_range_ = (summary.low, summary.high)
        self.history_ = []
        self.best_epoch_ = None
        self.n_epochs_ = 0
        self.n_ratings_ = 0
        self.item_counts_ = np.zeros(len(summary.item_map), dtype=np.int64)

    def _adopt_seen(self, per_user, items, item_counts):
        """The seen-items CSR and ``item_counts_`` of data this process never held whole
        (``mfcore.dask``: the shards' counts of seen items per user row, ``per_user``, and
        those items' rows, in user-row order)."""
        self.seen_indptr_ = np.zeros(len(per_user) + 1, dtype=np.int64)
        np.cumsum(per_user, out=self.seen_indptr_[1:])
        self.seen_items_ = np.asarray(items, dtype=np.int32)
        self.item_counts_ = np.asarray(item_counts, dtype=np.int64)

    def _record_seen(self, data):
        """Add the training pairs to the seen-items CSR (a model loaded from a file without
        one keeps none: a partial set would be wrong)."""
        if self.seen_indptr_ is not None:
            self.seen_indptr_, self.seen_items_ = merge_seen(
                self.seen_indptr_, self.seen_items_, data.u, data.i,
                len(self.user_map_), len(self.item_map_))

    def _count_items(self, data):
        """Add the ratings trained on to ``item_counts_`` (a model loaded from a file without
        counts keeps none, as with the seen items)."""
        if self.item_counts_ is not None:
            counts = np.zeros(len(self.item_map_), dtype=np.int64)
            got = data.row_counts()[1]
            counts[:len(got)] = got
            counts[:len(self.item_counts_)] += self.item_counts_
            self.item_counts_ = counts

    def _train(self, data, params, n_epochs, validation, callback, val=None, layouts=None,
               inputs=None):
        """Validation rows, the trainer, the bookkeeping, then the shared loop; returns the
        trainer."""
        _warn_if_oversubscribed(params["n_threads"])
        if val is None:
            data, val = validation_rows(data, validation, params["validation_fraction"], self.rng_)
        trainer = self._trainer(data, params, {} if layouts is None else layouts,
                                inputs or {})
        low, high = data.bounds()
        self.rating_range_ = (min(self.rating_range_[0], low), max(self.rating_range_[1], high))
        self._count_items(data)
        return self._run(trainer, len(data), params, n_epochs, val, callback)

    def _run(self, trainer, n_ratings, params, n_epochs, val, callback):
        """The shared loop over ``trainer`` (local or ``mfcore.dask``'s); returns the trainer.
        Only estimators with ``"early_stopping"`` stop on validation data."""
        self.n_ratings_ += int(n_ratings)
        stops = "early_stopping" in self.capabilities
        driver.run(self, trainer, n_ratings, n_epochs, val, callback, params["verbose"],
                   params["tol"] if stops else 0.0, params["n_iter_no_change"] if stops else None)
        return trainer

    # --- persistence ----------------------------------------------------------------

    def _restore_fitted_state(self, state):
        """Check a fitted state read from a file against the hyperparameters and attach it."""
        params = self._checked_params()
        return self._attach_state(state, self._state_sizes(state, params["k"]),
                                  p.DTYPES[params["dtype"]])

    # --- what a solver provides -------------------------------------------------------

    def _factor_std(self, params):
        """The initial factors' spread in rating units: ``init_std`` is in standardized units
        (see ``rating_scale``), and a factor carries the square root of the scale."""
        return params["init_std"] * np.sqrt(self.rating_scale_)

    def _initialize(self, data, params):
        """Fresh parameters: factors N(0, init_std^2) in standardized units (users, then
        items), biases 0. ``data`` is a ``Ratings`` or ``RatingSummary`` (only its id maps
        are read)."""
        dtype = p.DTYPES[params["dtype"]]
        shape_u, shape_i = (len(data.user_map), params["k"]), (len(data.item_map), params["k"])
        self.user_factors_ = self.rng_.normal(0.0, self._factor_std(params), shape_u).astype(dtype)
        self.item_factors_ = self.rng_.normal(0.0, self._factor_std(params), shape_i).astype(dtype)
        self.user_bias_ = np.zeros(shape_u[0], dtype=dtype)
        self.item_bias_ = np.zeros(shape_i[0], dtype=dtype)

    def _grow(self, params):
        """Rows for ids the maps gained since the parameters were sized (drawn like the first)."""
        for kind in ("user", "item"):
            factors = getattr(self, f"{kind}_factors_")
            new = len(getattr(self, f"{kind}_map_")) - len(factors)
            if new > 0:
                rows = self.rng_.normal(0.0, self._factor_std(params), (new, factors.shape[1]))
                setattr(self, f"{kind}_factors_", np.concatenate([factors, rows.astype(factors.dtype)]))
                bias = getattr(self, f"{kind}_bias_")
                setattr(self, f"{kind}_bias_", np.concatenate([bias, np.zeros(new, bias.dtype)]))

    def _trainer(self, data, params, layouts, inputs):
        """The ``driver.Trainer`` of one fit (see the module docstring)."""
        raise NotImplementedError

    def _encode_features(self, inputs):
        """The training rows' feature values per side (triplets: row, feature, value, by
        row; ``FeatureEncoding.encode``) of the tables given to ``fit`` (``inputs``, see
        ``mfcore.features.feature_inputs``); records each side's encoding
        (``{side}_feature_encoding_``, None for a side without)."""
        triplets = {}
        for side in ("user", "item"):
            table, encoding = inputs.get(f"{side}_features", (None, None))
            setattr(self, f"{side}_feature_encoding_", encoding)
            if encoding is not None:
                ids = getattr(self, f"{side}_map_").ids
                triplets[side] = encoding.encode(table, ids, f"{side}_features")[0]
        return triplets
