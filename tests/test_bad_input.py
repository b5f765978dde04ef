"""Every bad input gets a clear error naming the problem and the offending value."""
import numpy as np
import pytest

from mfcore import Model

GOOD = ([1, 2, 3], [4, 5, 6], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("params, message", [
    ({"k": 0}, "k must be an integer >= 1, got 0"),
    ({"k": 2.5}, "k must be an integer >= 1, got 2.5"),
    ({"k": True}, "k must be an integer >= 1, got True"),
    ({"lr": 0.0}, "lr must be a finite number > 0.0, got 0.0"),
    ({"lr": -0.1}, "lr must be a finite number > 0.0, got -0.1"),
    ({"lr": float("nan")}, "lr must be a finite number > 0.0, got nan"),
    ({"reg": -1e-3}, "reg must be a finite number >= 0.0, got -0.001"),
    ({"reg_bias": -1}, "reg_bias must be None or a finite number >= 0.0, got -1"),
    ({"epochs": -1}, "epochs must be an integer >= 0, got -1"),
    ({"n_threads": 0}, "n_threads must be None or -1 .* or an integer from 1 to 1024, got 0"),
    ({"n_threads": 10**6}, "from 1 to 1024, got 1000000"),          # would crash OpenMP
    ({"k": 10**12}, "k=1000000000000 needs .* GiB"),                 # would swap for minutes
    ({"n_threads": -2}, "got -2"),
    ({"dtype": "float16"}, "dtype must be one of .*got 'float16'"),
    ({"duplicates": "sum"}, "duplicates must be one of .*got 'sum'"),
    ({"seed": "abc"}, "seed must be None, an integer >= 0 or a numpy Generator, got 'abc'"),
    ({"seed": -1}, "seed must be None, an integer >= 0 or a numpy Generator, got -1"),
    ({"init_std": -1.0}, "init_std must be a finite number >= 0.0, got -1.0"),
])
def test_bad_hyperparameters(params, message):
    with pytest.raises(ValueError, match=message):
        Model(**params).fit(*GOOD)


@pytest.mark.parametrize("data, message", [
    (([1, 2], [4, 5, 6], [1.0, 2.0, 3.0]), "differ in length: users=2, items=3, ratings=3"),
    (([1, 2, 3], [4, 5, 6], [1.0, 2.0]), "differ in length"),
    (([], [], []), "empty"),
    (([1, 2, 3], None, None), "items is None"),
    (([1, 2, 3], [4, 5, 6], None), "ratings is None"),
    (([1, 2, 3], [4, 5, 6], [1.0, np.nan, 3.0]), "finite: got nan at position 1"),
    (([1, 2, 3], [4, 5, 6], [1.0, 2.0, np.inf]), "finite: got inf at position 2"),
    (([1, 2, 3], [4, 5, 6], ["1", "2", "x"]), "numeric: got '1' \\(str\\) at position 0"),
    (([1, 2, 3], [4, 5, 6], [1.0, "x", 3.0]), "numeric: got 'x' \\(str\\) at position 1"),
    (([1, 2, 3], [4, 5, 6], [True, False, True]), "numeric: got True \\(bool\\) at position 0"),
    (([[1, 2, 3]], [4, 5, 6], [1.0, 2.0, 3.0]), "users must be one-dimensional"),
    ((np.array([[1, 2, 3]]), [4, 5, 6], [1.0, 2.0, 3.0]), "users must be one-dimensional"),
    (([1, 2, 3], [4, 5, 6], np.array(["a", "b", "c"])), "numeric, got dtype <U1 \\(e.g. 'a'\\)"),
    (([1, 2, 3], [4.5, 5, 6], [1.0, 2.0, 3.0]), "non-integral float id 4.5 at position 0"),
])
def test_bad_training_data(data, message):
    with pytest.raises(ValueError, match=message):
        Model(k=2, epochs=1).fit(*data)


def test_predict_length_mismatch():
    model = Model(k=2, epochs=1).fit(*GOOD)
    with pytest.raises(ValueError, match="differ in length: users=2, items=1"):
        model.predict([1, 2], [4])
