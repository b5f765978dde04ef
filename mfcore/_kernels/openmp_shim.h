/* Lets the kernels call OpenMP's runtime whether or not the build has OpenMP. */
#ifndef MFCORE_OPENMP_SHIM_H
#define MFCORE_OPENMP_SHIM_H
#ifdef _OPENMP
#include <omp.h>
#define MFCORE_OPENMP 1
#else
#define MFCORE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#include <time.h>
static inline double omp_get_wtime(void) { return (double)clock() / CLOCKS_PER_SEC; }
#endif
#endif
