"""Every estimator runs the shared contract suite (tests/contract.py) by declaring itself."""
import mfcore

from contract import EstimatorContract


class TestSGD(EstimatorContract):
    estimator = mfcore.SGD
    fast = {"k": 4, "epochs": 3}
    planted = {"k": 8, "epochs": 60, "lr": 0.02, "reg": 0.02}
    diverging = {"lr": 50.0}


class TestALS(EstimatorContract):
    estimator = mfcore.ALS
    fast = {"k": 4, "iterations": 3}
    planted = {"k": 4, "iterations": 10, "reg": 0.02}


class TestBayesianMF(EstimatorContract):
    estimator = mfcore.BayesianMF
    fast = {"k": 4, "n_samples": 4, "burn_in": 1}
    planted = {"k": 4, "n_samples": 60, "burn_in": 20}


class TestBayesianMFImplicit(EstimatorContract):
    estimator = mfcore.BayesianMF
    fast = {"k": 4, "n_samples": 4, "burn_in": 1, "implicit": True}
    planted = {"k": 4, "n_samples": 60, "burn_in": 20, "implicit": True}
