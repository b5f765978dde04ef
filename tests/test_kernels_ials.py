"""The implicit-ALS row kernel against a dense NumPy solve of the same objective."""
import numpy as np
import pytest

from mfcore._kernels.ials import solve_rows


def _problem(seed=0, n_rows=7, n_other=11, k=5, dtype=np.float64):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_other)) < 0.4
    mask[3] = False  # a row without observed pairs
    rows, cols = np.nonzero(mask)
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    conf = rng.uniform(0.5, 3.0, len(rows))
    target = rng.normal(1.0, 0.5, len(rows))
    Q = rng.normal(0, 0.5, (n_other, k)).astype(dtype)
    bq = rng.normal(0, 0.3, n_other).astype(dtype)
    scale = rng.uniform(0.5, 2.0, n_rows)
    return dict(indptr=indptr, cols=cols.astype(np.int32), conf=conf, target=target, Q=Q,
                bq=bq, scale=scale, rows=rows, n_rows=n_rows, k=k, dtype=dtype)


def _dense(pb, w0, reg, reg_bias, fit_bias):
    """Each row's minimiser of sum_obs c (t - s)^2 + w0 sum_all s^2 + penalties, dense."""
    n_rows, n_other, k = pb["n_rows"], len(pb["Q"]), pb["k"]
    C = np.zeros((n_rows, n_other))
    T = np.zeros((n_rows, n_other))
    C[pb["rows"], pb["cols"]] = pb["conf"]
    T[pb["rows"], pb["cols"]] = pb["target"]
    Q, bq = pb["Q"].astype(np.float64), pb["bq"].astype(np.float64)
    A = np.c_[Q, np.ones(n_other)] if fit_bias else Q
    out = []
    for u in range(n_rows):
        W = C[u] + w0
        lam = np.r_[np.full(k, reg), [reg_bias] if fit_bias else []] * pb["scale"][u]
        M = (A * W[:, None]).T @ A + np.diag(lam)
        rhs = A.T @ (C[u] * (T[u] - bq) - w0 * bq)
        x = np.linalg.solve(M, rhs)
        out.append(np.r_[x, [0.0]] if not fit_bias else x)
    return np.array(out)


def _run(pb, w0, reg, reg_bias, fit_bias, cg_steps, n_threads=1, start=None):
    n_rows, k, dtype = pb["n_rows"], pb["k"], pb["dtype"]
    P = np.zeros((n_rows, k), dtype) if start is None else start[0].copy()
    b = np.zeros(n_rows, dtype) if start is None else start[1].copy()
    loss = np.zeros(n_rows)
    solve_rows(pb["indptr"], pb["cols"], pb["conf"].astype(dtype), pb["target"].astype(dtype), pb["Q"], pb["bq"],
               w0, reg, reg_bias, pb["scale"], fit_bias, cg_steps, P, b, loss, n_threads)
    return P, b, loss


@pytest.mark.parametrize("fit_bias", [True, False])
def test_exact_solve_matches_the_dense_objective(fit_bias):
    pb = _problem()
    P, b, loss = _run(pb, 0.3, 0.2, 0.05, fit_bias, cg_steps=0)
    want = _dense(pb, 0.3, 0.2, 0.05, fit_bias)
    assert np.allclose(P, want[:, :pb["k"]], rtol=1e-10, atol=1e-12)
    assert np.allclose(b, want[:, pb["k"]], rtol=1e-10, atol=1e-12)
    assert fit_bias or not b.any()
    # the row loss is the weighted squared error on the observed pairs at the answer
    s = b[pb["rows"]] + pb["bq"][pb["cols"]] + np.einsum("nk,nk->n", P[pb["rows"]], pb["Q"][pb["cols"]])
    expected = np.bincount(pb["rows"], pb["conf"] * (pb["target"] - s) ** 2, minlength=pb["n_rows"])
    assert np.allclose(loss, expected, rtol=1e-10, atol=1e-12)


def test_conjugate_gradient_converges_to_the_exact_answer_and_improves_each_sweep():
    pb = _problem(seed=1)
    want = _dense(pb, 0.5, 0.1, 0.1, True)
    start = (np.zeros((pb["n_rows"], pb["k"])), np.zeros(pb["n_rows"]))
    errors = []
    for steps in (1, 2, 3, 6):
        P, b, _ = _run(pb, 0.5, 0.1, 0.1, True, cg_steps=steps, start=start)
        errors.append(np.abs(np.c_[P, b] - want).max())
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-8  # k + 1 = 6 unknowns
    # warm start: a converged row does not move
    P, b, _ = _run(pb, 0.5, 0.1, 0.1, True, cg_steps=3, start=(want[:, :-1].copy(), want[:, -1].copy()))
    assert np.allclose(np.c_[P, b], want, atol=1e-10)


def test_an_empty_row_without_the_all_pairs_term_is_zero():
    pb = _problem()
    P, b, _ = _run(pb, 0.0, 0.2, 0.05, True, cg_steps=3, start=(np.ones((7, 5)), np.ones(7)))
    assert not P[3].any() and b[3] == 0


@pytest.mark.parametrize("cg_steps", [0, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_are_bit_identical_for_any_thread_count(cg_steps, dtype):
    pb = _problem(seed=2, n_rows=60, n_other=40, k=9, dtype=dtype)
    start = (np.random.default_rng(0).normal(size=(60, 9)).astype(dtype), np.zeros(60, dtype))
    runs = [_run(pb, 0.2, 0.1, 0.1, True, cg_steps, n_threads=t, start=start) for t in (1, 2, 3)]
    for other in runs[1:]:
        assert all(np.array_equal(x, y) for x, y in zip(runs[0], other))


def test_bad_arguments_are_named():
    pb = _problem()
    bad_conf = dict(pb, conf=-pb["conf"])
    with pytest.raises(ValueError, match="conf must be finite and >= 0"):
        _run(bad_conf, 0.3, 0.2, 0.05, True, cg_steps=0)
    with pytest.raises(ValueError, match="w0 must be finite"):
        _run(pb, -1.0, 0.2, 0.05, True, cg_steps=0)
