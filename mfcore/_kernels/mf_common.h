/* What every kernel header shares: the inline and restrict spellings, and the vectors of
 * each SIMD path's register width with their horizontal sums.
 *
 *   MF_INLINE    a helper inlined into its caller, whole (so each entry point that carries
 *                a path's target attribute is one function compiled for that path)
 *   MF_RESTRICT  a pointer through which nothing else is read or written
 *   MF_CAT       two tokens pasted after expansion
 *   MF_PREFETCH  a hint to bring an address's cache line in for writing
 *   MF_VECTORS   1 where GCC/Clang vector extensions exist; 0: scalar loops only
 *   mf_vf4, mf_vf8, mf_vf16, mf_vd2, mf_vd4, mf_vd8   vectors of 16, 32 and 64 bytes
 *                (the baseline's, AVX2's and AVX-512's registers); mf_vf2 is half an mf_vf4
 *   mf_hsum_*    the sum of a vector's lanes, in a fixed tree order (halves added until
 *                one lane is left), so that a path's results do not depend on the compiler
 */
#ifndef MFCORE_MF_COMMON_H
#define MFCORE_MF_COMMON_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define MF_INLINE static inline __attribute__((always_inline))
#else
#define MF_INLINE static inline
#endif

/* MF_CAT(a, b): the token ab, after a and b are expanded (MF_CAT(mf_rec_, T) with T float
 * is mf_rec_float) */
#define MF_PASTE(a, b) a##b
#define MF_CAT(a, b) MF_PASTE(a, b)

/* MF_PREFETCH(addr): bring addr's cache line in, for writing (a hint; nothing elsewhere) */
#if defined(__GNUC__)
#define MF_PREFETCH(addr) __builtin_prefetch((addr), 1, 3)
#else
#define MF_PREFETCH(addr) ((void)(addr))
#endif

#if defined(__GNUC__) || defined(_MSC_VER)
#define MF_RESTRICT __restrict
#else
#define MF_RESTRICT
#endif

#if defined(__GNUC__)
#define MF_VECTORS 1
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* vectors passed only to always_inline helpers */
#endif
typedef float mf_vf16 __attribute__((vector_size(64)));
typedef float mf_vf8 __attribute__((vector_size(32)));
typedef float mf_vf4 __attribute__((vector_size(16)));
typedef float mf_vf2 __attribute__((vector_size(8)));
typedef double mf_vd8 __attribute__((vector_size(64)));
typedef double mf_vd4 __attribute__((vector_size(32)));
typedef double mf_vd2 __attribute__((vector_size(16)));

/* The sum of a vector's lanes: its halves added, then the half's sum; (memcpy of a half
 * compiles to a register extract) */
#define MF_HSUM_BY_HALVES(name, scalar, vector, half, half_sum)                          \
    MF_INLINE scalar name(vector a)                                                      \
    {                                                                                    \
        half lo, hi;                                                                     \
        memcpy(&lo, &a, sizeof lo);                                                      \
        memcpy(&hi, (char *)&a + sizeof lo, sizeof hi);                                  \
        return half_sum(lo + hi);                                                        \
    }

MF_INLINE float mf_hsum_f2(mf_vf2 d)
{
    return d[0] + d[1];
}

MF_INLINE double mf_hsum_d2(mf_vd2 a)
{
    return a[0] + a[1];
}

MF_HSUM_BY_HALVES(mf_hsum_f4, float, mf_vf4, mf_vf2, mf_hsum_f2)
MF_HSUM_BY_HALVES(mf_hsum_f8, float, mf_vf8, mf_vf4, mf_hsum_f4)
MF_HSUM_BY_HALVES(mf_hsum_f16, float, mf_vf16, mf_vf8, mf_hsum_f8)
MF_HSUM_BY_HALVES(mf_hsum_d4, double, mf_vd4, mf_vd2, mf_hsum_d2)
MF_HSUM_BY_HALVES(mf_hsum_d8, double, mf_vd8, mf_vd4, mf_hsum_d4)
#undef MF_HSUM_BY_HALVES
#else /* no vector extensions: scalar loops only (the vector types only give a width) */
#define MF_VECTORS 0
typedef float mf_vf4[4];
typedef float mf_vf8[8];
typedef float mf_vf16[16];
typedef double mf_vd2[2];
typedef double mf_vd4[4];
typedef double mf_vd8[8];
#endif

#endif
