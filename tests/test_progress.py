"""Progress bars: drawn on a terminal when tqdm is installed, nothing otherwise; stop lines."""
import io

import numpy as np
import pytest

import mfcore
from mfcore import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def attach_terminal(monkeypatch):
    """A fake terminal as stderr (set inside the test: pytest resets stderr after fixtures)."""
    pytest.importorskip("tqdm")
    fake = Terminal()
    monkeypatch.setattr("sys.stderr", fake)
    return fake


def test_a_fit_on_a_terminal_draws_a_bar(monkeypatch, tiny):
    terminal = attach_terminal(monkeypatch)
    mfcore.Model(k=2, epochs=5).fit(*tiny)
    text = terminal.getvalue()
    assert "SGD fit" in text and "5/5" in text and "epochs" in text


def test_search_draws_a_bar_over_trials(monkeypatch, make_planted):
    terminal = attach_terminal(monkeypatch)
    mfcore.Search({"k": [2, 3]}, base=mfcore.Model(epochs=3), refit=False).fit(
        *make_planted(n_users=40, n_items=30))
    text = terminal.getvalue()
    assert "search over SGD" in text and "2/2" in text and "trials" in text


def test_no_bar_without_tqdm_or_when_disabled(tiny, monkeypatch, capsys):
    terminal = attach_terminal(monkeypatch)
    monkeypatch.setattr(progress, "_tqdm", lambda: None)        # as if tqdm were missing
    mfcore.Model(k=2, epochs=3, verbose=True).fit(*tiny)
    assert terminal.getvalue() == ""
    assert capsys.readouterr().out.count("epoch ") == 3        # verbose lines still printed
    monkeypatch.undo()
    monkeypatch.setattr("sys.stderr", terminal)
    progress.enable(False)
    try:
        mfcore.Model(k=2, epochs=3).fit(*tiny)
    finally:
        progress.enable(True)
    assert terminal.getvalue() == ""
    mfcore.Model(k=2, epochs=3).fit(*tiny)
    assert "3/3" in terminal.getvalue()
    piped = io.StringIO()                                       # not a terminal
    monkeypatch.setattr("sys.stderr", piped)
    mfcore.Model(k=2, epochs=3).fit(*tiny)
    assert piped.getvalue() == ""


def test_the_fit_says_how_it_stopped(make_planted, capsys):
    data = make_planted(n_users=60, n_items=40)
    model = mfcore.Model(k=2, epochs=500, validation_fraction=0.2, n_iter_no_change=2,
                         verbose=True).fit(*data)
    assert model.n_epochs_ < 500
    assert model.stop_reason_.startswith(f"stopped early after epoch {model.n_epochs_}: "
                                         "validation RMSE did not improve")
    assert f"kept epoch {model.best_epoch_} (validation RMSE" in model.stop_reason_
    assert capsys.readouterr().out.strip().splitlines()[-1] == model.stop_reason_
    assert mfcore.ALS(k=2, iterations=2).fit(*data).stop_reason_ == "ran all 2 iterations"
    stopped = mfcore.Model(k=2, epochs=9).fit(*data, callback=lambda m, epoch, r: epoch == 4)
    assert stopped.stop_reason_ == "stopped by the callback after epoch 4"


def test_one_epoch_is_said_in_the_singular():
    u, i = np.arange(40) % 8, np.arange(40) % 5
    model = mfcore.Model(k=2, epochs=1).fit(u, i, 1.0 + np.arange(40) % 5)
    assert model.stop_reason_ == "ran its one epoch"


def test_the_search_bar_shows_the_best_score_so_far_named_as_such(monkeypatch, make_planted):
    # it showed the last trial's val_rmse: at 100% a worse score than the best
    shown = []
    real = progress.Bar.update

    def recording(self, **figures):
        shown.append(figures)
        return real(self, **figures)
    monkeypatch.setattr(progress.Bar, "update", recording)
    search = mfcore.Search({"epochs": [30, 1, 2]}, base=mfcore.Model(k=2, seed=0),
                           refit=False).fit(*make_planted(n_users=40, n_items=30))
    scores = [r["val_rmse"] for r in search.results_]
    trial_figures = [f for f in shown if "best_val_rmse" in f]   # (fit bars record too)
    assert [f["best_val_rmse"] for f in trial_figures] == list(np.minimum.accumulate(scores))
    assert trial_figures[-1]["best_val_rmse"] == search.best_score_ < scores[-1]
