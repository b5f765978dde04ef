"""What is SGD's own (the contract suite, tests/contract.py, covers what every estimator does):
a seed fixes the fit, divergence advice in learning-rate terms, zero epochs, the alias."""
import numpy as np
import pytest

import mfcore
from mfcore import SGD, TrainingDivergedError

Model = SGD


def test_model_is_the_alias_of_sgd(tmp_path, tiny):
    assert mfcore.Model is mfcore.SGD and mfcore.SGD.name == "sgd"
    SGD(k=2, epochs=1).fit(*tiny).save(tmp_path / "m.mfz")
    assert type(mfcore.load(tmp_path / "m.mfz")) is SGD


def test_a_seed_fixes_the_fit_and_another_changes_it(planted):
    a = Model(k=6, epochs=5, n_threads=1, seed=42).fit(*planted)
    b = Model(k=6, epochs=5, n_threads=1, seed=42).fit(*planted)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    c = Model(k=6, epochs=5, n_threads=1, seed=43).fit(*planted)
    assert not np.array_equal(a.user_factors_, c.user_factors_)


def test_divergence_names_the_epoch_and_suggests_a_smaller_learning_rate(tiny):
    fresh = SGD(lr=50.0, epochs=50, k=8)
    with pytest.raises(TrainingDivergedError, match=r"epoch \d+.*smaller learning rate, e.g. lr=5"):
        fresh.fit(*tiny)
    assert not hasattr(fresh, "user_factors_")


def test_zero_epochs_gives_biases_at_zero(tiny):
    model = Model(k=2, epochs=0).fit(*tiny)
    assert np.all(model.user_bias_ == 0) and model.history_ == []
