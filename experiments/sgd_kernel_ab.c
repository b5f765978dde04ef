/* The SGD block epoch of one kernel version, exported for experiments/sgd_kernel_ab.py:
 * compiled against a folder of kernel headers (gcc -I folder). float32, global mean 0. */
#include "sgd_simd.h"
static int cell;
double ab_epoch_f32(const void *rec, const int64_t *block_ptr, const int32_t *schedule, int grid,
                    uint64_t seed, int32_t *scratch, int64_t max_runs, float *P, float *Q,
                    float *bu, float *bi, int64_t k, float lr, float reg, float regb,
                    double *block_sse, int n_threads, int path)
{
    cell = path;
    mf_bind_path(&cell);
    return mf_sgd_epoch_f32((const mf_rec32 *)rec, block_ptr, schedule, grid, seed, 1, scratch,
                            max_runs, P, Q, bu, bi, k, 0.0f, lr, reg, regb, block_sse, n_threads);
}
