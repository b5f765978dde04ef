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


def sample_variance(const int32_t[::1] users, const int32_t[::1] items,
                    const floating[:, ::1] user_factors, const floating[:, ::1] item_factors,
                    const floating[:, ::1] user_bias, const floating[:, ::1] item_bias,
                    double[::1] out, int n_threads):
    """Write, for each (user, item) pair, the variance over S kept samples of their
    predictions ``x_s = bu_s + bi_s + p_s . q_s`` into ``out`` (BayesianMF's predictive
    std without the noise).

    The biases are (rows, S), a row's samples side by side; the factors (rows, S k), each
    sample's k values side by side scaled by 1/sqrt(S) (so ``p_s . q_s`` is S times the
    product of the stored parts). Every index must be a valid row. Each pair is summed in
    float64 in a fixed order, its variance taken about its first sample (no cancellation
    of a large mean), and pairs are independent: the result does not depend on
    ``n_threads``.
    """
    cdef Py_ssize_t n = users.shape[0], S = user_bias.shape[1]
    if items.shape[0] != n or out.shape[0] != n:
        raise ValueError(f"{n} users, {items.shape[0]} items and {out.shape[0]} outputs")
    if S == 0 or item_bias.shape[1] != S or user_factors.shape[1] % S \
            or item_factors.shape[1] != user_factors.shape[1]:
        raise ValueError(f"bias samples ({S}, {item_bias.shape[1]}) and factor columns "
                         f"({user_factors.shape[1]}, {item_factors.shape[1]}) do not match")
    if n and (min(np.min(users), np.min(items)) < 0 or np.max(users) >= user_factors.shape[0]
              or np.max(items) >= item_factors.shape[0] or user_bias.shape[0] !=
              user_factors.shape[0] or item_bias.shape[0] != item_factors.shape[0]):
        raise ValueError("a row index lies outside the model's rows")
    cdef Py_ssize_t k = user_factors.shape[1] // S
    cdef Py_ssize_t j, s, f
    cdef const floating* p
    cdef const floating* q
    cdef double dot, x, first, d, total, squares
    for j in prange(n, nogil=True, num_threads=n_threads, schedule="static"):
        p = &user_factors[users[j], 0]
        q = &item_factors[items[j], 0]
        first = 0.0
        total = 0.0
        squares = 0.0
        for s in range(S):
            dot = 0.0
            for f in range(s * k, (s + 1) * k):
                dot = dot + <double>p[f] * <double>q[f]
            x = <double>user_bias[users[j], s] + <double>item_bias[items[j], s] + S * dot
            if s == 0:
                first = x
            d = x - first
            total = total + d
            squares = squares + d * d
        total = total / S
        out[j] = max(squares / S - total * total, 0.0)
