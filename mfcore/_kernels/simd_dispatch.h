/* What the SIMD kernels (sgd_simd.h, predict_simd.h, recommend_simd.h, als_solve.h,
 * ials_solve.h) share: whether this build can dispatch between x86 instruction sets, the
 * path numbers, which paths the CPU (and OS) supports, and the one selection of the path
 * every kernel runs. Python names the paths in mfcore._kernels.simd.SIMD_PATHS, in this
 * order. */
#ifndef MFCORE_SIMD_DISPATCH_H
#define MFCORE_SIMD_DISPATCH_H

enum { MF_PATH_BASELINE = 0, MF_PATH_AVX2 = 1, MF_PATH_AVX512 = 2, MF_N_PATHS = 3 };

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define MF_X86_DISPATCH 1
#else
#define MF_X86_DISPATCH 0
#endif

/* Of three copies of a kernel, the one for path `p` (a path mf_path_supported() accepts);
 * MF_FOR_PATH(p, f): of f##_baseline, f##_avx2 and f##_avx512. */
#if MF_X86_DISPATCH
#define MF_PICK(p, baseline, avx2, avx512) \
    ((p) == MF_PATH_AVX512 ? (avx512) : (p) == MF_PATH_AVX2 ? (avx2) : (baseline))
#else
#define MF_PICK(p, baseline, avx2, avx512) (baseline)
#endif
#define MF_FOR_PATH(p, f) MF_PICK(p, f##_baseline, f##_avx2, f##_avx512)

/* M(suffix, attribute) once per path this build has: the copies of a kernel whose entry
 * points a macro M defines (as name##_##suffix, compiled with `attribute`). */
#if MF_X86_DISPATCH
#define MF_EACH_PATH(M)                                  \
    M(baseline, )                                        \
    M(avx2, __attribute__((target("avx2,fma"))))         \
    M(avx512, __attribute__((target("avx512f,avx2,fma"))))
#else
#define MF_EACH_PATH(M) M(baseline, )
#endif

/* The path the kernels run: one number, held by mfcore._kernels.simd (simd.pyx, which
 * checks it with mf_path_supported), which every kernel module binds at import with
 * mf_bind_path; the baseline until then. Each call of a kernel reads it. */
static const int mf_baseline_path = MF_PATH_BASELINE;
static const int *mf_path_cell = &mf_baseline_path;

static inline void mf_bind_path(const int *cell)
{
    mf_path_cell = cell;
}

static inline int mf_path(void)
{
    return *mf_path_cell;
}


/* 1 if this build has the path and the CPU (and OS) can run it. */
static inline int mf_path_supported(int path)
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
