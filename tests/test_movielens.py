"""Accuracy on real MovieLens 100K data (skipped when $MFCORE_DATA lacks it)."""
import numpy as np

from mfcore import Model


def _read(path):
    data = np.loadtxt(path, dtype=np.int64)
    return data[:, 0], data[:, 1], data[:, 2]


def test_defaults_reach_good_rmse_on_ml100k_u1(ml100k):
    train = _read(ml100k("u1.base"))
    test = _read(ml100k("u1.test"))
    model = Model().fit(*train)
    result = model.evaluate(*test)
    # Surprise's SVD with its defaults reaches about 0.95 on this split.
    assert result["rmse"] <= 0.94, result
    assert result["unknown_users"] == 0 and result["unknown_items"] == 32
