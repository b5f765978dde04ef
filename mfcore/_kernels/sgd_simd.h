/* The SGD hot loop, compiled once per instruction set and chosen at run time.
 *
 * One generic body (always_inline, written with GCC/Clang vector extensions) is
 * instantiated for the register width of each path (16, 32 or 64 bytes) and
 * inlined into wrappers carrying __attribute__((target(...))), so the compiler
 * emits SSE2, AVX2+FMA or AVX-512 code for it. mf_select_path() picks the
 * widest path the CPU (and OS) supports, like NumPy's dispatch; the default
 * build never needs -march=native. The paths compute the same thing; they
 * differ in the last bits only (dot products summed in a different lane order,
 * FMA contraction on AVX2/AVX-512). Within one path the results are exact and
 * do not depend on the thread count.
 *
 * Update rule for one rating (u, i, r), e = r - (mu + b_u + b_i + p_u . q_i):
 *   b_u += lr (e - reg_bias b_u);  b_i += lr (e - reg_bias b_i)
 *   p_u += lr (e q_i - reg p_u);   q_i += lr (e p_u(old) - reg q_i)
 */
#ifndef MFCORE_SGD_SIMD_H
#define MFCORE_SGD_SIMD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  /* vectors passed only to always_inline helpers */
#endif

/* One training rating as stored by SGDTrainer (numpy dtypes REC32/REC64). */
typedef struct { int32_t u; int32_t i; float r; } mf_rec32;
typedef struct { int32_t u; int32_t i; double r; } mf_rec64;

/* Records are visited in runs of this many consecutive ones (see mf_block_loop). */
#define MF_RUN 16

#if MF_X86_DISPATCH
#define MF_INLINE static inline __attribute__((always_inline))
#else
#define MF_INLINE static inline
#endif

#if defined(__GNUC__) || defined(_MSC_VER)
#define MF_RESTRICT __restrict
#else
#define MF_RESTRICT
#endif

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

/* --- the generic body, instantiated for float and double --- */

#if defined(__GNUC__)
#define MF_VECTORS 1
typedef float mf_vf __attribute__((vector_size(64)));
typedef double mf_vd __attribute__((vector_size(64)));
#else
#define MF_VECTORS 0
#endif

#define MF_DEFINE_GENERIC(T, SFX, REC, VT, HSUM)                                            \
MF_INLINE T mf_dot_##SFX(const T *p, const T *q, int64_t k)                              \
{                                                                                        \
    enum { W = sizeof(VT) / sizeof(T) };                                                 \
    int64_t f = 0;                                                                       \
    T s = 0;                                                                             \
    MF_DOT_VECTOR(T, VT, HSUM)                                                           \
    for (; f < k; f++) s += p[f] * q[f];                                                 \
    return s;                                                                            \
}                                                                                        \
                                                                                         \
MF_INLINE void mf_step_##SFX(T *p, T *q, T e, T lr, T reg, int64_t k)                   \
{                                                                                        \
    enum { W = sizeof(VT) / sizeof(T) };                                                 \
    int64_t f = 0;                                                                       \
    MF_STEP_VECTOR(T, VT)                                                                \
    for (; f < k; f++) {                                                                 \
        T pf = p[f], qf = q[f];                                                          \
        p[f] = pf + lr * (e * qf - reg * pf);                                            \
        q[f] = qf + lr * (e * pf - reg * qf);                                            \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* One rating: returns the error measured before the update. */                          \
MF_INLINE T mf_update_##SFX(int32_t u, int32_t i, T r, T *P, T *Q, T *bu, T *bi,         \
                            int64_t k, T mu, T lr, T reg, T regb)                        \
{                                                                                        \
    T *p = P + (int64_t)u * k, *q = Q + (int64_t)i * k;                                  \
    T e = r - (mu + bu[u] + bi[i] + mf_dot_##SFX(p, q, k));                              \
    bu[u] += lr * (e - regb * bu[u]);                                                    \
    bi[i] += lr * (e - regb * bi[i]);                                                    \
    mf_step_##SFX(p, q, e, lr, reg, k);                                                  \
    return e;                                                                            \
}                                                                                        \
                                                                                         \
MF_NV_FUNCTION(T, SFX, REC, VT, HSUM)                                                    \
                                                                                         \
/* One block of n records, visited run by run: the runs of MF_RUN consecutive       */ \
/* records are taken in the order `runs` (run indices), or as stored when runs is    */ \
/* NULL. Returns the sum of squared errors. The switch below gives the common k a    */ \
/* copy with k known at compile time (loops unrolled, rows kept in registers        */ \
/* between the dot product and the update): 1.3-1.6x the runtime-k loop at k=10,    */ \
/* 20, 50, 100, 256 (ML-1M shape). Other k take the runtime-k loop.                 */ \
MF_INLINE double mf_block_loop_##SFX(const REC *rec, const int32_t *runs, int64_t n,     \
                                     T *MF_RESTRICT P, T *MF_RESTRICT Q,                 \
                                     T *MF_RESTRICT bu, T *MF_RESTRICT bi, int64_t k,    \
                                     const int NV, T mu, T lr, T reg, T regb)            \
{                                                                                        \
    double sse = 0.0;                                                                    \
    MF_NV_SETUP(T, VT)                                                                   \
    int64_t n_runs = runs ? (n + MF_RUN - 1) / MF_RUN : 1;                               \
    for (int64_t c = 0; c < n_runs; c++) {                                               \
        int64_t lo = runs ? (int64_t)runs[c] * MF_RUN : 0;                               \
        int64_t hi = runs ? (lo + MF_RUN < n ? lo + MF_RUN : n) : n;                     \
        for (int64_t t = lo; t < hi; t++) {                                              \
            T e = MF_NV_UPDATE(SFX)                                                      \
                  mf_update_##SFX(rec[t].u, rec[t].i, rec[t].r, P, Q, bu, bi, k,         \
                                  mu, lr, reg, regb);                                    \
            sse += (double)e * (double)e;                                                \
        }                                                                                \
    }                                                                                    \
    return sse;                                                                          \
}                                                                                        \
                                                                                         \
MF_INLINE double mf_block_##SFX(const REC *rec, const int32_t *runs, int64_t n,         \
                                T *P, T *Q, T *bu, T *bi, int64_t k,                     \
                                T mu, T lr, T reg, T regb)                               \
{                                                                                        \
    switch (k) {                                                                         \
    case 8: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, 8, 0, mu, lr, reg, regb); \
    case 10: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, 10, 0, mu, lr, reg, regb); \
    case 16: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, 16, 0, mu, lr, reg, regb); \
    case 20: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, 20, 0, mu, lr, reg, regb); \
    case 32: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, 32, 0, mu, lr, reg, regb); \
    case 50: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, 50, 0, mu, lr, reg, regb); \
    case 64: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, 64, 0, mu, lr, reg, regb); \
    case 100: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, 100, 0, mu, lr, reg, regb); \
    case 128: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, 128, 0, mu, lr, reg, regb); \
    case 200: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, 200, 0, mu, lr, reg, regb); \
    case 256: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, 256, 0, mu, lr, reg, regb); \
    default:                                                                             \
        MF_NV_DISPATCH(T, SFX, VT)                                                       \
        return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, k, 0, mu, lr, reg, regb); \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* Ratings visited in an explicit order (the reference path, serial). */                 \
MF_INLINE double mf_ordered_##SFX(const int32_t *users, const int32_t *items,            \
                                  const T *ratings, const int64_t *order, int64_t n,     \
                                  T *P, T *Q, T *bu, T *bi, int64_t k,                   \
                                  T mu, T lr, T reg, T regb)                             \
{                                                                                        \
    double sse = 0.0;                                                                    \
    for (int64_t t = 0; t < n; t++) {                                                    \
        int64_t j = order[t];                                                            \
        T e = mf_update_##SFX(users[j], items[j], ratings[j], P, Q, bu, bi, k,           \
                              mu, lr, reg, regb);                                        \
        sse += (double)e * (double)e;                                                    \
    }                                                                                    \
    return sse;                                                                          \
}                                                                                        \
                                                                                         \
/* Prediction for one pair; an index of -1 contributes nothing; clipped to [lo, hi]. */  \
MF_INLINE T mf_predict_one_##SFX(int32_t u, int32_t i, const T *P, const T *Q,          \
                                 const T *bu, const T *bi, int64_t k,                    \
                                 T mu, T lo, T hi)                                       \
{                                                                                        \
    T r = mu;                                                                            \
    if (u >= 0) r += bu[u];                                                              \
    if (i >= 0) r += bi[i];                                                              \
    if (u >= 0 && i >= 0) r += mf_dot_##SFX(P + (int64_t)u * k, Q + (int64_t)i * k, k);  \
    return r < lo ? lo : (r > hi ? hi : r);                                              \
} \
                                                                                         \
/* Predictions for n pairs into out; or (out NULL) the sum of squared errors against r. */ \
MF_INLINE double mf_predict_range_##SFX(const int32_t *us, const int32_t *is, const T *r, \
                                        int64_t n, const T *P, const T *Q, const T *bu,  \
                                        const T *bi, int64_t k, T mu, T lo, T hi, T *out) \
{                                                                                        \
    double sse = 0.0;                                                                    \
    for (int64_t t = 0; t < n; t++) {                                                    \
        T p = mf_predict_one_##SFX(us[t], is[t], P, Q, bu, bi, k, mu, lo, hi);           \
        if (out) out[t] = p;                                                             \
        else { double e = (double)r[t] - (double)p; sse += e * e; }                      \
    }                                                                                    \
    return sse;                                                                          \
}

#if MF_VECTORS
/* Two vector accumulators, reduced in a fixed tree order. */
#define MF_DOT_VECTOR(T, VT, HSUM)                                                       \
    if (k >= W) {                                                                        \
        VT a0 = {0}, a1 = {0}, x, y;                                                     \
        for (; f + 2 * W <= k; f += 2 * W) {                                             \
            memcpy(&x, p + f, sizeof x); memcpy(&y, q + f, sizeof y); a0 += x * y;       \
            memcpy(&x, p + f + W, sizeof x); memcpy(&y, q + f + W, sizeof y); a1 += x * y; \
        }                                                                                \
        if (f + W <= k) {                                                                \
            memcpy(&x, p + f, sizeof x); memcpy(&y, q + f, sizeof y); a0 += x * y;       \
            f += W;                                                                      \
        }                                                                                \
        s = HSUM(a0 + a1);                                                               \
    }
/* (x - zero puts x in every lane, -0 included) */
#define MF_STEP_VECTOR(T, VT)                                                            \
    if (f + W <= k) {                                                                    \
        VT zero = {0}, ev = e - zero, lrv = lr - zero, regv = reg - zero;                \
        for (; f + W <= k; f += W) {                                                     \
            VT pv, qv, np_, nq;                                                          \
            memcpy(&pv, p + f, sizeof pv); memcpy(&qv, q + f, sizeof qv);                \
            np_ = pv + lrv * (ev * qv - regv * pv);                                      \
            nq = qv + lrv * (ev * pv - regv * qv);                                       \
            memcpy(p + f, &np_, sizeof np_); memcpy(q + f, &nq, sizeof nq);              \
        }                                                                                \
    }

/* Vectors of the register width of each path: 64 bytes for AVX-512, 32 for AVX2, 16
 * for the baseline (SSE2, NEON). (A 64-byte vector everywhere would give all paths the
 * same summation order, but GCC lowers over-wide vectors through the stack.) */
typedef float mf_vf8 __attribute__((vector_size(32)));
typedef float mf_vf4 __attribute__((vector_size(16)));
typedef float mf_vf2 __attribute__((vector_size(8)));
typedef double mf_vd4 __attribute__((vector_size(32)));
typedef double mf_vd2 __attribute__((vector_size(16)));

/* Horizontal sums in a fixed tree order: halves added until one lane is left
 * (memcpy of a half compiles to a register extract). */
#define MF_HALVES(V, LO, HI) memcpy(&LO, &V, sizeof LO); memcpy(&HI, (char *)&V + sizeof LO, sizeof HI)

MF_INLINE float mf_hsum_f4(mf_vf4 a)
{
    mf_vf2 c0, c1;
    MF_HALVES(a, c0, c1);
    mf_vf2 d = c0 + c1;
    return d[0] + d[1];
}
MF_INLINE float mf_hsum_f8(mf_vf8 a) { mf_vf4 b0, b1; MF_HALVES(a, b0, b1); return mf_hsum_f4(b0 + b1); }
MF_INLINE float mf_hsum_f16(mf_vf a) { mf_vf8 b0, b1; MF_HALVES(a, b0, b1); return mf_hsum_f8(b0 + b1); }
MF_INLINE double mf_hsum_d2(mf_vd2 a) { return a[0] + a[1]; }
MF_INLINE double mf_hsum_d4(mf_vd4 a) { mf_vd2 b0, b1; MF_HALVES(a, b0, b1); return mf_hsum_d2(b0 + b1); }
MF_INLINE double mf_hsum_d8(mf_vd a) { mf_vd4 b0, b1; MF_HALVES(a, b0, b1); return mf_hsum_d4(b0 + b1); }
/* Any other k in (W, 8W] on the AVX-512 path: a copy of the block loop per number of
 * vectors NV = ceil(k / W) (1.4-2x the runtime-k loop: k=24 49 -> 85, k=48 37 -> 64,
 * k=96 25 -> 37 M updates/s on one thread, ML-1M shape). The last vector starts at k - W
 * and overlaps the one before it; the overlapping lanes are left out of the dot product
 * (a 0/1 mask) and get the same new values in both vectors (computed from the same old
 * values), so storing both is harmless. */
#define MF_NV_FUNCTION(T, SFX, REC, VT, HSUM)                                            \
MF_INLINE T mf_update_nv_##SFX(int32_t u, int32_t i, T r, T *P, T *Q, T *bu, T *bi,      \
                               int64_t k, const int NV, VT keep, T mu, T lr, T reg, T regb)\
{                                                                                        \
    enum { W = sizeof(VT) / sizeof(T) };                                                 \
    T *p = P + (int64_t)u * k, *q = Q + (int64_t)i * k;                                  \
    VT zero = {0}, pv[8], qv[8], a0 = zero, a1 = zero;                                   \
    for (int v = 0; v < NV; v++) {                                                       \
        int64_t off = v < NV - 1 ? (int64_t)v * W : k - W;                               \
        memcpy(&pv[v], p + off, sizeof(VT));                                             \
        memcpy(&qv[v], q + off, sizeof(VT));                                             \
    }                                                                                    \
    for (int v = 0; v + 1 < NV; v += 2) {                                                \
        a0 += pv[v] * qv[v];                                                             \
        if (v + 2 < NV) a1 += pv[v + 1] * qv[v + 1];                                     \
    }                                                                                    \
    a1 += pv[NV - 1] * qv[NV - 1] * keep;                                                \
    T e = r - (mu + bu[u] + bi[i] + HSUM(a0 + a1));                                      \
    bu[u] += lr * (e - regb * bu[u]);                                                    \
    bi[i] += lr * (e - regb * bi[i]);                                                    \
    VT ev = e - zero, lrv = lr - zero, regv = reg - zero;                                \
    for (int v = 0; v < NV; v++) {                                                       \
        int64_t off = v < NV - 1 ? (int64_t)v * W : k - W;                               \
        VT np_ = pv[v] + lrv * (ev * qv[v] - regv * pv[v]);                              \
        VT nq = qv[v] + lrv * (ev * pv[v] - regv * qv[v]);                               \
        memcpy(p + off, &np_, sizeof(VT));                                               \
        memcpy(q + off, &nq, sizeof(VT));                                                \
    }                                                                                    \
    return e;                                                                            \
}

/* The 0/1 mask of the lanes of the last vector that the one before does not cover. */
#define MF_NV_SETUP(T, VT)                                                               \
    VT keep = {0};                                                                       \
    for (int j = 0; NV > 0 && j < (int)(sizeof(VT) / sizeof(T)); j++)                    \
        keep[j] = j >= NV * (int64_t)(sizeof(VT) / sizeof(T)) - k ? (T)1 : (T)0;
#define MF_NV_UPDATE(SFX)                                                                \
    NV > 0 ? mf_update_nv_##SFX(rec[t].u, rec[t].i, rec[t].r, P, Q, bu, bi, k, NV, keep, \
                                mu, lr, reg, regb) :

#define MF_NV_DISPATCH(T, SFX, VT)                                                       \
    /* 64-byte vectors only: with 32- and 16-byte ones (16 registers) it ran slower than */\
    /* the runtime-k loop for NV >= 3 (k=24 with AVX2: 32 vs 77 M updates/s)            */\
    if (sizeof(VT) == 64 && k > (int64_t)(sizeof(VT) / sizeof(T))                        \
        && k <= 8 * (int64_t)(sizeof(VT) / sizeof(T))) {                                 \
        switch ((k + (int64_t)(sizeof(VT) / sizeof(T)) - 1) / (int64_t)(sizeof(VT) / sizeof(T))) {\
        case 2: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, k, 2, mu, lr, reg, regb);\
        case 3: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, k, 3, mu, lr, reg, regb);\
        case 4: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, k, 4, mu, lr, reg, regb);\
        case 5: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, k, 5, mu, lr, reg, regb);\
        case 6: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, k, 6, mu, lr, reg, regb);\
        case 7: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, k, 7, mu, lr, reg, regb);\
        case 8: return mf_block_loop_##SFX(rec, runs, n, P, Q, bu, bi, k, 8, mu, lr, reg, regb);\
        }                                                                                \
    }

#else  /* no vector extensions: scalar loops (W only sizes nothing) */
typedef float mf_vf4[4];
typedef double mf_vd2[2];
#define MF_DOT_VECTOR(T, VT, HSUM)
#define MF_STEP_VECTOR(T, VT)
#define MF_NV_FUNCTION(T, SFX, REC, VT, HSUM)
#define MF_NV_SETUP(T, VT)
#define MF_NV_UPDATE(SFX)
#define MF_NV_DISPATCH(T, SFX, VT)
#endif

MF_DEFINE_GENERIC(float, f32_w4, mf_rec32, mf_vf4, mf_hsum_f4)
MF_DEFINE_GENERIC(double, f64_w2, mf_rec64, mf_vd2, mf_hsum_d2)
#if MF_X86_DISPATCH
MF_DEFINE_GENERIC(float, f32_w8, mf_rec32, mf_vf8, mf_hsum_f8)
MF_DEFINE_GENERIC(double, f64_w4, mf_rec64, mf_vd4, mf_hsum_d4)
MF_DEFINE_GENERIC(float, f32_w16, mf_rec32, mf_vf, mf_hsum_f16)
MF_DEFINE_GENERIC(double, f64_w8, mf_rec64, mf_vd, mf_hsum_d8)
#endif

/* --- one compiled copy per instruction set --- */

#define MF_DEFINE_PATH(PATH, ATTR, VF, VD)                                                     \
ATTR static double mf_block_f32_##PATH(const mf_rec32 *rec, const int32_t *order,       \
        int64_t n, float *P, float *Q, float *bu, float *bi, int64_t k,                  \
        float mu, float lr, float reg, float regb)                                       \
{ return mf_block_##VF(rec, order, n, P, Q, bu, bi, k, mu, lr, reg, regb); }               \
ATTR static double mf_block_f64_##PATH(const mf_rec64 *rec, const int32_t *order,       \
        int64_t n, double *P, double *Q, double *bu, double *bi, int64_t k,              \
        double mu, double lr, double reg, double regb)                                   \
{ return mf_block_##VD(rec, order, n, P, Q, bu, bi, k, mu, lr, reg, regb); }               \
ATTR static double mf_ordered_f32_##PATH(const int32_t *us, const int32_t *is,          \
        const float *rs, const int64_t *order, int64_t n,                                \
        float *P, float *Q, float *bu, float *bi, int64_t k,                             \
        float mu, float lr, float reg, float regb)                                       \
{ return mf_ordered_##VF(us, is, rs, order, n, P, Q, bu, bi, k, mu, lr, reg, regb); }      \
ATTR static double mf_ordered_f64_##PATH(const int32_t *us, const int32_t *is,          \
        const double *rs, const int64_t *order, int64_t n,                               \
        double *P, double *Q, double *bu, double *bi, int64_t k,                         \
        double mu, double lr, double reg, double regb)                                   \
{ return mf_ordered_##VD(us, is, rs, order, n, P, Q, bu, bi, k, mu, lr, reg, regb); }      \
ATTR static double mf_predict_f32_##PATH(const int32_t *us, const int32_t *is,          \
        const float *r, int64_t n, const float *P, const float *Q, const float *bu,      \
        const float *bi, int64_t k, float mu, float lo, float hi, float *out)            \
{ return mf_predict_range_##VF(us, is, r, n, P, Q, bu, bi, k, mu, lo, hi, out); }         \
ATTR static double mf_predict_f64_##PATH(const int32_t *us, const int32_t *is,          \
        const double *r, int64_t n, const double *P, const double *Q, const double *bu,  \
        const double *bi, int64_t k, double mu, double lo, double hi, double *out)       \
{ return mf_predict_range_##VD(us, is, r, n, P, Q, bu, bi, k, mu, lo, hi, out); }

MF_DEFINE_PATH(baseline, , f32_w4, f64_w2)
#if MF_X86_DISPATCH
MF_DEFINE_PATH(avx2, __attribute__((target("avx2,fma"))), f32_w8, f64_w4)
MF_DEFINE_PATH(avx512, __attribute__((target("avx512f,avx2,fma"))), f32_w16, f64_w8)
#endif

/* --- the dispatch table --- */

typedef struct {
    double (*block_f32)(const mf_rec32 *, const int32_t *, int64_t, float *, float *, float *,
                        float *, int64_t, float, float, float, float);
    double (*block_f64)(const mf_rec64 *, const int32_t *, int64_t, double *, double *,
                        double *, double *, int64_t, double, double, double, double);
    double (*ordered_f32)(const int32_t *, const int32_t *, const float *, const int64_t *,
                          int64_t, float *, float *, float *, float *, int64_t,
                          float, float, float, float);
    double (*ordered_f64)(const int32_t *, const int32_t *, const double *, const int64_t *,
                          int64_t, double *, double *, double *, double *, int64_t,
                          double, double, double, double);
    double (*predict_f32)(const int32_t *, const int32_t *, const float *, int64_t,
                          const float *, const float *, const float *, const float *, int64_t,
                          float, float, float, float *);
    double (*predict_f64)(const int32_t *, const int32_t *, const double *, int64_t,
                          const double *, const double *, const double *, const double *,
                          int64_t, double, double, double, double *);
} mf_kernels;

#define MF_TABLE(PATH) { mf_block_f32_##PATH, mf_block_f64_##PATH, mf_ordered_f32_##PATH, \
                         mf_ordered_f64_##PATH, mf_predict_f32_##PATH, mf_predict_f64_##PATH }

static const mf_kernels mf_table_baseline = MF_TABLE(baseline);
#if MF_X86_DISPATCH
static const mf_kernels mf_table_avx2 = MF_TABLE(avx2);
static const mf_kernels mf_table_avx512 = MF_TABLE(avx512);
#endif

static mf_kernels mf_k = MF_TABLE(baseline);
static int mf_current_path = MF_PATH_BASELINE;

/* Switch every kernel to `path`; returns 0 if it is not supported (nothing changes). */
static int mf_select_path(int path)
{
    if (path < 0 || path >= MF_N_PATHS || !mf_path_supported(path)) return 0;
#if MF_X86_DISPATCH
    if (path == MF_PATH_AVX512) mf_k = mf_table_avx512;
    else if (path == MF_PATH_AVX2) mf_k = mf_table_avx2;
    else
#endif
    mf_k = mf_table_baseline;
    mf_current_path = path;
    return 1;
}

static int mf_get_path(void) { return mf_current_path; }

/* Thin call-throughs for Cython. */
static inline double mf_sgd_ordered_f32(const int32_t *us, const int32_t *is, const float *rs,
        const int64_t *order, int64_t n, float *P, float *Q, float *bu, float *bi, int64_t k,
        float mu, float lr, float reg, float regb)
{ return mf_k.ordered_f32(us, is, rs, order, n, P, Q, bu, bi, k, mu, lr, reg, regb); }
static inline double mf_sgd_ordered_f64(const int32_t *us, const int32_t *is, const double *rs,
        const int64_t *order, int64_t n, double *P, double *Q, double *bu, double *bi, int64_t k,
        double mu, double lr, double reg, double regb)
{ return mf_k.ordered_f64(us, is, rs, order, n, P, Q, bu, bi, k, mu, lr, reg, regb); }
/* A uniformly random permutation of 0..n-1 (Fisher-Yates) from `seed`, into out. */
static void mf_permutation(int32_t *out, int64_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t t = 0; t < n; t++) out[t] = (int32_t)t;
    for (int64_t t = 0; t + 1 < n; t++) {
        int64_t j = t + (int64_t)mf_below(&s, (uint64_t)(n - t));
        int32_t tmp = out[t]; out[t] = out[j]; out[j] = tmp;
    }
}

static inline int mf_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* One epoch of block-parallel SGD. The schedule lists grid x grid blocks in `grid`
 * rounds; round s is schedule[s*grid .. s*grid+grid-1], blocks pairwise disjoint in
 * users and items. Each block row (user group) and block column (item group) must see
 * its blocks in round order; nothing else is ordered. So a thread claims the first
 * block in schedule order whose row and column have finished the round before its
 * own (row_done/col_done counters, mf_claim): no thread waits for a whole round, a
 * slow thread holds up only its own row and column, and no two running blocks share
 * a row or a column.
 * Every parameter therefore sees the same sequence of updates whatever the number
 * of threads or their timing: the result is bit-identical across thread counts.
 *
 * Block b holds records block_ptr[b] .. block_ptr[b+1]-1, visited in runs of MF_RUN
 * records taken in the order mf_permutation(n_runs, mf_block_seed(seed, b)) (or as
 * stored when shuffle is 0), built in the calling thread's part of `scratch`
 * (max_runs entries a thread). The records are never modified, so an epoch's order
 * depends on its seed alone. Block b's squared error lands in block_sse[b] and the
 * total is summed in block order. */
#define MF_PAD 16  /* block counters one a cache line */
/* -DMF_NO_DATAFLOW: use a barrier between rounds instead (slower; for comparison) */
#if defined(_OPENMP) && defined(__GNUC__) && !defined(MF_NO_DATAFLOW)
#define MF_DATAFLOW 1
#ifndef MF_SPINS
#define MF_SPINS 200
#endif
static inline int mf_ready(const int32_t *done, int grid, int32_t b, int32_t round)
{
    return __atomic_load_n(done + (int64_t)(b / grid) * MF_PAD, __ATOMIC_ACQUIRE) >= round
        && __atomic_load_n(done + (int64_t)(grid + b % grid) * MF_PAD, __ATOMIC_ACQUIRE) >= round;
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
            int64_t l = __atomic_load_n(low, __ATOMIC_RELAXED);  /* skip the claimed prefix */
            while (l < n_blocks && __atomic_load_n(&claimed[l], __ATOMIC_RELAXED)
                   && __atomic_compare_exchange_n(low, &l, l + 1, 0, __ATOMIC_RELAXED,
                                                  __ATOMIC_RELAXED))
                l++;
            return t;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if (++spins > MF_SPINS) {  /* a long wait: another thread may be descheduled */
            MF_YIELD();            /* (a busy machine), so offer it this CPU */
            spins = 0;
        }
    }
    return -1;
}
#else
#define MF_DATAFLOW 0
#endif

#define MF_DEFINE_EPOCH(T, SFX, REC)                                                     \
static double mf_sgd_epoch_##SFX(const REC *rec, const int64_t *block_ptr,               \
        const int32_t *schedule, int grid, uint64_t seed, int shuffle,                   \
        int32_t *scratch, int64_t max_runs,                                              \
        T *P, T *Q, T *bu, T *bi, int64_t k, T mu, T lr, T reg, T regb,                  \
        double *block_sse, int n_threads)                                                \
{                                                                                        \
    mf_kernels kern = mf_k;                                                              \
    int64_t n_blocks = (int64_t)grid * grid;                                             \
    /* dataflow state: per row and column the rounds done; per block "claimed" */       \
    int32_t *done = MF_DATAFLOW ? calloc((size_t)2 * grid * MF_PAD, sizeof *done) : 0;   \
    unsigned char *claimed = MF_DATAFLOW ? calloc((size_t)n_blocks, 1) : 0;              \
    int64_t low = 0, n_claimed = 0;                                                      \
    (void)low; (void)n_claimed;                                                          \
    if (MF_DATAFLOW && (!done || !claimed)) {  /* out of memory: the caller raises */    \
        free(done); free(claimed); return -1.0;                                          \
    }                                                                                    \
    MF_OMP_PARALLEL(n_threads)                                                           \
    {                                                                                    \
        int32_t *runs = shuffle ? scratch + (int64_t)mf_thread_num() * max_runs : 0;     \
        MF_EPOCH_LOOP                                                                    \
            int32_t b = schedule[t];                                                     \
            int64_t start = block_ptr[b], n = block_ptr[b + 1] - start;                  \
            MF_EPOCH_WAIT                                                                \
            if (runs) mf_permutation(runs, (n + MF_RUN - 1) / MF_RUN,                    \
                                     mf_block_seed(seed, b));                            \
            block_sse[b] = kern.block_##SFX(rec + start, runs, n, P, Q, bu, bi, k,       \
                                            mu, lr, reg, regb);                          \
            MF_EPOCH_DONE                                                                \
        }                                                                                \
    }                                                                                    \
    free(done); free(claimed);                                                           \
    double sse = 0.0;                                                                    \
    for (int64_t b = 0; b < n_blocks; b++) sse += block_sse[b];                          \
    return sse;                                                                          \
}

#if MF_DATAFLOW
/* claim ready blocks (mf_claim) until none is left; when one is trained, mark its
 * round done for its row and its column */
#define MF_EPOCH_LOOP                                                                    \
    for (;;) {                                                                           \
        int64_t t = mf_claim(schedule, grid, n_blocks, done, claimed, &low, &n_claimed); \
        if (t < 0) break;                                                                \
        int32_t round = (int32_t)(t / grid);
#define MF_EPOCH_WAIT                                                                    \
        int32_t *row_done = done + (int64_t)(b / grid) * MF_PAD;                         \
        int32_t *col_done = done + (int64_t)(grid + b % grid) * MF_PAD;
#define MF_EPOCH_DONE                                                                    \
        __atomic_store_n(row_done, round + 1, __ATOMIC_RELEASE);                         \
        __atomic_store_n(col_done, round + 1, __ATOMIC_RELEASE);
#else
/* without GNU atomics: a barrier between rounds (omp for), or plain serial order */
#define MF_EPOCH_LOOP                                                                    \
    for (int s = 0; s < grid; s++) {                                                     \
        MF_OMP_FOR_DYNAMIC                                                               \
        for (int64_t t = (int64_t)s * grid; t < (int64_t)(s + 1) * grid; t++) {
#define MF_EPOCH_WAIT
#define MF_EPOCH_DONE }
#endif

#ifdef _OPENMP
#define MF_PRAGMA(x) _Pragma(#x)
#define MF_OMP_PARALLEL(n) MF_PRAGMA(omp parallel num_threads(n))
#define MF_OMP_FOR_DYNAMIC MF_PRAGMA(omp for schedule(dynamic, 1))
#else
#define MF_OMP_PARALLEL(n)
#define MF_OMP_FOR_DYNAMIC
#endif

MF_DEFINE_EPOCH(float, f32, mf_rec32)
MF_DEFINE_EPOCH(double, f64, mf_rec64)

static inline double mf_predict_range_f32_d(const int32_t *us, const int32_t *is,
        const float *r, int64_t n, const float *P, const float *Q, const float *bu,
        const float *bi, int64_t k, float mu, float lo, float hi, float *out)
{ return mf_k.predict_f32(us, is, r, n, P, Q, bu, bi, k, mu, lo, hi, out); }
static inline double mf_predict_range_f64_d(const int32_t *us, const int32_t *is,
        const double *r, int64_t n, const double *P, const double *Q, const double *bu,
        const double *bi, int64_t k, double mu, double lo, double hi, double *out)
{ return mf_k.predict_f64(us, is, r, n, P, Q, bu, bi, k, mu, lo, hi, out); }

#endif
