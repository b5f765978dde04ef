/* Side features in the Gibbs sampler (the relation-block / SVDFeature model of libFM and
 * myFM), in plain C99 over the draws of bayes_gibbs.h.
 *
 * A row (a user, or an item) v with feature values x_vg has the effective parameters
 *     be_v = b_v + sum_g x_vg w_g              (bias: each feature's linear weight w_g)
 *     pe_v = p_v + ybar_v + sum_g x_vg v_g     (factors: each feature's vector v_g)
 * so a feature's parameter is the (k + 1)-vector theta_g = (w_g, v_g), column 0 the
 * linear weight, column 1 + f factor f. The ratings see only (be, pe), which the row draws
 * of ``gibbs_sweep`` sample under their prior shifted by the feature (and implicit) terms.
 * Given them, theta enters only that prior: per column c a linear regression
 *     t_vc = be_vc - m_c - other_vc = sum_g x_vg theta_gc + N(0, 1 / lambda_c)
 * (m_c, lambda_c: the row group's hyperparameters of column c; other_vc: the implicit term
 * ybar_vc for a factor column, 0 for the bias), with theta_gc ~ N(mg_c, 1 / lg_c) under
 * the Normal-Gamma group of g's column (its own hyperprior, one per column of the table
 * it came from). The columns are independent, so blocks of them are parallel tasks; within
 * a column the features are drawn in order, keeping each row's regression residual.
 */
#ifndef MFCORE_BAYES_FEATURES_H
#define MFCORE_BAYES_FEATURES_H

#include "bayes_gibbs.h"

/* Streams of the feature draws (after those of bayes_gibbs.h): hyperparameters at row 0/1
 * and coordinate group * (k + 1) + c; parameters at row g, coordinate c. */
enum {
    MF_STREAM_USER_FEATURE_HYPER = 10,
    MF_STREAM_ITEM_FEATURE_HYPER = 11,
    MF_STREAM_USER_FEATURE = 12,
    MF_STREAM_ITEM_FEATURE = 13
};

/* Feature columns a task of a side large enough to spread over threads: they share the
 * pass over each feature's rows. (A small side is one task of all its columns.) */
#define MF_FEATURE_BLOCK 4

/* The address of column c of row v of the effective (or shift) parameters held as a bias
 * array and a factor matrix of k columns. */
static inline double *mf_column_at(double *bias, double *factors, int64_t k, int64_t v,
                                   int64_t c)
{
    return c == 0 ? bias + v : factors + v * k + (c - 1);
}

/* Draw columns c0 .. c0 + bb - 1 of theta (n_features rows of k + 1) from the regression
 * above, features in order, and refresh the shifts and own parameters of those columns.
 * Feature g's rows are rows[ptr[g]] .. rows[ptr[g + 1] - 1] with values x[ptr[g]] ...;
 * sq[g] = sum of its x^2; group[g] its group, whose column c has mean
 * hyper_mean[group * (k + 1) + c] and precision hyper_prec[...]. The row side: effective
 * (eff_bias, eff_factors), the total shift (shift_bias, shift_factors: the feature terms
 * plus any implicit term, so t - sum x theta = eff - m - shift), own factors (own = eff -
 * shift; the bias's own value is not stored), and its hyperparameters (row_mean, row_prec,
 * indexed by c). ``work``: (n_rows + 2) * bb doubles. With res_vc = eff_vc - m_c -
 * shift_vc and theta = theta[g (k + 1) + c]:
 *     precision = lambda_c sq[g] + lg_c
 *     mean      = (lambda_c (sum_v x_vg res_vc + theta sq[g]) + lg_c mg_c) / precision
 *     theta'    = mean + z / sqrt(precision),  z = mf_normal(seed, stream, sweep, g, c, 0)
 *     res_vc   -= x_vg (theta' - theta)   for every row v of g.
 * Afterwards shift_vc = eff_vc - m_c - res_vc and own_vc = eff_vc - shift_vc. Each column's
 * numbers are the same whatever bb and c0 cut the columns into tasks. */
static inline void mf_feature_columns(double *theta, int64_t n_features, int64_t k,
                                      int64_t c0, int64_t bb, const int64_t *ptr,
                                      const int32_t *rows, const double *x, const double *sq,
                                      const int32_t *group, const double *hyper_mean,
                                      const double *hyper_prec, int64_t n_rows,
                                      double *eff_bias, double *eff_factors,
                                      double *shift_bias, double *shift_factors,
                                      double *own_factors, const double *row_mean,
                                      const double *row_prec, double *work, uint64_t seed,
                                      uint64_t stream, uint64_t sweep)
{
    const int64_t kk = k + 1;
    double *MF_RESTRICT res = work;                      /* n_rows x bb */
    double *MF_RESTRICT s = work + n_rows * bb;          /* bb: sum_v x_vg res_vc */
    double *MF_RESTRICT step = s + bb;                   /* bb: theta' - theta */
    int64_t g, t, v, q;
    for (v = 0; v < n_rows; v++)
        for (q = 0; q < bb; q++)
            res[v * bb + q] = *mf_column_at(eff_bias, eff_factors, k, v, c0 + q)
                              - row_mean[c0 + q]
                              - *mf_column_at(shift_bias, shift_factors, k, v, c0 + q);
    for (g = 0; g < n_features; g++) {
        const int64_t lo = ptr[g], hi = ptr[g + 1];
        for (q = 0; q < bb; q++)
            s[q] = 0.0;
        for (t = lo; t < hi; t++) {
            const double xt = x[t];
            const double *MF_RESTRICT r = res + (int64_t)rows[t] * bb;
            for (q = 0; q < bb; q++)
                s[q] += xt * r[q];
        }
        for (q = 0; q < bb; q++) {
            int64_t c = c0 + q, h = (int64_t)group[g] * kk + c;
            double *th = theta + g * kk + c;
            double prec = row_prec[c] * sq[g] + hyper_prec[h];
            double mean = (row_prec[c] * (s[q] + *th * sq[g]) + hyper_prec[h] * hyper_mean[h])
                          / prec;
            double value = mean + mf_normal(seed, stream, sweep, (uint64_t)g, (uint64_t)c, 0)
                                  / sqrt(prec);
            step[q] = value - *th;
            *th = value;
        }
        for (t = lo; t < hi; t++) {
            const double xt = x[t];
            double *MF_RESTRICT r = res + (int64_t)rows[t] * bb;
            for (q = 0; q < bb; q++)
                r[q] -= xt * step[q];
        }
    }
    for (v = 0; v < n_rows; v++)
        for (q = 0; q < bb; q++) {
            int64_t c = c0 + q;
            double e = *mf_column_at(eff_bias, eff_factors, k, v, c);
            double *sh = mf_column_at(shift_bias, shift_factors, k, v, c);
            *sh = e - row_mean[c] - res[v * bb + q];
            if (c > 0)
                own_factors[v * k + c - 1] = e - *sh;
        }
}

#endif /* MFCORE_BAYES_FEATURES_H */
