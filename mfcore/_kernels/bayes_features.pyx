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
from libc.string cimport memset

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


cdef struct Side:
    # one side's features and parameters as the kernel reads them (see FeatureSide)
    int64_t n_features, n_groups, n_rows, k, width, work_size
    const int64_t* ptr
    const int32_t* rows
    const double* x
    const int64_t* group_ptr
    const int32_t* group
    const double* sq
    double* theta
    double* means
    double* precs
    double* eff_bias
    double* eff_factors
    double* shift_bias
    double* shift_factors
    double* own_factors
    const double* row_hyper
    double* work
    uint64_t stream, hyper_stream


cdef class FeatureSide:
    """One side's features and the arrays ``feature_sweep`` updates, checked once.

    ``side`` "user" or "item". The features by feature (CSC): feature g's rows
    ``rows[ptr[g]:ptr[g + 1]]`` with values ``x[...]``, checked as ``check_features``
    checks them; group j holds the features ``group_ptr[j]:group_ptr[j + 1]``. The state:
      theta         (F, k + 1)   per feature its linear weight (column 0) and factor vector
      feature_hyper (G, 2, k + 1) the groups' means (row 0) and precisions (row 1)
    and the rows' effective bias and factors (``eff_bias``, ``eff_factors``), total shifts
    (``shift_bias``, ``shift_factors``), own factors (effective - shift) and the row
    group's (2, k + 1) hyperparameters ``row_hyper``, the arrays ``gibbs_sweep`` uses: the
    object keeps them and ``feature_sweep`` updates them in place, so they must stay the
    same arrays for the fit. ``n_threads``: the most threads a sweep will use; ``width``:
    the columns of a task (default: all of them for a side of fewer than 2^20 feature
    values x columns, which runs on one thread, else ``MF_FEATURE_BLOCK``; the numbers are
    the same for any width). Scratch: n_threads x n_rows x width doubles.
    """
    cdef Side s
    cdef readonly str side
    cdef readonly int max_threads
    cdef object arrays  # what the pointers of ``s`` point into (kept alive here)
    cdef double[:, :, ::1] hyper
    cdef double[:, ::1] means, precs

    def __init__(self, str side, ptr, rows, x, group_ptr, theta, feature_hyper, eff_bias,
                 eff_factors, shift_bias, shift_factors, own_factors, row_hyper,
                 int n_threads, width=None):
        if side not in ("user", "item"):
            raise ValueError(f"side must be 'user' or 'item', got {side!r}")
        if n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        cdef double[:, ::1] th = theta
        cdef double[::1] eb = eff_bias
        cdef int64_t F = th.shape[0], kk = th.shape[1], k = kk - 1, n_rows = eb.shape[0]
        check_features(ptr, rows, x, group_ptr, n_rows)
        cdef const int64_t[::1] p = ptr, gp = group_ptr
        cdef int64_t G = gp.shape[0] - 1
        if kk < 1 or p.shape[0] != F + 1:
            raise ValueError(f"theta ({F}, {kk}) does not match {p.shape[0] - 1} features")
        self.hyper = feature_hyper
        if self.hyper.shape[0] != G or self.hyper.shape[1] != 2 or self.hyper.shape[2] != kk:
            raise ValueError(f"feature_hyper must have shape ({G}, 2, {kk})")
        cdef double[:, ::1] ef = eff_factors, sf = shift_factors, of = own_factors
        for name, arr in (("eff_factors", ef), ("shift_factors", sf), ("own_factors", of)):
            if arr.shape[0] != n_rows or arr.shape[1] != k:
                raise ValueError(f"{name} has shape ({arr.shape[0]}, {arr.shape[1]}), "
                                 f"expected ({n_rows}, {k})")
        cdef double[::1] sb = shift_bias
        cdef const double[:, ::1] rh = row_hyper
        if sb.shape[0] != n_rows or rh.shape[0] != 2 or rh.shape[1] != kk:
            raise ValueError("shift_bias or row_hyper do not match the rows")
        group = np.repeat(np.arange(G, dtype=np.int32), np.diff(np.asarray(gp)))
        sq = np.bincount(np.repeat(np.arange(F), np.diff(np.asarray(p))),
                         weights=np.asarray(x, dtype=np.float64) ** 2, minlength=F)
        self.means = np.zeros((max(G, 1), kk), dtype=np.float64)
        self.precs = np.zeros((max(G, 1), kk), dtype=np.float64)
        cdef const int32_t[::1] rw = rows, grp = group
        cdef const double[::1] xv = x, sqv = sq
        # a small side is one task of all its columns; a large one, tasks of a few columns
        if width is None:
            width = kk if rw.shape[0] * kk < PARALLEL_FROM else MF_FEATURE_BLOCK
        if not 1 <= width <= kk:
            raise ValueError(f"width must be 1 to {kk} columns, got {width}")
        cdef double[:, ::1] work = np.empty((n_threads, (n_rows + 2) * width),
                                            dtype=np.float64)
        cdef Side* s = &self.s
        self.side, self.max_threads = side, n_threads
        self.arrays = (ptr, rows, x, group_ptr, group, sq, theta, eff_bias,
                                        eff_factors, shift_bias, shift_factors, own_factors,
                                        row_hyper, work)
        memset(s, 0, sizeof(Side))
        s.n_features, s.n_groups, s.n_rows, s.k, s.width = F, G, n_rows, k, width
        s.work_size = work.shape[1]
        s.ptr, s.group_ptr = &p[0], &gp[0]
        s.rows = &rw[0] if rw.shape[0] > 0 else NULL
        s.x = &xv[0] if xv.shape[0] > 0 else NULL
        s.group = &grp[0] if F > 0 else NULL
        s.sq = &sqv[0] if F > 0 else NULL
        s.theta = &th[0, 0] if F > 0 else NULL
        s.means, s.precs = &self.means[0, 0], &self.precs[0, 0]
        s.eff_bias = &eb[0] if n_rows > 0 else NULL
        s.shift_bias = &sb[0] if n_rows > 0 else NULL
        if n_rows * k > 0:
            s.eff_factors, s.shift_factors, s.own_factors = &ef[0, 0], &sf[0, 0], &of[0, 0]
        s.row_hyper, s.work = &rh[0, 0], &work[0, 0]
        s.stream = MF_STREAM_USER_FEATURE if side == "user" else MF_STREAM_ITEM_FEATURE
        s.hyper_stream = (MF_STREAM_USER_FEATURE_HYPER if side == "user"
                          else MF_STREAM_ITEM_FEATURE_HYPER)

    @property
    def width(self):
        """The columns of a task."""
        return self.s.width

    cdef int64_t n_tasks(self):
        """The tasks of one sweep: none without features or rows, else its column blocks."""
        if self.s.n_features == 0 or self.s.n_rows == 0:
            return 0
        return (self.s.k + self.s.width) // self.s.width

    cdef void publish(self):
        """The groups' drawn (mean, precision) into ``feature_hyper``."""
        cdef int64_t j, c
        for j in range(self.s.n_groups):
            for c in range(self.s.k + 1):
                self.hyper[j, 0, c] = self.means[j, c]
                self.hyper[j, 1, c] = self.precs[j, c]


cdef void _side_task(const Side* s, int64_t c, int thread, uint64_t seed, uint64_t sweep,
                     double mu_0, double gamma_0, double alpha_lambda,
                     double beta_lambda) noexcept nogil:
    """Columns c .. c + width - 1 of a side: every group's hyperparameters of them, then
    theta's (``mf_feature_columns``), in this thread's work row."""
    cdef int64_t kk = s.k + 1, bb = min(s.width, kk - c), j, q
    for j in range(s.n_groups):
        for q in range(c, c + bb):
            mf_normal_gamma(s.theta + s.group_ptr[j] * kk + q, s.group_ptr[j + 1] - s.group_ptr[j],
                            kk, mu_0, gamma_0, alpha_lambda, beta_lambda, seed,
                            s.hyper_stream, sweep, <uint64_t>(j * kk + q), s.means + j * kk + q,
                            s.precs + j * kk + q)
    mf_feature_columns(s.theta, s.n_features, s.k, c, bb, s.ptr, s.rows, s.x, s.sq, s.group,
                       s.means, s.precs, s.n_rows, s.eff_bias, s.eff_factors, s.shift_bias,
                       s.shift_factors, s.own_factors, s.row_hyper, s.row_hyper + kk,
                       s.work + thread * s.work_size, seed, s.stream, sweep)


def feature_sweep(sides, uint64_t seed, uint64_t sweep, int n_threads, double mu_0=0.0,
                  double gamma_0=1.0, double alpha_lambda=1.0, double beta_lambda=1.0):
    """One Gibbs pass over the feature parameters of ``sides`` (``FeatureSide`` objects,
    at most one per side), after ``bayes.gibbs_sweep``.

    The sides are independent given the rows' effective parameters, so their column blocks
    are the tasks of one parallel loop (a small side is one task); a task draws, for each
    of its columns c:
    1. each group's (mean, precision) from its Normal-Gamma posterior given the group's
       current theta_c (the prior of ``gibbs_sweep``'s groups), into ``feature_hyper``;
    2. theta_c: the column's features in order from the regression of the rows' effective
       parameters on them (given the row group's ``row_hyper`` as ``gibbs_sweep`` leaves
       it), updating the rows' total shifts and own factors. The effective parameters and
       the ratings' residuals are not touched: the rows' next draw sees the new shifts as
       their prior mean.
    """
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    cdef list todo = [s for s in sides if (<FeatureSide?>s).n_tasks() > 0]
    if len({(<FeatureSide>s).side for s in todo}) != len(todo):
        raise ValueError("feature_sweep takes at most one FeatureSide per side")
    cdef Side* parts[2]
    cdef int64_t first[3], n_tasks = 0, values = 0, task, c
    cdef int which, threads, n_parts = len(todo)
    cdef FeatureSide side
    first[0] = 0
    for which in range(n_parts):
        side = todo[which]
        if side.max_threads < n_threads:
            raise ValueError(f"the {side.side} FeatureSide was made for fewer than "
                             f"{n_threads} threads")
        parts[which] = &side.s
        n_tasks += side.n_tasks()
        first[which + 1] = n_tasks
        values += side.s.ptr[side.s.n_features] * (side.s.k + 1)
    # small sides (MovieLens' tables: thousands of values) run on one thread: a parallel
    # region would cost more than the work (the result is the same for any thread count)
    threads = min(n_threads, n_tasks) if values >= PARALLEL_FROM else 1
    for task in prange(n_tasks, nogil=True, num_threads=threads, schedule="dynamic"):
        which = 0 if task < first[1] else 1
        c = (task - first[which]) * parts[which].width
        _side_task(parts[which], c, threadid(), seed, sweep, mu_0, gamma_0, alpha_lambda,
                   beta_lambda)
    for side in todo:
        side.publish()
