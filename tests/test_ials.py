"""ImplicitALS beyond the contract: its example, fold-in's known answer, values, edge cases."""
import doctest
import warnings

import numpy as np
import pytest

import mfcore
from mfcore.estimators import ials


def _pairs(seed=0, n_users=60, n_items=40, per_user=6):
    """Each user picks ``per_user`` distinct items of its group's quarter of the catalogue."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    group = n_items // 4
    items = np.concatenate([(u % 4) * group + rng.choice(group, per_user, replace=False)
                            for u in range(n_users)])
    return users, items, rng.integers(1, 6, len(users)).astype(float)


def test_the_docstring_example_runs():
    assert doctest.testmod(ials, raise_on_error=True).attempted > 0


@pytest.mark.parametrize("targets", ["values", "ones"])
def test_fold_in_solves_the_users_row_of_the_objective_exactly(targets):
    users, items, values = _pairs()
    model = mfcore.ImplicitALS(k=5, iterations=4, alpha=2.0, targets=targets, dtype="float64",
                               duplicates="keep").fit(users, items, values)
    mine = [3, 7, 7, 12]
    counts = np.array([1.0, 2.0, 2.0, 5.0])
    model.fold_in(10**6, mine, counts)
    # the dense minimiser of sum_obs c (t - s)^2 + w0 sum_all s^2 + reg (C + w0 n) / norm
    # (|p|^2 + b^2), norm the training users' mean weight
    rows = model.item_map_.lookup(np.array(mine), "items")
    A = np.c_[model.item_factors_, np.ones(len(model.item_factors_))]
    c = 1 + 2.0 * counts / values.mean()
    t = counts / values.mean() if targets == "values" else np.ones(4)
    w0, reg = model.unobserved_weight, model.reg
    M = w0 * A.T @ A + (A[rows] * c[:, None]).T @ A[rows]
    conf = 1 + 2.0 * values / values.mean()
    norm = conf.sum() / 60 + w0 * len(A)                            # 60 training users
    assert np.isclose(model.penalty_norm_, norm, rtol=1e-12)
    M += np.eye(6) * reg * (c.sum() + w0 * len(A)) / norm
    rhs = -w0 * A.T @ model.item_bias_ + A[rows].T @ (c * (t - model.item_bias_[rows]))
    x = np.linalg.solve(M, rhs)
    assert model.user_map_.ids[-1] == 10**6
    assert np.allclose(model.user_factors_[-1], x[:5], atol=1e-10)
    assert np.isclose(model.user_bias_[-1], x[5], atol=1e-10)


def test_values_are_targets_over_their_mean_and_their_scale_does_not_matter():
    users, items, values = _pairs()
    plain = mfcore.ImplicitALS(k=4, iterations=3).fit(users, items)
    ones = mfcore.ImplicitALS(k=4, iterations=3).fit(users, items, np.full(len(users), 7.0))
    assert np.array_equal(plain.user_factors_, ones.user_factors_)     # all equal: targets 1
    fit = lambda v: mfcore.ImplicitALS(k=4, iterations=3, reg=1.0,  # noqa: E731 (tiny data)
                                       dtype="float64").fit(users, items, v)
    rated, scaled = fit(values), fit(values * 60)
    assert np.allclose(rated.user_factors_, scaled.user_factors_, atol=1e-10)
    assert not np.allclose(rated.user_factors_, plain.user_factors_.astype(float), atol=1e-3)
    assert rated.rating_range_ == (0.0, 5.0 / values.mean())          # clipped to the top target
    # a pair the user rated higher scores higher, all else equal: its target is larger
    high = rated.predict(users, items)[values == 5].mean()
    assert high > rated.predict(users, items)[values == 1].mean() + 0.1


def test_with_targets_ones_values_only_weigh_pairs_through_alpha():
    users, items, values = _pairs()
    plain = mfcore.ImplicitALS(k=4, iterations=3).fit(users, items)
    ignored = mfcore.ImplicitALS(k=4, iterations=3, targets="ones").fit(users, items, values)
    assert np.array_equal(plain.user_factors_, ignored.user_factors_)
    weighed = mfcore.ImplicitALS(k=4, iterations=3, alpha=1.0, targets="ones", dtype="float64")
    scaled = mfcore.ImplicitALS(k=4, iterations=3, alpha=1.0, targets="ones", dtype="float64")
    weighed.fit(users, items, values)
    scaled.fit(users, items, values * 60.0)
    assert not np.allclose(weighed.user_factors_, plain.user_factors_.astype(float), atol=1e-3)
    assert np.allclose(weighed.user_factors_, scaled.user_factors_, atol=1e-10)


@pytest.mark.parametrize("settings", [{"alpha": 1.0, "targets": "ones"}, {}],
                         ids=["alpha", "targets"])
def test_negative_values_are_refused_where_values_are_used(settings):
    users, items, values = _pairs()
    with pytest.raises(ValueError, match="values >= 0"):
        mfcore.ImplicitALS(k=4, iterations=2, **settings).fit(users, items, values - 3.0)
    with pytest.raises(ValueError, match="positive mean"):                # all-zero values
        mfcore.ImplicitALS(k=4, iterations=2, **settings).fit(users, items, values * 0.0)
    with pytest.raises(ValueError, match="values >= 0"):
        mfcore.ImplicitALS(k=4, iterations=2, **settings).fit(users, items).fold_in(
            10**6, [1, 2], [1.0, -1.0])
    ignored = mfcore.ImplicitALS(k=4, iterations=2, targets="ones")   # values unused: fine
    assert np.isfinite(ignored.fit(users, items, values - 3.0).user_factors_).all()


def test_fold_in_takes_counts_on_any_scale_without_a_rating_range_warning():
    users, items, values = _pairs()
    model = mfcore.ImplicitALS(k=4, iterations=2).fit(users, items, values)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fold_in(10**6, [1, 2, 3], [50.0, 200.0, 0.0])           # counts, not ratings
    assert model.user_map_.ids[-1] == 10**6 and not model.predicts_ratings


def test_k_beyond_the_catalogue_and_n_beyond_the_candidates_are_documented_results():
    users, items, _ = _pairs(n_items=40)
    model = mfcore.ImplicitALS(k=64, iterations=3).fit(users, items)  # k > 40 items: fine
    assert np.isfinite(model.item_factors_).all()
    top, scores = model.recommend(0, n=100)  # fewer candidates than n: all of them, best first
    assert len(top) == 40 - len(set(items[users == 0])) and (np.diff(scores) <= 0).all()


def test_predictions_are_preference_scores_in_zero_one():
    users, items, _ = _pairs()
    model = mfcore.ImplicitALS(k=4, iterations=5, reg=1.0).fit(users, items)  # (tiny data)
    assert model.global_mean_ == 0.0 and model.rating_range_ == (0.0, 1.0)
    seen = model.predict(users, items)
    unseen = model.predict(users, (items + 10) % 40)  # another group's items
    assert seen.min() >= 0 and seen.max() <= 1 and seen.mean() > unseen.mean() + 0.3


def test_one_two_and_three_threads_give_the_same_model_bit_for_bit():
    users, items, values = _pairs(n_users=90, n_items=60)
    fits = [mfcore.ImplicitALS(k=6, iterations=3, n_threads=n).fit(users, items, values)
            for n in (1, 2, 3)]
    for other in fits[1:]:
        for a, b in zip(fits[0]._parameters(), other._parameters()):
            assert np.array_equal(a, b)
        assert fits[0].penalty_norm_ == other.penalty_norm_


def test_a_file_without_the_penalty_norm_folds_in_with_the_unnormalised_penalty(tmp_path):
    """Files written before ``penalty_norm`` was kept were trained with reg times the raw
    row weight: loading one keeps None, and fold_in divides by 1, as they did."""
    users, items, values = _pairs()
    model = mfcore.ImplicitALS(k=4, iterations=3, dtype="float64").fit(users, items, values)
    norm, model.penalty_norm_ = model.penalty_norm_, None
    model.save(tmp_path / "old.mfz")
    old = mfcore.load(tmp_path / "old.mfz")
    assert old.penalty_norm_ is None
    old.fold_in(10**6, [3, 7], [4.0, 5.0])
    model.penalty_norm_, model.reg = norm, model.reg * norm     # the same penalty, normalised
    model.fold_in(10**6, [3, 7], [4.0, 5.0])
    assert np.allclose(old.user_factors_[-1], model.user_factors_[-1], atol=1e-12)
