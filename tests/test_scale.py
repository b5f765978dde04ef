"""Scale-free training: an affine rescaling of the ratings rescales the fitted model, nothing else.

Every estimator trains on the ratings standardized by their mean and spread, so
fitting ``a r + b`` must give the predictions ``a pred + b`` of fitting ``r``
(up to rounding), whatever the scale.
"""
import warnings

import numpy as np
import pytest

import mfcore
from mfcore.errors import ImplicitFeedbackWarning

from conftest import planted_ratings

ESTIMATORS = {
    "sgd": lambda: mfcore.Model(k=4, epochs=15, dtype="float64", n_threads=2),
    "als": lambda: mfcore.ALS(k=4, iterations=5, dtype="float64", n_threads=2),
    "als_cg": lambda: mfcore.ALS(k=4, iterations=5, solver="cg", dtype="float64", n_threads=2),
    "bayes": lambda: mfcore.BayesianMF(k=4, n_samples=15, burn_in=10, dtype="float64",
                                       n_threads=2),
    "bayes_implicit": lambda: mfcore.BayesianMF(k=4, n_samples=15, burn_in=10, implicit=True,
                                                dtype="float64", n_threads=2),
}
#: half stars, 20-100 points, 0-1, and a shift that puts zero inside the range
SCALES = [(0.5, 0.0), (20.0, 0.0), (0.25, -0.25), (25.0, -20.0)]


@pytest.fixture(scope="module")
def data():
    u, i, r = planted_ratings(n_users=120, n_items=90, density=0.3, seed=4)
    return u, i, np.clip(np.round(r), 1, 5)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("a, b", SCALES)
def test_rescaled_ratings_give_the_rescaled_model(data, name, a, b):
    u, i, r = data
    plain = ESTIMATORS[name]().fit(u, i, r)
    scaled = ESTIMATORS[name]().fit(u, i, a * r + b)
    assert scaled.rating_scale_ == pytest.approx(a * plain.rating_scale_, rel=1e-12)
    pairs = (u[:300], i[::-1][:300])
    np.testing.assert_allclose((scaled.predict(*pairs) - b) / a, plain.predict(*pairs),
                               rtol=1e-7, atol=1e-7)
    loss = [h["train_rmse"] for h in plain.history_]
    np.testing.assert_allclose([h["train_rmse"] / a for h in scaled.history_], loss, rtol=1e-6)


def test_bayes_predictive_std_scales_with_the_ratings(data):
    u, i, r = data
    _, std = ESTIMATORS["bayes"]().fit(u, i, r).predict(u[:50], i[:50], return_std=True)
    _, scaled = ESTIMATORS["bayes"]().fit(u, i, 20.0 * r - 20).predict(u[:50], i[:50],
                                                                       return_std=True)
    np.testing.assert_allclose(scaled / 20.0, std, rtol=1e-6)


def test_fold_in_is_scale_free(data):
    u, i, r = data
    for name in sorted(ESTIMATORS):
        plain = ESTIMATORS[name]().fit(u, i, r)
        scaled = ESTIMATORS[name]().fit(u, i, 0.5 * r)
        sel = u == u[0]
        plain.fold_in(10_000, i[sel], r[sel])
        scaled.fold_in(10_000, i[sel], 0.5 * r[sel])
        np.testing.assert_allclose(scaled.predict([10_000] * 5, i[:5]) / 0.5,
                                   plain.predict([10_000] * 5, i[:5]), rtol=1e-6)


def test_one_distinct_rating_warns_that_it_looks_like_implicit_feedback():
    u, i = np.arange(30) % 7, np.arange(30) % 11
    with pytest.warns(ImplicitFeedbackWarning, match="all 30 training ratings are 1"):
        model = mfcore.Model(k=2, epochs=2).fit(u, i, np.ones(30))
    assert model.rating_scale_ == 1.0 and np.allclose(model.predict(u, i), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mfcore.Model(k=2, epochs=1).fit(u, i, 1.0 + (np.arange(30) % 2))


def test_scale_survives_save_and_partial_fit(data, tmp_path):
    u, i, r = data
    model = mfcore.Model(k=4, epochs=3, dtype="float64").fit(u, i, 10 * r)
    model.save(tmp_path / "m.mfz")
    loaded = mfcore.load(tmp_path / "m.mfz")
    assert loaded.rating_scale_ == model.rating_scale_
    model.partial_fit(u, i, 10 * r)
    loaded.partial_fit(u, i, 10 * r)
    assert np.array_equal(model.user_factors_, loaded.user_factors_)
