# cython: language_level=3
"""The SGD kernels: one block-parallel epoch, the serial reference epoch, the record layout.

Every kernel takes C-contiguous typed memoryviews and scalars, runs without
the GIL over an OpenMP ``prange`` and returns what it measured. Validation,
id mapping, randomness and the epoch loop live in Python (``mfcore.estimators.sgd``).
Prediction and the squared error, which every estimator uses, are ``predict.pyx``'s.
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint64_t

import numpy as np

from .simd cimport mf_bind_path, path_cell

ctypedef fused floating:
    float
    double


cdef extern from "sgd_simd.h" nogil:
    ctypedef struct mf_rec32:
        int32_t u
        int32_t i
        float r
    ctypedef struct mf_rec64:
        int32_t u
        int32_t i
        double r
    int MF_RUN
    const int* mf_fixed_k
    int MF_N_FIXED_K
    int MF_LOOP_RUNTIME_K, MF_LOOP_FIXED_K, MF_LOOP_VECTORS
    int mf_block_variant(int64_t k, int f64)
    double mf_sgd_ordered_f32(const int32_t* users, const int32_t* items, const float* ratings,
                              const int64_t* order, int64_t n, float* P, float* Q,
                              float* bu, float* bi, int64_t k,
                              float mu, float lr, float reg, float regb)
    double mf_sgd_ordered_f64(const int32_t* users, const int32_t* items, const double* ratings,
                              const int64_t* order, int64_t n, double* P, double* Q,
                              double* bu, double* bi, int64_t k,
                              double mu, double lr, double reg, double regb)
    uint64_t mf_block_seed(uint64_t epoch_seed, int64_t block)
    uint64_t mf_below(uint64_t* s, uint64_t n)
    void mf_permutation(int32_t* out, int64_t n, uint64_t seed)
    double mf_sgd_epoch_f32(const mf_rec32* rec, const int64_t* block_ptr,
                            const int32_t* schedule, int grid, uint64_t seed, int shuffle,
                            int32_t* scratch, int64_t max_runs, float* P, float* Q,
                            float* bu, float* bi, int64_t k, float mu, float lr, float reg,
                            float regb, double* block_sse, int n_threads)
    double mf_sgd_epoch_f64(const mf_rec64* rec, const int64_t* block_ptr,
                            const int32_t* schedule, int grid, uint64_t seed, int shuffle,
                            int32_t* scratch, int64_t max_runs, double* P, double* Q,
                            double* bu, double* bi, int64_t k, double mu, double lr, double reg,
                            double regb, double* block_sse, int n_threads)


mf_bind_path(path_cell())  # run the SIMD path mfcore._kernels.simd selects


#: The k whose block kernel is a copy with k fixed at compile time (``MF_FIXED_K`` in
#: sgd_simd.h), on every path and for both dtypes.
SPECIALIZED_K = tuple(mf_fixed_k[j] for j in range(MF_N_FIXED_K))

_VARIANTS = {MF_LOOP_RUNTIME_K: "runtime_k", MF_LOOP_FIXED_K: "fixed_k",
             MF_LOOP_VECTORS: "vectors"}


def block_variant(int64_t k, dtype):
    """Which copy of the block loop ``sgd_blocks`` runs for ``k`` and ``dtype`` on the
    current SIMD path: ``"fixed_k"`` (a k of ``SPECIALIZED_K``), ``"vectors"`` (a copy per
    number of 64-byte vectors a row, AVX-512 only) or ``"runtime_k"``."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return _VARIANTS[mf_block_variant(k, dtype == np.float64)]


# --- SGD ------------------------------------------------------------------------

def sgd_epoch(const int32_t[::1] users, const int32_t[::1] items,
              const floating[::1] ratings, const int64_t[::1] order,
              floating[:, ::1] user_factors, floating[:, ::1] item_factors,
              floating[::1] user_bias, floating[::1] item_bias,
              double global_mean, double lr, double reg, double reg_bias):
    """One serial pass of SGD over ``ratings[order]``, updating parameters in place.

    The reference path (training uses ``sgd_blocks``). Returns the sum of squared errors
    measured before each update. Indices must be valid rows (not checked).
    """
    cdef Py_ssize_t n = order.shape[0]
    cdef int64_t k = user_factors.shape[1]
    cdef double sse
    if n == 0:
        return 0.0
    with nogil:
        if floating is float:
            sse = mf_sgd_ordered_f32(&users[0], &items[0], &ratings[0], &order[0], n,
                                     &user_factors[0, 0], &item_factors[0, 0],
                                     &user_bias[0], &item_bias[0], k, <float>global_mean,
                                     <float>lr, <float>reg, <float>reg_bias)
        else:
            sse = mf_sgd_ordered_f64(&users[0], &items[0], &ratings[0], &order[0], n,
                                     &user_factors[0, 0], &item_factors[0, 0],
                                     &user_bias[0], &item_bias[0], k, global_mean,
                                     lr, reg, reg_bias)
    return sse


def sgd_blocks(const unsigned char[::1] records, const int64_t[::1] block_ptr,
               const int32_t[::1] schedule, int grid, uint64_t seed, bint shuffle,
               int32_t[::1] scratch,
               floating[:, ::1] user_factors, floating[:, ::1] item_factors,
               floating[::1] user_bias, floating[::1] item_bias,
               double global_mean, double lr, double reg, double reg_bias,
               double[::1] block_sse, int n_threads):
    """One epoch of conflict-free block-parallel SGD; returns the sum of squared errors.

    ``records`` holds the ratings as packed (u, i, r) records (``mf_rec32``
    for float32 models, ``mf_rec64`` for float64), grouped by block: block
    ``b`` is records ``block_ptr[b]`` to ``block_ptr[b + 1]``. The epoch runs
    ``grid`` rounds; round ``s`` trains the ``grid`` blocks
    ``schedule[s * grid:(s + 1) * grid]``, which must share no user and no
    item, so threads take them in any order without touching the same
    parameters. Block ``b`` is visited in runs of ``VISIT_RUN`` consecutive
    records, taken in the order ``block_permutation(n_runs, seed, b)`` (as
    stored if not ``shuffle``), built in ``scratch`` (``n_threads`` times the
    most runs of a block, see ``scratch_size``). The records
    are not modified, and nothing depends on which thread trains which block,
    so the result does not depend on ``n_threads``. Per-block errors land in
    ``block_sse`` and are summed in block order. Record indices must be valid
    rows of the parameter arrays (``SGDTrainer`` checks them).
    """
    cdef Py_ssize_t n_blocks = block_ptr.shape[0] - 1
    cdef int64_t k = user_factors.shape[1]
    cdef Py_ssize_t rec_size = sizeof(mf_rec32) if floating is float else sizeof(mf_rec64)
    cdef int64_t max_block = 0
    cdef Py_ssize_t b
    if grid < 1 or n_blocks != <Py_ssize_t>grid * grid or schedule.shape[0] != n_blocks:
        raise ValueError(f"grid={grid} does not match {n_blocks} blocks and a schedule of "
                         f"{schedule.shape[0]}")
    if block_sse.shape[0] != n_blocks:
        raise ValueError(f"block_sse has {block_sse.shape[0]} entries for {n_blocks} blocks")
    if records.shape[0] != block_ptr[n_blocks] * rec_size:
        raise ValueError(f"records hold {records.shape[0]} bytes, expected "
                         f"{block_ptr[n_blocks]} records of {rec_size} bytes")
    for b in range(n_blocks):
        if block_ptr[b + 1] < block_ptr[b] or block_ptr[b] < 0:
            raise ValueError(f"block_ptr must be non-decreasing from 0, got {block_ptr[b]} "
                             f"then {block_ptr[b + 1]} at block {b}")
        max_block = max(max_block, block_ptr[b + 1] - block_ptr[b])
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if max_block >= 2**31:
        raise ValueError(f"a block of {max_block} ratings is too large (int32 positions)")
    cdef int64_t max_runs = (max_block + MF_RUN - 1) // MF_RUN
    if shuffle and scratch.shape[0] < n_threads * max_runs:
        raise ValueError(f"scratch holds {scratch.shape[0]} entries, need {n_threads} threads "
                         f"x {max_runs} (runs of the largest block)")
    _check_schedule(schedule, grid)
    if block_ptr[n_blocks] == 0:
        return 0.0
    cdef int32_t* scratch_ptr = &scratch[0] if scratch.shape[0] > 0 else NULL
    cdef double sse
    with nogil:
        if floating is float:
            sse = mf_sgd_epoch_f32(<const mf_rec32*>&records[0], &block_ptr[0], &schedule[0],
                                   grid, seed, shuffle, scratch_ptr, max_runs,
                                   &user_factors[0, 0], &item_factors[0, 0],
                                   &user_bias[0], &item_bias[0], k, <float>global_mean,
                                   <float>lr, <float>reg, <float>reg_bias, &block_sse[0],
                                   n_threads)
        else:
            sse = mf_sgd_epoch_f64(<const mf_rec64*>&records[0], &block_ptr[0], &schedule[0],
                                   grid, seed, shuffle, scratch_ptr, max_runs,
                                   &user_factors[0, 0], &item_factors[0, 0],
                                   &user_bias[0], &item_bias[0], k, global_mean,
                                   lr, reg, reg_bias, &block_sse[0], n_threads)
    if sse < 0:
        raise MemoryError("could not allocate the epoch's block counters")
    return sse


VISIT_RUN = MF_RUN


def scratch_size(max_block, n_threads):
    """Entries of the ``scratch`` array ``sgd_blocks`` needs (int32)."""
    return n_threads * ((max_block + MF_RUN - 1) // MF_RUN)


def block_permutation(int64_t n, uint64_t seed, int64_t block):
    """The order in which ``sgd_blocks`` visits the ``n`` runs of block ``block``."""
    out = np.empty(n, dtype=np.int32)
    cdef int32_t[::1] view = out
    if n > 0:
        mf_permutation(&view[0], n, mf_block_seed(seed, block))
    return out


cdef _check_schedule(const int32_t[::1] schedule, int grid):
    """Raise unless each round of ``schedule`` holds blocks sharing no row and no column
    (typed loops: ``mfcore.dask`` checks a schedule each round of an epoch)."""
    cdef Py_ssize_t n = <Py_ssize_t>grid * grid, s, j
    cdef int32_t b
    seen = np.zeros(n, dtype=np.uint8)
    row_round = np.full(grid, -1, dtype=np.int64)  # the last round that used each row
    col_round = np.full(grid, -1, dtype=np.int64)
    cdef unsigned char[::1] seen_v = seen
    cdef int64_t[::1] rows = row_round
    cdef int64_t[::1] cols = col_round
    for s in range(grid):
        for j in range(grid):
            b = schedule[s * grid + j]
            if b < 0 or b >= n or seen_v[b]:
                raise ValueError(f"schedule entry {b} (round {s}) is out of range or repeated")
            seen_v[b] = 1
            if rows[b // grid] == s or cols[b % grid] == s:
                raise ValueError(f"round {s} of the schedule has two blocks in one row or column")
            rows[b // grid] = s
            cols[b % grid] = s


def layout_records(const int32_t[::1] block, const int32_t[::1] users,
                   const int32_t[::1] items, const floating[::1] ratings,
                   const int64_t[::1] block_ptr, unsigned char[::1] records,
                   uint64_t seed, int n_threads):
    """Pack the ratings into records grouped by block (block b fills
    ``block_ptr[b]:block_ptr[b + 1]``), in a random order within each block drawn
    from ``seed`` and the block id alone (so the layout does not depend on the
    thread count). A counting sort (sequential reads, ``scatter_records``) and then an
    in-cache Fisher-Yates shuffle of each block, blocks in parallel (``shuffle_blocks``)."""
    cdef size_t size = sizeof(mf_rec32) if floating is float else sizeof(mf_rec64)
    if records.shape[0] != block.shape[0] * <int64_t>size:
        raise ValueError(f"records hold {records.shape[0]} bytes, expected {block.shape[0] * size}")
    scatter_records(block, users, items, ratings, np.array(block_ptr[:-1], dtype=np.int64),
                    records)
    shuffle_blocks(block_ptr, records, size, seed, n_threads)


def scatter_records(const int32_t[::1] block, const int32_t[::1] users,
                    const int32_t[::1] items, const floating[::1] ratings,
                    int64_t[::1] cursor, unsigned char[::1] records):
    """Write each rating as a record at its block's ``cursor`` (advanced), in input order:
    ``layout_records``' counting sort, which a streamed layout runs a chunk at a time
    (``cursor`` starts at the blocks' offsets and is kept from chunk to chunk)."""
    cdef int64_t n = block.shape[0], t, slot, b
    cdef size_t size = sizeof(mf_rec32) if floating is float else sizeof(mf_rec64)
    cdef int64_t capacity = records.shape[0] // <int64_t>size
    if n == 0:
        return
    cdef mf_rec32* rec32 = <mf_rec32*> &records[0]
    cdef mf_rec64* rec64 = <mf_rec64*> &records[0]
    for t in range(n):  # (checked first: the writes below have no bounds checks)
        if not 0 <= block[t] < cursor.shape[0]:
            raise ValueError(f"block id {block[t]} outside 0..{cursor.shape[0] - 1}")
    with nogil:
        for t in range(n):
            b = block[t]
            slot = cursor[b]
            if slot >= capacity:
                break
            cursor[b] = slot + 1
            if floating is float:
                rec32[slot].u = users[t]
                rec32[slot].i = items[t]
                rec32[slot].r = ratings[t]
            else:
                rec64[slot].u = users[t]
                rec64[slot].i = items[t]
                rec64[slot].r = ratings[t]
    if t < n and slot >= capacity:
        raise ValueError("more records than the layout holds")


def shuffle_blocks(const int64_t[::1] block_ptr, unsigned char[::1] records, size_t size,
                   uint64_t seed, int n_threads):
    """Shuffle each block's records (``size`` bytes each) in place, Fisher-Yates with a
    stream drawn from ``seed`` and the block id alone; blocks in parallel."""
    cdef int64_t n_blocks = block_ptr.shape[0] - 1, b, m, j
    if records.shape[0] == 0 or n_blocks < 1:
        return
    if block_ptr[n_blocks] * <int64_t>size > records.shape[0]:
        raise ValueError("block offsets beyond the records")
    cdef mf_rec32* rec32 = <mf_rec32*> &records[0]
    cdef mf_rec64* rec64 = <mf_rec64*> &records[0]
    cdef mf_rec32 tmp32
    cdef mf_rec64 tmp64
    cdef uint64_t state
    cdef bint single = size == sizeof(mf_rec32)
    if not single and size != sizeof(mf_rec64):
        raise ValueError(f"a record has {sizeof(mf_rec32)} or {sizeof(mf_rec64)} bytes, not {size}")
    with nogil:
        for b in prange(n_blocks, num_threads=n_threads, schedule="dynamic"):
            state = mf_block_seed(seed, b)
            m = block_ptr[b + 1] - block_ptr[b]
            while m > 1:
                j = block_ptr[b] + <int64_t>mf_below(&state, m)
                m = m - 1
                if single:
                    tmp32 = rec32[block_ptr[b] + m]
                    rec32[block_ptr[b] + m] = rec32[j]
                    rec32[j] = tmp32
                else:
                    tmp64 = rec64[block_ptr[b] + m]
                    rec64[block_ptr[b] + m] = rec64[j]
                    rec64[j] = tmp64


def record_size(dtype):
    """Bytes of one packed training record for a float32 or float64 model."""
    return sizeof(mf_rec32) if dtype == "float32" else sizeof(mf_rec64)
