/* Scores of a few queries against a block of items, for the top-N kernel.
 *
 * out[g][j] = bias[start + j] + sum_f x[g][f] * QT[f * m + start + j]
 *
 * The item factors come transposed (QT is k x m, item-contiguous). A register
 * tile of MF_REC_G queries x 2 vectors of items accumulates over f in order,
 * so every score adds its k terms in the same order as a plain dot product
 * (paths differ only by FMA contraction) while each load of QT serves
 * MF_REC_G queries. Written once with GCC/Clang vector extensions and compiled
 * twice: a portable path and, on x86, an AVX2+FMA path chosen at run time.
 */
#ifndef MFCORE_RECOMMEND_SIMD_H
#define MFCORE_RECOMMEND_SIMD_H

#include <stdint.h>
#include <string.h>

#define MF_REC_G 4  /* queries scored together */

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define MF_REC_X86 1
#else
#define MF_REC_X86 0
#endif

#if defined(__GNUC__)
#define MF_REC_INLINE static inline __attribute__((always_inline))
typedef float mf_rec_vf __attribute__((vector_size(32)));
typedef double mf_rec_vd __attribute__((vector_size(32)));
/* The register tile: G queries x 2 vectors of W columns. */
#define MF_REC_TILE(T, VT)                                                                   \
    enum { W = 32 / sizeof(T) };                                                             \
    if (G == MF_REC_G) {                                                                     \
        for (; j + 2 * W <= len; j += 2 * W) {                                               \
            VT a[MF_REC_G][2];                                                               \
            int g2;                                                                          \
            for (g2 = 0; g2 < MF_REC_G; g2++) { a[g2][0] = (VT){0}; a[g2][1] = (VT){0}; }  \
            for (f = 0; f < k; f++) {                                                        \
                VT q0, q1;                                                                   \
                const T *q = QT + f * m + start + j;                                         \
                memcpy(&q0, q, sizeof(VT));                                                  \
                memcpy(&q1, q + W, sizeof(VT));                                              \
                for (g2 = 0; g2 < MF_REC_G; g2++) {                                          \
                    T xs = x[g2][f];                                                         \
                    a[g2][0] += xs * q0;                                                     \
                    a[g2][1] += xs * q1;                                                     \
                }                                                                            \
            }                                                                                \
            for (g2 = 0; g2 < MF_REC_G; g2++) {                                              \
                memcpy(out[g2] + j, &a[g2][0], sizeof(VT));                                  \
                memcpy(out[g2] + j + W, &a[g2][1], sizeof(VT));                              \
            }                                                                                \
        }                                                                                    \
    }
#else
#define MF_REC_INLINE static inline
#define MF_REC_TILE(T, VT)
#endif

#define MF_REC_DEFINE(T, SFX, VT)                                                            \
MF_REC_INLINE void mf_rec_body_##SFX(const T *const *x, int G, const T *QT, int64_t k,      \
        int64_t m, int64_t start, int64_t len, const T *bias, T *const *out)                 \
{                                                                                            \
    int64_t f, j = 0, jj;                                                                    \
    int g;                                                                                   \
    MF_REC_TILE(T, VT)                                                                       \
    for (g = 0; g < G; g++) {                                                                \
        for (jj = j; jj < len; jj++) {                                                       \
            T s = 0;                                                                         \
            for (f = 0; f < k; f++) s += x[g][f] * QT[f * m + start + jj];                   \
            out[g][jj] = s;                                                                  \
        }                                                                                    \
        for (jj = 0; jj < len; jj++) out[g][jj] += bias[start + jj];                         \
    }                                                                                        \
}                                                                                            \
static void mf_rec_base_##SFX(const T *const *x, int G, const T *QT, int64_t k, int64_t m,  \
        int64_t start, int64_t len, const T *bias, T *const *out)                            \
{ mf_rec_body_##SFX(x, G, QT, k, m, start, len, bias, out); }

MF_REC_DEFINE(float, f32, mf_rec_vf)
MF_REC_DEFINE(double, f64, mf_rec_vd)

#if MF_REC_X86
__attribute__((target("avx2,fma"))) static void mf_rec_avx2_f32(const float *const *x, int G,
        const float *QT, int64_t k, int64_t m, int64_t start, int64_t len, const float *bias,
        float *const *out)
{ mf_rec_body_f32(x, G, QT, k, m, start, len, bias, out); }
__attribute__((target("avx2,fma"))) static void mf_rec_avx2_f64(const double *const *x, int G,
        const double *QT, int64_t k, int64_t m, int64_t start, int64_t len, const double *bias,
        double *const *out)
{ mf_rec_body_f64(x, G, QT, k, m, start, len, bias, out); }
#endif

typedef void (*mf_rec_f32_fn)(const float *const *, int, const float *, int64_t, int64_t,
                              int64_t, int64_t, const float *, float *const *);
typedef void (*mf_rec_f64_fn)(const double *const *, int, const double *, int64_t, int64_t,
                              int64_t, int64_t, const double *, double *const *);
static mf_rec_f32_fn mf_rec_scores_f32 = mf_rec_base_f32;
static mf_rec_f64_fn mf_rec_scores_f64 = mf_rec_base_f64;

/* Use the AVX2+FMA path when asked and supported; returns 1 if it is now in use. */
static int mf_rec_use_avx2(int want)
{
    mf_rec_scores_f32 = mf_rec_base_f32;
    mf_rec_scores_f64 = mf_rec_base_f64;
#if MF_REC_X86
    __builtin_cpu_init();
    if (want && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        mf_rec_scores_f32 = mf_rec_avx2_f32;
        mf_rec_scores_f64 = mf_rec_avx2_f64;
        return 1;
    }
#endif
    (void)want;
    return 0;
}

#endif
