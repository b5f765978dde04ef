"""The block-parallel SGD epoch: thread-count independence, SIMD paths, NumPy reference."""
import numpy as np
import pytest

import mfcore
from mfcore._kernels import predict as _predict
from mfcore._kernels import sgd as _kernels
from mfcore._kernels import simd as _simd
from mfcore.estimators import sgd as _sgd
from mfcore.estimators.sgd import SGDTrainer


def planted(n_users=400, n_items=300, n=80_000, seed=5):
    """Ratings from a planted rank-3 model, no duplicate pairs (a 3x3 block grid)."""
    rng = np.random.default_rng(seed)
    key = rng.choice(n_users * n_items, n, replace=False)
    u, i = key // n_items, key % n_items
    P, Q = rng.normal(0, 0.6, (n_users, 3)), rng.normal(0, 0.6, (n_items, 3))
    r = np.clip(3.5 + np.einsum("nk,nk->n", P[u], Q[i]) + rng.normal(0, 0.3, n), 1, 5)
    return u, i, r


def fitted(dtype="float32", n_threads=1, k=24, epochs=4, **kw):
    u, i, r = planted(**kw)
    return mfcore.Model(k=k, epochs=epochs, dtype=dtype, n_threads=n_threads, seed=7).fit(u, i, r)


def arrays(m):
    return m.user_factors_, m.item_factors_, m.user_bias_, m.item_bias_


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_is_bit_identical_with_1_2_and_8_threads(dtype):
    one = fitted(dtype, n_threads=1)
    assert SGDTrainer(*planted()[:2], planted()[2].astype(dtype), 1).grid >= 3  # really blocked
    for n_threads in (2, 8):
        other = fitted(dtype, n_threads=n_threads)
        for a, b in zip(arrays(one), arrays(other)):
            assert a.dtype == np.dtype(dtype)
            assert np.array_equal(a, b), f"{n_threads} threads differ from 1 thread"
        assert [h["train_rmse"] for h in one.history_] == [h["train_rmse"] for h in other.history_]


def test_grid_depends_on_data_not_threads():
    u, i, r = planted()
    grids = {SGDTrainer(u, i, r, t).grid for t in (1, 2, 8, 64)}
    assert len(grids) == 1


def test_blocked_training_learns_the_planted_model():
    u, i, r = planted()
    m = mfcore.Model(k=8, epochs=25, lr=0.02, reg=0.02, seed=1, n_threads=2).fit(u, i, r)
    assert m.history_[-1]["train_rmse"] < 0.45  # noise is 0.3; the mean alone gives ~0.6
    assert m.history_[-1]["train_rmse"] < m.history_[0]["train_rmse"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_supported_simd_path_gives_the_same_model(dtype):
    before = mfcore.simd.current()
    try:
        models = {}
        for path in _simd.simd_supported():
            mfcore.simd.select(path)
            assert mfcore.simd.current() == path
            # k=37: full 64-byte vectors plus a scalar tail
            models[path] = fitted(dtype, n_threads=2, k=37, epochs=3)
    finally:
        mfcore.simd.select(before)
    tol = 2e-4 if dtype == "float32" else 1e-10
    ref = models["baseline"]
    for path, m in models.items():
        for a, b in zip(arrays(ref), arrays(m)):
            np.testing.assert_allclose(a, b, rtol=0, atol=tol, err_msg=path)
        pred = m.predict(np.arange(10), np.arange(10))
        np.testing.assert_allclose(pred, ref.predict(np.arange(10), np.arange(10)),
                                   atol=tol * 10, err_msg=path)


def test_select_sets_the_one_path_or_refuses_and_changes_nothing():
    simd = mfcore.simd
    before = simd.current()
    try:
        for path in simd.supported():
            simd.select(path)
            assert simd.current() == path
        refused = ("sse9",) + tuple(p for p in simd.PATHS if p not in simd.supported())
        for name in refused:
            with pytest.raises(ValueError, match="must be one of|not supported"):
                simd.select(name)
            assert simd.current() == path  # unchanged
        if "avx512" not in _simd.simd_supported():
            with pytest.raises(ValueError, match="not supported"):
                simd.select("avx512")
    finally:
        simd.select(before)
    assert simd.current() == before


def small_blocks(dtype, k, monkeypatch, seed=11):
    """A 3x3 grid of 40-rating blocks (400 ratings, several runs a block) and a random
    starting state for factors of size k."""
    monkeypatch.setattr(_sgd, "MIN_BLOCK", 40)
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 30
    key = rng.choice(n_users * n_items, 400, replace=False)
    users, items = (key // n_items).astype(np.int32), (key % n_items).astype(np.int32)
    ratings = rng.integers(1, 6, 400).astype(dtype)
    trainer = SGDTrainer(users, items, ratings, n_threads=2)
    assert trainer.grid == 3
    scale = 0.3 * min(1.0, np.sqrt(20 / k))  # dot products of about the same size for every k
    state = {"user_factors_": rng.normal(0, scale, (n_users, k)).astype(dtype),
             "item_factors_": rng.normal(0, scale, (n_items, k)).astype(dtype),
             "user_bias_": rng.normal(0, 0.1, n_users).astype(dtype),
             "item_bias_": rng.normal(0, 0.1, n_items).astype(dtype)}
    return trainer, state


PARAMS = ("user_factors_", "item_factors_", "user_bias_", "item_bias_")
HYPER = (3.1, 0.05, 0.03, 0.01)  # global mean, lr, reg, reg_bias


def run_blocks(trainer, state, schedule, seed, shuffle):
    """One ``sgd_blocks`` epoch over the trainer's records, updating ``state`` in place."""
    return _kernels.sgd_blocks(trainer._record_bytes, trainer.block_ptr, schedule, trainer.grid,
                               seed, shuffle, trainer._scratch,
                               *(state[name] for name in PARAMS), *HYPER, trainer._block_sse, 2)


def visit_order(trainer, schedule, seed, shuffle):
    """The record order of ``sgd_blocks``: the rounds' blocks in schedule order; each block
    in runs of VISIT_RUN consecutive records, the runs in the drawn permutation."""
    run, order = _kernels.VISIT_RUN, []
    for b in schedule:
        lo, hi = trainer.block_ptr[b], trainer.block_ptr[b + 1]
        n_runs = -(-(hi - lo) // run)
        perm = _kernels.block_permutation(n_runs, seed, b) if shuffle else np.arange(n_runs)
        assert sorted(perm) == list(range(n_runs))
        order += [np.arange(lo + c * run, min(lo + (c + 1) * run, hi)) for c in perm]
    return np.concatenate(order)


def numpy_state(trainer, state, order, numpy_epoch):
    """The NumPy reference epoch over the records in ``order``: (new state, sum of squares)."""
    want = {name: np.copy(state[name]) for name in PARAMS}
    rec = trainer.records
    sse = numpy_epoch(rec["u"], rec["i"], rec["r"], order, *(want[name] for name in PARAMS),
                      *HYPER)
    return want, sse


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-5)])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("k", [19, 20, 45, 100])  # vector-count copies (19, 45), compile-time k
def test_block_epoch_matches_numpy_in_the_same_block_order(dtype, tol, shuffle, k, monkeypatch,
                                                          numpy_epoch):
    trainer, start = small_blocks(dtype, k, monkeypatch)
    state = {name: np.copy(v) for name, v in start.items()}
    before = trainer.records.copy()
    schedule = trainer.schedule(np.random.default_rng(3))
    sse = run_blocks(trainer, state, schedule, 12345, shuffle)
    assert np.array_equal(before, trainer.records)  # the kernel never reorders the data
    order = visit_order(trainer, schedule, 12345, shuffle)
    in_runs = np.concatenate([np.arange(trainer.block_ptr[b], trainer.block_ptr[b + 1])
                              for b in schedule])
    assert np.array_equal(order, in_runs) != shuffle  # shuffled runs, or the stored order
    want, want_sse = numpy_state(trainer, start, order, numpy_epoch)
    for name in PARAMS:
        np.testing.assert_allclose(state[name], want[name], rtol=0, atol=tol, err_msg=name)
    assert sse == pytest.approx(want_sse, rel=tol)
    assert not np.allclose(state["user_factors_"], start["user_factors_"], atol=0.1)


GENERIC_K = (7, 37)  # 7: the runtime-k loop everywhere; 37: a vector-count copy on AVX-512


def expected_variant(k, path):
    if k in mfcore.simd.specialized_k():
        return "fixed_k"
    return "vectors" if path == "avx512" and k == 37 else "runtime_k"


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("k", mfcore.simd.specialized_k() + GENERIC_K)
def test_every_path_and_specialized_k_matches_numpy(dtype, tol, k, monkeypatch, numpy_epoch):
    """Both SGD kernels (blocks and the serial ordered epoch) on every SIMD path, for every
    k with a compile-time copy and two without, against the NumPy reference epoch."""
    trainer, start = small_blocks(dtype, k, monkeypatch)
    schedule = trainer.schedule(np.random.default_rng(3))
    order = visit_order(trainer, schedule, 777, True)
    want, want_sse = numpy_state(trainer, start, order, numpy_epoch)
    rec = trainer.records
    before = mfcore.simd.current()
    try:
        for path in mfcore.simd.supported():
            mfcore.simd.select(path)
            assert _kernels.block_variant(k, dtype) == expected_variant(k, path), path
            blocks = {name: np.copy(v) for name, v in start.items()}
            sse = run_blocks(trainer, blocks, schedule, 777, True)
            ordered = {name: np.copy(v) for name, v in start.items()}
            ordered_sse = _kernels.sgd_epoch(rec["u"].copy(), rec["i"].copy(), rec["r"].copy(),
                                             order.astype(np.int64),
                                             *(ordered[name] for name in PARAMS), *HYPER)
            for got, got_sse, kernel in ((blocks, sse, "blocks"),
                                         (ordered, ordered_sse, "ordered")):
                for name in PARAMS:
                    np.testing.assert_allclose(got[name], want[name], rtol=0, atol=tol,
                                               err_msg=f"{kernel} {path} {name}")
                assert got_sse == pytest.approx(want_sse, rel=tol), f"{kernel} {path}"
    finally:
        mfcore.simd.select(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [13, 67, 133])  # runtime-k rows of 1-4 to 8-67 vectors
def test_block_epoch_is_the_serial_epoch_bit_for_bit(dtype, k, monkeypatch):
    """For a k without a compile-time copy, the block kernel (one rating after another, or
    pipelined: each update beside the next rating's dot product, for long rows) does what
    the serial ordered epoch does in the same order, to the bit, on every path. The small
    blocks make consecutive ratings of one user or item common (the pipelined loop must
    then redo the dot product after the update)."""
    trainer, start = small_blocks(dtype, k, monkeypatch)
    schedule = trainer.schedule(np.random.default_rng(5))
    order = visit_order(trainer, schedule, 99, True)
    rec = trainer.records[order]
    assert np.any((rec["u"][1:] == rec["u"][:-1]) | (rec["i"][1:] == rec["i"][:-1]))
    before = mfcore.simd.current()
    try:
        for path in mfcore.simd.supported():
            mfcore.simd.select(path)
            blocks = {name: np.copy(v) for name, v in start.items()}
            sse = run_blocks(trainer, blocks, schedule, 99, True)
            ordered = {name: np.copy(v) for name, v in start.items()}
            ordered_sse = _kernels.sgd_epoch(trainer.records["u"].copy(),
                                             trainer.records["i"].copy(),
                                             trainer.records["r"].copy(),
                                             order.astype(np.int64),
                                             *(ordered[name] for name in PARAMS), *HYPER)
            for name in PARAMS:
                assert np.array_equal(blocks[name], ordered[name]), f"{path} {name}"
            assert sse == pytest.approx(ordered_sse, rel=1e-12), path  # summed per block
    finally:
        mfcore.simd.select(before)


def test_specialized_k_come_from_the_kernel():
    ks = mfcore.simd.specialized_k()
    assert ks == _kernels.SPECIALIZED_K and ks == tuple(sorted(set(ks)))
    assert {20, 64, 128} <= set(ks)  # the k of benchmarks/core_throughput.py
    assert all(isinstance(k, int) and k > 0 for k in ks)
    with pytest.raises(ValueError, match="float32 or float64"):
        _kernels.block_variant(20, np.int32)


def test_schedule_rounds_are_conflict_free_and_cover_every_block():
    u, i, r = planted()
    trainer = SGDTrainer(u, i, r, 1)
    g = trainer.grid
    sched = trainer.schedule(np.random.default_rng(0)).reshape(g, g)
    assert sorted(sched.ravel().tolist()) == list(range(g * g))
    for rnd in sched:
        assert len(set(rnd // g)) == g and len(set(rnd % g)) == g


@pytest.mark.parametrize("bad, message", [
    (lambda s, g: np.where(s == 0, 1, s), "repeated"),  # block 1 twice, block 0 never
    (lambda s, g: np.arange(g * g), "row or column"),  # round 0 = one whole row of the grid
])
def test_a_conflicting_schedule_is_refused(bad, message):
    u, i, r = planted()
    trainer = SGDTrainer(u, i, r.astype(np.float32), 1)
    g = trainer.grid
    sched = np.ascontiguousarray(bad(trainer.schedule(np.random.default_rng(0)), g),
                                 dtype=np.int32)
    P, Q = np.zeros((400, 4), np.float32), np.zeros((300, 4), np.float32)
    with pytest.raises(ValueError, match=message):
        _kernels.sgd_blocks(trainer._record_bytes, trainer.block_ptr, sched, g, 1, True,
                            trainer._scratch, P, Q,
                            np.zeros(400, np.float32), np.zeros(300, np.float32), 3.0,
                            0.01, 0.0, 0.0, trainer._block_sse, 1)


def test_records_of_the_wrong_precision_are_refused():
    u, i, r = planted()
    trainer = SGDTrainer(u, i, r.astype(np.float64), 1)  # 16-byte records
    P, Q = np.zeros((400, 4), np.float32), np.zeros((300, 4), np.float32)
    with pytest.raises(ValueError, match="records"):
        _kernels.sgd_blocks(trainer._record_bytes, trainer.block_ptr,
                            trainer.schedule(np.random.default_rng(0)), trainer.grid, 1, True,
                            trainer._scratch, P, Q, np.zeros(400, np.float32),
                            np.zeros(300, np.float32), 3.0,
                            0.01, 0.0, 0.0, trainer._block_sse, 1)


def test_an_epoch_depends_on_its_seed_not_on_earlier_epochs():
    """Two trainers over the same data give the same epoch from the same Generator state,
    even if one of them has already run epochs (partial_fit builds a new trainer)."""
    u, i, r = planted()
    used, fresh = SGDTrainer(u, i, r, 2), SGDTrainer(u, i, r, 1)
    rng = np.random.default_rng(0)
    state = {"user_factors_": rng.normal(0, 0.1, (400, 6)),
             "item_factors_": rng.normal(0, 0.1, (300, 6)), "user_bias_": np.zeros(400), "item_bias_": np.zeros(300),
             "global_mean_": 3.5}
    used.run_epoch({k: np.copy(v) for k, v in state.items()}, 0.01, 0.02, 0.02, rng)
    a, b = ({k: np.copy(v) for k, v in state.items()} for _ in range(2))
    sse_a = used.run_epoch(a, 0.01, 0.02, 0.02, np.random.default_rng(42))
    sse_b = fresh.run_epoch(b, 0.01, 0.02, 0.02, np.random.default_rng(42))
    assert sse_a == sse_b
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_and_squared_error_do_not_depend_on_threads(dtype):
    rng = np.random.default_rng(4)
    n, k = 20_000, 13  # several chunks, and a scalar tail in the dot product
    users = rng.integers(-1, 50, n).astype(np.int32)
    items = rng.integers(-1, 40, n).astype(np.int32)
    ratings = rng.integers(1, 6, n).astype(dtype)
    P, Q = rng.normal(0, 0.3, (50, k)).astype(dtype), rng.normal(0, 0.3, (40, k)).astype(dtype)
    bu, bi = rng.normal(0, 0.1, 50).astype(dtype), rng.normal(0, 0.1, 40).astype(dtype)
    outs, sses = [], []
    for n_threads in (1, 2, 8):
        out = np.empty(n, dtype)
        _predict.predict(users, items, P, Q, bu, bi, 3.0, 1.0, 5.0, out, n_threads)
        outs.append(out)
        sses.append(_predict.squared_error(users, items, ratings, P, Q, bu, bi, 3.0, 1.0, 5.0,
                                           n_threads))
    assert all(np.array_equal(outs[0], o) for o in outs)
    assert sses[0] == sses[1] == sses[2]
    want = np.full(n, 3.0)
    ku, ki = users >= 0, items >= 0
    want[ku] += bu[users[ku]]
    want[ki] += bi[items[ki]]
    both = ku & ki
    want[both] += np.einsum("nk,nk->n", P[users[both]], Q[items[both]])
    want = np.clip(want, 1, 5)
    np.testing.assert_allclose(outs[0], want, rtol=1e-5)
    assert sses[0] == pytest.approx(np.sum((ratings - want) ** 2), rel=1e-5)
    with pytest.raises(ValueError, match="out has"):
        _predict.predict(users, items, P, Q, bu, bi, 3.0, 1.0, 5.0, np.empty(n - 1, dtype), 1)


def test_show_config_reports_the_running_path(capsys):
    config = mfcore.show_config()
    assert config["simd_path"] == mfcore.simd.current()
    assert config["simd_path"] in config["simd_supported"]
    assert "simd_path" in capsys.readouterr().out


def test_records_of_sorted_input_are_mixed_within_blocks():
    """The kernel visits runs of consecutive records: with input sorted by user they must
    not be runs of one user (correlated updates), so the layout shuffles within blocks."""
    u, i, r = planted()
    by_user = np.lexsort((i, u))
    rec = SGDTrainer(u[by_user], i[by_user], r[by_user], 1).records
    same_user_next = np.mean(rec["u"][1:] == rec["u"][:-1])
    assert same_user_next < 0.05  # about 1 / (users in a block), not ~1
