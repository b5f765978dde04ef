/* One epoch of block-parallel SGD for one value type.
 *
 * sgd_simd.h includes this file twice, after defining
 *
 *   T          the value type: float or double
 *   REC        its training record: mf_rec32 or mf_rec64
 *   NAME(x)    x with the value type's suffix, e.g. mf_sgd_epoch_f32
 *
 * and this file undefines them at its end. The blocks are trained by the current path's
 * block kernel (mf_k(), the dispatch table), so this code is compiled once, for the baseline.
 *
 * The schedule lists grid x grid blocks in `grid` rounds; round s is
 * schedule[s*grid .. s*grid+grid-1], blocks pairwise disjoint in users and items. Each
 * block row (user group) and block column (item group) must see its blocks in round
 * order; nothing else is ordered. So a thread claims the first block in schedule order
 * whose row and column have finished the round before its own (row and column counters
 * in `done`, mf_claim): no thread waits for a whole round, a slow thread holds up only
 * its own row and column, and no two running blocks share a row or a column.
 * Every parameter therefore sees the same sequence of updates whatever the number of
 * threads or their timing: the result is bit-identical across thread counts.
 *
 * Block b holds records block_ptr[b] .. block_ptr[b+1]-1, visited in runs of MF_RUN
 * records taken in the order mf_permutation(n_runs, mf_block_seed(seed, b)) (or as
 * stored when shuffle is 0), built in the calling thread's part of `scratch` (max_runs
 * entries a thread). The records are never modified, so an epoch's order depends on its
 * seed alone. Block b's squared error lands in block_sse[b] and the total is summed in
 * block order. Returns -1 if the block counters cannot be allocated.
 */

/* Train block b with the kernel `block` (runs: this thread's scratch, or NULL). */
static inline double NAME(mf_train_block)(NAME(mf_block_fn) block, const REC *rec,
                                          const int64_t *block_ptr, int32_t b,
                                          uint64_t seed, int32_t *runs,
                                          T *P, T *Q, T *bu, T *bi, int64_t k,
                                          T mu, T lr, T reg, T regb)
{
    int64_t start = block_ptr[b], n = block_ptr[b + 1] - start;
    if (runs)
        mf_permutation(runs, (n + MF_RUN - 1) / MF_RUN, mf_block_seed(seed, b));
    return block(rec + start, runs, n, P, Q, bu, bi, k, mu, lr, reg, regb);
}

static double NAME(mf_sgd_epoch)(const REC *rec, const int64_t *block_ptr,
                                 const int32_t *schedule, int grid, uint64_t seed, int shuffle,
                                 int32_t *scratch, int64_t max_runs,
                                 T *P, T *Q, T *bu, T *bi, int64_t k,
                                 T mu, T lr, T reg, T regb, double *block_sse, int n_threads)
{
    NAME(mf_block_fn) block = mf_k()->NAME(block); /* the selected path's block kernel */
    int64_t n_blocks = (int64_t)grid * grid;
#if MF_DATAFLOW
    /* per block row and column the rounds done (a cache line each); per block "claimed" */
    int32_t *done = calloc((size_t)2 * grid * MF_PAD, sizeof *done);
    unsigned char *claimed = calloc((size_t)n_blocks, 1);
    int64_t low = 0, n_claimed = 0;
    if (!done || !claimed) { /* out of memory: the caller raises */
        free(done);
        free(claimed);
        return -1.0;
    }
#endif
#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads)
#else
    (void)n_threads;
#endif
    {
        int32_t *runs = shuffle ? scratch + (int64_t)mf_thread_num() * max_runs : 0;
#if MF_DATAFLOW
        /* claim ready blocks until none is left; once one is trained, mark its round
         * done for its row and its column */
        for (;;) {
            int64_t t = mf_claim(schedule, grid, n_blocks, done, claimed, &low, &n_claimed);
            if (t < 0)
                break;
            int32_t b = schedule[t], round = (int32_t)(t / grid);
            block_sse[b] = NAME(mf_train_block)(block, rec, block_ptr, b, seed, runs,
                                                P, Q, bu, bi, k, mu, lr, reg, regb);
            __atomic_store_n(done + (int64_t)(b / grid) * MF_PAD, round + 1, __ATOMIC_RELEASE);
            __atomic_store_n(done + (int64_t)(grid + b % grid) * MF_PAD, round + 1,
                             __ATOMIC_RELEASE);
        }
#else
        /* without GNU atomics: a barrier between rounds (omp for), or serial order */
        for (int s = 0; s < grid; s++) {
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
            for (int64_t t = (int64_t)s * grid; t < (int64_t)(s + 1) * grid; t++) {
                int32_t b = schedule[t];
                block_sse[b] = NAME(mf_train_block)(block, rec, block_ptr, b, seed, runs,
                                                    P, Q, bu, bi, k, mu, lr, reg, regb);
            }
        }
#endif
    }
#if MF_DATAFLOW
    free(done);
    free(claimed);
#endif
    double sse = 0.0;
    for (int64_t b = 0; b < n_blocks; b++)
        sse += block_sse[b];
    return sse;
}

#undef T
#undef REC
#undef NAME
