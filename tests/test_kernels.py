"""The Cython kernels against plain NumPy references on tiny problems."""
import numpy as np
import pytest

from mfcore._kernels import predict as _predict
from mfcore._kernels import sgd as _kernels


def tiny_problem(dtype, seed=3, n_users=7, n_items=5, k=4, n=30):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n).astype(np.int32)
    items = rng.integers(0, n_items, n).astype(np.int32)
    ratings = rng.integers(1, 6, n).astype(dtype)
    P = rng.normal(0, 0.3, (n_users, k)).astype(dtype)
    Q = rng.normal(0, 0.3, (n_items, k)).astype(dtype)
    bu = rng.normal(0, 0.1, n_users).astype(dtype)
    bi = rng.normal(0, 0.1, n_items).astype(dtype)
    order = rng.permutation(n)
    return users, items, ratings, order, P, Q, bu, bi


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-5), (np.float32, 1e-4)])
def test_sgd_epoch_matches_numpy_reference(dtype, tol, numpy_epoch):
    users, items, ratings, order, P, Q, bu, bi = tiny_problem(dtype)
    mu, lr, reg, reg_bias = 3.2, 0.05, 0.03, 0.01
    want = [a.copy() for a in (P, Q, bu, bi)]
    want_sse = numpy_epoch(users, items, ratings, order, *want, mu, lr, reg, reg_bias)
    sse = _kernels.sgd_epoch(users, items, ratings, order, P, Q, bu, bi, mu, lr, reg, reg_bias)
    for got, expected in zip((P, Q, bu, bi), want):
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol)
    assert sse == pytest.approx(want_sse, rel=tol)
    # the epoch did change the parameters (the comparison above is not vacuous)
    assert not np.allclose(P, tiny_problem(dtype)[4], atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_and_squared_error_match_numpy(dtype):
    users, items, ratings, _, P, Q, bu, bi = tiny_problem(dtype)
    mu = 3.0
    users = users.copy()
    items = items.copy()
    users[0] = -1  # unknown user: mu + b_i
    items[1] = -1  # unknown item: mu + b_u
    users[2] = items[2] = -1  # both unknown: mu
    want = np.full(len(users), mu)
    ku, ki = users >= 0, items >= 0
    want[ku] += bu[users[ku]]
    want[ki] += bi[items[ki]]
    both = ku & ki
    want[both] += np.einsum("nk,nk->n", P[users[both]], Q[items[both]])
    out = np.empty(len(users), dtype=dtype)
    _predict.predict(users, items, P, Q, bu, bi, mu, -np.inf, np.inf, out, 1)
    np.testing.assert_allclose(out, want, rtol=1e-5)
    assert out[2] == pytest.approx(mu)

    _predict.predict(users, items, P, Q, bu, bi, mu, 2.9, 3.1, out, 2)
    np.testing.assert_allclose(out, np.clip(want, 2.9, 3.1), rtol=1e-5)

    sse = _predict.squared_error(users, items, ratings, P, Q, bu, bi, mu, 1.0, 5.0, 2)
    assert sse == pytest.approx(np.sum((ratings - np.clip(want, 1, 5)) ** 2), rel=1e-5)
