"""The estimators: one module per solver, each a ``FactorModel`` once fitted.

``base`` holds what they share (declarations, parameters, fit/partial_fit),
``driver`` the training loop and the ``Trainer`` protocol; ``sgd`` is ``SGD``
(stochastic gradient descent; ``Model`` is its alias), ``als`` is ``ALS``
(alternating least squares), ``bayes`` is ``BayesianMF`` (Gibbs sampling).

The registry (``mfcore.registry``) is explicit: one ``register`` line per
estimator below. ``ALGORITHMS`` is its read-only view, by the name each
declares (``--algorithm``, model files).
"""
from ..registry import ESTIMATORS as ALGORITHMS, register
from .als import ALS
from .base import CAPABILITIES, Estimator
from .bayes import BayesianMF
from .driver import Trainer
from .sgd import SGD, Model

__all__ = ["Estimator", "Trainer", "SGD", "Model", "ALS", "BayesianMF", "ALGORITHMS",
           "CAPABILITIES", "register"]

register(SGD)
register(ALS)
register(BayesianMF)
