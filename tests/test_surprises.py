"""No silent surprises: what a newcomer hit without a word (issue 21) now warns, explains or
does what the documentation says."""
import ast
import inspect
import os
import pathlib
import re
import warnings

import numpy as np
import pytest

import mfcore
from mfcore import datasets

ROOT = pathlib.Path(__file__).resolve().parents[1]


def planted(n_users=40, n_items=30, density=0.4, seed=0):
    rng = np.random.default_rng(seed)
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    r = np.clip(np.round(3 + rng.normal(0, 1, len(u))), 1, 5)
    return u, i, r


def quiet_fit(model, *data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a plain fit of plain data warns about nothing
        return model.fit(*data, **kw)


def test_recommend_with_candidates_ranks_the_whole_given_list():
    u, i, r = planted()
    model = quiet_fit(mfcore.Model(k=3, epochs=3), u, i, r)
    rated = i[u == 0][:2]
    unrated = np.setdiff1d(np.arange(30), i[u == 0])[:1]
    cand = np.r_[rated, unrated]
    items, scores = model.recommend(0, n=5, items=cand)
    assert sorted(items) == sorted(cand) and np.all(np.diff(scores) <= 0)
    items, _ = model.recommend(0, n=5, items=cand, exclude_seen=True)  # asked for: dropped
    assert list(items) == list(unrated)


def test_mfcore_data_pointing_at_a_missing_folder_or_one_level_too_deep_warns(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MFCORE_DATA", str(tmp_path / "nowhere"))
    with pytest.warns(UserWarning, match="nowhere.*not a folder.*holds ml-100k/"):
        with pytest.raises(mfcore.DataUnavailableError):
            datasets.movielens_path("ml-100k", download=False)
    deep = tmp_path / "data" / "ml-100k"
    deep.mkdir(parents=True)
    (deep / "u.data").write_text("1\t1\t5\t0\n")
    monkeypatch.setenv("MFCORE_DATA", str(deep))
    with pytest.warns(UserWarning, match="the ml-100k folder itself.*which is used"):
        path = datasets.movielens_path("ml-100k", download=False)
    assert pathlib.Path(path) == deep / "u.data"
    monkeypatch.setenv("MFCORE_DATA", str(tmp_path))
    with pytest.warns(UserWarning, match="has no ml-100k/u.data"):
        with pytest.raises(mfcore.DataUnavailableError):
            datasets.movielens_path("ml-100k", download=False)


def test_timestamps_passed_as_ratings_warn():
    u, i, _ = planted()
    stamps = 874_965_758 + np.arange(len(u)) * 60
    with pytest.warns(UserWarning, match="like Unix timestamps .dates 1997-09-2.*timestamp column"):
        mfcore.Model(k=2, epochs=1).fit(u, i, stamps)


def test_a_fold_in_rating_far_outside_the_training_range_warns():
    u, i, r = planted()
    model = quiet_fit(mfcore.Model(k=2, epochs=2), u, i, r)
    with pytest.warns(UserWarning, match="rating 50.0 is far outside .* 1 to 5"):
        model.fold_in(999, [0, 1], [50, 40])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fold_in(998, [0, 1], [5, 1])


def test_validation_whose_ids_are_all_unknown_warns():
    u, i, r = planted()
    with pytest.warns(mfcore.UnknownIdWarning, match="none of the 2 validation ratings.*"
                      "measure nothing"):
        mfcore.Model(k=2, epochs=2).fit(u, i, r, validation=([10**6, 5], [3, 10**6], [4, 4]))


def test_ratings_that_link_no_users_warn_that_there_is_no_collaborative_signal():
    n = 2000
    users, items = np.arange(n), np.arange(n) + 10**6
    r = np.random.default_rng(0).integers(1, 6, n).astype(float)
    with pytest.warns(UserWarning, match="100% of the 2,000 ratings are the only rating of "
                      "both.*nothing collaborative"):
        mfcore.Model(k=2, epochs=1).fit(users, items, r)


def test_als_with_a_huge_k_states_the_expected_cost():
    u, i, r = planted(n_users=300, n_items=300, density=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # said before the first iteration runs
        with pytest.raises(RuntimeWarning, match=r"ALS with k=2000: an iteration takes about "
                           r".* floating-point operations .* minute"):
            mfcore.ALS(k=2000, iterations=1).fit(u, i, r)
    quiet_fit(mfcore.ALS(k=64, iterations=1), u, i, r)


def test_save_to_a_folder_says_it_is_a_folder(tmp_path):
    u, i, r = planted()
    model = quiet_fit(mfcore.Model(k=2, epochs=1), u, i, r)
    with pytest.raises(OSError, match="it is a folder; give a file name"):
        model.save(tmp_path)


def test_bayesian_partial_fit_documents_that_it_is_not_offered():
    doc = " ".join(mfcore.BayesianMF.partial_fit.__doc__.split())
    assert 'Only estimators with the ``"continue"`` capability have it' in doc
    assert "continue" not in mfcore.BayesianMF.capabilities
    assert "partial_fit`` and ``warm_start`` are not offered" in " ".join(
        mfcore.BayesianMF.__doc__.split())
    assert "ALS, mfcore.Model or mfcore.BayesianMF" in " ".join(
        pytest.importorskip("mfcore.dask").fit.__doc__.split()).replace("``", "")


def test_cli_train_of_bayes_states_its_sweeps_and_no_best_epoch(tmp_path, capsys):
    from mfcore.cli import main
    u, i, r = planted()
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(u, i, r)))
    assert main(["train", str(path), "-o", str(tmp_path / "b.mfz"), "--algorithm", "bayes",
                 "--n-samples", "6", "--burn-in", "4", "--val", "0.1", "--verbose"]) == 0
    captured = capsys.readouterr()
    assert "up to 10 sweeps" in captured.err + captured.out
    assert "best epoch None" not in captured.out and "validation (" in captured.out


# --- documented defaults equal the code's ---------------------------------------------------

def documented_defaults(doc):
    """{name: default} from the numpy-style parameter lines of a docstring
    (``k : int, default 64``; ``alpha_0, beta_0 : float, default 1.0``;
    ``n_iter_no_change, tol : int (default 10), float (default 0.0)``)."""
    found = {}
    for line in doc.splitlines():
        m = re.match(r"\s+([a-z_0-9]+(?:, [a-z_0-9]+)*) : (.*)$", line)
        if not m:
            continue
        names = m.group(1).split(", ")
        values = re.findall(r"default (\"[^\"]*\"|[^,()\s]+)", m.group(2))
        if len(values) == 1:
            values = values * len(names)
        if len(values) == len(names):
            found.update(zip(names, (ast.literal_eval(v) for v in values)))
    return found


@pytest.mark.parametrize("obj", [mfcore.Model, mfcore.ALS, mfcore.BayesianMF],
                         ids=lambda o: o.__name__)
def test_every_documented_default_equals_the_codes(obj):
    signature = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    documented = documented_defaults(obj.__doc__)
    assert len(documented) >= 2, f"no 'default' in {obj.__name__}'s parameter lines"
    for name, value in documented.items():
        assert name in signature.parameters, f"{obj.__name__} documents unknown {name!r}"
        assert signature.parameters[name].default == value, (obj.__name__, name)


def test_the_readme_quick_start_runs_as_written(tmp_path, monkeypatch):
    if not os.environ.get("MFCORE_DATA"):
        pytest.skip("MFCORE_DATA is not set: real MovieLens data unavailable")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)  # the first example
    monkeypatch.chdir(tmp_path)  # from any folder (the model file lands here)
    scope = {}
    exec(compile(code, "README quick start", "exec"), scope)
    assert scope["model"].evaluate(scope["test"])["rmse"] < 1.0
    assert len(scope["model"].recommend(1, n=5, items=[50, 181, 258])[0]) == 3  # all ranked
