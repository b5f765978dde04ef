/* The conjugate-gradient row solve of ials_solve.h for one floating type: included once with
 * MF_REAL float and MF_R(name) name##_f, once with double and name##_d. */

/* sum of u[c] * v[c] over c in [0, n), n a multiple of 8, in 8 fixed lanes */
MF_INLINE MF_REAL MF_R(mf_ials_dot)(const MF_REAL *MF_RESTRICT u,
                                        const MF_REAL *MF_RESTRICT v, int64_t n)
{
    MF_REAL lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t c = 0; c < n; c += 8)
        for (int l = 0; l < 8; l++) lane[l] += u[c + l] * v[c + l];
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* y[0..n) += a * x[0..n), n a multiple of 8 */
MF_INLINE void MF_R(mf_ials_axpy)(MF_REAL *MF_RESTRICT y, MF_REAL a,
                                      const MF_REAL *MF_RESTRICT x, int64_t n)
{
    for (int64_t c = 0; c < n; c += 8)
        for (int l = 0; l < 8; l++) y[c + l] += a * x[c + l];
}

/* y[0..n) += a0 * x0[0..n) + a1 * x1[0..n), n a multiple of 8 (two rows per pass over y) */
MF_INLINE void MF_R(mf_ials_axpy2)(MF_REAL *MF_RESTRICT y, MF_REAL a0,
                                       const MF_REAL *MF_RESTRICT x0, MF_REAL a1,
                                       const MF_REAL *MF_RESTRICT x1, int64_t n)
{
    for (int64_t c = 0; c < n; c += 8)
        for (int l = 0; l < 8; l++) y[c + l] = (y[c + l] + a0 * x0[c + l]) + a1 * x1[c + l];
}

/* out += sum_{t in [lo, hi)} conf[t] (e_t - a_t . v) a_t, a_t = A[cols[t]], with e_t =
 * target[t] - obias[cols[t]] (residual) or 0 and the sign flipped (product); two pairs at a
 * time, so that their dot products overlap and out is read and written once per two */
MF_INLINE void MF_R(mf_ials_pairs)(const MF_REAL *MF_RESTRICT A, const int32_t *cols,
                                       const MF_REAL *conf, const MF_REAL *target,
                                       const MF_REAL *obias, int64_t lo, int64_t hi,
                                       const MF_REAL *MF_RESTRICT v,
                                       MF_REAL *MF_RESTRICT out, int64_t S, const int residual)
{
    int64_t t = lo;
    for (; t + 1 < hi; t += 2) {
        const int64_t j0 = cols[t], j1 = cols[t + 1];
        const MF_REAL *a0 = A + j0 * S, *a1 = A + j1 * S;
        if (t + 5 < hi) {
            MF_IALS_PREFETCH(A + (int64_t)cols[t + 4] * S);
            MF_IALS_PREFETCH(A + (int64_t)cols[t + 5] * S);
        }
        const MF_REAL d0 = MF_R(mf_ials_dot)(a0, v, S), d1 = MF_R(mf_ials_dot)(a1, v, S);
        const MF_REAL s0 = residual ? conf[t] * (target[t] - obias[j0] - d0) : conf[t] * d0;
        const MF_REAL s1 = residual ? conf[t + 1] * (target[t + 1] - obias[j1] - d1) : conf[t + 1] * d1;
        MF_R(mf_ials_axpy2)(out, s0, a0, s1, a1, S);
    }
    if (t < hi) {
        const int64_t j = cols[t];
        const MF_REAL *a = A + j * S;
        const MF_REAL d = MF_R(mf_ials_dot)(a, v, S);
        MF_R(mf_ials_axpy)(out, residual ? conf[t] * (target[t] - obias[j] - d) : conf[t] * d, a, S);
    }
}

/* out = (w0 G + diag(lam)) v + sum_{t in [lo, hi)} conf[t] (a_{cols[t]} . v) a_{cols[t]}
 * (without the G term when G is NULL) */
MF_INLINE void MF_R(mf_ials_apply_body)(const MF_REAL *MF_RESTRICT G, MF_REAL w0,
                                            const MF_REAL *MF_RESTRICT lam,
                                            const MF_REAL *MF_RESTRICT A, const int32_t *cols,
                                            const MF_REAL *conf, int64_t lo, int64_t hi,
                                            const MF_REAL *MF_RESTRICT v,
                                            MF_REAL *MF_RESTRICT out, int64_t S)
{
    if (G)
        for (int64_t i = 0; i < S; i++)
            out[i] = w0 * MF_R(mf_ials_dot)(G + i * S, v, S) + lam[i] * v[i];
    else
        for (int64_t i = 0; i < S; i++) out[i] = lam[i] * v[i];
    MF_R(mf_ials_pairs)(A, cols, conf, NULL, NULL, lo, hi, v, out, S, 0);
}

/* The row's CG solve in place of x (S values, warm start); r, p, Ap: scratch of S values.
 * With G NULL (w0 = 0, explicit ALS) there is no all-pairs term and g is not read. With
 * centre (S values, else NULL) the penalty is lam |x - centre|^2 (the right-hand side
 * gains lam centre: ALS's side features).
 * Returns 0, or -1 when the answer is not finite. */
MF_INLINE int MF_R(mf_ials_cg_body)(const MF_REAL *MF_RESTRICT G,
                                        const MF_REAL *MF_RESTRICT g, MF_REAL w0,
                                        const MF_REAL *MF_RESTRICT lam,
                                        const MF_REAL *MF_RESTRICT A, const int32_t *cols,
                                        const MF_REAL *conf, const MF_REAL *target,
                                        const MF_REAL *obias, int64_t lo, int64_t hi, int steps,
                                        const MF_REAL *MF_RESTRICT centre,
                                        MF_REAL *MF_RESTRICT x, MF_REAL *MF_RESTRICT r,
                                        MF_REAL *MF_RESTRICT p, MF_REAL *MF_RESTRICT Ap,
                                        int64_t S)
{
    /* r = b - A x = w0 (g - G x) - lam (x - centre) + sum_j c_j (y_j - a_j . x) a_j */
    if (G)
        for (int64_t i = 0; i < S; i++)
            r[i] = w0 * (g[i] - MF_R(mf_ials_dot)(G + i * S, x, S)) - lam[i] * x[i];
    else
        for (int64_t i = 0; i < S; i++) r[i] = -lam[i] * x[i];
    if (centre)
        for (int64_t i = 0; i < S; i++) r[i] += lam[i] * centre[i];
    MF_R(mf_ials_pairs)(A, cols, conf, target, obias, lo, hi, x, r, S, 1);
    double rs = MF_R(mf_ials_dot)(r, r, S);
    memcpy(p, r, (size_t)S * sizeof(MF_REAL));
    for (int step = 0; step < steps; step++) {
        if (!(rs > 1e-30)) break;
        MF_R(mf_ials_apply_body)(G, w0, lam, A, cols, conf, lo, hi, p, Ap, S);
        const double pAp = MF_R(mf_ials_dot)(p, Ap, S);
        if (!(pAp > 0)) break;
        const MF_REAL alpha = (MF_REAL)(rs / pAp);
        MF_R(mf_ials_axpy)(x, alpha, p, S);
        MF_R(mf_ials_axpy)(r, -alpha, Ap, S);
        const double rs_new = MF_R(mf_ials_dot)(r, r, S);
        const MF_REAL beta = (MF_REAL)(rs_new / rs);
        for (int64_t i = 0; i < S; i++) p[i] = r[i] + beta * p[i];
        rs = rs_new;
    }
    for (int64_t i = 0; i < S; i++)
        if (!(fabs((double)x[i]) < HUGE_VAL)) return -1;
    return 0;
}

/* sum_{t in [lo, hi)} conf[t] (target[t] - obias[j] - a_j . x)^2, j = cols[t]: the row's
 * weighted squared error on its observed pairs (summed in float64) */
MF_INLINE double MF_R(mf_ials_row_loss_body)(const MF_REAL *MF_RESTRICT A,
                                                 const int32_t *cols, const MF_REAL *conf,
                                                 const MF_REAL *target, const MF_REAL *obias,
                                                 int64_t lo, int64_t hi,
                                                 const MF_REAL *MF_RESTRICT x, int64_t S)
{
    double loss = 0.0;
    for (int64_t t = lo; t < hi; t++) {
        const int64_t j = cols[t];
        const double e = (double)target[t] - (double)obias[j] - (double)MF_R(mf_ials_dot)(A + j * S, x, S);
        loss += (double)conf[t] * e * e;
    }
    return loss;
}

#define MF_IALS_PATH(suffix, attribute)                                                        \
    attribute static int MF_R(mf_ials_cg_##suffix)(                                            \
        const MF_REAL *G, const MF_REAL *g, MF_REAL w0, const MF_REAL *lam, const MF_REAL *A, \
        const int32_t *cols, const MF_REAL *conf, const MF_REAL *target, const MF_REAL *obias,\
        int64_t lo, int64_t hi, int steps, const MF_REAL *centre, MF_REAL *x, MF_REAL *r,     \
        MF_REAL *p, MF_REAL *Ap, int64_t S)                                                    \
    {                                                                                          \
        return MF_R(mf_ials_cg_body)(G, g, w0, lam, A, cols, conf, target, obias, lo, hi,     \
                                     steps, centre, x, r, p, Ap, S);                           \
    }                                                                                          \
    attribute static double MF_R(mf_ials_row_loss_##suffix)(                                   \
        const MF_REAL *A, const int32_t *cols, const MF_REAL *conf, const MF_REAL *target,    \
        const MF_REAL *obias, int64_t lo, int64_t hi, const MF_REAL *x, int64_t S)            \
    {                                                                                          \
        return MF_R(mf_ials_row_loss_body)(A, cols, conf, target, obias, lo, hi, x, S);       \
    }

MF_EACH_PATH(MF_IALS_PATH)
#undef MF_IALS_PATH

/* the copy of `name` (mf_ials_cg, mf_ials_row_loss) for the path selected in simd_dispatch.h */
#define MF_IALS_SELECTED(name) \
    MF_PICK(mf_path(), MF_R(name##_baseline), MF_R(name##_avx2), MF_R(name##_avx512))

static inline int MF_R(mf_ials_cg)(const MF_REAL *G, const MF_REAL *g, MF_REAL w0,
                                   const MF_REAL *lam, const MF_REAL *A, const int32_t *cols,
                                   const MF_REAL *conf, const MF_REAL *target,
                                   const MF_REAL *obias, int64_t lo, int64_t hi, int steps,
                                   const MF_REAL *centre, MF_REAL *x, MF_REAL *r, MF_REAL *p,
                                   MF_REAL *Ap, int64_t S)
{
    return MF_IALS_SELECTED(mf_ials_cg)(G, g, w0, lam, A, cols, conf, target, obias, lo, hi,
                                        steps, centre, x, r, p, Ap, S);
}

static inline double MF_R(mf_ials_row_loss)(const MF_REAL *A, const int32_t *cols,
                                            const MF_REAL *conf, const MF_REAL *target,
                                            const MF_REAL *obias, int64_t lo, int64_t hi,
                                            const MF_REAL *x, int64_t S)
{
    return MF_IALS_SELECTED(mf_ials_row_loss)(A, cols, conf, target, obias, lo, hi, x, S);
}
#undef MF_IALS_SELECTED

