"""cross_validate: one fresh fit per fold, per-fold scores with mean and std."""
import numpy as np
import pytest

import mfcore
from mfcore import datasets, split
from mfcore.model_selection import cross_validate

pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def data():
    return datasets.synthetic(n_users=200, n_items=100, n_ratings=6_000, min_per_user=5,
                              noise=0.3, seed=0)


def test_cross_validate_reports_each_fold_and_summary(data):
    model = mfcore.Model(k=4, epochs=15, seed=0, n_threads=1)
    result = cross_validate(model, data, cv=3, seed=1)
    assert len(result["test_rmse"]) == len(result["test_mae"]) == len(result["fit_time"]) == 3
    assert result["mean_test_rmse"] == pytest.approx(np.mean(result["test_rmse"]))
    assert result["std_test_rmse"] == pytest.approx(np.std(result["test_rmse"]))
    assert result["mean_test_mae"] < result["mean_test_rmse"]
    # the planted structure is learnable: well below the spread of the ratings
    assert result["mean_test_rmse"] < 0.9 * data["rating"].std()
    assert not hasattr(model, "user_factors_")          # the given model stays unfitted
    again = cross_validate(model, data, cv=3, seed=1)
    np.testing.assert_allclose(again["test_rmse"], result["test_rmse"])


def test_cross_validate_takes_explicit_folds(data):
    folds = [split.per_user_split(data, 0.2, seed=s) for s in range(2)]
    result = cross_validate(mfcore.Model(k=2, epochs=3), data, cv=folds)
    assert len(result["test_rmse"]) == 2 and (result["unknown"] >= 0).all()
    with pytest.raises(ValueError, match="no folds"):
        cross_validate(mfcore.Model(), data, cv=[])


def test_search_names_a_class_passed_instead_of_an_instance(make_planted):
    u, i, r = make_planted(n_users=30, n_items=20, density=0.5)
    with pytest.raises(ValueError, match=r"estimator instance such as ALS\(\)"):
        mfcore.search(u, i, r, {"reg": [0.1]}, base=mfcore.ALS)

