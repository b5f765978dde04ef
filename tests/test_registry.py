"""One registration line makes a new estimator part of mfcore: the contract suite, the CLI,
search, the scikit-learn adapter and persistence all take it from its declarations."""
import numpy as np
import pytest

import mfcore
from mfcore import cli, registry
from mfcore.estimators import ALGORITHMS, Estimator, register

from contract import EstimatorContract
from toy_estimator import Toy


@pytest.fixture(autouse=True, scope="module")
def toy_registered():
    register(Toy)  # the one line a new estimator adds
    yield
    registry._CLASSES.pop("toy")  # (tests only: leave the registry as the package has it)


class TestToy(EstimatorContract):
    estimator = Toy
    fast = {"k": 2, "sweeps": 3}
    planted = {"k": 4, "sweeps": 10, "reg": 0.02}


def test_the_cli_trains_tunes_and_predicts_with_it(tmp_path, capsys, make_planted):
    users, items, ratings = make_planted(n_users=60, n_items=40, density=0.3, seed=4)
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n" + "".join(
        f"{u},{i},{r:.3f}\n" for u, i, r in zip(users, items, ratings)))
    assert cli.main(["train", str(path), "-o", str(tmp_path / "t.mfz"), "--algorithm", "toy",
                     "--k", "2", "--sweeps", "3", "--reg", "0.1"]) == 0
    out, err = capsys.readouterr()
    assert "up to 3 alternations" in err and "ran all 3 alternations" in out
    model = mfcore.load(tmp_path / "t.mfz")
    assert type(model) is Toy and model.reg == 0.1
    assert cli.main(["tune", str(path), "--algorithm", "toy", "--sweeps", "4", "-q"]) == 0
    out = capsys.readouterr().out
    assert "4 trials" in out and "best: --k" in out and "--sweeps" in out  # default grid, refit
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "toy (mfcore.Toy)" in " ".join(capsys.readouterr().out.split())


def test_search_and_sklearn_take_it(make_planted):
    users, items, ratings = make_planted(n_users=60, n_items=40, density=0.3, seed=5)
    search = mfcore.Search({"reg": [0.02, 0.2]}, base=Toy(k=2, sweeps=6)).fit(users, items,
                                                                              ratings)
    assert len(search.results_) == 2 and "sweeps" in search.best_params_  # stops early
    assert type(search.best_model_) is Toy
    pytest.importorskip("sklearn")
    from mfcore.sklearn import regressor_for
    X = np.column_stack([users, items])
    reg = regressor_for(Toy)(k=2, sweeps=3).fit(X, ratings)
    assert isinstance(reg.model_, Toy) and reg.score(X, ratings) > 0


def test_every_registered_estimator_declares_itself_consistently():
    for name, cls in ALGORITHMS.items():
        assert cls.name == name and issubclass(cls, Estimator)
        cls._check_declarations()
    assert list(ALGORITHMS)[:3] == ["sgd", "als", "bayes"]


@pytest.mark.parametrize("declaration, message", [
    ({"epochs_param": "epochs"}, "epochs_param 'epochs' is not a parameter"),
    ({"capabilities": frozenset({"flying"})}, "capability 'flying' is not one of"),
    ({"capabilities": frozenset({"dask"})}, "capability 'early_stopping' goes with"),
    ({"default_grid": {"lr": [0.1]}}, "default_grid names 'lr'"),
    ({"name": "Toy2"}, "its name must be a lower-case identifier"),
    ({"PARAMS": {"k": Toy.PARAMS["k"]}}, "parameter 'reg' has no check in PARAMS"),
])
def test_registering_refuses_wrong_declarations(declaration, message):
    wrong = type("Wrong", (Toy,), dict({"name": "wrong"}, **declaration))
    with pytest.raises(ValueError, match=message):
        register(wrong)
    assert "wrong" not in ALGORITHMS
