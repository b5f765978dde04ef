"""ALS: one iteration equals a NumPy reference of the documented objective; fold-in is its user step."""
import signal

import numpy as np
import pytest

import mfcore


def numpy_als_iteration(u, i, r, P, Q, bu, bi, mu, reg, reg_bias, count_weighted,
                        bias_shrinkage):
    """Users then items, each row's (bias, factors) by np.linalg.solve of its normal equations
    (``reg`` in rating units: the estimator's reg times the ratings' spread)."""
    for rows, cols, F, b, G, c in ((u, i, P, bu, Q, bi), (i, u, Q, bi, P, bu)):
        for row in np.unique(rows):
            sel = rows == row
            A = np.hstack([np.ones((sel.sum(), 1)), G[cols[sel]].astype(np.float64)])
            y = r[sel] - mu - c[cols[sel]]
            scale = sel.sum() if count_weighted else 1.0
            lam = np.full(A.shape[1], scale * reg)
            lam[0] = scale * reg_bias + bias_shrinkage
            x = np.linalg.solve(A.T @ A + np.diag(lam), A.T @ y)
            b[row], F[row] = x[0], x[1:]


@pytest.mark.parametrize("count_weighted, reg, reg_bias, shrinkage",
                         [(True, 0.05, None, 1.0), (False, 2.0, 0.5, 0.0), (True, 0.1, 0.03, 7.0)])
def test_one_iteration_equals_the_numpy_reference(make_planted, count_weighted, reg, reg_bias,
                                                  shrinkage):
    u, i, r = make_planted(n_users=40, n_items=30, density=0.4, seed=1)
    model = mfcore.ALS(k=5, iterations=1, reg=reg, reg_bias=reg_bias, count_weighted=count_weighted,
                       bias_shrinkage=shrinkage, dtype="float64", seed=3)
    start = mfcore.ALS(k=5, iterations=0, dtype="float64", seed=3).fit(u, i, r)
    model.fit(u, i, r)
    P, Q = start.user_factors_.copy(), start.item_factors_.copy()
    bu, bi = np.zeros(len(P)), np.zeros(len(Q))
    numpy_als_iteration(start.user_map_.lookup(u), start.item_map_.lookup(i), r, P, Q, bu, bi,
                        start.global_mean_, reg * start.rating_scale_,
                        reg if reg_bias is None else reg_bias, count_weighted, shrinkage)
    for got, want in zip((model.user_factors_, model.item_factors_, model.user_bias_,
                          model.item_bias_), (P, Q, bu, bi)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_fold_in_is_the_als_user_step(make_planted):
    u, i, r = make_planted(n_users=60, n_items=40, density=0.4, seed=2)
    model = mfcore.ALS(k=6, iterations=4, dtype="float64").fit(u, i, r)
    row = model.user_map_.lookup([u[0]])[0]
    # after the item half of the last iteration, solving the user again is one more user step
    P, bu = model.user_factors_.copy(), model.user_bias_.copy()
    Q, bi = model.item_factors_, model.item_bias_
    sel = u == u[0]
    cols = model.item_map_.lookup(i[sel])
    A = np.hstack([np.ones((sel.sum(), 1)), Q[cols]])
    lam = np.full(7, sel.sum() * model.reg * model.rating_scale_)
    lam[0] = sel.sum() * model.reg_bias + model.bias_shrinkage
    x = np.linalg.solve(A.T @ A + np.diag(lam), A.T @ (r[sel] - model.global_mean_ - bi[cols]))
    model.fold_in(u[0], i[sel], r[sel])
    np.testing.assert_allclose(model.user_bias_[row], x[0], rtol=1e-9)
    np.testing.assert_allclose(model.user_factors_[row], x[1:], rtol=1e-9, atol=1e-12)
    others = np.arange(len(P)) != row
    assert np.array_equal(model.user_factors_[others], P[others])
    assert np.array_equal(model.user_bias_[others], bu[others])


def test_partial_fit_keeps_rows_it_has_no_ratings_for(make_planted):
    u, i, r = make_planted(n_users=50, n_items=40, density=0.4, seed=4)
    model = mfcore.ALS(k=4, iterations=3).fit(u, i, r)
    some = u < 10
    before = model.user_factors_.copy()
    model.partial_fit(u[some], i[some], r[some], epochs=1)
    rows = model.user_map_.lookup(np.unique(u[~some]))
    assert np.array_equal(model.user_factors_[rows], before[rows])
    assert not np.array_equal(model.user_factors_[model.user_map_.lookup([0])], before[[0]])


def test_history_records_loss_and_rmse_per_iteration(make_planted):
    u, i, r = make_planted(n_users=50, n_items=40, density=0.4, seed=5)
    model = mfcore.ALS(k=4, iterations=5, validation_fraction=0.2).fit(u, i, r)
    losses = [h["train_loss"] for h in model.history_]
    assert all(b <= a + 1e-9 for a, b in zip(losses, losses[1:]))  # ALS never increases it
    assert {"epoch", "train_loss", "train_rmse", "val_rmse", "seconds"} <= set(model.history_[0])


# --- solver="cg": a fixed number of conjugate-gradient steps per row, warm-started --------

def test_cg_with_a_step_per_unknown_is_the_exact_solve(make_planted):
    u, i, r = make_planted(n_users=40, n_items=30, density=0.4, seed=1)
    exact = mfcore.ALS(k=5, iterations=2, dtype="float64", seed=3).fit(u, i, r)
    cg = mfcore.ALS(k=5, iterations=2, solver="cg", cg_steps=6, dtype="float64",
                    seed=3).fit(u, i, r)  # k + 1 = 6 unknowns: CG is exact in 6 steps
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_allclose(getattr(cg, name), getattr(exact, name), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cg_fits_are_bit_identical_for_any_thread_count(make_planted, dtype):
    u, i, r = make_planted(n_users=300, n_items=200, density=0.2, seed=6)
    fits = [mfcore.ALS(k=9, iterations=3, solver="cg", dtype=dtype, n_threads=t).fit(u, i, r)
            for t in (1, 2, 3)]
    for other in fits[1:]:
        for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
            assert np.array_equal(getattr(fits[0], name), getattr(other, name))


def test_cg_never_increases_the_objective_and_matches_the_exact_held_out_rmse(make_planted,
                                                                             train_test):
    train, test = train_test(*make_planted(n_users=300, n_items=200, density=0.3, seed=7))
    exact = mfcore.ALS(k=16, iterations=10, seed=0).fit(*train)
    cg = mfcore.ALS(k=16, iterations=10, solver="cg", seed=0).fit(*train)
    losses = [h["train_loss"] for h in cg.history_]
    # each row's CG steps lower its own quadratic, so every half-iteration lowers the objective
    assert all(b <= a * (1 + 1e-6) for a, b in zip(losses, losses[1:]))
    assert abs(cg.evaluate(*test)["rmse"] - exact.evaluate(*test)["rmse"]) < 0.002


def test_fold_in_is_exact_with_the_cg_solver(make_planted):
    u, i, r = make_planted(n_users=60, n_items=40, density=0.4, seed=2)
    exact = mfcore.ALS(k=6, iterations=4, dtype="float64").fit(u, i, r)
    cg = mfcore.ALS(k=6, iterations=4, dtype="float64", solver="cg", cg_steps=1).fit(u, i, r)
    sel = u == u[0]
    # the same item side gives the same folded-in row: fold-in does not run the CG
    cg.item_factors_, cg.item_bias_ = exact.item_factors_.copy(), exact.item_bias_.copy()
    exact.fold_in(u[0], i[sel], r[sel])
    cg.fold_in(u[0], i[sel], r[sel])
    row = exact.user_map_.lookup([u[0]])[0]
    assert np.array_equal(cg.user_factors_[row], exact.user_factors_[row])
    assert cg.user_bias_[row] == exact.user_bias_[row]


def test_the_cg_solver_runs_on_dask_and_takes_side_features():
    # (each Dask shard starts its band's CG from the rows' current values: issue 22; the CG
    # kernel takes the feature terms' centre: issue 19)
    assert mfcore.ALS().supports("dask") and mfcore.ALS(solver="cg").supports("dask")
    assert mfcore.ALS(solver="cg").supports("features")


# --- Ctrl-C between blocks of rows (issue 20, D20) ---------------------------------------------

def test_a_costly_side_is_solved_in_blocks_with_the_same_result(monkeypatch):
    # one kernel call per side kept a Ctrl-C waiting for the whole side (16 s at k=256 on
    # ML-10M): the rows now go in blocks of bounded cost, between which Python sees signals
    from mfcore.estimators import als
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 300, 6000), rng.integers(0, 200, 6000)
    r = rng.integers(1, 6, 6000).astype(float)
    whole = mfcore.ALS(k=8, iterations=2, seed=0).fit(u, i, r)
    calls = []
    real = als.solve_rows

    def counted(indptr, *args):
        calls.append(len(indptr) - 1)
        return real(indptr, *args)
    monkeypatch.setattr(als, "solve_rows", counted)
    monkeypatch.setattr(als, "BLOCK_FLOPS", 1e5)   # about 30 rows per block
    blocked = mfcore.ALS(k=8, iterations=2, seed=0, n_threads=1).fit(u, i, r)
    assert len(calls) > 30 and max(calls) < 60 and sum(calls) == 2 * (300 + 200)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(blocked, name), getattr(whole, name))


def test_an_interrupt_between_blocks_stops_the_fit_and_keeps_the_model(monkeypatch):
    rng = np.random.default_rng(1)
    u, i = rng.integers(0, 300, 6000), rng.integers(0, 200, 6000)
    r = rng.integers(1, 6, 6000).astype(float)
    model = mfcore.ALS(k=8, iterations=3, seed=0).fit(u[:3000], i[:3000], r[:3000])
    before = {name: getattr(model, name).copy() for name in ("user_factors_", "item_factors_")}
    calls = _interrupt_on_block(monkeypatch, "solve_rows", 2e5)
    with pytest.raises(KeyboardInterrupt):
        model.fit(u, i, r)
    assert len(calls) == 3   # honoured before the fourth block, within the first side
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(model, name), value)


@pytest.fixture(autouse=True)
def _sigint_raises():
    """A SIGINT raises KeyboardInterrupt, as at a terminal: a process started in the
    background by a non-interactive shell inherits SIGINT ignored, and Python keeps it so."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt_on_block(monkeypatch, name, block_flops, after=3):
    """Replace ``als.<name>`` (a row-solve kernel) by one that counts its calls and raises a
    SIGINT while call ``after`` runs; returns the list of calls."""
    from mfcore.estimators import als
    calls, real = [], getattr(als, name)

    def interrupted(*args):
        real(*args)
        calls.append(1)
        if len(calls) == after:   # as a SIGINT arriving while this block runs
            signal.raise_signal(signal.SIGINT)
    monkeypatch.setattr(als, name, interrupted)
    monkeypatch.setattr(als, "BLOCK_FLOPS", block_flops)
    return calls


FITTED_ARRAYS = ("user_factors_", "item_factors_", "user_bias_", "item_bias_")


def test_the_cg_solve_in_blocks_gives_the_same_fit(monkeypatch):
    # issue 20, D20 for solver="cg": one CG kernel call per side kept a Ctrl-C waiting for the
    # whole side; blocks of rows must not change a bit of the arithmetic
    from mfcore.estimators import als
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 300, 6000), rng.integers(0, 200, 6000)
    r = rng.integers(1, 6, 6000).astype(float)
    est = dict(k=16, iterations=3, solver="cg", seed=0)
    whole = mfcore.ALS(**est).fit(u, i, r)
    calls, real = [], als.cg_solve_rows

    def counted(indptr, *args):
        calls.append(len(indptr) - 1)
        return real(indptr, *args)
    monkeypatch.setattr(als, "cg_solve_rows", counted)
    monkeypatch.setattr(als, "BLOCK_FLOPS", 3e4)   # about 20 rows per block
    for n_threads in (1, 2, 3):
        calls.clear()
        blocked = mfcore.ALS(**est, n_threads=n_threads).fit(u, i, r)
        assert len(calls) > 3 * 2 * 10 and sum(calls) == 3 * (300 + 200)
        for name in FITTED_ARRAYS:
            np.testing.assert_array_equal(getattr(blocked, name), getattr(whole, name))
        assert [h["train_loss"] for h in blocked.history_] == \
            [h["train_loss"] for h in whole.history_]


def test_an_interrupt_during_a_large_k_cg_fit_stops_between_blocks_and_keeps_the_model(
        monkeypatch):
    rng = np.random.default_rng(1)
    u, i = rng.integers(0, 300, 6000), rng.integers(0, 200, 6000)
    r = rng.integers(1, 6, 6000).astype(float)
    model = mfcore.ALS(k=256, iterations=3, solver="cg", seed=0).fit(u[:3000], i[:3000],
                                                                      r[:3000])
    before = {name: getattr(model, name).copy() for name in FITTED_ARRAYS}
    history, params, n_ratings = list(model.history_), model.get_params(), model.n_ratings_
    calls = _interrupt_on_block(monkeypatch, "cg_solve_rows", 1e6)  # about 30 rows a block
    with pytest.raises(KeyboardInterrupt):
        model.set_params(iterations=50).fit(u, i, r)
    assert len(calls) == 3   # honoured before the fourth block, within the first side
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(model, name), value)
    assert model.history_ == history and model.n_ratings_ == n_ratings
    assert model.get_params() == dict(params, iterations=50)


def test_a_failing_row_is_named_by_its_row_in_the_side_not_in_its_block(monkeypatch):
    from mfcore.estimators import als
    indptr = np.array([0, 2, 4, 6, 8], dtype=np.int64)

    def failing(a, b, block_indptr, lo, hi):
        if a <= 2 < b:
            raise FloatingPointError(f"row {2 - a} (2 ratings): singular (1 such rows)")
    monkeypatch.setattr(als, "BLOCK_FLOPS", 1.0)   # one row a block
    with pytest.raises(FloatingPointError, match=r"^row 2 \(2 ratings\)"):
        als.solve_in_blocks(indptr, 4, 1, failing)
    seen = []
    with pytest.raises(RuntimeError, match="aborted"):
        als.solve_in_blocks(indptr, 4, 1, lambda a, *_: seen.append(a),
                            between=lambda: (_ for _ in ()).throw(RuntimeError("aborted"))
                            if len(seen) == 2 else None)
    assert seen == [0, 1]   # a shard's abort check stops the side between blocks


def test_a_fit_does_not_depend_on_the_order_of_the_ratings():
    """Each row of the layout is sorted by column, so the solves sum in one order."""
    data = mfcore.datasets.synthetic(n_users=80, n_items=60, n_ratings=2000, seed=4)
    shuffled = data.sample(frac=1.0, random_state=0)
    a = mfcore.ALS(k=5, iterations=3, seed=0, n_threads=2).fit(data)
    b = mfcore.ALS(k=5, iterations=3, seed=0, n_threads=1).fit(shuffled)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]
