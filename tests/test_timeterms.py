"""BayesianMF's time terms (``fit(times=...)``, ``mfcore.timeterms``): the draws against a
NumPy reference, what they learn, thread-count independence, predictions for unseen times,
save/load, and bad input."""
import numpy as np
import pandas as pd
import pytest

import mfcore
from mfcore.params import InvalidParameterError
from mfcore.timeterms import TimeEncoding, TimeSampler

DAY = 86400.0


def planted(n_users=150, n_items=60, n=6000, seed=0):
    """Ratings with a strong user-day mood: each user rates on a few days, and each
    (user, day) shifts all that day's ratings by a common offset. Returns (users, items,
    ratings, times) and the test rows (same user-days, other items)."""
    rng = np.random.default_rng(seed)
    u, i = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    day = rng.integers(0, 4, n) + 3 * u % 40      # 4 days per user, spread over ~44 days
    mood = rng.normal(0.0, 0.8, (n_users, 50))
    taste = rng.normal(0, 0.5, n_users)[u] + rng.normal(0, 0.5, n_items)[i]
    r = np.clip(3.5 + taste + mood[u, day] + rng.normal(0, 0.3, n), 1, 5)
    key = np.unique(u * n_items + i, return_index=True)[1]
    u, i, r, t = u[key], i[key], r[key], 1.5e9 + DAY * day[key] + 3600.0
    test = rng.random(len(r)) < 0.2
    return (u[~test], i[~test], r[~test], t[~test]), (u[test], i[test], r[test], t[test])


TRAIN, TEST = planted()


def fit(n_threads=1, times=True, data=TRAIN, **kw):
    params = dict(k=3, n_samples=30, burn_in=10, seed=2, n_threads=n_threads)
    params.update(kw)
    u, i, r, t = data
    return mfcore.BayesianMF(**params).fit(u, i, r, times=t if times else None)


def rmse(model, data, times=True):
    u, i, r, t = data
    return float(np.sqrt(np.mean((model.predict(u, i, times=t if times else None) - r) ** 2)))


def test_the_day_mood_is_learnt_and_used_on_held_out_ratings():
    with_times, without = fit(), fit(times=False)
    assert with_times.time_encoding_.terms == ("user_day",)
    assert rmse(with_times, TEST) < 0.8 * rmse(without, TEST, times=False)
    # without times at predict, the terms are left out: worse than with them
    assert rmse(with_times, TEST, times=False) > rmse(with_times, TEST)


def test_a_fit_without_times_is_unchanged_by_the_time_code():
    plain = mfcore.BayesianMF(k=3, n_samples=20, burn_in=10, seed=1).fit(*TRAIN[:3])
    other = mfcore.BayesianMF(k=3, n_samples=20, burn_in=10, seed=1,
                              time_terms=("day", "item_bin")).fit(*TRAIN[:3], times=None)
    assert plain.time_encoding_ is None and plain.time_samples_ is None
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "alpha_samples_"):
        assert np.array_equal(getattr(plain, name), getattr(other, name)), name


@pytest.mark.parametrize("terms", ["user_day", ("user_day", "item_bin", "day")])
def test_bit_identical_for_any_thread_count(terms):
    models = [fit(n_threads=n, time_terms=terms, implicit=True) for n in (1, 2, 3)]
    for other in models[1:]:
        for name in ("user_factors_", "item_factors_", "user_bias_", "time_samples_",
                     "time_precision_samples_", "alpha_samples_"):
            assert np.array_equal(getattr(models[0], name), getattr(other, name)), name


def test_the_weight_draws_match_their_full_conditional():
    """One sweep of one term against the conditional computed here: weight ~ N(alpha * sum
    of its ratings' residuals (without it) / prec, 1 / prec), prec = lambda + alpha n_g."""
    u, i, r, t = TRAIN
    enc = TimeEncoding.fit(("user_day",), 30, t)
    order = np.arange(len(r))
    sampler = TimeSampler(enc, u, i, t, order)
    rng = np.random.default_rng(0)
    residual = rng.normal(0, 1, len(r))
    group = sampler.groups[0]
    start = rng.normal(0, 0.1, len(sampler.weights[0]))
    sampler.weights[0][:] = start
    before, alpha = residual.copy(), 2.5
    draws = []
    for seed in range(300):  # the same state, many seeds: the draws' mean and spread
        sampler.weights[0][:] = start
        sampler.precisions[:] = 4.0
        res = before.copy()
        sampler.sweep(res, alpha, seed, 0, 1.0, 1.0)
        draws.append(sampler.weights[0].copy())
        # the residuals stay rating minus prediction with the new weights
        np.testing.assert_allclose(res, before + start[group] - sampler.weights[0][group],
                                   atol=1e-12)
    draws = np.array(draws)
    counts = np.bincount(group)
    prec = 4.0 + alpha * counts
    mean = alpha * np.bincount(group, weights=before + start[group]) / prec
    z = (draws.mean(axis=0) - mean) / np.sqrt(1 / prec / len(draws))
    assert np.abs(z).max() < 5
    assert np.median(draws.std(axis=0) * np.sqrt(prec)) == pytest.approx(1.0, abs=0.1)


def test_unseen_days_add_the_prior_spread_and_nothing_to_the_mean():
    model = fit()
    u, i, _, t = TEST
    mean_seen, std_seen = model.predict(u, i, times=t, return_std=True)
    later = t + 1000 * DAY   # days after the training range: no user-day group there
    mean_later, std_later = model.predict(u, i, times=later, return_std=True)
    np.testing.assert_array_equal(mean_later, model.predict(u, i))
    assert (std_later > std_seen).mean() > 0.9


def test_item_bins_clip_times_outside_the_training_range():
    enc = TimeEncoding.fit(("item_bin",), 10, np.array([0.0, 99 * DAY]))
    assert enc.bin_days == 10
    keys = enc.keys("item_bin", np.zeros(4, np.int32), np.zeros(4, np.int32),
                    np.array([-50 * DAY, 5 * DAY, 95 * DAY, 500 * DAY]))
    assert (keys & 0xFFFFFFFF).tolist() == [0, 0, 9, 9]


def test_save_load_exact_with_times(tmp_path):
    model = fit(time_terms=("user_day", "item_bin"))
    u, i, _, t = TEST
    before = model.predict(u, i, times=t, return_std=True)
    model.save(tmp_path / "m.mfz")
    loaded = mfcore.load(tmp_path / "m.mfz")
    after = loaded.predict(u, i, times=t, return_std=True)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert vars(loaded.time_encoding_) == vars(model.time_encoding_)


def test_validation_uses_the_times_of_a_table_or_of_the_split():
    u, i, r, t = TRAIN
    vu, vi, vr, vt = TEST
    table = pd.DataFrame({"user": vu, "item": vi, "rating": vr, "timestamp": vt})
    model = mfcore.BayesianMF(k=3, n_samples=30, burn_in=10, seed=2).fit(
        u, i, r, times=t, validation=table)
    last = model.history_[-1]["val_rmse"]
    assert last == pytest.approx(rmse(model, TEST), rel=1e-5)
    split = mfcore.BayesianMF(k=3, n_samples=30, burn_in=10, seed=2,
                              validation_fraction=0.1).fit(u, i, r, times=t)
    assert np.isfinite(split.history_[-1]["val_rmse"])


def test_duplicates_merge_their_times_like_their_ratings():
    u, i, r, t = (np.array([1, 1, 2, 2]), np.array([5, 5, 6, 7]), np.array([1.0, 5.0, 3.0, 4.0]),
                  np.array([0.0, 10 * DAY, 0.0, DAY]))
    model = mfcore.BayesianMF(k=2, n_samples=5, burn_in=2, duplicates="last").fit(
        u, i, r, times=t)
    assert model.time_encoding_.origin == 0   # user 1's merged rating is on day 10, not 0
    assert len(model.time_keys_) == 3


def test_bad_times_and_time_terms_get_clear_errors():
    u, i, r, t = TRAIN
    with pytest.raises(ValueError, match=r"times holds nan at position 3"):
        fit(data=(u, i, r, np.where(np.arange(len(t)) == 3, np.nan, t)))
    with pytest.raises(ValueError, match="inputs differ in length"):
        fit(data=(u, i, r, t[:-1]))
    with pytest.raises(ValueError, match="Unix seconds or datetimes"):
        fit(data=(u, i, r, t.astype(str)))
    with pytest.raises(InvalidParameterError, match="time_terms"):
        fit(time_terms="weekday")
    with pytest.raises(ValueError, match="fitted without times"):
        fit(times=False).predict(u[:2], i[:2], times=t[:2])
    dates = pd.to_datetime(t, unit="s")
    same = fit(data=(u, i, r, dates))
    assert np.array_equal(same.time_samples_, fit().time_samples_)


def test_a_tampered_time_layout_is_refused(tmp_path):
    model = fit()
    model.save(tmp_path / "m.mfz")
    with np.load(tmp_path / "m.mfz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["state.time_term_ptr"] = np.array([0, 5], np.int64)
    arrays.pop("digest")
    arrays["digest"] = np.str_(mfcore.persistence._digest(arrays))
    with open(tmp_path / "bad.mfz", "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(mfcore.ModelFileError, match="time_term_ptr"):
        mfcore.load(tmp_path / "bad.mfz")


def test_the_cli_trains_with_times_and_evaluates_with_the_files_timestamps(tmp_path, capsys):
    from mfcore import cli
    u, i, r, t = TRAIN
    for name, (a, b, c, d) in (("train.csv", TRAIN), ("test.csv", TEST)):
        pd.DataFrame({"user": a, "item": b, "rating": c, "timestamp": d.astype(np.int64)}
                     ).to_csv(tmp_path / name, index=False)
    assert cli.main(["train", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m.mfz"), "-q",
                     "--algorithm", "bayes", "--times", "--time-terms", "user_day,day",
                     "--k", "3", "--n-samples", "30", "--burn-in", "10", "--seed", "2"]) == 0
    model = mfcore.load(tmp_path / "m.mfz")
    assert model.time_encoding_.terms == ("user_day", "day")
    capsys.readouterr()
    assert cli.main(["evaluate", str(tmp_path / "m.mfz"), str(tmp_path / "test.csv"), "--json",
                     "-q"]) == 0
    import json
    scores = json.loads(capsys.readouterr().out)
    vu, vi, vr, vt = TEST
    assert scores["rmse"] == pytest.approx(model.evaluate(vu, vi, vr, times=vt)["rmse"])
    assert scores["rmse"] < model.evaluate(vu, vi, vr)["rmse"]
    with pytest.raises(SystemExit):
        cli.main(["train", str(tmp_path / "train.csv"), "-o", str(tmp_path / "x.mfz"),
                  "--algorithm", "als", "--times"])
