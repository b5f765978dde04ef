"""What a fitted factor model is, whichever estimator found it.

``FactorModel`` owns the fitted arrays (id maps, global mean, biases,
factors, rating range, seen items) and everything that needs only them:
``predict``, ``evaluate``, ``recommend``, ``similar_items``/``similar_users``,
``fold_in`` and ``save``. Every estimator (``mfcore.estimators``) is a
``FactorModel`` that adds its hyperparameters and how it trains.

Data flows one way: raw ids -> ``IdMap`` rows -> the kernels in
``mfcore._kernels`` -> predictions for raw ids.
"""
import collections
import functools
import json
import warnings

import numpy as np

from . import persistence, recommend as _recommend
from ._kernels import predict as _predict
from ._kernels.rowsolve import solve_rows
from ._threads import resolve_n_threads
from .data import (as_ratings, check_lengths, check_seen, merge_duplicates, rating_arrays,
                   replace_seen_rows, to_numpy)
from .errors import NotFittedError, UnknownIdError, UnknownIdWarning, shown, warn
from .features import FeatureEncoding, feature_sums
from .ids import IdMap, normalize_ids, plain, sorted_unique
from .metrics import mae, rmse
from .params import is_real

__all__ = ["FactorModel", "StateArray", "UNKNOWN_POLICIES", "pair_arguments", "labelled",
           "check_magnitudes", "training_record", "check_feature_state", "FEATURE_STATE"]

UNKNOWN_POLICIES = ("fallback", "nan", "error")

#: The parameter arrays every factor model predicts with (``_parameters``, in this order).
PARAMETER_NAMES = ("user_factors_", "item_factors_", "user_bias_", "item_bias_")


class StateArray(collections.namedtuple("StateArray", "name shape dtype optional",
                                        defaults=(False,))):
    """One array of the fitted state (``FactorModel.STATE``): the attribute ``name + "_"``,
    saved as ``name``. ``shape`` gives each dimension as a number or as the name of a size
    the model resolves from the state (``_state_sizes``: "users", "items", "columns" ...);
    None: any length); ``dtype`` "param" is the model's dtype; an ``optional`` array may be
    absent (None: files written before it was kept)."""

    def check(self, value, sizes, param_dtype):
        """Raise ValueError naming the array unless ``value`` has its shape and dtype, and
        finite (floats) or non-negative (integers) values."""
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in self.shape)
        dtype = np.dtype(param_dtype if self.dtype == "param" else self.dtype)
        if value.dtype != dtype or value.ndim != len(shape) or any(
                want is not None and want != got for want, got in zip(shape, value.shape)):
            raise ValueError(f"{self.name} has shape {value.shape} and dtype {value.dtype}, "
                             f"expected {shape} and {dtype}")
        if dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"{self.name} holds non-finite values")
        if dtype.kind == "i" and value.size and value.min() < 0:
            raise ValueError(f"{self.name} holds negative values")


def pair_arguments(users, items):
    """(users, items, single): a scalar id on one side is repeated to the other's length;
    ``single`` when both are scalars (the caller returns one value)."""
    scalar_u, scalar_i = np.ndim(users) == 0, np.ndim(items) == 0
    if scalar_u and scalar_i:
        return [users], [items], True
    if scalar_u:
        return [users] * len(to_numpy(items)), items, False
    if scalar_i:
        return users, [items] * len(to_numpy(users)), False
    return users, items, False


def labelled(values, index, name):
    """``values`` as a pandas Series on ``index`` (the input table's), or as they are when
    the input was not a pandas table (``index`` None): pandas in, pandas out."""
    if index is None:
        return values
    import pandas as pd
    return pd.Series(values, index=index, name=name)


def check_magnitudes(state, k, dtype):
    """Raise ValueError unless a saved model's values keep every prediction finite.

    The digest only detects accidental corruption (anyone can recompute it), so a crafted
    file can hold finite values whose products overflow: factors of 3e38 predict NaN, a
    global mean of 1e308 clips every prediction. A prediction is ``mu + b_u + b_i + p.q``
    (k products), so it stays finite while ``k max|p| max|q|`` and each of the other terms
    stay below a quarter of the dtype's largest value; the mean of the training ratings
    lies within their range.
    """
    limit = float(np.finfo(dtype).max) / 4

    def largest(name):
        values = state[name]
        return float(np.abs(values).max()) if values.size else 0.0

    mu, (lo, hi) = float(state["global_mean"]), (float(v) for v in state["rating_range"])
    if not lo <= mu <= hi:
        raise ValueError(f"global_mean {mu!r} lies outside rating_range {lo!r}..{hi!r}")
    for name, value in (("rating_range", max(abs(lo), abs(hi))),
                        ("user_bias", largest("user_bias")), ("item_bias", largest("item_bias")),
                        ("the factors' products", k * largest("user_factors")
                         * largest("item_factors"))):
        if not value < limit:
            raise ValueError(f"{name} reach {value:.3g}: predictions would overflow "
                             f"{np.dtype(dtype)} (at most {limit:.3g})")


def _count(value, name, optional=False):
    """``value`` as an int >= 0 (None too when ``optional``); ValueError otherwise."""
    if optional and value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def training_record(state):
    """The bookkeeping of a saved fitted state, checked: ``n_ratings``, ``history`` (a list
    of per-epoch dicts of numbers), and ``training``'s generator state, epochs, best epoch,
    rating scale and stop reason. ValueError names what is wrong (a crafted file could
    otherwise load and break ``info`` or ``partial_fit`` later)."""
    n_ratings = state["n_ratings"]
    if n_ratings.shape != () or n_ratings.dtype.kind not in "iu":
        raise ValueError(f"n_ratings must be one integer, got {n_ratings.dtype} of shape "
                         f"{n_ratings.shape}")
    history = persistence.read_json(state["history"], "history")
    if not isinstance(history, list) or not all(
            isinstance(r, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                        for v in r.values()) for r in history):
        raise ValueError("history must be a list of per-epoch records of numbers")
    training = persistence.read_json(state["training"], "training")
    if not isinstance(training, dict):
        raise ValueError(f"training must be a JSON object, got {type(training).__name__}")
    n_epochs = _count(training.get("n_epochs"), "n_epochs")
    best = _count(training.get("best_epoch"), "best_epoch", optional=True)
    if best is not None and not 1 <= best <= n_epochs:
        raise ValueError(f"best_epoch {best} is not one of the {n_epochs} epochs run")
    scale = training.get("rating_scale")  # (persistence.migrate fills it for earlier files)
    if not (is_real(scale) and 0 < scale < np.inf):
        raise ValueError(f"rating_scale must be a positive finite number, got {scale!r}")
    reason = training.get("stop_reason")
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"stop_reason must be text, got {reason!r}")
    return {"n_ratings": _count(int(n_ratings), "n_ratings"), "history": history,
            "rng": training.get("rng"), "n_epochs": n_epochs, "best_epoch": best,
            "rating_scale": float(scale), "stop_reason": reason}


def reads_state(method):
    """Run a method that reads the fitted state on one snapshot of it
    (``FactorModel._snapshot``), so that a training call publishing a new state meanwhile
    cannot hand it id maps of one state and arrays of another."""
    @functools.wraps(method)
    def on_snapshot(self, *args, **kwargs):
        return method(self._snapshot(), *args, **kwargs)
    return on_snapshot


def _generator_from_state(state):
    """A numpy Generator restored from ``bit_generator.state`` (as saved in model files)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
        raise ValueError(f"unknown random generator state {name!r}")
    bit_generator = getattr(np.random, name)()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


#: The summary numbers of the state: checked as arrays, attached as numbers (the training
#: record, ``n_ratings`` included, is checked by ``training_record``).
_SUMMARY = (StateArray("global_mean", (), "float64"), StateArray("rating_range", (2,), "float64"))
#: the rest of a saved state: the id maps and the training record (``training_record``)
_RECORD = ("user_ids", "item_ids", "n_ratings", "history", "training")


#: The members of a saved state that hold the side features' encodings (``mfcore.features``),
#: text beside the arrays: an estimator with side features lists them in ``STATE_EXTRA``.
FEATURE_STATE = ("user_feature_encoding", "user_feature_levels", "item_feature_encoding",
                 "item_feature_levels")


def check_feature_state(state, weights):
    """Check a saved state's side features: per side, the encoding and the weights array
    (``weights``: its name with ``{side}`` in it, one row per feature) come together."""
    for side in ("user", "item"):
        encoding = (FeatureEncoding.from_state(state, f"{side}_feature")
                    if state.get(f"{side}_feature_encoding") is not None else None)
        name = weights.format(side=side)
        values = state.get(name)
        if (encoding is None) != (values is None):
            raise ValueError(f"{side}_feature_encoding and {name} come together")
        if encoding is not None and len(values) != encoding.n_features:
            raise ValueError(f"{name} has {len(values)} rows for {encoding.n_features} "
                             "features")


def no_time_terms():
    """The error of a model without time terms given times."""
    return ValueError("times given, but this model was fitted without times (fit(..., "
                      "times=...) of an estimator with time terms, such as BayesianMF)")


class FactorModel:
    """A fitted biased factor model: ``r(u, i) = mu + b_u + b_i + dot(p_u, q_i)``.

    Not used on its own: estimators (``mfcore.SGD``, ``mfcore.ALS`` ...)
    subclass it; ``mfcore.load`` rebuilds those registered in ``mfcore.registry``.

    Threads: one model may serve ``predict``, ``evaluate``, ``recommend``,
    ``similar_*`` and ``save`` from any number of threads, also while another
    thread runs ``fit``, ``partial_fit`` or ``fold_in`` on it. Training works on a
    copy and replaces the fitted state in one step at the end, and each reading
    call works on the state as it was when the call began: it answers from the
    old model or the new one, never a mix (and a failed or interrupted fit
    publishes nothing). Two training calls at once on one object are each
    consistent, and the last to finish wins; setting hyperparameters while a fit
    runs is not supported. (Free-threaded CPython builds are untested.)

    Attributes
    ----------
    user_factors_, item_factors_ : (n_users, k), (n_items, k) arrays
    user_bias_, item_bias_ : (n_users,), (n_items,) arrays
    global_mean_ : float, the mean training rating
    user_map_, item_map_ : ``IdMap`` from raw ids to rows (``user_map_.ids`` are the raw ids)
    rating_range_ : (min, max) training rating, used to clip predictions
    n_ratings_ : ratings trained on (after merging duplicates), over ``fit`` and every
        ``partial_fit`` (a rating passed again counts again)
    item_counts_ : training ratings of each item (int64), the popularity ``recommend`` ranks
        by for unknown users; None in files written before it was kept
    stop_reason_ : how the last training call ended (limit reached, early stop and the epoch
        kept, or the callback), one line; saved with the model
    rating_scale_ : the ratings' spread that training standardizes by (see
        ``mfcore.estimators.base.rating_scale``); fixed by the first fit like ``global_mean_``
    history_ : list of per-epoch (per-iteration) dicts, see the estimator
    n_epochs_ : epochs (iterations) run in all
    best_epoch_ : the epoch whose parameters were kept (None without validation data)
    rng_ : the numpy Generator training draws from; ``partial_fit`` continues it
    seen_indptr_, seen_items_ : CSR (int64, int32) of the item rows each user row rated in
        training (sorted); ``recommend(exclude_seen=True)`` skips them, and they are saved

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> model = mfcore.ALS(k=4, iterations=3, seed=0).fit(ratings.user, ratings.item, ratings.rating)
    >>> isinstance(model, mfcore.FactorModel)
    True
    >>> model.user_factors_.shape == (len(model.user_map_), 4)
    True
    """

    #: fold_in's default ``shrinkage`` (pseudo-ratings of extra penalty), per estimator
    fold_in_shrinkage = 0.0

    #: what ``recommend`` ranks by when not told (``mfcore.recommend.RANK_BY``): a rating
    #: model's prediction weighed by how often items are chosen (see ``recommend``)
    default_rank_by = "choice"

    #: whether ``predict`` gives ratings on the training ratings' scale (False: a score,
    #: such as ImplicitALS's preference; then fold_in's values are counts or confidences,
    #: not ratings to check against the training range)
    predicts_ratings = True

    #: how ``predict`` fills in an id it has not seen (the end of its ``UnknownIdWarning``):
    #: an unknown user's bias and factors are 0, so ``mu + b_i`` (and ``mu + b_u`` for an
    #: unknown item); an estimator whose fallback differs declares its own
    unknown_fallback = "predicted from the global mean and the known bias"

    #: The fitted arrays a model file holds (estimators that keep more extend it): save
    #: writes those present, load checks each against its row and attaches it.
    STATE = (
        StateArray("user_factors", ("users", "columns"), "param"),
        StateArray("item_factors", ("items", "columns"), "param"),
        StateArray("user_bias", ("users",), "param"),
        StateArray("item_bias", ("items",), "param"),
        StateArray("item_counts", ("items",), "int64", optional=True),
        StateArray("seen_indptr", ("users+1",), "int64", optional=True),
        StateArray("seen_items", (None,), "int32", optional=True),
    )
    #: Other members of a saved state, beside ``STATE``'s arrays (encodings an estimator
    #: writes in ``_fitted_state`` and checks in ``_check_state``); a file holding any
    #: member neither names is refused.
    STATE_EXTRA = ()

    # --- state ------------------------------------------------------------------
    #
    # Thread safety: a training call (fit, partial_fit, fold_in, mfcore.dask.fit) builds
    # the new fitted state aside and publishes it in one step (``_publish``: one new
    # attribute dict), and every reading method works on one snapshot (``reads_state``).
    # So reading from several threads is safe, also while another thread trains: a
    # reader sees the state before or the state after, whole. Two training calls at
    # once on one object are each consistent; the last to finish wins.

    def _snapshot(self):
        """This model as it is now, as a new object sharing the current attribute values:
        ``_publish`` replaces the attribute dict and never edits it, so the snapshot holds
        one whole fitted state however training proceeds meanwhile."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        return view

    def _publish(self, fitted):
        """Make ``fitted`` (fitted attribute name -> value, all of them) the fitted state
        in one step: one assignment of a new attribute dict (the hyperparameters kept),
        which no other thread can see half done."""
        state = {name: value for name, value in self.__dict__.items() if not name.endswith("_")}
        state.update(fitted)
        self.__dict__ = state


    def _is_fitted(self):
        return hasattr(self, "user_factors_")

    def _check_fitted(self):
        if not self._is_fitted():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call "
                                 "fit(users, items, ratings) first")

    def _parameters(self):
        return tuple(getattr(self, name) for name in PARAMETER_NAMES)

    def _threads(self):
        return resolve_n_threads(getattr(self, "n_threads", None))

    # --- prediction ---------------------------------------------------------------

    def _indices(self, users, items, unknown, fallback_note=None):
        """Map raw ids to rows, applying the unknown-id policy; return (u, i, known mask).
        ``fallback_note`` ends the warning: how the unknown ids were predicted (default:
        the class's ``unknown_fallback``)."""
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        u = self.user_map_.lookup(to_numpy(users), "users")
        i = self.item_map_.lookup(to_numpy(items), "items")
        check_lengths(users=u, items=i)
        bad_u, bad_i = u < 0, i < 0
        n_u, n_i = int(bad_u.sum()), int(bad_i.sum())
        if n_u or n_i:
            users_arr = normalize_ids(to_numpy(users), "users")
            items_arr = normalize_ids(to_numpy(items), "items")
            example = (f"user {plain(users_arr[bad_u][0])!r}" if n_u
                       else f"item {plain(items_arr[bad_i][0])!r}")
            message = (f"{n_u} unknown user id(s) and {n_i} unknown item id(s) among "
                       f"{len(u)} pairs (e.g. {example})")
            if unknown == "error":
                raise UnknownIdError(message)
            if unknown == "fallback":
                warn(message + (fallback_note or f"; {self.unknown_fallback}"), UnknownIdWarning)
        return u, i, ~(bad_u | bad_i)

    @reads_state
    def predict(self, users, items=None, clip=True, unknown="fallback", *, columns=None,
                user_features=None, item_features=None):
        """Predicted ratings for the (user, item) pairs, as an array of the model's dtype.

        One user id and one item id give one number; one id of either kind with a
        list of the other pairs it with each (``predict(1, [50, 181])``). A table
        with user and item columns (a pandas DataFrame ..., named as for ``fit``,
        ``columns=``) instead of the two: a pandas DataFrame gives a pandas Series
        named "prediction" on the frame's index (``test["pred"] = model.predict(test)``).

        ``clip`` keeps predictions within the training rating range. An unknown
        user or item contributes no bias and no factors, so the prediction falls
        back to ``mu + b_i`` (or ``mu + b_u``, or ``mu``) and an
        ``UnknownIdWarning`` counts them (``unknown="fallback"``);
        ``unknown="nan"`` returns NaN for those pairs instead, and
        ``unknown="error"`` raises ``KeyError``.

        ``user_features``/``item_features`` (a model fitted with side features: ALS,
        BayesianMF; tables as for its ``fit``): an id unseen in training that has a row
        there is predicted from its features (cold start), its bias and factors the sum
        of its features' weights; the warning counts them. Known ids keep what they
        learnt in training (their rows there are not read).
        """
        self._check_fitted()
        users, items, _, index = rating_arrays(users, items, columns=columns,
                                               need_ratings=False, what="predict")
        users, items, single = pair_arguments(users, items)
        model = self
        if user_features is None and item_features is None:
            u, i, known = self._indices(users, items, unknown)
        else:
            u, i, known, cold = self._cold_pairs(users, items, unknown, user_features,
                                                 item_features)
            model, u, i = self._with_cold_rows(cold, u, i)
        out = model._predict_rows(u, i, clip)
        if unknown == "nan":
            out[~known] = np.nan
        return out[0] if single else labelled(out, index, "prediction")

    def _predict_rows(self, u, i, clip, seconds=None):
        """Predictions for int32 rows (-1: unknown, no bias and no factors), in a parallel kernel;
        ``seconds`` (the pairs' times) only for a model with time terms, which overrides this."""
        if seconds is not None:
            raise no_time_terms()
        out = np.empty(len(u), dtype=self.user_factors_.dtype)
        lo, hi = self.rating_range_ if clip else (-np.inf, np.inf)
        _predict.predict(u, i, self.user_factors_, self.item_factors_, self.user_bias_,
                             self.item_bias_, self.global_mean_, lo, hi, out, self._threads())
        return out

    def _rmse_rows(self, u, i, r):
        """RMSE of the clipped predictions for rows u, i against ratings r, in a kernel."""
        lo, hi = self.rating_range_
        sse = _predict.squared_error(u, i, r, *self._parameters(), self.global_mean_, lo, hi,
                                         self._threads())
        return float(np.sqrt(sse / len(r)))

    @reads_state
    def evaluate(self, users, items=None, ratings=None, clip=True, *, columns=None, times=None):
        """RMSE and MAE of the predictions for held-out ratings, with the count of unknown ids.

        The ratings are three arrays or a table, as for ``fit``. Returns a dict:
        ``rmse``, ``mae``, ``n`` (ratings scored), ``unknown_users`` and
        ``unknown_items`` (pairs whose user, or item, the model does not know).
        Unknown ids are predicted as in ``predict`` (the fallback), counted, not warned about.
        ``times``: the ratings' times, for a model with time terms (``mfcore.timeterms``).
        """
        self._check_fitted()
        users, items, ratings, _ = rating_arrays(users, items, ratings, columns,
                                                 what="evaluate")
        ratings = as_ratings(ratings, np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownIdWarning)
            u, i, _ = self._indices(users, items, "fallback")
        check_lengths(pairs=u, ratings=ratings)
        if times is not None:
            from .timeterms import as_seconds
            times = as_seconds(times, len(u))
        pred = self._predict_rows(u, i, clip, seconds=times)
        return {"rmse": rmse(ratings, pred), "mae": mae(ratings, pred), "n": int(len(ratings)),
                "unknown_users": int((u < 0).sum()), "unknown_items": int((i < 0).sum())}

    # --- recommending -----------------------------------------------------------

    @reads_state
    def recommend(self, users, n=10, exclude_seen=None, items=None, unknown="fallback",
                  rank_by=None, as_frame=False, *, user_features=None):
        """The ``n`` best items for one user or a batch, best first: ``(items, scores)``.

        What "best" means (``rank_by``):

        * ``"prediction"``: the highest predicted rating, ``predict(user, item,
          clip=False)`` (unclipped, so the top of the scale does not tie). Good
          for ranking items the user will surely meet (a shortlist in
          ``items``, a catalogue page): which of them would the user rate highest.
        * ``"choice"`` (the default of the rating estimators): the prediction
          plus ``1.5 * rating_scale_ * log(1 + n_i)``, ``n_i`` the item's
          training ratings (``item_counts_``): a choice model, P(user picks i)
          ∝ (1 + n_i) ``exp(prediction / (1.5 rating_scale_))``. A model trained on
          ratings alone learns how people rate what they chose, not what they
          choose: ranked by prediction over the whole catalogue its lists fill
          with items a few people rated highly, and lose to recommending the
          most-rated items (NDCG@10 on ML-1M: ALS 0.003, BayesianMF 0.067,
          most-rated 0.105). Weighing in how often an item is chosen beats the
          most-rated items with every estimator (``benchmarks/ranking.py``).
          For top-N over a whole catalogue an estimator that learns from which
          items were rated is stronger still (see the README's "Recommending").

        ``rank_by=None`` is the model's default (``default_rank_by``;
        "prediction" for files saved before mfcore kept ``item_counts_``).
        Scores are what was ranked by (the predicted rating, or it plus the
        choice term); equal scores rank by item row.

        ``items`` restricts the candidates to these raw ids (unknown ones raise
        ``KeyError``). ``exclude_seen`` skips the items the user rated in
        training (kept in the model and saved with it); its default, None,
        skips them when ranking the whole catalogue and keeps them when
        ``items`` is given, so that re-ranking a list ranks all of it
        (``recommend(1, items=[50, 181, 258])`` returns all three, rated or not).
        ``as_frame=True`` returns one long pandas DataFrame instead, columns
        user, rank (1 = best), item, score, a row per recommendation (no padding)::

            top = model.recommend(test["user"].unique(), n=10, as_frame=True)

        One raw user id gives 1-d arrays with at most ``n`` entries: fewer when
        fewer candidates remain (none for a user who has seen every candidate,
        or for an empty ``items``). A list/array of ids gives 2-d arrays of
        shape (len(users), min(n, number of candidates)): an ``n`` beyond the
        catalogue costs nothing; a row with fewer candidates left is padded
        with score NaN and item ``-1`` (integer ids) or ``""`` (string ids):
        test ``np.isnan(scores)``, not the id. A user unknown to the model gets
        the most popular items (the most rated in training, ``item_counts_``),
        scored by ``mu + b_i`` (plus the choice term; so those scores need not
        descend), and an ``UnknownIdWarning``; ``unknown="error"`` raises
        ``KeyError`` instead. Runs in a parallel kernel with partial selection:
        memory O(users x n).

        >>> import mfcore
        >>> model = mfcore.ALS(k=2, iterations=3).fit([1, 1, 2, 2, 3], [10, 11, 10, 12, 11],
        ...                                           [5, 3, 4, 2, 4])
        >>> items, scores = model.recommend(3, n=5)   # item 11 is seen: two candidates left
        >>> sorted(items.tolist())
        [10, 12]

        ``user_features`` (a model fitted with user features; a table as for ``fit``):
        users unseen in training that have a row there are ranked from their features
        (cold start), each item scored as ``predict(user, item, user_features=...)``
        scores it (unclipped); they have seen nothing. Other users are ranked as without.

        >>> import pandas as pd
        >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
        >>> people = pd.DataFrame({"group": ["a", "b"] * 50}, index=range(100))
        >>> als = mfcore.ALS(k=4, iterations=5, seed=0).fit(ratings, user_features=people)
        >>> newcomers = pd.DataFrame({"group": ["a", "b"]}, index=[1000, 1001])
        >>> items, scores = als.recommend([1000, 1001], n=5, user_features=newcomers)
        >>> items.shape
        (2, 5)
        """
        self._check_fitted()
        model = self
        if user_features is not None:
            cold = self._cold_side("user", np.atleast_1d(to_numpy(users)), user_features)
            model = self._with_cold_rows({"user": cold, "item": None})[0]
        return _recommend.recommend(model, users, n, exclude_seen, items, unknown, rank_by,
                                    as_frame)

    @reads_state
    def similar_items(self, items, n=10):
        """The ``n`` items whose factors are most cosine-similar to each of ``items``.

        Returns ``(items, similarities)`` like ``recommend`` (one id: 1-d;
        several: 2-d rows of ``min(n, n_items - 1)``, padded); the item itself
        is left out. Unknown ids raise ``KeyError``.
        """
        self._check_fitted()
        return _recommend.similar(self, "item", items, n)

    @reads_state
    def similar_users(self, users, n=10):
        """The ``n`` users most cosine-similar to ``users`` by factors; see ``similar_items``."""
        self._check_fitted()
        return _recommend.similar(self, "user", users, n)

    # --- side features: cold start ----------------------------------------------------

    def _feature_rows(self, side, raw, table, known_too=False):
        """The feature values of the ids of ``raw`` unknown to the model (all of them with
        ``known_too``: fold-in) that ``table`` has a row for: (ids, index (per position of
        ``raw``: the id's place among ``ids``, -1 for others), (rows among ``ids``,
        features, values)). ValueError when the model has no ``side`` features."""
        encoding = getattr(self, f"{side}_feature_encoding_", None)
        if encoding is None:
            raise ValueError(f"{side}_features given, but this model was fitted without "
                             f"{side} features")
        raw = normalize_ids(to_numpy(raw), f"{side}s")
        idmap = getattr(self, f"{side}_map_")
        unknown = sorted_unique(raw if known_too else raw[idmap.lookup(raw, f"{side}s") < 0])
        (rows, feats, vals), present = encoding.encode(table, unknown, f"{side}_features")
        ids = unknown[present]
        where = np.cumsum(present) - 1      # an unknown id's row among ``ids``
        index = np.full(len(raw), -1, np.int64)
        if len(ids):
            index = IdMap(ids).lookup(raw).astype(np.int64)
        return ids, index, (where[rows], feats, vals)

    def _cold_side(self, side, raw, table, known_too=False):
        """The rows predicted from their features for the ids of ``raw`` (see
        ``_feature_rows``): dict(ids, index, rows (n, k + 1): bias, then factors, the sums
        of their features' weights ``{side}_feature_weights_``); None without a table."""
        if table is None:
            return None
        ids, index, (rows, feats, vals) = self._feature_rows(side, raw, table, known_too)
        theta = getattr(self, f"{side}_feature_weights_")
        return {"ids": ids, "index": index,
                "rows": feature_sums(rows, feats, vals, theta, len(ids))}

    def _cold_parameters(self, cold):
        """(bias, factors) in the layout of the fitted arrays of the rows of ``cold``
        (``_cold_side``'s)."""
        return cold["rows"][:, 0], cold["rows"][:, 1:]

    def _cold_pairs(self, users, items, unknown, user_features, item_features):
        """(user rows, item rows, known, cold) of ``predict``'s pairs with feature tables:
        ``cold`` per side ``_cold_side``'s (or None); ``known`` counts an unknown id with a
        feature row as known. The unknown-id warning says which ids the features served."""
        cold = {side: self._cold_side(side, ids, table) for side, ids, table in
                (("user", users, user_features), ("item", items, item_features))}
        used = [f"the {int((c['index'] >= 0).sum())} pair(s) of {len(c['ids'])} unknown "
                f"{side} id(s) with a feature row predicted from their features"
                for side, c in cold.items() if c is not None]
        note = "; " + " and ".join(used) + f", the others {self.unknown_fallback}"
        u, i, known = self._indices(users, items, unknown, fallback_note=note)
        for c in cold.values():
            if c is not None:
                known |= c["index"] >= 0
        return u, i, known, cold

    def _with_cold_rows(self, cold, u=None, i=None):
        """(a snapshot of this model with rows appended for the ids of ``cold`` (per side
        ``_cold_side``'s or None; ``_cold_parameters`` gives the rows; nothing seen, never
        rated), and ``u``, ``i`` (rows of pairs, -1 unknown) pointing at them)."""
        model = self._snapshot()
        for side, rows in (("user", u), ("item", i)):
            c = cold.get(side)
            if c is None or not len(c["ids"]):
                continue
            bias, factors = self._cold_parameters(c)
            n_old, n_new = len(getattr(self, f"{side}_map_")), len(c["ids"])
            setattr(model, f"{side}_map_", IdMap(np.concatenate(
                [getattr(self, f"{side}_map_").ids, c["ids"]])))
            for name, new in ((f"{side}_factors_", factors), (f"{side}_bias_", bias)):
                old = getattr(self, name)
                setattr(model, name, np.concatenate([old, new.astype(old.dtype)]))
            if side == "user" and self.seen_indptr_ is not None:
                model.seen_indptr_ = np.concatenate([self.seen_indptr_, np.full(
                    n_new, self.seen_indptr_[-1], dtype=self.seen_indptr_.dtype)])
            if side == "item" and self.item_counts_ is not None:
                model.item_counts_ = np.concatenate([self.item_counts_,
                                                     np.zeros(n_new, np.int64)])
            if rows is not None:
                at = c["index"] >= 0
                rows = rows.copy()
                rows[at] = n_old + c["index"][at]
                u, i = (rows, i) if side == "user" else (u, rows)
        return model, u, i

    # --- fold-in ------------------------------------------------------------------

    def _fold_in_penalty(self, shrinkage):
        """(reg, reg_bias, base, count_weight, bias_shrinkage) of fold-in's row objective (see
        ``fold_in`` and ``mfcore._kernels.rowsolve.solve_rows``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define fold-in's penalty")

    def _fold_in_rows(self, indptr, items, ratings, shrinkage, prior=None):
        """(factors, bias, extra) of the users whose ratings of item rows ``items`` are the
        CSR rows ``indptr``: the least-squares solve of ``fold_in`` in the row-solve kernel,
        the penalties centred on ``prior`` (n, k + 1: bias, factors; ``_fold_in_prior``)
        if given. ``extra``: further per-user fitted arrays by attribute name (none here)."""
        n, k = len(indptr) - 1, self.user_factors_.shape[1]
        factors = np.empty((n, k), self.user_factors_.dtype)
        bias = np.empty(n, self.user_factors_.dtype)
        reg, reg_bias, base, count_weight, bias_shrinkage = self._fold_in_penalty(shrinkage)
        centre = {} if prior is None else {
            "prior_factors": np.ascontiguousarray(prior[:, 1:], np.float64),
            "prior_bias": np.ascontiguousarray(prior[:, 0], np.float64)}
        solve_rows(indptr, items, ratings, self.item_factors_, self.item_bias_, self.global_mean_,
                   reg, reg_bias, base, count_weight, True, factors, bias, self._threads(),
                   bias_shrinkage, **centre)
        return factors, bias, {}

    def _fold_in_prior(self, ids, user_features):
        """Per user of ``ids`` the centre of its row's penalty from its side features
        (n, k + 1: bias, factors; ``_cold_side``), zero for a user without a feature row:
        the solve then fits what the features leave of its ratings."""
        cold = self._cold_side("user", ids, user_features, known_too=True)
        out = np.zeros((len(ids),) + cold["rows"].shape[1:])
        has = cold["index"] >= 0
        out[has] = cold["rows"][cold["index"][has]]
        return out

    def _fold_in_data(self, users, items, ratings):
        """fold_in's ratings checked, of known items, duplicates merged: (the new users'
        ``IdMap``, their rows, item rows, ratings); ValueError for a user left without one."""
        ratings = as_ratings(ratings, self.user_factors_.dtype)
        lo, hi = self.rating_range_
        margin = (hi - lo) or 1.0
        outside = (ratings < lo - margin) | (ratings > hi + margin)
        if self.predicts_ratings and outside.any():
            warn(f"fold_in: rating {plain(ratings[outside][0])!r} is far outside the training "
                 f"ratings' range {lo:g} to {hi:g} ({int(outside.sum())} such rating(s)): "
                 "are they on another scale?", UserWarning)
        items = normalize_ids(to_numpy(items), "items")
        if np.ndim(users) == 0:
            users = normalize_ids(np.array([users] * len(items), dtype=object), "users")
        else:
            users = normalize_ids(to_numpy(users), "users")
        if check_lengths(users=users, items=items, ratings=ratings) == 0:
            raise ValueError("fold_in needs at least one rating")
        self.user_map_._check_kind(users, "users")
        i = self.item_map_.lookup(items, "items")
        if (i < 0).any():
            warn(f"fold_in: ignored {int((i < 0).sum())} rating(s) of items unknown to the "
                 f"model (e.g. {plain(items[i < 0][0])!r}): they have no factors", UnknownIdWarning)
        fold_map, fu = IdMap.fit(users, "users")
        keep = i >= 0
        fu, i, r, _, _ = merge_duplicates(fu[keep], i[keep], ratings[keep], fold_map,
                                       self.item_map_, getattr(self, "duplicates", "mean"))
        counts = np.bincount(fu, minlength=len(fold_map))
        if (counts == 0).any():
            raise ValueError(f"fold_in: user {plain(fold_map.ids[np.flatnonzero(counts == 0)[0]])!r} "
                             "has no rating of an item known to the model")
        return fold_map, fu, i, r

    def fold_in(self, users, items=None, ratings=None, shrinkage=None, *, columns=None,
                user_features=None):
        """Add users (or refresh known ones) from their ratings without retraining; return self.

        ``users`` is one raw id (for all the ratings) or one per rating (or the
        three are one table, as for ``fit``). Each
        user's bias and factors are solved exactly, items held fixed, as a
        small regularized least-squares problem::

            min_b,p  sum_j (r_j - mu - b_i(j) - b - p.q_j)^2 + lam_p |p|^2 + lam_b b^2

        with the penalties of the estimator (see its ``fold_in`` notes); for
        every estimator ``shrinkage`` adds that many ratings' worth of penalty
        (None: the estimator's default, ``fold_in_shrinkage``). The solve runs
        in the same row-solve kernel as ALS, users in parallel.

        A new user is appended to ``user_map_``; a known user's row is
        replaced (its previous parameters and seen items are forgotten: pass
        its whole history). Ratings of items unknown to the model are ignored
        with an ``UnknownIdWarning``; duplicates follow ``duplicates``. The
        user's rated items become its seen items for ``recommend``.

        ``user_features`` (a model fitted with user features: ALS, BayesianMF): the
        users' feature rows, which combine with their ratings: the features set the
        centre of the penalty (BayesianMF: the prior mean), so the solve fits what they
        leave of the ratings; a user without a row there is solved as without.
        """
        model = self._snapshot()  # (published whole at the end)
        model._check_fitted()
        users, items, ratings, _ = rating_arrays(users, items, ratings, columns, what="fold_in")
        shrinkage = model.fold_in_shrinkage if shrinkage is None else shrinkage
        if not is_real(shrinkage) or shrinkage < 0:
            raise ValueError(f"shrinkage must be a finite number >= 0, got {shrinkage!r}")
        fold_map, fu, i, r = model._fold_in_data(users, items, ratings)
        counts = np.bincount(fu, minlength=len(fold_map))
        order = np.argsort(fu, kind="stable")
        indptr = np.zeros(len(fold_map) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        prior = {} if user_features is None else {
            "prior": model._fold_in_prior(fold_map.ids, user_features)}
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # (checked below)
                new_factors, new_bias, extra = model._fold_in_rows(
                    indptr, np.ascontiguousarray(i[order], dtype=np.int32),
                    np.ascontiguousarray(r[order]), float(shrinkage), **prior)
        except np.linalg.LinAlgError as exc:
            raise ValueError(f"fold_in: a user's least-squares system is singular ({exc}); "
                             "give it more ratings or a larger shrinkage") from None
        if not all(np.isfinite(a).all() for a in (new_factors, new_bias, *extra.values())):
            raise ValueError("fold_in: the solve gave non-finite parameters (ratings or the "
                             "model's values too large for its dtype)")

        # Known users get their rows refreshed, new users are appended (to a copy of the
        # map: nothing changes until the new state is published whole).
        n_old = len(model.user_map_)
        user_map = IdMap(model.user_map_.ids)
        target = user_map.extend(fold_map.ids, "users")
        rows = {"user_factors_": new_factors, "user_bias_": new_bias, **extra}
        grown = {}
        for name, new in rows.items():  # one row per user: appended or replaced
            old = getattr(model, name)
            grown[name] = np.concatenate([old, np.zeros((len(user_map) - n_old,) + old.shape[1:],
                                                        old.dtype)])
            grown[name][target] = new
        n_users = len(user_map)
        seen = None
        if model.seen_indptr_ is not None:
            seen = replace_seen_rows(model.seen_indptr_, model.seen_items_, target[fu], i,
                                     n_users, len(model.item_map_))
        fitted = {name: value for name, value in vars(model).items() if name.endswith("_")}
        fitted.update(grown, user_map_=user_map)
        if seen is not None:
            fitted["seen_indptr_"], fitted["seen_items_"] = seen
        self._publish(fitted)
        return self

    # --- persistence ----------------------------------------------------------------

    @reads_state
    def save(self, path, seen_items=True):
        """Write the model to one file atomically (see ``mfcore.persistence``).

        ``seen_items=False`` leaves out the items each user rated in training (4 bytes a
        training rating, 2 with at most 65,536 items: most of a large model's file, 4 GB
        of 6 at 1e9 ratings, docs/posterior.md); the loaded model predicts, ranks and
        folds in as before but cannot ``recommend(exclude_seen=True)``."""
        persistence.save_model(self, path, seen_items=seen_items)

    def _fitted_state(self):
        """The arrays that define a fitted model, as a file holds them (None when unfitted):
        the id maps, the ``STATE`` arrays present, the summary numbers and the training
        record (JSON)."""
        if not self._is_fitted():
            return None
        state = {"user_ids": self.user_map_.ids, "item_ids": self.item_map_.ids,
                 "global_mean": np.float64(self.global_mean_),
                 "rating_range": np.asarray(self.rating_range_, dtype=np.float64),
                 "n_ratings": np.int64(self.n_ratings_),
                 "history": np.str_(json.dumps(self.history_)),
                 "training": np.str_(json.dumps({
                     "rng": self.rng_.bit_generator.state, "best_epoch": self.best_epoch_,
                     "n_epochs": self.n_epochs_, "rating_scale": self.rating_scale_,
                     "stop_reason": self.stop_reason_}))}
        for field in self.STATE:
            value = getattr(self, field.name + "_")
            if value is not None:
                state[field.name] = value
        for side in ("user", "item"):
            encoding = getattr(self, f"{side}_feature_encoding_", None)
            if encoding is not None:
                state.update(encoding.to_state(f"{side}_feature"))
        if "seen_items" in state and len(self.item_map_) <= 1 << 16:
            # 2 bytes an item row where they fit (every MovieLens set): the seen items are
            # most of a saved model (4 bytes a training rating against ~1.5 for factors)
            state["seen_items"] = state["seen_items"].astype(np.uint16)
        return state

    def _state_sizes(self, state, columns):
        """The sizes ``STATE``'s shapes name, for a state read from a file whose factor
        arrays should have ``columns`` columns."""
        n_users, n_items = len(state["user_ids"]), len(state["item_ids"])
        return {"users": n_users, "items": n_items, "users+1": n_users + 1, "columns": columns}

    def _attach_state(self, state, sizes, dtype):
        """Check a fitted state read from a file (``persistence.migrate`` brought it to the
        current schema) and attach it; ``ValueError`` names the problem. ``sizes``
        (``_state_sizes``) and ``dtype`` are what the file's hyperparameters say the arrays
        must have. Nothing is attached unless everything checks."""
        state = dict(state)
        if state.get("seen_items") is not None and state["seen_items"].dtype == np.uint16:
            state["seen_items"] = state["seen_items"].astype(np.int32)  # saved compactly
        for field in _SUMMARY + self.STATE:
            if state.get(field.name) is not None:
                field.check(state[field.name], sizes, dtype)
            elif not field.optional:
                raise ValueError(f"{field.name} is missing")
        known = {field.name for field in _SUMMARY + self.STATE}.union(_RECORD, self.STATE_EXTRA)
        unknown = sorted(set(state) - known)
        if unknown:  # (covered by no check: refused, whatever other tools would show of it)
            raise ValueError(f"state.{shown(unknown[0], quote=False)} is not part of the fitted "
                             f"state of {type(self).__name__}")
        lo, hi = (float(v) for v in state["rating_range"])
        if lo > hi:
            raise ValueError(f"rating_range {lo}..{hi} is empty")
        check_magnitudes(state, sizes["columns"], dtype)
        self._check_state(state, sizes, dtype)
        if (state.get("seen_indptr") is None) != (state.get("seen_items") is None):
            raise ValueError("seen_indptr and seen_items come together")
        if state.get("seen_indptr") is not None:
            check_seen(state["seen_indptr"], state["seen_items"], sizes["users"], sizes["items"])
        maps = IdMap(state["user_ids"]), IdMap(state["item_ids"])
        record = training_record(state)
        widest = max((hi - lo) / 2, 1.0)  # (ratings within lo..hi spread at most this much)
        if record["rating_scale"] > widest * (1 + 1e-6):
            raise ValueError(f"rating_scale {record['rating_scale']!r} is more than ratings from "
                             f"{lo:g} to {hi:g} can spread ({widest:g})")
        rng = _generator_from_state(record["rng"])
        for field in self.STATE:
            value = state.get(field.name)
            setattr(self, field.name + "_", None if value is None else np.ascontiguousarray(value))
        self.user_map_, self.item_map_ = maps
        for side in ("user", "item"):
            if f"{side}_feature_encoding" in self.STATE_EXTRA:
                setattr(self, f"{side}_feature_encoding_",
                        FeatureEncoding.from_state(state, f"{side}_feature")
                        if state.get(f"{side}_feature_encoding") is not None else None)
        self.global_mean_ = float(state["global_mean"])
        self.rating_range_ = (lo, hi)
        self.n_ratings_, self.history_ = record["n_ratings"], record["history"]
        self.rng_ = rng
        self.best_epoch_, self.n_epochs_ = record["best_epoch"], record["n_epochs"]
        self.rating_scale_, self.stop_reason_ = record["rating_scale"], record["stop_reason"]
        return self

    def _check_state(self, state, sizes, dtype):
        """Checks beyond ``STATE``'s shapes and dtypes (none here; BayesianMF's samples)."""
