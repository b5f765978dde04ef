/* Scores of MF_REC_G queries against a block of items, for the top-N kernel.
 *
 *   out[g][j] = bias[start + j] + sum_f x[g][f] * item(start + j)[f]     (j < len)
 *
 * Item factors come packed in panels of MF_REC_PANEL items: panel p holds
 * items p*PANEL .. p*PANEL+PANEL-1 as a k x PANEL item-contiguous array
 * (zero-padded at the end), so one panel (k=64: 8 KiB of floats) stays in L1
 * while a register tile of G queries x 2 vectors of items walks through it.
 * Each score adds its k terms in order f = 0..k-1, like a plain dot product
 * (paths differ only by FMA contraction and vector width).
 *
 * Written once, in recommend_body.h, with GCC/Clang vector extensions, and compiled
 * per instruction set: portable (16-byte vectors: SSE2 or NEON), AVX2+FMA and
 * AVX-512 on x86, chosen at run time by mf_rec_select().
 */
#ifndef MFCORE_RECOMMEND_SIMD_H
#define MFCORE_RECOMMEND_SIMD_H

#include <stdint.h>
#include <string.h>
#include "simd_dispatch.h"

#define MF_REC_G 4        /* queries scored together */
#define MF_REC_PANEL 32   /* items per packed panel; start must be a multiple of it */

#if defined(__GNUC__)
#define MF_REC_INLINE static inline __attribute__((always_inline))
#define MF_REC_VECTORS 1
#else
#define MF_REC_INLINE static inline
#define MF_REC_VECTORS 0
#endif

#if MF_REC_VECTORS
typedef float mf_rec_vf16 __attribute__((vector_size(16)));
typedef double mf_rec_vd16 __attribute__((vector_size(16)));
typedef float mf_rec_vf32 __attribute__((vector_size(32)));
typedef double mf_rec_vd32 __attribute__((vector_size(32)));
typedef float mf_rec_vf64 __attribute__((vector_size(64)));
typedef double mf_rec_vd64 __attribute__((vector_size(64)));
#else /* scalar loops only (the vector types size nothing) */
typedef float mf_rec_vf16;
typedef double mf_rec_vd16;
#endif

/* --- the kernel: recommend_body.h for each value type on each path --- */

#define T float
#define VT mf_rec_vf16
#define NAME(x) x##_f32_baseline
#define MF_TARGET
#include "recommend_body.h"

#define T double
#define VT mf_rec_vd16
#define NAME(x) x##_f64_baseline
#define MF_TARGET
#include "recommend_body.h"

#if MF_X86_DISPATCH
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#define T float
#define VT mf_rec_vf32
#define NAME(x) x##_f32_avx2
#define MF_TARGET __attribute__((target("avx2,fma")))
#include "recommend_body.h"

#define T double
#define VT mf_rec_vd32
#define NAME(x) x##_f64_avx2
#define MF_TARGET __attribute__((target("avx2,fma")))
#include "recommend_body.h"

#define T float
#define VT mf_rec_vf64
#define NAME(x) x##_f32_avx512
#define MF_TARGET __attribute__((target("avx512f,avx2,fma")))
#include "recommend_body.h"

#define T double
#define VT mf_rec_vd64
#define NAME(x) x##_f64_avx512
#define MF_TARGET __attribute__((target("avx512f,avx2,fma")))
#include "recommend_body.h"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

/* --- the path in use --- */

typedef void (*mf_rec_f32_fn)(const float *const *, const float *, int64_t, int64_t, int64_t,
                              const float *, float *const *);
typedef void (*mf_rec_f64_fn)(const double *const *, const double *, int64_t, int64_t, int64_t,
                              const double *, double *const *);
static mf_rec_f32_fn mf_rec_scores_f32 = mf_rec_f32_baseline;
static mf_rec_f64_fn mf_rec_scores_f64 = mf_rec_f64_baseline;
static int mf_rec_path = MF_PATH_BASELINE;

/* Score with path `path` (MF_PATH_*); returns 0 if it is not supported (nothing changes).
 * The same rule as mf_select_path in sgd_simd.h: mfcore.simd sets both to one path. */
static int mf_rec_select(int path)
{
    if (path < 0 || path >= MF_N_PATHS || !mf_path_supported(path))
        return 0;
    mf_rec_scores_f32 = mf_rec_f32_baseline;
    mf_rec_scores_f64 = mf_rec_f64_baseline;
#if MF_X86_DISPATCH
    if (path == MF_PATH_AVX512) {
        mf_rec_scores_f32 = mf_rec_f32_avx512;
        mf_rec_scores_f64 = mf_rec_f64_avx512;
    } else if (path == MF_PATH_AVX2) {
        mf_rec_scores_f32 = mf_rec_f32_avx2;
        mf_rec_scores_f64 = mf_rec_f64_avx2;
    }
#endif
    mf_rec_path = path;
    return 1;
}

static int mf_rec_get_path(void)
{
    return mf_rec_path;
}

#endif
