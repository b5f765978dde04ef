"""The biased matrix-factorization estimator.

Data flows one way: raw ids -> ``IdMap`` indices -> compact arrays -> the
kernels in ``_kernels`` -> fitted arrays -> predictions for raw ids.
"""
import contextlib
import copy
import inspect
import json
import numbers
import os
import time
import warnings

import numpy as np

from ._kernels import sgd as _kernels
from ._sgd import SGDTrainer
from ._threads import check_n_threads, resolve_n_threads
from .errors import (DuplicateRatingsWarning, NotFittedError, TrainingDivergedError,
                     UnknownIdError, UnknownIdWarning, warn)
from .ids import IdMap, normalize_ids, plain, sorted_unique

__all__ = ["Model"]

DUPLICATE_POLICIES = ("mean", "last", "keep", "error")
UNKNOWN_POLICIES = ("fallback", "nan", "error")
LR_SCHEDULES = ("constant", "inverse")
DTYPES = {"float32": np.float32, "float64": np.float64}


# --- parameter checks: one declared table, applied in ``fit`` -----------------

def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and np.isfinite(v)


def _int_at_least(lo):
    def check(name, v):
        if not _is_int(v) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        return int(v)
    return check


def _real(lo, strict, optional=False):
    def check(name, v):
        if optional and v is None:
            return None
        if not _is_real(v) or (v <= lo if strict else v < lo):
            raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {lo}, "
                             f"got {v!r}")
        return float(v)
    return check


def _choice(options):
    def check(name, v):
        if v not in options:
            raise ValueError(f"{name} must be one of {options}, got {v!r}")
        return v
    return check


def _seed(name, v):
    if v is None or _is_int(v) or isinstance(v, np.random.Generator):
        return v
    raise ValueError(f"{name} must be None, an integer or a numpy Generator, got {v!r}")


def _fraction(name, v):
    if v is None:
        return None
    if not _is_real(v) or not 0.0 < v < 1.0:
        raise ValueError(f"{name} must be None or a number strictly between 0 and 1, got {v!r}")
    return float(v)


def _bool(name, v):
    if not isinstance(v, (bool, np.bool_, numbers.Integral)):
        raise ValueError(f"{name} must be True or False, got {v!r}")
    return bool(v)


PARAM_CHECKS = {
    "k": _int_at_least(1),
    "epochs": _int_at_least(0),
    "lr": _real(0.0, strict=True),
    "reg": _real(0.0, strict=False),
    "reg_bias": _real(0.0, strict=False, optional=True),
    "init_std": _real(0.0, strict=False),
    "lr_schedule": _choice(LR_SCHEDULES),
    "lr_decay": _real(0.0, strict=False),
    "validation_fraction": _fraction,
    "n_iter_no_change": _int_at_least(1),
    "tol": _real(0.0, strict=False),
    "warm_start": _bool,
    "verbose": _bool,
    "dtype": _choice(tuple(DTYPES)),
    "duplicates": _choice(DUPLICATE_POLICIES),
    "seed": _seed,
    "n_threads": lambda name, v: check_n_threads(v, name),
}


# --- input coercion -------------------------------------------------------------

def _to_numpy(x):
    return x.to_numpy() if hasattr(x, "to_numpy") else x


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _all_numbers(arr):
    return all(_is_number(v) for v in arr)


def as_ratings(ratings, dtype, name="ratings"):
    """Ratings as a 1-d finite array of ``dtype``; a clear error for anything else."""
    if ratings is None:
        raise ValueError(f"{name} is None: pass one rating per (user, item) pair")
    ratings = _to_numpy(ratings)
    if isinstance(ratings, (list, tuple)):
        arr = np.empty(len(ratings), dtype=object)
        arr[:] = ratings
        arr = np.array(arr.tolist()) if _all_numbers(arr) else arr
    else:
        arr = np.asarray(ratings)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "O":
        bad = [(pos, v) for pos, v in enumerate(arr) if not _is_number(v)]
        if bad:
            pos, v = bad[0]
            raise ValueError(f"{name} must be numeric: got {v!r} ({type(v).__name__}) at position {pos}")
        arr = arr.astype(np.float64)
    elif arr.dtype.kind not in "iuf":
        first = arr[0] if arr.size else None
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype} (e.g. {plain(first)!r})")
    arr = arr.astype(dtype, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        pos = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{name} must be finite: got {plain(arr[pos])!r} at position {pos}")
    return np.ascontiguousarray(arr)


def _generator_from_state(state):
    """A numpy Generator restored from ``bit_generator.state`` (as saved in model files)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
        raise ValueError(f"unknown random generator state {name!r}")
    bit_generator = getattr(np.random, name)()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _format_epoch(record):
    """One line of training progress, as ``verbose`` prints it."""
    line = (f"epoch {record['epoch']:4d}  lr {record['lr']:.4g}  train_loss {record['train_loss']:.4f}"
            f"  train_rmse {record['train_rmse']:.4f}")
    if "val_rmse" in record:
        line += f"  val_rmse {record['val_rmse']:.4f}"
    return line + f"  {record['updates_per_sec'] / 1e6:6.1f}M updates/s  {record['seconds']:.3f}s"


def _physical_memory():
    """Bytes of RAM of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _check_factor_memory(n_rows, k):
    """Refuse factors that would take over half of the machine's memory (drawn in float64):
    a slip such as k=10**9 would otherwise swap for minutes instead of failing."""
    need, total = n_rows * k * 8, _physical_memory()
    if total and need > total // 2:
        raise ValueError(f"k={k} needs {need / 2**30:,.1f} GiB of factors for {n_rows:,} users "
                         f"and items, over half of this machine's {total / 2**30:,.1f} GiB; "
                         "choose a smaller k")


def bias_reg(params):
    """The biases' penalty of checked ``params``: ``reg_bias``, or ``reg`` when that is None."""
    return params["reg"] if params["reg_bias"] is None else params["reg_bias"]


def _check_lengths(**arrays):
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"inputs differ in length: {detail}")
    return next(iter(lengths.values()))


class Model:
    """Biased matrix factorization trained by stochastic gradient descent.

    Predicts ``r(u, i) = mu + b_u + b_i + p_u . q_i``. Each epoch visits the
    training ratings once in a fresh random order; for each rating with error
    ``e = r - r_hat``::

        b_u += lr (e - reg_bias b_u)        b_i += lr (e - reg_bias b_i)
        p_u += lr (e q_i - reg p_u)         q_i += lr (e p_u - reg q_i)

    (``q_i`` is updated with the old ``p_u``). Biases start at 0, factors at
    N(0, init_std^2).

    Parameters
    ----------
    k : int, default 64
        Number of latent factors.
    epochs : int, default 40
        Passes over the training data (the most, with early stopping).
    lr : float, default 0.01
        SGD learning rate.
    reg : float, default 0.06
        L2 regularization of the user and item factors.
    reg_bias : float or None, default None
        L2 regularization of the biases; None means ``reg``.
    init_std : float, default 0.01
        Standard deviation of the initial factors.
    lr_schedule : {"constant", "inverse"}, default "constant"
        "inverse" decays the rate as ``lr / (1 + lr_decay * (epoch - 1))``.
    lr_decay : float, default 0.1
        Decay of the "inverse" schedule (ignored by "constant").
    validation_fraction : float or None, default None
        Hold out this share of the training ratings (drawn with ``seed``) as a
        validation set for early stopping; None trains on everything. Only a
        fit from scratch holds out: ``partial_fit`` and warm-start fits train on
        all the ratings they are given.
    n_iter_no_change, tol : int (default 10), float (default 0.0)
        With validation data, stop after ``n_iter_no_change`` epochs whose
        validation RMSE did not improve on the best by more than ``tol``; the
        best epoch's parameters are kept. Training from small factors can
        stall for a dozen epochs before the factors take off (strong ``reg``,
        small ``lr``): a patience of 5 or a tolerance of 1e-4 stopped such runs
        on the stall at RMSE 0.831 where they go on to 0.718 (ML-1M shape).
    warm_start : bool, default False
        A second ``fit`` continues from the fitted parameters (see ``partial_fit``).
    verbose : bool, default False
        Print one line per epoch (losses, validation RMSE, throughput).
    dtype : {"float32", "float64"}, default "float32"
        Precision of the parameters (and of the ratings during training).
    duplicates : {"mean", "last", "keep", "error"}, default "mean"
        What to do with a (user, item) pair rated more than once: average its
        ratings into one (a re-rating should not weigh double), keep the last
        one in input order, keep every copy as its own sample, or raise.
        Merging warns with ``DuplicateRatingsWarning``.
    seed : None, int or numpy.random.Generator, default 0
        Seeds the factor initialisation and the order of each epoch.
    n_threads : None or int, default None
        Threads for the kernels; None (or -1, as in scikit-learn) means every
        CPU available to the process (affinity and cgroup quota aware).

    The defaults were chosen by searches on validation splits carved from
    MovieLens 100K u1.base (u1.test untouched: RMSE 0.915 there, 0.906 on
    average over u1..u5) and train well on MovieLens-like 1-5 star data
    without tuning. A small initial spread (0.01) mattered most: factors grow
    only where the data supports them (validation RMSE 0.907 -> 0.903 against
    0.05). reg=0.06 for factors and biases alike: a bias penalty of 0.005
    scored 0.0008 better on validation but let users with five ratings
    overfit (their RMSE 1.043 -> 1.049 on u2). lr=0.01 is stable for k up to
    a few hundred and, from this start, the validation RMSE bottoms out at
    35-50 epochs. k=128 scored 0.002 better on validation for twice the time.

    Reproducibility: a fit is a function of the data, the hyperparameters and
    the seed alone. Threads train blocks of the rating matrix that share no
    user and no item (see ``mfcore._sgd``), so 1, 2 or 8 threads give
    bit-identical models on the same CPU (the SIMD path, ``show_config()``,
    may change the last bits between machines).

    Fitted attributes
    -----------------
    user_factors_, item_factors_ : (n_users, k), (n_items, k) arrays
    user_bias_, item_bias_ : (n_users,), (n_items,) arrays
    global_mean_ : float, the mean training rating
    user_map_, item_map_ : ``IdMap`` from raw ids to rows (``user_map_.ids`` are the raw ids)
    rating_range_ : (min, max) training rating, used to clip predictions
    n_ratings_ : ratings trained on (after merging duplicates)
    history_ : list of per-epoch dicts: epoch, lr, train_loss (regularized objective per
        rating), train_rmse (measured during the epoch), val_rmse (with validation data),
        seconds, updates_per_sec
    n_epochs_ : epochs run in all (early stopping may end training before ``epochs``)
    best_epoch_ : the epoch whose parameters were kept (None without validation data)
    rng_ : the numpy Generator training draws from; ``partial_fit`` continues it
    seen_indptr_, seen_items_ : CSR (int64, int32) of the item rows each user row rated in
        training (sorted); ``recommend(exclude_seen=True)`` skips them, and they are saved
    """

    def __init__(self, k=64, epochs=40, lr=0.01, reg=0.06, reg_bias=None, init_std=0.01,
                 lr_schedule="constant", lr_decay=0.1, validation_fraction=None,
                 n_iter_no_change=10, tol=0.0, warm_start=False, verbose=False,
                 dtype="float32", duplicates="mean", seed=0, n_threads=None):
        self.k = k
        self.epochs = epochs
        self.lr = lr
        self.reg = reg
        self.reg_bias = reg_bias
        self.init_std = init_std
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.verbose = verbose
        self.dtype = dtype
        self.duplicates = duplicates
        self.seed = seed
        self.n_threads = n_threads

    # --- scikit-learn style parameter handling --------------------------------

    @classmethod
    def _param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        """Hyperparameters as a dict (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set hyperparameters by name; unknown names raise ``ValueError``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for Model; valid: {valid}")
            setattr(self, name, value)
        return self

    def _checked_params(self):
        return {name: PARAM_CHECKS[name](name, getattr(self, name)) for name in self._param_names()}

    def __repr__(self):
        defaults = {p.name: p.default for p in inspect.signature(Model.__init__).parameters.values()}
        changed = [f"{n}={v!r}" for n, v in self.get_params().items()
                   if n in defaults and defaults[n] is not v and defaults[n] != v]
        return f"{type(self).__name__}({', '.join(changed)})"

    # --- training ------------------------------------------------------------

    def fit(self, users, items, ratings, validation=None, callback=None):
        """Train on (user, item, rating) triples; return ``self``.

        ``users`` and ``items`` hold raw ids (integers or strings, see
        ``mfcore.ids``); ``ratings`` numbers. Any sequence, numpy array or pandas
        Series works.

        ``validation=(users, items, ratings)`` (or the ``validation_fraction``
        parameter, which holds out that share of the given ratings) is scored
        after every epoch; training stops after ``n_iter_no_change`` epochs
        without an improvement of more than ``tol``, and the parameters of the
        best validation epoch are kept (``best_epoch_``).
        ``callback(model, epoch, metrics)`` runs after every epoch; returning
        True stops training.

        With ``warm_start=True`` a fitted model continues from its current
        parameters for ``epochs`` more epochs (like ``partial_fit``). If
        training diverges a ``TrainingDivergedError`` is raised and the model
        keeps the state it had before this call.
        """
        params = self._checked_params()
        if params["warm_start"] and self._is_fitted():
            return self.partial_fit(users, items, ratings, epochs=params["epochs"],
                                    validation=validation, callback=callback)
        data = self._prepare(users, items, ratings, params)
        with self._atomic_training():
            self._initialize(data, params)
            self._train(data, params, params["epochs"], validation, callback)
        return self

    def partial_fit(self, users, items, ratings, epochs=1, validation=None, callback=None):
        """Train ``epochs`` more epochs on these ratings, keeping what was learnt so far.

        New users and items are appended to the id maps with freshly drawn
        factors; the global mean stays that of the first fit. The random stream
        continues where the previous call left it, so two ``partial_fit`` calls
        of one epoch equal one ``fit`` of two epochs on the same data and seed.
        ``validation_fraction`` is not applied here (a fresh split each call
        would train on earlier validation ratings): pass ``validation=`` to
        score and early-stop these epochs.
        """
        params = dict(self._checked_params(), validation_fraction=None)
        epochs = PARAM_CHECKS["epochs"]("epochs", epochs)
        if not self._is_fitted():
            data = self._prepare(users, items, ratings, params)
            with self._atomic_training():
                self._initialize(data, params)
                self._train(data, params, epochs, validation, callback)
            return self
        if np.dtype(DTYPES[params["dtype"]]) != self.user_factors_.dtype:
            raise ValueError(f"dtype={params['dtype']!r} differs from the fitted model's "
                             f"{self.user_factors_.dtype}; refit from scratch instead")
        if params["k"] != self.user_factors_.shape[1]:
            raise ValueError(f"k={params['k']} differs from the fitted model's "
                             f"{self.user_factors_.shape[1]}; refit from scratch instead")
        with self._atomic_training():
            data = self._prepare(users, items, ratings, params, extend=True)
            self._record_seen(data)
            self._train(data, params, epochs, validation, callback)
        return self

    def _fit_prepared(self, data, val, trainer=None):
        """Fit on already prepared data, early-stopping on prepared validation rows (for search:
        ``trainer``, an ``SGDTrainer`` of these ratings, is reused across trials; no seen items)."""
        params = self._checked_params()
        with self._atomic_training():
            self._initialize(data, params, seen=False)
            self._train(data, params, params["epochs"], None, None, val=val, trainer=trainer)
        return self

    def _is_fitted(self):
        return hasattr(self, "user_factors_")

    @contextlib.contextmanager
    def _atomic_training(self):
        """Restore every fitted attribute (and array contents) if training raises."""
        saved = {name: (value.copy() if isinstance(value, np.ndarray) else copy.deepcopy(value))
                 for name, value in vars(self).items() if name.endswith("_")}
        try:
            yield
        except BaseException:
            for name in [n for n in vars(self) if n.endswith("_")]:
                delattr(self, name)
            self.__dict__.update(saved)
            raise

    def _prepare(self, users, items, ratings, params, extend=False):
        """Validate and map the training data: int32 rows, merged duplicates, typed ratings.

        With ``extend`` the fitted maps grow with the new ids and the parameter
        arrays grow with them (new rows drawn from the model's random stream).
        """
        dtype = DTYPES[params["dtype"]]
        users = normalize_ids(_to_numpy(users), "users")
        items = normalize_ids(_to_numpy(items), "items")
        ratings = as_ratings(ratings, dtype)
        n = _check_lengths(users=users, items=items, ratings=ratings)
        if n == 0:
            raise ValueError("cannot fit on empty data: no ratings given")
        if extend:
            u = self.user_map_.extend(users, "users")
            i = self.item_map_.extend(items, "items")
            self._grow_parameters(params)
            user_map, item_map = self.user_map_, self.item_map_
        else:
            user_map, u = IdMap.fit(users, "users")
            item_map, i = IdMap.fit(items, "items")
        u, i, ratings, keys = self._merge_duplicates(u, i, ratings, user_map, item_map,
                                                     params["duplicates"])
        return {"u": u, "i": i, "r": ratings, "user_map": user_map, "item_map": item_map,
                "keys": keys}

    def _initialize(self, data, params, seen=True):
        """Fresh parameters: factors N(0, init_std^2), biases 0, mean of the training ratings;
        with ``seen``, the seen-items CSR of the data."""
        dtype = DTYPES[params["dtype"]]
        self.rng_ = np.random.default_rng(params["seed"])
        self.user_map_, self.item_map_ = data["user_map"], data["item_map"]
        shape_u, shape_i = (len(self.user_map_), params["k"]), (len(self.item_map_), params["k"])
        _check_factor_memory(shape_u[0] + shape_i[0], params["k"])
        self.user_factors_ = self.rng_.normal(0.0, params["init_std"], shape_u).astype(dtype)
        self.item_factors_ = self.rng_.normal(0.0, params["init_std"], shape_i).astype(dtype)
        self.user_bias_ = np.zeros(shape_u[0], dtype=dtype)
        self.item_bias_ = np.zeros(shape_i[0], dtype=dtype)
        self.global_mean_ = float(np.mean(data["r"], dtype=np.float64))
        self.rating_range_ = (float(data["r"].min()), float(data["r"].max()))
        self.history_ = []
        self.best_epoch_ = None
        self.n_epochs_ = 0
        if seen:
            from .recommend import seen_csr
            self.seen_indptr_, self.seen_items_ = seen_csr(
                data["u"], data["i"], shape_u[0], shape_i[0], keys=data.get("keys"))
        else:
            self.seen_indptr_ = self.seen_items_ = None

    def _record_seen(self, data):
        """Add the training pairs to the seen-items CSR (see ``mfcore.recommend``).

        A model loaded from a file without one keeps none (a partial set would be wrong).
        """
        from .recommend import merge_seen
        if getattr(self, "seen_indptr_", None) is not None:
            self.seen_indptr_, self.seen_items_ = merge_seen(
                self.seen_indptr_, self.seen_items_, data["u"], data["i"],
                len(self.user_map_), len(self.item_map_))

    def _grow_parameters(self, params):
        """Append rows for ids the maps gained since the parameters were sized."""
        for kind in ("user", "item"):
            factors = getattr(self, f"{kind}_factors_")
            new = len(getattr(self, f"{kind}_map_")) - len(factors)
            if new > 0:
                rows = self.rng_.normal(0.0, params["init_std"], (new, factors.shape[1]))
                setattr(self, f"{kind}_factors_", np.concatenate([factors, rows.astype(factors.dtype)]))
                bias = getattr(self, f"{kind}_bias_")
                setattr(self, f"{kind}_bias_", np.concatenate([bias, np.zeros(new, bias.dtype)]))

    def _validation_rows(self, data, validation, params):
        """(training data, validation arrays or None) from ``validation`` or ``validation_fraction``."""
        fraction = params["validation_fraction"]
        if validation is not None and fraction is not None:
            raise ValueError("give either validation=(users, items, ratings) or "
                             "validation_fraction, not both")
        if validation is not None:
            if len(validation) != 3:
                raise ValueError("validation must be a (users, items, ratings) triple, "
                                 f"got {len(validation)} items")
            vu, vi, vr = validation
            vr = as_ratings(vr, data["r"].dtype, "validation ratings")
            vu = self.user_map_.lookup(_to_numpy(vu), "validation users")
            vi = self.item_map_.lookup(_to_numpy(vi), "validation items")
            if _check_lengths(users=vu, items=vi, ratings=vr) == 0:
                raise ValueError("validation data is empty")
            return data, (vu, vi, vr)
        if fraction is None:
            return data, None
        held = self.rng_.random(len(data["r"])) < fraction
        if held.all() or not held.any():
            raise ValueError(f"validation_fraction={fraction} leaves no training or no "
                             f"validation ratings out of {len(data['r'])}")
        train = dict(data, u=data["u"][~held], i=data["i"][~held], r=data["r"][~held])
        return train, (data["u"][held], data["i"][held], data["r"][held])

    def _lr_at(self, epoch, params):
        if params["lr_schedule"] == "inverse":
            return params["lr"] / (1.0 + params["lr_decay"] * (epoch - 1))
        return params["lr"]

    def _parameters(self):
        return (self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_)

    def _rmse_rows(self, u, i, r):
        lo, hi = self.rating_range_
        sse = _kernels.squared_error(u, i, r, *self._parameters(), self.global_mean_, lo, hi,
                                     resolve_n_threads(self.n_threads))
        return float(np.sqrt(sse / len(r)))

    def _train(self, data, params, n_epochs, validation, callback, val=None, trainer=None):
        """The epoch loop: schedule, kernel, divergence check, history, early stopping."""
        if val is None:
            data, val = self._validation_rows(data, validation, params)
        if trainer is None:
            trainer = SGDTrainer(data["u"], data["i"], data["r"],
                                 resolve_n_threads(params["n_threads"]))
        reg, reg_bias = params["reg"], bias_reg(params)
        n = len(data["r"])
        self.rating_range_ = (min(self.rating_range_[0], float(data["r"].min())),
                              max(self.rating_range_[1], float(data["r"].max())))
        self.n_ratings_ = int(n)
        best_rmse, best_params, since_best = np.inf, None, 0
        for epoch in range(self.n_epochs_ + 1, self.n_epochs_ + n_epochs + 1):
            lr = self._lr_at(epoch, params)
            start = time.perf_counter()
            state = dict(zip(("user_factors_", "item_factors_", "user_bias_", "item_bias_"),
                             self._parameters()), global_mean_=self.global_mean_)
            sse = trainer.run_epoch(state, lr, reg, reg_bias, self.rng_)
            seconds = time.perf_counter() - start
            if not (np.isfinite(sse) and all(np.isfinite(a).all() for a in self._parameters())):
                raise TrainingDivergedError(
                    f"training diverged at epoch {epoch} (non-finite loss or parameters) with "
                    f"lr={lr:g}; try a smaller learning rate, e.g. lr={params['lr'] / 10:g}")
            penalty = sum(w * float(np.einsum("i,i->", a.ravel(), a.ravel(), dtype=np.float64)) for w, a in
                          zip((reg, reg, reg_bias, reg_bias), self._parameters()))
            record = {"epoch": epoch, "lr": lr, "train_loss": (sse + penalty) / n,
                      "train_rmse": float(np.sqrt(sse / n)), "seconds": seconds,
                      "updates_per_sec": n / max(seconds, 1e-12)}
            if val is not None:
                record["val_rmse"] = self._rmse_rows(*val)
            self.history_.append(record)
            self.n_epochs_ = epoch
            if params["verbose"]:
                print(_format_epoch(record), flush=True)
            stop = False
            if val is not None:
                if record["val_rmse"] < best_rmse - params["tol"]:
                    best_rmse, since_best = record["val_rmse"], 0
                    best_params = (epoch, [a.copy() for a in self._parameters()])
                else:
                    since_best += 1
                    stop = since_best >= params["n_iter_no_change"]
            if callback is not None and callback(self, epoch, dict(record)):
                stop = True
            if stop:
                break
        if best_params is not None:
            self.best_epoch_ = best_params[0]
            for target, best in zip(self._parameters(), best_params[1]):
                target[...] = best

    @staticmethod
    def _merge_duplicates(u, i, ratings, user_map, item_map, policy):
        """(u, i, ratings, keys): duplicate (user, item) pairs merged by ``policy``; keys are
        the sorted distinct ``u * n_items + i`` (None with "keep"), reused for the seen items."""
        if policy == "keep":
            return u, i, ratings, None
        key = u.astype(np.int64) * len(item_map) + i
        keys = sorted_unique(key)  # one plain sort: the usual number of duplicates is 0
        n_dup = len(key) - len(keys)
        if n_dup == 0:
            return u, i, ratings, keys
        order = np.argsort(key, kind="stable")  # equal keys stay in input order
        key = key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        counts = np.diff(np.r_[starts, len(key)])
        first = order[starts[np.flatnonzero(counts > 1)[0]]]
        example = (plain(user_map.ids[u[first]]), plain(item_map.ids[i[first]]))
        if policy == "error":
            raise ValueError(f"{n_dup} duplicate (user, item) ratings, e.g. user {example[0]!r}, "
                             f"item {example[1]!r}; pass duplicates='mean', 'last' or 'keep'")
        if policy == "mean":
            merged = np.add.reduceat(ratings[order].astype(np.float64), starts) / counts
        else:  # last: the rating of the last occurrence in input order
            merged = ratings[order[starts + counts - 1]]
        warn(f"merged {n_dup} duplicate (user, item) ratings with policy {policy!r} "
                      f"(e.g. user {example[0]!r}, item {example[1]!r})", DuplicateRatingsWarning)
        n_items = len(item_map)
        return ((keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32),
                np.ascontiguousarray(merged, dtype=ratings.dtype), keys)

    # --- prediction ------------------------------------------------------------

    def _check_fitted(self):
        if not hasattr(self, "user_factors_"):
            raise NotFittedError("this Model is not fitted yet: call fit(users, items, ratings) first")

    def _indices(self, users, items, unknown):
        """Map raw ids to rows, applying the unknown-id policy; return (u, i, known mask)."""
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        u = self.user_map_.lookup(_to_numpy(users), "users")
        i = self.item_map_.lookup(_to_numpy(items), "items")
        _check_lengths(users=u, items=i)
        bad_u, bad_i = u < 0, i < 0
        n_u, n_i = int(bad_u.sum()), int(bad_i.sum())
        if n_u or n_i:
            users_arr = normalize_ids(_to_numpy(users), "users")
            items_arr = normalize_ids(_to_numpy(items), "items")
            example = (f"user {plain(users_arr[bad_u][0])!r}" if n_u
                       else f"item {plain(items_arr[bad_i][0])!r}")
            message = (f"{n_u} unknown user id(s) and {n_i} unknown item id(s) among "
                       f"{len(u)} pairs (e.g. {example})")
            if unknown == "error":
                raise UnknownIdError(message)
            if unknown == "fallback":
                warn(message + "; predicted from the global mean and the known bias", UnknownIdWarning)
        return u, i, ~(bad_u | bad_i)

    def predict(self, users, items, clip=True, unknown="fallback"):
        """Predicted ratings for the (user, item) pairs, as an array of the model's dtype.

        ``clip`` keeps predictions within the training rating range. An unknown
        user or item contributes no bias and no factors, so the prediction falls
        back to ``mu + b_i`` (or ``mu + b_u``, or ``mu``) and an
        ``UnknownIdWarning`` counts them (``unknown="fallback"``);
        ``unknown="nan"`` returns NaN for those pairs instead, and
        ``unknown="error"`` raises ``KeyError``.
        """
        self._check_fitted()
        u, i, known = self._indices(users, items, unknown)
        out = self._predict_rows(u, i, clip)
        if unknown == "nan":
            out[~known] = np.nan
        return out

    def _predict_rows(self, u, i, clip):
        """Predictions for int32 rows (-1: unknown, no bias and no factors), in a parallel kernel."""
        out = np.empty(len(u), dtype=self.user_factors_.dtype)
        lo, hi = self.rating_range_ if clip else (-np.inf, np.inf)
        _kernels.predict(u, i, self.user_factors_, self.item_factors_, self.user_bias_,
                         self.item_bias_, self.global_mean_, lo, hi, out,
                         resolve_n_threads(self.n_threads))
        return out

    def evaluate(self, users, items, ratings, clip=True):
        """RMSE and MAE of the predictions for held-out ratings, with the count of unknown ids.

        Unknown ids are predicted as in ``predict`` (the fallback), counted, not warned about.
        """
        from .metrics import mae, rmse
        self._check_fitted()
        ratings = as_ratings(ratings, np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownIdWarning)
            u, i, _ = self._indices(users, items, "fallback")
        _check_lengths(pairs=u, ratings=ratings)
        pred = self._predict_rows(u, i, clip)
        return {"rmse": rmse(ratings, pred), "mae": mae(ratings, pred), "n": int(len(ratings)),
                "unknown_users": int((u < 0).sum()), "unknown_items": int((i < 0).sum())}

    # --- recommending (implemented in mfcore.recommend) ---------------------------

    def recommend(self, users, n=10, exclude_seen=True, items=None, unknown="fallback"):
        """The ``n`` items with the highest predicted rating for one user or a batch.

        Returns ``(items, scores)``, best first. Scores are the predicted
        ratings ``predict(user, item, clip=False)`` (unclipped, so the ranking
        does not tie at the top of the scale); equal scores rank by item row.
        ``exclude_seen`` skips the items the user rated in training (kept in
        the model and saved with it); ``items`` restricts the candidates to
        these raw ids (unknown ones raise ``KeyError``).

        One raw user id gives 1-d arrays with at most ``n`` entries (fewer when
        fewer candidates remain). A list/array of ids gives 2-d arrays of shape
        (len(users), n); a row with fewer than ``n`` candidates is padded with
        score NaN and item ``-1`` (integer ids) or ``""`` (string ids): test
        ``np.isnan(scores)``, not the id. A user unknown to the model gets the
        items with the largest item bias (the popularity fallback) and an
        ``UnknownIdWarning``; ``unknown="error"`` raises ``KeyError`` instead.
        Runs in a parallel kernel with partial selection: memory O(users x n).
        """
        from .recommend import recommend
        return recommend(self, users, n, exclude_seen, items, unknown)

    def similar_items(self, items, n=10):
        """The ``n`` items whose factors are most cosine-similar to each of ``items``.

        Returns ``(items, similarities)`` like ``recommend`` (one id: 1-d;
        several: 2-d padded rows); the item itself is left out. Unknown ids
        raise ``KeyError``.
        """
        from .recommend import similar
        return similar(self, "item", items, n)

    def similar_users(self, users, n=10):
        """The ``n`` users most cosine-similar to ``users`` by factors; see ``similar_items``."""
        from .recommend import similar
        return similar(self, "user", users, n)

    def fold_in(self, users, items, ratings, shrinkage=50.0):
        """Add users (or refresh known ones) from their ratings without retraining; return self.

        ``users`` is one raw id (for all the ratings) or one per rating. Each
        user's bias and factors are solved exactly, items held fixed, as a
        small regularized least-squares problem::

            min_b,p  sum_j (r_j - mu - b_i(j) - b - p.q_j)^2
                     + (n_u + shrinkage) (reg |p|^2 + reg_bias b^2)

        With ``shrinkage=0`` this is where SGD's user update settles (its
        penalty is applied once per rating). A trained model's sparse users
        sit closer to zero than that (few updates from a small start), so
        ``shrinkage`` adds that many ratings' worth of penalty. 50 was chosen on
        MovieLens 100K folds u2/u3 (10% of the users left out of training and
        folded in): with all their ratings within 0.001 of the best value
        (10-30) and 0.008 RMSE behind a full refit; with only 5 ratings each
        0.04 RMSE better than a full refit and than the unknown-user fallback.

        A new user is appended to ``user_map_``; a known user's row is
        replaced (its previous parameters and seen items are forgotten: pass
        its whole history). Ratings of items unknown to the model are ignored
        with an ``UnknownIdWarning``; duplicates follow ``duplicates``. The
        user's rated items become its seen items for ``recommend``.
        """
        from .recommend import fold_in
        return fold_in(self, users, items, ratings, shrinkage)

    # --- persistence -----------------------------------------------------------

    def save(self, path):
        """Write the model to one file atomically (see ``mfcore.persistence``)."""
        from .persistence import save_model
        save_model(self, path)

    def _fitted_state(self):
        """Arrays that define a fitted model (``None`` when unfitted)."""
        if not hasattr(self, "user_factors_"):
            return None
        return {
            "user_ids": self.user_map_.ids,
            "item_ids": self.item_map_.ids,
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
            "global_mean": np.float64(self.global_mean_),
            "rating_range": np.asarray(self.rating_range_, dtype=np.float64),
            "n_ratings": np.int64(self.n_ratings_),
            "history": np.str_(json.dumps(self.history_)),
            "training": np.str_(json.dumps({"rng": self.rng_.bit_generator.state,
                                            "best_epoch": self.best_epoch_,
                                            "n_epochs": self.n_epochs_})),
            **({} if getattr(self, "seen_indptr_", None) is None else
               {"seen_indptr": self.seen_indptr_,
                # 2 bytes an item row where they fit (every MovieLens set): the seen items are
                # most of a saved model (4 bytes a training rating against ~1.5 for factors)
                "seen_items": (self.seen_items_.astype(np.uint16)
                               if len(self.item_map_) <= 1 << 16 else self.seen_items_)}),
        }

    def _restore_fitted_state(self, state):
        """Check a fitted state read from a file and attach it; ``ValueError`` names the problem."""
        params = self._checked_params()
        dtype = np.dtype(DTYPES[params["dtype"]])
        P, Q = state["user_factors"], state["item_factors"]
        bu, bi = state["user_bias"], state["item_bias"]
        for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
            if state[name].dtype != dtype:
                raise ValueError(f"{name} has dtype {state[name].dtype}, expected {dtype}")
        n_users, n_items = len(state["user_ids"]), len(state["item_ids"])
        expected = {"user_factors": (n_users, params["k"]), "item_factors": (n_items, params["k"]),
                    "user_bias": (n_users,), "item_bias": (n_items,), "rating_range": (2,)}
        for name, shape in expected.items():
            if state[name].shape != shape:
                raise ValueError(f"{name} has shape {state[name].shape}, expected {shape}")
        for name in ("user_factors", "item_factors", "user_bias", "item_bias",
                     "global_mean", "rating_range"):
            if not np.isfinite(state[name]).all():
                raise ValueError(f"{name} holds non-finite values")
        lo, hi = (float(v) for v in state["rating_range"])
        if lo > hi:
            raise ValueError(f"rating_range {lo}..{hi} is empty")
        user_map, item_map = IdMap(state["user_ids"]), IdMap(state["item_ids"])
        seen = (state["seen_indptr"], state["seen_items"]) if "seen_indptr" in state else (None, None)
        if seen[0] is not None:
            from .recommend import check_seen
            if seen[1].dtype == np.uint16:  # saved compactly (see _fitted_state)
                seen = (seen[0], seen[1].astype(np.int32))
            check_seen(*seen, n_users, n_items)
        self.seen_indptr_, self.seen_items_ = seen
        self.user_factors_ = np.ascontiguousarray(P)
        self.item_factors_ = np.ascontiguousarray(Q)
        self.user_bias_ = np.ascontiguousarray(bu)
        self.item_bias_ = np.ascontiguousarray(bi)
        self.global_mean_ = float(state["global_mean"])
        self.user_map_, self.item_map_ = user_map, item_map
        self.rating_range_ = (lo, hi)
        self.n_ratings_ = int(state["n_ratings"])
        self.history_ = json.loads(str(state["history"]))
        training = json.loads(str(state["training"]))
        self.rng_ = _generator_from_state(training["rng"])
        self.best_epoch_ = training["best_epoch"]
        self.n_epochs_ = int(training["n_epochs"])
        return self
