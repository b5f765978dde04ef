"""The training loop every estimator shares, and the protocol of the trainers it drives.

An estimator prepares its data and a ``Trainer`` (one epoch at a time, see
below) and hands both to ``run``. ``run`` owns what is common: timing, the
finiteness check, history, ``verbose`` lines, the progress bar (``mfcore.progress``:
on a terminal with tqdm installed), validation scoring, early stopping with
best-epoch restore, callbacks, and ``stop_reason_``: one line saying how the
fit ended (the limit reached, early stopping and the epoch kept, or the
callback), printed with ``verbose``. ``atomic`` trains a working copy and publishes
its fitted state, in one step, only when training succeeds.
"""
import abc
import contextlib
import copy
import time

import numpy as np

from .. import progress
from ..errors import TrainingDivergedError

__all__ = ["Trainer", "run", "atomic", "format_record"]


class Trainer(abc.ABC):
    """What ``run`` drives: one fit of ``model`` (LensKit's ``ModelTrainer``, in mfcore's words).

    A solver subclasses it and writes ``step``, ``penalty`` and ``diverged``;
    ``validation_rmse`` and ``finalize`` have defaults.
    """

    def __init__(self, model):
        self.model = model

    @abc.abstractmethod
    def step(self, epoch):
        """Run epoch (iteration, sweep) ``epoch``, updating the model's parameter arrays in
        place; return ``{"sse": ...}`` (the sum of squared training errors it measured)
        plus any fields the history should record (SGD: ``lr``)."""

    @abc.abstractmethod
    def penalty(self):
        """The regularization term of the objective now (a float)."""

    @abc.abstractmethod
    def diverged(self, epoch, info):
        """The message for a non-finite result at ``epoch`` (``info``: ``step``'s fields)."""

    def finite(self, sse):
        """Whether an epoch that measured ``sse`` left a finite model: the SSE and every
        parameter array (``mfcore.dask``'s trainers know it from their shards' flags,
        without reading the client's copy of the model)."""
        return bool(np.isfinite(sse)) and all(np.isfinite(a).all()
                                              for a in self.model._parameters())

    def validation_rmse(self, val):
        """RMSE of the model on validation rows ``val`` (u, i, r), clipped. A trainer whose
        arrays are not yet what the model predicts with (a sampler's running posterior
        mean) says how to score instead."""
        return self.model._rmse_rows(*val)

    def keep_best(self):
        """What ``restore_best`` needs to bring back this epoch's parameters (early stopping's
        best epoch so far): copies of the model's arrays (``mfcore.dask``'s trainers have
        the shards keep their bands instead)."""
        return [a.copy() for a in self.model._parameters()]

    def restore_best(self, kept):
        """Bring back the parameters ``keep_best`` kept (early stopping's best epoch)."""
        for target, array in zip(self.model._parameters(), kept):
            target[...] = array

    def finalize(self):
        """Make the model's fitted arrays final after the last epoch (and after the best
        epoch was restored): a sampler keeps its posterior here. Nothing by default."""


def format_record(record):
    """One line of training progress, as ``verbose`` prints it."""
    line = f"epoch {record['epoch']:4d}"
    if "lr" in record:
        line += f"  lr {record['lr']:.4g}"
    line += f"  train_loss {record['train_loss']:.4f}  train_rmse {record['train_rmse']:.4f}"
    if "val_rmse" in record:
        line += f"  val_rmse {record['val_rmse']:.4f}"
    return line + f"  {record['updates_per_sec'] / 1e6:6.1f}M updates/s  {record['seconds']:.3f}s"


@contextlib.contextmanager
def atomic(model):
    """Train a working copy of ``model`` and publish its fitted state when the block succeeds.

    Yields the copy (``with atomic(self) as work: work._start(...)``): its fitted
    attributes are copies of the model's, so nothing the block does touches ``model``.
    If the block raises (divergence, Ctrl-C, MemoryError) the model is exactly as it
    was; if it succeeds, the copy's fitted attributes replace the model's in one step
    (``FactorModel._publish``). Other threads using ``model`` meanwhile (predict,
    recommend, save) see its previous fitted state, whole, until then.
    """
    work = object.__new__(type(model))
    work.__dict__.update({name: (value.copy() if isinstance(value, np.ndarray)
                                 else copy.deepcopy(value) if name.endswith("_") else value)
                          for name, value in vars(model).items()})
    yield work
    model._publish({name: value for name, value in vars(work).items() if name.endswith("_")})


def run(model, trainer, n_ratings, n_epochs, val, callback, verbose, tol, n_iter_no_change):
    """Train ``n_epochs`` epochs numbered on from ``model.n_epochs_``.

    ``val``: validation rows (u, i, r) scored after every epoch, or None.
    With them, training stops after ``n_iter_no_change`` epochs that did not
    improve the best validation RMSE by more than ``tol``, and the best
    epoch's parameters are restored (``model.best_epoch_``); with
    ``n_iter_no_change=None`` they are only scored (a sampler keeps every epoch).
    ``callback(model, epoch, record)`` returning True stops training. Then
    ``trainer.finalize()``.
    """
    best_rmse, best, since_best = np.inf, None, 0
    early_stopping = n_iter_no_change is not None
    word, first = model.epoch_word, model.n_epochs_ + 1
    reason = f"ran all {n_epochs} {word}" if n_epochs != 1 else f"ran its one {word[:-1]}"
    with progress.bar(n_epochs, f"{type(model).__name__} fit", word) as bar:
        for epoch in range(first, model.n_epochs_ + n_epochs + 1):
            start = time.perf_counter()
            info = trainer.step(epoch)
            seconds = time.perf_counter() - start
            sse = info.pop("sse")
            if not trainer.finite(sse):
                raise TrainingDivergedError(trainer.diverged(epoch, info))
            record = {"epoch": epoch, **info, "train_loss": (sse + trainer.penalty()) / n_ratings,
                      "train_rmse": float(np.sqrt(sse / n_ratings)), "seconds": seconds,
                      "updates_per_sec": n_ratings / max(seconds, 1e-12)}
            if val is not None:
                record["val_rmse"] = trainer.validation_rmse(val)
            model.history_.append(record)
            model.n_epochs_ = epoch
            bar.update(**{k: record[k] for k in ("train_rmse", "val_rmse") if k in record})
            if verbose:
                bar.write(format_record(record))
            stop = False
            if val is not None and early_stopping:
                if record["val_rmse"] < best_rmse - tol:
                    best_rmse, since_best = record["val_rmse"], 0
                    best = (epoch, trainer.keep_best())
                else:
                    since_best += 1
                    stop = since_best >= n_iter_no_change
                    if stop:
                        reason = (f"stopped early after {word[:-1]} {epoch}: validation RMSE "
                                  f"did not improve on {best_rmse:.4f} by more than {tol:g} in "
                                  f"{n_iter_no_change} {word}")
            if callback is not None and callback(model, epoch, dict(record)):
                stop, reason = True, f"stopped by the callback after {word[:-1]} {epoch}"
            if stop:
                break
    if best is not None:
        model.best_epoch_ = best[0]
        trainer.restore_best(best[1])
        reason += f"; kept {word[:-1]} {best[0]} (validation RMSE {best_rmse:.4f})"
    trainer.finalize()
    model.stop_reason_ = reason
    if verbose:
        print(reason, flush=True)
