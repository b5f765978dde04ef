"""Scale-free training: the same defaults on affine rescalings of MovieLens 100K u1.

Trains each estimator with its defaults on u1.base with every rating r mapped
to a r + b, scores u1.test in those units and divides the RMSE by a: a
scale-free estimator prints the same figure in every row.

    MFCORE_DATA=../shared/data python benchmarks/scale_free.py [sgd als bayes]
"""
import os
import sys
import time

import numpy as np

import mfcore

#: (a, b) of the issue's table: half stars, 2-10, 20-100, 5-105 (affine), 0-1
SCALES = ((1.0, 0.0), (0.5, 0.0), (2.0, 0.0), (20.0, 0.0), (25.0, -20.0), (0.25, -0.25))


def main(names):
    path = os.path.dirname(mfcore.datasets.movielens_path("ml-100k", download=False))
    base = np.loadtxt(os.path.join(path, "u1.base"), dtype=np.int64)
    test = np.loadtxt(os.path.join(path, "u1.test"), dtype=np.int64)
    print(f"mfcore {mfcore.__version__}, ML-100K u1.base -> u1.test, defaults, seed 0")
    print(f"{'estimator':<11}{'a':>6}{'b':>7}{'RMSE / a':>10}{'vs 1-5':>9}{'seconds':>9}")
    for name in names:
        estimator = mfcore.estimators.ALGORITHMS[name]
        reference = None
        for a, b in SCALES:
            start = time.perf_counter()
            try:
                model = estimator(seed=0).fit(base[:, 0], base[:, 1], a * base[:, 2] + b)
                score = model.evaluate(test[:, 0], test[:, 1], a * test[:, 2] + b)["rmse"] / a
            except mfcore.TrainingDivergedError:
                score = float("nan")
            seconds = time.perf_counter() - start
            reference = score if reference is None else reference
            print(f"{name:<11}{a:>6g}{b:>7g}{score:>10.4f}{score / reference - 1:>+9.2%}"
                  f"{seconds:>9.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["sgd", "als", "bayes"])
