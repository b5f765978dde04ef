"""scikit-learn interplay: clone, GridSearchCV, cross_val_score (skipped without scikit-learn)."""
import importlib
import sys
import warnings

import numpy as np
import pytest

import mfcore
from mfcore.errors import NotFittedError, UnknownIdWarning


@pytest.fixture
def sk():
    return pytest.importorskip("sklearn", reason="scikit-learn is optional and not installed")


@pytest.fixture
def data(make_planted):
    users, items, ratings = make_planted(n_users=120, n_items=90, rank=3, density=0.5, noise=0.3)
    return np.column_stack([users, items]), ratings


def test_adapter_without_sklearn_says_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.base", None)
    monkeypatch.delitem(sys.modules, "mfcore.sklearn", raising=False)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        importlib.import_module("mfcore.sklearn")
    assert mfcore.Model().get_params()["k"] == 64  # the core does not need it


def test_clone_of_model_and_adapter(sk):
    from sklearn.base import clone
    from mfcore.sklearn import MFRegressor

    model = mfcore.Model(k=5, reg=0.1, seed=3)
    copy = clone(model)
    assert type(copy) is mfcore.Model and copy.get_params() == model.get_params()
    reg = MFRegressor(k=7, epochs=3)
    reg_copy = clone(reg)
    assert reg_copy.get_params() == reg.get_params()
    assert set(reg.get_params()) == set(model.get_params()) | {"warn_unknown"}
    assert "k=7" in repr(reg)
    with pytest.raises(TypeError, match="unexpected"):
        MFRegressor(kk=3)


def test_fit_predict_dataframe_and_string_ids(sk, data):
    import pandas as pd
    from mfcore.sklearn import MFRegressor

    X, y = data
    df = pd.DataFrame({"user": [f"u{u}" for u in X[:, 0]], "item": X[:, 1]})
    reg = MFRegressor(k=4, epochs=30, lr=0.05, n_threads=1).fit(df, y)
    assert isinstance(reg.model_, mfcore.Model)
    pred = reg.predict(df.iloc[:50])
    assert pred.dtype == np.float64 and pred.shape == (50,)
    np.testing.assert_allclose(pred, reg.model_.predict(df["user"][:50], df["item"][:50]))
    assert reg.score(df, y) > 0.5  # R^2 on the training data
    with pytest.raises(ValueError, match="two columns"):
        reg.predict(X[:, :1])
    with pytest.raises(NotFittedError):
        MFRegressor().predict(X)


def test_grid_search_and_cross_val_score(sk, data):
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
    from mfcore.sklearn import MFRegressor

    X, y = data
    cv = KFold(3, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownIdWarning)
        search = GridSearchCV(MFRegressor(epochs=30, lr=0.05, n_threads=1),
                              {"k": [1, 3], "reg": [0.02, 0.5]},
                              scoring="neg_root_mean_squared_error", cv=cv)
        search.fit(X, y)
        scores = cross_val_score(MFRegressor(k=3, epochs=30, lr=0.05, n_threads=1), X, y,
                                 scoring="neg_root_mean_squared_error", cv=cv)
    assert search.best_params_ == {"k": 3, "reg": 0.02}  # the planted rank, light regularization
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert (scores < 0).all() and -scores.mean() < 0.6 * y.std()  # well below predicting the mean
    assert search.best_estimator_.model_.user_factors_.shape[1] == search.best_params_["k"]


def test_als_regressor_in_a_grid_search(sk, data):
    from sklearn.model_selection import GridSearchCV, KFold
    from mfcore.sklearn import ALSRegressor

    X, y = data
    assert set(ALSRegressor().get_params()) == set(mfcore.ALS().get_params()) | {"warn_unknown"}
    search = GridSearchCV(ALSRegressor(k=3, iterations=5), {"reg": [0.02, 2.0]},
                          scoring="neg_root_mean_squared_error",
                          cv=KFold(3, shuffle=True, random_state=0))
    search.fit(X, y)
    assert search.best_params_ == {"reg": 0.02}              # the strong penalty underfits
    assert type(search.best_estimator_.model_) is mfcore.ALS
    assert -search.best_score_ < 0.45


def test_regressors_pickle_and_are_one_class_per_estimator(sk, data):
    import pickle
    from mfcore.sklearn import ALSRegressor, regressor_for

    assert regressor_for(mfcore.ALS) is ALSRegressor
    custom = regressor_for(mfcore.BayesianMF)
    X, y = data
    fitted = ALSRegressor(k=3, iterations=2).fit(X, y)
    again = pickle.loads(pickle.dumps(fitted))
    assert np.array_equal(again.predict(X[:20]), fitted.predict(X[:20]))
    assert pickle.loads(pickle.dumps(custom(k=2))).get_params()["k"] == 2


def test_regressor_can_silence_unknown_id_warnings(sk, data):
    from sklearn.base import clone
    from mfcore.sklearn import MFRegressor

    X, y = data
    unseen = np.array([[10**6, X[0, 1]], [X[0, 0], 10**6]])
    loud = MFRegressor(k=2, epochs=2).fit(X, y)
    with pytest.warns(UnknownIdWarning, match="unknown"):
        expected = loud.predict(unseen)
    quiet = clone(MFRegressor(k=2, epochs=2, warn_unknown=False)).fit(X, y)
    assert quiet.model_.get_params() == loud.model_.get_params()   # not an estimator parameter
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(quiet.predict(unseen), expected)
