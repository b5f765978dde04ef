/* Compile a kernel body once per value type and instruction set.
 *
 * Define MF_BODY as the body's file name, then include this file: it includes the body six
 * times, float and double on each of the baseline, AVX2 and AVX-512 paths (the last two on
 * x86 only), each time with
 *
 *   T          the value type: float or double
 *   VT         a vector of T of the path's register width (16, 32 or 64 bytes, mf_common.h)
 *   HSUM       the horizontal sum of a VT (mf_hsum_f4 ... mf_hsum_d8)
 *   NAME(x)    x with this copy's suffix, e.g. mf_block_f32_avx2
 *   MF_TARGET  this copy's instruction set: __attribute__((target(...))), or nothing
 *
 * defined (simd_copy.h includes the body and undefines them). A body defines its entry points with MF_TARGET and
 * inlines its helpers (MF_INLINE) into them, so each entry point is one function compiled
 * for its path; MF_FOR_PATH (simd_dispatch.h) picks a path's copy at run time.
 * Used by sgd_simd.h, predict_simd.h and recommend_simd.h.
 */
#include "mf_common.h"
#include "simd_dispatch.h"

#define T float
#define VT mf_vf4
#define HSUM mf_hsum_f4
#define NAME(x) x##_f32_baseline
#define MF_TARGET
#include "simd_copy.h"

#define T double
#define VT mf_vd2
#define HSUM mf_hsum_d2
#define NAME(x) x##_f64_baseline
#define MF_TARGET
#include "simd_copy.h"

#if MF_X86_DISPATCH
#define T float
#define VT mf_vf8
#define HSUM mf_hsum_f8
#define NAME(x) x##_f32_avx2
#define MF_TARGET __attribute__((target("avx2,fma")))
#include "simd_copy.h"

#define T double
#define VT mf_vd4
#define HSUM mf_hsum_d4
#define NAME(x) x##_f64_avx2
#define MF_TARGET __attribute__((target("avx2,fma")))
#include "simd_copy.h"

#define T float
#define VT mf_vf16
#define HSUM mf_hsum_f16
#define NAME(x) x##_f32_avx512
#define MF_TARGET __attribute__((target("avx512f,avx2,fma")))
#include "simd_copy.h"

#define T double
#define VT mf_vd8
#define HSUM mf_hsum_d8
#define NAME(x) x##_f64_avx512
#define MF_TARGET __attribute__((target("avx512f,avx2,fma")))
#include "simd_copy.h"
#endif
