"""Training throughput beside held-out RMSE: mfcore (1 and 2 threads) and its peers.

Run with ``PYTHONPATH=. pytest benchmarks`` (see the README); not part of the
default test run. Every row trains the same model with the same
hyperparameters and epochs on the same synthetic split.
"""
import time

import numpy as np
import pytest

import mfcore
from _common import EPOCHS, KS, PEER_PRESETS, PRESETS, ROUNDS, SCALING, median_updates, record
from _data import load, rmse
import _peers


def fit_mfcore(train, k, threads, hyper, epochs=EPOCHS):
    return mfcore.Model(k=k, epochs=epochs, n_threads=threads, seed=0, reg_bias=hyper["reg"],
                        **hyper).fit(*train)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("preset", PRESETS)
def test_mfcore(benchmark, preset, k, threads, hyper):
    train, test = load(preset)
    models = []
    benchmark.pedantic(lambda: models.append(fit_mfcore(train, k, threads, hyper)),
                       rounds=ROUNDS, iterations=1)
    # median over rounds of each fit's median epoch throughput
    ups = float(np.median([median_updates([h["seconds"] for h in m.history_], len(train[2]))
                           for m in models]))
    err = models[-1].evaluate(*test)["rmse"]
    assert all(np.array_equal(m.user_factors_, models[0].user_factors_) for m in models)
    record(benchmark, table="throughput", preset=preset, k=k, impl="mfcore", threads=threads,
           updates_per_sec=ups, rmse=err)


def _peer(benchmark, preset, k, impl, fit, hyper, **kw):
    if preset not in PEER_PRESETS:
        pytest.skip(f"peers run on {PEER_PRESETS} only (MFCORE_BENCH_PEERS)")
    train, test = load(preset)
    out = []
    benchmark.pedantic(lambda: out.append(fit(train, k, EPOCHS, **hyper, **kw)),
                       rounds=1, iterations=1)
    seconds, predict = out[0]
    record(benchmark, table="throughput", preset=preset, k=k, impl=impl, threads=1,
           updates_per_sec=median_updates(seconds, len(train[2])),
           rmse=rmse(predict(test[0], test[1]), test[2]))


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("preset", PRESETS)
def test_numpy_minibatch(benchmark, preset, k, hyper):
    _peer(benchmark, preset, k, "numpy mini-batch (1024)", _peers.fit_numpy, hyper)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("preset", PRESETS)
def test_numba_notebook(benchmark, preset, k, hyper):
    _peer(benchmark, preset, k, "numba notebook (batch 1024)", _peers.fit_numba, hyper)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("preset", PRESETS)
def test_surprise_svd(benchmark, preset, k, hyper):
    _peer(benchmark, preset, k, "surprise SVD", _peers.fit_surprise, hyper)


@pytest.mark.parametrize("k", [32])
@pytest.mark.parametrize("preset", PEER_PRESETS)
def test_mfcore_serial_full_shuffle(benchmark, preset, k, hyper):
    """Plain SGD over a full random permutation every epoch (mfcore's reference kernel,
    one thread): the RMSE the block schedule should match."""
    from mfcore._kernels import predict as _predict
    from mfcore._kernels import sgd as _kernels
    train, test = load(preset)
    u, i, r = train
    rng = np.random.default_rng(0)
    P = rng.normal(0, hyper["init_std"], (u.max() + 1, k)).astype(np.float32)
    Q = rng.normal(0, hyper["init_std"], (i.max() + 1, k)).astype(np.float32)
    bu, bi = np.zeros(len(P), np.float32), np.zeros(len(Q), np.float32)
    mu = float(r.mean(dtype=np.float64))
    seconds = []

    def fit():
        for _ in range(EPOCHS):
            order = rng.permutation(len(r))
            start = time.perf_counter()
            _kernels.sgd_epoch(u, i, r, order, P, Q, bu, bi, mu, hyper["lr"], hyper["reg"],
                               hyper["reg"])
            seconds.append(time.perf_counter() - start)
    benchmark.pedantic(fit, rounds=1, iterations=1)
    out = np.empty(len(test[2]), np.float32)
    _predict.predict(test[0], test[1], P, Q, bu, bi, mu, 1.0, 5.0, out, 1)
    record(benchmark, table="throughput", preset=preset, k=k,
           impl="mfcore serial, full shuffle", threads=1,
           updates_per_sec=median_updates(seconds, len(r)), rmse=rmse(out, test[2]),
           note="(reference order; no permutation time)")


@pytest.mark.parametrize("preset", SCALING)
def test_epoch_time_against_data_size(benchmark, preset, hyper):
    train, _ = load(preset)
    models = []
    benchmark.pedantic(lambda: models.append(fit_mfcore(train, 32, 2, hyper, epochs=3)),
                       rounds=ROUNDS, iterations=1)
    seconds = float(np.median([h["seconds"] for m in models for h in m.history_]))
    record(benchmark, table="scaling", preset=preset, n=len(train[2]), seconds=seconds)
