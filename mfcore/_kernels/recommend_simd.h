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
 * Written once with GCC/Clang vector extensions and compiled per instruction
 * set: portable (16-byte vectors: SSE2 or NEON), AVX2+FMA and AVX-512 on x86,
 * chosen at run time by mf_rec_select().
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

/* One panel, G == MF_REC_G, with vectors VT of W elements: tiles of 2W items. */
#if MF_REC_VECTORS
#define MF_REC_PANEL_BODY(T, VT)                                                             \
    enum { W = sizeof(VT) / sizeof(T) };                                                     \
    int64_t c, f;                                                                            \
    int g;                                                                                   \
    for (c = 0; c < MF_REC_PANEL; c += 2 * W) {                                              \
        VT a[MF_REC_G][2];                                                                   \
        for (g = 0; g < MF_REC_G; g++) { a[g][0] = (VT){0}; a[g][1] = (VT){0}; }           \
        for (f = 0; f < k; f++) {                                                            \
            VT q0, q1;                                                                       \
            memcpy(&q0, panel + f * MF_REC_PANEL + c, sizeof(VT));                           \
            memcpy(&q1, panel + f * MF_REC_PANEL + c + W, sizeof(VT));                       \
            for (g = 0; g < MF_REC_G; g++) {                                                 \
                T xs = x[g][f];                                                              \
                a[g][0] += xs * q0;                                                          \
                a[g][1] += xs * q1;                                                          \
            }                                                                                \
        }                                                                                    \
        for (g = 0; g < MF_REC_G; g++) {                                                     \
            memcpy(out[g] + c, &a[g][0], sizeof(VT));                                        \
            memcpy(out[g] + c + W, &a[g][1], sizeof(VT));                                    \
        }                                                                                    \
    }
#else
#define MF_REC_PANEL_BODY(T, VT)                                                             \
    int64_t c, f;                                                                            \
    int g;                                                                                   \
    for (g = 0; g < MF_REC_G; g++)                                                           \
        for (c = 0; c < MF_REC_PANEL; c++) {                                                 \
            T s = 0;                                                                         \
            for (f = 0; f < k; f++) s += x[g][f] * panel[f * MF_REC_PANEL + c];              \
            out[g][c] = s;                                                                   \
        }
#endif

/* The path function: every panel of the block, then the bias. */
#define MF_REC_DEFINE(T, SFX, PATH, VT, ATTR)                                                \
MF_REC_INLINE void mf_rec_panel_##SFX##_##PATH(const T *const *x, const T *panel,           \
                                               int64_t k, T *const *out)                     \
{                                                                                            \
    MF_REC_PANEL_BODY(T, VT)                                                                 \
}                                                                                            \
ATTR static void mf_rec_##SFX##_##PATH(const T *const *x, const T *packed, int64_t k,       \
        int64_t start, int64_t len, const T *bias, T *const *out)                            \
{                                                                                            \
    int64_t p, j;                                                                            \
    int g;                                                                                   \
    T *o[MF_REC_G];                                                                          \
    for (p = 0; p * MF_REC_PANEL < len; p++) {                                               \
        for (g = 0; g < MF_REC_G; g++) o[g] = out[g] + p * MF_REC_PANEL;                     \
        mf_rec_panel_##SFX##_##PATH(x, packed + (start + p * MF_REC_PANEL) * k, k, o);       \
    }                                                                                        \
    for (g = 0; g < MF_REC_G; g++)                                                           \
        for (j = 0; j < len; j++) out[g][j] += bias[start + j];                              \
}

#if MF_REC_VECTORS
typedef float mf_rec_vf16 __attribute__((vector_size(16)));
typedef double mf_rec_vd16 __attribute__((vector_size(16)));
MF_REC_DEFINE(float, f32, base, mf_rec_vf16, )
MF_REC_DEFINE(double, f64, base, mf_rec_vd16, )
#else
MF_REC_DEFINE(float, f32, base, float, )
MF_REC_DEFINE(double, f64, base, double, )
#endif

#if MF_X86_DISPATCH
typedef float mf_rec_vf32 __attribute__((vector_size(32)));
typedef double mf_rec_vd32 __attribute__((vector_size(32)));
typedef float mf_rec_vf64 __attribute__((vector_size(64)));
typedef double mf_rec_vd64 __attribute__((vector_size(64)));
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
MF_REC_DEFINE(float, f32, avx2, mf_rec_vf32, __attribute__((target("avx2,fma"))))
MF_REC_DEFINE(double, f64, avx2, mf_rec_vd32, __attribute__((target("avx2,fma"))))
MF_REC_DEFINE(float, f32, avx512, mf_rec_vf64, __attribute__((target("avx512f,avx2,fma"))))
MF_REC_DEFINE(double, f64, avx512, mf_rec_vd64, __attribute__((target("avx512f,avx2,fma"))))
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

typedef void (*mf_rec_f32_fn)(const float *const *, const float *, int64_t, int64_t, int64_t,
                              const float *, float *const *);
typedef void (*mf_rec_f64_fn)(const double *const *, const double *, int64_t, int64_t, int64_t,
                              const double *, double *const *);
static mf_rec_f32_fn mf_rec_scores_f32 = mf_rec_f32_base;
static mf_rec_f64_fn mf_rec_scores_f64 = mf_rec_f64_base;

/* Use path `path` (MF_PATH_*), or the widest supported below it; returns the path in use. */
static int mf_rec_select(int path)
{
    while (path > MF_PATH_BASELINE && !mf_path_supported(path)) path--;
    mf_rec_scores_f32 = mf_rec_f32_base;
    mf_rec_scores_f64 = mf_rec_f64_base;
#if MF_X86_DISPATCH
    if (path == MF_PATH_AVX512) {
        mf_rec_scores_f32 = mf_rec_f32_avx512;
        mf_rec_scores_f64 = mf_rec_f64_avx512;
    } else if (path == MF_PATH_AVX2) {
        mf_rec_scores_f32 = mf_rec_f32_avx2;
        mf_rec_scores_f64 = mf_rec_f64_avx2;
    }
#else
    path = MF_PATH_BASELINE;
#endif
    return path;
}

#endif
