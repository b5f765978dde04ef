/* The SGD hot loop, compiled once per instruction set and chosen at run time.
 *
 * The kernels are written once, in sgd_body.h, with GCC/Clang vector extensions, and
 * compiled for float and double on each path: vectors of the path's register width (16,
 * 32 or 64 bytes) and __attribute__((target(...))), so the compiler emits SSE2, AVX2+FMA
 * or AVX-512 code for them. mf_k() is the dispatch table of the path selected in
 * simd_dispatch.h (one the CPU and OS support), like NumPy's dispatch; the default build
 * never needs -march=native. The paths compute the same thing; they differ in the last bits only
 * (dot products summed in a different lane order, FMA contraction on AVX2/AVX-512).
 * Within one path the results are exact and do not depend on the thread count.
 *
 * Update rule for one rating (u, i, r), e = r - (mu + b_u + b_i + p_u . q_i):
 *   b_u += lr (e - reg_bias b_u);  b_i += lr (e - reg_bias b_i)
 *   p_u += lr (e q_i - reg p_u);   q_i += lr (e p_u(old) - reg q_i)
 *
 * A block's ratings are visited through an mf_cursor, which also runs MF_AHEAD ratings
 * ahead to prefetch their rows (they are mostly in L3 or DRAM, not L2); for rows too long
 * to stay in registers the loop is software-pipelined (sgd_body.h's mf_block_pipelined).
 *
 * Layout: this file (records, random numbers, the cursor, the dispatch table and the parallel
 * epoch's scheduling), sgd_body.h (the kernels of one type on one path; its dot product is
 * dot_body.h's, shared with the prediction kernel, predict_simd.h) and sgd_epoch_body.h
 * (the parallel epoch of one type). The vector types are mf_common.h's.
 */
#ifndef MFCORE_SGD_SIMD_H
#define MFCORE_SGD_SIMD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mf_common.h"
#include "simd_dispatch.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <sched.h>
#define MF_YIELD() sched_yield()
#else
#define MF_YIELD()
#endif

/* One training rating as stored by SGDTrainer (numpy dtypes REC32/REC64). */
typedef struct { int32_t u; int32_t i; float r; } mf_rec32;
typedef struct { int32_t u; int32_t i; double r; } mf_rec64;

/* Records are visited in runs of this many consecutive ones (see mf_block_loop). */
#define MF_RUN 16

/* The k that have a copy of the block loop of their own, with k known at compile time:
 * faster than the runtime-k loop, the same updates up to rounding. The one list of them:
 * the switches in mf_block and mf_block_variant (sgd_body.h) and the array mf_fixed_k
 * (Python: mfcore.simd.specialized_k()) expand it, one X(k) a k. */
#define MF_FIXED_K(X) X(8) X(10) X(16) X(20) X(32) X(50) X(64) X(100) X(128) X(200) X(256)

#define MF_K_ENTRY(K) K,
static const int mf_fixed_k[] = { MF_FIXED_K(MF_K_ENTRY) };
#undef MF_K_ENTRY
enum { MF_N_FIXED_K = sizeof mf_fixed_k / sizeof mf_fixed_k[0] };

/* Which copy of the block loop a k takes (mf_block_variant_*). */
enum { MF_LOOP_RUNTIME_K = 0, MF_LOOP_FIXED_K = 1, MF_LOOP_VECTORS = 2 };

/* --- a small, fast PRNG for the in-block shuffle (seeded from numpy's Generator) --- */

static inline uint64_t mf_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A number in [0, n) for n < 2^32 (multiply-shift; bias below 2^-32 * n). */
static inline uint64_t mf_below(uint64_t *s, uint64_t n)
{
    return ((mf_splitmix64(s) >> 32) * n) >> 32;
}

/* Seed of one block in one epoch: a function of the epoch seed and the block id only. */
static inline uint64_t mf_block_seed(uint64_t epoch_seed, int64_t block)
{
    uint64_t s = epoch_seed ^ ((uint64_t)block * 0xD1B54A32D192ED03ULL);
    return mf_splitmix64(&s);
}

/* A uniformly random permutation of 0..n-1 (Fisher-Yates) from `seed`, into out. */
static void mf_permutation(int32_t *out, int64_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t t = 0; t < n; t++)
        out[t] = (int32_t)t;
    for (int64_t t = 0; t + 1 < n; t++) {
        int64_t j = t + (int64_t)mf_below(&s, (uint64_t)(n - t));
        int32_t tmp = out[t];
        out[t] = out[j];
        out[j] = tmp;
    }
}

/* A position in a block's visiting order (runs of MF_RUN records in the order `runs`, or
 * the records as stored when runs is NULL): record t, in the run-th run, which ends
 * before record hi; t = -1 past the last record. */
typedef struct { int64_t t, hi, run; } mf_cursor;

static inline void mf_cursor_at_run(mf_cursor *c, const int32_t *runs, int64_t n)
{
    c->t = runs ? (int64_t)runs[c->run] * MF_RUN : 0;
    c->hi = runs && c->t + MF_RUN < n ? c->t + MF_RUN : n;
}

/* The first record of a block of n > 0 records. */
static inline void mf_cursor_start(mf_cursor *c, const int32_t *runs, int64_t n)
{
    c->run = 0;
    mf_cursor_at_run(c, runs, n);
}

/* Move to the next record; returns 0 (and sets t = -1) past the last one. */
static inline int mf_cursor_next(mf_cursor *c, const int32_t *runs, int64_t n)
{
    if (c->t < 0)
        return 0;
    if (++c->t < c->hi)
        return 1;
    if (!runs || ++c->run >= (n + MF_RUN - 1) / MF_RUN) {
        c->t = -1;
        return 0;
    }
    mf_cursor_at_run(c, runs, n);
    return 1;
}

/* Records of a block are prefetched this many ahead of their update (sgd_body.h). */
#ifndef MF_AHEAD
#define MF_AHEAD 8
#endif

/* --- the kernels: sgd_body.h for each value type on each path (simd_paths.h). Vectors of
 * each path's register width: 64 bytes for AVX-512, 32 for AVX2, 16 for the baseline
 * (SSE2, NEON). (A 64-byte vector everywhere would give all paths the same summation
 * order, but GCC lowers over-wide vectors through the stack.) --- */

typedef mf_rec32 mf_rec_float; /* the record of each value type (sgd_body.h's REC) */
typedef mf_rec64 mf_rec_double;
#define MF_BODY "sgd_body.h"
#include "simd_paths.h"
#undef MF_BODY

/* --- the dispatch table --- */

typedef double (*mf_block_fn_f32)(const mf_rec32 *, const int32_t *, int64_t, float *, float *,
                                  float *, float *, int64_t, float, float, float, float);
typedef double (*mf_block_fn_f64)(const mf_rec64 *, const int32_t *, int64_t, double *,
                                  double *, double *, double *, int64_t,
                                  double, double, double, double);
typedef double (*mf_ordered_fn_f32)(const int32_t *, const int32_t *, const float *,
                                    const int64_t *, int64_t, float *, float *, float *,
                                    float *, int64_t, float, float, float, float);
typedef double (*mf_ordered_fn_f64)(const int32_t *, const int32_t *, const double *,
                                    const int64_t *, int64_t, double *, double *, double *,
                                    double *, int64_t, double, double, double, double);
typedef struct {
    mf_block_fn_f32 block_f32;
    mf_block_fn_f64 block_f64;
    mf_ordered_fn_f32 ordered_f32;
    mf_ordered_fn_f64 ordered_f64;
    int (*variant_f32)(int64_t k);
    int (*variant_f64)(int64_t k);
} mf_kernels;

static const mf_kernels mf_table_baseline = {
    mf_block_f32_baseline, mf_block_f64_baseline,
    mf_ordered_f32_baseline, mf_ordered_f64_baseline,
    mf_block_variant_f32_baseline, mf_block_variant_f64_baseline,
};
#if MF_X86_DISPATCH
static const mf_kernels mf_table_avx2 = {
    mf_block_f32_avx2, mf_block_f64_avx2,
    mf_ordered_f32_avx2, mf_ordered_f64_avx2,
    mf_block_variant_f32_avx2, mf_block_variant_f64_avx2,
};
static const mf_kernels mf_table_avx512 = {
    mf_block_f32_avx512, mf_block_f64_avx512,
    mf_ordered_f32_avx512, mf_ordered_f64_avx512,
    mf_block_variant_f32_avx512, mf_block_variant_f64_avx512,
};
#endif

/* The kernels of the selected path (its table: &mf_table_avx512, ...). */
static inline const mf_kernels *mf_k(void)
{
    return MF_FOR_PATH(mf_path(), &mf_table);
}

/* Thin call-throughs for Cython. */
static inline double mf_sgd_ordered_f32(const int32_t *us, const int32_t *is, const float *rs,
                                        const int64_t *order, int64_t n, float *P, float *Q,
                                        float *bu, float *bi, int64_t k,
                                        float mu, float lr, float reg, float regb)
{
    return mf_k()->ordered_f32(us, is, rs, order, n, P, Q, bu, bi, k, mu, lr, reg, regb);
}

static inline double mf_sgd_ordered_f64(const int32_t *us, const int32_t *is, const double *rs,
                                        const int64_t *order, int64_t n, double *P, double *Q,
                                        double *bu, double *bi, int64_t k,
                                        double mu, double lr, double reg, double regb)
{
    return mf_k()->ordered_f64(us, is, rs, order, n, P, Q, bu, bi, k, mu, lr, reg, regb);
}

/* Which copy of the block loop the current path runs for k (MF_LOOP_*). */
static int mf_block_variant(int64_t k, int f64)
{
    return f64 ? mf_k()->variant_f64(k) : mf_k()->variant_f32(k);

}

/* --- the parallel epoch: scheduling (sgd_epoch_body.h has the epoch itself) --- */

static inline int mf_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#define MF_PAD 16 /* block counters one a cache line */
/* -DMF_NO_DATAFLOW: use a barrier between rounds instead (slower; for comparison) */
#if defined(_OPENMP) && defined(__GNUC__) && !defined(MF_NO_DATAFLOW)
#define MF_DATAFLOW 1
#ifndef MF_SPINS
#define MF_SPINS 200
#endif
/* True if block b's row and column have finished `round` rounds. */
static inline int mf_ready(const int32_t *done, int grid, int32_t b, int32_t round)
{
    return __atomic_load_n(done + (int64_t)(b / grid) * MF_PAD, __ATOMIC_ACQUIRE) >= round
        && __atomic_load_n(done + (int64_t)(grid + b % grid) * MF_PAD, __ATOMIC_ACQUIRE)
               >= round;
}

/* Claim the first unclaimed block, in schedule order, whose row and column have finished
 * the round before its own; -1 once every block is claimed. Looking past a block that
 * is not ready yet lets a thread keep working while another one is slow (or, on a busy
 * machine, descheduled) instead of waiting for it. */
static int64_t mf_claim(const int32_t *schedule, int grid, int64_t n_blocks, const int32_t *done,
                        unsigned char *claimed, int64_t *low, int64_t *n_claimed)
{
    unsigned spins = 0;
    while (__atomic_load_n(n_claimed, __ATOMIC_RELAXED) < n_blocks) {
        for (int64_t t = __atomic_load_n(low, __ATOMIC_RELAXED); t < n_blocks; t++) {
            unsigned char free_ = 0;
            if (__atomic_load_n(&claimed[t], __ATOMIC_RELAXED)
                || !mf_ready(done, grid, schedule[t], (int32_t)(t / grid))
                || !__atomic_compare_exchange_n(&claimed[t], &free_, 1, 0,
                                                __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
                continue;
            __atomic_fetch_add(n_claimed, 1, __ATOMIC_RELAXED);
            int64_t l = __atomic_load_n(low, __ATOMIC_RELAXED); /* skip the claimed prefix */
            while (l < n_blocks && __atomic_load_n(&claimed[l], __ATOMIC_RELAXED)
                   && __atomic_compare_exchange_n(low, &l, l + 1, 0, __ATOMIC_RELAXED,
                                                  __ATOMIC_RELAXED))
                l++;
            return t;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if (++spins > MF_SPINS) { /* a long wait: another thread may be descheduled */
            MF_YIELD();           /* (a busy machine), so offer it this CPU */
            spins = 0;
        }
    }
    return -1;
}
#else
#define MF_DATAFLOW 0
#endif

#define T float
#define REC mf_rec32
#define NAME(x) x##_f32
#include "sgd_epoch_body.h"

#define T double
#define REC mf_rec64
#define NAME(x) x##_f64
#include "sgd_epoch_body.h"

#endif
