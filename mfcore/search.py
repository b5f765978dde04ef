"""Hyperparameter search over any estimator: grid or random, early stopping on held-out ratings.

The data is validated and mapped to rows once and cut into folds once; every
trial trains on those arrays (no copy per trial). Each trial uses early stopping on the
validation part, so ``epochs`` in a grid is an upper bound.
"""
from __future__ import annotations

import contextlib
import itertools
import time
from typing import TYPE_CHECKING

import numpy as np

from . import params as p
from . import progress
from .data import rating_arrays
from .errors import Message, Setting, TrainingDivergedError
from .estimators import SGD

if TYPE_CHECKING:
    pass

__all__ = ["Search", "search"]

MAX_EPOCHS = 200  # the default base model's epoch limit: early stopping ends trials sooner

#: The rules of Search's own options (those of the base estimator are its own).
OPTIONS = {"validation_fraction": p.Interval(float, 0, 1, closed="neither"),
           "cv": p.Optional(p.Interval(int, 2)), "n_iter": p.Optional(p.Interval(int, 1))}


def _candidates(param_grid, n_iter, rng):
    """The parameter dicts to try: the whole grid, or ``n_iter`` random draws from it."""
    if isinstance(param_grid, dict):
        param_grid = [param_grid]
    grid = []
    for sub in param_grid:
        for name, values in sub.items():
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                raise ValueError(f"param_grid[{name!r}] must be a list of values, got {values!r}")
            if len(list(values)) == 0:
                raise ValueError(f"param_grid[{name!r}] is empty")
        names = sorted(sub)
        grid += [dict(zip(names, combo)) for combo in itertools.product(*(list(sub[n]) for n in names))]
    if n_iter is None or n_iter >= len(grid):
        return grid
    pick = rng.choice(len(grid), size=n_iter, replace=False)
    return [grid[j] for j in sorted(pick)]


class Search:
    """Grid or random search over an estimator's hyperparameters, scored by held-out RMSE.

    Parameters
    ----------
    param_grid : dict or list of dicts
        Parameter name -> list of values (e.g. ``{"k": [32, 128], "reg": [0.05, 0.1]}``).
    n_iter : int or None
        None tries the whole grid; an int tries that many random grid points.
    cv : int or None
        None scores on one validation split of ``validation_fraction``; an int
        ``>= 2`` scores by k-fold cross-validation (mean RMSE over folds).
    validation_fraction : float
        Share of the ratings held out when ``cv`` is None.
    base : estimator or None
        The estimator to tune (``mfcore.SGD``, ``mfcore.ALS`` ...): parameters
        not in the grid come from it. Default ``SGD(epochs=MAX_EPOCHS)``:
        every trial stops early on its validation part, so the epoch count
        (``epochs``, ``iterations``) is only an upper bound. A base you pass
        keeps its own count: give a generous one (``ALS(iterations=200)``)
        to let the search find it (``mfcore tune`` raises it to 200 unless
        the flag is given).
    refit : bool
        Refit the best parameters on all ratings, for the best epoch count found.
    seed : int
        Seeds the split, the folds and the random draws.
    verbose : bool
        Print one line per finished trial (parameters, validation RMSE, time).
    callback : callable or None
        Called after each trial as ``callback(number, total, result, error)``: the trial's
        number from 1, the number of trials, its ``results_`` entry and, for a failed
        trial, the reason (an ``errors.Message``, whose settings such as ``lr=50`` a front
        end may spell its own way; None for a trial that finished). ``mfcore tune``
        prints its trial lines this way.

    After ``fit``: ``results_`` (one dict per trial: parameters, mean and std
    validation RMSE, best epoch, seconds, ``status`` and ``error``),
    ``best_params_``, ``best_score_``, (with ``refit``) ``best_model_`` and
    ``complete_`` (True). They are set together when ``fit`` succeeds; a failed
    refit leaves those of the previous ``fit``. Ctrl-C keeps the trials that
    finished: ``results_`` holds them, ``best_params_`` and ``best_score_`` their
    best, ``best_model_`` is None and ``complete_`` False (a note on the
    ``KeyboardInterrupt`` says so).
    A trial whose training diverges (``TrainingDivergedError``, e.g. too large
    a learning rate) does not end the search: it is recorded with status
    "failed", the reason in ``error`` and NaN scores, and the search goes on;
    the best finished trial wins. Only when every trial fails does ``fit``
    raise ``TrainingDivergedError``.

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> search = mfcore.Search({"k": [4, 8]}, base=mfcore.ALS(iterations=20), validation_fraction=0.2)
    >>> search = search.fit(ratings.user, ratings.item, ratings.rating)
    >>> search.best_params_["k"] in (4, 8), len(search.results_frame())
    (True, 2)
    """

    def __init__(self, param_grid, n_iter=None, cv=None, validation_fraction=0.1, base=None,
                 refit=True, seed=0, verbose=False, callback=None):
        self.param_grid = param_grid
        self.n_iter = n_iter
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.base = base
        self.refit = refit
        self.seed = seed
        self.verbose = verbose
        self.callback = callback

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in
                ("param_grid", "n_iter", "cv", "validation_fraction", "base", "refit", "seed",
                 "verbose", "callback")}

    def set_params(self, **params):
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for Search; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def _folds(self, n, rng):
        """(train rows, validation rows) pairs over the n prepared ratings."""
        perm = rng.permutation(n)
        if self.cv is None:
            n_val = max(1, int(round(self.validation_fraction * n)))
            return [(np.sort(perm[n_val:]), np.sort(perm[:n_val]))]
        if self.cv > n:
            raise ValueError(Message("{0} folds but only {1} ratings", Setting("cv", self.cv), n))
        parts = np.array_split(perm, self.cv)
        return [(np.sort(np.concatenate(parts[:j] + parts[j + 1:])), np.sort(parts[j]))
                for j in range(self.cv)]

    def check(self):
        """Validate the options and every grid point without training; raise ValueError
        naming the bad option, parameter or value (``fit`` runs the same checks first).
        Returns the parameter dicts the search will try."""
        return self._checked(self._streams()[0])[1]

    def _streams(self):
        """Independent generators for the random grid draws and for the split, so the
        validation split depends on the seed alone, not on the grid or ``n_iter``."""
        return [np.random.default_rng(child)
                for child in np.random.SeedSequence(self.seed).spawn(2)]

    def _checked(self, rng):
        """(base model, the parameter dicts to try), validated; random draws come from rng."""
        for name, rule in OPTIONS.items():
            if name != "validation_fraction" or self.cv is None:  # (unused with cv)
                rule.check(name, getattr(self, name))
        base = self.base if self.base is not None else SGD(epochs=MAX_EPOCHS)
        if isinstance(base, type):
            raise ValueError(f"base must be an estimator instance such as {base.__name__}(), "
                             f"got the class {base.__name__}")
        if not hasattr(base, "_fit_prepared"):
            raise ValueError(f"base must be an mfcore estimator (SGD, ALS ...), got {base!r}")
        candidates = _candidates(self.param_grid, self.n_iter, rng)
        for params in candidates:
            for name, example in (("validation_fraction", 0.1), ("verbose", True)):
                if name in params:
                    raise ValueError(Message(
                        "{0} is an option of the search itself, the same for every trial, "
                        "not a grid parameter: set it once (e.g. {1})", Setting(name),
                        Setting(name, example)))
            type(base)().set_params(**dict(base.get_params(), **params))._checked_params()
        return base, candidates

    def fit(self, users, items=None, ratings=None, *, columns=None):
        """Run every trial on these ratings (three arrays or a table, as for an estimator's
        ``fit``); return ``self``."""
        users, items, ratings, _ = rating_arrays(users, items, ratings, columns, what="search")
        draws, split = self._streams()
        base, candidates = self._checked(draws)
        prepared = {}  # per dtype: the data mapped once and cut into folds once
        layouts = {}  # per fold: training layouts (they depend on the data alone), built once
        results, errors = [], []  # errors: the failed trials' reasons, as Messages
        folds = None
        estimator = type(base)
        with progress.bar(len(candidates), f"search over {estimator.__name__}", "trials") as bar, \
                self._keeping_finished(results, candidates, base, estimator):
            for params in candidates:
                trial_params = dict(base.get_params(), **params, validation_fraction=None,
                                    verbose=False)
                if base.supports("continue"):  # every trial starts afresh
                    trial_params["warm_start"] = False
                trial = estimator(**trial_params)
                checked = trial._checked_params()
                if checked["dtype"] not in prepared:
                    data = trial._prepare(users, items, ratings, checked)
                    if folds is None:
                        folds = self._folds(len(data), split)
                    prepared[checked["dtype"]] = [(data.subset(tr), (data.u[va], data.i[va],
                                                                     data.r[va]))
                                                  for tr, va in folds]
                start = time.perf_counter()
                scores, epochs, error = [], [], None
                for fold, (train_part, val_part) in enumerate(prepared[checked["dtype"]]):
                    trial = estimator(**trial_params)
                    try:
                        trial._fit_prepared(train_part, val_part, layouts.setdefault(fold, {}))
                    except TrainingDivergedError as exc:
                        error = Message("fold {0}: {1}" if len(folds) > 1 else "{1}", fold + 1,
                                        exc.args[0] if exc.args else "")
                        errors.append(error)
                        break
                    kept = trial.best_epoch_ or trial.n_epochs_  # the epoch the model keeps
                    scored = [h["val_rmse"] for h in trial.history_ if h["epoch"] == kept]
                    # (no epoch run, e.g. epochs=0: the initial model is what it keeps)
                    scores.append(scored[0] if scored else trial._rmse_rows(*val_part))
                    epochs.append(kept)
                if error:
                    results.append(dict(params, val_rmse=np.nan, val_rmse_std=np.nan,
                                        best_epoch=None, seconds=time.perf_counter() - start,
                                        status="failed", error=str(error)))
                else:
                    results.append(dict(params, val_rmse=float(np.mean(scores)),
                                        val_rmse_std=float(np.std(scores)),
                                        best_epoch=int(np.median(epochs)),
                                        seconds=time.perf_counter() - start, status="ok", error=""))
                scored = [r["val_rmse"] for r in results if r["status"] == "ok"]
                bar.update(**({"best_val_rmse": min(scored)} if scored else {}))
                self._report(len(results), len(candidates), params, results[-1], error)
        finished = [r for r in results if r["status"] == "ok"]
        if not finished:
            raise TrainingDivergedError(Message(
                "every one of the {0} trials diverged; the first: {1}", len(results), errors[0]))
        best_params, best_score = self._best(results, candidates, base, estimator)
        model = None
        if self.refit:
            if self.verbose:
                print("refit: " + " ".join(f"{k}={v}" for k, v in best_params.items())
                      + f" on all {len(ratings):,} ratings", flush=True)
            model = estimator(**dict(base.get_params(), **best_params))
            try:
                model.fit(users, items, ratings)
            except KeyboardInterrupt as exc:
                self._publish_partial(results, candidates, base, estimator, exc,
                                      "during the refit")
                raise
        # all together, only now: never new results beside an old or unfitted best_model_
        self.results_, self.best_params_, self.best_score_ = results, best_params, best_score
        self.complete_ = True
        if self.refit:
            self.best_model_ = model
        return self

    @staticmethod
    def _best(results, candidates, base, estimator):
        """(best_params, best_score) of the finished trials."""
        best = min((r for r in results if r["status"] == "ok"), key=lambda r: r["val_rmse"])
        params = {name: best[name] for name in candidates[results.index(best)]}
        if base.supports("early_stopping"):  # trials stopped early: refit that long
            params[estimator.epochs_param] = best["best_epoch"]
        return params, best["val_rmse"]

    @contextlib.contextmanager
    def _keeping_finished(self, results, candidates, base, estimator):
        try:
            yield
        except KeyboardInterrupt as exc:
            self._publish_partial(results, candidates, base, estimator, exc,
                                  f"after {len(results)} of {len(candidates)} trials")
            raise

    def _publish_partial(self, results, candidates, base, estimator, exc, when):
        """On Ctrl-C: keep the trials that finished (``results_``, their best, no
        ``best_model_``, ``complete_`` False) and say so on the interrupt."""
        if not any(r["status"] == "ok" for r in results):
            return
        best_params, best_score = self._best(results, candidates, base, estimator)
        self.results_, self.best_params_, self.best_score_ = list(results), best_params, best_score
        self.complete_, self.best_model_ = False, None
        note = (f"Search interrupted {when}: results_ keeps the {len(results)} of "
                f"{len(candidates)} trials that finished, best_params_ the best of them; "
                "best_model_ is None (no refit)")
        if hasattr(exc, "add_note"):
            exc.add_note(note)

    def _report(self, number, total, params, result, error):
        """A finished trial: to the callback, and printed if verbose."""
        if self.callback is not None:
            self.callback(number, total, result, error)
        if self.verbose:
            outcome = (f"failed: {error}" if error is not None else
                       f"val RMSE {result['val_rmse']:.4f} (best epoch {result['best_epoch']}, "
                       f"{result['seconds']:.1f} s)")
            progress.write(f"trial {number}/{total}: "
                           + " ".join(f"{k}={v}" for k, v in params.items()) + f" -> {outcome}")

    def results_frame(self):
        """``results_`` as a pandas DataFrame sorted by validation RMSE (failed trials last)."""
        import pandas as pd
        frame = pd.DataFrame(self.results_)
        frame["best_epoch"] = frame["best_epoch"].astype("Int64")  # <NA> for a failed trial
        return frame.sort_values("val_rmse", na_position="last", kind="stable").reset_index(
            drop=True)


def search(users, items=None, ratings=None, param_grid=None, *, columns=None, **options):
    """Run a ``Search`` over ``param_grid`` on these ratings and return it fitted.

    The ratings are three arrays or one table (then the grid comes second)::

        best = mfcore.search(users, items, ratings, {"k": [32, 64]}, validation_fraction=0.1)
        best = mfcore.search(ratings_df, {"k": [32, 64]}, cv=3)

    ``options`` are ``Search``'s (``n_iter``, ``cv``, ``validation_fraction``,
    ``base``, ``refit``, ``seed``, ``verbose``); see ``help(mfcore.Search)``.

    Examples
    --------
    >>> import mfcore
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> best = mfcore.search(ratings.user, ratings.item, ratings.rating, {"reg": [0.05, 0.1]},
    ...                      base=mfcore.ALS(k=4, iterations=20), validation_fraction=0.2)
    >>> best.best_params_["reg"] in (0.05, 0.1)
    True
    """
    if ratings is None and param_grid is None and (
            isinstance(items, dict) or (isinstance(items, list) and items
                                        and all(isinstance(g, dict) for g in items))):
        items, param_grid = None, items   # search(table, grid)
    if param_grid is None:
        raise TypeError("search needs a param_grid, e.g. {'k': [32, 64]}")
    return Search(param_grid, **options).fit(users, items, ratings, columns=columns)
