# cython: language_level=3
"""CSR layouts built a chunk of ratings at a time (a streamed fit: ``mfcore.data``).

``scatter_rows`` writes a chunk's (column, value) pairs (values: float32, float64 or
uint8 codes of ratings) at their rows' cursors, in input
order (the counting sort's second half; the rows' counts are known beforehand), and
``sort_rows`` then sorts each row by column, stably (pairs with equal columns keep their
order), rows in parallel, and counts the columns that repeat within a row (duplicate
ratings). The result does not depend on the chunks nor on the thread count.
"""
from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

cdef extern from "<stdlib.h>" nogil:
    void qsort(void* base, size_t n, size_t size, int (*compare)(const void*, const void*) noexcept nogil)

import numpy as np

cdef uint64_t LOW_HALF = 0xFFFFFFFF

ctypedef fused value_t:
    uint8_t
    float
    double


def scatter_rows(const int32_t[::1] rows, const int32_t[::1] cols, const value_t[::1] values,
                 int64_t[::1] cursor, int32_t[::1] out_cols, value_t[::1] out_values):
    """Write pair t at ``cursor[rows[t]]`` (advanced) of ``out_cols`` and, unless it is
    empty, ``out_values``; ``cursor`` starts at the rows' offsets (the CSR indptr) and is
    kept from chunk to chunk. Raises ``ValueError`` if a row is out of range or a row gets
    more pairs than ``out_cols`` has room for."""
    cdef int64_t n = rows.shape[0], t, slot, capacity = out_cols.shape[0]
    cdef int64_t n_rows = cursor.shape[0]
    cdef bint with_values = out_values.shape[0] > 0
    if cols.shape[0] != n or (with_values and values.shape[0] != n):
        raise ValueError("rows, cols and values differ in length")
    if with_values and out_values.shape[0] != capacity:
        raise ValueError("out_cols and out_values differ in length")
    for t in range(n):  # (checked first: the writes below have no bounds checks)
        if not 0 <= rows[t] < n_rows:
            raise ValueError(f"row {rows[t]} outside 0..{n_rows - 1}")
    cdef bint full = False
    with nogil:
        for t in range(n):
            slot = cursor[rows[t]]
            if slot >= capacity:
                full = True
                break
            cursor[rows[t]] = slot + 1
            out_cols[slot] = cols[t]
            if with_values:
                out_values[slot] = values[t]
    if full:
        raise ValueError("more pairs than the layout holds")


cdef int _compare(const void* a, const void* b) noexcept nogil:
    cdef uint64_t x = (<const uint64_t*> a)[0], y = (<const uint64_t*> b)[0]
    return (x > y) - (x < y)


cdef int64_t _sort_row(int32_t* cols, value_t* values, int64_t m, bint with_values,
                       uint64_t* keys, int32_t* cols_tmp, value_t* values_tmp) noexcept nogil:
    """Sort one row's pairs by column, stably; return how many columns repeat the one before."""
    cdef int64_t j, at, repeats = 0
    cdef bint ordered = True
    for j in range(1, m):
        if cols[j] < cols[j - 1]:
            ordered = False
            break
    if not ordered:
        for j in range(m):  # (column, position): distinct keys, so any sort is stable
            keys[j] = (<uint64_t> <uint32_t> cols[j] << 32) | <uint64_t> j
            cols_tmp[j] = cols[j]
            if with_values:
                values_tmp[j] = values[j]
        qsort(keys, m, sizeof(uint64_t), _compare)
        for j in range(m):
            at = <int64_t> (keys[j] & LOW_HALF)
            cols[j] = cols_tmp[at]
            if with_values:
                values[j] = values_tmp[at]
    for j in range(1, m):
        repeats += cols[j] == cols[j - 1]
    return repeats


def sort_rows(const int64_t[::1] indptr, int32_t[::1] cols, value_t[::1] values,
              int n_threads):
    """Sort each CSR row's columns (and, unless ``values`` is empty, their values) in
    place, stably, rows in parallel; return the number of pairs whose column repeats the
    one before it in its row (columns must be >= 0)."""
    cdef int64_t n_rows = indptr.shape[0] - 1, r, longest = 0, repeats = 0, width
    cdef bint with_values = values.shape[0] > 0
    if n_rows < 1:
        return 0
    if indptr[0] != 0 or indptr[n_rows] != cols.shape[0] or (
            with_values and values.shape[0] != cols.shape[0]):
        raise ValueError("indptr does not match the columns (or the values)")
    for r in range(n_rows):
        if indptr[r + 1] < indptr[r]:
            raise ValueError("indptr decreases")
        longest = max(longest, indptr[r + 1] - indptr[r])
    n_threads = max(n_threads, 1)
    width = longest + 1
    cdef uint64_t[:, ::1] keys = np.empty((n_threads, width), dtype=np.uint64)
    cdef int32_t[:, ::1] cols_tmp = np.empty((n_threads, width), dtype=np.int32)
    cdef value_t[:, ::1] values_tmp = np.empty((n_threads, width if with_values else 1),
                                                dtype=np.asarray(values).dtype)
    cdef value_t* row_values
    cdef int tid
    with nogil:
        for r in prange(n_rows, num_threads=n_threads, schedule="dynamic", chunksize=64):
            tid = threadid()
            row_values = &values[indptr[r]] if with_values else NULL
            repeats += _sort_row(&cols[indptr[r]], row_values, indptr[r + 1] - indptr[r],
                                 with_values, &keys[tid, 0], &cols_tmp[tid, 0],
                                 &values_tmp[tid, 0])
    return repeats
