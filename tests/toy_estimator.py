"""A toy estimator, written as a new solver is: one module, no mfcore file edited.

``Toy`` is biased matrix factorization by alternating least squares in plain
NumPy (a row at a time: slow, but short). ``tests/test_registry.py`` registers
it with one line, ``mfcore.estimators.register(Toy)``, and then runs it through
the contract suite, the CLI, search, scikit-learn and persistence.
"""
import numpy as np

from mfcore import params as p
from mfcore.estimators import Estimator, Trainer
from mfcore.estimators.base import COMMON_PARAMS, EARLY_STOPPING_PARAMS


class _Step(Trainer):
    """One alternation: every user row solved with the items fixed, then every item row."""

    def __init__(self, model, data, params):
        super().__init__(model)
        self.u, self.i, self.r, self.reg = data.u, data.i, data.r.astype(np.float64), params["reg"]

    def _solve(self, rows, cols, factors, bias, other_factors, other_bias):
        """Each row's [bias, factors] by regularised least squares (penalty per rating)."""
        mu = self.model.global_mean_
        for row in np.unique(rows):
            mine = rows == row
            a = np.hstack([np.ones((mine.sum(), 1)), other_factors[cols[mine]]])
            y = self.r[mine] - mu - other_bias[cols[mine]]
            x = np.linalg.solve(a.T @ a + self.reg * mine.sum() * np.eye(a.shape[1]), a.T @ y)
            bias[row], factors[row] = x[0], x[1:]

    def step(self, epoch):
        m = self.model
        self._solve(self.u, self.i, m.user_factors_, m.user_bias_, m.item_factors_, m.item_bias_)
        self._solve(self.i, self.u, m.item_factors_, m.item_bias_, m.user_factors_, m.user_bias_)
        pred = (m.global_mean_ + m.user_bias_[self.u] + m.item_bias_[self.i]
                + np.einsum("ij,ij->i", m.user_factors_[self.u], m.item_factors_[self.i]))
        return {"sse": float(np.sum((self.r - pred) ** 2))}

    def penalty(self):
        m = self.model
        return self.reg * float(np.sum(m.user_factors_ ** 2) + np.sum(m.item_factors_ ** 2))

    def diverged(self, epoch, info):
        return f"the toy diverged at alternation {epoch}"


class Toy(Estimator):
    """Biased MF by alternating least squares in NumPy (a test's toy; see the module)."""

    name = "toy"
    epochs_param = "sweeps"
    epoch_word = "alternations"
    capabilities = frozenset({"early_stopping", "continue", "fold_in"})
    default_grid = {"k": [2, 4], "reg": [0.05, 0.1]}
    PARAMS = {"sweeps": p.Interval(int, 0),
              "reg": p.Interval(float, 0.0, closed="neither"),
              **COMMON_PARAMS, **EARLY_STOPPING_PARAMS}

    def __init__(self, k=4, sweeps=8, reg=0.05, init_std=0.1, validation_fraction=None,
                 n_iter_no_change=3, tol=0.0, warm_start=False, verbose=False,
                 dtype="float64", duplicates="mean", seed=0, n_threads=None):
        self._store(locals())

    def _trainer(self, data, params, layouts, inputs):
        return _Step(self, data, params)

    def _fold_in_penalty(self, shrinkage):
        """The user step of the toy's own objective, plus ``shrinkage`` ratings of penalty."""
        reg = self._checked_params()["reg"]
        return reg, reg, shrinkage, 1.0, 0.0
