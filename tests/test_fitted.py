"""What every fitted model does with what it learnt, shown on SGD: the fitted attributes, ids
(strings, pandas, integral floats), clipping, unknown ids, evaluation, duplicate policies.

What every estimator must do (fit returns self, parameters, pickling, threads, planted
data, divergence ...) is the contract suite's (tests/contract.py)."""
import warnings

import numpy as np
import pytest

import mfcore
from mfcore import Model, UnknownIdWarning
from mfcore.errors import DuplicateRatingsWarning


def test_fitted_attributes_describe_the_training_data(tiny):
    model = Model(k=3, epochs=2).fit(*tiny)
    assert model.user_factors_.shape == (5, 3)
    assert model.item_factors_.shape == (4, 3)
    assert model.user_bias_.shape == (5,) and model.item_bias_.shape == (4,)
    assert model.global_mean_ == pytest.approx(np.mean(tiny[2]))
    assert model.rating_range_ == (1.0, 5.0)
    assert model.n_ratings_ == 10
    assert [h["epoch"] for h in model.history_] == [1, 2]
    assert list(model.user_map_.ids) == [1, 2, 3, 4, 5]
    assert model.user_factors_.dtype == np.float32


def test_float64_on_request(tiny):
    model = Model(k=2, epochs=3, dtype="float64").fit(*tiny)
    assert model.user_factors_.dtype == np.float64
    assert model.predict([1], [10]).dtype == np.float64


def test_predictions_are_clipped_unless_asked(planted):
    model = Model(k=4, epochs=10, seed=0).fit(*planted)
    users, items = planted[0][:2000], planted[1][:2000]
    lo, hi = model.rating_range_
    clipped = model.predict(users, items)
    raw = model.predict(users, items, clip=False)
    assert clipped.min() >= lo and clipped.max() <= hi
    assert np.array_equal(clipped, np.clip(raw, lo, hi))


def test_string_ids_and_pandas_series():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"u": ["ann", "bob", "ann", "cy"], "i": ["x", "y", "y", "x"],
                          "r": [4.0, 2.0, 5.0, 3.0]})
    model = Model(k=2, epochs=5).fit(frame["u"], frame["i"], frame["r"])
    assert list(model.user_map_.ids) == ["ann", "bob", "cy"]
    pred = model.predict(pd.Series(["ann", "cy"]), ["y", "x"])
    assert pred.shape == (2,) and np.all(np.isfinite(pred))
    with pytest.raises(TypeError, match="ids are strs but got ints"):
        model.predict([1], ["x"])


def test_integral_float_ids_equal_integer_ids(tiny):
    users, items, ratings = tiny
    a = Model(k=2, epochs=3, n_threads=1).fit(users, items, ratings)
    b = Model(k=2, epochs=3, n_threads=1).fit(users.astype(float), items.astype(float), ratings)
    assert np.array_equal(a.user_factors_, b.user_factors_)
    assert np.array_equal(a.predict([5863.0, 1.0], [10, 20.0], unknown="nan")[1:],
                          a.predict([1], [20]))
    with pytest.raises(ValueError, match="non-integral float id 1.5"):
        a.predict([1.5], [10])


def test_mixed_id_types_are_rejected():
    with pytest.raises(ValueError, match="mixed id types"):
        Model(k=2, epochs=1).fit([1, "1", 2], [1, 2, 3], [3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="missing or non-finite id"):
        Model(k=2, epochs=1).fit([1.0, np.nan], [1, 2], [3.0, 4.0])
    with pytest.raises(ValueError, match="invalid id None"):
        Model(k=2, epochs=1).fit([1, None], [1, 2], [3.0, 4.0])


def test_unknown_ids_fall_back_to_known_bias_and_warn(tiny):
    model = Model(k=3, epochs=5).fit(*tiny)
    mu = model.global_mean_
    item_row = model.item_map_.lookup([10])[0]
    user_row = model.user_map_.lookup([2])[0]
    with pytest.warns(UnknownIdWarning, match="2 unknown user id.*2 unknown item id"):
        pred = model.predict([99, 99, 2], [10, 77, 77], clip=False)
    np.testing.assert_allclose(pred, [mu + model.item_bias_[item_row], mu,
                                      mu + model.user_bias_[user_row]], rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nan_pred = model.predict([99, 1], [10, 10], unknown="nan")
    assert np.isnan(nan_pred[0]) and np.isfinite(nan_pred[1])
    with pytest.raises(KeyError, match="user 99") as caught:
        model.predict([99], [10], unknown="error")
    assert isinstance(caught.value, mfcore.UnknownIdError)
    assert str(caught.value).startswith("1 unknown user id")      # not KeyError's quoted repr


def test_warnings_point_at_the_callers_line(tiny):
    users, items, ratings = tiny
    with pytest.warns(DuplicateRatingsWarning) as caught:
        model = Model(k=2, epochs=1).fit(list(users) + [1], list(items) + [10], list(ratings) + [1])
    assert caught[0].filename == __file__
    with pytest.warns(UnknownIdWarning) as caught:
        model.predict([99], [10])
    with pytest.warns(UnknownIdWarning) as more:
        model.recommend(99)
    assert caught[0].filename == more[0].filename == __file__
    with pytest.raises(ValueError, match="unknown must be one of"):
        model.predict([1], [10], unknown="zero")


def test_evaluate_reports_rmse_mae_and_unknown_counts(tiny):
    model = Model(k=2, epochs=5).fit(*tiny)
    users, items, ratings = tiny
    res = model.evaluate(np.append(users, 77), np.append(items, 10), np.append(ratings, 3.0))
    with pytest.warns(UnknownIdWarning):
        pred = model.predict(np.append(users, 77), np.append(items, 10))
    truth = np.append(ratings, 3.0)
    assert res["rmse"] == pytest.approx(np.sqrt(np.mean((pred - truth) ** 2)), rel=1e-6)
    assert res["mae"] == pytest.approx(np.mean(np.abs(pred - truth)), rel=1e-6)
    assert res["unknown_users"] == 1 and res["unknown_items"] == 0 and res["n"] == 11


@pytest.mark.parametrize("policy, expected", [("mean", 4.0), ("last", 5.0)])
def test_duplicate_pairs_are_merged(policy, expected):
    users, items, ratings = [1, 1, 2, 1], [7, 7, 7, 8], [3.0, 5.0, 4.0, 2.0]
    with pytest.warns(DuplicateRatingsWarning, match="1 duplicate"):
        model = Model(k=1, epochs=0, duplicates=policy).fit(users, items, ratings)
    assert model.n_ratings_ == 3
    assert model.global_mean_ == pytest.approx(np.mean([expected, 4.0, 2.0]))


@pytest.mark.parametrize("policy", ["mean", "last"])
def test_many_duplicates_match_a_dict_reference(policy):
    rng = np.random.default_rng(3)
    users, items = rng.integers(0, 6, 300), rng.integers(100, 108, 300)  # ~6 copies a pair
    ratings = rng.integers(1, 6, 300).astype(float)
    groups = {}
    for u, i, r in zip(users, items, ratings):
        groups.setdefault((u, i), []).append(r)
    merged = {pair: (np.mean(rs) if policy == "mean" else rs[-1]) for pair, rs in groups.items()}
    with pytest.warns(DuplicateRatingsWarning, match=f"{300 - len(groups)} duplicate"):
        model = Model(k=1, epochs=0, duplicates=policy, dtype="float64").fit(users, items, ratings)
    assert model.n_ratings_ == len(groups)
    assert model.global_mean_ == pytest.approx(np.mean(list(merged.values())), rel=1e-12)
    rows = np.repeat(np.arange(len(model.user_map_)), np.diff(model.seen_indptr_))
    assert set(zip(model.user_map_.ids[rows], model.item_map_.ids[model.seen_items_])) == set(groups)


def test_duplicate_policies_keep_and_error():
    users, items, ratings = [1, 1, 2], [7, 7, 7], [3.0, 5.0, 4.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Model(k=1, epochs=1, duplicates="keep").fit(users, items, ratings).n_ratings_ == 3
    with pytest.raises(ValueError, match="1 duplicate .*user 1, item 7"):
        Model(k=1, epochs=1, duplicates="error").fit(users, items, ratings)


def test_each_estimators_unknown_id_warning_says_how_it_predicted(tiny):
    # BayesianMF's said "global mean and the known bias" where an unknown id gets the prior
    # of its group: each estimator's warning now states its declared fallback
    from mfcore.fitted import FactorModel
    from mfcore.registry import ESTIMATORS
    texts = {}
    for name, cls in ESTIMATORS.items():
        epochs = {cls.epochs_param: 3} if cls.epochs_param != "n_samples" else {
            "n_samples": 4, "burn_in": 2}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cls(k=2, seed=0, **epochs).fit(*tiny)
        with pytest.warns(UnknownIdWarning) as caught:
            pred = model.predict([99], [10], clip=False)
        message = str(caught[0].message)
        assert message.endswith("; " + cls.unknown_fallback), (name, message)
        texts[name] = cls.unknown_fallback
        if cls.unknown_fallback == FactorModel.unknown_fallback:   # then it is mu + b_i
            row = model.item_map_.lookup([10])[0]
            np.testing.assert_allclose(pred, [model.global_mean_ + model.item_bias_[row]],
                                       rtol=1e-6)
    assert "prior" in texts["bayes"] and "known bias" not in texts["bayes"]
