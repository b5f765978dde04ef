# cython: language_level=3
"""Top-N kernel: the best ``n`` columns for each query vector, by partial selection.

Used for ``Model.recommend`` (queries = user factors, columns = candidate
items, score = item bias + dot product) and for ``similar_items`` /
``similar_users`` (unit-length factors, score = cosine). Queries run in
parallel over an OpenMP ``prange``; each thread scores a few queries against
a cache-sized block of columns at a time (``recommend_simd.h``) and keeps
each query's best ``n`` in a min-heap stored in that query's output row, so
memory is O(queries x n), never queries x columns.

Ranking: higher score first; equal scores by lower item index. Excluded
columns (per query, a sorted run of item indices) never enter the heap. A
query with fewer than ``n`` admissible columns gets its row padded with item
-1 and score NaN.
"""
import numpy as np

from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, NAN
from libc.stdint cimport int32_t, int64_t

ctypedef fused floating:
    float
    double


cdef extern from "recommend_simd.h" nogil:
    void mf_rec_scores_f32(const float *const *x, const float *packed, int64_t k,
                           int64_t start, int64_t length, const float *bias, float *const *out)
    void mf_rec_scores_f64(const double *const *x, const double *packed, int64_t k,
                           int64_t start, int64_t length, const double *bias, double *const *out)
    int MF_REC_PANEL

cdef enum:
    G_MAX = 4          # queries scored together (MF_REC_G)
    CHUNK = 64         # queries a thread takes at a time; they share each block of columns
    BLOCK = 512        # columns per block, a multiple of PANEL (k x BLOCK factors stay in L2)

PANEL = MF_REC_PANEL   # columns per packed panel (see pack_columns)
from .simd cimport mf_bind_path, path_cell


mf_bind_path(path_cell())  # run the SIMD path mfcore._kernels.simd selects


def pack_columns(factors):
    """(m, k) column factors -> (ceil(m / PANEL), k, PANEL) panels, zero-padded (see the header)."""
    m, k = factors.shape
    n_panels = -(-m // PANEL)
    padded = np.zeros((n_panels * PANEL, k), dtype=factors.dtype)
    padded[:m] = factors
    return np.ascontiguousarray(padded.reshape(n_panels, PANEL, k).transpose(0, 2, 1))


cdef inline bint _worse(floating s1, int32_t i1, floating s2, int32_t i2) noexcept nogil:
    """True if (s1, i1) ranks below (s2, i2): lower score, or equal score and higher index."""
    return s1 < s2 or (s1 == s2 and i1 > i2)


cdef inline void _sift_down(floating* hs, int32_t* hi, Py_ssize_t size,
                            Py_ssize_t pos) noexcept nogil:
    """Restore the min-heap (worst at the root) below ``pos``."""
    cdef Py_ssize_t child
    cdef floating s = hs[pos]
    cdef int32_t it = hi[pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and _worse(hs[child + 1], hi[child + 1], hs[child], hi[child]):
            child = child + 1
        if not _worse(hs[child], hi[child], s, it):
            break
        hs[pos] = hs[child]
        hi[pos] = hi[child]
        pos = child
    hs[pos] = s
    hi[pos] = it


cdef inline void _push(floating* hs, int32_t* hi, Py_ssize_t size, floating s,
                       int32_t it) noexcept nogil:
    """Add (s, it) at position ``size`` of a heap holding ``size`` entries and sift it up."""
    cdef Py_ssize_t pos = size, parent
    while pos > 0:
        parent = (pos - 1) // 2
        if not _worse(s, it, hs[parent], hi[parent]):
            break
        hs[pos] = hs[parent]
        hi[pos] = hi[parent]
        pos = parent
    hs[pos] = s
    hi[pos] = it


cdef inline void _finish(floating* hs, int32_t* hi, Py_ssize_t size, Py_ssize_t n,
                         floating offset) noexcept nogil:
    """Heap -> best-first order, add the query's offset, pad the rest with (-1, NaN)."""
    cdef Py_ssize_t end, j
    cdef floating s
    cdef int32_t it
    end = size - 1
    while end > 0:
        s = hs[0]
        it = hi[0]
        hs[0] = hs[end]
        hi[0] = hi[end]
        hs[end] = s
        hi[end] = it
        _sift_down(hs, hi, end, 0)
        end = end - 1
    for j in range(size):
        hs[j] = hs[j] + offset
    for j in range(size, n):
        hs[j] = NAN
        hi[j] = -1


cdef inline void _scores(const floating** x, const floating* packed, int64_t k, int64_t start,
                         int64_t length, const floating* bias, floating** out) noexcept nogil:
    if floating is float:
        mf_rec_scores_f32(x, packed, k, start, length, bias, out)
    else:
        mf_rec_scores_f64(x, packed, k, start, length, bias, out)


cdef inline Py_ssize_t _select(const floating* scores, int64_t length, const int32_t* items,
                               floating* hs, int32_t* hi, Py_ssize_t n, Py_ssize_t size,
                               int64_t* ep, int64_t end,
                               const int32_t[::1] excl_items) noexcept nogil:
    """Offer ``length`` scored columns to one query's heap; return the heap's new size.

    Scores below the heap's worst are dropped by one comparison (the common case).
    """
    cdef int64_t j, e = ep[0]
    cdef floating s
    cdef floating thr = -INFINITY if size < n else hs[0]
    cdef int32_t it
    for j in range(length):
        s = scores[j]
        if s < thr:
            continue
        it = items[j]
        if size == n and not _worse(hs[0], hi[0], s, it):
            continue
        while e < end and excl_items[e] < it:
            e = e + 1
        if e < end and excl_items[e] == it:
            continue
        if size < n:
            _push(hs, hi, size, s, it)
            size = size + 1
        else:
            hs[0] = s
            hi[0] = it
            _sift_down(hs, hi, n, 0)
        if size == n:
            thr = hs[0]
    ep[0] = e
    return size


cdef void _chunk(Py_ssize_t first, Py_ssize_t count,
                 const floating[:, ::1] queries, const floating[::1] offsets,
                 const floating[:, :, ::1] packed, const floating[::1] col_bias,
                 const int32_t[::1] col_items,
                 const int64_t[::1] excl_start, const int64_t[::1] excl_end,
                 const int32_t[::1] excl_items,
                 int32_t[:, ::1] out_items, floating[:, ::1] out_scores,
                 floating* buf) noexcept nogil:
    """Top-n of queries first..first+count-1 (count <= CHUNK) over every column.

    Column blocks form the outer loop so one block of factors serves the whole chunk.
    """
    cdef int64_t k = queries.shape[1]
    cdef int64_t m = col_items.shape[0]
    cdef Py_ssize_t n = out_items.shape[1]
    cdef const floating* x[G_MAX]
    cdef floating* out[G_MAX]
    cdef Py_ssize_t size[CHUNK]
    cdef int64_t ep[CHUNK]
    cdef int64_t start, length
    cdef Py_ssize_t q, g0, c
    cdef int g, G
    for c in range(count):
        size[c] = 0
        ep[c] = excl_start[first + c]
    for g in range(G_MAX):
        out[g] = buf + g * BLOCK
    start = 0
    while start < m:
        length = m - start
        if length > BLOCK:
            length = BLOCK
        g0 = 0
        while g0 < count:
            G = G_MAX
            if g0 + G > count:
                G = <int>(count - g0)
            for g in range(G_MAX):  # a short group repeats its first query: one code path
                x[g] = &queries[first + g0 + (g if g < G else 0), 0]
            _scores(x, &packed[0, 0, 0], k, start, length, &col_bias[0], out)
            for g in range(G):
                c = g0 + g
                q = first + c
                size[c] = _select(out[g], length, &col_items[start], &out_scores[q, 0],
                                  &out_items[q, 0], n, size[c], &ep[c], excl_end[q], excl_items)
            g0 = g0 + G
        start = start + length
    for c in range(count):
        _finish(&out_scores[first + c, 0], &out_items[first + c, 0], size[c], n,
                offsets[first + c])


def top_n(const floating[:, ::1] queries, const floating[::1] offsets,
          const floating[:, :, ::1] packed, const floating[::1] col_bias,
          const int32_t[::1] col_items,
          const int64_t[::1] excl_start, const int64_t[::1] excl_end,
          const int32_t[::1] excl_items,
          int32_t[:, ::1] out_items, floating[:, ::1] out_scores, int n_threads):
    """Fill ``out_items``/``out_scores`` (queries x n) with each query's best columns.

    Score of query q and column j: ``offsets[q] + col_bias[j] + queries[q] . factors[j]``
    with ``packed = pack_columns(factors)``. ``col_items`` (ascending) names each
    column's item index; the items ``excl_items[excl_start[q]:excl_end[q]]``
    (ascending) are skipped for query q. Rows come back best first, padded
    with (-1, NaN).
    """
    cdef Py_ssize_t n_queries = queries.shape[0]
    cdef Py_ssize_t m = col_items.shape[0]
    cdef Py_ssize_t n = out_items.shape[1]
    if not (offsets.shape[0] == excl_start.shape[0] == excl_end.shape[0] == n_queries
            == out_items.shape[0] == out_scores.shape[0]):
        raise ValueError("top_n: per-query arrays differ in length")
    if col_bias.shape[0] != m or out_scores.shape[1] != n:
        raise ValueError("top_n: per-column arrays differ in length")
    if (packed.shape[0] * PANEL < m or packed.shape[2] != PANEL
            or packed.shape[1] != queries.shape[1]):
        raise ValueError(f"top_n: packed columns of shape {(packed.shape[0], packed.shape[1], packed.shape[2])} "
                         f"do not fit {m} columns of k={queries.shape[1]} (use pack_columns)")
    if n_queries == 0 or n == 0:
        return
    if m == 0:
        np.asarray(out_items)[...] = -1
        np.asarray(out_scores)[...] = np.nan
        return
    cdef Py_ssize_t n_chunks = (n_queries + CHUNK - 1) // CHUNK
    n_threads = max(1, min(n_threads, n_chunks))
    cdef floating[:, ::1] bufs = np.empty((n_threads, G_MAX * BLOCK),
                                          dtype=np.float32 if floating is float else np.float64)
    cdef Py_ssize_t ch, first
    for ch in prange(n_chunks, nogil=True, num_threads=n_threads, schedule="dynamic"):
        first = ch * CHUNK
        _chunk(first, min(<Py_ssize_t>CHUNK, n_queries - first), queries, offsets, packed,
               col_bias, col_items, excl_start, excl_end, excl_items, out_items, out_scores,
               &bufs[threadid(), 0])
