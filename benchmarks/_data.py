"""Synthetic MovieLens-shaped rating data for the benchmarks.

Uses ``mfcore.datasets.synthetic`` when it exists; until then a small
generator of the same kind: skewed (Zipf-like) user and item activity, a
planted low-rank structure with biases, 1-5 star ratings.
"""
import numpy as np

#: (users, items, ratings) of the MovieLens sets the presets imitate.
SHAPES = {
    "ml-100k": (943, 1682, 100_000),
    "ml-1m": (6040, 3706, 1_000_209),
    "ml-10m": (69_878, 10_677, 10_000_054),
    "ml-20m": (138_493, 26_744, 20_000_263),
}


def synthetic(preset="ml-1m", seed=0, rank=10):
    """(users, items, ratings) int32/int32/float32 arrays shaped like ``preset``, no duplicates."""
    n_users, n_items, n = SHAPES[preset]
    rng = np.random.default_rng(seed)
    # activity: a heavy tail like MovieLens (some users/items rate far more than others)
    wu = rng.pareto(1.5, n_users) + 1.0
    wi = rng.pareto(1.2, n_items) + 1.0
    draw = int(n * 1.15) + 1000
    u = rng.choice(n_users, draw, p=wu / wu.sum()).astype(np.int64)
    i = rng.choice(n_items, draw, p=wi / wi.sum()).astype(np.int64)
    key = np.unique(u * n_items + i)
    while len(key) < n:  # top up after removing duplicate pairs
        extra = rng.integers(0, n_users * n_items, n - len(key) + 1000)
        key = np.unique(np.concatenate([key, extra]))
    key = rng.permutation(key)[:n]
    u, i = (key // n_items).astype(np.int32), (key % n_items).astype(np.int32)
    P = rng.normal(0, 1 / np.sqrt(rank), (n_users, rank)).astype(np.float32)
    Q = rng.normal(0, 1 / np.sqrt(rank), (n_items, rank)).astype(np.float32)
    bu = rng.normal(0, 0.3, n_users).astype(np.float32)
    bi = rng.normal(0, 0.4, n_items).astype(np.float32)
    r = 3.6 + bu[u] + bi[i] + np.einsum("nk,nk->n", P[u], Q[i]) + rng.normal(0, 0.7, n)
    r = np.clip(np.rint(r), 1, 5).astype(np.float32)
    return u, i, r


def split(users, items, ratings, test_fraction=0.1, seed=1):
    """A random train/test split (returns two (users, items, ratings) triples)."""
    rng = np.random.default_rng(seed)
    test = rng.random(len(ratings)) < test_fraction
    return ((users[~test], items[~test], ratings[~test]),
            (users[test], items[test], ratings[test]))
