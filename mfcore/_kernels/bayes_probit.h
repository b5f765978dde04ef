/* Ordered probit for the Gibbs sampler (Albert and Chib 1993): the normal CDF in logs, the
 * truncated normal draw of a latent rating, and the sums the cut points' Metropolis-Hastings
 * step needs, in plain C99.
 *
 * A rating of class c (0 .. C - 1) is a latent z = f + eps, eps ~ N(0, 1), that fell in
 * (cut[c - 1], cut[c]] (cut[-1] = -inf, cut[C - 1] = +inf). Everything here works on the
 * standardized bounds a = cut[c - 1] - f, b = cut[c] - f, so the class probability is
 * Phi(b) - Phi(a). Each function is a pure function of its arguments (the uniform a draw
 * needs is passed in), so draws keyed on (seed, stream, sweep, rating) are the same on
 * every thread.
 */
#ifndef MFCORE_BAYES_PROBIT_H
#define MFCORE_BAYES_PROBIT_H

#include <math.h>
#include <stdint.h>
#include "bayes_gibbs.h"

/* The streams of the probit draws (after bayes_features.h's 10-13 and the time terms'
 * 14-16 of mfcore/timeterms.py). */
enum {
    MF_STREAM_LATENT = 20,   /* latent ratings: row = the rating's residual position */
    MF_STREAM_CUTPOINTS = 21 /* the cut points' proposal and acceptance (mfcore/ordinal.py) */
};

#define MF_SQRT1_2 0.70710678118654752440
#define MF_LOG_SQRT_2PI 0.91893853320467274178

/* log Phi(x), accurate to a few ulp for every x: erfc keeps its relative accuracy down to
 * x = -37.5 (Phi = 1e-300); below that the asymptotic series of the Mills ratio, whose
 * truncation error there is below 1e-14. */
static inline double mf_log_ndtr(double x)
{
    double t, s;
    if (x > 0.0)
        return log1p(-0.5 * erfc(x * MF_SQRT1_2));
    if (x > -37.0)
        return log(0.5 * erfc(-x * MF_SQRT1_2));
    if (x == -INFINITY)
        return -INFINITY;
    t = 1.0 / (x * x);
    s = 1.0 - t * (1.0 - t * (3.0 - t * (15.0 - t * (105.0 - t * 945.0))));
    return -0.5 * x * x - MF_LOG_SQRT_2PI - log(-x) + log(s);
}

/* log(1 - exp(d)) for d < 0, without cancellation near 0 (Maechler's log1mexp). */
static inline double mf_log1mexp(double d)
{
    return d > -0.6931471805599453 ? log(-expm1(d)) : log1p(-exp(d));
}

/* Phi(x), for probabilities (absolute accuracy is what they need). */
static inline double mf_ndtr(double x)
{
    return 0.5 * erfc(-x * MF_SQRT1_2);
}

/* Below this upper bound (after mirroring) an interval's probabilities are computed in
 * logs; above it Phi(b) > 2.8e-7, and Phi(b) - Phi(a) and Phi^-1 are accurate directly. */
#define MF_DIRECT_BOUND -5.0

/* log(Phi(b) - Phi(a)) for a < b (either may be infinite). An interval above 0 is
 * mirrored, Phi(b) - Phi(a) = Phi(-a) - Phi(-b), so the larger CDF value is always the
 * one of a bound below the interval's middle, where log Phi is accurate. */
static inline double mf_log_ndtr_diff(double a, double b)
{
    double lb;
    if (a + b > 0.0) {
        double t = -a;
        a = -b;
        b = t;
    }
    if (b > MF_DIRECT_BOUND)
        return log(mf_ndtr(b) - mf_ndtr(a));
    lb = mf_log_ndtr(b);
    if (a == -INFINITY)
        return lb;
    return lb + mf_log1mexp(mf_log_ndtr(a) - lb);
}

/* The standard normal quantile of exp(lp): AS 241 where exp(lp) is a normal double, and
 * Newton's method on log Phi(x) = lp below (x < -37: log Phi is smooth and concave). */
static inline double mf_normal_quantile_log(double lp)
{
    double x;
    int it;
    if (lp > -700.0) {
        double p = exp(lp);
        if (p > 1.0 - 1.1102230246251565e-16)
            p = 1.0 - 1.1102230246251565e-16;
        return mf_normal_quantile(p);
    }
    x = -sqrt(-2.0 * lp);
    for (it = 0; it < 8; it++) {
        double lphi = -0.5 * x * x - MF_LOG_SQRT_2PI, lcdf = mf_log_ndtr(x);
        x -= (lcdf - lp) / exp(lphi - lcdf);
    }
    return x;
}

/* A standard normal number truncated to (a, b), a < b, from the uniform u in (0, 1), by
 * the inverse CDF: x = Phi^-1(Phi(a) + u (Phi(b) - Phi(a))). An interval above 0 is
 * mirrored (as in mf_log_ndtr_diff), so the CDF values are never computed as 1 minus a
 * tiny number; in the far tail (b < MF_DIRECT_BOUND) the CDF runs in logs, so the draw is
 * exact as far as log Phi is, in either tail; it is clamped to the interval against the
 * last rounding. */
static inline double mf_truncated_normal(double a, double b, double u)
{
    double la, lb, lp, x;
    int flip = a + b > 0.0;
    if (flip) {
        double t = -a;
        a = -b;
        b = t;
    }
    if (b > MF_DIRECT_BOUND) {
        double pa = mf_ndtr(a), p = pa + u * (mf_ndtr(b) - pa);
        x = mf_normal_quantile(p < 1.0 - 1.1102230246251565e-16 ? p
                                                                 : 1.0 - 1.1102230246251565e-16);
        x = x < a ? a : (x > b ? b : x);
        return flip ? -x : x;
    }
    lb = mf_log_ndtr(b);
    la = a == -INFINITY ? -INFINITY : mf_log_ndtr(a);
    lp = lb + log(u + (1.0 - u) * exp(la - lb));
    x = mf_normal_quantile_log(lp);
    x = x < a ? a : (x > b ? b : x);
    return flip ? -x : x;
}

/* One rating's contribution to the log-likelihood of the cut points (class c of C, latent
 * mean f), to its gradient (grad[j]: d/d cut_j) and to its Hessian, which is tridiagonal:
 * diag[j] = d2/d cut_j^2, off[j] = d2/d cut_j d cut_{j+1}. With g_b = phi(b) / P and
 * g_a = phi(a) / P (P = Phi(b) - Phi(a)):
 *     d log P / d cut_c = g_b,      d2 = -b g_b - g_b^2
 *     d log P / d cut_{c-1} = -g_a, d2 = a g_a - g_a^2,   cross = g_a g_b. */
static inline void mf_cut_terms(int64_t c, int64_t n_classes, double f, const double *cut,
                                double *ll, double *grad, double *diag, double *off)
{
    double a = c > 0 ? cut[c - 1] - f : -INFINITY;
    double b = c < n_classes - 1 ? cut[c] - f : INFINITY;
    double lp = mf_log_ndtr_diff(a, b), ga = 0.0, gb = 0.0;
    *ll += lp;
    if (c < n_classes - 1) {
        gb = exp(-0.5 * b * b - MF_LOG_SQRT_2PI - lp);
        grad[c] += gb;
        diag[c] += -b * gb - gb * gb;
    }
    if (c > 0) {
        ga = exp(-0.5 * a * a - MF_LOG_SQRT_2PI - lp);
        grad[c - 1] -= ga;
        diag[c - 1] += a * ga - ga * ga;
    }
    if (c > 0 && c < n_classes - 1)
        off[c - 1] += ga * gb;
}

#endif /* MFCORE_BAYES_PROBIT_H */
