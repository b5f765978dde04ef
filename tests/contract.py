"""The contract every estimator keeps: a test class that an estimator's test module subclasses.

    class TestALS(EstimatorContract):
        estimator = mfcore.ALS
        fast = {"k": 4, "iterations": 3}          # small settings for the API checks
        planted = {"k": 4, "iterations": 15}      # settings that recover planted data
        diverging = None                          # settings that diverge, if any

Each ``test_*`` method below then runs for that estimator (pytest collects the
subclass). What it expects follows the estimator's declarations
(``epochs_param``, ``capabilities``): a capability it declares is tested, one it
lacks is tested to be refused. Data are small and synthetic, with a known answer
where it matters.
"""
import pickle
import warnings

import numpy as np
import pytest

import mfcore
from mfcore import NotFittedError, TrainingDivergedError, UnknownIdWarning

def _arrays(model):
    return model._parameters()


def _same_model(a, b):
    return (all(np.array_equal(x, y) for x, y in zip(_arrays(a), _arrays(b)))
            and a.global_mean_ == b.global_mean_)


class EstimatorContract:
    estimator = None
    fast = {}
    planted = {}
    diverging = None
    planted_rmse = 0.36  # held-out RMSE to reach on planted data with noise 0.3
    values_optional = False  # fit(users, items) without ratings is valid (implicit feedback)

    def make(self, **params):
        return self.estimator(**dict(self.fast, **params))

    @pytest.fixture
    def data(self, make_planted):
        return make_planted(n_users=120, n_items=90, density=0.3, seed=3)

    @pytest.fixture
    def fitted(self, data):
        return self.make().fit(*data)

    # --- estimator manners -------------------------------------------------------

    def test_fit_returns_self_and_fitted_attributes_end_in_underscore(self, data):
        model = self.make()
        assert model.fit(*data) is model
        for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_",
                     "global_mean_", "user_map_", "item_map_", "history_", "n_epochs_"):
            assert hasattr(model, name), name
        assert isinstance(model, mfcore.FactorModel)

    def test_init_only_stores_and_params_round_trip(self):
        model = self.estimator()
        params = model.get_params()
        assert params and all(not name.endswith("_") for name in params)
        copy = self.estimator(**params)
        assert copy.get_params() == params
        name = self.estimator.epochs_param
        assert model.set_params(**{name: 7}) is model and model.get_params()[name] == 7
        with pytest.raises(ValueError, match="invalid parameter 'nonsense'"):
            model.set_params(nonsense=1)

    def test_sklearn_clone(self):
        base = pytest.importorskip("sklearn.base")
        model = self.make(seed=5)
        clone = base.clone(model)
        assert type(clone) is type(model) and clone.get_params() == model.get_params()

    def test_every_parameter_rejects_values_past_its_bounds_by_name(self, data):
        for name in self.estimator()._param_names():
            rule = self.estimator.PARAMS[name]
            assert rule.invalid_values(), name
            for value in rule.invalid_values():  # k=0, lr=0, validation_fraction=1, ...
                model = self.make(**{name: value})
                with pytest.raises(mfcore.InvalidParameterError) as info:
                    model.fit(*data)
                assert (info.value.name, info.value.rule) == (name, str(rule))
                assert info.value.value is value and str(info.value).startswith(f"{name} must")
                assert not model._is_fitted()

    # --- before fit / bad input ----------------------------------------------------

    def test_every_method_needs_a_fit(self):
        model = self.make()
        for call in (lambda: model.predict([1], [1]), lambda: model.evaluate([1], [1], [3.0]),
                     lambda: model.recommend(1), lambda: model.similar_items(1),
                     lambda: model.fold_in(1, [1], [3.0])):
            with pytest.raises(NotFittedError, match="not fitted"):
                call()

    @pytest.mark.parametrize("bad, message", [
        ({"ratings": [1.0, np.nan, 3.0]}, "finite"),
        ({"ratings": [1.0, "x", 3.0]}, "numeric"),
        ({"ratings": [1.0, 2.0]}, "differ in length"),
        ({"users": [1, "a", 2]}, "mix"),
        ({"users": [], "items": [], "ratings": []}, "empty"),
        ({"ratings": None}, "None"),
        ({"ratings": np.ones((3, 1))}, "one-dimensional"),
        ({"ratings": [[1.0], [2.0], [3.0]]}, "numeric"),
    ])
    def test_bad_input_is_named(self, bad, message):
        if self.values_optional and "ratings" in bad and bad["ratings"] is None:
            self.make().fit([1, 2, 3], [1, 1, 2], None)  # no values: every pair counts once
            return
        args = dict({"users": [1, 2, 3], "items": [1, 1, 2], "ratings": [1.0, 2.0, 3.0]}, **bad)
        with pytest.raises(ValueError, match=message):
            self.make().fit(args["users"], args["items"], args["ratings"])

    # --- results -------------------------------------------------------------------

    def test_one_and_two_threads_give_the_same_model(self, data):
        one = self.make(n_threads=1).fit(*data)
        two = self.make(n_threads=2).fit(*data)
        assert _same_model(one, two)

    def test_a_rating_file_fits_the_model_of_its_arrays(self, data, tmp_path):
        """A ``RatingChunks`` source: laid out from the file with ``"streaming"``, else read
        whole; the model of the file's arrays either way, seen items included."""
        path = tmp_path / "ratings.tsv"
        np.savetxt(path, np.c_[data[0], data[1], data[2]], fmt="%d\t%d\t%.9g")
        expected = self.make().fit(mfcore.read_ratings(path))
        model = self.make().fit(mfcore.RatingChunks(path, chunk_size=97))
        assert _same_model(model, expected)
        assert np.array_equal(model.seen_items_, expected.seen_items_)
        assert np.array_equal(model.seen_indptr_, expected.seen_indptr_)

    def test_planted_low_rank_data_is_recovered_near_its_noise(self, make_planted, train_test):
        (tu, ti, tr), (vu, vi, vr) = train_test(*make_planted(noise=0.3))
        model = self.estimator(**self.planted).fit(tu, ti, tr)
        assert model.evaluate(vu, vi, vr)["rmse"] < self.planted_rmse

    def test_divergence_raises_and_leaves_the_model_as_it_was(self, data, fitted):
        if self.diverging is None:
            pytest.skip(f"{self.estimator.__name__} has no diverging setting")
        before = [a.copy() for a in _arrays(fitted)]
        fitted.set_params(**self.diverging)
        with pytest.raises(TrainingDivergedError, match="diverged"):
            fitted.fit(*data)
        assert all(np.array_equal(a, b) for a, b in zip(before, _arrays(fitted)))

    def test_partial_fit_continues_exactly(self, data):
        if "continue" not in self.estimator.capabilities:
            with pytest.raises(NotImplementedError, match="cannot continue"):
                self.make().partial_fit(*data)
            return
        name = self.estimator.epochs_param
        whole = self.make(**{name: 2}).fit(*data)
        steps = self.make().partial_fit(*data, epochs=1).partial_fit(*data, epochs=1)
        assert _same_model(whole, steps)

    def test_early_stopping_keeps_the_best_epoch(self, data):
        if "early_stopping" not in self.estimator.capabilities:  # scored every epoch, no stop
            model = self.make(validation_fraction=0.2).fit(*data)
            assert model.best_epoch_ is None and len(model.history_) == model.n_epochs_
            assert all(np.isfinite(h["val_rmse"]) for h in model.history_)
            return
        name = self.estimator.epochs_param
        model = self.make(**{name: 30}, validation_fraction=0.2, n_iter_no_change=2).fit(*data)
        rmses = [h["val_rmse"] for h in model.history_]
        assert model.best_epoch_ == 1 + int(np.argmin(rmses))
        assert model.n_epochs_ == len(model.history_)

    def test_a_fit_runs_the_declared_epochs(self, data):
        model = self.make().fit(*data)
        limit = model.max_epochs(model._checked_params())
        assert model.n_epochs_ == len(model.history_) == limit and limit >= 3

    def test_it_is_registered_under_its_name(self):
        assert mfcore.estimators.ALGORITHMS[self.estimator.name] is self.estimator

    def test_callback_sees_each_epoch_and_can_stop(self, data):
        seen = []
        model = self.make().fit(*data, callback=lambda m, e, rec: seen.append(e) or e == 2)
        assert seen == [1, 2] and model.n_epochs_ == 2

    # --- fitted model ------------------------------------------------------------------

    def test_pickle_and_save_load_keep_class_and_predictions(self, tmp_path, data, fitted):
        users, items = data[0][:50], data[1][:50]
        expected = fitted.predict(users, items)
        again = pickle.loads(pickle.dumps(fitted))
        fitted.save(tmp_path / "m.mfz")
        loaded = mfcore.load(tmp_path / "m.mfz")
        for model in (again, loaded):
            assert type(model) is type(fitted)
            assert model.get_params() == fitted.get_params()
            assert np.array_equal(model.predict(users, items), expected)
            assert np.array_equal(model.recommend(users[0], n=5)[0], fitted.recommend(users[0], n=5)[0])

    def test_unfitted_save_load(self, tmp_path):
        self.make(seed=11).save(tmp_path / "u.mfz")
        loaded = mfcore.load(tmp_path / "u.mfz")
        assert type(loaded) is self.estimator and loaded.get_params()["seed"] == 11

    def test_fold_in_a_new_user_predicts_from_its_ratings(self, data, fitted):
        users, items, ratings = data
        if not fitted.supports("fold_in"):  # (the class's, or ruled out by a hyperparameter)
            with pytest.raises(NotImplementedError):
                fitted.fold_in(10**6, items[:3], ratings[:3])
            return
        mine = users == users[0]
        model = fitted.fold_in("new" if fitted.user_map_.kind == "str" else 10**6,
                               items[mine], ratings[mine])
        new = 10**6
        assert model is fitted and new in set(fitted.user_map_.ids.tolist())
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnknownIdWarning)
            pred = fitted.predict(np.full(mine.sum(), new), items[mine])
            known = fitted.predict(users[mine], items[mine])
        # the folded-in user behaves like the user whose ratings it was given
        assert np.corrcoef(pred, known)[0, 1] > 0.9

    def test_unknown_ids_fall_back_and_warn(self, fitted):
        with pytest.warns(UnknownIdWarning, match="1 unknown user"):
            pred = fitted.predict([10**7], [fitted.item_map_.ids[0]])
        assert np.isfinite(pred).all()
