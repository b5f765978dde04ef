"""Data sets: the synthetic generator and MovieLens fetch/cache/checksum (offline, file:// URLs)."""
import numpy as np
import pytest

from mfcore import datasets

pd = pytest.importorskip("pandas")


# --- synthetic ---------------------------------------------------------------------

def test_synthetic_preset_has_the_exact_shape_and_dtypes():
    df = datasets.synthetic("ml-100k", seed=1)
    assert list(df.columns) == ["user", "item", "rating"]
    assert [str(t) for t in df.dtypes] == ["int32", "int32", "float32"]
    assert len(df) == 100_000
    assert df["user"].nunique() == 943 and df["item"].nunique() == 1_682
    assert df["user"].min() == 1 and df["user"].max() == 943
    assert df["item"].min() == 1 and df["item"].max() == 1_682


def test_synthetic_rows_are_valid_and_realistic():
    df = datasets.synthetic(n_users=300, n_items=200, n_ratings=12_000, min_per_user=5, seed=3)
    assert not df.duplicated(["user", "item"]).any()
    per_user = df.groupby("user").size()
    assert per_user.min() >= 5 and len(per_user) == 300
    assert df.groupby("item").size().min() >= 1 and df["item"].nunique() == 200
    assert per_user.max() > 3 * per_user.median()          # power-law activity: heavy users
    assert set(np.unique(df["rating"])) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.2 < df["rating"].mean() < 3.8
    assert df["user"].is_monotonic_increasing


def test_synthetic_is_reproducible_with_a_seed():
    a = datasets.synthetic("ml-100k", seed=7)
    b = datasets.synthetic("ml-100k", seed=7)
    c = datasets.synthetic("ml-100k", seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_synthetic_truth_explains_the_ratings():
    df, truth = datasets.synthetic(n_users=400, n_items=300, n_ratings=20_000, noise=0.3,
                                   seed=0, return_truth=True)
    u, i = df["user"].to_numpy() - 1, df["item"].to_numpy() - 1
    score = (truth["global_mean"] + truth["user_bias"][u] + truth["item_bias"][i]
             + np.einsum("nk,nk->n", truth["user_factors"][u], truth["item_factors"][i]))
    np.testing.assert_allclose(score, truth["expected"], rtol=1e-5, atol=1e-5)
    residual = df["rating"].to_numpy() - np.clip(score, 1, 5)
    # noise 0.3 plus rounding (uniform, sd 0.29) gives an RMSE near 0.42
    assert 0.3 < np.sqrt(np.mean(residual ** 2)) < 0.5
    assert np.corrcoef(score, df["rating"])[0, 1] > 0.8


@pytest.mark.parametrize("kwargs, match", [
    ({"preset": "ml-30m"}, "unknown preset"),
    ({"n_users": 0}, "n_users"),
    ({"n_ratings": 10, "n_users": 5, "n_items": 50, "min_per_user": 3}, "fewer than n_users"),
    ({"n_ratings": 100, "n_users": 5, "n_items": 200}, "fewer than n_items"),
    ({"n_ratings": 1000, "n_users": 10, "n_items": 100}, "more than 60%"),
    ({"k": 0}, "k must be"),
    ({"noise": -1.0}, "noise"),
    ({"n_items": 2.5}, "n_items"),
])
def test_synthetic_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        datasets.synthetic(**kwargs)
