# cython: boundscheck=False, wraparound=False, cdivision=True
"""Serial float64 prototypes of SGD update rules, for the experiments in sgd_rules.py."""
from libc.math cimport sqrt


cdef inline double _predict(double mu, double bu, double bi, double[:, :] P, double[:, :] Q,
                            int a, int b):
    """mu + b_u + b_i + p_u . q_i."""
    cdef Py_ssize_t f
    cdef double pred = mu + bu + bi
    for f in range(P.shape[1]):
        pred += P[a, f] * Q[b, f]
    return pred


def epoch_plain(int[:] u, int[:] it, double[:] r, long[:] order, double mu,
                double[:] bu, double[:] bi, double[:, :] P, double[:, :] Q,
                double[:] ru, double[:] ri, double lr, double regb):
    """mfcore's rule, with a factor penalty per user row (ru) and per item row (ri)."""
    cdef Py_ssize_t n = order.shape[0], k = P.shape[1], t, f, j
    cdef int a, b
    cdef double e, pf, qf
    for t in range(n):
        j = order[t]; a = u[j]; b = it[j]
        e = r[j] - _predict(mu, bu[a], bi[b], P, Q, a, b)
        bu[a] += lr * (e - regb * bu[a])
        bi[b] += lr * (e - regb * bi[b])
        for f in range(k):
            pf = P[a, f]; qf = Q[b, f]
            P[a, f] += lr * (e * qf - ru[a] * pf)
            Q[b, f] += lr * (e * pf - ri[b] * qf)


def epoch_adagrad(int[:] u, int[:] it, double[:] r, long[:] order, double mu,
                  double[:] bu, double[:] bi, double[:, :] P, double[:, :] Q,
                  double[:] gu, double[:] gi, double[:] gbu, double[:] gbi,
                  double lr, double reg, double regb):
    """Per-row AdaGrad (LIBMF's rule): one accumulator of the mean squared gradient a row."""
    cdef Py_ssize_t n = order.shape[0], k = P.shape[1], t, f, j
    cdef int a, b
    cdef double e, gpu, gqi, su, sq, si, sp
    for t in range(n):
        j = order[t]; a = u[j]; b = it[j]
        e = r[j] - _predict(mu, bu[a], bi[b], P, Q, a, b)
        sq = 0; si = 0
        for f in range(k):
            gpu = e * Q[b, f] - reg * P[a, f]
            gqi = e * P[a, f] - reg * Q[b, f]
            sq += gpu * gpu; si += gqi * gqi
        su = lr / sqrt(gu[a]); sp = lr / sqrt(gi[b])
        for f in range(k):
            gpu = e * Q[b, f] - reg * P[a, f]
            gqi = e * P[a, f] - reg * Q[b, f]
            P[a, f] += su * gpu
            Q[b, f] += sp * gqi
        gu[a] += sq / k; gi[b] += si / k
        gpu = e - regb * bu[a]; gqi = e - regb * bi[b]
        bu[a] += lr / sqrt(gbu[a]) * gpu; bi[b] += lr / sqrt(gbi[b]) * gqi
        gbu[a] += gpu * gpu; gbi[b] += gqi * gqi


def rmse(int[:] u, int[:] it, double[:] r, double mu, double[:] bu, double[:] bi,
         double[:, :] P, double[:, :] Q, double lo, double hi):
    cdef Py_ssize_t n = r.shape[0], t
    cdef double s = 0, pred
    for t in range(n):
        pred = _predict(mu, bu[u[t]], bi[it[t]], P, Q, u[t], it[t])
        if pred < lo: pred = lo
        if pred > hi: pred = hi
        s += (r[t] - pred) ** 2
    return sqrt(s / n)
