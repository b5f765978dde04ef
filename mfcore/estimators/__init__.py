"""The estimators: one module per solver, each a ``FactorModel`` once fitted.

``base`` holds what they share (parameters, fit/partial_fit), ``driver`` the
training loop; ``sgd`` is ``Model`` (stochastic gradient descent), ``als`` is
``ALS`` (alternating least squares), ``bayes`` is ``BayesianMF`` (Gibbs
sampling), ``ials`` is ``ImplicitALS`` (top-N from implicit feedback). ``ALGORITHMS`` names them for the CLI.
"""
from .als import ALS
from .base import Estimator
from .bayes import BayesianMF
from .ials import ImplicitALS
from .sgd import Model

__all__ = ["Estimator", "Model", "ALS", "BayesianMF", "ImplicitALS", "ALGORITHMS"]

#: The estimators by the name ``--algorithm`` uses.
ALGORITHMS = {"sgd": Model, "als": ALS, "bayes": BayesianMF, "ials": ImplicitALS}
