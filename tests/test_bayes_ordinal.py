"""BayesianMF(likelihood="ordered_probit"): the kernels' normal CDF and truncated normal in
both tails, the cut points' Metropolis-Hastings step, recovery of planted ordinal data,
predict_proba, thread-count independence with every term, save/load, and bad input."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import mfcore
from mfcore._kernels import bayes
from mfcore.ordinal import LatentRatings, ordinal_classes

from test_persistence import refused_after_rewrite


def planted(n_users=150, n_items=60, n=6000, seed=0, cut=(-1.5, -0.5, 0.4, 1.3)):
    """Stars cut from a latent rating f + N(0, 1), f = user bias + item bias + a rank-2
    term, at the cut points ``cut``; returns (users, items, stars, times) and the tables."""
    rng = np.random.default_rng(seed)
    bu, bi = rng.normal(0, 0.5, n_users), rng.normal(0, 0.5, n_items)
    P, Q = rng.normal(0, 0.6, (n_users, 2)), rng.normal(0, 0.6, (n_items, 2))
    keys = np.unique(rng.integers(0, n_users * n_items, n))
    u, i = keys // n_items, keys % n_items
    z = bu[u] + bi[i] + (P[u] * Q[i]).sum(axis=1) + rng.normal(0, 1, len(u))
    stars = 1.0 + np.searchsorted(np.array(cut), z)
    times = 1.6e9 + 86400 * rng.integers(0, 40, len(u))
    users = pd.DataFrame({"group": [f"g{x % 3}" for x in range(n_users)]})
    items = pd.DataFrame({"kind": [f"k{x % 4}" for x in range(n_items)]})
    return (u, i, stars, times), users, items


DATA, USERS, ITEMS = planted()


def fit(n_threads=1, **kw):
    params = dict(k=3, n_samples=20, burn_in=10, seed=1, n_threads=n_threads,
                  likelihood="ordered_probit")
    params.update(kw)
    return mfcore.BayesianMF(**params).fit(*DATA[:3])


@pytest.fixture(scope="module")
def model():
    return fit()


# --- the kernels ---------------------------------------------------------------------

def test_log_ndtr_is_accurate_in_both_tails():
    x = np.array([-1e4, -200.0, -38.0, -37.0, -20.0, -3.0, 0.0, 2.0, 8.0, 30.0])
    out = np.empty_like(x)
    bayes.log_ndtr(x, out)
    for v, got in zip(x, out):
        if v > -37:  # math.erfc is exact enough here
            want = math.log(0.5 * math.erfc(-v / math.sqrt(2))) if v <= 0 else \
                math.log1p(-0.5 * math.erfc(v / math.sqrt(2)))
        else:  # Phi(x) ~ phi(x) / -x (1 - 1/x^2 + 3/x^4 ...), to 1e-13 here
            want = -0.5 * v * v - 0.5 * math.log(2 * math.pi) - math.log(-v) + math.log(
                1 - 1 / v**2 + 3 / v**4 - 15 / v**6)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300), v


def phi(x):
    return 0.0 if math.isinf(x) else math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def Phi(x):
    return 0.5 * math.erfc(-x / math.sqrt(2))


def truncated_mean(a, b):
    """E[x | a < x < b] for a standard normal, computed with math (a, b moderate)."""
    if a + b > 0:  # in the upper tail, where 1 - Phi would cancel: mirrored
        return -truncated_mean(-b, -a)
    return (phi(a) - phi(b)) / (Phi(b) - Phi(a))


@pytest.mark.parametrize("a, b", [(-np.inf, 0.3), (2.0, np.inf), (8.0, 9.0), (-9.0, -8.0),
                                  (-0.1, 0.1), (-3.0, 5.0), (-np.inf, np.inf)])
def test_truncated_normal_draws_stay_inside_and_have_the_truncated_mean(a, b):
    u = (np.arange(20000) + 0.5) / 20000  # a quadrature of the inverse CDF
    out = np.empty_like(u)
    bayes.truncated_normal(np.full_like(u, a), np.full_like(u, b), u, out)
    assert (out >= a).all() and (out <= b).all() and np.isfinite(out).all()
    assert (np.diff(out) * (-1 if a + b > 0 else 1) >= 0).all()  # monotone in u
    assert out.mean() == pytest.approx(truncated_mean(a, b), abs=2e-3)


@pytest.mark.parametrize("a, b", [(40.0, np.inf), (-np.inf, -40.0), (-50.0, -49.0),
                                  (300.0, 300.5), (10.0, 10.0001)])
def test_truncated_normal_in_the_far_tails_is_finite_and_near_the_bound(a, b):
    u = (np.arange(2000) + 0.5) / 2000
    out = np.empty_like(u)
    bayes.truncated_normal(np.full_like(u, a), np.full_like(u, b), u, out)
    assert np.isfinite(out).all() and (out >= a).all() and (out <= b).all()
    near = a if np.isfinite(a) and abs(a) < abs(b) else b
    # the tail's mass lies within about 1/|bound| of the bound (the Mills ratio)
    assert abs(out.mean() - near) <= min(1.5 / abs(near), (b - a) if np.isfinite(b - a) else 1)


def test_class_probabilities_sum_to_one_and_widen_with_the_variance():
    mean = np.array([[0.0, 0.5], [2.0, 2.5]])
    cut = np.array([[-1.0, 0.0, 1.0], [-1.1, 0.1, 1.2]])
    sharp, wide = np.empty((2, 4)), np.empty((2, 4))
    bayes.class_probabilities(mean, np.zeros((2, 2)), cut, sharp, 1)
    bayes.class_probabilities(mean, np.full((2, 2), 3.0), cut, wide, 2)
    assert np.allclose(sharp.sum(axis=1), 1) and np.allclose(wide.sum(axis=1), 1)
    want = np.mean([Phi(c[0] - m) for c, m in zip(cut, mean[0])])
    assert sharp[0, 0] == pytest.approx(want, rel=1e-14)
    assert wide[1, 0] > sharp[1, 0] and wide[1, 3] < sharp[1, 3]  # mass moves to the far class


def ordinal_sample(n, truth, seed):
    """Latent means f ~ N(0, 1) and the classes of f + N(0, 1) cut at ``truth``."""
    rng = np.random.default_rng(seed)
    f = rng.normal(0, 1, n)
    return f, 1.0 + np.searchsorted(truth, f + rng.normal(0, 1, n))


def test_cut_statistics_are_the_likelihood_its_gradient_and_hessian():
    truth = np.array([-1.0, 0.2, 1.1])
    f, stars = ordinal_sample(500, truth, 3)
    latent = LatentRatings(stars, 2)
    residual = -f  # z = 0: f = z - residual

    def ll(cut):
        bounds = np.r_[-np.inf, cut, np.inf]
        c = latent.classes
        return sum(math.log(Phi(b - x) - Phi(a - x))
                   for a, b, x in zip(bounds[c], bounds[c + 1], f))

    cut = truth + 0.05
    value, grad, diag, off = bayes.cut_statistics(latent.z, residual, latent.classes, cut, 2)
    assert value == pytest.approx(ll(cut), rel=1e-12)
    h, step = np.eye(3) * 1e-5, []
    for j in range(3):
        assert grad[j] == pytest.approx((ll(cut + h[j]) - ll(cut - h[j])) / 2e-5, rel=1e-5)
        g_plus = bayes.cut_statistics(latent.z, residual, latent.classes, cut + h[j], 1)[1]
        g_minus = bayes.cut_statistics(latent.z, residual, latent.classes, cut - h[j], 1)[1]
        step.append((g_plus - g_minus) / 2e-5)
    hessian = np.array(step)
    assert np.allclose(np.diag(hessian), diag, rtol=1e-4)
    assert np.allclose(np.diag(hessian, 1), off, rtol=1e-4)
    assert np.allclose(np.diag(hessian, 2), 0, atol=1e-6)  # tridiagonal


def test_the_cut_point_step_samples_its_conditional():
    """Given f, the Metropolis-Hastings step samples p(cut | f, classes) (flat prior, the
    first cut point fixed): with three classes that is one free point, whose posterior is
    computed here on a grid; the chain's mean and spread match it, and it accepts most
    proposals."""
    truth = np.array([-0.5, 0.7])
    f, stars = ordinal_sample(3000, truth, 4)
    latent = LatentRatings(stars, 1)
    latent.cut = truth.copy()
    residual = -f
    draws = []
    for sweep in range(2000):
        latent._draw_cutpoints(residual, 11, sweep)
        draws.append(latent.cut[1])
    grid = np.linspace(0.45, 0.95, 801)
    log_post = np.array([bayes.cut_statistics(latent.z, residual, latent.classes,
                                              np.array([truth[0], g]), 1)[0] for g in grid])
    weight = np.exp(log_post - log_post.max())
    weight /= weight.sum()
    mean = weight @ grid
    sd = math.sqrt(weight @ (grid - mean) ** 2)
    draws = np.array(draws)
    assert latent.accepted > 1600
    assert abs(draws.mean() - mean) < 4 * sd / math.sqrt(len(draws) / 3)  # (autocorrelated)
    assert draws.std() == pytest.approx(sd, rel=0.1)


def test_latent_draws_fall_in_their_class_and_do_not_depend_on_threads():
    rng = np.random.default_rng(1)
    n = 20000
    classes = rng.integers(0, 4, n).astype(np.int8)
    cut, values = np.array([-1.0, 0.0, 2.0]), np.array([1.0, 2.0, 3.0, 4.0])
    out = []
    for threads in (1, 2, 3):
        z, residual = np.zeros(n), rng.normal(0, 3, n) * 0 + np.linspace(-40, 40, n)
        sse = bayes.latent_draw(z, residual, classes, cut, values, 5, 3, 0, threads)
        out.append((z.copy(), sse))
    assert all(np.array_equal(out[0][0], z) and out[0][1] == s for z, s in out[1:])
    z = out[0][0]
    lo = np.r_[-np.inf, cut][classes]
    hi = np.r_[cut, np.inf][classes]
    assert np.isfinite(z).all() and (z >= lo).all() and (z <= hi).all()


# --- the model -------------------------------------------------------------------------

def test_planted_cut_point_gaps_and_class_frequencies_are_recovered():
    (u, i, stars, _), _, _ = planted(n=9000, seed=2)
    train = np.arange(len(u)) % 5 != 0
    model = mfcore.BayesianMF(k=2, n_samples=60, burn_in=30, seed=0,
                              likelihood="ordered_probit").fit(u[train], i[train], stars[train])
    assert model.classes_.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    gaps = np.diff(model.cutpoint_samples_.mean(axis=0))
    assert np.abs(gaps - np.diff([-1.5, -0.5, 0.4, 1.3])).max() < 0.2
    proba = model.predict_proba(u[~train], i[~train])
    observed = np.bincount(stars[~train].astype(int) - 1, minlength=5) / (~train).sum()
    assert np.abs(proba.mean(axis=0) - observed).max() < 0.03  # calibrated on held-out data
    gaussian = mfcore.BayesianMF(k=2, n_samples=60, burn_in=30, seed=0).fit(
        u[train], i[train], stars[train])
    probit_rmse = model.evaluate(u[~train], i[~train], stars[~train])["rmse"]
    assert probit_rmse < gaussian.evaluate(u[~train], i[~train], stars[~train])["rmse"] + 0.01


def test_predict_is_the_expected_class_and_std_its_spread(model):
    u, i, stars = (a[:50] for a in DATA[:3])
    proba = model.predict_proba(u, i)
    assert proba.shape == (50, 5) and np.allclose(proba.sum(axis=1), 1) and (proba >= 0).all()
    mean, std = model.predict(u, i, return_std=True)
    values = model.classes_
    assert np.allclose(mean, proba @ values)
    assert np.allclose(std, np.sqrt(proba @ values**2 - (proba @ values) ** 2))
    assert np.allclose(model.predict(u, i), mean, rtol=1e-6)
    assert model.evaluate(u, i, stars)["rmse"] == pytest.approx(
        np.sqrt(np.mean((mean - stars) ** 2)), rel=1e-5)
    one = model.predict_proba(u[0], i[0])
    assert one.shape == (5,) and np.allclose(one, proba[0])


def test_predict_proba_of_a_table_is_a_frame_and_unknown_ids_follow_the_policy(model):
    table = pd.DataFrame({"user": [DATA[0][0], 10**6], "item": [DATA[1][0], DATA[1][0]]},
                         index=["a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
        frame = model.predict_proba(table)
        nan = model.predict_proba(table, unknown="nan")
    assert list(frame.columns) == [1.0, 2.0, 3.0, 4.0, 5.0] and list(frame.index) == ["a", "b"]
    assert np.allclose(frame.sum(axis=1), 1)
    assert np.isnan(nan.iloc[1]).all() and np.allclose(nan.iloc[0], frame.iloc[0])
    # the unknown user's distribution (its prior) is wider than a known user's
    values = model.classes_
    spread = [float(p @ values**2 - (p @ values) ** 2) for p in frame.to_numpy()]
    assert spread[1] > spread[0]


def test_validation_is_scored_on_the_expected_rating():
    model = fit(validation_fraction=0.1)
    assert all(np.isfinite(h["val_rmse"]) and h["alpha"] == 1.0 for h in model.history_)
    assert model.history_[-1]["val_rmse"] < 1.2


def test_bit_identical_for_any_thread_count_with_every_term():
    models = [mfcore.BayesianMF(k=3, n_samples=6, burn_in=4, seed=3, n_threads=n,
                                implicit=True, likelihood="ordered_probit").fit(
        *DATA[:3], user_features=USERS, item_features=ITEMS, times=DATA[3])
        for n in (1, 2, 3)]
    for other in models[1:]:
        for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_",
                     "cutpoint_samples_", "time_samples_", "user_feature_samples_",
                     "item_implicit_samples_"):
            assert np.array_equal(getattr(models[0], name), getattr(other, name)), name
        assert [h["train_rmse"] for h in models[0].history_] == \
            [h["train_rmse"] for h in other.history_]
    assert np.unique(models[0].cutpoint_samples_, axis=0).shape[0] > 1  # the points move


def test_the_gaussian_default_is_untouched(model):
    gaussian = mfcore.BayesianMF(k=3, n_samples=20, burn_in=10, seed=1).fit(*DATA[:3])
    assert gaussian.classes_ is None and gaussian.cutpoint_samples_ is None
    with pytest.raises(ValueError, match="predict_proba needs a model fitted with likelihood"):
        gaussian.predict_proba(DATA[0][:2], DATA[1][:2])


# --- save and load ---------------------------------------------------------------------

def test_save_load_is_exact(tmp_path):
    model = mfcore.BayesianMF(k=3, n_samples=5, burn_in=3, seed=2, likelihood="ordered_probit",
                              ).fit(*DATA[:3], user_features=USERS, times=DATA[3])
    model.save(tmp_path / "m.mfz")
    loaded = mfcore.load(tmp_path / "m.mfz")
    assert loaded.likelihood == "ordered_probit"
    assert np.array_equal(loaded.cutpoint_samples_, model.cutpoint_samples_)
    assert np.array_equal(loaded.classes_, model.classes_)
    u, i = DATA[0][:30], DATA[1][:30]
    new = pd.DataFrame({"group": ["g1"]}, index=[10**6])
    for args, kw in (((u, i), {}), ((u, i), {"times": DATA[3][:30]}),
                     (([10**6], [DATA[1][0]]), {"user_features": new})):
        assert np.array_equal(loaded.predict_proba(*args, **kw), model.predict_proba(*args, **kw))
        assert np.array_equal(loaded.predict(*args, return_std=True, **kw)[1],
                              model.predict(*args, return_std=True, **kw)[1])


@pytest.mark.parametrize("change, message", [
    (lambda a: a["state.cutpoint_samples"].__setitem__((0, 2), -9.0), "do not increase"),
    (lambda a: a["state.cutpoint_samples"].__setitem__((1, 0), np.inf), "non-finite"),
    (lambda a: a.__setitem__("state.cutpoint_samples", a["state.cutpoint_samples"][:, :2]),
     "cut points per sample"),
    (lambda a: a.__setitem__("state.classes", a["state.classes"][::-1].copy()), "increasing"),
    (lambda a: a.pop("state.cutpoint_samples"), "come together"),
])
def test_load_rejects_bad_cut_points(tmp_path, model, change, message):
    refused_after_rewrite(model, tmp_path / "m.mfz", change, message)


# --- bad input and what is not offered --------------------------------------------------

@pytest.mark.parametrize("ratings, message", [
    (lambda r: r + 0.37, r"rating 1\.37"),
    (lambda r: np.arange(len(r)) % 25 + 1.0, "2 to 20 distinct ratings .*got 25"),
])
def test_a_scale_that_is_not_ordinal_is_refused_by_name(ratings, message):
    u, i, stars = DATA[:3]
    model = mfcore.BayesianMF(k=2, n_samples=2, burn_in=1, likelihood="ordered_probit")
    with pytest.raises(ValueError, match=message):
        model.fit(u, i, ratings(stars))
    assert not model._is_fitted()


def test_one_distinct_rating_is_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="got 1"):
            mfcore.BayesianMF(k=2, n_samples=2, burn_in=1, likelihood="ordered_probit").fit(
                [1, 2, 3], [1, 1, 2], [4.0, 4.0, 4.0])


def test_half_stars_are_ordinal():
    assert ordinal_classes([0.5, 1.0, 4.5, 1.0]).tolist() == [0.5, 1.0, 4.5]


def test_fold_in_dask_and_continuing_are_refused_clearly(model):
    assert not model.supports("fold_in") and not model.supports("dask")
    assert mfcore.BayesianMF().supports("fold_in")
    with pytest.raises(NotImplementedError, match="ordered_probit"):
        model.fold_in(10**6, DATA[1][:3], [3.0, 4.0, 5.0])
    with pytest.raises(NotImplementedError, match="cannot continue"):
        model.partial_fit(*DATA[:3])


def test_dask_refuses_the_ordered_probit_through_its_capability():
    dd = pytest.importorskip("dask.dataframe")
    import mfcore.dask
    frame = pd.DataFrame({"user": DATA[0], "item": DATA[1], "rating": DATA[2]})
    with pytest.raises(NotImplementedError, match="hyperparameter rules it out"):
        mfcore.dask.fit(mfcore.BayesianMF(likelihood="ordered_probit"),
                        dd.from_pandas(frame, npartitions=2))


def test_the_cli_trains_an_ordered_probit(tmp_path, capsys):
    from mfcore import cli
    path = tmp_path / "r.csv"
    pd.DataFrame({"user": DATA[0], "item": DATA[1], "rating": DATA[2]}).to_csv(path, index=False)
    code = cli.main(["train", str(path), "-o", str(tmp_path / "m.mfz"), "--algorithm", "bayes",
                     "--k", "2", "--n-samples", "3", "--burn-in", "2",
                     "--likelihood", "ordered_probit"])
    assert code == 0, capsys.readouterr()
    loaded = mfcore.load(tmp_path / "m.mfz")
    assert loaded.likelihood == "ordered_probit" and loaded.classes_.tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(SystemExit):  # a usage error, naming the flag and the choices
        cli.main(["train", str(path), "-o", str(tmp_path / "x.mfz"), "--algorithm", "bayes",
                  "--likelihood", "probit"])
    assert "--likelihood must be one of ('gaussian', 'ordered_probit')" in \
        capsys.readouterr().err
