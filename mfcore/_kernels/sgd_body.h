/* The SGD kernels for one value type on one instruction set.
 *
 * simd_paths.h includes this file once per value type and path, with T, VT, HSUM, NAME and
 * MF_TARGET defined (see there). The helpers (MF_INLINE) are always inlined into the
 * entry points at the end, which carry MF_TARGET: so each entry point is one function
 * compiled for this copy's instruction set, and sgd_simd.h puts them in the path's
 * dispatch table. Without GCC/Clang vector extensions (MF_VECTORS 0) only the scalar
 * loops are compiled.
 */

#define W ((int)(sizeof(VT) / sizeof(T)))  /* lanes of a VT */
#define REC MF_CAT(mf_rec_, T)              /* the training record: mf_rec_float ... */

/* GCC (12) warns of undefined behaviour in the dot product's scalar tail of some constant-k
 * copies (25 vectors a row) where that tail never runs: a false alarm, silenced here only. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Waggressive-loop-optimizations"
#endif
#include "dot_body.h" /* NAME(mf_dot): p . q */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* p += lr (e q - reg p) and q += lr (e p - reg q), both from the old p and q. */
MF_INLINE void NAME(mf_step)(T *p, T *q, T e, T lr, T reg, int64_t k)
{
    int64_t f = 0;
#if MF_VECTORS
    if (f + W <= k) {
        VT zero = {0}; /* x - zero puts x in every lane, -0 included */
        VT ev = e - zero, lrv = lr - zero, regv = reg - zero;
        for (; f + W <= k; f += W) {
            VT pv, qv, np_, nq;
            memcpy(&pv, p + f, sizeof pv);
            memcpy(&qv, q + f, sizeof qv);
            np_ = pv + lrv * (ev * qv - regv * pv);
            nq = qv + lrv * (ev * pv - regv * qv);
            memcpy(p + f, &np_, sizeof np_);
            memcpy(q + f, &nq, sizeof nq);
        }
    }
#endif
    for (; f < k; f++) {
        T pf = p[f], qf = q[f];
        p[f] = pf + lr * (e * qf - reg * pf);
        q[f] = qf + lr * (e * pf - reg * qf);
    }
}

/* One rating: returns the error measured before the update. */
MF_INLINE T NAME(mf_update)(int32_t u, int32_t i, T r, T *P, T *Q, T *bu, T *bi,
                            int64_t k, T mu, T lr, T reg, T regb)
{
    T *p = P + (int64_t)u * k, *q = Q + (int64_t)i * k;
    T e = r - (mu + bu[u] + bi[i] + NAME(mf_dot)(p, q, k));
    bu[u] += lr * (e - regb * bu[u]);
    bi[i] += lr * (e - regb * bi[i]);
    NAME(mf_step)(p, q, e, lr, reg, k);
    return e;
}

/* mf_step(p, q, ...) and then mf_dot(p2, q2, k), in one pass over the k columns: the
 * same arithmetic in the same order, but the dot product of the next rating's rows runs
 * beside this rating's update instead of after it, so the two dependency chains overlap.
 * Its value is the next rating's dot product only if that rating shares no row with this
 * one (the caller checks, and otherwise calls mf_dot again after the update). */
MF_INLINE T NAME(mf_step_dot)(T *p, T *q, T e, T lr, T reg, const T *p2, const T *q2,
                              int64_t k)
{
    int64_t f = 0;
    T s = 0;
#if MF_VECTORS
    if (f + W <= k) {
        VT zero = {0}; /* x - zero puts x in every lane, -0 included */
        VT ev = e - zero, lrv = lr - zero, regv = reg - zero, a0 = zero, a1 = zero;
/* mf_step on the vector at p + g and q + g, and acc += the product of p2's and q2's */
#define MF_STEP_DOT(g, acc)                                                                \
        do {                                                                               \
            VT pv, qv, np_, nq, x, y;                                                      \
            memcpy(&pv, p + (g), sizeof pv);                                               \
            memcpy(&qv, q + (g), sizeof qv);                                               \
            memcpy(&x, p2 + (g), sizeof x);                                                \
            memcpy(&y, q2 + (g), sizeof y);                                                \
            acc += x * y;                                                                  \
            np_ = pv + lrv * (ev * qv - regv * pv);                                        \
            nq = qv + lrv * (ev * pv - regv * qv);                                         \
            memcpy(p + (g), &np_, sizeof np_);                                             \
            memcpy(q + (g), &nq, sizeof nq);                                               \
        } while (0)
        for (; f + 2 * W <= k; f += 2 * W) { /* mf_dot's order: pairs into a0 and a1, */
            MF_STEP_DOT(f, a0);
            MF_STEP_DOT(f + W, a1);
        }
        if (f + W <= k) { /* then a last single vector into a0 */
            MF_STEP_DOT(f, a0);
            f += W;
        }
#undef MF_STEP_DOT
        s = HSUM(a0 + a1);
    }
#endif
    for (int64_t g = f; g < k; g++) {
        T pf = p[g], qf = q[g];
        p[g] = pf + lr * (e * qf - reg * pf);
        q[g] = qf + lr * (e * pf - reg * qf);
    }
    for (; f < k; f++)
        s += p2[f] * q2[f];
    return s;
}

/* Start `at` at a block's first record and `ahead` MF_AHEAD records after it. */
MF_INLINE void NAME(mf_cursors_start)(mf_cursor *at, mf_cursor *ahead, const int32_t *runs,
                                      int64_t n)
{
    mf_cursor_start(at, runs, n);
    mf_cursor_start(ahead, runs, n);
    for (int j = 0; j < MF_AHEAD; j++)
        mf_cursor_next(ahead, runs, n);
}

/* Warm the cache for the rows and biases of the rating at `ahead` (if any; a few ratings
 * before they are used), and move `ahead` on. */
MF_INLINE void NAME(mf_prefetch_ahead)(mf_cursor *ahead, const REC *rec, const int32_t *runs,
                                       int64_t n, const T *P, const T *Q, const T *bu,
                                       const T *bi, int64_t k)
{
    if (ahead->t < 0)
        return;
    const REC *x = rec + ahead->t;
    mf_cursor_next(ahead, runs, n);
    const T *p = P + (int64_t)x->u * k, *q = Q + (int64_t)x->i * k;
    for (int64_t f = 0; f < k; f += 64 / (int64_t)sizeof(T)) {
        MF_PREFETCH(p + f);
        MF_PREFETCH(q + f);
    }
    MF_PREFETCH(p + k - 1); /* a row need not start on a cache line */
    MF_PREFETCH(q + k - 1);
    MF_PREFETCH(bu + x->u);
    MF_PREFETCH(bi + x->i);
}

/* The plain block loop (see NAME(mf_block_loop)), software-pipelined: each rating's update
 * runs beside the dot product of the next (mf_step_dot), and the rows of the rating
 * MF_AHEAD places on are prefetched. Every parameter sees the same updates with the same
 * arithmetic as one mf_update after another. n > 0. */
MF_INLINE double NAME(mf_block_pipelined)(const REC *rec, const int32_t *runs, int64_t n,
                                          T *MF_RESTRICT P, T *MF_RESTRICT Q,
                                          T *MF_RESTRICT bu, T *MF_RESTRICT bi, int64_t k,
                                          T mu, T lr, T reg, T regb)
{
    double sse = 0.0;
    mf_cursor at, ahead;
    NAME(mf_cursors_start)(&at, &ahead, runs, n);
    const REC *x = rec + at.t;
    T dot = NAME(mf_dot)(P + (int64_t)x->u * k, Q + (int64_t)x->i * k, k);
    for (;;) {
        int32_t u = x->u, i = x->i;
        T *p = P + (int64_t)u * k, *q = Q + (int64_t)i * k;
        T e = x->r - (mu + bu[u] + bi[i] + dot);
        bu[u] += lr * (e - regb * bu[u]);
        bi[i] += lr * (e - regb * bi[i]);
        sse += (double)e * (double)e;
        NAME(mf_prefetch_ahead)(&ahead, rec, runs, n, P, Q, bu, bi, k);
        int more = mf_cursor_next(&at, runs, n);
        const REC *y = more ? rec + at.t : x; /* the next rating (past the last: itself) */
        T *p2 = P + (int64_t)y->u * k, *q2 = Q + (int64_t)y->i * k;
        dot = NAME(mf_step_dot)(p, q, e, lr, reg, p2, q2, k);
        if (!more)
            break;
        if (y->u == u || y->i == i) /* the update changed the next rating's rows */
            dot = NAME(mf_dot)(p2, q2, k);
        x = y;
    }
    return sse;
}

/* The vector-count copies of the block loop, for a k in (W, 8W] that has no copy of its
 * own: NV = ceil(k / W) vectors a row, kept in registers between the dot product and the
 * update. 64-byte vectors only (NAME(mf_has_vector_copies)): with 32- and 16-byte ones (16
 * registers) they ran slower than the runtime-k loop for NV >= 3.
 * The last vector starts at k - W and overlaps the one before it; the overlapping lanes
 * are left out of the dot product (`keep`, a 0/1 mask) and get the same new values in
 * both vectors (computed from the same old values), so storing both is harmless. */
MF_INLINE int NAME(mf_has_vector_copies)(int64_t k)
{
    return sizeof(VT) == 64 && k > W && k <= 8 * W;
}

#if MF_VECTORS
/* One rating with NV vectors a row (see above); returns the error before the update. */
MF_INLINE T NAME(mf_update_nv)(int32_t u, int32_t i, T r, T *P, T *Q, T *bu, T *bi,
                               int64_t k, const int NV, VT keep,
                               T mu, T lr, T reg, T regb)
{
    T *p = P + (int64_t)u * k, *q = Q + (int64_t)i * k;
    VT zero = {0}, pv[8], qv[8], a0 = zero, a1 = zero;
    for (int v = 0; v < NV; v++) {
        int64_t off = v < NV - 1 ? (int64_t)v * W : k - W;
        memcpy(&pv[v], p + off, sizeof(VT));
        memcpy(&qv[v], q + off, sizeof(VT));
    }
    for (int v = 0; v + 1 < NV; v += 2) {
        a0 += pv[v] * qv[v];
        if (v + 2 < NV)
            a1 += pv[v + 1] * qv[v + 1];
    }
    a1 += pv[NV - 1] * qv[NV - 1] * keep;
    T e = r - (mu + bu[u] + bi[i] + HSUM(a0 + a1));
    bu[u] += lr * (e - regb * bu[u]);
    bi[i] += lr * (e - regb * bi[i]);
    VT ev = e - zero, lrv = lr - zero, regv = reg - zero;
    for (int v = 0; v < NV; v++) {
        int64_t off = v < NV - 1 ? (int64_t)v * W : k - W;
        VT np_ = pv[v] + lrv * (ev * qv[v] - regv * pv[v]);
        VT nq = qv[v] + lrv * (ev * pv[v] - regv * qv[v]);
        memcpy(p + off, &np_, sizeof(VT));
        memcpy(q + off, &nq, sizeof(VT));
    }
    return e;
}
#endif

/* One block of n > 0 records, visited run by run (mf_cursor): the runs of MF_RUN
 * consecutive records are taken in the order `runs` (run indices), or as stored when runs
 * is NULL. NV > 0: the vector-count update with NV vectors a row; NV = 0: the plain update.
 * The rows of the rating MF_AHEAD places on are prefetched. Returns the sum of squared
 * errors. Inlined with a constant k or NV, it becomes a specialized copy. */
MF_INLINE double NAME(mf_block_loop)(const REC *rec, const int32_t *runs, int64_t n,
                                     T *MF_RESTRICT P, T *MF_RESTRICT Q,
                                     T *MF_RESTRICT bu, T *MF_RESTRICT bi,
                                     int64_t k, const int NV,
                                     T mu, T lr, T reg, T regb)
{
    double sse = 0.0;
#if MF_VECTORS
    VT keep = {0}; /* the lanes of the last vector that the one before does not cover */
    for (int j = 0; NV > 0 && j < W; j++)
        keep[j] = j >= NV * (int64_t)W - k ? (T)1 : (T)0;
#else
    (void)NV; /* scalar loops only: no vector-count copies */
#endif
    mf_cursor at, ahead;
    NAME(mf_cursors_start)(&at, &ahead, runs, n);
    do {
        const REC *x = rec + at.t;
        NAME(mf_prefetch_ahead)(&ahead, rec, runs, n, P, Q, bu, bi, k);
#if MF_VECTORS
        T e = NV > 0 ? NAME(mf_update_nv)(x->u, x->i, x->r, P, Q, bu, bi, k, NV, keep,
                                          mu, lr, reg, regb)
                     : NAME(mf_update)(x->u, x->i, x->r, P, Q, bu, bi, k, mu, lr, reg, regb);
#else
        T e = NAME(mf_update)(x->u, x->i, x->r, P, Q, bu, bi, k, mu, lr, reg, regb);
#endif
        sse += (double)e * (double)e;
    } while (mf_cursor_next(&at, runs, n));
    return sse;
}

/* Whether the block loop for k is the pipelined one: for rows of more than 8 vectors, which
 * do not stay in registers between the dot product and the update (16 of them on AVX2);
 * shorter rows are faster one rating after another. A k with a copy of its own is
 * pipelined only if its rows are whole vectors: GCC contracts the scalar tail of such a
 * copy into FMAs differently in the two loops (its last bits would change). */
MF_INLINE int NAME(mf_pipelines)(int64_t k)
{
    return MF_VECTORS && k > 8 * W;
}

/* The block kernel (see NAME(mf_block_loop)). Each k of MF_FIXED_K has a copy with k known
 * at compile time (loops unrolled, rows kept in registers between the dot product and the
 * update); on 64-byte vectors other k in (W, 8W] have a copy per vector count; every
 * other k takes the runtime-k loop. NAME(mf_block_variant) says which copy a k takes. */
MF_INLINE double NAME(mf_block_inline)(const REC *rec, const int32_t *runs, int64_t n,
                                       T *P, T *Q, T *bu, T *bi, int64_t k,
                                       T mu, T lr, T reg, T regb)
{
    if (n <= 0)
        return 0.0;
    switch (k) {
#define MF_CASE(K) case K: return NAME(mf_pipelines)(K) && K % W == 0                      \
        ? NAME(mf_block_pipelined)(rec, runs, n, P, Q, bu, bi, K, mu, lr, reg, regb)        \
        : NAME(mf_block_loop)(rec, runs, n, P, Q, bu, bi, K, 0, mu, lr, reg, regb);
        MF_FIXED_K(MF_CASE)
#undef MF_CASE
    }
    if (NAME(mf_has_vector_copies)(k)) {
        switch ((k + W - 1) / W) {
        case 2: return NAME(mf_block_loop)(rec, runs, n, P, Q, bu, bi, k, 2, mu, lr, reg, regb);
        case 3: return NAME(mf_block_loop)(rec, runs, n, P, Q, bu, bi, k, 3, mu, lr, reg, regb);
        case 4: return NAME(mf_block_loop)(rec, runs, n, P, Q, bu, bi, k, 4, mu, lr, reg, regb);
        case 5: return NAME(mf_block_loop)(rec, runs, n, P, Q, bu, bi, k, 5, mu, lr, reg, regb);
        case 6: return NAME(mf_block_loop)(rec, runs, n, P, Q, bu, bi, k, 6, mu, lr, reg, regb);
        case 7: return NAME(mf_block_loop)(rec, runs, n, P, Q, bu, bi, k, 7, mu, lr, reg, regb);
        case 8: return NAME(mf_block_loop)(rec, runs, n, P, Q, bu, bi, k, 8, mu, lr, reg, regb);
        }
    }
    return NAME(mf_pipelines)(k)
        ? NAME(mf_block_pipelined)(rec, runs, n, P, Q, bu, bi, k, mu, lr, reg, regb)
        : NAME(mf_block_loop)(rec, runs, n, P, Q, bu, bi, k, 0, mu, lr, reg, regb);
}

/* Ratings visited in an explicit order (the reference path, serial). */
MF_INLINE double NAME(mf_ordered_inline)(const int32_t *users, const int32_t *items,
                                         const T *ratings, const int64_t *order, int64_t n,
                                         T *P, T *Q, T *bu, T *bi, int64_t k,
                                         T mu, T lr, T reg, T regb)
{
    double sse = 0.0;
    for (int64_t t = 0; t < n; t++) {
        int64_t j = order[t];
        T e = NAME(mf_update)(users[j], items[j], ratings[j], P, Q, bu, bi, k,
                              mu, lr, reg, regb);
        sse += (double)e * (double)e;
    }
    return sse;
}

/* --- the entry points of this copy: each inlines its implementation above, whole, into
 * one function compiled for MF_TARGET --- */

MF_TARGET static double NAME(mf_block)(const REC *rec, const int32_t *runs, int64_t n,
                                       T *P, T *Q, T *bu, T *bi, int64_t k,
                                       T mu, T lr, T reg, T regb)
{
    return NAME(mf_block_inline)(rec, runs, n, P, Q, bu, bi, k, mu, lr, reg, regb);
}

MF_TARGET static double NAME(mf_ordered)(const int32_t *users, const int32_t *items,
                                         const T *ratings, const int64_t *order, int64_t n,
                                         T *P, T *Q, T *bu, T *bi, int64_t k,
                                         T mu, T lr, T reg, T regb)
{
    return NAME(mf_ordered_inline)(users, items, ratings, order, n, P, Q, bu, bi, k,
                                   mu, lr, reg, regb);
}

/* Which copy of the block loop NAME(mf_block) runs for k: MF_LOOP_FIXED_K, MF_LOOP_VECTORS
 * or MF_LOOP_RUNTIME_K (for tests). */
MF_TARGET static int NAME(mf_block_variant)(int64_t k)
{
    switch (k) {
#define MF_CASE(K) case K: return MF_LOOP_FIXED_K;
        MF_FIXED_K(MF_CASE)
#undef MF_CASE
    }
    return NAME(mf_has_vector_copies)(k) ? MF_LOOP_VECTORS : MF_LOOP_RUNTIME_K;
}

#undef W
#undef REC
