# cython: language_level=3
"""The row solver: the regularised least-squares solve of many rows, with biases.

ALS solves every row of one side with it, fold-in the rows of new users or items, and
``mfcore.dask`` the rows of a band.

For each row u (a user when solving users, an item when solving items) with ratings
r_uj over columns j of the other side, ``solve_rows`` finds the bias b_u and factors p_u
minimising

    sum_j (y_uj - b_u - p_u . q_j)^2 + lam_p(u) |p_u|^2 + lam_b(u) b_u^2,
    y_uj = r_uj - mu - c_j                      (c_j: the other side's bias),
    lam_p(u) = reg      * (base + count_weight * n_u),
    lam_b(u) = reg_bias * (base + count_weight * n_u) + bias_shrinkage,
    n_u: ratings of row u.

With a prior (``prior_factors``, ``prior_bias``: m_u, a_u) the penalties pull towards it,
lam_p(u) |p_u - m_u|^2 + lam_b(u) (b_u - a_u)^2: ALS with side features solves a row's
effective parameters around its feature terms this way (the right-hand side gains
lam_p(u) m_u and lam_b(u) a_u; nothing else changes).

base=1, count_weight=0 is plain ALS; base=0, count_weight=1 is ALS-WR (weighted-lambda);
base=shrinkage, count_weight=1 is SGD's fold-in rule. ``bias_shrinkage`` (ratings' worth of
penalty on the bias whatever the count) pulls the bias of a row with few ratings towards 0,
as a prior would: without it a count-weighted bias of one rating is barely shrunk. The
normal equations are
accumulated in float64 and solved by a Cholesky factorisation in float64
(``als_solve.h``); the answer is written in the factors' dtype. Rows are independent
and each is solved by one thread in a fixed order, so the result does not depend on
the thread count (bit for bit); the SIMD paths differ only in the last bits.
"""
from cython.parallel cimport prange, threadid
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uintptr_t
from libc.string cimport memset
from libc.math cimport isfinite

import numpy as np

from .simd cimport mf_bind_path, path_cell

ctypedef fused floating:
    float
    double


from .als_solve cimport (MF_ALS_CHUNK, MF_ALS_JITTER, MF_ALS_JITTER_FLOOR, MF_ALS_PIVOT_TOL,
                         mf_als_add_chunk, mf_als_ld, mf_als_parts, mf_als_scratch_doubles,
                         mf_als_scratch_parts, mf_als_solve)


#: The retry after a failed Cholesky adds JITTER times the mean diagonal plus JITTER_FLOOR
#: to the diagonal; a pivot at or below PIVOT_TOL times its diagonal entry fails.
PIVOT_TOL = MF_ALS_PIVOT_TOL
JITTER = MF_ALS_JITTER
JITTER_FLOOR = MF_ALS_JITTER_FLOOR


mf_bind_path(path_cell())  # run the SIMD path mfcore._kernels.simd selects


# --- the row solve ------------------------------------------------------------------

cdef int _solve_row(int64_t lo, int64_t hi, const int32_t* cols, const floating* ratings,
                    const uint8_t* codes, const floating* Q, const floating* other_bias, int64_t k, double mu,
                    double lam_p, double lam_b, bint fit_bias, double* work, int64_t ld,
                    const double* prior_p, const double* prior_b, floating* p,
                    floating* b) noexcept nogil:
    """Solve one row from its ratings lo..hi-1 (``ratings[codes[t]]`` when ``codes`` is
    not NULL) into p (k values) and b, its penalties
    centred on prior_p (k values) and prior_b (the bias) unless they are NULL; returns
    the status of ``mf_als_solve`` (0 solved, 1 solved with jitter, -1 failed; also -1
    when the answer does not fit the output dtype)."""
    cdef int64_t d = k + 1 if fit_bias else k
    cdef mf_als_parts s = mf_als_scratch_parts(work, k, ld)
    cdef double* x = s.x
    cdef int64_t pos, t, m, f, j
    cdef double* row
    cdef const floating* q
    cdef int status
    pos = lo
    while pos < hi:
        m = min(<int64_t>MF_ALS_CHUNK, hi - pos)
        for t in range(m):
            j = cols[pos + t]
            row = s.X + t * ld
            q = Q + j * k
            for f in range(k):
                row[f] = q[f]
            row[k] = 1.0
            if codes != NULL:
                row[k + 1] = <double>ratings[codes[pos + t]] - mu - <double>other_bias[j]
            else:
                row[k + 1] = <double>ratings[pos + t] - mu - <double>other_bias[j]
        mf_als_add_chunk(s.G, s.X, m, d, ld, pos == lo)
        pos += m
    if prior_p != NULL:  # the prior's pull: the right-hand side (column k + 1) gains it
        for f in range(k):
            s.G[f * ld + k + 1] += lam_p * prior_p[f]
        if fit_bias:
            s.G[k * ld + k + 1] += lam_b * prior_b[0]
    status = mf_als_solve(s.G, s.U, x, s.shift, k, fit_bias, ld, lam_p, lam_b)
    if status >= 0:
        for f in range(k):
            p[f] = <floating>x[f]
            if not isfinite(p[f]):
                status = -1
        b[0] = <floating>x[k] if fit_bias else 0
        if not isfinite(b[0]):
            status = -1
    if status < 0:
        for f in range(k):
            p[f] = 0
        b[0] = 0
    return status


def _check_penalty(name, double value):
    if not (value >= 0 and value < float("inf")):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


cdef _check_finite(name, values):
    bad = np.flatnonzero(~np.isfinite(np.asarray(values).reshape(-1)))
    if len(bad):
        raise ValueError(f"{name} must be finite, got {np.asarray(values).reshape(-1)[bad[0]]} "
                         f"at flat index {bad[0]}")


def solve_rows(const int64_t[::1] indptr, const int32_t[::1] cols,
               const floating[::1] ratings, const floating[:, ::1] other_factors,
               const floating[::1] other_bias, double mu, double reg, double reg_bias,
               double base, double count_weight, bint fit_bias,
               floating[:, ::1] factors, floating[::1] bias, int n_threads,
               double bias_shrinkage=0.0, const double[:, ::1] prior_factors=None,
               const double[::1] prior_bias=None, const uint8_t[::1] codes=None):
    """Solve every row of a CSR rating matrix for its bias and factors, in place.

    Row u holds the ratings ``ratings[indptr[u]:indptr[u + 1]]`` of the other-side rows
    ``cols[...]`` (any order, repeats allowed). Writes p_u into ``factors[u]`` and b_u
    into ``bias[u]`` (see the module docstring for the objective). With ``fit_bias``
    False, b_u is held at 0 (``bias[u]`` is set to 0) and only p_u is solved. A row
    without ratings gets b_u = 0 and p_u = 0 (its prior, with one). All float arrays but
    the prior share one dtype (float32 or float64); sums and the solve are in float64.
    ``prior_factors`` (n_rows, k) and ``prior_bias`` (n_rows,), float64, both or neither:
    each row's penalties are centred on them (see the module docstring). With ``codes``
    (uint8, one per col) ``ratings`` holds the distinct ratings and rating t is
    ``ratings[codes[t]]`` (a byte a rating instead of four or eight).

    A system whose Cholesky factorisation breaks down (a pivot not clearly positive) is
    solved again with a small diagonal jitter (``JITTER`` times its mean diagonal plus
    ``JITTER_FLOOR``). Returns the number of rows that needed it. Raises
    ``FloatingPointError`` naming the first (lowest) row that stayed unsolvable, or
    whose answer is not finite in the output dtype (that row is left at zero; the
    others are solved), and ``ValueError`` naming any inconsistent argument.
    """
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1
    cdef Py_ssize_t n = cols.shape[0]
    cdef Py_ssize_t n_other = other_factors.shape[0]
    cdef int64_t k = factors.shape[1]
    cdef Py_ssize_t u, t
    if indptr.shape[0] < 1:
        raise ValueError("indptr must have n_rows + 1 >= 1 entries, got an empty array")
    if factors.shape[0] != n_rows:
        raise ValueError(f"factors has {factors.shape[0]} rows for {n_rows} rows of indptr")
    if bias.shape[0] != n_rows:
        raise ValueError(f"bias has {bias.shape[0]} entries for {n_rows} rows of indptr")
    if codes is not None:
        if codes.shape[0] != n:
            raise ValueError(f"codes has {codes.shape[0]} entries for {n} cols")
        if n and np.asarray(codes).max() >= ratings.shape[0]:
            raise ValueError(f"codes must be below the {ratings.shape[0]} ratings they index")
    elif ratings.shape[0] != n:
        raise ValueError(f"ratings has {ratings.shape[0]} entries for {n} cols")
    if other_factors.shape[1] != k:
        raise ValueError(f"other_factors has k={other_factors.shape[1]}, factors has k={k}")
    if other_bias.shape[0] != n_other:
        raise ValueError(f"other_bias has {other_bias.shape[0]} entries for {n_other} rows "
                         f"of other_factors")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if not (abs(mu) < float("inf")):
        raise ValueError(f"mu must be finite, got {mu!r}")
    for name, value in (("reg", reg), ("reg_bias", reg_bias), ("base", base),
                        ("count_weight", count_weight), ("bias_shrinkage", bias_shrinkage)):
        _check_penalty(name, value)
    if indptr[0] != 0:
        raise ValueError(f"indptr must start at 0, got {indptr[0]}")
    if indptr[n_rows] != n:
        raise ValueError(f"indptr must end at len(cols) = {n}, got {indptr[n_rows]}")
    for u in range(n_rows):
        if indptr[u + 1] < indptr[u]:
            raise ValueError(f"indptr must be non-decreasing, got {indptr[u]} then "
                             f"{indptr[u + 1]} at rows {u} and {u + 1}")
    for t in range(n):
        if cols[t] < 0 or cols[t] >= n_other:
            raise ValueError(f"cols must lie in [0, {n_other}) (rows of other_factors), "
                             f"got {cols[t]} at position {t}")
    _check_finite("ratings", ratings)
    _check_finite("other_factors", other_factors)
    _check_finite("other_bias", other_bias)
    if (prior_factors is None) != (prior_bias is None):
        raise ValueError("prior_factors and prior_bias come together")
    if prior_factors is not None:
        if prior_factors.shape[0] != n_rows or prior_factors.shape[1] != k:
            raise ValueError(f"prior_factors has shape ({prior_factors.shape[0]}, "
                             f"{prior_factors.shape[1]}), expected ({n_rows}, {k})")
        if prior_bias.shape[0] != n_rows:
            raise ValueError(f"prior_bias has {prior_bias.shape[0]} entries for {n_rows} rows")
        _check_finite("prior_factors", prior_factors)
        _check_finite("prior_bias", prior_bias)
    if n_rows == 0:
        return 0

    # Per-thread scratch (see mf_als_scratch_doubles), each slice 64-byte aligned.
    cdef int nt = <int>min(<Py_ssize_t>n_threads, n_rows)
    cdef int64_t ld = mf_als_ld(k)
    cdef int64_t per_thread = mf_als_scratch_doubles(k)
    scratch = np.zeros(nt * per_thread + 8, dtype=np.float64)
    cdef double[::1] scratch_view = scratch
    cdef double* work = &scratch_view[0]
    work += (-(<uintptr_t>work // sizeof(double))) % 8
    status = np.zeros(n_rows, dtype=np.int8)
    cdef int8_t[::1] status_view = status

    cdef const int32_t* cols_ptr = &cols[0] if n else NULL
    cdef const floating* ratings_ptr = &ratings[0] if ratings.shape[0] else NULL
    cdef const uint8_t* codes_ptr = &codes[0] if codes is not None and n else NULL
    cdef const floating* Q = &other_factors[0, 0] if n_other and k else NULL
    cdef const floating* c = &other_bias[0] if n_other else NULL
    cdef floating* P = &factors[0, 0] if k else NULL
    cdef const double* M = NULL
    cdef const double* A = NULL
    if prior_factors is not None:
        M = &prior_factors[0, 0] if k else NULL
        A = &prior_bias[0]
    cdef bint with_prior = prior_factors is not None
    cdef int64_t lo, hi, f
    cdef double scale
    for u in prange(n_rows, nogil=True, num_threads=nt, schedule="dynamic"):
        lo = indptr[u]
        hi = indptr[u + 1]
        if hi == lo:
            for f in range(k):
                P[u * k + f] = <floating>M[u * k + f] if with_prior else 0
            bias[u] = <floating>A[u] if with_prior and fit_bias else 0
        else:
            scale = base + count_weight * <double>(hi - lo)
            status_view[u] = _solve_row(lo, hi, cols_ptr, ratings_ptr, codes_ptr, Q, c, k, mu,
                                        reg * scale, reg_bias * scale + bias_shrinkage, fit_bias,
                                        work + threadid() * per_thread, ld,
                                        M + u * k if with_prior else NULL,
                                        A + u if with_prior else NULL, P + u * k, &bias[u])

    failed = np.flatnonzero(status < 0)
    if len(failed):
        u = failed[0]
        raise FloatingPointError(
            f"row {u} ({indptr[u + 1] - indptr[u]} ratings): its least-squares system stayed "
            f"singular or gave a non-finite answer after a diagonal jitter "
            f"({len(failed)} such rows)")
    return int(np.count_nonzero(status == 1))
