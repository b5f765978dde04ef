# cython: language_level=3
"""Side features in the Gibbs sampler: the feature parameters of one side, drawn after
``bayes.gibbs_sweep`` (see ``bayes_features.h`` for the model and the full conditionals).

A side (users or items) has F features in G groups (a group: the levels of one column of
the feature table, with its own Normal-Gamma hyperprior per parameter column). Its state:
  theta        (F, k + 1)   per feature its linear weight (column 0) and factor vector
  feature_hyper (G, 2, k + 1) the groups' means (row 0) and precisions (row 1), drawn here
and the rows' effective parameters, total shifts and own factors, which ``gibbs_sweep``
uses (the shift is what the row draws add to their prior mean). The features are given
by feature (CSC): feature g's rows ``rows[ptr[g]:ptr[g + 1]]`` with values ``x[...]``;
group j holds the features ``group_ptr[j]:group_ptr[j + 1]``.

Every sum runs in a fixed order and every random number is keyed on (seed, stream,
sweep, row, coordinate): bit-identical for any thread count.
"""
from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t, uint64_t

import numpy as np


cdef extern from "bayes_features.h" nogil:
    enum:
        MF_STREAM_USER_FEATURE_HYPER
        MF_STREAM_ITEM_FEATURE_HYPER
        MF_STREAM_USER_FEATURE
        MF_STREAM_ITEM_FEATURE
        MF_FEATURE_BLOCK
    void mf_normal_gamma(const double* x, int64_t n, int64_t stride, double mu_0,
                         double gamma_0, double alpha_lambda, double beta_lambda,
                         uint64_t seed, uint64_t stream, uint64_t sweep, uint64_t coord,
                         double* mean_out, double* prec_out)
    void mf_feature_columns(double* theta, int64_t n_features, int64_t k, int64_t c0,
                            int64_t bb, const int64_t* ptr, const int32_t* rows,
                            const double* x, const double* sq, const int32_t* group,
                            const double* hyper_mean, const double* hyper_prec,
                            int64_t n_rows, double* eff_bias, double* eff_factors,
                            double* shift_bias, double* shift_factors, double* own_factors,
                            const double* row_mean, const double* row_prec, double* work,
                            uint64_t seed, uint64_t stream, uint64_t sweep)


#: Feature values x (k + 1) from which a side's draws run in parallel.
cdef enum:
    PARALLEL_FROM = 1 << 20


#: The streams of the feature draws, by name (beside ``bayes.STREAMS``).
STREAMS = {"user_feature_hyper": MF_STREAM_USER_FEATURE_HYPER,
           "item_feature_hyper": MF_STREAM_ITEM_FEATURE_HYPER,
           "user_feature": MF_STREAM_USER_FEATURE, "item_feature": MF_STREAM_ITEM_FEATURE}


def check_features(const int64_t[::1] ptr, const int32_t[::1] rows, const double[::1] x,
                   const int64_t[::1] group_ptr, int64_t n_rows):
    """Raise ValueError unless (ptr, rows, x) is a CSC of features over ``n_rows`` rows
    (offsets from 0 to nnz, non-decreasing; rows in range; finite values) and
    ``group_ptr`` cuts the features into groups (from 0 to F, non-decreasing)."""
    cdef int64_t F = ptr.shape[0] - 1, nnz = rows.shape[0], g, t
    if F < 0 or x.shape[0] != nnz or ptr[0] != 0 or ptr[F] != nnz:
        raise ValueError(f"feature offsets must run from 0 to {nnz} values")
    for g in range(F):
        if ptr[g + 1] < ptr[g]:
            raise ValueError(f"feature offsets decrease at feature {g}")
    for t in range(nnz):
        if rows[t] < 0 or rows[t] >= n_rows:
            raise ValueError(f"feature value {t} names row {rows[t]}, not one of 0..{n_rows - 1}")
        if not (x[t] - x[t] == 0.0):
            raise ValueError(f"feature value {t} is {x[t]}, not finite")
    if group_ptr.shape[0] < 1 or group_ptr[0] != 0 or group_ptr[group_ptr.shape[0] - 1] != F:
        raise ValueError(f"feature groups must run from 0 to {F} features")
    for g in range(group_ptr.shape[0] - 1):
        if group_ptr[g + 1] < group_ptr[g]:
            raise ValueError(f"feature groups decrease at group {g}")


def feature_sweep(str side, const int64_t[::1] ptr, const int32_t[::1] rows,
                  const double[::1] x, const int64_t[::1] group_ptr,
                  double[:, ::1] theta, double[:, :, ::1] feature_hyper,
                  double[::1] eff_bias, double[:, ::1] eff_factors, double[::1] shift_bias,
                  double[:, ::1] shift_factors, double[:, ::1] own_factors,
                  const double[:, ::1] row_hyper, uint64_t seed, uint64_t sweep,
                  int n_threads, double mu_0=0.0, double gamma_0=1.0,
                  double alpha_lambda=1.0, double beta_lambda=1.0):
    """One Gibbs pass over a side's feature parameters (``side`` "user" or "item").

    Blocks of ``MF_FEATURE_BLOCK`` columns are the tasks of one parallel loop; a task
    draws, for each of its columns c:
    1. each group's (mean, precision) from its Normal-Gamma posterior given the group's
       current theta_c (the prior of ``gibbs_sweep``'s groups), into ``feature_hyper``;
    2. theta_c: the column's features in
       order from the regression of the rows' effective parameters on them (given the
       row group's ``row_hyper``, (2, k + 1) as ``gibbs_sweep`` leaves it), updating
       ``shift_bias``/``shift_factors`` (the rows' total shifts) and ``own_factors``
       (effective - shift). The effective parameters and the ratings' residuals are not
       touched: the rows' next draw sees the new shifts as its prior mean.
    Check the features once with ``check_features``; only shapes are checked here.
    """
    cdef int64_t F = theta.shape[0], kk = theta.shape[1], k = kk - 1, n_rows = eff_bias.shape[0]
    cdef int64_t G = group_ptr.shape[0] - 1, j, c, blk
    if side not in ("user", "item"):
        raise ValueError(f"side must be 'user' or 'item', got {side!r}")
    cdef uint64_t hyper_stream = (MF_STREAM_USER_FEATURE_HYPER if side == "user"
                                  else MF_STREAM_ITEM_FEATURE_HYPER)
    cdef uint64_t stream = MF_STREAM_USER_FEATURE if side == "user" else MF_STREAM_ITEM_FEATURE
    if kk < 1 or ptr.shape[0] != F + 1 or x.shape[0] != rows.shape[0]:
        raise ValueError(f"theta ({F}, {kk}) does not match {ptr.shape[0] - 1} features")
    if feature_hyper.shape[0] != G or feature_hyper.shape[1] != 2 or feature_hyper.shape[2] != kk:
        raise ValueError(f"feature_hyper must have shape ({G}, 2, {kk})")
    for name, arr in (("eff_factors", eff_factors), ("shift_factors", shift_factors),
                      ("own_factors", own_factors)):
        if arr.shape[0] != n_rows or arr.shape[1] != k:
            raise ValueError(f"{name} has shape ({arr.shape[0]}, {arr.shape[1]}), expected "
                             f"({n_rows}, {k})")
    if shift_bias.shape[0] != n_rows or row_hyper.shape[0] != 2 or row_hyper.shape[1] != kk:
        raise ValueError("shift_bias or row_hyper do not match the rows")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if F == 0 or n_rows == 0:
        return
    group = np.repeat(np.arange(G, dtype=np.int32), np.diff(np.asarray(group_ptr)))
    sq_arr = np.bincount(np.repeat(np.arange(F), np.diff(np.asarray(ptr))),
                         weights=np.asarray(x) ** 2, minlength=F)
    cdef const int32_t[::1] grp = group
    cdef const double[::1] sq = sq_arr
    cdef double[:, ::1] means = np.empty((max(G, 1), kk), dtype=np.float64)
    cdef double[:, ::1] precs = np.empty((max(G, 1), kk), dtype=np.float64)
    cdef double* T = &theta[0, 0]
    cdef int64_t n_blocks = (kk + MF_FEATURE_BLOCK - 1) // MF_FEATURE_BLOCK, q
    # small sides (MovieLens' tables: thousands of values) run on one thread: a parallel
    # region would cost more than the work (the result is the same for any thread count)
    cdef int threads = n_threads if rows.shape[0] * kk >= PARALLEL_FROM else 1
    cdef double[:, ::1] work = np.empty((threads, n_rows * MF_FEATURE_BLOCK), dtype=np.float64)
    cdef const int32_t* rw = &rows[0] if rows.shape[0] > 0 else NULL
    cdef const double* xv = &x[0] if x.shape[0] > 0 else NULL
    cdef double* Pe = &eff_factors[0, 0] if k > 0 else NULL
    cdef double* Sf = &shift_factors[0, 0] if k > 0 else NULL
    cdef double* Po = &own_factors[0, 0] if k > 0 else NULL
    for blk in prange(n_blocks, nogil=True, num_threads=threads, schedule="dynamic"):
        c = blk * MF_FEATURE_BLOCK
        for j in range(G):  # the block's columns of every group's hyperparameters first
            for q in range(c, min(c + MF_FEATURE_BLOCK, kk)):
                mf_normal_gamma(T + group_ptr[j] * kk + q, group_ptr[j + 1] - group_ptr[j], kk,
                                mu_0, gamma_0, alpha_lambda, beta_lambda, seed, hyper_stream,
                                sweep, <uint64_t>(j * kk + q), &means[j, q], &precs[j, q])
        mf_feature_columns(T, F, k, c, min(MF_FEATURE_BLOCK, kk - c), &ptr[0], rw, xv,
                           &sq[0], &grp[0], &means[0, 0], &precs[0, 0], n_rows,
                           &eff_bias[0], Pe, &shift_bias[0], Sf, Po, &row_hyper[0, 0],
                           &row_hyper[1, 0], &work[threadid(), 0], seed, stream, sweep)
    for j in range(G):
        for c in range(kk):
            feature_hyper[j, 0, c] = means[j, c]
            feature_hyper[j, 1, c] = precs[j, c]
