# cython: language_level=3
"""Prediction and the sum of squared errors of a fitted model, for every estimator.

``predict`` writes the clipped prediction of each (user, item) pair; ``squared_error``
sums the squared errors of those predictions against ratings (training loss, validation
RMSE, ``evaluate``). Both run over the pairs in fixed chunks in parallel, so the results do
not depend on the thread count. An index of -1 (a user or item unknown to the model)
contributes no bias and no factors, so prediction falls back to the parts that are known.
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t

import numpy as np

from .simd cimport mf_bind_path, path_cell

ctypedef fused floating:
    float
    double


cdef extern from "predict_simd.h" nogil:
    double mf_predict_range_f32(const int32_t* us, const int32_t* its, const float* r,
                                int64_t n, const float* P, const float* Q, const float* bu,
                                const float* bi, int64_t k, float mu, float lo, float hi,
                                float* out)
    double mf_predict_range_f64(const int32_t* us, const int32_t* its, const double* r,
                                int64_t n, const double* P, const double* Q,
                                const double* bu, const double* bi, int64_t k, double mu,
                                double lo, double hi, double* out)


mf_bind_path(path_cell())  # run the SIMD path mfcore._kernels.simd selects


#: Pairs a task of the parallel prediction loops; partial sums are kept per chunk so the
#: total does not depend on the thread count or the scheduling.
cdef enum:
    PREDICT_CHUNK = 4096


cdef double _predict_chunks(const int32_t[::1] users, const int32_t[::1] items,
                            const floating* ratings, const floating[:, ::1] user_factors,
                            const floating[:, ::1] item_factors,
                            const floating[::1] user_bias, const floating[::1] item_bias,
                            double global_mean, double lo, double hi, floating* out,
                            int n_threads) except -1.0:
    """Predict (``out``) or sum squared errors (``ratings``) over all pairs, in chunks."""
    cdef Py_ssize_t n = users.shape[0]
    if items.shape[0] != n:
        raise ValueError(f"users and items differ in length: {n} and {items.shape[0]}")
    if n == 0:
        return 0.0
    cdef int64_t k = user_factors.shape[1]
    if item_factors.shape[1] != k:
        raise ValueError(f"user and item factors differ in k: {k} and {item_factors.shape[1]}")
    cdef Py_ssize_t n_chunks = (n + PREDICT_CHUNK - 1) // PREDICT_CHUNK
    cdef double[::1] partial = np.zeros(n_chunks, dtype=np.float64)
    cdef const floating* P = &user_factors[0, 0] if user_factors.shape[0] else NULL
    cdef const floating* Q = &item_factors[0, 0] if item_factors.shape[0] else NULL
    cdef const floating* bu = &user_bias[0] if user_bias.shape[0] else NULL
    cdef const floating* bi = &item_bias[0] if item_bias.shape[0] else NULL
    cdef Py_ssize_t c, start, count
    cdef double total = 0.0
    for c in prange(n_chunks, nogil=True, num_threads=n_threads, schedule="dynamic"):
        start = c * PREDICT_CHUNK
        count = min(PREDICT_CHUNK, n - start)
        if floating is float:
            partial[c] = mf_predict_range_f32(
                &users[start], &items[start], ratings + start if ratings != NULL else NULL,
                count, P, Q, bu, bi, k, <float>global_mean, <float>lo, <float>hi,
                out + start if out != NULL else NULL)
        else:
            partial[c] = mf_predict_range_f64(
                &users[start], &items[start], ratings + start if ratings != NULL else NULL,
                count, P, Q, bu, bi, k, global_mean, lo, hi,
                out + start if out != NULL else NULL)
    for c in range(n_chunks):
        total += partial[c]
    return total


def predict(const int32_t[::1] users, const int32_t[::1] items,
            const floating[:, ::1] user_factors, const floating[:, ::1] item_factors,
            const floating[::1] user_bias, const floating[::1] item_bias,
            double global_mean, double lo, double hi,
            floating[::1] out, int n_threads):
    """Write the prediction for each (user, item) pair into ``out``, clipped to [lo, hi].

    An index of -1 (unknown) contributes no bias and no factors; other indices
    must be valid rows (``Model`` maps ids before calling).
    """
    if out.shape[0] != users.shape[0]:
        raise ValueError(f"out has {out.shape[0]} entries for {users.shape[0]} pairs")
    if users.shape[0]:
        _predict_chunks(users, items, NULL, user_factors, item_factors, user_bias, item_bias,
                        global_mean, lo, hi, &out[0], n_threads)


def squared_error(const int32_t[::1] users, const int32_t[::1] items,
                  const floating[::1] ratings,
                  const floating[:, ::1] user_factors, const floating[:, ::1] item_factors,
                  const floating[::1] user_bias, const floating[::1] item_bias,
                  double global_mean, double lo, double hi, int n_threads):
    """Sum of squared errors (in float64) of the clipped predictions for the given ratings.

    Summed in fixed chunks, so the result does not depend on ``n_threads``.
    """
    if ratings.shape[0] != users.shape[0]:
        raise ValueError(f"{ratings.shape[0]} ratings for {users.shape[0]} pairs")
    if users.shape[0] == 0:
        return 0.0
    return _predict_chunks(users, items, &ratings[0], user_factors, item_factors, user_bias,
                           item_bias, global_mean, lo, hi, NULL, n_threads)
