"""BayesianMF's kept posterior bounded by ``posterior_mb``: thinning to the budget, the summary
posterior (exact moments of every sweep, calibrated std, saved and loaded, bit-identical for any
thread count), what it refuses, and the predictive-std kernel."""
import copy as copy_module

import numpy as np
import pytest

import mfcore
from mfcore._kernels import predict as _predict
from mfcore.estimators.bayes import MIN_KEPT_SAMPLES, sample_bytes

SETTINGS = dict(k=4, n_samples=40, burn_in=10, seed=3, dtype="float64")


@pytest.fixture(scope="module")
def planted(make_planted_module):
    u, i, r = make_planted_module
    test = np.random.default_rng(0).random(len(r)) < 0.2
    return (u[~test], i[~test], r[~test]), (u[test], i[test], r[test])


@pytest.fixture(scope="module")
def make_planted_module():
    from conftest import planted_ratings
    return planted_ratings(n_users=150, n_items=100, density=0.3, noise=0.4, seed=2)


@pytest.fixture(scope="module")
def both(planted):
    """The same chain kept as every sample (thin=1) and as a summary (posterior_mb=0)."""
    train, _ = planted
    samples = mfcore.BayesianMF(thin=1, **SETTINGS).fit(*train)
    summary = mfcore.BayesianMF(posterior_mb=0, **SETTINGS).fit(*train)
    return samples, summary


def test_the_summary_holds_the_exact_moments_of_every_sweep_after_burn_in(both):
    samples, summary = both
    S, k = samples.n_kept_, samples.k
    assert S == SETTINGS["n_samples"] and summary.n_kept_ == 0 and summary._summarized()
    for side in ("user", "item"):
        factors = getattr(samples, f"{side}_factors_").reshape(-1, S, k) * np.sqrt(S)
        bias = getattr(samples, f"{side}_bias_samples_")
        np.testing.assert_allclose(getattr(summary, f"{side}_factors_"), factors.mean(axis=1),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(getattr(summary, f"{side}_bias_"), bias.mean(axis=1),
                                   rtol=1e-9, atol=1e-12)
        std = getattr(summary, f"{side}_posterior_std_")
        assert std.dtype == np.float16 and std.shape == (len(bias), k + 1)
        np.testing.assert_allclose(std[:, 1:].astype(float), factors.std(axis=1), rtol=1e-3)
        np.testing.assert_allclose(std[:, 0].astype(float), bias.std(axis=1), rtol=1e-3)
    np.testing.assert_allclose(summary.noise_variance_[0], np.mean(1 / samples.alpha_samples_),
                               rtol=1e-12)
    hyper = samples.user_hyper_samples_                                     # (S, 2, k + 1)
    np.testing.assert_allclose(summary.user_prior_[0], hyper[:, 0].mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(summary.user_prior_[1], np.mean(1 / hyper[:, 1], axis=0)
                               + hyper[:, 0].var(axis=0), rtol=1e-9)


def test_the_summary_std_is_the_independent_coordinates_formula(both, planted):
    _, summary = both
    (u, i, _), _ = planted
    query_u = np.concatenate([u[:20], [10**6]])
    query_i = np.concatenate([i[:20], [i[0]]])
    with pytest.warns(mfcore.UnknownIdWarning):
        mean, std = summary.predict(query_u, query_i, clip=False, return_std=True)
    rows_u, rows_i = summary.user_map_.lookup(query_u), summary.item_map_.lookup(query_i)
    for n, (a, b) in enumerate(zip(rows_u, rows_i)):
        if a >= 0:
            mu = np.r_[summary.user_bias_[a], summary.user_factors_[a]]
            vu = summary.user_posterior_std_[a].astype(float) ** 2
        else:  # an unknown user: the prior of its group
            mu, vu = summary.user_prior_
        mi = np.r_[summary.item_bias_[b], summary.item_factors_[b]]
        vi = summary.item_posterior_std_[b].astype(float) ** 2
        var = (vu[0] + vi[0] + np.sum(mu[1:] ** 2 * vi[1:] + mi[1:] ** 2 * vu[1:]
                                      + vu[1:] * vi[1:]) + summary.noise_variance_[0])
        assert std[n] == pytest.approx(np.sqrt(var), rel=1e-12)
        assert mean[n] == pytest.approx(summary.global_mean_ + mu[0] + mi[0] + mu[1:] @ mi[1:],
                                        rel=1e-12)


def test_the_summary_predicts_as_well_and_its_intervals_cover(both, planted):
    _, (u, i, r) = planted
    rmse, coverage = [], []
    for model in both:
        mean, std = model.predict(u, i, clip=False, return_std=True)
        rmse.append(np.sqrt(np.mean((mean - r) ** 2)))
        coverage.append(np.mean(np.abs(r - mean) <= 1.6448536 * std))
    assert rmse[1] < rmse[0] * 1.02 and rmse[1] < 0.5   # noise 0.4
    assert 0.85 <= coverage[1] <= 0.95, coverage


def test_kept_samples_fit_posterior_mb_by_thinning(planted):
    train, _ = planted
    size = sample_bytes(mfcore.BayesianMF(**SETTINGS)._checked_params(), 150, 100, 8)
    budget = 25.5 * size / 1e6                              # room for 25 samples of 40
    model = mfcore.BayesianMF(posterior_mb=budget, **SETTINGS).fit(*train)
    assert model.n_kept_ == 20 and not model._summarized()   # thin 2
    assert model.n_kept_ * size <= budget * 1e6
    assert model.user_factors_.nbytes + model.item_factors_.nbytes + \
        model.user_bias_samples_.nbytes + model.item_bias_samples_.nbytes <= budget * 1e6
    small = mfcore.BayesianMF(posterior_mb=(MIN_KEPT_SAMPLES - 0.5) * size / 1e6, **SETTINGS)
    assert small.fit(*train)._summarized()                   # fewer than 20 fit: a summary
    # default budget, small data: as before (every sample, at most 2048 // k)
    assert mfcore.BayesianMF(**SETTINGS).fit(*train).n_kept_ == SETTINGS["n_samples"]


def test_what_the_budget_refuses_is_named(planted):
    train, _ = planted
    with pytest.raises(ValueError, match=r"thin=1 keeps 40 samples of .* over posterior_mb="):
        mfcore.BayesianMF(thin=1, posterior_mb=0.01, **SETTINGS).fit(*train)
    stars = np.clip(np.round(train[2]), 1, 5)
    with pytest.raises(ValueError, match="likelihood='ordered_probit' keeps posterior samples"):
        mfcore.BayesianMF(likelihood="ordered_probit", posterior_mb=0, **SETTINGS).fit(
            train[0], train[1], stars)
    with pytest.raises(ValueError, match="times keeps posterior samples"):
        mfcore.BayesianMF(posterior_mb=0, **SETTINGS).fit(*train, times=np.arange(len(stars)))
    users = (np.ones((150, 1)), np.arange(150))
    with pytest.raises(ValueError, match="side features keeps posterior samples"):
        mfcore.BayesianMF(posterior_mb=0, **SETTINGS).fit(*train, user_features=users)


def test_a_summary_folds_in_a_user_with_its_gaussian_posterior(both, planted):
    samples, summary = both
    (u, i, r), _ = planted
    assert summary.supports("fold_in")
    mine = np.flatnonzero(u == u[0])
    folded = {}
    for model in both:
        copy = copy_module.deepcopy(model)
        copy.fold_in(10**7, i[mine], r[mine])
        folded[model is summary] = copy.predict([10**7] * 5, i[:5], return_std=True)
        few = copy_module.deepcopy(model).fold_in(10**7, i[mine[:2]], r[mine[:2]])
        assert few.predict(10**7, i[0], return_std=True)[1] > folded[model is summary][1][0]
    # the same user as a sampled fold-in would give it, up to the chain's noise
    np.testing.assert_allclose(folded[True][0], folded[False][0], atol=0.15)
    np.testing.assert_allclose(folded[True][1], folded[False][1], rtol=0.15)
    # by hand: the Gaussian posterior given the items' means, noise and the user prior
    Q = np.column_stack([np.ones(len(mine)), summary.item_factors_[summary.item_map_.lookup(
        i[mine])]])
    y = r[mine] - summary.global_mean_ - summary.item_bias_[summary.item_map_.lookup(i[mine])]
    prec = 1 / summary.user_prior_[1]
    H = Q.T @ Q / summary.noise_variance_[0] + np.diag(prec)
    x = np.linalg.solve(H, Q.T @ y / summary.noise_variance_[0] + prec * summary.user_prior_[0])
    copy = copy_module.deepcopy(summary).fold_in(10**7, i[mine], r[mine])
    row = copy.user_map_.lookup([10**7])[0]
    np.testing.assert_allclose(copy.user_factors_[row], x[1:], rtol=1e-9)
    np.testing.assert_allclose(copy.user_posterior_std_[row].astype(float),
                               np.sqrt(np.diag(np.linalg.inv(H))), rtol=1e-3)


def test_a_summary_with_the_svdpp_term_refuses_fold_in_and_says_why(planted):
    train, _ = planted
    model = mfcore.BayesianMF(implicit="user", posterior_mb=0, **SETTINGS).fit(*train)
    with pytest.raises(NotImplementedError, match="summary posterior with the SVD\\+\\+ term"):
        model.fold_in(10**7, train[1][:3], [4.0, 3.0, 5.0])


def test_a_summary_with_implicit_terms_keeps_the_effective_vectors(planted):
    train, (u, i, r) = planted
    summary = mfcore.BayesianMF(implicit=True, posterior_mb=0, **SETTINGS).fit(*train)
    samples = mfcore.BayesianMF(implicit=True, **SETTINGS).fit(*train)
    mean, std = summary.predict(u, i, return_std=True)
    assert summary.item_implicit_samples_ is None and np.all(std > 0)
    rmse = np.sqrt(np.mean((mean - r) ** 2))
    assert rmse < np.sqrt(np.mean((samples.predict(u, i) - r) ** 2)) * 1.02, rmse


def test_summary_fits_and_stds_are_bit_identical_for_1_2_3_threads(planted):
    train, (u, i, _) = planted
    fits = [mfcore.BayesianMF(posterior_mb=0, n_threads=t, **SETTINGS).fit(*train)
            for t in (1, 2, 3)]
    samples = [mfcore.BayesianMF(n_threads=t, **SETTINGS).fit(*train) for t in (1, 2, 3)]
    for group in (fits, samples):
        want = group[0].predict(u, i, return_std=True)
        for other in group[1:]:
            for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
                assert np.array_equal(getattr(group[0], name), getattr(other, name)), name
            got = other.predict(u, i, return_std=True)
            assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
    for name in ("user_posterior_std_", "item_posterior_std_", "user_prior_", "noise_variance_"):
        assert np.array_equal(getattr(fits[0], name), getattr(fits[2], name)), name


def test_a_summary_round_trips_through_its_file_exactly(tmp_path, both, planted):
    _, summary = both
    _, (u, i, _) = planted
    summary.save(tmp_path / "s.mfz")
    loaded = mfcore.load(tmp_path / "s.mfz")
    assert loaded._summarized() and loaded.n_kept_ == 0
    for a, b in zip(summary.predict(u, i, return_std=True), loaded.predict(u, i, return_std=True)):
        assert np.array_equal(a, b)
    assert np.array_equal(summary.recommend(u[0], n=5)[0], loaded.recommend(u[0], n=5)[0])


def test_save_can_leave_the_seen_items_out(tmp_path, both, planted):
    _, summary = both
    _, (u, i, _) = planted
    summary.save(tmp_path / "with.mfz")
    summary.save(tmp_path / "without.mfz", seen_items=False)
    smaller = (tmp_path / "with.mfz").stat().st_size - (tmp_path / "without.mfz").stat().st_size
    assert smaller >= summary.seen_items_.size * 2             # (uint16: <= 65,536 items)
    loaded = mfcore.load(tmp_path / "without.mfz")
    assert loaded.seen_indptr_ is None and loaded.seen_items_ is None
    for a, b in zip(summary.predict(u, i, return_std=True), loaded.predict(u, i, return_std=True)):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="saved with seen_items=False"):
        loaded.recommend(u[0], n=5)
    ranked = loaded.recommend(u[0], n=5, exclude_seen=False)[0]
    assert np.array_equal(ranked, summary.recommend(u[0], n=5, exclude_seen=False)[0])


@pytest.mark.parametrize("change, match", [
    (lambda a: a.update({"state.user_posterior_std": -a["state.user_posterior_std"] - 1}),
     "negative"),
    (lambda a: a.pop("state.item_prior"), "missing"),
    (lambda a: a.update({"state.alpha_samples": np.ones(1)}), "no samples"),
    (lambda a: a["state.user_prior"].__setitem__((1, 0), 0.0), "variance <= 0"),
    (lambda a: a.update({"state.noise_variance": np.array([-1.0])}), "noise_variance"),
    (lambda a: a.update({"state.user_posterior_std": np.full_like(
        a["state.user_posterior_std"], 6e4)}) or a.update({"state.user_factors": np.full_like(
            a["state.user_factors"], 1e160)}), "predictive variance finite"),
])
def test_a_crafted_summary_file_is_refused(tmp_path, both, change, match):
    from test_persistence import _rewrite
    both[1].save(tmp_path / "s.mfz")
    _rewrite(tmp_path / "s.mfz", change, resign=True)
    with pytest.raises(mfcore.ModelFileError, match=match):
        mfcore.load(tmp_path / "s.mfz")


def test_the_std_kernel_is_the_variance_over_the_kept_samples(both, planted):
    samples, _ = both
    (u, i, _), _ = planted
    S, k = samples.n_kept_, samples.k
    rows_u, rows_i = samples.user_map_.lookup(u[:300]), samples.item_map_.lookup(i[:300])
    P = samples.user_factors_[rows_u].reshape(-1, S, k) * np.sqrt(S)
    Q = samples.item_factors_[rows_i].reshape(-1, S, k) * np.sqrt(S)
    x = (np.einsum("nsk,nsk->ns", P, Q) + samples.user_bias_samples_[rows_u]
         + samples.item_bias_samples_[rows_i])
    out = np.empty(len(rows_u))
    _predict.sample_variance(rows_u, rows_i, samples.user_factors_, samples.item_factors_,
                             samples.user_bias_samples_, samples.item_bias_samples_, out, 2)
    np.testing.assert_allclose(out, x.var(axis=1), rtol=1e-9)
    with pytest.raises(ValueError, match="outside the model's rows"):
        _predict.sample_variance(rows_u + 10**6, rows_i, samples.user_factors_,
                                 samples.item_factors_, samples.user_bias_samples_,
                                 samples.item_bias_samples_, out, 1)
