/* What the SIMD kernels (sgd_simd.h, predict_simd.h, recommend_simd.h, als_solve.h) share:
 * whether this build can dispatch between x86 instruction sets, the path numbers, and
 * which paths the CPU (and OS) supports. Python names the paths in
 * mfcore._kernels.simd.SIMD_PATHS, in this order. */
#ifndef MFCORE_SIMD_DISPATCH_H
#define MFCORE_SIMD_DISPATCH_H

enum { MF_PATH_BASELINE = 0, MF_PATH_AVX2 = 1, MF_PATH_AVX512 = 2, MF_N_PATHS = 3 };

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define MF_X86_DISPATCH 1
#else
#define MF_X86_DISPATCH 0
#endif

/* The copy of kernel `f` for path `p` (f##_avx512, f##_avx2 or f##_baseline), for a path
 * mf_path_supported() accepts: what each kernel's selector installs. */
#if MF_X86_DISPATCH
#define MF_AVX2_OR_BASELINE(p, f) ((p) == MF_PATH_AVX2 ? f##_avx2 : f##_baseline)
#define MF_FOR_PATH(p, f) ((p) == MF_PATH_AVX512 ? f##_avx512 : MF_AVX2_OR_BASELINE(p, f))
#else
#define MF_FOR_PATH(p, f) (f##_baseline)
#endif

/* 1 if this build has the path and the CPU (and OS) can run it. */
static int mf_path_supported(int path)
{
    if (path == MF_PATH_BASELINE) return 1;
#if MF_X86_DISPATCH
    __builtin_cpu_init();
    if (path == MF_PATH_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (path == MF_PATH_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2")
            && __builtin_cpu_supports("fma");
#endif
    return 0;
}

#endif
