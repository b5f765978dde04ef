# The ALS row solve's C interface (als_solve.h), declared once for every kernel that cimports it.
from libc.stdint cimport int64_t

cdef extern from "als_solve.h" nogil:
    int MF_ALS_CHUNK
    double MF_ALS_PIVOT_TOL
    double MF_ALS_JITTER
    double MF_ALS_JITTER_FLOOR
    int64_t mf_als_ld(int64_t k)
    int64_t mf_als_scratch_doubles(int64_t k)
    void mf_als_accumulate(double* G, const double* X, int64_t groups, int64_t d, int64_t ld,
                           int first)
    ctypedef struct mf_als_parts:
        double* G
        double* U
        double* X
        double* x
        double* shift
    mf_als_parts mf_als_scratch_parts(double* work, int64_t k, int64_t ld)
    void mf_als_add_chunk(double* G, double* X, int64_t m, int64_t d, int64_t ld, int first)
    int mf_als_solve(const double* G, double* U, double* x, double* shift, int64_t k,
                     int fit_bias, int64_t ld, double lam_p, double lam_b)
