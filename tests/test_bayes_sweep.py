"""BayesianMF's sweep driver: the current sample reaches the model's arrays in rating units
(``bayes.rating_units``, rows in parallel) exactly as NumPy would write it, and a value
that is not finite there stops the fit."""
import numpy as np
import pytest

import mfcore
from mfcore._kernels import bayes


def state(rng, n_users=7, n_items=5, k=3):
    return (rng.normal(size=(n_users, k)), rng.normal(size=(n_items, k)),
            rng.normal(size=n_users), rng.normal(size=n_items))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 3])
def test_rating_units_writes_what_numpy_writes(dtype, n_threads):
    rng = np.random.default_rng(1)
    P, Q, bu, bi = state(rng)
    factor, bias = float(np.sqrt(1.13)), 1.13
    out = [np.full(a.shape, np.nan, dtype) for a in (P, Q, bu, bi)]
    assert bayes.rating_units(P, Q, bu, bi, *out, factor, bias, n_threads) is True
    for got, a, unit in zip(out, (P, Q, bu, bi), (factor, factor, bias, bias)):
        want = np.empty(a.shape, dtype)
        want[...] = a * np.float64(unit)  # the product in float64, rounded once
        assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("where, value", [(0, np.nan), (1, np.inf), (2, -np.inf), (3, 1e300)])
def test_rating_units_says_when_a_written_value_is_not_finite(where, value):
    rng = np.random.default_rng(2)
    arrays = list(state(rng))
    arrays[where].flat[-1] = value  # 1e300: finite in float64, infinite as a float32
    out = [np.zeros(a.shape, np.float32) for a in arrays]
    assert bayes.rating_units(*arrays, *out, 1.0, 1.0, 2) is False
    assert not np.isfinite(out[where]).all()


def test_rating_units_rejects_outputs_of_another_shape():
    rng = np.random.default_rng(3)
    P, Q, bu, bi = state(rng)
    out = [np.zeros(a.shape) for a in (P, Q, bu, bi)]
    out[1] = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"\(4, 3\).*do not match the state's 7 users, 5 "
                                         r"items and k = 3"):
        bayes.rating_units(P, Q, bu, bi, *out, 1.0, 1.0, 1)
    with pytest.raises(ValueError, match="n_threads must be >= 1, got 0"):
        bayes.rating_units(P, Q, bu, bi, *[np.zeros(a.shape) for a in (P, Q, bu, bi)],
                           1.0, 1.0, 0)


@pytest.mark.parametrize("dtype, poison", [("float64", np.nan), ("float32", 1e300)])
def test_a_sample_not_finite_in_the_model_stops_the_fit(monkeypatch, dtype, poison):
    """The driver's finiteness check reads what the sweep wrote into the model: a NaN in the
    chain, or a bias finite in the chain's float64 but infinite as the model's float32."""
    original = bayes.gibbs_sweep

    def poisoned(*args, **kw):
        out = original(*args, **kw)
        if args[15] == 2:  # the third sweep (counted from 0)
            args[10][4] = poison  # a user's bias
        return out

    monkeypatch.setattr(bayes, "gibbs_sweep", poisoned)
    rng = np.random.default_rng(4)
    u, i = np.divmod(rng.choice(30 * 20, 300, replace=False), 20)
    r = rng.integers(1, 6, 300).astype(float)
    model = mfcore.BayesianMF(k=2, n_samples=5, burn_in=2, dtype=dtype, n_threads=2)
    with pytest.raises(mfcore.TrainingDivergedError, match="non-finite values at sweep 3"):
        model.fit(u, i, r)
