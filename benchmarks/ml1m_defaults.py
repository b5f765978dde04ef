"""Every estimator's defaults on MovieLens 1M, the notebook's split: validation and test RMSE.

The split is the shared data README's: scikit-learn's train_test_split(test_size=0.2,
random_state=888) over the file's rows, then the rest halved with random_state=0.

    MFCORE_DATA=../shared/data python benchmarks/ml1m_defaults.py [sgd als bayes bayes-implicit]
"""
import os
import sys
import time
import warnings


import mfcore
from _data import notebook_split

ESTIMATORS = {"sgd": lambda: mfcore.Model(seed=0), "als": lambda: mfcore.ALS(seed=0),
              "bayes": lambda: mfcore.BayesianMF(seed=0),
              "bayes-implicit": lambda: mfcore.BayesianMF(implicit=True, seed=0)}


def main(names):
    train, val, test = notebook_split(os.environ.get("MFCORE_DATA", "../shared/data"))
    print(f"ML-1M notebook split: {len(train):,} train, {len(val):,} validation, "
          f"{len(test):,} test; defaults, seed 0")
    for name in names:
        start = time.perf_counter()
        model = ESTIMATORS[name]().fit(train[:, 0], train[:, 1], train[:, 2])
        seconds = time.perf_counter() - start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
            v = model.evaluate(val[:, 0], val[:, 1], val[:, 2])["rmse"]
            t = model.evaluate(test[:, 0], test[:, 1], test[:, 2])["rmse"]
        print(f"{name:15s} validation {v:.4f} (MSE {v * v:.4f})  test {t:.4f}  {seconds:.1f} s",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(ESTIMATORS))
