"""The ALS row solve (``mfcore._kernels.rowsolve.solve_rows``) against a NumPy reference."""
import numpy as np
import pytest

import mfcore
from mfcore._kernels import rowsolve as als
from mfcore._kernels import simd

#: (base, count_weight) of the three penalty rules
MODES = {"plain": (1.0, 0.0), "als-wr": (0.0, 1.0), "fold-in": (5.0, 1.0)}
#: tolerances on the answer: float64 is solved in float64; float32 is the float64 answer
#: to float32 inputs, rounded once to float32
TOL = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=2e-6, atol=2e-7)}


def reference(indptr, cols, ratings, other, other_bias, mu, reg, reg_bias, base,
              count_weight, fit_bias, rows=None, bias_shrinkage=0.0):
    """np.linalg.solve of each row's normal equations, in float64 (no jitter); only
    ``rows`` (default all; the others are left at zero)."""
    n_rows, k = len(indptr) - 1, other.shape[1]
    factors, bias = np.zeros((n_rows, k)), np.zeros(n_rows)
    for u in range(n_rows) if rows is None else rows:
        lo, hi = indptr[u], indptr[u + 1]
        if hi == lo:
            continue
        a = other[cols[lo:hi]].astype(np.float64)
        y = ratings[lo:hi].astype(np.float64) - mu - other_bias[cols[lo:hi]].astype(np.float64)
        lam = base + count_weight * (hi - lo)
        penalty = np.full(k, reg * lam)
        if fit_bias:
            a = np.hstack([a, np.ones((hi - lo, 1))])
            penalty = np.r_[penalty, reg_bias * lam + bias_shrinkage]
        x = np.linalg.solve(a.T @ a + np.diag(penalty), a.T @ y)
        factors[u] = x[:k]
        bias[u] = x[k] if fit_bias else 0.0
    return factors, bias


def problem(dtype, k=6, n_other=30, counts=(0, 1, 2, 40, 7, 0, 120, 3, 16, 17), seed=0):
    """CSR ratings of rows with the given rating counts (repeated columns allowed)."""
    rng = np.random.default_rng(seed)
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    cols = rng.integers(0, n_other, indptr[-1]).astype(np.int32)
    ratings = rng.integers(1, 6, indptr[-1]).astype(dtype)
    other = rng.normal(0, 0.4, (n_other, k)).astype(dtype)
    other_bias = rng.normal(0, 0.3, n_other).astype(dtype)
    return indptr, cols, ratings, other, other_bias


def outputs(indptr, k, dtype, fill=np.nan):
    n_rows = len(indptr) - 1
    return np.full((n_rows, k), fill, dtype=dtype), np.full(n_rows, fill, dtype=dtype)


def solve(data, mu=3.5, reg=0.1, reg_bias=0.02, base=1.0, count_weight=0.0, fit_bias=True,
          n_threads=1, out=None, bias_shrinkage=0.0):
    indptr, cols, ratings, other, other_bias = data
    factors, bias = out if out is not None else outputs(indptr, other.shape[1], other.dtype)
    jittered = als.solve_rows(indptr, cols, ratings, other, other_bias, mu, reg, reg_bias,
                              base, count_weight, fit_bias, factors, bias, n_threads,
                              bias_shrinkage)
    return factors, bias, jittered


@pytest.fixture
def each_simd_path():
    """Run the test body once per SIMD path this CPU has, then restore the path."""
    before = mfcore.simd.current()
    yield simd.simd_supported()
    mfcore.simd.select(before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fit_bias", [True, False])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("k", [1, 6, 7, 8, 21])
def test_matches_numpy_reference(dtype, fit_bias, mode, k):
    base, count_weight = MODES[mode]
    data = problem(dtype, k=k)
    params = dict(mu=3.5, reg=0.1, reg_bias=0.02, base=base, count_weight=count_weight,
                  fit_bias=fit_bias)
    factors, bias, jittered = solve(data, **params)
    want_factors, want_bias = reference(*data, **params)
    assert jittered == 0
    assert factors.dtype == bias.dtype == dtype
    np.testing.assert_allclose(factors, want_factors, **TOL[dtype])
    np.testing.assert_allclose(bias, want_bias, **TOL[dtype])
    # rows without ratings are zero; the others are not (the comparison is not vacuous)
    empty = np.diff(data[0]) == 0
    assert not factors[empty].any() and not bias[empty].any()
    assert (np.abs(factors[~empty]) > 0).all()
    if fit_bias:
        assert np.all(bias[~empty] != 0)
    else:
        assert not bias.any()  # the bias is held at 0 and written as 0


@pytest.mark.parametrize("mode", list(MODES))
def test_bias_shrinkage_adds_to_the_bias_penalty_whatever_the_count(mode):
    base, count_weight = MODES[mode]
    data = problem(np.float64)
    params = dict(mu=3.5, reg=0.1, reg_bias=0.02, base=base, count_weight=count_weight,
                  fit_bias=True)
    factors, bias, _ = solve(data, bias_shrinkage=2.5, **params)
    want_factors, want_bias = reference(*data, bias_shrinkage=2.5, **params)
    np.testing.assert_allclose(factors, want_factors, **TOL[np.float64])
    np.testing.assert_allclose(bias, want_bias, **TOL[np.float64])
    plain = solve(data, **params)[1]
    one = np.diff(data[0]) == 1  # a row of one rating: its bias shrinks the most
    assert (np.abs(bias[one]) < 0.6 * np.abs(plain[one])).all()


def test_every_simd_path_matches_the_reference(each_simd_path):
    data = problem(np.float64, k=37, n_other=80, counts=(5, 60, 0, 200, 1, 33))
    want = reference(*data, 3.0, 0.05, 0.05, 0.0, 1.0, True)
    for path in each_simd_path:
        mfcore.simd.select(path)
        assert mfcore.simd.current() == path
        factors, bias, _ = solve(data, mu=3.0, reg=0.05, reg_bias=0.05, base=0.0,
                                 count_weight=1.0)
        np.testing.assert_allclose(factors, want[0], **TOL[np.float64], err_msg=path)
        np.testing.assert_allclose(bias, want[1], **TOL[np.float64], err_msg=path)


def test_bias_only_model_k0():
    data = problem(np.float64, k=0)
    factors, bias, _ = solve(data)
    assert factors.shape == (10, 0)
    np.testing.assert_allclose(bias, reference(*data, 3.5, 0.1, 0.02, 1.0, 0.0, True)[1],
                               **TOL[np.float64])


def test_no_rows():
    data = (np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0), np.ones((4, 3)),
            np.zeros(4))
    factors, bias, jittered = solve(data)
    assert factors.shape == (0, 3) and jittered == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_for_any_thread_count(dtype, each_simd_path):
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 300, 400)
    data = problem(dtype, k=32, n_other=500, counts=counts, seed=4)
    for path in each_simd_path:
        mfcore.simd.select(path)
        one = solve(data, base=0.0, count_weight=1.0, n_threads=1)
        for n_threads in (2, 3):
            other = solve(data, base=0.0, count_weight=1.0, n_threads=n_threads)
            assert np.array_equal(one[0], other[0]), (path, n_threads)
            assert np.array_equal(one[1], other[1]), (path, n_threads)


@pytest.mark.parametrize("fit_bias", [True, False])
def test_singular_system_is_solved_with_jitter(fit_bias):
    """reg = reg_bias = 0 and a row whose ratings all use one column: a rank-one system."""
    indptr, cols, ratings, other, other_bias = problem(np.float64, k=4, counts=(3, 50, 0, 80))
    cols[0:3] = 7
    data = indptr, cols, ratings, other, other_bias
    factors, bias, jittered = solve(data, reg=0.0, reg_bias=0.0, fit_bias=fit_bias)
    assert jittered == 1
    assert np.isfinite(factors).all() and np.isfinite(bias).all()
    # the jittered answer still fits that row's ratings (their mean, as a ridge fit does)
    y = ratings[0:3] - 3.5 - other_bias[7]
    assert bias[0] + factors[0] @ other[7] == pytest.approx(y.mean(), abs=1e-4)
    assert np.abs(factors[0]).max() < 1e3
    # the well-posed rows are solved exactly, without jitter
    want_factors, want_bias = reference(*data, 3.5, 0.0, 0.0, 1.0, 0.0, fit_bias,
                                        rows=[1, 2, 3])
    np.testing.assert_allclose(factors[1:], want_factors[1:], **TOL[np.float64])
    np.testing.assert_allclose(bias[1:], want_bias[1:], **TOL[np.float64])


def test_system_that_stays_singular_names_the_first_row():
    """Factors so large that the normal equations overflow: no jitter helps."""
    indptr, cols, ratings, other, other_bias = problem(np.float64, k=4)
    cols[cols == 0] = 1
    cols[indptr[3]] = cols[indptr[6] + 5] = 0  # rows 3 and 6 rate column 0
    other[0] = 1e200
    data = indptr, cols, ratings, other, other_bias
    factors, bias = outputs(indptr, 4, np.float64)
    with pytest.raises(FloatingPointError, match=r"row 3 \(40 ratings\).*2 such rows"):
        solve(data, out=(factors, bias))
    assert not factors[[3, 6]].any() and not bias[[3, 6]].any()  # failed rows left at zero
    ok = np.setdiff1d(np.arange(10), [3, 6])
    want_factors, _ = reference(*data, 3.5, 0.1, 0.02, 1.0, 0.0, True, rows=ok)
    np.testing.assert_allclose(factors[ok], want_factors[ok], **TOL[np.float64])


def test_answer_beyond_float32_is_an_error():
    data = (np.array([0, 1], np.int64), np.zeros(1, np.int32), np.array([1e30], np.float32),
            np.array([[1e-10]], np.float32), np.zeros(1, np.float32))
    with pytest.raises(FloatingPointError, match="row 0"):
        solve(data, mu=0.0, reg=0.0, fit_bias=False)


# --- bad input ----------------------------------------------------------------------

def _args(dtype=np.float64):
    indptr, cols, ratings, other, other_bias = problem(dtype)
    factors, bias = outputs(indptr, other.shape[1], dtype, fill=0)
    return dict(indptr=indptr, cols=cols, ratings=ratings, other_factors=other,
                other_bias=other_bias, mu=3.5, reg=0.1, reg_bias=0.1, base=1.0,
                count_weight=0.0, fit_bias=True, factors=factors, bias=bias, n_threads=2,
                bias_shrinkage=0.0)


def _call(**args):
    return als.solve_rows(args["indptr"], args["cols"], args["ratings"], args["other_factors"],
                          args["other_bias"], args["mu"], args["reg"], args["reg_bias"],
                          args["base"], args["count_weight"], args["fit_bias"],
                          args["factors"], args["bias"], args["n_threads"],
                          args["bias_shrinkage"])


def _with(name, change):
    def make():
        args = _args()
        args[name] = change(args[name])
        return args
    return make


def _indptr(fix):
    def change(indptr):
        indptr = indptr.copy()
        fix(indptr)
        return indptr
    return change


BAD = {
    "empty indptr": (_with("indptr", lambda a: a[:0]), r"indptr must have n_rows \+ 1"),
    "factors rows": (_with("factors", lambda a: a[:-1].copy()), r"factors has 9 rows for 10"),
    "bias length": (_with("bias", lambda a: a[:-1].copy()), r"bias has 9 entries for 10"),
    "ratings length": (_with("ratings", lambda a: a[:-1].copy()), r"ratings has 205 entries"),
    "k mismatch": (_with("other_factors", lambda a: np.ones((30, 5))),
                   r"other_factors has k=5, factors has k=6"),
    "other_bias length": (_with("other_bias", lambda a: a[:-2].copy()),
                          r"other_bias has 28 entries for 30"),
    "col too large": (_with("cols", lambda a: np.where(np.arange(len(a)) == 9, 30, a)
                            .astype(np.int32)), r"cols must lie in \[0, 30\).*got 30 at position 9"),
    "col negative": (_with("cols", lambda a: np.where(np.arange(len(a)) == 0, -1, a)
                           .astype(np.int32)), r"got -1 at position 0"),
    "indptr start": (_with("indptr", _indptr(lambda p: p.__setitem__(0, 1))),
                     r"indptr must start at 0, got 1"),
    "indptr end": (_with("indptr", _indptr(lambda p: p.__setitem__(-1, p[-1] - 1))),
                   r"indptr must end at len\(cols\) = 206, got 205"),
    "indptr not monotone": (_with("indptr", _indptr(lambda p: p.__setitem__(3, p[4] + 1))),
                            r"non-decreasing, got 44 then 43 at rows 3 and 4"),
    "negative reg": (_with("reg", lambda v: -0.1), r"reg must be finite and >= 0, got -0.1"),
    "nan reg_bias": (_with("reg_bias", lambda v: float("nan")), r"reg_bias must be finite"),
    "inf base": (_with("base", lambda v: float("inf")), r"base must be finite.*inf"),
    "negative count_weight": (_with("count_weight", lambda v: -1.0), r"count_weight must be"),
    "nan bias_shrinkage": (_with("bias_shrinkage", lambda v: float("nan")),
                           r"bias_shrinkage must be finite and >= 0, got nan"),
    "nan mu": (_with("mu", lambda v: float("nan")), r"mu must be finite, got nan"),
    "no threads": (_with("n_threads", lambda v: 0), r"n_threads must be >= 1, got 0"),
    "nan rating": (_with("ratings", lambda a: np.where(np.arange(len(a)) == 5, np.nan, a)),
                   r"ratings must be finite, got nan at flat index 5"),
    "inf factor": (_with("other_factors", lambda a: np.where(a == a.flat[7], np.inf, a)),
                   r"other_factors must be finite, got inf at flat index 7"),
    "nan other bias": (_with("other_bias", lambda a: np.r_[np.nan, a[1:]]),
                       r"other_bias must be finite, got nan at flat index 0"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_value_error_naming_it(case):
    make, message = BAD[case]
    with pytest.raises(ValueError, match=message):
        _call(**make())


@pytest.mark.parametrize("name, change", [
    ("cols", lambda a: a.astype(np.int64)),
    ("indptr", lambda a: a.astype(np.int32)),
    ("ratings", lambda a: a.astype(np.float32)),      # dtypes must agree
    ("factors", lambda a: np.asfortranarray(a)),      # C-contiguous only
    ("other_factors", lambda a: a[:, ::2]),
])
def test_wrong_dtype_or_layout_is_refused(name, change):
    args = _args()
    args[name] = change(args[name])
    with pytest.raises((TypeError, ValueError)):
        _call(**args)


def test_simd_path_names():
    assert simd.SIMD_PATHS == ("baseline", "avx2", "avx512")
    assert mfcore.simd.current() in simd.simd_supported()
    assert simd.simd_supported()[0] == "baseline"
    with pytest.raises(ValueError, match="SIMD path must be one of"):
        mfcore.simd.select("sse9")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ratings_given_as_codes_solve_the_same(dtype):
    """``codes=`` (uint8 indices into the distinct ratings) is the ratings, a byte each."""
    args = _args(dtype)
    args["ratings"] = (np.round(args["ratings"] * 2) / 2).astype(dtype)
    expected = _args(dtype)
    expected["ratings"] = args["ratings"]
    _call(**expected)
    table, codes = np.unique(args["ratings"], return_inverse=True)
    als.solve_rows(args["indptr"], args["cols"], table, args["other_factors"],
                   args["other_bias"], args["mu"], args["reg"], args["reg_bias"], args["base"],
                   args["count_weight"], args["fit_bias"], args["factors"], args["bias"],
                   args["n_threads"], codes=codes.astype(np.uint8))
    assert np.array_equal(args["factors"], expected["factors"])
    assert np.array_equal(args["bias"], expected["bias"])
    with pytest.raises(ValueError, match="codes must be below the"):
        als.solve_rows(args["indptr"], args["cols"], table[:1], args["other_factors"],
                       args["other_bias"], args["mu"], args["reg"], args["reg_bias"],
                       args["base"], args["count_weight"], args["fit_bias"], args["factors"],
                       args["bias"], args["n_threads"], codes=codes.astype(np.uint8))
