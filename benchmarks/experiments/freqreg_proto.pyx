# cython: boundscheck=False, wraparound=False, cdivision=True
from libc.math cimport sqrt
def epoch(int[:] u, int[:] it, double[:] r, long[:] order, double mu,
          double[:] bu, double[:] bi, double[:, :] P, double[:, :] Q,
          double[:] ru, double[:] ri, double lr, double regb):
    cdef Py_ssize_t n = order.shape[0], k = P.shape[1], t, f, j
    cdef int a, b
    cdef double e, pred, pf, qf
    for t in range(n):
        j = order[t]; a = u[j]; b = it[j]
        pred = mu + bu[a] + bi[b]
        for f in range(k):
            pred += P[a, f] * Q[b, f]
        e = r[j] - pred
        bu[a] += lr * (e - regb * bu[a])
        bi[b] += lr * (e - regb * bi[b])
        for f in range(k):
            pf = P[a, f]; qf = Q[b, f]
            P[a, f] += lr * (e * qf - ru[a] * pf)
            Q[b, f] += lr * (e * pf - ri[b] * qf)
def rmse(int[:] u, int[:] it, double[:] r, double mu, double[:] bu, double[:] bi,
         double[:, :] P, double[:, :] Q):
    cdef Py_ssize_t n = r.shape[0], k = P.shape[1], t, f
    cdef double s = 0, pred
    for t in range(n):
        pred = mu + bu[u[t]] + bi[it[t]]
        for f in range(k):
            pred += P[u[t], f] * Q[it[t], f]
        if pred < 1: pred = 1
        if pred > 5: pred = 5
        s += (r[t] - pred) ** 2
    return sqrt(s / n)
