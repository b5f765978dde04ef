"""Training control: history, validation, early stopping, schedules, callbacks, warm starts, search."""
import numpy as np
import pytest

import mfcore
from mfcore import Model, Search, TrainingDivergedError

PARAMS = ("user_factors_", "item_factors_", "user_bias_", "item_bias_")


def assert_same_parameters(a, b):
    for name in PARAMS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_history_records_every_epoch(planted):
    model = Model(k=4, epochs=6, n_threads=1).fit(*planted, validation=planted)
    assert [h["epoch"] for h in model.history_] == list(range(1, 7))
    for h in model.history_:
        assert set(h) == {"epoch", "lr", "train_loss", "train_rmse", "val_rmse", "seconds",
                          "updates_per_sec"}
        assert h["train_loss"] > h["train_rmse"] ** 2  # the regularization term is included
        assert h["updates_per_sec"] > 0
    rmse = [h["train_rmse"] for h in model.history_]
    assert rmse[-1] < rmse[0]  # training makes progress
    assert "val_rmse" not in Model(k=2, epochs=1).fit(*planted).history_[0]


def test_early_stopping_restores_the_best_epoch(make_planted, train_test):
    # few ratings, many factors, no regularization: validation RMSE rises after a few epochs
    (train, val) = train_test(*make_planted(n_users=60, n_items=40, density=0.3, noise=0.8))
    model = Model(k=40, epochs=200, lr=0.05, reg=0.0, init_std=0.3, n_iter_no_change=3,
                  n_threads=1).fit(*train, validation=val)
    val_curve = [h["val_rmse"] for h in model.history_]
    assert model.n_epochs_ < 200, "early stopping never triggered"
    assert model.n_epochs_ == model.best_epoch_ + 3
    assert val_curve[-1] > min(val_curve)  # the last epoch is worse than the best one
    assert model.best_epoch_ == int(np.argmin(val_curve)) + 1
    restored = model.evaluate(*val)["rmse"]
    assert restored == pytest.approx(min(val_curve), rel=1e-5)


def test_validation_fraction_holds_out_ratings(planted):
    model = Model(k=4, epochs=3, validation_fraction=0.2, n_threads=1).fit(*planted)
    assert model.n_ratings_ == pytest.approx(0.8 * len(planted[2]), rel=0.05)
    assert all("val_rmse" in h for h in model.history_)
    with pytest.raises(ValueError, match="either validation=.* or validation_fraction"):
        Model(validation_fraction=0.2).fit(*planted, validation=planted)


def test_partial_fit_trains_on_all_it_is_given(planted):
    model = Model(k=4, epochs=2, validation_fraction=0.2, n_threads=1).fit(*planted)
    held_out = model.n_ratings_
    model.partial_fit([1, 2], [1, 2], [4.0, 5.0])          # two ratings: nothing held out
    assert model.n_ratings_ == held_out + 2 and "val_rmse" not in model.history_[-1]
    model.set_params(warm_start=True).fit(*planted)        # continues: counts every rating
    assert model.n_ratings_ == held_out + 2 + len(planted[2])


def test_inverse_schedule_decays_and_changes_results(planted):
    const = Model(k=4, epochs=4, n_threads=1).fit(*planted)
    inverse = Model(k=4, epochs=4, lr_schedule="inverse", lr_decay=0.5, n_threads=1).fit(*planted)
    assert [h["lr"] for h in const.history_] == [0.01] * 4
    assert [h["lr"] for h in inverse.history_] == pytest.approx([0.01, 0.01 / 1.5, 0.005, 0.004])
    assert not np.array_equal(const.user_factors_, inverse.user_factors_)


def test_divergence_under_a_bad_schedule_names_the_epoch(tiny):
    with pytest.raises(TrainingDivergedError, match="diverged at epoch"):
        Model(k=8, epochs=50, lr=60.0, lr_schedule="inverse", lr_decay=0.01).fit(*tiny)


def test_callback_can_stop_training(planted):
    seen = []

    def stop_at_three(model, epoch, metrics):
        seen.append((epoch, metrics["train_rmse"], model.predict(planted[0][:1], planted[1][:1])))
        return epoch == 3

    model = Model(k=4, epochs=10, n_threads=1).fit(*planted, callback=stop_at_three)
    assert model.n_epochs_ == 3 and len(model.history_) == 3
    assert [s[0] for s in seen] == [1, 2, 3]


def test_verbose_prints_one_line_per_epoch(planted, capsys):
    Model(k=2, epochs=3, verbose=True).fit(*planted, validation=planted)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("epoch    1") and "val_rmse" in lines[0]
    assert lines[3].startswith("ran all 3 epochs; kept epoch")      # then how it stopped


def test_two_partial_fits_equal_one_fit_of_two_epochs(planted):
    full = Model(k=5, epochs=2, n_threads=1, seed=9).fit(*planted)
    step = Model(k=5, n_threads=1, seed=9)
    step.partial_fit(*planted, epochs=1).partial_fit(*planted, epochs=1)
    assert_same_parameters(full, step)
    assert step.n_epochs_ == 2


def test_warm_start_continues_training(planted):
    full = Model(k=5, epochs=5, n_threads=1, seed=3).fit(*planted)
    warm = Model(k=5, epochs=2, n_threads=1, seed=3, warm_start=True).fit(*planted)
    warm.set_params(epochs=3).fit(*planted)
    assert_same_parameters(full, warm)
    assert [h["epoch"] for h in warm.history_] == [1, 2, 3, 4, 5]


def test_partial_fit_after_save_and_load_continues_identically(planted, tmp_path):
    model = Model(k=4, epochs=2, n_threads=1).fit(*planted)
    model.save(tmp_path / "m.mfz")
    loaded = mfcore.load(tmp_path / "m.mfz")
    model.partial_fit(*planted)
    loaded.partial_fit(*planted)
    assert_same_parameters(model, loaded)


def test_partial_fit_adds_new_users_and_items(tiny):
    model = Model(k=3, epochs=2, n_threads=1).fit(*tiny)
    mean = model.global_mean_
    model.partial_fit([1, 99], [10, 500], [4.0, 2.0])
    assert model.user_map_.lookup([99])[0] == 5 and model.item_map_.lookup([500])[0] == 4
    assert model.user_factors_.shape == (6, 3) and model.item_bias_.shape == (5,)
    assert model.global_mean_ == mean
    assert np.isfinite(model.predict([99], [500])).all()
    with pytest.raises(ValueError, match="k=4 differs"):
        model.set_params(k=4).partial_fit(*tiny)


@pytest.mark.parametrize("params, message", [
    ({"lr_schedule": "cosine"}, "lr_schedule must be one of"),
    ({"validation_fraction": 1.5}, "validation_fraction must be None or a number strictly between"),
    ({"n_iter_no_change": 0}, "n_iter_no_change must be an integer >= 1, got 0"),
    ({"tol": -1.0}, "tol must be a finite number >= 0.0, got -1.0"),
    ({"lr_decay": -0.1}, "lr_decay must be a finite number >= 0.0"),
])
def test_bad_training_control_parameters(tiny, params, message):
    with pytest.raises(ValueError, match=message):
        Model(**params).fit(*tiny)


def test_search_finds_the_best_point_of_its_grid(make_planted):
    data = make_planted(n_users=150, n_items=100, noise=0.2)
    grid = {"k": [4], "reg": [0.02, 3.0], "lr": [0.02], "epochs": [40]}
    result = Search(grid, validation_fraction=0.2, seed=1).fit(*data)
    assert len(result.results_) == 2
    scores = {r["reg"]: r["val_rmse"] for r in result.results_}
    assert scores[0.02] < scores[3.0]
    assert result.best_params_["reg"] == 0.02 and result.best_score_ == scores[0.02]
    assert result.best_model_.reg == 0.02
    assert result.best_model_.epochs == result.best_params_["epochs"] <= 40


def test_search_k_fold_and_random_draws(make_planted):
    data = make_planted(n_users=80, n_items=60, noise=0.3)
    grid = {"reg": [0.01, 0.05, 0.1, 0.2], "epochs": [10]}
    result = mfcore.search(*data, grid, n_iter=2, cv=3, refit=False, seed=0)
    assert len(result.results_) == 2
    assert all(r["val_rmse_std"] > 0 for r in result.results_)  # three folds differ
    assert not hasattr(result, "best_model_")
    with pytest.raises(ValueError, match="invalid parameter 'depth'"):
        mfcore.search(*data, {"depth": [1, 2]})
    with pytest.raises(ValueError, match=r"param_grid\['k'\] must be a list"):
        mfcore.search(*data, {"k": 5})


def test_search_split_depends_on_the_seed_not_the_grid(make_planted):
    data = make_planted(n_users=80, n_items=60, noise=0.3)
    base = Model(k=3, epochs=5, n_threads=1)
    grid = {"reg": [0.01, 0.05, 0.1, 0.2]}
    whole = Search(grid, base=base, refit=False, seed=4).fit(*data).results_
    drawn = Search(grid, n_iter=2, base=base, refit=False, seed=4).fit(*data).results_
    by_reg = {r["reg"]: r["val_rmse"] for r in whole}
    assert len(drawn) == 2 and all(r["val_rmse"] == by_reg[r["reg"]] for r in drawn)
    other = Search(grid, base=base, refit=False, seed=5).fit(*data).results_
    assert [r["val_rmse"] for r in other] != [r["val_rmse"] for r in whole]


def test_search_trials_equal_plain_fits_on_the_same_split(make_planted):
    users, items, ratings = make_planted(n_users=60, n_items=50, noise=0.3)
    base = Model(epochs=15, n_threads=1)
    search = Search({"k": [2, 6]}, base=base, refit=False, seed=3).fit(users, items, ratings)
    (train, val), = search._folds(len(ratings), search._streams()[1])
    for row in search.results_:  # trials share one training layout; plain fits build their own
        model = Model(**dict(base.get_params(), k=row["k"])).fit(
            users[train], items[train], ratings[train],
            validation=(users[val], items[val], ratings[val]))
        assert min(h["val_rmse"] for h in model.history_) == row["val_rmse"]
        assert model.best_epoch_ == row["best_epoch"]


def test_search_and_model_work_with_sklearn_clone():
    base = pytest.importorskip("sklearn.base")
    search = Search({"k": [2, 4]}, cv=3, base=Model(reg=0.2))
    copy = base.clone(search)
    assert copy.get_params()["cv"] == 3 and copy.get_params()["base"].reg == 0.2
    assert base.clone(Model(k=7)).k == 7


def test_partial_fit_reports_the_loss_of_its_own_ratings(planted):
    """The loss of a partial_fit is SGD's per-rating objective over the ratings it trains on
    (it was the whole model's penalty divided by their count: 36.55 for 3 ratings)."""
    model = Model(k=4, epochs=3, n_threads=1, dtype="float64").fit(*planted)
    users, items, ratings = planted[0][:3], planted[1][:3], planted[2][:3]
    model.partial_fit(users, items, ratings)
    last = model.history_[-1]
    u, i = model.user_map_.lookup(users), model.item_map_.lookup(items)
    P, Q, bu, bi = model._parameters()
    reg = model.reg * model.rating_scale_
    penalty = sum(reg * (P[a] @ P[a] + Q[b] @ Q[b]) + model.reg * (bu[a] ** 2 + bi[b] ** 2)
                  for a, b in zip(u, i))
    assert last["train_loss"] == pytest.approx(last["train_rmse"] ** 2 + penalty / 3, rel=1e-9)
    assert last["train_loss"] < 3.0
    assert model.n_ratings_ == len(planted[2]) + 3


def test_more_threads_than_cpus_warn(planted, monkeypatch):
    from mfcore.estimators import base
    monkeypatch.setattr(base, "available_cpus", lambda: 1)
    with pytest.warns(RuntimeWarning, match="n_threads=2 is more than the 1 CPU"):
        Model(k=2, epochs=1, n_threads=2).fit(*planted)


def test_one_scalar_pair_predicts_one_number(planted):
    model = Model(k=2, epochs=1).fit(*planted)
    u, i = planted[0][0], planted[1][0]
    one = model.predict(u, i)
    assert np.ndim(one) == 0 and one == model.predict([u], [i])[0]
    np.testing.assert_array_equal(model.predict(u, planted[1][:4]),
                                  model.predict([u] * 4, planted[1][:4]))
    np.testing.assert_array_equal(model.predict(planted[0][:4], i),
                                  model.predict(planted[0][:4], [i] * 4))


def test_a_diverging_trial_is_recorded_and_the_search_goes_on(make_planted, capsys):
    # regression: one trial with too large a learning rate aborted the search
    data = make_planted(n_users=80, n_items=60, noise=0.3)
    grid = {"lr": [0.02, 50.0, 0.01]}
    search = Search(grid, base=Model(k=3, epochs=8, n_threads=1), seed=0,
                    verbose=True).fit(*data)
    by_lr = {r["lr"]: r for r in search.results_}
    assert by_lr[50.0]["status"] == "failed" and np.isnan(by_lr[50.0]["val_rmse"])
    assert "training diverged at epoch" in by_lr[50.0]["error"]
    assert [by_lr[lr]["status"] for lr in (0.02, 0.01)] == ["ok", "ok"]
    assert search.best_params_["lr"] in (0.02, 0.01) and np.isfinite(search.best_score_)
    assert search.best_model_.lr == search.best_params_["lr"]      # refit on a finished trial
    table = search.results_frame()
    assert list(table["lr"])[-1] == 50.0 and table["best_epoch"].isna().tolist() == [
        False, False, True]                                          # failed trials last
    assert "trial 2/3: lr=50.0 -> failed: training diverged" in capsys.readouterr().out
    with pytest.raises(mfcore.TrainingDivergedError, match="every one of the 2 trials diverged"):
        Search({"lr": [50.0, 80.0]}, base=Model(k=3, epochs=8), cv=2).fit(*data)


def test_search_reports_each_trial_to_its_callback(make_planted, capsys):
    data = make_planted(n_users=80, n_items=60, noise=0.3)
    calls = []
    search = Search({"lr": [0.02, 50.0]}, base=Model(k=3, epochs=8, n_threads=1), cv=2,
                    refit=False, callback=lambda *call: calls.append(call)).fit(*data)
    assert [(n, total) for n, total, _, _ in calls] == [(1, 2), (2, 2)]
    assert [result for _, _, result, _ in calls] == search.results_   # its results_ entries
    assert calls[0][3] is None                                          # finished
    reason = calls[1][3]                                                # failed: why, as fields
    assert str(reason) == search.results_[1]["error"] and reason.startswith("fold 1: ")
    lr = [part for part in reason.parts[1].parts if isinstance(part, mfcore.errors.Setting)]
    assert [(s.name, s.value) for s in lr] == [("lr", 50.0), ("lr", 5.0)]
    assert capsys.readouterr().out == ""                                # not verbose: silent


def test_search_over_a_sampler_without_warm_start(make_planted):
    # regression: every trial set warm_start, which BayesianMF does not have (TypeError)
    data = make_planted(n_users=40, n_items=30, noise=0.3)
    search = Search({"k": [2, 3]}, base=mfcore.BayesianMF(n_samples=3, burn_in=1),
                    refit=False).fit(*data)
    assert [r["status"] for r in search.results_] == ["ok", "ok"]


def test_a_search_of_zero_epochs_scores_the_initial_model(make_planted, capsys, tmp_path):
    # fuzz finding (issue 20's CLI target): 'mfcore tune train.csv --epochs 0' raised a bare
    # StopIteration: no epoch had a validation score to read
    from mfcore.cli import main
    data = make_planted(n_users=40, n_items=30, noise=0.3)
    search = Search({"k": [2, 3]}, base=mfcore.Model(epochs=0), refit=False).fit(*data)
    mean_only = mfcore.Model(epochs=0).fit(*data)
    assert [r["status"] for r in search.results_] == ["ok", "ok"]
    assert all(np.isfinite(r["val_rmse"]) and r["best_epoch"] == 0 for r in search.results_)
    assert search.results_[0]["val_rmse"] < 2 * mean_only.evaluate(*data)["rmse"]
    import pandas as pd
    path = tmp_path / "train.csv"
    pd.DataFrame(dict(zip(("user", "item", "rating"), data))).to_csv(path, index=False)
    assert main(["tune", str(path), "--epochs", "0", "--grid", "k=2,3"]) == 0
    assert "best:" in capsys.readouterr().out


def test_exact_sum_is_the_exact_sum_in_any_order_and_grouping():
    """The mean a fit uses comes from ``exact_sum``: parts (Dask workers) must add up to it."""
    import fractions
    from mfcore.data import RatingSummary, exact_sum
    rng = np.random.default_rng(3)
    for values in (rng.integers(1, 6, 5000).astype(np.float32),          # whole stars
                   (rng.integers(1, 11, 5000) / 2).astype(np.float32),   # half stars
                   rng.normal(3.5, 1.0, 5000).astype(np.float32),        # arbitrary
                   np.r_[rng.normal(0, 1e12, 50), rng.normal(0, 1e-12, 50), 3.0]):
        exact = sum((fractions.Fraction(float(v)) for v in values), fractions.Fraction(0))
        assert exact_sum(values) == exact
        perm = rng.permutation(len(values))
        cuts = np.split(values[perm], [7, 100, 2000])
        assert sum((exact_sum(c) for c in cuts), fractions.Fraction(0)) == exact
        whole = RatingSummary.of(values)
        parts = RatingSummary.combine([RatingSummary.of(c) for c in cuts], None, None)
        assert parts.mean == whole.mean == float(exact / len(values))
    # whole and half stars: the mean is the float64 mean fits had before (exact sums)
    stars = (rng.integers(1, 11, 100_001) / 2).astype(np.float32)
    assert RatingSummary.of(stars).mean == float(np.mean(stars, dtype=np.float64))


def test_block_grid_sets_the_grid_an_sgd_epoch_runs_on(planted):
    from mfcore.estimators.sgd import SGDTrainer, choose_grid
    users, items, ratings = planted
    assert SGDTrainer(users, items, ratings.astype(np.float32), 1).grid == choose_grid(
        len(ratings), users.max() + 1, items.max() + 1)
    assert SGDTrainer(users, items, ratings.astype(np.float32), 1, grid=5).grid == 5
    a = Model(k=4, epochs=2, block_grid=5, n_threads=1).fit(users, items, ratings)
    b = Model(k=4, epochs=2, block_grid=5, n_threads=2).fit(users, items, ratings)
    c = Model(k=4, epochs=2, n_threads=1).fit(users, items, ratings)
    assert np.array_equal(a.user_factors_, b.user_factors_)  # a grid is a schedule: any threads
    assert not np.array_equal(a.user_factors_, c.user_factors_)
    with pytest.raises(ValueError, match="block_grid"):
        Model(block_grid=0).fit(users, items, ratings)


def test_a_trial_scores_the_epoch_its_model_keeps(make_planted):
    """A sampler keeps its whole chain: its score is the last sweep's validation RMSE (the
    posterior mean of every kept sample), not the best of the running values."""
    from mfcore.data import prepare
    data = make_planted(n_users=60, n_items=40, noise=1.0)
    base = mfcore.BayesianMF(k=8, n_samples=10, burn_in=1)
    search = Search({"k": [8]}, base=base, refit=False, validation_fraction=0.2,
                    seed=0).fit(*data)
    train, val = search._folds(len(data[2]), search._streams()[1])[0]
    prepared = prepare(*data, np.float32, "mean")
    trial = mfcore.BayesianMF(k=8, n_samples=10, burn_in=1)._fit_prepared(
        prepared.subset(train), (prepared.u[val], prepared.i[val], prepared.r[val]), {})
    curve = [h["val_rmse"] for h in trial.history_]
    assert min(curve) < curve[-1]                   # the case that tells the two apart
    assert search.results_[0]["val_rmse"] == curve[-1]


# --- Search state under interrupt and failure (issue 20, D7) --------------------------------

def test_a_failed_refit_leaves_the_previous_search_whole(make_planted, monkeypatch):
    data = make_planted(seed=3)
    search = mfcore.Search({"k": [2, 3]}, base=mfcore.ALS(iterations=3),
                           validation_fraction=0.2).fit(*data)
    before = (search.results_, search.best_params_, search.best_score_, search.best_model_)
    search.set_params(param_grid={"k": [4, 5]})
    real_fit = mfcore.ALS.fit

    def refit_fails(self, *args, **kwargs):
        raise MemoryError("no room for the refit")
    monkeypatch.setattr(mfcore.ALS, "fit", refit_fails)   # (trials use _fit_prepared)
    with pytest.raises(MemoryError):
        search.fit(*data)
    monkeypatch.setattr(mfcore.ALS, "fit", real_fit)
    assert (search.results_, search.best_params_, search.best_score_,
            search.best_model_) == before
    assert search.best_model_._is_fitted() and search.complete_


@pytest.mark.parametrize("when", ["trials", "refit"])
def test_ctrl_c_keeps_the_finished_trials_and_says_so(make_planted, monkeypatch, when):
    data = make_planted(seed=4)
    calls = []
    search = mfcore.Search({"k": [2, 3, 4]}, base=mfcore.ALS(iterations=3),
                           validation_fraction=0.2,
                           callback=lambda *call: calls.append(call))
    if when == "trials":
        real = mfcore.ALS._fit_prepared

        def interrupted_third(self, *args, **kwargs):
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(self, *args, **kwargs)
        monkeypatch.setattr(mfcore.ALS, "_fit_prepared", interrupted_third)
    else:
        def refit_interrupted(self, *args, **kwargs):
            raise KeyboardInterrupt
        monkeypatch.setattr(mfcore.ALS, "fit", refit_interrupted)
    with pytest.raises(KeyboardInterrupt) as info:
        search.fit(*data)
    finished = 2 if when == "trials" else 3
    assert [r["k"] for r in search.results_] == [2, 3, 4][:finished]
    assert search.best_params_["k"] in (2, 3, 4)[:finished]
    assert search.best_model_ is None and search.complete_ is False
    if hasattr(info.value, "__notes__"):
        assert f"keeps the {finished} of 3 trials" in info.value.__notes__[0]


# --- extreme rating magnitudes (issue 20, D16) -----------------------------------------------

def _noisy_ratings(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 60, n), rng.integers(0, 40, n), rng.integers(1, 6, n).astype(float))


@pytest.mark.parametrize("scale", [1e100, 1e-100, 2.0 ** 400])
def test_ratings_of_any_trainable_magnitude_give_the_same_fit_scaled(scale):
    # the spread came from float64 squares, which overflow beyond ~1e154 (and underflow below
    # ~1e-154): now it is exact wherever the squares are not
    import warnings
    u, i, r = _noisy_ratings()
    from mfcore.data import RatingSummary
    assert RatingSummary.of(r * scale).spread / scale == pytest.approx(
        RatingSummary.of(r).spread, rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mfcore.errors.ImplicitFeedbackWarning)
        warnings.filterwarnings("ignore", "merged")
        for estimator in (mfcore.Model(k=3, epochs=3, dtype="float64", seed=0),
                          mfcore.ALS(k=3, iterations=2, dtype="float64", seed=0),
                          mfcore.ALS(k=3, iterations=2, solver="cg", dtype="float64", seed=0)):
            base = estimator.fit(u, i, r).predict(u[:50], i[:50])
            scaled = estimator.fit(u, i, r * scale).predict(u[:50], i[:50])
            np.testing.assert_allclose(scaled / scale, base, rtol=1e-6)


@pytest.mark.parametrize("scale", [1e200, 1e-300])
def test_ratings_beyond_what_training_can_square_are_a_clear_error(scale):
    # they gave a false "all ratings are equal: implicit feedback" warning, then divergence
    import warnings
    u, i, r = _noisy_ratings()
    with warnings.catch_warnings(record=True) as caught, \
            pytest.raises(ValueError, match="rescale them"):
        warnings.simplefilter("always")
        mfcore.ALS(k=2, iterations=2, dtype="float64").fit(u, i, r * scale)
    assert not [w for w in caught if w.category is mfcore.errors.ImplicitFeedbackWarning]


def test_a_rating_float32_would_hold_as_zero_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"representable in float32: got 1e-300 at position 1"):
        mfcore.Model(k=2, epochs=1).fit([1, 2, 3], [1, 2, 3], [4.0, 1e-300, 3.0])
    with pytest.raises(ValueError, match=r"finite in float32.*got 1e\+200 at position 2"):
        mfcore.Model(k=2, epochs=1).fit([1, 2, 3], [1, 2, 3], [4.0, 2.0, 1e200])
