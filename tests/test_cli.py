"""The command line: train -> evaluate -> predict -> info round trip, bad input, the demo (offline)."""
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mfcore
from mfcore import cli, datasets
from mfcore.cli.common import say
from mfcore.errors import InvalidParameterError, Message, Setting

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    data = datasets.synthetic(n_users=150, n_items=80, n_ratings=4_000, min_per_user=5, seed=2)
    train, test = data.iloc[:3_500], data.iloc[3_500:]
    with open(folder / "train.dat", "w") as fh:  # MovieLens '::' layout
        for u, i, r in train.itertuples(index=False):
            fh.write(f"{u}::{i}::{int(r)}::978300760\n")
    test.to_csv(folder / "test.csv", index=False)
    test[["user", "item"]].iloc[:10].to_csv(folder / "pairs.tsv", sep="\t", index=False,
                                            header=False)
    return folder


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_evaluate_predict_info_round_trip(files, capsys):
    model = files / "model.mfz"
    code, out, err = run(capsys, "train", files / "train.dat", "-o", model, "--k", 8,
                         "--epochs", 20, "--reg", 0.05, "--val", 0.1, "--n-threads", 1)
    assert code == 0, err
    assert "trained on 3,150 ratings" in out and "validation (350 ratings): RMSE" in out
    assert model.exists()

    code, out, err = run(capsys, "evaluate", model, files / "test.csv", "--json")
    assert code == 0, err
    scores = json.loads(out)
    assert scores["n"] == 500 and 0.3 < scores["rmse"] < 1.3 and scores["mae"] < scores["rmse"]

    code, out, err = run(capsys, "predict", model, files / "pairs.tsv")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "user,item,prediction" and len(lines) == 11
    values = [float(line.split(",")[2]) for line in lines[1:]]
    assert all(1.0 <= v <= 5.0 for v in values)

    out_csv = files / "pred.csv"
    code, _, err = run(capsys, "predict", model, files / "test.csv", "-o", out_csv)
    assert code == 0, err
    pred = pd.read_csv(out_csv)
    assert list(pred.columns) == ["user", "item", "rating", "prediction"] and len(pred) == 500
    rmse = float(np.sqrt(np.mean((pred["rating"] - pred["prediction"]) ** 2)))
    assert rmse == pytest.approx(scores["rmse"], abs=1e-3)   # 4-decimal CSV rounding

    code, out, err = run(capsys, "predict", model, "--user", 1, 2, "--item", 1, 999999)
    assert code == 0 and len(out.strip().splitlines()) == 3
    assert "unknown" in err                                    # item 999999 was never seen

    code, out, err = run(capsys, "info", model)
    assert code == 0, err
    assert "fitted" in out and "k=8" in out and "users x 80 items" in out
    assert "training ran all" in out or "training stopped early" in out   # how the fit ended
    code, out, _ = run(capsys, "info", model, "--json")
    assert json.loads(out)["params"]["k"] == 8 and json.loads(out)["stop_reason"]


@pytest.mark.parametrize("argv, code, message", [
    (["train", "{d}/train.dat"], 2, "required: -o"),
    (["train", "{d}/train.dat", "-o", "{d}/m.mfz", "--k", "0"], 2,
     "--k must be an integer >= 1, got 0"),
    (["train", "{d}/train.dat", "-o", "{d}/m.mfz", "--val", "1.5"], 2, "--val"),
    (["train", "{d}/missing.csv", "-o", "{d}/m.mfz"], 1, "not found"),
    (["train", "{d}/bad.csv", "-o", "{d}/m.mfz"], 1, "bad.csv, line 2"),
    (["evaluate", "{d}/not_a_model.mfz", "{d}/test.csv"], 1, "not an mfcore model"),
    (["evaluate", "{d}/model.mfz", "{d}/test.csv", "-k", "5"], 2, "go with --ranking"),
    (["evaluate", "{d}/model.mfz", "{d}/test.csv", "--ranking", "-k", "0"], 2,
     "argument -k/--k: must be at least 1, got 0"),
    (["evaluate", "{d}/model.mfz", "{d}/test.csv", "--ranking", "-k", "500"], 1,
     "exceeds the 80 items"),
    (["evaluate", "{d}/model.mfz", "{d}/test.csv", "--ranking", "--threshold", "9"], 1,
     "no relevant rating (none >= threshold 9)"),
    (["evaluate", "{d}/model.mfz", "{d}/test.csv", "--ranking", "--rank-by", "x"], 2,
     "invalid choice: 'x'"),
    (["predict", "{d}/model.mfz"], 2, "either a pairs file"),
    (["predict", "{d}/model.mfz", "--user", "1", "2", "--item", "1"], 2, "2 --user ids"),
    (["predict", "{d}/model.mfz", "--user", "1", "--item", "1", "--unknown", "error",
      "--item", "424242"], 1, "unknown"),
    (["frobnicate"], 2, "invalid choice"),
    (["train", "{d}/train.dat", "-o", "{d}/m.mfz", "--bogus", "1"], 2,
     "usage: mfcore train"),                         # the command's usage, not the top level
    (["tune", "{d}/train.dat", "--grid", "kk=4"], 2, "invalid parameter 'kk'"),
    (["tune", "{d}/train.dat", "--grid", "k=0,4"], 2, "k must be an integer >= 1, got 0"),
    (["tune", "{d}/train.dat", "--grid", "k"], 2, "NAME=V1,V2"),
    # each value is read by the --algorithm's own rule for it (its constraint's cli_type)
    (["train", "{d}/train.dat", "-o", "{d}/m.mfz", "--k", "1.5"], 2,
     "--k takes an integer >= 1, got '1.5'"),
    (["train", "{d}/train.dat", "-o", "{d}/m.mfz", "--reg", "lots"], 2,
     "--reg takes a finite number >= 0.0, got 'lots'"),
    (["tune", "{d}/train.dat", "--grid", "k=4,eight"], 2, "--k takes an integer >= 1, got 'eight'"),
    (["tune", "{d}/train.dat", "--grid", "k=4", "--grid", "k=8"], 2, "'k' twice"),
    (["tune", "{d}/train.dat", "--cv", "1"], 2, "--cv must be at least 2"),
    (["tune", "{d}/train.dat", "--n-iter", "0"], 2, "--n-iter must be at least 1"),
    (["tune", "{d}/missing.csv", "--grid", "k=4"], 1, "not found"),
])
def test_bad_arguments_and_files_fail_clearly(files, capsys, argv, code, message):
    (files / "bad.csv").write_text("1,2,5\n1,3,lots\n")
    (files / "not_a_model.mfz").write_text("hello")
    if not (files / "model.mfz").exists():
        run(capsys, "train", files / "train.dat", "-o", files / "model.mfz", "--epochs", 2)
    argv = [a.format(d=files) for a in argv]
    with pytest.raises(SystemExit) if code == 2 else _no_exit() as caught:
        got = cli.main(argv)
    out, err = capsys.readouterr()
    if code == 2:
        assert caught.value.code == 2
    else:
        assert got == 1
    assert message in err


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_help_for_every_command_and_module_entry_point(tmp_path):
    for command in ["train", "tune", "evaluate", "predict", "recommend", "similar", "info",
                    "demo"]:
        with pytest.raises(SystemExit) as caught:
            cli.main([command, "--help"])
        assert caught.value.code == 0
    # the mfcore under test (installed, or built in place), not an unbuilt source folder in cwd
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mfcore.__file__)))
    result = subprocess.run([sys.executable, "-m", "mfcore", "--help"], capture_output=True,
                            text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0 and "demo" in result.stdout


def test_tune_prints_the_grid_and_saves_the_refit_best(files, capsys):
    model, table = files / "tuned.mfz", files / "trials.csv"
    code, out, err = run(capsys, "tune", files / "train.dat", "--grid", "k=2,8",
                         "--grid", "reg=0.02,0.3", "--epochs", 40, "--n-threads", 1,
                         "-o", model, "--results", table)
    assert code == 0, err
    assert "4 trials on 3,500 ratings, scored by a 0.1 validation split" in out
    assert "searching 4 grid points of SGD on 3,500 ratings" in err        # progress
    assert out.count("-> val RMSE") == 4 and "trial 4/4: --k 8 --reg 0.3" in out   # progress
    trials = pd.read_csv(table)
    assert len(trials) == 4 and set(zip(trials["k"], trials["reg"])) == {
        (2, 0.02), (2, 0.3), (8, 0.02), (8, 0.3)}
    best = trials.loc[trials["val_rmse"].idxmin()]
    k, reg, epochs = int(best["k"]), float(best["reg"]), int(best["best_epoch"])
    assert f"best: --k {k} --reg {reg} --epochs {epochs}" in out
    tuned = mfcore.load(model)
    assert (tuned.k, tuned.reg, tuned.epochs) == (k, reg, epochs)
    assert tuned.n_ratings_ == 3_500                      # refit on the whole file

    code, out, err = run(capsys, "tune", files / "train.dat", "--grid", "k=2,4,8",
                         "--n-iter", 2, "--cv", 3, "--epochs", 5, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert len(result["results"]) == 2 and result["best_val_rmse"] == min(
        r["val_rmse"] for r in result["results"])


def test_demo_without_real_data_says_so_and_uses_synthetic(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("MFCORE_DATA", raising=False)
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path))
    code, out, err = run(capsys, "demo", "--no-download")
    assert code == 0, err
    assert "MovieLens 100K unavailable" in out and "synthetic" in out
    assert "1,000,209 ratings" in out
    assert "validation RMSE" in out and "test RMSE" in out and out.count("predicted") == 5
    assert "training k=20 for up to 200 epochs" in err and "kept epoch" in out


def test_demo_on_real_movielens_100k(ml100k, capsys):
    ml100k("u.data")  # skips when absent
    code, out, err = run(capsys, "demo", "--no-download")
    assert code == 0, err
    assert "MovieLens 100K (" in out and "80,000 train, 10,000 validation, 10,000 test" in out
    test_rmse = float(out.split("test RMSE")[1].split()[0])
    assert 0.85 < test_rmse < 0.97


def test_string_ids_round_trip(tmp_path, capsys):
    lines = ["user,item,rating"] + [f"u{u},{i},{(u * i) % 5 + 1}" for u in range(30)
                                    for i in range(0, 20, 1 + u % 3)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "pairs.csv").write_text("user,item\nu1,3\nu2,4\n")
    model = tmp_path / "m.mfz"
    assert run(capsys, "train", tmp_path / "r.csv", "-o", model, "--epochs", 3,
               "--ids", "str")[0] == 0
    code, out, err = run(capsys, "predict", model, tmp_path / "pairs.csv")
    assert code == 0, err
    assert out.splitlines()[1].startswith("u1,3,")
    code, out, err = run(capsys, "evaluate", model, tmp_path / "r.csv")
    assert code == 0 and "0 unknown users, 0 unknown items" in out, err


def test_algorithm_als_trains_tunes_and_is_recorded(files, capsys, tmp_path):
    model = tmp_path / "als.mfz"
    code, out, err = run(capsys, "train", files / "train.dat", "-o", model, "--algorithm", "als",
                         "--k", 6, "--iterations", 4, "--val", 0.1)
    assert code == 0, err
    assert "ALS k=6, 4 iterations" in out and "validation (350 ratings): RMSE" in out
    assert type(mfcore.load(model)) is mfcore.ALS
    code, out, err = run(capsys, "info", model)
    assert code == 0 and "iterations=4" in out
    code, out, err = run(capsys, "tune", files / "train.dat", "--algorithm", "als",
                         "--grid", "reg=0.05,0.2", "--k", 4, "-q")
    assert code == 0, err
    assert "2 trials" in out and "--iterations" in out  # the best epoch count is ALS's


def test_a_flag_of_another_algorithm_is_a_usage_error(files, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", str(files / "train.dat"), "-o", str(tmp_path / "m.mfz"),
                  "--algorithm", "als", "--lr", "0.1"])
    assert exit_info.value.code == 2
    assert "--lr does not apply to --algorithm als" in capsys.readouterr().err


def test_divergence_is_one_line_in_cli_terms(files, capsys, tmp_path):
    # regression: 'mfcore train ... --lr 50' printed a traceback
    code, out, err = run(capsys, "train", files / "train.dat", "-o", tmp_path / "m.mfz",
                         "--lr", 50, "--k", 4, "--epochs", 5)
    assert code == 1
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines[-1].startswith("mfcore train: error: training diverged")
    assert "--lr 50" in lines[-1] and "e.g. --lr 5" in lines[-1] and "lr=" not in lines[-1]
    assert not (tmp_path / "m.mfz").exists()


def test_tune_records_a_diverging_trial_and_goes_on(files, capsys, tmp_path):
    table = tmp_path / "trials.csv"
    code, out, err = run(capsys, "tune", files / "train.dat", "--grid", "lr=0.01,50",
                         "--k", 4, "--epochs", 8, "--results", table, "-o", tmp_path / "b.mfz")
    assert code == 0, err
    assert "trial 2/2: --lr 50 -> failed: training diverged" in out   # in CLI terms
    assert "best: --lr 0.01" in out and (tmp_path / "b.mfz").exists()
    assert "failed: --lr 50: training diverged at epoch 1" in out and "e.g. --lr 5" in out
    trials = pd.read_csv(table, keep_default_na=False)
    assert list(trials["status"]) == ["ok", "failed"]
    assert trials["error"][1].startswith("training diverged") and trials["val_rmse"][1] == ""
    assert "with --lr 50" in trials["error"][1]                       # in CLI terms
    code, out, err = run(capsys, "tune", files / "train.dat", "--grid", "lr=0.01,50",
                         "--k", 4, "--epochs", 8, "--json")
    assert code == 0, err
    failed = json.loads(out)["results"][1]                            # valid JSON: no NaN
    assert failed["status"] == "failed" and failed["val_rmse"] is None
    code, out, err = run(capsys, "tune", files / "train.dat", "--grid", "lr=50,80", "--k", 4)
    assert code == 1 and "every one of the 2 trials diverged" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["train", "{d}/train.dat", "-o", "{t}/missing/m.mfz"], "-o {t}/missing/m.mfz: folder"),
    (["train", "{d}/train.dat", "-o", "{t}"], "is a folder"),
    (["tune", "{d}/train.dat", "--grid", "k=2", "--results", "{t}/no/r.csv"], "--results"),
    (["tune", "{d}/train.dat", "--grid", "k=2", "-o", "{t}/no/m.mfz"], "-o {t}/no/m.mfz"),
])
def test_output_paths_are_checked_before_any_work(files, capsys, tmp_path, argv, message):
    code, out, err = run(capsys, *[a.format(d=files, t=tmp_path) for a in argv])
    assert code == 1 and message.format(t=tmp_path) in err
    assert "reading" not in err and "trained" not in out      # failed before reading the data


@pytest.mark.parametrize("argv, message", [
    (["--verbose", "True"], "unrecognized arguments: True"),      # a switch takes no value
    (["--warm-start", "1"], "unrecognized arguments: --warm-start"),  # train starts fresh
    (["--validation-fraction", "0.1"], "unrecognized arguments: --validation-fraction"),  # --val
    (["--count-weighted"], "does not apply to --algorithm sgd"),
])
def test_flags_read_like_a_command_line(files, capsys, tmp_path, argv, message):
    with pytest.raises(SystemExit) as caught:
        cli.main(["train", str(files / "train.dat"), "-o", str(tmp_path / "m.mfz"), *argv])
    assert caught.value.code == 2 and message in capsys.readouterr().err


def test_verbose_switch_and_the_stop_line(files, capsys, tmp_path):
    code, out, err = run(capsys, "train", files / "train.dat", "-o", tmp_path / "m.mfz",
                         "--k", 4, "--epochs", 300, "--n-iter-no-change", 2, "--val", 0.2,
                         "--verbose")
    assert code == 0, err
    assert "epoch    1" in out                                          # per-epoch lines
    assert "training SGD (--algorithm sgd, --k 4) on 2,800 ratings: up to 300 epochs" in err
    stop = [line for line in out.splitlines() if "stopped early" in line]
    assert stop and "in 2 epochs; kept epoch" in stop[-1]              # says when, why, which
    kept = int(stop[-1].split("kept epoch ")[1].split()[0])
    assert f"(best epoch {kept})" in out
    code, out, err = run(capsys, "train", files / "train.dat", "-o", tmp_path / "m.mfz",
                         "--algorithm", "als", "--k", 2, "--iterations", 2, "--no-count-weighted",
                         "-q")
    assert code == 0 and err == "" and "ran all 2 iterations" in out
    assert mfcore.load(tmp_path / "m.mfz").count_weighted is False


def test_train_announces_the_sweeps_it_runs(files, capsys, tmp_path):
    # bug: "up to 150 sweeps" was announced (n_samples alone) and 200 run (burn_in too)
    code, out, err = run(capsys, "train", files / "train.dat", "-o", tmp_path / "b.mfz",
                         "--algorithm", "bayes", "--k", 2, "--n-samples", 3, "--burn-in", 2)
    assert code == 0, err
    assert "up to 5 sweeps" in err and "5 sweeps in" in out and "ran all 5 sweeps" in out


def test_help_shows_the_defaults_the_command_uses(capsys):
    for command, expected in (("train", "sgd: default 40"), ("tune", "sgd: default 200"),
                              ("tune", "als: default 200"), ("train", "--reg-bias V")):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert expected in text, (command, expected)
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--warm-start" not in text and "--validation-fraction" not in text
    assert "sgd: same as --reg" in text
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "notebook" not in text and "80/10/10" in text and "early stopping" in text


def test_reader_messages_speak_cli(files, capsys, tmp_path):
    (tmp_path / "odd.csv").write_text("score,cust,prod\n5,1,10\n4,2,10\n3,1,20\n")
    code, _, err = run(capsys, "train", tmp_path / "odd.csv", "-o", tmp_path / "m.mfz")
    assert code == 1 and "'cust', 'prod'" in err and "--columns user,item,rating" in err
    assert "columns=" not in err
    code, out, err = run(capsys, "train", tmp_path / "odd.csv", "-o", tmp_path / "m.mfz",
                         "--columns", "rating,user,item", "--epochs", 2)
    assert code == 0, err
    assert "trained on 3 ratings (2 users, 2 items)" in out
    (tmp_path / "first.tsv").write_text("1\t10\tfive\n2\t20\t4\n")
    code, _, err = run(capsys, "train", tmp_path / "first.tsv", "-o", tmp_path / "m.mfz")
    assert code == 1 and "first.tsv, line 1: rating 'five'" in err


def test_messages_name_settings_as_fields_that_the_cli_spells_as_flags():
    error = ValueError(Message("/data/k=3/r.csv, line {0}: with {1}; try {2}", 2,
                               Setting("lr", 0.5, "0.5"), Setting("lr", 0.05, "0.05")))
    assert str(error) == "/data/k=3/r.csv, line 2: with lr=0.5; try lr=0.05"   # the library's
    assert say(error) == "/data/k=3/r.csv, line 2: with --lr 0.5; try --lr 0.05"  # no path touched
    nested = Message("{0}: {1}", "f.csv", Message("pass {0} for string ids", Setting("ids", "str")))
    assert say(nested) == "f.csv: pass --ids str for string ids"
    assert say(Message("e.g. {0}", Setting("columns", ["user", "item"]))) == \
        "e.g. --columns user,item"
    assert say(Message("say which with {0}", Setting("member"))) == "say which with --member"
    assert say(ValueError("plain text, n_iter=3 stays")) == "plain text, n_iter=3 stays"


def test_a_parameter_error_is_spelled_from_its_fields():
    assert say(InvalidParameterError("n_iter_no_change", 0, "an integer >= 1")) == \
        "--n-iter-no-change must be an integer >= 1, got 0"
    assert say(InvalidParameterError("validation_fraction", 1.5, "strictly between 0 and 1")) \
        == "--val must be strictly between 0 and 1, got 1.5"


def test_algorithm_bayes_trains_with_implicit_terms(files, capsys, tmp_path):
    model = tmp_path / "svdpp.mfz"
    code, out, err = run(capsys, "train", files / "train.dat", "-o", model, "--algorithm",
                         "bayes", "--implicit", "user", "--k", 3, "--n-samples", 4,
                         "--burn-in", 1)
    assert code == 0, err
    loaded = mfcore.load(model)
    assert loaded.get_params()["implicit"] == "user"
    assert loaded.item_implicit_samples_.shape == (len(loaded.item_map_), 4, 3)


def test_traceback_flag_and_mfcore_debug_show_the_real_traceback(files, capsys, monkeypatch):
    argv = ["train", str(files / "missing.csv"), "-o", str(files / "m.mfz")]
    assert cli.main(argv) == 1
    assert "Traceback" not in capsys.readouterr().err                 # one line by default
    assert cli.main(["--traceback", *argv]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "FileNotFoundError" in err
    assert err.strip().splitlines()[-1].startswith("mfcore train: error:")
    monkeypatch.setenv("MFCORE_DEBUG", "1")
    assert cli.main(argv) == 1 and "Traceback" in capsys.readouterr().err


def test_an_unexpected_exception_is_a_bug_and_keeps_its_traceback(files, monkeypatch):
    # the broad 'except TypeError/KeyError' is gone: a bug is not reported as bad input
    def broken(path):
        raise KeyError("a bug")
    monkeypatch.setattr(importlib.import_module("mfcore.cli.use"), "load", broken)
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["info", str(files / "train.dat")])


@pytest.mark.parametrize("command", ["recommend", "similar"])
def test_recommend_and_similar_share_the_n_check(files, capsys, command):
    for bad, message in (("0", "argument -n: must be at least 1, got 0"),
                         ("x", "argument -n: must be an integer, got 'x'")):
        with pytest.raises(SystemExit) as caught:
            cli.main([command, str(files / "model.mfz"), "1", "-n", bad])
        assert caught.value.code == 2 and message in capsys.readouterr().err


def test_demo_is_a_module_of_its_own(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mfcore.__file__)))
    result = subprocess.run([sys.executable, "-m", "mfcore.demo", "--help"], capture_output=True,
                            text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0 and "80/10/10" in result.stdout and "--synthetic" in result.stdout


# --- string ids through the CLI (issue 20, D4) ------------------------------------------------

PADDED = "user,item,rating\n007,0042,4\n7,42,2\n008,0043,5\n0100,1e2,1\n100,100,3\n"


@pytest.mark.parametrize("ids", [["--ids", "str"], []])
def test_string_ids_survive_train_save_load_predict_byte_for_byte(tmp_path, capsys, ids):
    (tmp_path / "padded.csv").write_text(PADDED)
    code, _, err = run(capsys, "train", tmp_path / "padded.csv", "-o", tmp_path / "p.mfz",
                       "--k", 2, "--epochs", 2, *ids)
    assert code == 0, err
    assert "merged" not in err     # five distinct pairs stay five
    model = mfcore.load(tmp_path / "p.mfz")
    assert sorted(model.user_map_.ids) == ["007", "008", "0100", "100", "7"]
    assert sorted(model.item_map_.ids) == ["0042", "0043", "100", "1e2", "42"]
    code, out, err = run(capsys, "predict", tmp_path / "p.mfz", tmp_path / "padded.csv", *ids,
                         "-o", tmp_path / "pred.csv")
    assert code == 0, err
    written = (tmp_path / "pred.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in written[1:]] == \
        [line.split(",")[:2] for line in PADDED.splitlines()[1:]]


def test_a_string_id_model_from_the_api_reads_pairs_and_test_files_as_strings(tmp_path, capsys):
    model = mfcore.Model(k=2, epochs=2).fit(["001", "002", "001"], ["10", "20", "20"], [4, 3, 5])
    model.save(tmp_path / "m.mfz")
    (tmp_path / "pairs.csv").write_text("001,10\n002,20\n")
    (tmp_path / "test.csv").write_text("001,10,4\n002,20,3\n")
    code, out, err = run(capsys, "predict", tmp_path / "m.mfz", tmp_path / "pairs.csv")
    assert code == 0, err
    assert [line.split(",")[:2] for line in out.splitlines()[1:]] == [["001", "10"], ["002", "20"]]
    code, out, err = run(capsys, "evaluate", tmp_path / "m.mfz", tmp_path / "test.csv")
    assert code == 0, err
    assert "0 unknown users, 0 unknown items" in out


def test_evaluate_ranking_prints_the_top_n_metrics(files, capsys, tmp_path):
    from mfcore.metrics import ranking_metrics
    model_path = tmp_path / "m.mfz"
    code, _, err = run(capsys, "train", files / "train.dat", "-o", model_path, "--epochs", 3)
    assert code == 0, err
    test = pd.read_csv(files / "test.csv")
    model = mfcore.load(model_path)
    for extra, kwargs in (([], {}), (["-k", "5", "--threshold", "5", "--rank-by", "prediction"],
                                     dict(k=5, threshold=5, rank_by="prediction"))):
        code, out, err = run(capsys, "evaluate", model_path, files / "test.csv", "--ranking",
                             "--json", *extra)
        assert code == 0, err
        want = ranking_metrics(model, test["user"], test["item"], test["rating"], **kwargs)
        assert json.loads(out) == pytest.approx(want)
    code, out, err = run(capsys, "evaluate", model_path, files / "test.csv", "--ranking")
    assert code == 0, err
    m = ranking_metrics(model, test["user"], test["item"], test["rating"])
    assert out.startswith(f"NDCG@10 {m['ndcg']:.4f}  precision@10 ") and "coverage" in out
    assert f"over {m['n_users']} users with a rating >= 4 ({m['unknown_users']} unknown" in out


# --- outputs written atomically (issue 20, D5) ------------------------------------------------

def _disk_fills_midway(monkeypatch):
    """DataFrame.to_csv writes half its output, then the disk is full."""
    def half_then_full(frame, target, *args, **kwargs):
        target.write("user,item,half")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_full)


def test_predict_output_on_a_full_disk_keeps_the_old_file(files, tmp_path, capsys, monkeypatch):
    model, out = tmp_path / "m.mfz", tmp_path / "pred.csv"
    assert run(capsys, "train", files / "train.dat", "-o", model, "--k", 2, "--epochs", 2)[0] == 0
    assert run(capsys, "predict", model, files / "pairs.tsv", "-o", out)[0] == 0
    before = out.read_bytes()
    _disk_fills_midway(monkeypatch)
    code, _, err = run(capsys, "predict", model, files / "pairs.tsv", "-o", out)
    assert code == 1 and "predictions file" in err and "pred.csv" in err and "No space" in err
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.mfz", "pred.csv"]


def test_tune_prints_and_saves_before_results_and_a_full_disk_keeps_the_old_results(
        files, tmp_path, capsys, monkeypatch):
    results, model = tmp_path / "res.csv", tmp_path / "best.mfz"
    results.write_text("earlier,results\n")
    _disk_fills_midway(monkeypatch)
    code, out, err = run(capsys, "tune", files / "train.dat", "--grid", "k=2,3", "--epochs", 2,
                         "--results", results, "-o", model)
    assert code == 1 and "results file" in err and "res.csv" in err
    assert "2 trials" in out and model.exists()          # the table and the model came first
    assert results.read_text() == "earlier,results\n"
    assert sorted(os.listdir(tmp_path)) == ["best.mfz", "res.csv"]


# --- pairs from standard input (issue 21) ----------------------------------------------------

def test_predict_reads_pairs_from_standard_input(files, tmp_path, capsys, monkeypatch):
    import io
    model = tmp_path / "m.mfz"
    assert run(capsys, "train", files / "train.dat", "-o", model, "--k", 4, "--epochs", 3)[0] == 0
    pairs = (files / "pairs.tsv").read_bytes()
    from_file = run(capsys, "predict", model, files / "pairs.tsv")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(pairs)))
    code, out, err = run(capsys, "predict", model, "-")
    assert code == 0, err
    assert out == from_file[1] and len(out.strip().splitlines()) == 11
    stdin = io.BytesIO(b"1\t2\n3\n")
    stdin.name = "<stdin>"   # (as sys.stdin.buffer's)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stdin))
    code, _, err = run(capsys, "predict", model, "-")
    assert code == 1 and "<stdin>, line 2: 1 field(s), expected 2" in err


def test_recommend_and_similar_with_a_huge_n_list_the_catalogue(files, tmp_path, capsys):
    model = tmp_path / "m.mfz"
    assert run(capsys, "train", files / "train.dat", "-o", model, "--k", 4, "--epochs", 3)[0] == 0
    code, out, err = run(capsys, "similar", model, 3, "-n", 10**12)
    assert code == 0, err
    assert 70 <= len(out.strip().splitlines()) <= 81   # every other item, at most


def test_an_error_naming_a_huge_value_is_one_short_line(files, capsys):
    # 'mfcore evaluate xxxx...(5,000) test.csv' printed the whole path (CLI fuzz finding)
    code, _, err = run(capsys, "evaluate", "x" * 5000, files / "test.csv")
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert "File name too long" in last and "characters)" in last and len(last) < 1200


@pytest.mark.parametrize("bad", ["u1", "1_000", "\uff17", "1" * 5000])
def test_an_id_that_is_no_integer_for_an_integer_model_is_named_in_one_short_line(
        files, capsys, tmp_path, bad):
    # int() quoted a 5,000-digit id whole and spoke of Python's 4,300-digit limit; it also
    # took '1_000' and a fullwidth 7, which the readers refuse
    model = tmp_path / "m.mfz"
    assert run(capsys, "train", files / "train.dat", "-o", model, "--k", 2, "--epochs", 1)[0] == 0
    for argv in (("predict", model, "--user", bad, "--item", 1), ("recommend", model, bad)):
        code, _, err = run(capsys, *argv)
        last = err.strip().splitlines()[-1]
        assert code == 1 and "the model's ids are integers: '" in last and "is not one" in last
        assert len(last) < 400 and "4300" not in last
