"""BayesianMF: predictive uncertainty (calibrated, wider where data are few), exact save/load,
bit-identical fits for any thread count, the kept-sample bookkeeping."""
import copy as copy_module

import numpy as np
import pytest

import mfcore


@pytest.fixture(scope="module")
def planted_fit():
    rng = np.random.default_rng(7)
    n_users, n_items, k = 300, 200, 3
    P, Q = rng.normal(0, 0.6, (n_users, k)), rng.normal(0, 0.6, (n_items, k))
    # user activity from 3 to 120 ratings: some users are barely known
    counts = np.clip(np.round(rng.pareto(1.2, n_users) * 8) + 3, 3, 120).astype(int)
    users = np.repeat(np.arange(n_users), counts)
    items = np.concatenate([rng.choice(n_items, c, replace=False) for c in counts])
    r = 3.0 + np.einsum("nk,nk->n", P[users], Q[items]) + rng.normal(0, 0.4, len(users))
    test = rng.random(len(r)) < 0.2
    model = mfcore.BayesianMF(k=5, n_samples=80, burn_in=30, seed=1, dtype="float64")
    model.fit(users[~test], items[~test], r[~test])
    return model, (users[test], items[test], r[test]), np.bincount(users[~test], minlength=n_users)


def test_central_90_percent_interval_is_calibrated_on_held_out_data(planted_fit):
    model, (u, i, r), _ = planted_fit
    mean, std = model.predict(u, i, clip=False, return_std=True)
    inside = np.abs(r - mean) <= 1.6448536 * std
    assert 0.85 <= inside.mean() <= 0.95
    assert np.sqrt(np.mean((mean - r) ** 2)) < 0.55  # noise 0.4


def test_users_with_few_ratings_get_wider_intervals(planted_fit):
    model, (u, i, r), counts = planted_fit
    _, std = model.predict(u, i, return_std=True)
    n = counts[u]
    assert std[n <= 5].mean() > std[n >= 40].mean() + 0.02


def test_std_of_unknown_ids_keeps_the_known_side_and_the_noise(planted_fit):
    model, (u, i, _), _ = planted_fit
    with pytest.warns(mfcore.UnknownIdWarning):
        mean, std = model.predict([10**6, u[0]], [i[0], 10**6], return_std=True)
    noise = np.sqrt(np.mean(1 / model.alpha_samples_))
    assert np.all(std >= noise) and np.all(np.isfinite(mean))
    _, std_nan = model.predict([10**6], [i[0]], return_std=True, unknown="nan")
    assert np.isnan(std_nan).all()


def test_save_load_predicts_mean_and_std_exactly(tmp_path, planted_fit):
    model, (u, i, _), _ = planted_fit
    model.save(tmp_path / "b.mfz")
    loaded = mfcore.load(tmp_path / "b.mfz")
    assert type(loaded) is mfcore.BayesianMF and loaded.n_kept_ == model.n_kept_
    for a, b in zip(model.predict(u, i, return_std=True), loaded.predict(u, i, return_std=True)):
        assert np.array_equal(a, b)


def test_fits_are_bit_identical_for_1_2_3_and_8_threads(make_planted):
    u, i, r = make_planted(n_users=80, n_items=60, density=0.3, seed=4)
    fits = [mfcore.BayesianMF(k=4, n_samples=6, burn_in=2, n_threads=t).fit(u, i, r)
            for t in (1, 2, 3, 8)]
    for other in fits[1:]:
        for name in ("user_factors_", "item_factors_", "user_bias_samples_", "alpha_samples_"):
            assert np.array_equal(getattr(fits[0], name), getattr(other, name)), name


def test_kept_samples_thinning_and_history(make_planted):
    u, i, r = make_planted(n_users=50, n_items=40, density=0.3, seed=5)
    model = mfcore.BayesianMF(k=3, n_samples=10, burn_in=4, thin=3).fit(u, i, r)
    assert model.n_kept_ == 3 and model.user_factors_.shape == (50, 9)   # sweeps 7, 10, 13
    assert model.n_epochs_ == 14 and [h["epoch"] for h in model.history_] == list(range(1, 15))
    assert all(h["alpha"] > 0 for h in model.history_)
    auto = mfcore.BayesianMF(k=1024, n_samples=10, burn_in=0)
    assert auto._thin(auto._checked_params()) == 5  # at most 2048 // 1024 = 2 samples kept


def test_fold_in_gives_a_new_user_a_mean_and_a_std(planted_fit):
    model, _, _ = planted_fit
    rows = model.item_map_.ids[:12]
    copy = copy_module.deepcopy(model)  # the module's fixture is shared: fold into a copy
    copy.fold_in(10**7, rows, np.full(12, 5.0))
    mean, std = copy.predict([10**7] * 3, rows[:3], return_std=True)
    assert np.all(mean > copy.global_mean_) and np.all(np.isfinite(std))
    assert copy.user_bias_samples_.shape == (len(copy.user_map_), copy.n_kept_)


@pytest.fixture(scope="module")
def cold_fit():
    """A planted model fitted without 40 of its users and 30 of its items (cold ids)."""
    rng = np.random.default_rng(11)
    n_users, n_items, k = 400, 300, 3
    P, Q = rng.normal(0, 0.6, (n_users, k)), rng.normal(0, 0.6, (n_items, k))
    bu, bi = rng.normal(0, 0.4, n_users), rng.normal(0, 0.4, n_items)
    u, i = np.nonzero(rng.random((n_users, n_items)) < 0.15)
    r = 3.0 + bu[u] + bi[i] + np.einsum("nk,nk->n", P[u], Q[i]) + rng.normal(0, 0.4, len(u))
    cold_users, cold_items = np.arange(40), np.arange(30)
    cold = np.isin(u, cold_users) | np.isin(i, cold_items)
    test = cold | (rng.random(len(r)) < 0.1)
    model = mfcore.BayesianMF(k=5, n_samples=80, burn_in=30, seed=1, dtype="float64")
    model.fit(u[~test], i[~test], r[~test])
    return model, (u, i, r), test, cold_users, cold_items


def test_unknown_ids_get_the_priors_spread_and_their_intervals_cover(cold_fit):
    model, (u, i, r), test, cold_users, cold_items = cold_fit
    new_user = test & np.isin(u, cold_users) & ~np.isin(i, cold_items)
    new_item = test & np.isin(i, cold_items) & ~np.isin(u, cold_users)
    known = test & ~np.isin(u, cold_users) & ~np.isin(i, cold_items)
    with pytest.warns(mfcore.UnknownIdWarning):
        mean, std = model.predict(u, i, clip=False, return_std=True)
    for group in (new_user, new_item):
        assert std[group].mean() > std[known].mean() + 0.15  # the prior's spread
        inside = np.abs(r[group] - mean[group]) <= 1.6448536 * std[group]
        assert 0.85 <= inside.mean() <= 0.95, inside.mean()
    inside = np.abs(r[known] - mean[known]) <= 1.6448536 * std[known]
    assert 0.85 <= inside.mean() <= 0.95


def test_fold_in_std_reflects_how_few_ratings_the_user_gave(cold_fit):
    model, (u, i, r), test, cold_users, cold_items = copy_module.deepcopy(cold_fit)
    known_items = ~np.isin(i, cold_items)
    stds, covered = {}, []
    for n_given in (2, 25):
        for user in cold_users[:20]:
            mine = np.flatnonzero((u == user) & known_items)
            given, scored = mine[:n_given], mine[n_given:]
            if not len(scored):
                continue
            model.fold_in(10**6 + 1000 * n_given + user,
                          i[given], r[given])
            mean, std = model.predict(np.full(len(scored), 10**6 + 1000 * n_given + user),
                                      i[scored], clip=False, return_std=True)
            stds.setdefault(n_given, []).append(std.mean())
            if n_given == 2:
                covered.append(np.abs(r[scored] - mean) <= 1.6448536 * std)
    assert np.mean(stds[2]) > np.mean(stds[25]) + 0.1
    assert 0.85 <= np.concatenate(covered).mean() <= 0.95
    # the same ratings fold in to the same row every time (draws keyed on the data)
    again = copy_module.deepcopy(model)
    user = cold_users[0]
    mine = np.flatnonzero((u == user) & known_items)[:2]
    model.fold_in(7, i[mine], r[mine])
    again.fold_in(7, i[mine], r[mine])
    assert np.array_equal(model.predict(7, i[:5], return_std=True)[1],
                          again.predict(7, i[:5], return_std=True)[1])


def test_return_std_reaches_the_sklearn_regressor_and_the_cli(tmp_path, capsys, cold_fit):
    pytest.importorskip("sklearn")
    from mfcore.cli import main
    from mfcore.sklearn import BayesianMFRegressor, MFRegressor
    model, (u, i, r), test, _, _ = cold_fit
    X = np.c_[u[~test], i[~test]][:2000]
    reg = BayesianMFRegressor(k=3, n_samples=10, burn_in=5).fit(X, r[~test][:2000])
    mean, std = reg.predict(X[:50], return_std=True)
    want = reg.model_.predict(X[:50, 0], X[:50, 1], return_std=True)
    np.testing.assert_array_equal(std, want[1])
    assert mean.dtype == np.float64 and np.all(std > 0)
    sgd = MFRegressor(k=2, epochs=1).fit(X, r[~test][:2000])
    with pytest.raises(ValueError, match="return_std needs a model with predictive"):
        sgd.predict(X[:5], return_std=True)
    path = tmp_path / "b.mfz"
    model.save(path)
    assert main(["predict", str(path), "--user", str(u[0]), str(u[1]), "--item", str(i[0]),
                 str(i[1]), "--std"]) in (0, None)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "user,item,prediction,std" and len(lines) == 3
    want_mean, want_std = model.predict(u[:2], i[:2], return_std=True)
    assert float(lines[1].split(",")[3]) == pytest.approx(want_std[0], abs=1e-4)
    sgd.model_.save(tmp_path / "s.mfz")
    assert main(["predict", str(tmp_path / "s.mfz"), "--user", "1", "--item", "1", "--std"]) == 1
    assert "--std needs a model with predictive uncertainty" in capsys.readouterr().err
