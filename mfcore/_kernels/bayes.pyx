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
from cython.parallel cimport prange, threadid
from libc.math cimport sqrt
from libc.stdint cimport int32_t, int64_t, uint64_t

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
    double mf_normal(uint64_t seed, uint64_t stream, uint64_t sweep, uint64_t row,
                     uint64_t coord, uint64_t draw)
    double mf_gamma(double shape, uint64_t seed, uint64_t stream, uint64_t sweep,
                    uint64_t row, uint64_t coord)
    void mf_normal_gamma(const double* x, int64_t n, int64_t stride, double mu_0,
                         double gamma_0, double alpha_lambda, double beta_lambda,
                         uint64_t seed, uint64_t stream, uint64_t sweep, uint64_t coord,
                         double* mean_out, double* prec_out)
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


#: The streams (the second key word of every draw), by name.
STREAMS = {"noise": MF_STREAM_NOISE, "user_hyper": MF_STREAM_USER_HYPER,
           "item_hyper": MF_STREAM_ITEM_HYPER, "user": MF_STREAM_USER, "item": MF_STREAM_ITEM,
           "y_hyper": MF_STREAM_Y_HYPER, "z_hyper": MF_STREAM_Z_HYPER, "y": MF_STREAM_Y,
           "z": MF_STREAM_Z}

#: Ratings a task of the sum of squared residuals; the partial sums are combined in chunk
#: order, so the total does not depend on the thread count.
cdef enum:
    SSE_CHUNK = 4096


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


# --- one sweep --------------------------------------------------------------------------

cdef double[:, ::1] _matrix(arr, int64_t rows, int64_t cols, str name):
    """``arr`` as a C-contiguous float64 matrix of that shape, or ValueError naming it."""
    if arr is None:
        raise ValueError(f"{name} is needed with implicit terms")
    cdef double[:, ::1] view = arr
    if view.shape[0] != rows or view.shape[1] != cols:
        raise ValueError(f"{name} has shape ({view.shape[0]}, {view.shape[1]}), expected "
                         f"({rows}, {cols})")
    return view


cdef double[::1] _vector(arr, int64_t n, str name):
    """``arr`` as a contiguous float64 vector of length n, or ValueError naming it."""
    if arr is None:
        raise ValueError(f"{name} is needed with the other shifts")
    cdef double[::1] view = arr
    if view.shape[0] != n:
        raise ValueError(f"{name} has {view.shape[0]} entries, expected {n}")
    return view


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


def gibbs_sweep(const int64_t[::1] user_ptr, const int32_t[::1] user_items,
                const int64_t[::1] user_pos, const int64_t[::1] item_ptr,
                const int32_t[::1] item_users, const int64_t[::1] item_pos,
                double[::1] residual, double[::1] user_residual,
                double[:, ::1] user_factors, double[:, ::1] item_factors,
                double[::1] user_bias, double[::1] item_bias,
                double[:, ::1] user_hyper, double[:, ::1] item_hyper,
                uint64_t seed, uint64_t sweep, int n_threads,
                double alpha_0=1.0, double beta_0=1.0, double mu_0=0.0, double gamma_0=1.0,
                double alpha_lambda=1.0, double beta_lambda=1.0,
                implicit_user_ptr=None, implicit_user_items=None, implicit_item_ptr=None,
                implicit_item_users=None, y=None, z=None, ybar=None, zbar=None,
                user_effective=None, item_effective=None, y_hyper=None, z_hyper=None,
                user_bias_shift=None, item_bias_shift=None):
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
    ``residual`` (item-CSR order) holds the residuals before and after; ``user_residual``
    is overwritten. The layout must be valid (``check_layout``; only shapes and offsets are
    checked here). The global mean is the caller's: it is part of the residuals and not
    sampled.

    Implicit terms (SVD++ and its flipped side): the prediction's factor part becomes
    (p_u + ybar_u) . (q_i + zbar_i), ybar_u = |N(u)|^-1/2 sum_{j in N(u)} y_j and zbar_i =
    |N(i)|^-1/2 sum_{v in N(i)} z_v, the implicit pairs given in two CSR orders
    (``implicit_user_ptr``/``implicit_user_items``: N(u); ``implicit_item_ptr``/
    ``implicit_item_users``: N(i)). Pass ``y`` (n_items, k) for the user side, ``z``
    (n_users, k) for the item side, or both, with ``ybar``, ``zbar`` (zero for a side
    left out), ``user_effective`` = P + ybar and ``item_effective`` = Q + zbar (the
    residuals are those of the effective vectors), and ``y_hyper``/``z_hyper`` (2, k) of
    the sides drawn. Then 2. also draws the groups of each column of y and z; in 3. each
    user draws its effective vector, under the prior of p_u shifted by ybar_u (P follows
    as effective - ybar); then, the effective vectors fixed, y from the prior of the
    effective vectors alone (a linear regression per column: blocks of columns in parallel,
    the items of a column in order, ``mf_implicit_columns``); 4. and z likewise. The
    ratings see only the effective vectors, so the y and z draws touch no residual.
    Afterwards the effective vectors equal P + ybar and Q + zbar (ybar and zbar are kept
    as the draws move them, equal to the sums of y and z to rounding).

    Side features (``bayes_features``) add to the same shifts: ``ybar``/``zbar`` are then
    the whole additive terms of the factors (implicit plus features; given without ``y``
    and ``z`` when there are no implicit terms) and ``user_bias_shift``/
    ``item_bias_shift`` (n_users,)/(n_items,) those of the biases, whose arrays then hold
    the effective biases: a row's bias prior mean is shifted too, and the bias groups'
    hyperparameters are drawn from the biases less their shifts.
    """
    cdef int64_t n = residual.shape[0]
    cdef int64_t n_users = user_factors.shape[0], n_items = item_factors.shape[0]
    cdef int64_t k = user_factors.shape[1]
    if item_factors.shape[1] != k:
        raise ValueError(f"user and item factors differ in k: {k} and {item_factors.shape[1]}")
    if user_bias.shape[0] != n_users or item_bias.shape[0] != n_items:
        raise ValueError(f"biases of {user_bias.shape[0]} users and {item_bias.shape[0]} "
                         f"items for factors of {n_users} users and {n_items} items")
    for name, arr in (("user_hyper", user_hyper), ("item_hyper", item_hyper)):
        if arr.shape[0] != 2 or arr.shape[1] != k + 1:
            raise ValueError(f"{name} has shape ({arr.shape[0]}, {arr.shape[1]}), expected "
                             f"(2, {k + 1}) (mean and precision of the bias and k = {k} "
                             f"factor columns)")
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
    for name, value in (("alpha_0", alpha_0), ("beta_0", beta_0), ("gamma_0", gamma_0),
                        ("alpha_lambda", alpha_lambda), ("beta_lambda", beta_lambda)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")

    # the implicit state, when given: pointers stay NULL for a side left out
    cdef bint use_y = y is not None, use_z = z is not None
    cdef const int64_t[::1] iu_ptr, ii_ptr
    cdef const int32_t[::1] iu_items, ii_users
    cdef double[:, ::1] view
    cdef int64_t n_pairs = 0, pair
    cdef double* Y = NULL
    cdef double* Z = NULL
    cdef double* Yb = NULL
    cdef double* Zb = NULL
    cdef double* Pe = NULL
    cdef double* Qe = NULL
    cdef double* yh = NULL
    cdef double* zh = NULL
    cdef const int64_t* nu_ptr = NULL
    cdef const int64_t* ni_ptr = NULL
    cdef const int32_t* nu_items = NULL
    cdef const int32_t* ni_users = NULL
    if use_y or use_z:
        if (implicit_user_ptr is None or implicit_user_items is None
                or implicit_item_ptr is None or implicit_item_users is None):
            raise ValueError("implicit terms need implicit_user_ptr, implicit_user_items, "
                             "implicit_item_ptr and implicit_item_users")
        iu_ptr, iu_items = implicit_user_ptr, implicit_user_items
        ii_ptr, ii_users = implicit_item_ptr, implicit_item_users
        n_pairs = iu_items.shape[0]
        if ii_users.shape[0] != n_pairs:
            raise ValueError(f"implicit_user_items and implicit_item_users differ in length: "
                             f"{n_pairs} and {ii_users.shape[0]}")
        _check_ptr(iu_ptr, n_users, n_pairs, "implicit_user_ptr")
        _check_ptr(ii_ptr, n_items, n_pairs, "implicit_item_ptr")
        nu_ptr, ni_ptr = &iu_ptr[0], &ii_ptr[0]
        for pair in range(n_pairs):
            if not (0 <= iu_items[pair] < n_items and 0 <= ii_users[pair] < n_users):
                raise ValueError(f"implicit pair {pair}: item {iu_items[pair]} or user "
                                 f"{ii_users[pair]} outside 0..{n_items - 1} / 0..{n_users - 1}")
        if n_pairs > 0:
            nu_items, ni_users = &iu_items[0], &ii_users[0]
    if use_y or use_z or user_effective is not None:
        for name, arr, rows in (("ybar", ybar, n_users), ("zbar", zbar, n_items),
                                ("user_effective", user_effective, n_users),
                                ("item_effective", item_effective, n_items)):
            _matrix(arr, rows, k, name)
        if k > 0:
            view = ybar
            Yb = &view[0, 0] if n_users > 0 else NULL
            view = zbar
            Zb = &view[0, 0] if n_items > 0 else NULL
            view = user_effective
            Pe = &view[0, 0] if n_users > 0 else NULL
            view = item_effective
            Qe = &view[0, 0] if n_items > 0 else NULL
    if use_y and k > 0:
        view = _matrix(y, n_items, k, "y")
        Y = &view[0, 0] if n_items > 0 else NULL
        view = _matrix(y_hyper, 2, k, "y_hyper")
        yh = &view[0, 0]
    if use_z and k > 0:
        view = _matrix(z, n_users, k, "z")
        Z = &view[0, 0] if n_users > 0 else NULL
        view = _matrix(z_hyper, 2, k, "z_hyper")
        zh = &view[0, 0]

    # 1. and 2. in one parallel loop: the sum of squared residuals in fixed chunks (tasks
    # 0 .. n_chunks - 1), and each group's hyperparameters (one task a group, summed in row
    # order); then alpha from the chunk sums, added in chunk order
    cdef int64_t n_chunks = (n + SSE_CHUNK - 1) // SSE_CHUNK, task, t, lo, hi, c
    cdef int64_t n_groups = 2 * (k + 1) + (k if Y != NULL else 0) + (k if Z != NULL else 0)
    cdef double[::1] partial = np.zeros(max(n_chunks, 1), dtype=np.float64)
    cdef double sse = 0.0, acc
    cdef double* P = &user_factors[0, 0] if n_users * k > 0 else NULL
    cdef double* Q = &item_factors[0, 0] if n_items * k > 0 else NULL
    cdef double* bu = &user_bias[0] if n_users > 0 else NULL
    cdef double* bi = &item_bias[0] if n_items > 0 else NULL
    # with bias shifts (side features) the arrays hold the effective biases; the groups are
    # drawn from the biases less their shifts (hbu, hbi)
    cdef double* bsu = NULL
    cdef double* bsi = NULL
    cdef double* hbu = bu
    cdef double* hbi = bi
    cdef double[::1] su_view, si_view, own_u, own_i
    if user_bias_shift is not None or item_bias_shift is not None:
        if user_effective is None:
            raise ValueError("bias shifts need the effective factors and shifts (ybar, zbar, "
                             "user_effective, item_effective)")
        su_view = _vector(user_bias_shift, n_users, "user_bias_shift")
        si_view = _vector(item_bias_shift, n_items, "item_bias_shift")
        own_u = np.subtract(user_bias, user_bias_shift)
        own_i = np.subtract(item_bias, item_bias_shift)
        if n_users > 0:
            bsu, hbu = &su_view[0], &own_u[0]
        if n_items > 0:
            bsi, hbi = &si_view[0], &own_i[0]
    cdef double* e = &residual[0] if n > 0 else NULL
    cdef double* ew = &user_residual[0] if n > 0 else NULL
    cdef const int32_t* ui = &user_items[0] if n > 0 else NULL
    cdef const int32_t* iu = &item_users[0] if n > 0 else NULL
    # the other side's factors as the rows see them: the effective ones with implicit terms
    cdef double* Q_seen = Qe if Qe != NULL else Q
    cdef double* P_seen = Pe if Pe != NULL else P
    for task in prange(n_chunks + n_groups, nogil=True, num_threads=n_threads,
                       schedule="dynamic"):
        if task < n_chunks:
            lo = task * SSE_CHUNK
            hi = min(lo + SSE_CHUNK, n)
            acc = 0.0
            for t in range(lo, hi):
                acc = acc + e[t] * e[t]
            partial[task] = acc
        elif task - n_chunks <= k:
            c = task - n_chunks
            mf_normal_gamma(hbu if c == 0 else P + (c - 1), n_users, 1 if c == 0 else k,
                            mu_0, gamma_0, alpha_lambda, beta_lambda, seed,
                            MF_STREAM_USER_HYPER, sweep, c, &user_hyper[0, c],
                            &user_hyper[1, c])
        elif task - n_chunks <= 2 * k + 1:
            c = task - n_chunks - k - 1
            mf_normal_gamma(hbi if c == 0 else Q + (c - 1), n_items, 1 if c == 0 else k,
                            mu_0, gamma_0, alpha_lambda, beta_lambda, seed,
                            MF_STREAM_ITEM_HYPER, sweep, c, &item_hyper[0, c],
                            &item_hyper[1, c])
        elif Y != NULL and task - n_chunks < 3 * k + 2:
            c = task - n_chunks - 2 * k - 2
            mf_normal_gamma(Y + c, n_items, k, mu_0, gamma_0, alpha_lambda, beta_lambda,
                            seed, MF_STREAM_Y_HYPER, sweep, c, yh + c, yh + k + c)
        else:
            c = task - n_chunks - 2 * k - 2 - (k if Y != NULL else 0)
            mf_normal_gamma(Z + c, n_users, k, mu_0, gamma_0, alpha_lambda, beta_lambda,
                            seed, MF_STREAM_Z_HYPER, sweep, c, zh + c, zh + k + c)
    for task in range(n_chunks):
        sse += partial[task]
    cdef double alpha = (mf_gamma(0.5 * (alpha_0 + n), seed, MF_STREAM_NOISE, sweep, 0, 0)
                         / (0.5 * (beta_0 + sse)))

    # 3. and 4. the two sides, rows in parallel, each thread with its own scratch; a row
    # first gathers its residuals from the other order into its own range. With implicit
    # terms a row draws its effective vector, under its prior shifted by its implicit term
    # (``means``), and each side's implicit columns follow, a column a task.
    cdef int64_t width = max(longest_user, longest_item) * k, r, m, start, f
    cdef double[:, ::1] scratch = np.empty((n_threads, max(width, 1)), dtype=np.float64)
    cdef bint shifted = Pe != NULL
    cdef double[:, ::1] means = np.empty((n_threads, k + 1), dtype=np.float64)
    cdef int64_t n_blocks = (k + MF_IMPLICIT_BLOCK - 1) // MF_IMPLICIT_BLOCK, blk
    cdef double[:, ::1] work = np.empty(
        (n_threads, (1 + MF_IMPLICIT_BLOCK) * (n_users + n_items) + 1 if shifted else 1),
        dtype=np.float64)
    cdef double[::1] user_scale = np.zeros(max(n_users, 1), dtype=np.float64)
    cdef double[::1] item_scale = np.zeros(max(n_items, 1), dtype=np.float64)
    cdef double[::1] user_weight = np.zeros(max(n_users, 1), dtype=np.float64)
    cdef double[::1] item_weight = np.zeros(max(n_items, 1), dtype=np.float64)
    cdef double* row_mean
    cdef double* w
    if nu_ptr != NULL:  # |N|^-1/2 of every row, and the sum of its members' squares (in order)
        for r in range(n_users):
            if nu_ptr[r + 1] > nu_ptr[r]:
                user_scale[r] = 1.0 / sqrt(<double>(nu_ptr[r + 1] - nu_ptr[r]))
        for r in range(n_items):
            if ni_ptr[r + 1] > ni_ptr[r]:
                item_scale[r] = 1.0 / sqrt(<double>(ni_ptr[r + 1] - ni_ptr[r]))
        for r in range(n_items):
            for t in range(ni_ptr[r], ni_ptr[r + 1]):
                item_weight[r] += user_scale[ni_users[t]] * user_scale[ni_users[t]]
        for r in range(n_users):
            for t in range(nu_ptr[r], nu_ptr[r + 1]):
                user_weight[r] += item_scale[nu_items[t]] * item_scale[nu_items[t]]
    for r in prange(n_users, nogil=True, num_threads=n_threads, schedule="dynamic",
                    chunksize=8):
        start = user_ptr[r]
        m = user_ptr[r + 1] - start
        for t in range(start, start + m):
            ew[t] = e[user_pos[t]]
        row_mean = &user_hyper[0, 0]
        w = P + r * k
        if shifted:
            row_mean = &means[threadid(), 0]
            row_mean[0] = user_hyper[0, 0] + (bsu[r] if bsu != NULL else 0.0)
            for f in range(k):
                row_mean[1 + f] = user_hyper[0, 1 + f] + Yb[r * k + f]
            w = Pe + r * k
        mf_gibbs_row(bu + r, w, ew + start, m, ui + start, Q_seen, k,
                     &scratch[threadid(), 0], row_mean, &user_hyper[1, 0], alpha,
                     seed, MF_STREAM_USER, sweep, r)
        if shifted:
            for f in range(k):
                P[r * k + f] = Pe[r * k + f] - Yb[r * k + f]
    if Y != NULL:  # the y columns, MF_IMPLICIT_BLOCK a task
        for blk in prange(n_blocks, nogil=True, num_threads=n_threads, schedule="dynamic"):
            f = blk * MF_IMPLICIT_BLOCK
            mf_implicit_columns(Y, n_items, k, f, min(MF_IMPLICIT_BLOCK, k - f), ni_ptr,
                                ni_users, &item_weight[0], n_users, &user_scale[0], Pe, Yb, P,
                                &user_hyper[0, 1], &user_hyper[1, 1], yh, yh + k,
                                &work[threadid(), 0], seed, MF_STREAM_Y, sweep)
    for r in prange(n_items, nogil=True, num_threads=n_threads, schedule="dynamic",
                    chunksize=8):
        start = item_ptr[r]
        m = item_ptr[r + 1] - start
        for t in range(start, start + m):
            e[t] = ew[item_pos[t]]
        row_mean = &item_hyper[0, 0]
        w = Q + r * k
        if shifted:
            row_mean = &means[threadid(), 0]
            row_mean[0] = item_hyper[0, 0] + (bsi[r] if bsi != NULL else 0.0)
            for f in range(k):
                row_mean[1 + f] = item_hyper[0, 1 + f] + Zb[r * k + f]
            w = Qe + r * k
        mf_gibbs_row(bi + r, w, e + start, m, iu + start, P_seen, k,
                     &scratch[threadid(), 0], row_mean, &item_hyper[1, 0], alpha,
                     seed, MF_STREAM_ITEM, sweep, r)
        if shifted:
            for f in range(k):
                Q[r * k + f] = Qe[r * k + f] - Zb[r * k + f]
    if Z != NULL:  # the z columns, MF_IMPLICIT_BLOCK a task
        for blk in prange(n_blocks, nogil=True, num_threads=n_threads, schedule="dynamic"):
            f = blk * MF_IMPLICIT_BLOCK
            mf_implicit_columns(Z, n_users, k, f, min(MF_IMPLICIT_BLOCK, k - f), nu_ptr,
                                nu_items, &user_weight[0], n_items, &item_scale[0], Qe, Zb, Q,
                                &item_hyper[0, 1], &item_hyper[1, 1], zh, zh + k,
                                &work[threadid(), 0], seed, MF_STREAM_Z, sweep)
    return alpha, sse


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
    cdef int64_t k = user_factors.shape[1], task, c
    if item_factors.shape[1] != k or user_bias.shape[0] != n_users or \
            item_bias.shape[0] != n_items:
        raise ValueError("factor and bias shapes disagree")
    for name, arr in (("user_hyper", user_hyper), ("item_hyper", item_hyper)):
        if arr.shape[0] != 2 or arr.shape[1] != k + 1:
            raise ValueError(f"{name} has shape ({arr.shape[0]}, {arr.shape[1]}), expected "
                             f"(2, {k + 1})")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    cdef double* P = &user_factors[0, 0] if n_users * k > 0 else NULL
    cdef double* Q = &item_factors[0, 0] if n_items * k > 0 else NULL
    cdef double* bu = &user_bias[0] if n_users > 0 else NULL
    cdef double* bi = &item_bias[0] if n_items > 0 else NULL
    for task in prange(2 * (k + 1), nogil=True, num_threads=n_threads, schedule="dynamic"):
        if task <= k:
            c = task
            mf_normal_gamma(bu if c == 0 else P + (c - 1), n_users, 1 if c == 0 else k,
                            mu_0, gamma_0, alpha_lambda, beta_lambda, seed,
                            MF_STREAM_USER_HYPER, sweep, c, &user_hyper[0, c],
                            &user_hyper[1, c])
        else:
            c = task - k - 1
            mf_normal_gamma(bi if c == 0 else Q + (c - 1), n_items, 1 if c == 0 else k,
                            mu_0, gamma_0, alpha_lambda, beta_lambda, seed,
                            MF_STREAM_ITEM_HYPER, sweep, c, &item_hyper[0, c],
                            &item_hyper[1, c])
    return (mf_gamma(0.5 * (alpha_0 + n), seed, MF_STREAM_NOISE, sweep, 0, 0)
            / (0.5 * (beta_0 + sse)))


def gibbs_rows(const int64_t[::1] ptr, const int32_t[::1] cols, double[::1] residual,
               double[:, ::1] factors, double[::1] bias, const double[:, ::1] other_factors,
               const double[:, ::1] hyper, double alpha, uint64_t seed, str side,
               uint64_t sweep, int64_t first_row, int n_threads):
    """Step 3 (``side`` "user") or 4 ("item") of ``gibbs_sweep`` on the rows ``first_row``
    onwards of one side: row r (``factors[r]``, ``bias[r]``) has the residuals
    ``residual[ptr[r]:ptr[r + 1]]`` (already in this side's order) of the other side's
    rows ``cols[...]``, and draws with the counter of row ``first_row + r``; the same
    draws as the sweep's, so a band of rows gives the sweep's values bit for bit."""
    cdef int64_t n_rows = ptr.shape[0] - 1, k = factors.shape[1], r, start, m, longest = 0
    if side not in ("user", "item"):
        raise ValueError(f"side must be 'user' or 'item', got {side!r}")
    cdef uint64_t stream = MF_STREAM_USER if side == "user" else MF_STREAM_ITEM
    if factors.shape[0] != n_rows or bias.shape[0] != n_rows:
        raise ValueError(f"{factors.shape[0]} factor rows and {bias.shape[0]} biases for "
                         f"{n_rows} rows of ptr")
    if other_factors.shape[1] != k or hyper.shape[0] != 2 or hyper.shape[1] != k + 1:
        raise ValueError("other_factors or hyper do not match k")
    if cols.shape[0] != residual.shape[0] or ptr[n_rows] != residual.shape[0] or ptr[0] != 0:
        raise ValueError("ptr, cols and residual disagree")
    for r in range(n_rows):
        if ptr[r + 1] < ptr[r]:
            raise ValueError(f"ptr decreases at row {r}")
        longest = max(longest, ptr[r + 1] - ptr[r])
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if n_rows == 0:
        return
    cdef double[:, ::1] scratch = np.empty((n_threads, max(longest * k, 1)), dtype=np.float64)
    cdef double* e = &residual[0] if residual.shape[0] > 0 else NULL
    cdef const int32_t* oc = &cols[0] if cols.shape[0] > 0 else NULL
    cdef const double* other = &other_factors[0, 0] if other_factors.shape[0] * k > 0 else NULL
    cdef double* F = &factors[0, 0] if k > 0 else NULL
    for r in prange(n_rows, nogil=True, num_threads=n_threads, schedule="dynamic",
                    chunksize=8):
        start = ptr[r]
        m = ptr[r + 1] - start
        mf_gibbs_row(&bias[r], F + r * k, e + start, m, oc + start, other, k,
                     &scratch[threadid(), 0], &hyper[0, 0], &hyper[1, 0], alpha,
                     seed, stream, sweep, first_row + r)
