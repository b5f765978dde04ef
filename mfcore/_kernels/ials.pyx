# cython: language_level=3
"""Numerical kernel of weighted ALS over all user-item pairs (``mfcore.ImplicitALS``).

For each row u (a user when solving users, an item when solving items) with observed
pairs j (confidence c_uj >= 0, target t_uj), ``solve_rows`` finds the bias b_u and
factors p_u minimising

    sum_{j observed} c_uj (t_uj - s_uj)^2  +  w0 sum_{every j} s_uj^2
        + lam_p(u) |p_u|^2 + lam_b(u) b_u^2,
    s_uj = b_u + b_j + p_u . q_j,   lam_p(u) = reg scale[u],
    lam_b(u) = reg_bias scale[u] + bias_shift

(the other side's q_j, b_j fixed). The second sum runs over every row of the other side
and costs nothing per pair: it is w0 x^T G x - 2 w0 x^T g + const with G = sum_j a_j a_j^T
and g = -sum_j b_j a_j (a_j = [q_j, 1]) formed once per call (Hu, Koren and Volinsky 2008),
in a fixed order on one thread with the ALS kernel's accumulation (``als_solve.h``). With
w0 = 0 the objective is explicit ALS's (``mfcore.ALS(solver="cg")``) and G is never formed.

``cg_steps`` > 0 runs that many conjugate-gradient steps per row from the row's current
value (``ials_solve.h``: each step costs (k+1)^2 (none with w0 = 0) + 2 n (k+1) multiply-adds
for a row with n observed pairs), in the factors' dtype; ``cg_steps`` = 0 solves each row
exactly, in float64: the system is formed (n (k+1)^2 / 2) and solved by the ALS kernel's
Cholesky factorisation with its jitter retry. Rows are independent, each solved by one thread in a fixed order, so the result
does not depend on the thread count (bit for bit); the SIMD paths differ in the last bits.
"""
from cython.parallel cimport prange, threadid
from libc.stdint cimport int8_t, int32_t, int64_t, uintptr_t
from libc.string cimport memcpy, memset
from libc.math cimport isfinite, sqrt

import numpy as np

from .simd cimport mf_bind_path, path_cell

ctypedef fused floating:
    float
    double


from .als_solve cimport (MF_ALS_CHUNK, mf_als_accumulate, mf_als_add_chunk, mf_als_ld,
                         mf_als_parts, mf_als_scratch_parts, mf_als_solve)

cdef extern from "ials_solve.h" nogil:
    int64_t mf_ials_stride(int64_t k)
    int mf_ials_cg_f(const float* G, const float* g, float w0, const float* lam,
                     const float* A, const int32_t* cols, const float* conf,
                     const float* target, const float* obias, int64_t lo, int64_t hi,
                     int steps, const float* centre, float* x, float* r, float* p, float* Ap,
                     int64_t S)
    int mf_ials_cg_d(const double* G, const double* g, double w0, const double* lam,
                     const double* A, const int32_t* cols, const double* conf,
                     const double* target, const double* obias, int64_t lo, int64_t hi,
                     int steps, const double* centre, double* x, double* r, double* p, double* Ap,
                     int64_t S)
    double mf_ials_row_loss_f(const float* A, const int32_t* cols, const float* conf,
                              const float* target, const float* obias, int64_t lo, int64_t hi,
                              const float* x, int64_t S)
    double mf_ials_row_loss_d(const double* A, const int32_t* cols, const double* conf,
                              const double* target, const double* obias, int64_t lo, int64_t hi,
                              const double* x, int64_t S)


cdef inline int _cg(const floating* G, const floating* g, floating w0, const floating* lam,
                    const floating* A, const int32_t* cols, const floating* conf,
                    const floating* target, const floating* obias, int64_t lo, int64_t hi,
                    int steps, const floating* centre, floating* x, int64_t S) noexcept nogil:
    if floating is float:
        return mf_ials_cg_f(G, g, w0, lam, A, cols, conf, target, obias, lo, hi, steps,
                            centre, x, x + S, x + 2 * S, x + 3 * S, S)
    else:
        return mf_ials_cg_d(G, g, w0, lam, A, cols, conf, target, obias, lo, hi, steps,
                            centre, x, x + S, x + 2 * S, x + 3 * S, S)


cdef inline double _row_loss(const floating* A, const int32_t* cols, const floating* conf,
                             const floating* target, const floating* obias, int64_t lo,
                             int64_t hi, const floating* x, int64_t S) noexcept nogil:
    if floating is float:
        return mf_ials_row_loss_f(A, cols, conf, target, obias, lo, hi, x, S)
    else:
        return mf_ials_row_loss_d(A, cols, conf, target, obias, lo, hi, x, S)


mf_bind_path(path_cell())  # run the SIMD path mfcore._kernels.simd selects


def _augmented(other_factors, other_bias, bint fit_bias):
    """(A, obias): the other side's rows [q_j, 1 or 0, 0 ...] (S values each) and biases, in
    their dtype."""
    n, k = other_factors.shape
    A = np.zeros((n, mf_ials_stride(k)), dtype=other_factors.dtype)
    A[:, :k] = other_factors
    if fit_bias:
        A[:, k] = 1
    return A, np.ascontiguousarray(other_bias)


def all_pairs_gram(const floating[:, ::1] A, const floating[::1] obias, int64_t k):
    """(G, g, tri): the sums over the rows a of A of a a^T (S x S, full, float64) and of
    -b a (S), summed in a fixed order with the ALS kernel's accumulation; ``tri`` is the same
    G with g as column k + 1 in the ALS kernel's layout (k + 1 rows of ``mf_als_ld(k)``)."""
    cdef int64_t n = A.shape[0], S = A.shape[1], ld = mf_als_ld(k)
    cdef int64_t pos, m, t, f, groups
    tri = np.zeros((k + 1, ld), dtype=np.float64)
    X = np.zeros((MF_ALS_CHUNK, ld), dtype=np.float64)
    cdef double[:, ::1] Xv = X
    cdef double[:, ::1] Tv = tri
    pos = 0
    with nogil:
        while pos < n:
            m = min(<int64_t>MF_ALS_CHUNK, n - pos)
            for t in range(m):
                for f in range(k + 1):
                    Xv[t, f] = A[pos + t, f]
                Xv[t, k + 1] = -obias[pos + t]
            for t in range(m, MF_ALS_CHUNK):
                memset(&Xv[t, 0], 0, <size_t>ld * sizeof(double))
            groups = (m + 7) // 8
            mf_als_accumulate(&Tv[0, 0], &Xv[0, 0], groups, k + 1, ld, 0)
            pos += m
    upper = np.triu(tri[:, :k + 1])
    G = np.zeros((S, S), dtype=np.float64)
    G[:k + 1, :k + 1] = upper + np.triu(upper, 1).T
    g = np.zeros(S, dtype=np.float64)
    g[:k + 1] = tri[:, k + 1]
    return G, g, tri


cdef int _exact_row(const double* tri, const floating* A, int64_t S, const int32_t* cols,
                    const floating* conf, const floating* target, const floating* obias,
                    int64_t lo, int64_t hi, int64_t k, bint fit_bias, double lam_p,
                    double lam_b, double* work, int64_t ld, const floating* centre,
                    floating* x) noexcept nogil:
    """The row's exact solve into x (S values): its system formed in float64 over the scaled
    all-pairs Gram ``tri`` (ALS layout), the penalty centred on ``centre`` (S values, or
    NULL), then ``mf_als_solve``; returns its status (0, 1 solved with jitter, -1 failed)."""
    cdef int64_t d = k + 1 if fit_bias else k
    cdef mf_als_parts s = mf_als_scratch_parts(work, k, ld)
    cdef int64_t pos, t, m, f, j
    cdef double w
    cdef double* row
    cdef int status
    memcpy(s.G, tri, <size_t>((k + 1) * ld) * sizeof(double))
    pos = lo
    while pos < hi:
        m = min(<int64_t>MF_ALS_CHUNK, hi - pos)
        for t in range(m):
            j = cols[pos + t]
            row = s.X + t * ld
            w = sqrt(<double>conf[pos + t])
            for f in range(k + 1):
                row[f] = w * <double>A[j * S + f]
            row[k + 1] = w * (<double>target[pos + t] - <double>obias[j])
            for f in range(k + 2, ld):
                row[f] = 0.0
        mf_als_add_chunk(s.G, s.X, m, d, ld, 0)
        pos += m
    if centre != NULL:
        for f in range(d):
            s.G[f * ld + k + 1] += (lam_p if f < k else lam_b) * <double>centre[f]
    status = mf_als_solve(s.G, s.U, s.x, s.shift, k, fit_bias, ld, lam_p, lam_b)
    for f in range(S):
        x[f] = <floating>s.x[f] if status >= 0 and f < d else 0
    return status


def _check_arguments(indptr, cols, conf, target, other_factors, other_bias, factors, bias,
                     scale, row_loss, n_threads, cg_steps, w0, reg, reg_bias, bias_shift):
    n_rows, n, n_other = len(indptr) - 1, len(cols), other_factors.shape[0]
    if n_rows < 0 or indptr[0] != 0 or indptr[n_rows] != n or (np.diff(indptr) < 0).any():
        raise ValueError(f"indptr must start at 0, never decrease and end at len(cols) = {n}")
    for name, a, size in (("factors", factors, n_rows), ("bias", bias, n_rows),
                          ("scale", scale, n_rows), ("conf", conf, n), ("target", target, n),
                          ("other_bias", other_bias, n_other)):
        if a.shape[0] != size:
            raise ValueError(f"{name} has {a.shape[0]} entries, expected {size}")
    if len(row_loss) not in (0, n_rows):
        raise ValueError(f"row_loss has {len(row_loss)} entries, expected {n_rows} or 0")
    if other_factors.shape[1] != factors.shape[1]:
        raise ValueError(f"other_factors has k={other_factors.shape[1]}, factors has "
                         f"k={factors.shape[1]}")
    if n and (np.min(cols) < 0 or np.max(cols) >= n_other):
        raise ValueError(f"cols must lie in [0, {n_other}) (rows of other_factors)")
    for name, value in (("w0", w0), ("reg", reg), ("reg_bias", reg_bias),
                        ("bias_shift", bias_shift)):
        if not (0 <= value < float("inf")):
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    for name, values in (("conf", conf), ("scale", scale)):
        if len(values) and not (np.min(values) >= 0 and np.isfinite(values).all()):
            raise ValueError(f"{name} must be finite and >= 0")
    for name, values in (("target", target), ("other_factors", other_factors),
                         ("other_bias", other_bias)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} must be finite")
    if n_threads < 1 or cg_steps < 0:
        raise ValueError(f"n_threads must be >= 1 and cg_steps >= 0, got {n_threads}, {cg_steps}")


def _check_centre(prior_factors, prior_bias, n_rows, k):
    if (prior_factors is None) != (prior_bias is None):
        raise ValueError("prior_factors and prior_bias come together")
    if prior_factors is None:
        return
    if prior_factors.shape != (n_rows, k) or prior_bias.shape != (n_rows,):
        raise ValueError(f"prior_factors and prior_bias must have shapes ({n_rows}, {k}) and "
                         f"({n_rows},), got {prior_factors.shape} and {prior_bias.shape}")
    if not (np.isfinite(prior_factors).all() and np.isfinite(prior_bias).all()):
        raise ValueError("prior_factors and prior_bias must be finite")


def solve_rows(const int64_t[::1] indptr, const int32_t[::1] cols, const floating[::1] conf,
               const floating[::1] target, const floating[:, ::1] other_factors,
               const floating[::1] other_bias, double w0, double reg, double reg_bias,
               const double[::1] scale, bint fit_bias, int cg_steps,
               floating[:, ::1] factors, floating[::1] bias, double[::1] row_loss,
               int n_threads, double bias_shift=0.0, const double[:, ::1] prior_factors=None,
               const double[::1] prior_bias=None):
    """Solve every row of a CSR matrix of observed pairs for its bias and factors, in place.

    Row u holds the pairs ``indptr[u]:indptr[u + 1]`` with the other side's rows ``cols``,
    confidences ``conf`` (>= 0) and targets ``target`` (see the module docstring for the
    objective). ``factors[u]``, ``bias[u]`` are the starting point of the conjugate
    gradient (``cg_steps`` > 0, computed in the factors' dtype) and are overwritten with
    the answer; with ``cg_steps`` = 0 each row is solved exactly (in float64). Without
    ``fit_bias`` the biases are 0 and stay 0. A row without pairs is solved too (its only
    data are the all-pairs term); with ``w0`` = 0 it gets zeros. ``row_loss[u]`` receives
    the row's weighted squared error on its observed pairs at the answer (pass an empty
    array to skip it). Float arrays other than ``scale`` and ``row_loss`` share one dtype
    (float32 or float64). ``bias_shift`` is added to every row's bias penalty (explicit
    ALS's ``bias_shrinkage``). With ``w0`` = 0 there is no all-pairs term and its Gram
    matrix is not formed: this is explicit ALS's row solve (``mfcore.ALS(solver="cg")``:
    ``conf`` all 1, ``target`` the ratings less the mean). ``prior_factors`` (n_rows, k)
    and ``prior_bias`` (n_rows,), float64, both or neither, centre each row's penalties
    (lam_p |p_u - m_u|^2 + lam_b (b_u - a_u)^2: ALS's side features; a row without
    pairs, with ``w0`` = 0, gets its centre).

    Returns the number of rows whose exact solve needed a diagonal jitter. Raises
    ``FloatingPointError`` naming the first row that stayed unsolvable or whose answer is
    not finite (that row is left at zero), ``ValueError`` for inconsistent arguments.
    """
    cdef int64_t n_rows = indptr.shape[0] - 1
    cdef int64_t k = factors.shape[1]
    _check_arguments(np.asarray(indptr), np.asarray(cols), np.asarray(conf), np.asarray(target),
                     np.asarray(other_factors), np.asarray(other_bias), np.asarray(factors),
                     np.asarray(bias), np.asarray(scale), np.asarray(row_loss), n_threads,
                     cg_steps, w0, reg, reg_bias, bias_shift)
    _check_centre(None if prior_factors is None else np.asarray(prior_factors),
                  None if prior_bias is None else np.asarray(prior_bias), n_rows, k)
    cdef bint with_prior = prior_factors is not None
    if n_rows == 0:
        return 0
    dtype = np.asarray(factors).dtype
    A_arr, obias_arr = _augmented(np.asarray(other_factors), np.asarray(other_bias), fit_bias)
    cdef int64_t S = A_arr.shape[1], ld = mf_als_ld(k)
    if w0 > 0:
        G_arr, g_arr, tri_arr = all_pairs_gram(A_arr, obias_arr, k)
        tri_arr *= w0
    else:  # no all-pairs term: the CG skips G (NULL), the exact solve starts from zeros
        G_arr, g_arr, tri_arr = np.zeros((1, S)), np.zeros(S), np.zeros((k + 1, ld))
    G_arr, g_arr = G_arr.astype(dtype), g_arr.astype(dtype)
    cdef const floating[:, ::1] A = A_arr
    cdef const floating[::1] obias = obias_arr
    cdef const floating[:, ::1] G = G_arr
    cdef const floating[::1] g = g_arr
    cdef double[:, ::1] tri = tri_arr
    cdef floating w0f = <floating>w0
    cdef const floating* G_ptr = &G[0, 0] if w0 > 0 else NULL
    cdef bint want_loss = row_loss.shape[0] > 0

    # per-thread scratch: lam, x, r, p, Ap, centre (S values each, as floating), then the
    # exact solve's G, U, X, x, shift (doubles); every part a multiple of 64 bytes
    cdef int nt = <int>min(<int64_t>n_threads, n_rows)
    cdef int64_t cg_doubles = (6 * S * sizeof(floating) + 63) // 64 * 8
    cdef int64_t per_thread = cg_doubles + (2 * (k + 1) + MF_ALS_CHUNK + 2) * ld
    scratch = np.zeros(nt * per_thread + 8, dtype=np.float64)
    cdef double[::1] scratch_view = scratch
    cdef double* work0 = &scratch_view[0]
    work0 += (-(<uintptr_t>work0 // sizeof(double))) % 8
    status = np.zeros(n_rows, dtype=np.int8)
    cdef int8_t[::1] status_view = status

    cdef int64_t n = cols.shape[0]
    cdef const int32_t* cols_ptr = &cols[0] if n else NULL
    cdef const floating* conf_ptr = &conf[0] if n else NULL
    cdef const floating* target_ptr = &target[0] if n else NULL
    cdef const floating* A_ptr = &A[0, 0] if A.shape[0] else NULL
    cdef const floating* ob_ptr = &obias[0] if A.shape[0] else NULL
    cdef int64_t u, lo, hi, f
    cdef double* work
    cdef floating* lam
    cdef floating* x
    cdef floating* centre
    cdef int st
    for u in prange(n_rows, nogil=True, num_threads=nt, schedule="dynamic"):
        lo = indptr[u]
        hi = indptr[u + 1]
        work = work0 + threadid() * per_thread
        lam = <floating*>work
        x = lam + S
        centre = NULL
        memset(lam, 0, <size_t>(2 * S) * sizeof(floating))
        for f in range(k):
            lam[f] = <floating>(reg * scale[u])
        if fit_bias:
            lam[k] = <floating>(reg_bias * scale[u] + bias_shift)
        if with_prior:
            centre = lam + 5 * S
            memset(centre, 0, <size_t>S * sizeof(floating))
            for f in range(k):
                centre[f] = <floating>prior_factors[u, f]
            if fit_bias:
                centre[k] = <floating>prior_bias[u]
        st = 0
        if hi > lo or w0 > 0:
            if cg_steps > 0:
                for f in range(k):
                    x[f] = factors[u, f]
                if fit_bias:
                    x[k] = bias[u]
                st = _cg(G_ptr, &g[0], w0f, lam, A_ptr, cols_ptr, conf_ptr, target_ptr,
                         ob_ptr, lo, hi, cg_steps, centre, x, S)
            else:
                st = _exact_row(&tri[0, 0], A_ptr, S, cols_ptr, conf_ptr, target_ptr, ob_ptr,
                                lo, hi, k, fit_bias, reg * scale[u],
                                reg_bias * scale[u] + bias_shift,
                                work + cg_doubles, ld, centre, x)
        elif with_prior:
            for f in range(S):
                x[f] = centre[f]
        for f in range(k):
            factors[u, f] = x[f]
            if not isfinite(factors[u, f]):
                st = -1
        bias[u] = x[k] if fit_bias else 0
        if not isfinite(bias[u]):
            st = -1
        if st < 0:
            for f in range(k):
                factors[u, f] = 0
            bias[u] = 0
        elif want_loss:
            row_loss[u] = _row_loss(A_ptr, cols_ptr, conf_ptr, target_ptr, ob_ptr, lo, hi, x, S)
        if want_loss and st < 0:
            row_loss[u] = 0
        status_view[u] = st

    failed = np.flatnonzero(status < 0)
    if len(failed):
        u = failed[0]
        raise FloatingPointError(
            f"row {u} ({indptr[u + 1] - indptr[u]} pairs): its least-squares system stayed "
            f"singular or gave a non-finite answer ({len(failed)} such rows)")
    return int(np.count_nonzero(status == 1))
