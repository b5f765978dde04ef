# cython: language_level=3
"""Numerical kernels: one SGD epoch, squared error, batch prediction.

Every kernel takes C-contiguous typed memoryviews and scalars, runs without
the GIL over an OpenMP ``prange`` and returns what it measured. Validation,
id mapping, randomness and the epoch loop live in Python (``mfcore.model``).

An index of -1 (a user or item unknown to the model) contributes no bias and
no factors, so prediction falls back to the parts that are known.
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t

ctypedef fused floating:
    float
    double


cdef inline floating _dot(const floating* a, const floating* b, Py_ssize_t k) noexcept nogil:
    cdef floating s = 0
    cdef Py_ssize_t f
    for f in range(k):
        s = s + a[f] * b[f]
    return s


cdef inline void _sgd_factors(floating* p, floating* q, floating e, floating lr,
                              floating reg, Py_ssize_t k) noexcept nogil:
    """p += lr (e q - reg p); q += lr (e p_old - reg q)."""
    cdef Py_ssize_t f
    cdef floating pf, qf
    for f in range(k):
        pf = p[f]
        qf = q[f]
        p[f] = pf + lr * (e * qf - reg * pf)
        q[f] = qf + lr * (e * pf - reg * qf)


def sgd_epoch(const int32_t[::1] users, const int32_t[::1] items,
              const floating[::1] ratings, const int64_t[::1] order,
              floating[:, ::1] user_factors, floating[:, ::1] item_factors,
              floating[::1] user_bias, floating[::1] item_bias,
              double global_mean, double lr, double reg, double reg_bias,
              int n_threads):
    """One pass of SGD over ``ratings[order]``, updating parameters in place.

    With more than one thread the updates are lock-free (Hogwild): rows shared
    by two threads may see each other's writes. Returns the sum of squared
    errors measured before each update.
    """
    cdef Py_ssize_t n = order.shape[0]
    cdef Py_ssize_t k = user_factors.shape[1]
    cdef Py_ssize_t t, j
    cdef int32_t u, i
    cdef floating e
    cdef floating mu = <floating>global_mean
    cdef floating flr = <floating>lr
    cdef floating freg = <floating>reg
    cdef floating freg_bias = <floating>reg_bias
    cdef double sse = 0.0
    for t in prange(n, nogil=True, num_threads=n_threads, schedule="static"):
        j = order[t]
        u = users[j]
        i = items[j]
        e = ratings[j] - (mu + user_bias[u] + item_bias[i]
                          + _dot(&user_factors[u, 0], &item_factors[i, 0], k))
        sse += <double>e * <double>e
        user_bias[u] = user_bias[u] + flr * (e - freg_bias * user_bias[u])
        item_bias[i] = item_bias[i] + flr * (e - freg_bias * item_bias[i])
        _sgd_factors(&user_factors[u, 0], &item_factors[i, 0], e, flr, freg, k)
    return sse


cdef inline floating _predict_one(int32_t u, int32_t i,
                                  const floating[:, ::1] user_factors,
                                  const floating[:, ::1] item_factors,
                                  const floating[::1] user_bias,
                                  const floating[::1] item_bias,
                                  floating mu, floating lo, floating hi) noexcept nogil:
    cdef floating r = mu
    cdef Py_ssize_t k = user_factors.shape[1]
    if u >= 0:
        r = r + user_bias[u]
    if i >= 0:
        r = r + item_bias[i]
    if u >= 0 and i >= 0:
        r = r + _dot(&user_factors[u, 0], &item_factors[i, 0], k)
    if r < lo:
        r = lo
    elif r > hi:
        r = hi
    return r


def predict(const int32_t[::1] users, const int32_t[::1] items,
            const floating[:, ::1] user_factors, const floating[:, ::1] item_factors,
            const floating[::1] user_bias, const floating[::1] item_bias,
            double global_mean, double lo, double hi,
            floating[::1] out, int n_threads):
    """Write the prediction for each (user, item) pair into ``out``, clipped to [lo, hi]."""
    cdef Py_ssize_t n = users.shape[0]
    cdef Py_ssize_t t
    cdef floating mu = <floating>global_mean
    cdef floating flo = <floating>lo
    cdef floating fhi = <floating>hi
    for t in prange(n, nogil=True, num_threads=n_threads, schedule="static"):
        out[t] = _predict_one(users[t], items[t], user_factors, item_factors,
                              user_bias, item_bias, mu, flo, fhi)


def squared_error(const int32_t[::1] users, const int32_t[::1] items,
                  const floating[::1] ratings,
                  const floating[:, ::1] user_factors, const floating[:, ::1] item_factors,
                  const floating[::1] user_bias, const floating[::1] item_bias,
                  double global_mean, double lo, double hi, int n_threads):
    """Sum of squared errors (in float64) of the clipped predictions for the given ratings."""
    cdef Py_ssize_t n = users.shape[0]
    cdef Py_ssize_t t
    cdef floating mu = <floating>global_mean
    cdef floating flo = <floating>lo
    cdef floating fhi = <floating>hi
    cdef double e
    cdef double sse = 0.0
    for t in prange(n, nogil=True, num_threads=n_threads, schedule="static"):
        e = <double>ratings[t] - <double>_predict_one(users[t], items[t], user_factors,
                                                      item_factors, user_bias, item_bias,
                                                      mu, flo, fhi)
        sse += e * e
    return sse
