# cython: language_level=3
"""Bayesian matrix factorization: one Gibbs sweep, and the random numbers it draws.

The model is r = mu + b_u + b_i + p_u . q_i + eps, eps ~ N(0, 1 / alpha), with a
Normal-Gamma hyperprior on each group of parameters: the user biases, the item biases,
each user factor column f, each item factor column f (libFM's and myFM's model). The
kernel never sees mu or the ratings: its state is the residuals e_n = r_n - prediction_n.

State (float64, all owned by the caller and updated in place):
  residual      (n,)          e of every training rating, in item-CSR order
  user_residual (n,)          work space: the residuals in user-CSR order during a sweep
  user_factors  (n_users, k)  row-major, so a row is contiguous (the sampler works row by row)
  item_factors  (n_items, k)
  user_bias     (n_users,),   item_bias (n_items,)
Layout (int64 offsets and positions, int32 rows; see ``check_layout``): the ratings in two
orders, by user and by item, each position of one order naming its place in the other:
  user_ptr (n_users + 1,), user_items (n,), user_pos (n,)   user u's ratings are user-CSR
        positions user_ptr[u]:user_ptr[u + 1], of items user_items, at item-CSR user_pos
  item_ptr (n_items + 1,), item_users (n,), item_pos (n,)   item i's ratings are item-CSR
        positions item_ptr[i]:item_ptr[i + 1], of users item_users, at user-CSR item_pos
Each half-sweep gathers its rows' residuals from the other order into its own contiguous
ranges and works there: a thread writes only the residuals of its own rows (no scattered
writes, no cache line written by two threads) and no pass is spent on a conversion.
Outputs of a sweep: ``user_hyper`` and ``item_hyper`` (2, k + 1): row 0 the group means,
row 1 the group precisions, column 0 the biases and column 1 + f factor column f; and the
returned (alpha, sse). After each call the state arrays hold the current sample: the
caller copies or accumulates what it keeps (burn-in, thinning, predictive means).

Order: row by row, each user's bias then its factors 0..k-1, users in parallel, then the
items the same way. Given the items the users are independent, so this draws the same
full conditionals as libFM's and myFM's column order (for each f, all users then all
items) with the columns of one side visited before the other's; both orders give the same
accuracy (ML-100K u1, k = 10, 200 sweeps: RMSE 0.908 each, in a NumPy prototype of the
column order), and the row order keeps a row's ratings in cache for all its k + 1
coordinates, one fused pass over them a coordinate, in long independent tasks.

The global mean is the caller's (the training mean, inside the residuals) and is not
sampled: the means of the two bias groups already give the model a free offset, which a
sampled global mean would only duplicate (and cost two more passes over the residuals).

Random numbers come from Philox4x64-10 keyed on (seed, stream) with the counter (sweep,
row, coordinate, draw), each a separate 64-bit word (``bayes_gibbs.h``): a normal is the
AS 241 quantile of one uniform, a Gamma is Marsaglia-Tsang with attempt t on draw word t.
Nothing depends on the thread count or the schedule: a sweep is bit-identical for any
``n_threads``.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport isfinite, sqrt
from libc.string cimport memset
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t

import numpy as np


cdef extern from "bayes_gibbs.h" nogil:
    enum:
        MF_STREAM_NOISE
        MF_STREAM_USER_HYPER
        MF_STREAM_ITEM_HYPER
        MF_STREAM_USER
        MF_STREAM_ITEM
        MF_STREAM_Y_HYPER
        MF_STREAM_Z_HYPER
        MF_STREAM_Y
        MF_STREAM_Z
    ctypedef struct mf_block:
        uint64_t v[4]
    mf_block mf_draw_block(uint64_t seed, uint64_t stream, uint64_t sweep, uint64_t row,
                           uint64_t coord, uint64_t draw)
    double mf_unit(uint64_t x)
    double mf_normal_quantile(double p)
    void mf_normal_quantiles(const double* p, double* z, int64_t n)
    double mf_normal(uint64_t seed, uint64_t stream, uint64_t sweep, uint64_t row,
                     uint64_t coord, uint64_t draw)
    double mf_gamma(double shape, uint64_t seed, uint64_t stream, uint64_t sweep,
                    uint64_t row, uint64_t coord)
    void mf_normal_gamma(const double* x, int64_t n, int64_t stride, double mu_0,
                         double gamma_0, double alpha_lambda, double beta_lambda,
                         uint64_t seed, uint64_t stream, uint64_t sweep, uint64_t coord,
                         double* mean_out, double* prec_out)
    void mf_gibbs_use_avx()
    void mf_gather_residuals(double* e, const double* source, const int64_t* pos, int64_t m)
    void mf_gibbs_row(double* bias, double* w, double* e, int64_t m,
                      const int32_t* other_row, const double* other, int64_t k, double* H,
                      const double* mean_g, const double* prec_g, double alpha,
                      uint64_t seed, uint64_t stream, uint64_t sweep, uint64_t row)
    enum:
        MF_IMPLICIT_BLOCK
    void mf_implicit_columns(double* x, int64_t n_rows, int64_t k, int64_t f0, int64_t bb,
                             const int64_t* ptr, const int32_t* members, const double* weight,
                             int64_t n_members, const double* scale, const double* effective,
                             double* bar, double* own, const double* mean_p,
                             const double* prec_p, const double* mean_x, const double* prec_x,
                             double* work, uint64_t seed, uint64_t stream, uint64_t sweep)


cdef extern from "openmp_shim.h" nogil:
    double omp_get_wtime()

mf_gibbs_use_avx()  # the rows' sums on AVX registers where the CPU has them (same bits)


#: The streams (the second key word of every draw), by name.
STREAMS = {"noise": MF_STREAM_NOISE, "user_hyper": MF_STREAM_USER_HYPER,
           "item_hyper": MF_STREAM_ITEM_HYPER, "user": MF_STREAM_USER, "item": MF_STREAM_ITEM,
           "y_hyper": MF_STREAM_Y_HYPER, "z_hyper": MF_STREAM_Z_HYPER, "y": MF_STREAM_Y,
           "z": MF_STREAM_Z}

#: Ratings a task of the sum of squared residuals; the partial sums are combined in chunk
#: order, so the total does not depend on the thread count.
cdef enum:
    SSE_CHUNK = 4096
#: Rows a task of a half-sweep.
cdef enum:
    ROW_CHUNK = 8


# --- random numbers ---------------------------------------------------------------------

def philox_block(uint64_t seed, uint64_t stream, uint64_t sweep, uint64_t row,
                 uint64_t coord, uint64_t draw):
    """The four 64-bit words Philox4x64-10 gives for key (seed, stream) and counter
    (sweep, row, coord, draw)."""
    cdef mf_block b = mf_draw_block(seed, stream, sweep, row, coord, draw)
    return (b.v[0], b.v[1], b.v[2], b.v[3])


def normal_quantile(double p):
    """The standard normal quantile of p in (0, 1) as the sampler computes it (AS 241)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    return mf_normal_quantile(p)


def normal_quantiles(const double[::1] p, double[::1] out):
    """``out[j]`` = ``normal_quantile(p[j])``, as a row computes its batch of normals (four
    at a time on AVX where the CPU has it: the same bits)."""
    cdef int64_t j, n = p.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"out has {out.shape[0]} entries for {n} probabilities")
    for j in range(n):
        if not 0 < p[j] < 1:
            raise ValueError(f"p must be in (0, 1), got {p[j]} at {j}")
    if n > 0:
        mf_normal_quantiles(&p[0], &out[0], n)


def draws(str kind, uint64_t seed, uint64_t stream, uint64_t sweep, uint64_t coord,
          double[::1] out, double shape=1.0, uint64_t draw=0, int64_t first_row=0):
    """Fill ``out[j]`` with the draw of row ``first_row + j`` under the other words:
    ``kind`` "uniform" (in (0, 1), from word 0 of the block), "normal" (its standard
    normal quantile: what the sampler uses for a parameter or a hyper-mean) or "gamma"
    (Gamma(shape, rate 1) by Marsaglia-Tsang, as for alpha and the hyper-precisions; its
    attempts use the draw words 0, 1, ..., so ``draw`` is ignored)."""
    cdef int64_t j, n = out.shape[0]
    cdef int which
    if kind == "uniform":
        which = 0
    elif kind == "normal":
        which = 1
    elif kind == "gamma":
        which = 2
        if not shape > 0:
            raise ValueError(f"the Gamma shape must be > 0, got {shape}")
    else:
        raise ValueError(f"kind must be 'uniform', 'normal' or 'gamma', got {kind!r}")
    with nogil:
        for j in range(n):
            if which == 0:
                out[j] = mf_unit(mf_draw_block(seed, stream, sweep, first_row + j, coord,
                                               draw).v[0])
            elif which == 1:
                out[j] = mf_normal(seed, stream, sweep, first_row + j, coord, draw)
            else:
                out[j] = mf_gamma(shape, seed, stream, sweep, first_row + j, coord)


# --- layout -----------------------------------------------------------------------------

cdef _check_ptr(const int64_t[::1] ptr, int64_t rows, int64_t n, str name):
    """Raise unless ``ptr`` has rows + 1 entries, non-decreasing from 0 to n; return the
    largest row."""
    cdef int64_t r, longest = 0
    if ptr.shape[0] != rows + 1:
        raise ValueError(f"{name} has {ptr.shape[0]} entries, expected {rows + 1} "
                         f"(rows + 1, rows = {rows})")
    if ptr[0] != 0 or ptr[rows] != n:
        raise ValueError(f"{name} must run from 0 to {n} ratings, got {ptr[0]} to {ptr[rows]}")
    for r in range(rows):
        if ptr[r + 1] < ptr[r]:
            raise ValueError(f"{name} decreases at row {r}: {ptr[r]} then {ptr[r + 1]}")
        longest = max(longest, ptr[r + 1] - ptr[r])
    return longest


def check_layout(const int64_t[::1] user_ptr, const int32_t[::1] user_items,
                 const int64_t[::1] user_pos, const int64_t[::1] item_ptr,
                 const int32_t[::1] item_users, const int64_t[::1] item_pos):
    """Raise ValueError unless the two CSR layouts describe the same ratings: every
    ``item_pos`` entry a distinct user-CSR position, of a rating of that item by that
    user, and ``user_pos`` its inverse.

    ``gibbs_sweep`` checks only the shapes and the offset arrays on each call; this full
    O(n) check is for the caller to run once per layout."""
    cdef int64_t n = user_items.shape[0], n_users = user_ptr.shape[0] - 1
    cdef int64_t n_items = item_ptr.shape[0] - 1, u, i, t, p
    if n_users < 0 or n_items < 0:
        raise ValueError("user_ptr and item_ptr need at least one entry each")
    if item_users.shape[0] != n or item_pos.shape[0] != n or user_pos.shape[0] != n:
        raise ValueError(f"user_items, user_pos, item_users and item_pos differ in length: "
                         f"{n}, {user_pos.shape[0]}, {item_users.shape[0]} and "
                         f"{item_pos.shape[0]}")
    _check_ptr(user_ptr, n_users, n, "user_ptr")
    _check_ptr(item_ptr, n_items, n, "item_ptr")
    owner = np.empty(n, dtype=np.int64)
    seen = np.zeros(n, dtype=np.uint8)
    cdef int64_t[::1] own = owner
    cdef unsigned char[::1] hit = seen
    for u in range(n_users):
        own[user_ptr[u]:user_ptr[u + 1]] = u
    for t in range(n):
        if user_items[t] < 0 or user_items[t] >= n_items:
            raise ValueError(f"user_items[{t}] = {user_items[t]} is not an item row "
                             f"(0 to {n_items - 1})")
    for i in range(n_items):
        for t in range(item_ptr[i], item_ptr[i + 1]):
            p = item_pos[t]
            if p < 0 or p >= n or hit[p]:
                raise ValueError(f"item_pos[{t}] = {p} is out of range or repeated")
            hit[p] = 1
            if user_items[p] != i or item_users[t] != own[p]:
                raise ValueError(f"item-CSR entry {t} (item {i}, user {item_users[t]}) does "
                                 f"not match user-CSR position {p} (user {own[p]}, item "
                                 f"{user_items[p]})")
            if user_pos[p] != t:
                raise ValueError(f"user_pos[{p}] = {user_pos[p]}, but that rating is at "
                                 f"item-CSR position {t}")


# --- the parts of a sweep ---------------------------------------------------------------

cdef struct Prior:
    # the Normal-Gamma hyperprior (see ``gibbs_sweep``)
    double alpha_0, beta_0, mu_0, gamma_0, alpha_lambda, beta_lambda


cdef Prior _prior(double alpha_0, double beta_0, double mu_0, double gamma_0,
                  double alpha_lambda, double beta_lambda) except *:
    for name, value in (("alpha_0", alpha_0), ("beta_0", beta_0), ("gamma_0", gamma_0),
                        ("alpha_lambda", alpha_lambda), ("beta_lambda", beta_lambda)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    return Prior(alpha_0, beta_0, mu_0, gamma_0, alpha_lambda, beta_lambda)


cdef struct Groups:
    # the parameter groups whose (mean, precision) a sweep draws, in task order: the user
    # bias and k user factor columns, the same for items, then y's k columns and z's (when
    # not NULL); hyper arrays are (2, width) row-major: means, then precisions
    int64_t k, n_users, n_items
    double* P
    double* Q
    double* bu
    double* bi
    double* user_hyper
    double* item_hyper
    double* Y
    double* Z
    double* y_hyper
    double* z_hyper


cdef inline int64_t _n_groups(const Groups* g) noexcept nogil:
    return 2 * (g.k + 1) + (g.k if g.Y != NULL else 0) + (g.k if g.Z != NULL else 0)


cdef inline int64_t _n_user_groups(const Groups* g) noexcept nogil:
    """The groups the users' rows draw from (bias and factor columns): groups 0..k. The
    rest (the items', y's, z's) depend on nothing the users' rows change, so a sweep draws
    them beside those rows (``gibbs_sweep``)."""
    return g.k + 1


cdef void _draw_group(const Groups* g, int64_t c, const Prior* pr, uint64_t seed,
                      uint64_t sweep) noexcept nogil:
    """Group ``c``'s (mean, precision) from its Normal-Gamma posterior."""
    cdef int64_t k = g.k
    if c <= k:
        mf_normal_gamma(g.bu if c == 0 else g.P + (c - 1), g.n_users, 1 if c == 0 else k,
                        pr.mu_0, pr.gamma_0, pr.alpha_lambda, pr.beta_lambda, seed,
                        MF_STREAM_USER_HYPER, sweep, c, g.user_hyper + c,
                        g.user_hyper + (k + 1) + c)
    elif c <= 2 * k + 1:
        c = c - k - 1
        mf_normal_gamma(g.bi if c == 0 else g.Q + (c - 1), g.n_items, 1 if c == 0 else k,
                        pr.mu_0, pr.gamma_0, pr.alpha_lambda, pr.beta_lambda, seed,
                        MF_STREAM_ITEM_HYPER, sweep, c, g.item_hyper + c,
                        g.item_hyper + (k + 1) + c)
    elif g.Y != NULL and c < 3 * k + 2:
        c = c - 2 * k - 2
        mf_normal_gamma(g.Y + c, g.n_items, k, pr.mu_0, pr.gamma_0, pr.alpha_lambda,
                        pr.beta_lambda, seed, MF_STREAM_Y_HYPER, sweep, c, g.y_hyper + c,
                        g.y_hyper + k + c)
    else:
        c = c - 2 * k - 2 - (k if g.Y != NULL else 0)
        mf_normal_gamma(g.Z + c, g.n_users, k, pr.mu_0, pr.gamma_0, pr.alpha_lambda,
                        pr.beta_lambda, seed, MF_STREAM_Z_HYPER, sweep, c, g.z_hyper + c,
                        g.z_hyper + k + c)


cdef inline double _alpha(int64_t n, double sse, const Prior* pr, uint64_t seed,
                          uint64_t sweep) noexcept nogil:
    """The noise precision's draw given the sum of squared residuals of the n ratings."""
    return (mf_gamma(0.5 * (pr.alpha_0 + n), seed, MF_STREAM_NOISE, sweep, 0, 0)
            / (0.5 * (pr.beta_0 + sse)))


cdef inline double _sum_squares(const double* e, int64_t lo, int64_t hi) noexcept nogil:
    """e[lo]^2 + ... + e[hi - 1]^2, added in order."""
    cdef double acc = 0.0
    cdef int64_t t
    for t in range(lo, hi):
        acc = acc + e[t] * e[t]
    return acc


cdef inline double _sum_partial(const double* partial, int64_t n_chunks) noexcept nogil:
    """The chunk sums of squares, added in chunk order."""
    cdef double sse = 0.0
    cdef int64_t c
    for c in range(n_chunks):
        sse += partial[c]
    return sse


cdef inline double _noise(const double* partial, int64_t n_chunks, int64_t n,
                          double noise_precision, const Prior* pr, uint64_t seed,
                          uint64_t sweep) noexcept nogil:
    """Alpha: ``noise_precision`` when > 0, else its draw given the chunk sums."""
    if noise_precision > 0:
        return noise_precision
    return _alpha(n, _sum_partial(partial, n_chunks), pr, seed, sweep)


cdef Groups _groups(double[:, ::1] P, double[:, ::1] Q, double[::1] bu, double[::1] bi,
                    double[:, ::1] user_hyper, double[:, ::1] item_hyper):
    """The groups of the explicit parameters (shapes checked by the caller)."""
    cdef int64_t n_users = P.shape[0], n_items = Q.shape[0], k = P.shape[1]
    cdef Groups g
    memset(&g, 0, sizeof(Groups))  # no implicit vectors (ImplicitTerms adds them)
    g.k, g.n_users, g.n_items = k, n_users, n_items
    g.P = &P[0, 0] if n_users * k > 0 else NULL
    g.Q = &Q[0, 0] if n_items * k > 0 else NULL
    g.bu = &bu[0] if n_users > 0 else NULL
    g.bi = &bi[0] if n_items > 0 else NULL
    g.user_hyper, g.item_hyper = &user_hyper[0, 0], &item_hyper[0, 0]
    return g


cdef struct Half:
    # one side's half-sweep: its rows draw their bias and factors given the other side
    int64_t n_rows, k, first_row    # rows, factors, the counter of row 0 (a band's offset)
    const int64_t* ptr              # row r's ratings are ptr[r]:ptr[r + 1] of e and cols
    const int32_t* cols             # the other side's row of each rating
    const int64_t* pos              # where each rating's residual stands in ``source``
    const double* source            # residuals in the other side's order (NULL: e holds
                                    # them already, in this side's order)
    double* e                       # the residuals in this side's order
    double* bias
    double* factors
    const double* other             # the other side's factors as the ratings see them
    const double* hyper             # (2, k + 1): the group means, then the precisions
    uint64_t stream
    # implicit terms on this side (NULL without): the rows draw their effective vectors
    # under the prior shifted by their implicit term, then the implicit columns follow
    double* effective               # factors + shift
    double* shift                   # the rows' implicit terms (ybar or zbar)
    const double* bias_shift        # the biases' (side features; NULL without)
    double* vectors                 # the implicit vectors (y or z), n_vectors rows
    int64_t n_vectors
    const int64_t* vec_ptr          # each vector's members (rows of this side)
    const int32_t* vec_members
    const double* vec_weight        # sum of its members' scale^2
    const double* row_scale         # |N(r)|^-1/2 of each row
    double* vec_hyper               # (2, k): the vectors' column groups
    uint64_t vec_stream


cdef void _row(const Half* h, int64_t r, double alpha, uint64_t seed, uint64_t sweep,
               double* scratch, double* shifted_mean) noexcept nogil:
    """Row r of a half-sweep: gather its residuals into its own range, then draw its bias
    and factors from their full conditionals (``mf_gibbs_row``). ``scratch``: the row's
    features (longest row x k doubles); ``shifted_mean``: k + 1 doubles, with implicit
    terms (the prior means shifted by the row's terms)."""
    cdef int64_t k = h.k, f
    cdef int64_t start = h.ptr[r], m = h.ptr[r + 1] - h.ptr[r]
    cdef const double* row_mean = h.hyper
    cdef double* w = h.factors + r * k
    if h.source != NULL:
        mf_gather_residuals(h.e + start, h.source, h.pos + start, m)
    if h.shift != NULL:
        shifted_mean[0] = h.hyper[0] + (h.bias_shift[r] if h.bias_shift != NULL else 0.0)
        for f in range(k):
            shifted_mean[1 + f] = h.hyper[1 + f] + h.shift[r * k + f]
        row_mean = shifted_mean
        w = h.effective + r * k
    mf_gibbs_row(h.bias + r, w, h.e + start, m, h.cols + start, h.other, k, scratch,
                 row_mean, h.hyper + k + 1, alpha, seed, h.stream, sweep, h.first_row + r)
    if h.shift != NULL:
        for f in range(k):
            h.factors[r * k + f] = h.effective[r * k + f] - h.shift[r * k + f]


cdef inline int64_t _n_blocks(const Half* h) noexcept nogil:
    """The tasks of the half's implicit columns (none without implicit vectors)."""
    return (h.k + MF_IMPLICIT_BLOCK - 1) // MF_IMPLICIT_BLOCK if h.vectors != NULL else 0


cdef void _implicit_block(const Half* h, int64_t blk, uint64_t seed, uint64_t sweep,
                          double* work) noexcept nogil:
    """Columns blk * MF_IMPLICIT_BLOCK onwards of the half's implicit vectors, after its
    rows (``mf_implicit_columns``)."""
    cdef int64_t f = blk * MF_IMPLICIT_BLOCK
    mf_implicit_columns(h.vectors, h.n_vectors, h.k, f, min(MF_IMPLICIT_BLOCK, h.k - f),
                        h.vec_ptr, h.vec_members, h.vec_weight, h.n_rows, h.row_scale,
                        h.effective, h.shift, h.factors, h.hyper + 1, h.hyper + h.k + 2,
                        h.vec_hyper, h.vec_hyper + h.k, work, seed, h.vec_stream, sweep)


cdef void _half_sweep(const Half* h, double alpha, uint64_t seed, uint64_t sweep,
                      double[:, ::1] scratch, double[:, ::1] means, double[:, ::1] work,
                      int n_threads) noexcept nogil:
    """The rows of one side in parallel (``_row``); then, with implicit terms, the
    implicit columns (MF_IMPLICIT_BLOCK a task). Scratch arrays: one row a thread."""
    cdef int64_t r, blk
    for r in prange(h.n_rows, num_threads=n_threads, schedule="dynamic", chunksize=ROW_CHUNK):
        _row(h, r, alpha, seed, sweep, &scratch[threadid(), 0],
             &means[threadid(), 0] if h.shift != NULL else NULL)
    if h.vectors != NULL:
        for blk in prange(_n_blocks(h), num_threads=n_threads, schedule="dynamic"):
            _implicit_block(h, blk, seed, sweep, &work[threadid(), 0])


cdef Half _rows(int64_t n_rows, int64_t k, const int64_t[::1] ptr, const int32_t[::1] cols,
                double[::1] e, double[::1] bias, double[:, ::1] factors,
                const double* other, const double[:, ::1] hyper, uint64_t stream):
    """A Half of rows 0.. (first_row 0), without a gather and without implicit terms (the
    caller sets those)."""
    cdef int64_t n = e.shape[0]
    cdef Half h
    memset(&h, 0, sizeof(Half))
    h.n_rows, h.k, h.ptr = n_rows, k, &ptr[0]
    h.cols = &cols[0] if n > 0 else NULL
    h.e = &e[0] if n > 0 else NULL
    h.bias = &bias[0] if n_rows > 0 else NULL
    h.factors = &factors[0, 0] if n_rows * k > 0 else NULL
    h.other, h.hyper, h.stream = other, &hyper[0, 0], stream
    return h


# --- implicit terms ---------------------------------------------------------------------

cdef double[:, ::1] _matrix(arr, int64_t rows, int64_t cols, str name):
    """``arr`` as a C-contiguous float64 matrix of that shape, or ValueError naming it."""
    if arr is None:
        raise ValueError(f"{name} is needed with implicit terms")
    cdef double[:, ::1] view = arr
    if view.shape[0] != rows or view.shape[1] != cols:
        raise ValueError(f"{name} has shape ({view.shape[0]}, {view.shape[1]}), expected "
                         f"({rows}, {cols})")
    return view


cdef double* _rows_of(double[:, ::1] view) noexcept:
    return &view[0, 0] if view.shape[0] * view.shape[1] > 0 else NULL


cdef class ImplicitTerms:
    """The implicit (SVD++) state of a sampler, passed to ``gibbs_sweep`` as one object.

    The implicit pairs in two CSR orders: ``user_ptr``/``user_items`` give N(u), the items
    of user u; ``item_ptr``/``item_users`` N(i), the users of item i. ``y`` (n_items, k)
    for the user side, ``z`` (n_users, k) for the item side, or both, with their column
    groups ``y_hyper``/``z_hyper`` (2, k); ``ybar`` (n_users, k) and ``zbar`` (n_items, k)
    the implicit terms (zero for a side left out), ``user_effective`` = P + ybar and
    ``item_effective`` = Q + zbar. The sweep updates all of them but the pairs in place.

    Side features (``bayes_features``) add their terms to the same shifts: ``ybar`` and
    ``zbar`` then hold the whole additive terms of the factors (the pairs may be None:
    shifts without implicit vectors), and ``user_bias_shift``/``item_bias_shift`` (n,)
    those of the biases, whose arrays then hold the effective biases: a row's bias prior
    mean is shifted too, and the bias groups are drawn from the biases less their shifts.
    """
    cdef readonly object user_ptr, user_items, item_ptr, item_users
    cdef readonly object y, z, ybar, zbar, user_effective, item_effective, y_hyper, z_hyper
    cdef readonly object user_bias_shift, item_bias_shift
    cdef readonly int64_t n_users, n_items
    cdef double[::1] user_scale, item_scale, user_weight, item_weight, own_user, own_item

    def __init__(self, user_ptr=None, user_items=None, item_ptr=None, item_users=None, *,
                 ybar, zbar, user_effective, item_effective, y=None, z=None, y_hyper=None,
                 z_hyper=None, user_bias_shift=None, item_bias_shift=None):
        self.user_bias_shift, self.item_bias_shift = user_bias_shift, item_bias_shift
        if user_bias_shift is not None or item_bias_shift is not None:
            self.own_user = np.zeros(max(len(user_bias_shift), 1), dtype=np.float64)
            self.own_item = np.zeros(max(len(item_bias_shift), 1), dtype=np.float64)
        if user_ptr is None and user_items is None and item_ptr is None and \
                item_users is None and y is None and z is None:  # shifts only
            self.ybar, self.zbar = ybar, zbar
            self.user_effective, self.item_effective = user_effective, item_effective
            self.n_users, self.n_items = len(ybar), len(zbar)
            return
        if user_ptr is None or user_items is None or item_ptr is None or item_users is None:
            raise ValueError("implicit terms need user_ptr, user_items, item_ptr and "
                             "item_users (the implicit pairs by user and by item)")
        cdef const int64_t[::1] nu_ptr = user_ptr, ni_ptr = item_ptr
        cdef const int32_t[::1] nu_items = user_items, ni_users = item_users
        cdef int64_t n_users = nu_ptr.shape[0] - 1, n_items = ni_ptr.shape[0] - 1
        cdef int64_t n_pairs = nu_items.shape[0], pair, r, t
        if n_users < 0 or n_items < 0:
            raise ValueError("implicit user_ptr and item_ptr need at least one entry each")
        if ni_users.shape[0] != n_pairs:
            raise ValueError(f"implicit user_items and item_users differ in length: "
                             f"{n_pairs} and {ni_users.shape[0]}")
        _check_ptr(nu_ptr, n_users, n_pairs, "implicit user_ptr")
        _check_ptr(ni_ptr, n_items, n_pairs, "implicit item_ptr")
        for pair in range(n_pairs):
            if not (0 <= nu_items[pair] < n_items and 0 <= ni_users[pair] < n_users):
                raise ValueError(f"implicit pair {pair}: item {nu_items[pair]} or user "
                                 f"{ni_users[pair]} outside 0..{n_items - 1} / 0..{n_users - 1}")
        self.user_ptr, self.user_items, self.item_ptr, self.item_users = (
            user_ptr, user_items, item_ptr, item_users)
        self.y, self.z, self.ybar, self.zbar = y, z, ybar, zbar
        self.user_effective, self.item_effective = user_effective, item_effective
        self.y_hyper, self.z_hyper = y_hyper, z_hyper
        self.n_users, self.n_items = n_users, n_items
        # |N|^-1/2 of every row, and the sum of its members' squares (in member order)
        self.user_scale = np.zeros(max(n_users, 1), dtype=np.float64)
        self.item_scale = np.zeros(max(n_items, 1), dtype=np.float64)
        self.user_weight = np.zeros(max(n_users, 1), dtype=np.float64)
        self.item_weight = np.zeros(max(n_items, 1), dtype=np.float64)
        for r in range(n_users):
            if nu_ptr[r + 1] > nu_ptr[r]:
                self.user_scale[r] = 1.0 / sqrt(<double>(nu_ptr[r + 1] - nu_ptr[r]))
        for r in range(n_items):
            if ni_ptr[r + 1] > ni_ptr[r]:
                self.item_scale[r] = 1.0 / sqrt(<double>(ni_ptr[r + 1] - ni_ptr[r]))
        for r in range(n_items):
            for t in range(ni_ptr[r], ni_ptr[r + 1]):
                self.item_weight[r] += self.user_scale[ni_users[t]] * self.user_scale[ni_users[t]]
        for r in range(n_users):
            for t in range(nu_ptr[r], nu_ptr[r + 1]):
                self.user_weight[r] += self.item_scale[nu_items[t]] * self.item_scale[nu_items[t]]

    cdef _attach(self, Half* users, Half* items, Groups* groups, int64_t k):
        """Point the two halves and the groups at this state, checked against the sweep's
        n_users, n_items and k: the rows draw their effective vectors, and each side with
        implicit vectors draws their columns after its rows."""
        if self.n_users != users.n_rows or self.n_items != items.n_rows:
            raise ValueError(f"implicit terms of {self.n_users} users and {self.n_items} items "
                             f"for a sweep of {users.n_rows} users and {items.n_rows} items")
        for name, arr, rows in (("ybar", self.ybar, users.n_rows),
                                ("zbar", self.zbar, items.n_rows),
                                ("user_effective", self.user_effective, users.n_rows),
                                ("item_effective", self.item_effective, items.n_rows)):
            _matrix(arr, rows, k, name)
        if k == 0:
            return
        users.shift, items.shift = _rows_of(self.ybar), _rows_of(self.zbar)
        users.effective, items.effective = (_rows_of(self.user_effective),
                                            _rows_of(self.item_effective))
        users.other, items.other = items.effective, users.effective
        if self.user_bias_shift is not None:
            self._attach_bias_shift(users, self.user_bias_shift, self.own_user, "user")
            self._attach_bias_shift(items, self.item_bias_shift, self.own_item, "item")
            groups.bu = &self.own_user[0] if users.n_rows > 0 else NULL
            groups.bi = &self.own_item[0] if items.n_rows > 0 else NULL
        if self.y is not None:
            self._attach_vectors(users, self.y, self.y_hyper, "y", self.item_ptr,
                                 self.item_users, self.item_weight, self.user_scale,
                                 items.n_rows, MF_STREAM_Y)
            groups.Y, groups.y_hyper = users.vectors, users.vec_hyper
        if self.z is not None:
            self._attach_vectors(items, self.z, self.z_hyper, "z", self.user_ptr,
                                 self.user_items, self.user_weight, self.item_scale,
                                 users.n_rows, MF_STREAM_Z)
            groups.Z, groups.z_hyper = items.vectors, items.vec_hyper

    cdef _attach_bias_shift(self, Half* h, shift, double[::1] own, str side):
        """The half's bias shifts, and ``own``: its biases less them (the group's values)."""
        cdef const double[::1] view = shift
        cdef int64_t r
        if view.shape[0] != h.n_rows:
            raise ValueError(f"{side}_bias_shift has {view.shape[0]} entries for {h.n_rows} "
                             f"{side}s")
        if h.n_rows > 0:
            h.bias_shift = &view[0]
        for r in range(h.n_rows):
            own[r] = h.bias[r] - view[r]

    cdef _attach_vectors(self, Half* h, vectors, hyper, str name, const int64_t[::1] ptr,
                         const int32_t[::1] members, double[::1] weight, double[::1] scale,
                         int64_t n_vectors, uint64_t stream):
        cdef double[:, ::1] view = _matrix(vectors, n_vectors, h.k, name)
        h.vectors = _rows_of(view)
        view = _matrix(hyper, 2, h.k, name + "_hyper")
        h.vec_hyper = &view[0, 0]
        h.n_vectors, h.vec_ptr = n_vectors, &ptr[0]
        h.vec_members = &members[0] if members.shape[0] > 0 else NULL
        h.vec_weight, h.row_scale, h.vec_stream = &weight[0], &scale[0], stream


def implicit_means(const int64_t[::1] ptr, const int32_t[::1] members,
                   const double[:, ::1] vectors, double[:, ::1] out, int n_threads=1):
    """out[r] = |N(r)|^-1/2 sum of vectors[j] over j in N(r) = members[ptr[r]:ptr[r + 1]]
    (zero for an empty N(r)): the implicit terms ybar (or zbar) of every row, summed in
    member order."""
    cdef int64_t rows = out.shape[0], k = out.shape[1], r, t, f
    cdef double c
    if vectors.shape[1] != k:
        raise ValueError(f"vectors have {vectors.shape[1]} columns, out {k}")
    _check_ptr(ptr, rows, members.shape[0], "ptr")
    for t in range(members.shape[0]):
        if members[t] < 0 or members[t] >= vectors.shape[0]:
            raise ValueError(f"members[{t}] = {members[t]} is not a row of vectors "
                             f"(0 to {vectors.shape[0] - 1})")
    for r in prange(rows, nogil=True, num_threads=max(n_threads, 1), schedule="static"):
        for f in range(k):
            out[r, f] = 0.0
        for t in range(ptr[r], ptr[r + 1]):
            for f in range(k):
                out[r, f] += vectors[members[t], f]
        if ptr[r + 1] > ptr[r]:
            c = 1.0 / sqrt(<double>(ptr[r + 1] - ptr[r]))
            for f in range(k):
                out[r, f] *= c


# --- where a sweep's time goes (``gibbs_sweep(timing=...)``) ---------------------------

cdef extern from *:
    """
    #if defined(_WIN32)
    static double mf_thread_seconds(void) { return 0.0; }
    #else
    #include <time.h>
    /* CPU seconds of the calling thread (time it was descheduled is not counted). */
    static double mf_thread_seconds(void)
    {
        struct timespec t;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
    }
    #endif
    """
    double mf_thread_seconds() nogil

#: The columns of ``gibbs_sweep``'s timing rows, by name: per step ("hyper": 1. and the
#: user groups of 2.; "users": the other groups and 3.; "items": 4.) the seconds in its tasks, its CPU seconds (the thread's CPU clock,
#: not counting time descheduled: with OMP_WAIT_POLICY=passive, the tasks' work) and its
#: wall seconds to the end of its barrier; the delay before the thread entered the
#: parallel region, and the whole call (checks and allocations included).
TIMING = ("hyper busy", "users busy", "items busy", "hyper cpu", "users cpu", "items cpu",
          "hyper wall", "users wall", "items wall", "fork", "call")
#: Doubles a thread's timing row takes inside the kernel: no cache line holds two threads'.
cdef enum:
    TIMING_STRIDE = 16
    STEP_WALL = 14    # a thread's clocks at the start of its current step
    STEP_CPU = 15


cdef inline double _now(const double* tm) noexcept nogil:
    """The clock when timing (``tm`` not NULL), else 0 (no call)."""
    return omp_get_wtime() if tm != NULL else 0.0


cdef inline void _lap(double* tm, int step, double started) noexcept nogil:
    """Add the seconds since ``started`` to this thread's time in ``step``'s tasks."""
    if tm != NULL:
        tm[threadid() * TIMING_STRIDE + step] += omp_get_wtime() - started


cdef inline void _step_end(double* tm, int step) noexcept nogil:
    """``step`` ends now for this thread (after its barrier): its CPU and wall seconds; the
    next step starts now. Step -1: the thread enters the region (its fork delay)."""
    cdef double* row
    cdef double wall, cpu
    if tm != NULL:
        row = tm + threadid() * TIMING_STRIDE
        wall, cpu = omp_get_wtime(), mf_thread_seconds()
        if step >= 0:
            row[3 + step] = cpu - row[STEP_CPU]
            row[6 + step] = wall - row[STEP_WALL]
        row[STEP_WALL], row[STEP_CPU] = wall, cpu


cdef inline void _entered(double* tm, double forked) noexcept nogil:
    """This thread enters the parallel region ``forked`` seconds after the call asked for
    it: its fork delay; its first step starts."""
    _step_end(tm, -1)
    if tm != NULL:
        tm[threadid() * TIMING_STRIDE + 9] = tm[threadid() * TIMING_STRIDE + STEP_WALL] - forked


cdef _check_timing(timing, int n_threads):
    if timing is not None and (timing.shape != (n_threads, len(TIMING))
                               or timing.dtype != np.float64):
        raise ValueError(f"timing must be a float64 array of shape ({n_threads}, "
                         f"{len(TIMING)}), got {timing.dtype} {timing.shape}")


# --- one sweep --------------------------------------------------------------------------

cdef _check_hyper(double[:, ::1] user_hyper, double[:, ::1] item_hyper, int64_t k):
    for name, arr in (("user_hyper", user_hyper), ("item_hyper", item_hyper)):
        if arr.shape[0] != 2 or arr.shape[1] != k + 1:
            raise ValueError(f"{name} has shape ({arr.shape[0]}, {arr.shape[1]}), expected "
                             f"(2, {k + 1}) (mean and precision of the bias and k = {k} "
                             f"factor columns)")


cdef _check_sweep(const int64_t[::1] user_ptr, const int32_t[::1] user_items,
                  const int64_t[::1] user_pos, const int64_t[::1] item_ptr,
                  const int32_t[::1] item_users, const int64_t[::1] item_pos,
                  double[::1] residual, double[::1] user_residual,
                  double[:, ::1] user_factors, double[:, ::1] item_factors,
                  double[::1] user_bias, double[::1] item_bias,
                  double[:, ::1] user_hyper, double[:, ::1] item_hyper, int n_threads):
    """Raise unless the sweep's arrays agree in shape; return the longest row's ratings."""
    cdef int64_t n = residual.shape[0], k = user_factors.shape[1]
    cdef int64_t n_users = user_factors.shape[0], n_items = item_factors.shape[0]
    if item_factors.shape[1] != k:
        raise ValueError(f"user and item factors differ in k: {k} and {item_factors.shape[1]}")
    if user_bias.shape[0] != n_users or item_bias.shape[0] != n_items:
        raise ValueError(f"biases of {user_bias.shape[0]} users and {item_bias.shape[0]} "
                         f"items for factors of {n_users} users and {n_items} items")
    _check_hyper(user_hyper, item_hyper, k)
    if (user_items.shape[0] != n or user_pos.shape[0] != n or item_users.shape[0] != n
            or item_pos.shape[0] != n or user_residual.shape[0] != n):
        raise ValueError(f"user_items, user_pos, item_users, item_pos and user_residual have "
                         f"{user_items.shape[0]}, {user_pos.shape[0]}, "
                         f"{item_users.shape[0]}, {item_pos.shape[0]} and "
                         f"{user_residual.shape[0]} entries for {n} residuals")
    cdef int64_t longest_user = _check_ptr(user_ptr, n_users, n, "user_ptr")
    cdef int64_t longest_item = _check_ptr(item_ptr, n_items, n, "item_ptr")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    return max(longest_user, longest_item)


def gibbs_sweep(const int64_t[::1] user_ptr, const int32_t[::1] user_items,
                const int64_t[::1] user_pos, const int64_t[::1] item_ptr,
                const int32_t[::1] item_users, const int64_t[::1] item_pos,
                double[::1] residual, double[::1] user_residual,
                double[:, ::1] user_factors, double[:, ::1] item_factors,
                double[::1] user_bias, double[::1] item_bias,
                double[:, ::1] user_hyper, double[:, ::1] item_hyper,
                uint64_t seed, uint64_t sweep, int n_threads,
                double alpha_0=1.0, double beta_0=1.0, double mu_0=0.0, double gamma_0=1.0,
                double alpha_lambda=1.0, double beta_lambda=1.0, ImplicitTerms implicit=None,
                double noise_precision=0.0, timing=None):
    """One Gibbs sweep over every parameter; returns (alpha, sse).

    In order, from the state the sweep starts with:
      1. sse = sum e_n^2; alpha ~ Gamma((alpha_0 + n) / 2, rate (beta_0 + sse) / 2).
      2. Each group's (mean, precision) jointly from its Normal-Gamma posterior given
         the group's current values (prior: precision ~ Gamma(alpha_lambda / 2, rate
         beta_lambda / 2), mean ~ N(mu_0, 1 / (gamma_0 precision))), into ``user_hyper``
         and ``item_hyper``.
      3. Users, in parallel (independent given the items): each user's bias, then its
         factors 0..k-1, each from its full conditional, updating its residuals.
      4. Items, in parallel, the same way given the new users.
    3. and 4. are one half-sweep each (``_half_sweep``), the same that ``gibbs_rows`` runs
    on a band of rows. ``residual`` (item-CSR order) holds the residuals before and after;
    ``user_residual`` is overwritten. The layout must be valid (``check_layout``; only
    shapes and offsets are checked here). The global mean is the caller's: it is part of
    the residuals and not sampled.

    Implicit terms (SVD++ and its flipped side, ``implicit``, an ``ImplicitTerms``): the
    prediction's factor part becomes (p_u + ybar_u) . (q_i + zbar_i), ybar_u = |N(u)|^-1/2
    sum_{j in N(u)} y_j and zbar_i = |N(i)|^-1/2 sum_{v in N(i)} z_v; the residuals are
    those of the effective vectors. Then 2. also draws the groups of each column of y and
    z; in 3. each user draws its effective vector, under the prior of p_u shifted by
    ybar_u (P follows as effective - ybar); then, the effective vectors fixed, y from the
    prior of the effective vectors alone (a linear regression per column: blocks of
    columns in parallel, the items of a column in order, ``mf_implicit_columns``); 4. and
    z likewise. The ratings see only the effective vectors, so the y and z draws touch no
    residual. Afterwards the effective vectors equal P + ybar and Q + zbar (ybar and zbar
    are kept as the draws move them, equal to the sums of y and z to rounding).

    ``noise_precision`` > 0 fixes alpha at that value instead of step 1.'s draw (the
    ordered probit's latent ratings have unit noise: ``mfcore.ordinal``).

    The steps run in one parallel region, separated by barriers. Only the user groups of
    2. come before the first barrier, beside the chunks of 1.'s sum: the other groups
    (the items', and y's and z's) depend on nothing 3. changes, so they are drawn in 3.'s
    loop, ahead of the users' rows, and 3. and 4. wait for no thread drawing them. (A
    loop with tasks costs two barriers, 6 a plain sweep by callgrind's count: Cython makes
    the loop variables firstprivate and lastprivate, and GCC then synchronizes before the
    loop too; a loop without tasks is skipped.) ``timing``, a float64 array of shape
    (n_threads, len(TIMING)), receives where each thread's time went, in seconds (the
    columns ``TIMING`` names; ``benchmarks/bayes_threads.py`` prints them).
    """
    cdef double called = omp_get_wtime() if timing is not None else 0.0
    cdef int64_t longest = _check_sweep(user_ptr, user_items, user_pos, item_ptr, item_users,
                                        item_pos, residual, user_residual, user_factors,
                                        item_factors, user_bias, item_bias, user_hyper,
                                        item_hyper, n_threads)
    cdef Prior prior = _prior(alpha_0, beta_0, mu_0, gamma_0, alpha_lambda, beta_lambda)
    cdef int64_t n = residual.shape[0], k = user_factors.shape[1]
    cdef int64_t n_users = user_factors.shape[0], n_items = item_factors.shape[0]
    cdef Groups groups = _groups(user_factors, item_factors, user_bias, item_bias,
                                 user_hyper, item_hyper)
    cdef Half users = _rows(n_users, k, user_ptr, user_items, user_residual, user_bias,
                            user_factors, groups.Q, user_hyper, MF_STREAM_USER)
    cdef Half items = _rows(n_items, k, item_ptr, item_users, residual, item_bias,
                            item_factors, groups.P, item_hyper, MF_STREAM_ITEM)
    if n > 0:  # each side gathers its residuals from the other's order
        users.pos, users.source = &user_pos[0], &residual[0]
        items.pos, items.source = &item_pos[0], &user_residual[0]
    if implicit is not None:
        implicit._attach(&users, &items, &groups, k)
    cdef bint shifted = users.shift != NULL
    cdef double[:, ::1] scratch = np.empty((n_threads, max(longest * k, 1)), dtype=np.float64)
    cdef double[:, ::1] means = np.empty((n_threads, k + 1), dtype=np.float64)
    cdef double[:, ::1] work = np.empty(
        (n_threads, (1 + MF_IMPLICIT_BLOCK) * (n_users + n_items) + 1 if shifted else 1),
        dtype=np.float64)
    _check_timing(timing, n_threads)
    cdef double[:, ::1] rows = np.zeros((n_threads if timing is not None else 1, TIMING_STRIDE),
                                        dtype=np.float64)
    cdef double* tm = &rows[0, 0] if timing is not None else NULL

    # One parallel region, its steps separated by the barriers that end its loops:
    #   "hyper": the user groups (one task each, summed in row order) and the sum of
    #      squared residuals in fixed chunks; each thread then draws the same alpha from
    #      the chunk sums (added in chunk order);
    #   "users": the other groups (items', y's, z's: nothing the users' rows change), then
    #      the users' rows, in one loop; then y's columns;
    #   "items": the items' rows; then z's columns.
    # Every draw is the one the steps of the docstring make, in any task order.
    cdef int64_t n_chunks = (n + SSE_CHUNK - 1) // SSE_CHUNK
    cdef int64_t n_early = _n_user_groups(&groups), n_late = _n_groups(&groups) - n_early
    cdef int64_t task, r
    cdef double[::1] partial = np.zeros(max(n_chunks, 1), dtype=np.float64)
    cdef double drawn = 0.0, alpha  # drawn: each thread's copy of alpha
    cdef const double* e = &residual[0] if n > 0 else NULL
    cdef double forked = _now(tm), started
    with nogil, parallel(num_threads=n_threads):
        _entered(tm, forked)
        for task in prange(n_early + n_chunks, schedule="dynamic"):
            started = _now(tm)
            if task < n_early:
                _draw_group(&groups, task, &prior, seed, sweep)
            else:
                task = task - n_early
                partial[task] = _sum_squares(e, task * SSE_CHUNK, min((task + 1) * SSE_CHUNK, n))
            _lap(tm, 0, started)
        _step_end(tm, 0)
        drawn = _noise(&partial[0], n_chunks, n, noise_precision, &prior, seed, sweep)
        for r in prange(n_late + n_users, schedule="dynamic", chunksize=ROW_CHUNK):
            started = _now(tm)
            if r < n_late:
                _draw_group(&groups, n_early + r, &prior, seed, sweep)
            else:
                _row(&users, r - n_late, drawn, seed, sweep, &scratch[threadid(), 0],
                     &means[threadid(), 0])
            _lap(tm, 1, started)
        for task in prange(_n_blocks(&users), schedule="dynamic"):
            started = _now(tm)
            _implicit_block(&users, task, seed, sweep, &work[threadid(), 0])
            _lap(tm, 1, started)
        _step_end(tm, 1)
        for r in prange(n_items, schedule="dynamic", chunksize=ROW_CHUNK):
            started = _now(tm)
            _row(&items, r, drawn, seed, sweep, &scratch[threadid(), 0], &means[threadid(), 0])
            _lap(tm, 2, started)
        for task in prange(_n_blocks(&items), schedule="dynamic"):
            started = _now(tm)
            _implicit_block(&items, task, seed, sweep, &work[threadid(), 0])
            _lap(tm, 2, started)
        _step_end(tm, 2)
    if timing is not None:
        for r in range(n_threads):
            for task in range(len(TIMING) - 1):
                timing[r, task] = rows[r, task]
            timing[r, len(TIMING) - 1] = omp_get_wtime() - called
    alpha = _noise(&partial[0], n_chunks, n, noise_precision, &prior, seed, sweep)
    return alpha, _sum_partial(&partial[0], n_chunks)


# --- the current sample in rating units ------------------------------------------------

def rating_units(const double[:, ::1] user_factors, const double[:, ::1] item_factors,
                 const double[::1] user_bias, const double[::1] item_bias,
                 floating[:, ::1] user_out, floating[:, ::1] item_out,
                 floating[::1] user_bias_out, floating[::1] item_bias_out,
                 double factor_unit, double bias_unit, int n_threads):
    """The chain's state (standardized units, float64) into the model's arrays, rows in
    parallel: each factor times ``factor_unit``, each bias times ``bias_unit``, the product
    rounded once to the output's type (what NumPy's ``out[...] = a * unit`` gives, in one
    pass). Returns whether every value written is finite."""
    cdef int64_t n_users = user_factors.shape[0], n_items = item_factors.shape[0]
    cdef int64_t k = user_factors.shape[1], r, f, bad = 0
    cdef floating value
    if (item_factors.shape[1] != k or user_bias.shape[0] != n_users
            or item_bias.shape[0] != n_items or user_out.shape[0] != n_users
            or user_out.shape[1] != k or item_out.shape[0] != n_items
            or item_out.shape[1] != k or user_bias_out.shape[0] != n_users
            or item_bias_out.shape[0] != n_items):
        raise ValueError(f"rating_units: the outputs ({user_out.shape[0]}, {user_out.shape[1]}),"
                         f" ({item_out.shape[0]}, {item_out.shape[1]}), "
                         f"({user_bias_out.shape[0]},), ({item_bias_out.shape[0]},) do not "
                         f"match the state's {n_users} users, {n_items} items and k = {k}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    for r in prange(n_users + n_items, nogil=True, num_threads=n_threads, schedule="static"):
        if r < n_users:
            value = <floating>(user_bias[r] * bias_unit)
            user_bias_out[r] = value
            bad += not isfinite(value)
            for f in range(k):
                value = <floating>(user_factors[r, f] * factor_unit)
                user_out[r, f] = value
                bad += not isfinite(value)
        else:
            value = <floating>(item_bias[r - n_users] * bias_unit)
            item_bias_out[r - n_users] = value
            bad += not isfinite(value)
            for f in range(k):
                value = <floating>(item_factors[r - n_users, f] * factor_unit)
                item_out[r - n_users, f] = value
                bad += not isfinite(value)
    return bad == 0


# --- the sweep's parts, for a sampler spread over several processes (mfcore.dask) ---------

#: Ratings a partial sum of the sum of squared residuals adds (``chunk_sse``).
CHUNK = SSE_CHUNK


def chunk_sse(const double[::1] residual):
    """Sums of squares of consecutive runs of ``CHUNK`` residuals (the last run may be
    shorter), each added in order by the loop ``gibbs_sweep`` uses: for residuals that
    start at a chunk boundary of the item-CSR order these are that sweep's partial sums."""
    cdef int64_t n = residual.shape[0], n_chunks = (n + SSE_CHUNK - 1) // SSE_CHUNK
    out = np.zeros(n_chunks, dtype=np.float64)
    cdef double[::1] view = out
    cdef int64_t c, t, hi
    cdef double acc
    with nogil:
        for c in range(n_chunks):
            hi = min((c + 1) * SSE_CHUNK, n)
            acc = 0.0
            for t in range(c * SSE_CHUNK, hi):
                acc = acc + residual[t] * residual[t]
            view[c] = acc
    return out


def draw_hyper_and_noise(double[:, ::1] user_factors, double[:, ::1] item_factors,
                         double[::1] user_bias, double[::1] item_bias,
                         double[:, ::1] user_hyper, double[:, ::1] item_hyper, int64_t n,
                         double sse, uint64_t seed, uint64_t sweep, int n_threads,
                         double alpha_0=1.0, double beta_0=1.0, double mu_0=0.0,
                         double gamma_0=1.0, double alpha_lambda=1.0, double beta_lambda=1.0):
    """Steps 1 and 2 of ``gibbs_sweep`` given ``sse``, the sum of squared residuals of the
    ``n`` ratings (added as that sweep adds it): each group's (mean, precision) into
    ``user_hyper``/``item_hyper``, and the noise precision alpha, returned."""
    cdef int64_t n_users = user_factors.shape[0], n_items = item_factors.shape[0]
    cdef int64_t k = user_factors.shape[1], task
    if item_factors.shape[1] != k or user_bias.shape[0] != n_users or \
            item_bias.shape[0] != n_items:
        raise ValueError("factor and bias shapes disagree")
    _check_hyper(user_hyper, item_hyper, k)
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    cdef Prior prior = _prior(alpha_0, beta_0, mu_0, gamma_0, alpha_lambda, beta_lambda)
    cdef Groups groups = _groups(user_factors, item_factors, user_bias, item_bias,
                                 user_hyper, item_hyper)
    for task in prange(_n_groups(&groups), nogil=True, num_threads=n_threads,
                       schedule="dynamic"):
        _draw_group(&groups, task, &prior, seed, sweep)
    return _alpha(n, sse, &prior, seed, sweep)


def gibbs_rows(const int64_t[::1] ptr, const int32_t[::1] cols, double[::1] residual,
               double[:, ::1] factors, double[::1] bias, const double[:, ::1] other_factors,
               const double[:, ::1] hyper, double alpha, uint64_t seed, str side,
               uint64_t sweep, int64_t first_row, int n_threads, *,
               const int64_t[::1] pos=None, const double[::1] source=None,
               double[::1] chunk_sums=None, int64_t chunk_start=0):
    """Step 3 (``side`` "user") or 4 ("item") of ``gibbs_sweep`` on the rows ``first_row``
    onwards of one side: row r (``factors[r]``, ``bias[r]``) has the residuals
    ``residual[ptr[r]:ptr[r + 1]]`` of the other side's rows ``cols[...]``, and draws with
    the counter of row ``first_row + r``: the sweep's own half-sweep (``_half_sweep``) on a
    band, so a band of rows gives the sweep's values bit for bit.

    ``residual`` holds the residuals in this side's order already, or, given ``pos`` and
    ``source`` (the other side's order), each row first gathers its own,
    ``residual[t] = source[pos[t]]``, inside the parallel loop as the sweep does (every
    ``pos[t]`` must be a position of ``source``: the caller builds it once, as the sweep's
    ``check_layout``-ed positions). Given ``chunk_sums`` (C entries), afterwards it writes
    the sums of squares of the C runs of ``CHUNK`` residuals from ``chunk_start`` on, each
    added in order as ``chunk_sse`` adds it (the next sweep's partial sums), in parallel."""
    cdef int64_t n_rows = ptr.shape[0] - 1, k = factors.shape[1], r, longest = 0
    cdef int64_t n = residual.shape[0], c, t, lo
    cdef int64_t n_chunks = 0 if chunk_sums is None else chunk_sums.shape[0]
    cdef double acc
    if side not in ("user", "item"):
        raise ValueError(f"side must be 'user' or 'item', got {side!r}")
    if factors.shape[0] != n_rows or bias.shape[0] != n_rows:
        raise ValueError(f"{factors.shape[0]} factor rows and {bias.shape[0]} biases for "
                         f"{n_rows} rows of ptr")
    if other_factors.shape[1] != k or hyper.shape[0] != 2 or hyper.shape[1] != k + 1:
        raise ValueError("other_factors or hyper do not match k")
    if cols.shape[0] != n or ptr[n_rows] != n or ptr[0] != 0:
        raise ValueError("ptr, cols and residual disagree")
    if (pos is None) != (source is None) or (pos is not None and pos.shape[0] != n):
        raise ValueError(f"pos and source go together, pos one position a residual ({n})")
    if chunk_start < 0 or chunk_start + n_chunks * SSE_CHUNK > n:
        raise ValueError(f"{n_chunks} chunks from {chunk_start} pass the {n} residuals")
    for r in range(n_rows):
        if ptr[r + 1] < ptr[r]:
            raise ValueError(f"ptr decreases at row {r}")
        longest = max(longest, ptr[r + 1] - ptr[r])
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    cdef double[:, ::1] scratch = np.empty((n_threads, max(longest * k, 1)), dtype=np.float64)
    cdef double[:, ::1] unused = np.empty((1, 1), dtype=np.float64)  # no implicit terms
    cdef const double* other = &other_factors[0, 0] if other_factors.shape[0] * k > 0 else NULL
    cdef Half rows = _rows(n_rows, k, ptr, cols, residual, bias, factors, other, hyper,
                           MF_STREAM_USER if side == "user" else MF_STREAM_ITEM)
    rows.first_row = first_row
    if pos is not None and n > 0:
        rows.pos, rows.source = &pos[0], &source[0]
    with nogil:
        if n_rows > 0:
            _half_sweep(&rows, alpha, seed, sweep, scratch, unused, unused, n_threads)
        for c in prange(n_chunks, num_threads=n_threads, schedule="static"):
            lo = chunk_start + c * SSE_CHUNK
            acc = 0.0
            for t in range(lo, lo + SSE_CHUNK):
                acc = acc + residual[t] * residual[t]
            chunk_sums[c] = acc


# --- ordered probit (mfcore.ordinal) ----------------------------------------------------

cdef extern from "bayes_probit.h" nogil:
    enum:
        MF_STREAM_LATENT
        MF_STREAM_CUTPOINTS
    double mf_log_ndtr(double x)
    double mf_truncated_normal(double a, double b, double u)
    double mf_ndtr(double x)
    void mf_cut_terms(int64_t c, int64_t n_classes, double f, const double* cut, double* ll,
                      double* grad, double* diag, double* off)

STREAMS.update(latent=MF_STREAM_LATENT, cutpoints=MF_STREAM_CUTPOINTS)

#: A latent rating whose class has more mass than this is drawn from the CDF values
#: directly (``latent_draw``); the largest probability whose normal quantile is finite.
cdef double DIRECT_MASS = 1e-3
cdef double DIRECT_TOP = 1.0 - 1.1102230246251565e-16


cdef _check_classes(const double[::1] z, const double[::1] residual,
                    const int8_t[::1] classes, const double[::1] cut):
    """Raise unless the latent ratings, residuals and classes agree and every class is one
    of the len(cut) + 1 the cut points bound; return the number of classes."""
    cdef int64_t n = z.shape[0], t, n_classes = cut.shape[0] + 1
    if residual.shape[0] != n or classes.shape[0] != n:
        raise ValueError(f"z, residual and classes have {n}, {residual.shape[0]} and "
                         f"{classes.shape[0]} entries")
    for t in range(cut.shape[0] - 1):
        if not cut[t] < cut[t + 1]:
            raise ValueError(f"cut points must increase strictly, got {list(cut)}")
    for t in range(n):
        if classes[t] < 0 or classes[t] >= n_classes:
            raise ValueError(f"classes[{t}] = {classes[t]} is not one of the {n_classes} "
                             "classes")
    return n_classes


def log_ndtr(const double[::1] x, double[::1] out):
    """out[j] = log Phi(x[j]), accurate in both tails (as the sampler computes it)."""
    cdef int64_t j
    for j in range(x.shape[0]):
        out[j] = mf_log_ndtr(x[j])


def truncated_normal(const double[::1] a, const double[::1] b, const double[::1] u,
                     double[::1] out):
    """out[j]: the standard normal truncated to (a[j], b[j]) at uniform u[j] (its inverse
    CDF, as the latent draws compute it)."""
    cdef int64_t j
    for j in range(a.shape[0]):
        if not a[j] < b[j] or not 0 < u[j] < 1:
            raise ValueError(f"need a < b and 0 < u < 1, got {a[j]}, {b[j]}, {u[j]}")
        out[j] = mf_truncated_normal(a[j], b[j], u[j])


def latent_draw(double[::1] z, double[::1] residual, const int8_t[::1] classes,
                const double[::1] cut, const double[::1] values, uint64_t seed,
                uint64_t sweep, uint64_t coord, int n_threads):
    """Draw every latent rating from its truncated normal and return the sum of squared
    errors of the current sample's expected ratings.

    Rating t (residual order) has the latent mean f = z[t] - residual[t] and class
    classes[t]; its new z[t] is f + a standard normal truncated to (cut[c - 1] - f,
    cut[c] - f], from the uniform keyed on (seed, MF_STREAM_LATENT, sweep, t, coord), and
    residual[t] becomes z[t] - f. The error is values[c] minus the expected value of the
    class at f, summed in chunks of CHUNK in chunk order: the result is the same for any
    ``n_threads``. The CDF values Phi(cut_j - f) the expected value needs also give the
    class's mass P and the inverse-CDF draw, Phi^-1(Phi(a) + u P), when P > DIRECT_MASS
    (then their absolute accuracy is enough); a class of less mass, in a tail, is drawn
    in logs (``mf_truncated_normal``), exact there."""
    cdef int64_t n_classes = _check_classes(z, residual, classes, cut)
    cdef int64_t n = z.shape[0], n_chunks = (n + SSE_CHUNK - 1) // SSE_CHUNK
    cdef int64_t n_cut = n_classes - 1, task, t, lo, hi, c
    if values.shape[0] != n_classes:
        raise ValueError(f"{values.shape[0]} class values for {n_classes} classes")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    cdef double[::1] partial = np.zeros(max(n_chunks, 1), dtype=np.float64)
    cdef double f, a, b, err, acc, u, F, pa, pb, expected, x
    cdef double inf = float("inf")
    cdef int64_t j
    for task in prange(n_chunks, nogil=True, num_threads=n_threads, schedule="static"):
        lo = task * SSE_CHUNK
        hi = min(lo + SSE_CHUNK, n)
        acc = 0.0
        for t in range(lo, hi):
            f = z[t] - residual[t]
            c = classes[t]
            expected, pa, pb = values[0], 0.0, 1.0
            for j in range(n_cut):
                F = mf_ndtr(cut[j] - f)
                expected = expected + (values[j + 1] - values[j]) * (1.0 - F)
                if j == c - 1:
                    pa = F
                elif j == c:
                    pb = F
            u = mf_unit(mf_draw_block(seed, MF_STREAM_LATENT, sweep, t, coord, 0).v[0])
            a = cut[c - 1] - f if c > 0 else -inf
            b = cut[c] - f if c < n_cut else inf
            if pb - pa > DIRECT_MASS:
                x = mf_normal_quantile(min(pa + u * (pb - pa), DIRECT_TOP))
                x = min(max(x, a), b)
            else:
                x = mf_truncated_normal(a, b, u)
            z[t] = f + x
            residual[t] = z[t] - f
            err = values[c] - expected
            acc = acc + err * err
        partial[task] = acc
    cdef double sse = 0.0
    for task in range(n_chunks):
        sse += partial[task]
    return sse


def cut_statistics(const double[::1] z, const double[::1] residual,
                   const int8_t[::1] classes, const double[::1] cut, int n_threads):
    """The log-likelihood of the cut points ``cut`` given the latent means f = z - residual
    (the latent ratings integrated out: sum of log P(class | f)), its gradient and its
    tridiagonal Hessian (diagonal, and the entries beside it), as (ll, grad, diag, off);
    summed in chunks of CHUNK in chunk order (the same for any ``n_threads``)."""
    cdef int64_t n_classes = _check_classes(z, residual, classes, cut)
    cdef int64_t n = z.shape[0], n_chunks = (n + SSE_CHUNK - 1) // SSE_CHUNK
    cdef int64_t width = 1 + 3 * n_classes, task, t, j
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    parts = np.zeros((max(n_chunks, 1), width), dtype=np.float64)
    cdef double[:, ::1] part = parts
    cdef double* row
    for task in prange(n_chunks, nogil=True, num_threads=n_threads, schedule="static"):
        row = &part[task, 0]
        for t in range(task * SSE_CHUNK, min((task + 1) * SSE_CHUNK, n)):
            mf_cut_terms(classes[t], n_classes, z[t] - residual[t], &cut[0], row, row + 1,
                         row + 1 + n_classes, row + 1 + 2 * n_classes)
    total = np.zeros(width, dtype=np.float64)
    for task in range(n_chunks):
        total += parts[task]
    n_cut = n_classes - 1
    return (float(total[0]), total[1:1 + n_cut], total[1 + n_classes:1 + n_classes + n_cut],
            total[1 + 2 * n_classes:1 + 2 * n_classes + n_cut - 1])


def class_probabilities(const double[:, ::1] mean, const double[:, ::1] var,
                        const double[:, ::1] cut, double[:, ::1] out, int n_threads):
    """out[r, c]: the mean over the S kept samples s of P(class c) for a latent rating
    N(mean[r, s], 1 + var[r, s]) (var: the spread of unknown rows' priors, 0 for known
    ones), cut[s] the sample's C - 1 cut points. Rows in parallel."""
    cdef int64_t n = mean.shape[0], S = mean.shape[1], n_cut = cut.shape[1], r, s, c
    cdef double sd, lower, upper
    if var.shape[0] != n or var.shape[1] != S or cut.shape[0] != S or \
            out.shape[0] != n or out.shape[1] != n_cut + 1:
        raise ValueError(f"mean ({n}, {S}), var ({var.shape[0]}, {var.shape[1]}), cut "
                         f"({cut.shape[0]}, {n_cut}) and out ({out.shape[0]}, "
                         f"{out.shape[1]}) disagree")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    for r in prange(n, nogil=True, num_threads=n_threads, schedule="static"):
        for c in range(n_cut + 1):
            out[r, c] = 0.0
        for s in range(S):
            sd = sqrt(1.0 + var[r, s])
            lower = 0.0
            for c in range(n_cut):
                upper = mf_ndtr((cut[s, c] - mean[r, s]) / sd)
                out[r, c] += upper - lower
                lower = upper
            out[r, n_cut] += 1.0 - lower
        for c in range(n_cut + 1):
            out[r, c] /= S
