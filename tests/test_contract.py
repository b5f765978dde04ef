"""Every estimator runs the shared contract suite (tests/contract.py) by declaring itself."""
import numpy as np
import pytest

import mfcore

from contract import EstimatorContract


class TestSGD(EstimatorContract):
    estimator = mfcore.SGD
    fast = {"k": 4, "epochs": 3}
    planted = {"k": 8, "epochs": 60, "lr": 0.02, "reg": 0.02}
    diverging = {"lr": 50.0}


class TestALS(EstimatorContract):
    estimator = mfcore.ALS
    fast = {"k": 4, "iterations": 3}
    planted = {"k": 4, "iterations": 10, "reg": 0.02}


class TestBayesianMF(EstimatorContract):
    estimator = mfcore.BayesianMF
    fast = {"k": 4, "n_samples": 4, "burn_in": 1}
    planted = {"k": 4, "n_samples": 60, "burn_in": 20}


class TestBayesianMFImplicit(EstimatorContract):
    estimator = mfcore.BayesianMF
    fast = {"k": 4, "n_samples": 4, "burn_in": 1, "implicit": True}
    planted = {"k": 4, "n_samples": 60, "burn_in": 20, "implicit": True}


class TestBayesianMFOrdinal(EstimatorContract):
    """The ordered probit on the planted ratings rounded to stars (an ordinal scale)."""
    estimator = mfcore.BayesianMF
    fast = {"k": 4, "n_samples": 4, "burn_in": 1, "likelihood": "ordered_probit"}

    @pytest.fixture
    def data(self, make_planted):
        users, items, ratings = make_planted(n_users=120, n_items=90, density=0.3, seed=3)
        return users, items, np.clip(np.round(ratings), 1, 5)

    def test_planted_low_rank_data_is_recovered_near_its_noise(self, make_planted, train_test):
        """Stars cut from the planted ratings: the expected rating predicts them at least as
        well as the Gaussian model does."""
        users, items, ratings = make_planted(noise=0.3)
        (tu, ti, tr), (vu, vi, vr) = train_test(users, items, np.clip(np.round(ratings), 1, 5))
        settings = {"k": 4, "n_samples": 40, "burn_in": 20}
        probit = self.estimator(**settings, likelihood="ordered_probit").fit(tu, ti, tr)
        gaussian = self.estimator(**settings).fit(tu, ti, tr)
        assert (probit.evaluate(vu, vi, vr)["rmse"]
                <= gaussian.evaluate(vu, vi, vr)["rmse"] + 0.005)


class TestImplicitALS(EstimatorContract):
    estimator = mfcore.ImplicitALS
    fast = {"k": 4, "iterations": 3}
    values_optional = True

    @pytest.fixture
    def data(self, make_planted):
        """Its values are counts or ratings >= 0 (targets over their mean): the planted
        ratings, of which a few fall below 0, clipped there."""
        users, items, ratings = make_planted(n_users=120, n_items=90, density=0.3, seed=3)
        return users, items, np.maximum(ratings, 0.0)

    def test_planted_low_rank_data_is_recovered_near_its_noise(self):
        """A top-N model's planted answer is which items a user chooses: users of 6 groups
        pick 8 of their group's 30 items (and 5% strays); the top 5 are of the own group."""
        rng = np.random.default_rng(0)
        users = np.repeat(np.arange(240), 8)
        own = (users % 6) * 30 + rng.integers(0, 30, len(users))
        items = np.where(rng.random(len(users)) < 0.05, rng.integers(0, 180, len(users)), own)
        model = self.estimator(k=6, iterations=10, reg=1.0,  # (tiny data: a smaller penalty)
                               duplicates="keep").fit(users, items)
        top, _ = model.recommend(np.arange(240), n=5)
        assert np.mean(top // 30 == (np.arange(240) % 6)[:, None]) > 0.95
