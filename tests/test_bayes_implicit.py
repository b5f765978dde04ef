"""BayesianMF(implicit=...): SVD++ and its flipped item side in the estimator: what the
implicit data carry is learnt, thread-count independence, exact save/load, fold-in from the
items given, extra implicit pairs, bad input."""
import copy as copy_module
import warnings

import numpy as np
import pytest

import mfcore


@pytest.fixture(scope="module")
def choice_data():
    """Users who say little by their ratings and much by what they chose: rating = 3 +
    0.8 taste_u sign_i + noise (taste, sign = +-1; items alternate in sign), each user 4
    rated items of both signs, and 24 implicit pairs (viewed, not rated) of items of its
    taste's sign. Returns (users, items, ratings, test mask, implicit users, items)."""
    rng = np.random.default_rng(11)
    n_users, n_items = 300, 120
    sign = np.where(np.arange(n_items) % 2 == 0, 1.0, -1.0)
    taste = np.where(rng.random(n_users) < 0.5, 1.0, -1.0)
    users = np.repeat(np.arange(n_users), 6)
    items = np.concatenate([rng.choice(n_items, 6, replace=False) for _ in range(n_users)])
    ratings = 3.0 + 0.8 * taste[users] * sign[items] + rng.normal(0, 0.3, len(users))
    test = np.tile(np.r_[np.zeros(4, bool), np.ones(2, bool)], n_users)
    imp_u = np.repeat(np.arange(n_users), 24)
    imp_i = np.concatenate([rng.choice(np.flatnonzero(sign == t), 24, replace=False)
                            for t in taste])
    return users, items, ratings, test, imp_u, imp_i


def _rmse(model, u, i, r):
    return float(np.sqrt(np.mean((model.predict(u, i) - r) ** 2)))


@pytest.fixture(scope="module")
def implicit_fit(choice_data):
    u, i, r, test, imp_u, imp_i = choice_data
    model = mfcore.BayesianMF(k=3, n_samples=40, burn_in=20, implicit=True, seed=2)
    return model.fit(u[~test], i[~test], r[~test], implicit=(imp_u, imp_i))


def test_implicit_terms_learn_what_the_choice_of_items_says(choice_data, implicit_fit):
    u, i, r, test, imp_u, imp_i = choice_data
    plain = mfcore.BayesianMF(k=3, n_samples=40, burn_in=20, seed=2).fit(u[~test], i[~test],
                                                                      r[~test])
    own = mfcore.BayesianMF(k=3, n_samples=40, burn_in=20, seed=2, implicit=True).fit(
        u[~test], i[~test], r[~test])  # N(u): the 4 rated items only
    got = {name: _rmse(m, u[test], i[test], r[test])
           for name, m in (("plain", plain), ("own", own), ("extra", implicit_fit))}
    assert got["extra"] < 0.45 and got["extra"] < min(got["plain"], got["own"]) - 0.05, got
    assert implicit_fit.item_implicit_samples_.shape == (120, implicit_fit.n_kept_, 3)
    assert plain.item_implicit_samples_ is None


@pytest.mark.parametrize("implicit", [True, "user", "item"])
def test_fits_are_bit_identical_for_1_2_3_and_8_threads_with_implicit_terms(make_planted,
                                                                            implicit):
    u, i, r = make_planted(n_users=80, n_items=60, density=0.3, seed=4)
    fits = [mfcore.BayesianMF(k=4, n_samples=5, burn_in=2, implicit=implicit,
                              n_threads=t).fit(u, i, r) for t in (1, 2, 3, 8, 2)]
    for other in fits[1:]:
        for name in ("user_factors_", "item_factors_", "user_bias_samples_",
                     "alpha_samples_", "item_implicit_samples_"):
            a, b = getattr(fits[0], name), getattr(other, name)
            assert (a is None and b is None) or np.array_equal(a, b), name


def test_sides_give_different_models_and_plain_stays_plain(make_planted):
    u, i, r = make_planted(n_users=60, n_items=50, density=0.3, seed=6)
    fits = {imp: mfcore.BayesianMF(k=3, n_samples=4, burn_in=1, implicit=imp).fit(u, i, r)
            for imp in (False, "user", "item", "both")}
    assert fits["both"].get_params()["implicit"] == "both"
    factors = [f.user_factors_ for f in fits.values()]
    for a in range(len(factors)):
        for b in range(a + 1, len(factors)):
            assert not np.array_equal(factors[a], factors[b])
    assert fits["item"].item_implicit_samples_ is None


def test_save_load_predicts_mean_and_std_exactly_with_implicit_terms(tmp_path, implicit_fit,
                                                                     choice_data):
    u, i, _, test, _, _ = choice_data
    implicit_fit.save(tmp_path / "svdpp.mfz")
    loaded = mfcore.load(tmp_path / "svdpp.mfz")
    assert loaded.get_params()["implicit"] is True
    assert np.array_equal(loaded.item_implicit_samples_, implicit_fit.item_implicit_samples_)
    for a, b in zip(implicit_fit.predict(u[test], i[test], return_std=True),
                    loaded.predict(u[test], i[test], return_std=True)):
        assert np.array_equal(a, b)


def test_a_file_without_the_implicit_samples_is_refused(tmp_path, implicit_fit):
    broken = copy_module.deepcopy(implicit_fit)
    broken.item_implicit_samples_ = None  # as if written without them
    broken.save(tmp_path / "broken.mfz")
    with pytest.raises(ValueError, match="item_implicit_samples is missing"):
        mfcore.load(tmp_path / "broken.mfz")


def test_fold_in_uses_the_items_given_as_the_new_users_implicit_set(choice_data, implicit_fit):
    u, i, r, test, imp_u, imp_i = choice_data
    model = copy_module.deepcopy(implicit_fit)
    ids = model.item_map_.ids
    plus, minus = ids[ids % 2 == 0][:8], ids[ids % 2 == 1][:8]
    # two new users with the same neutral ratings of different items: only their implicit
    # sets differ, and each should like the items of its set's sign
    model.fold_in(10**6, plus, np.full(8, 3.0))
    model.fold_in(10**6 + 1, minus, np.full(8, 3.0))
    probe = ids[ids % 2 == 0][20:30]
    assert (model.predict([10**6] * 10, probe).mean()
            > model.predict([10**6 + 1] * 10, probe).mean() + 0.3)
    # a known user folded in from its own training ratings predicts about what it did
    mine = (u == 5) & ~test
    before = model.predict([5] * 20, ids[:20])
    model.fold_in(5, i[mine], r[mine])
    after = model.predict([5] * 20, ids[:20])
    assert np.corrcoef(before, after)[0, 1] > 0.5


def test_extra_implicit_pairs_join_n_u(make_planted):
    u, i, r = make_planted(n_users=50, n_items=40, density=0.3, seed=8)
    extra_u, extra_i = np.array([0, 1, 2, 10**6]), np.array([39, 38, 37, 5])
    base = mfcore.BayesianMF(k=3, n_samples=4, burn_in=1, implicit=True).fit(u, i, r)
    with pytest.warns(mfcore.UnknownIdWarning, match="ignored 1 implicit pair"):
        more = mfcore.BayesianMF(k=3, n_samples=4, burn_in=1, implicit=True).fit(
            u, i, r, implicit=(extra_u, extra_i))
    assert not np.array_equal(base.user_factors_, more.user_factors_)
    assert not hasattr(more, "_extra_implicit")
    # the pairs shape N(u) only: the seen items stay the rated ones
    assert np.array_equal(base.seen_items_, more.seen_items_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = mfcore.BayesianMF(k=3, n_samples=4, burn_in=1, implicit=True).fit(
            u, i, r, implicit=(u[:10], i[:10]))  # pairs already in N(u): nothing changes
    assert np.array_equal(base.user_factors_, same.user_factors_)


@pytest.mark.parametrize("kwargs, pairs, match", [
    ({}, ([1], [2]), "fit\\(implicit=...\\) needs implicit terms"),
    ({"implicit": True}, ([1, 2], [2]), "inputs differ in length"),
    ({"implicit": True}, [[1]], "implicit must be a \\(users, items\\) pair"),
    ({"implicit": "users"}, None, "implicit must be False, True, 'user', 'item' or 'both', "
                                  "got 'users'"),
])
def test_bad_implicit_input_raises(make_planted, kwargs, pairs, match):
    u, i, r = make_planted(n_users=20, n_items=20, density=0.3, seed=1)
    model = mfcore.BayesianMF(k=2, n_samples=2, burn_in=0, **kwargs)
    with pytest.raises(ValueError, match=match):
        model.fit(u, i, r, implicit=pairs)
    assert not model._is_fitted()
