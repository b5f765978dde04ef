"""Shared fixtures: small synthetic rating data with a known answer, and the real-data locator."""
import os

import numpy as np
import pytest


def planted_ratings(n_users=400, n_items=300, rank=4, density=0.5, noise=0.3, seed=0):
    """Ratings from a known low-rank biased model plus Gaussian noise of std ``noise``.

    Returns (users, items, ratings) for every observed cell, in random order.
    """
    rng = np.random.default_rng(seed)
    P = rng.normal(0, 0.6, (n_users, rank))
    Q = rng.normal(0, 0.6, (n_items, rank))
    bu = rng.normal(0, 0.3, n_users)
    bi = rng.normal(0, 0.3, n_items)
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    truth = 3.0 + bu[users] + bi[items] + np.einsum("nk,nk->n", P[users], Q[items])
    ratings = truth + rng.normal(0, noise, len(users))
    perm = rng.permutation(len(users))
    return users[perm], items[perm], ratings[perm]


def numpy_sgd_epoch(users, items, ratings, order, P, Q, bu, bi, mu, lr, reg, reg_bias):
    """One SGD epoch in NumPy over ``order`` with the documented update rules, updating the
    parameters in place; returns the sum of squared errors measured before each update."""
    dt = P.dtype.type
    mu, lr, reg, reg_bias = dt(mu), dt(lr), dt(reg), dt(reg_bias)
    sse = 0.0
    for j in order:
        u, i = users[j], items[j]
        e = ratings[j] - (mu + bu[u] + bi[i] + P[u] @ Q[i])
        sse += float(e) ** 2
        bu[u] += lr * (e - reg_bias * bu[u])
        bi[i] += lr * (e - reg_bias * bi[i])
        p_old = P[u].copy()
        P[u] += lr * (e * Q[i] - reg * P[u])
        Q[i] += lr * (e * p_old - reg * Q[i])
    return sse


@pytest.fixture
def numpy_epoch():
    """The NumPy reference epoch (``numpy_sgd_epoch``) the kernels are tested against."""
    return numpy_sgd_epoch


def split(users, items, ratings, test_fraction=0.2, seed=0):
    """Random train/test split of parallel arrays."""
    rng = np.random.default_rng(seed)
    test = rng.random(len(ratings)) < test_fraction
    return ((users[~test], items[~test], ratings[~test]),
            (users[test], items[test], ratings[test]))


@pytest.fixture
def planted():
    return planted_ratings()


@pytest.fixture
def tiny():
    """A handful of ratings with string and integer ids for API tests."""
    users = np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    items = np.array([10, 20, 10, 30, 20, 30, 10, 40, 30, 40])
    ratings = np.array([5, 3, 4, 2, 1, 5, 4, 4, 3, 2], dtype=float)
    return users, items, ratings


@pytest.fixture
def ml100k():
    """Returns a function giving the path of a MovieLens 100K file (or skipping)."""
    return ml100k_path


def ml100k_path(name):
    """Path of a MovieLens 100K file under $MFCORE_DATA, or skip the test saying why."""
    root = os.environ.get("MFCORE_DATA")
    if not root:
        pytest.skip("MFCORE_DATA is not set: real MovieLens data unavailable")
    path = os.path.join(root, "ml-100k", name)
    if not os.path.exists(path):
        pytest.skip(f"{path} not found: real MovieLens 100K data unavailable")
    return path


@pytest.fixture
def make_planted():
    return planted_ratings


@pytest.fixture
def train_test():
    return split


def peak_allocation(function):
    """(what ``function`` returned or the exception it raised, the peak bytes Python and
    numpy allocated meanwhile, as tracemalloc counts them: deterministic, unlike RSS)."""
    import tracemalloc
    tracemalloc.start()
    try:
        outcome = function()
    except Exception as exc:  # noqa: BLE001 (the caller checks which)
        outcome = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, peak
