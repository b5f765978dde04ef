"""scikit-learn adapter: ``MFRegressor``, a regressor on ``X = [user, item]`` columns.

scikit-learn is an optional dependency: this module needs it, ``mfcore`` does
not. The estimators themselves already follow the estimator conventions
(``get_params``/``set_params``, ``sklearn.base.clone``); ``MFRegressor``
(``mfcore.SGD``), ``ALSRegressor`` (``mfcore.ALS``), ``BayesianMFRegressor``
(``mfcore.BayesianMF``; ``predict(X, return_std=True)``) and
``regressor_for(estimator_class)`` add the ``fit(X, y)`` / ``predict(X)``
shape that ``GridSearchCV``, ``cross_val_score`` and pipelines expect::

    from sklearn.model_selection import GridSearchCV, KFold
    from mfcore.sklearn import MFRegressor

    folds = KFold(5, shuffle=True, random_state=0)
    search = GridSearchCV(MFRegressor(), {"k": [32, 64], "reg": [0.04, 0.06, 0.08]},
                          scoring="neg_root_mean_squared_error", cv=folds)
    search.fit(df[["user", "item"]], df["rating"])

Scoring convention: ``MFRegressor.score`` is scikit-learn's regressor default,
R^2 (higher is better). For RMSE pass
``scoring="neg_root_mean_squared_error"`` (scikit-learn negates errors so
that higher is always better: -0.92 beats -0.95). Test pairs whose user or
item was not in a fold's training part get the model's fallback prediction
(``predict``), with an ``UnknownIdWarning``; ``warn_unknown=False`` (a parameter of
every regressor, beside the estimator's) silences it, e.g. for a search over many
folds. Shuffle the folds
(``KFold(shuffle=True)``, as above): rating files are often grouped by user,
and unshuffled folds then test on users the fold never trained on.
"""
import inspect
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, RegressorMixin
except ImportError as exc:  # pragma: no cover - exercised by a test that hides sklearn
    raise ImportError("mfcore.sklearn needs scikit-learn, an optional dependency: "
                      "pip install scikit-learn") from exc

from .errors import NotFittedError, UnknownIdWarning
from .estimators import ALS, SGD, BayesianMF

__all__ = ["MFRegressor", "ALSRegressor", "BayesianMFRegressor", "regressor_for"]


def _user_item(X):
    """The user and item columns of ``X`` (2-d array-like or DataFrame with two columns)."""
    if hasattr(X, "iloc"):  # pandas DataFrame, without importing pandas
        if X.ndim != 2 or X.shape[1] != 2:
            raise ValueError(f"X must have exactly two columns (user, item), got shape {X.shape}")
        return X.iloc[:, 0].to_numpy(), X.iloc[:, 1].to_numpy()
    arr = np.asarray(X)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"X must have exactly two columns (user, item), got shape {arr.shape}")
    return arr[:, 0], arr[:, 1]


class _Regressor(RegressorMixin, BaseEstimator):
    """An mfcore estimator as a scikit-learn regressor: ``X`` holds (user id, item id) rows.

    A subclass per estimator (``regressor_for``) takes exactly that
    estimator's hyperparameters (same names and defaults), plus
    ``warn_unknown`` (default True): False silences the ``UnknownIdWarning``
    of predictions for ids the fit did not see. After ``fit``, ``model_`` is the
    fitted estimator (for ``recommend``, ``similar_items``, ``save`` ...). See
    the module docstring for scoring.
    """

    estimator_class = None
    param_specs = ()  # the estimator's signature parameters (set by ``regressor_for``)
    #: the regressor's own parameters, after the estimator's
    own_specs = (inspect.Parameter("warn_unknown", inspect.Parameter.KEYWORD_ONLY, default=True),)

    def __init__(self, **params):
        names = self.param_specs + self.own_specs
        unknown = set(params) - {p.name for p in names}
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected parameter(s) {sorted(unknown)}")
        for p in names:
            setattr(self, p.name, params.get(p.name, p.default))

    def fit(self, X, y):
        """Fit the estimator on the (user, item) rows of ``X`` and ratings ``y``; return self."""
        users, items = _user_item(X)
        params = {p.name: getattr(self, p.name) for p in self.param_specs}
        self.model_ = self.estimator_class(**params).fit(users, items, np.asarray(y).ravel())
        self.n_features_in_ = 2
        return self

    def predict(self, X, return_std=False):
        """Predicted ratings (float64) for the (user, item) rows of ``X``; with
        ``return_std`` (``BayesianMFRegressor`` only, as scikit-learn's Bayesian
        regressors have it) also the predictive standard deviations."""
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")
        if return_std and "return_std" not in inspect.signature(self.model_.predict).parameters:
            raise ValueError(f"return_std needs a model with predictive uncertainty "
                             f"(BayesianMFRegressor); {type(self).__name__} has none")
        users, items = _user_item(X)
        with warnings.catch_warnings():
            if not self.warn_unknown:
                warnings.simplefilter("ignore", UnknownIdWarning)
            if return_std:
                mean, std = self.model_.predict(users, items, return_std=True)
                return mean.astype(np.float64), std
            return self.model_.predict(users, items).astype(np.float64)


#: The regressor class of each estimator class (one class each, so that pickle finds it).
_REGRESSORS = {}


def regressor_for(estimator_class, name=None):
    """The scikit-learn regressor class for an mfcore estimator class (its hyperparameters,
    read from its signature, become the regressor's, as scikit-learn expects).

    One class per estimator class, bound in this module under its name, so
    fitted regressors pickle (joblib, ``GridSearchCV(n_jobs=...)``).

    Examples
    --------
    >>> import mfcore
    >>> from mfcore.sklearn import regressor_for
    >>> Regressor = regressor_for(mfcore.ALS)
    >>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
    >>> X, y = ratings[["user", "item"]].to_numpy(), ratings.rating.to_numpy()
    >>> Regressor(k=4, iterations=3).fit(X, y).predict(X[:2]).shape
    (2,)
    """
    if estimator_class in _REGRESSORS:
        return _REGRESSORS[estimator_class]
    specs = [p for p in inspect.signature(estimator_class.__init__).parameters.values()
             if p.name != "self"]

    def __init__(self, **params):
        _Regressor.__init__(self, **params)

    # scikit-learn reads the hyperparameters from the signature of __init__.
    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in specs]
        + list(_Regressor.own_specs))
    name = name or f"{estimator_class.__name__}Regressor"
    cls = type(name, (_Regressor,), {
        "__init__": __init__, "estimator_class": estimator_class, "param_specs": tuple(specs),
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"``mfcore.{estimator_class.__name__}`` as a scikit-learn regressor: ``X`` "
                   "holds (user id, item id) rows, ``y`` the ratings. Its parameters are "
                   f"those of ``mfcore.{estimator_class.__name__}`` (same names and "
                   "defaults), plus ``warn_unknown`` (default True; False silences the "
                   "UnknownIdWarning of ids the fit did not see). After ``fit``, ``model_`` "
                   "is the fitted estimator (recommend, save ...).\n\n"
                   "Examples\n--------\n"
                   ">>> import mfcore\n"
                   f">>> from mfcore.sklearn import {name}\n"
                   ">>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, "
                   "n_ratings=3000, seed=0)\n"
                   '>>> X, y = ratings[["user", "item"]].to_numpy(), ratings.rating.to_numpy()\n'
                   f">>> {name}(k=4).fit(X, y).predict(X[:2]).shape\n"
                   "(2,)\n"})
    _REGRESSORS[estimator_class] = globals()[name] = cls
    return cls


MFRegressor = regressor_for(SGD, "MFRegressor")
ALSRegressor = regressor_for(ALS)
BayesianMFRegressor = regressor_for(BayesianMF)
