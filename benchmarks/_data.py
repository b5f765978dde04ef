"""Benchmark data: synthetic MovieLens-shaped sets from ``mfcore.datasets.synthetic``, and
ML-1M's notebook split (``notebook_split``).

Each set is split 90/10 at random once (seeded) and cached for the session.
Ids are mapped to 0-based rows here, once, so that every implementation
(mfcore, NumPy, numba, Surprise) trains on exactly the same arrays.
"""
import functools
import io
import os

import numpy as np

import mfcore


@functools.lru_cache(maxsize=2)
def load(preset, seed=0, test_fraction=0.1):
    """(train, test) triples of (users, items, ratings): int32, int32, float32; 0-based ids."""
    frame = mfcore.datasets.synthetic(preset, seed=seed)
    users = frame["user"].to_numpy(np.int32) - 1
    items = frame["item"].to_numpy(np.int32) - 1
    ratings = frame["rating"].to_numpy(np.float32)
    test = np.random.default_rng(seed + 1).random(len(ratings)) < test_fraction
    # keep only test pairs whose user and item were seen in training (no cold start)
    seen_u = np.zeros(users.max() + 1, bool)
    seen_i = np.zeros(items.max() + 1, bool)
    seen_u[users[~test]] = True
    seen_i[items[~test]] = True
    test &= seen_u[users] & seen_i[items]
    train = (users[~test], items[~test], ratings[~test])
    held = (users[test], items[test], ratings[test])
    return train, held


def rmse(pred, truth, lo=1.0, hi=5.0):
    """Held-out RMSE of predictions clipped to the rating scale, like ``Model.evaluate``."""
    err = np.clip(pred.astype(np.float64), lo, hi) - truth
    return float(np.sqrt(np.mean(err * err)))


def notebook_split(root):
    """(train, validation, test) arrays of (user, item, rating) of ML-1M under ``root``: the
    notebook's split (data README): 80/20 with random_state=888, the rest halved with 0."""
    import pandas as pd
    from sklearn.model_selection import train_test_split
    with open(os.path.join(root, "ml-1m", "ratings.dat")) as fh:
        d = pd.read_csv(io.StringIO(fh.read().replace("::", "\t")), sep="\t",
                        header=None).to_numpy(np.int64)
    x_train, x_rest, y_train, y_rest = train_test_split(d[:, :2], d[:, 2], test_size=0.2,
                                                        random_state=888)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5,
                                                    random_state=0)
    return np.c_[x_train, y_train], np.c_[x_val, y_val], np.c_[x_test, y_test]
