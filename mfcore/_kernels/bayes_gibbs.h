/* Gibbs sampling for Bayesian matrix factorization: counter-based random numbers and the
 * element-wise (coordinate-wise) draws of one row, in plain C99.
 *
 * Every function here is a pure function of its arguments: a random number is a function
 * of its key (seed, stream, sweep, row, coordinate, draw), never of a generator's state,
 * so a row gets the same draws whichever thread samples it and in whichever order.
 */
#ifndef MFCORE_BAYES_GIBBS_H
#define MFCORE_BAYES_GIBBS_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "mf_common.h"

/* The streams (second key word): one per kind of draw, so no two draws share a key. */
enum {
    MF_STREAM_NOISE = 1,      /* the noise precision alpha (row 0, coordinate 0)        */
    MF_STREAM_USER_HYPER = 2, /* user-side (mean, precision): row 0 precision, 1 mean   */
    MF_STREAM_ITEM_HYPER = 3, /* item-side (mean, precision)                            */
    MF_STREAM_USER = 4,       /* user parameters: row u, coordinate 0 bias, 1 + f factor */
    MF_STREAM_ITEM = 5,       /* item parameters: row i, same coordinates               */
    MF_STREAM_Y_HYPER = 6,    /* (mean, precision) of the implicit item vectors y       */
    MF_STREAM_Z_HYPER = 7,    /* (mean, precision) of the implicit user vectors z       */
    MF_STREAM_Y = 8,          /* implicit item vectors: row j, coordinate f             */
    MF_STREAM_Z = 9           /* implicit user vectors: row v, coordinate f             */
};

/* Attempts of the Gamma sampler before it gives up (each succeeds with p > 0.95). */
#define MF_GAMMA_MAX_TRIES 1000

typedef struct {
    uint64_t v[4];
} mf_block;

/* The 128-bit product a * b: returns the low word, stores the high word. */
static inline uint64_t mf_mulhilo64(uint64_t a, uint64_t b, uint64_t *hi)
{
#if defined(__SIZEOF_INT128__)
    unsigned __int128 p = (unsigned __int128)a * b;
    *hi = (uint64_t)(p >> 64);
    return (uint64_t)p;
#else
    uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32, b_lo = b & 0xffffffffu, b_hi = b >> 32;
    uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
    uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
    *hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    return (mid << 32) | (ll & 0xffffffffu);
#endif
}

/* Philox4x64-10 (Salmon, Moraes, Dror and Shaw, SC'11), as in Random123 and numpy's
 * Philox: the 4 x 64-bit block for counter (c0, c1, c2, c3) under key (k0, k1). */
static inline mf_block mf_philox4x64(uint64_t c0, uint64_t c1, uint64_t c2, uint64_t c3,
                                     uint64_t k0, uint64_t k1)
{
    mf_block out;
    int round;
    for (round = 0; round < 10; round++) {
        uint64_t hi0, hi1, lo0, lo1;
        if (round > 0) {
            k0 += 0x9E3779B97F4A7C15ull;
            k1 += 0xBB67AE8584CAA73Bull;
        }
        lo0 = mf_mulhilo64(0xD2E7470EE14C6C93ull, c0, &hi0);
        lo1 = mf_mulhilo64(0xCA5A826395121157ull, c2, &hi1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out.v[0] = c0;
    out.v[1] = c1;
    out.v[2] = c2;
    out.v[3] = c3;
    return out;
}

/* The block of a draw: key (seed, stream), counter (sweep, row, coordinate, draw). */
static inline mf_block mf_draw_block(uint64_t seed, uint64_t stream, uint64_t sweep,
                                     uint64_t row, uint64_t coord, uint64_t draw)
{
    return mf_philox4x64(sweep, row, coord, draw, seed, stream);
}

/* A uniform number in (0, 1) from the top 53 bits of x (never 0, never 1). */
static inline double mf_unit(uint64_t x)
{
    return ((double)(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* The standard normal quantile of p in (0, 1): Wichura's algorithm AS 241 (PPND16,
 * Applied Statistics 37, 1988), relative error about 1e-16; the same algorithm as
 * Python's statistics.NormalDist.inv_cdf. One uniform per normal, no rejection, and a
 * logarithm only in the tails (|p - 0.5| > 0.425). */
/* AS 241's central branch, q = p - 0.5 with |q| <= 0.425 and r = 0.180625 - q^2: the
 * quantile q num(r) / den(r). Written once for a double and for a vector of doubles (GCC
 * applies each operation lane by lane, rounded alike). */
#define MF_AS241_CENTRAL(q, r)                                                              \
    (q) * (((((((2.5090809287301226727e+3 * (r) + 3.3430575583588128105e+4) * (r)           \
                + 6.7265770927008700853e+4) * (r) + 4.5921953931549871457e+4) * (r)           \
              + 1.3731693765509461125e+4) * (r) + 1.9715909503065514427e+3) * (r)             \
            + 1.3314166789178437745e+2) * (r) + 3.3871328727963666080e+0)                    \
        / (((((((5.2264952788528545610e+3 * (r) + 2.8729085735721942674e+4) * (r)            \
                + 3.9307895800092710610e+4) * (r) + 2.1213794301586595867e+4) * (r)           \
              + 5.3941960214247511077e+3) * (r) + 6.8718700749205790830e+2) * (r)             \
            + 4.2313330701600911252e+1) * (r) + 1.0)

static inline double mf_normal_quantile(double p)
{
    double q = p - 0.5, r, num, den;
    if (fabs(q) <= 0.425) {
        r = 0.180625 - q * q;
        return MF_AS241_CENTRAL(q, r);
    }
    r = sqrt(-log(q < 0.0 ? p : 1.0 - p));
    if (r <= 5.0) {
        r -= 1.6;
        num = (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r
                    + 2.41780725177450611770e-1) * r + 1.27045825245236838258e+0) * r
                  + 3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r
                + 4.63033784615654529590e+0) * r + 1.42343711074968357734e+0);
        den = (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r
                    + 1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r
                  + 6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r
                + 2.05319162663775882187e+0) * r + 1.0);
    } else {
        r -= 5.0;
        num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                    + 1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r
                  + 2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r
                + 5.46378491116411436990e+0) * r + 6.65790464350110377720e+0);
        den = (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r
                    + 1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r
                  + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r
                + 5.99832206555887937690e-1) * r + 1.0);
    }
    return q < 0.0 ? -(num / den) : num / den;
}

/* The standard normal number keyed on the six words: the quantile of the uniform from
 * word 0 of its block (so normal = quantile(uniform) for the same key). */
static inline double mf_normal(uint64_t seed, uint64_t stream, uint64_t sweep, uint64_t row,
                               uint64_t coord, uint64_t draw)
{
    mf_block b = mf_draw_block(seed, stream, sweep, row, coord, draw);
    return mf_normal_quantile(mf_unit(b.v[0]));
}

/* A Gamma(shape, rate 1) number keyed on the five words (Marsaglia and Tsang, 2000).
 * Attempt t uses the block with draw word t (word 0: the normal, word 1: the acceptance
 * uniform), so the number of rejections never shifts another draw. For shape < 1 it
 * draws Gamma(shape + 1) and scales by u^(1 / shape), u from word 3 of the block of
 * attempt 0. */
static inline double mf_gamma(double shape, uint64_t seed, uint64_t stream, uint64_t sweep,
                              uint64_t row, uint64_t coord)
{
    double boost = 1.0, d, c;
    uint64_t t;
    if (!(shape > 0.0))
        return NAN;
    if (shape < 1.0) {
        mf_block b0 = mf_draw_block(seed, stream, sweep, row, coord, 0);
        boost = pow(mf_unit(b0.v[3]), 1.0 / shape);
        shape += 1.0;
    }
    d = shape - 1.0 / 3.0;
    c = 1.0 / sqrt(9.0 * d);
    for (t = 0; t < MF_GAMMA_MAX_TRIES; t++) {
        mf_block b = mf_draw_block(seed, stream, sweep, row, coord, t);
        double x = mf_normal_quantile(mf_unit(b.v[0]));
        double v = 1.0 + c * x, u;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        u = mf_unit(b.v[1]);
        if (u < 1.0 - 0.0331 * (x * x) * (x * x)
            || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return boost * d * v;
    }
    return boost * d; /* unreachable in practice: p(1000 rejections) < 1e-1000 */
}

/* --- the Normal-Gamma hyperparameters of one group ------------------------------------ */

/* Draw (mean, precision) of a group of n values x[0], x[stride], ... jointly from their
 * Normal-Gamma posterior. Prior: precision ~ Gamma(alpha_lambda / 2, rate beta_lambda / 2),
 * mean | precision ~ N(mu_0, 1 / (gamma_0 precision)) (libFM's and myFM's hyperprior).
 * Sums run over the values in order (one thread per group), so they are reproducible. */
static inline void mf_normal_gamma(const double *x, int64_t n, int64_t stride,
                                   double mu_0, double gamma_0, double alpha_lambda,
                                   double beta_lambda, uint64_t seed, uint64_t stream,
                                   uint64_t sweep, uint64_t coord, double *mean_out,
                                   double *prec_out)
{
    double sum = 0.0, ss = 0.0, xbar = 0.0, shape, rate, prec, center;
    int64_t j;
    for (j = 0; j < n; j++)
        sum += x[j * stride];
    if (n > 0)
        xbar = sum / (double)n;
    for (j = 0; j < n; j++) {
        double dev = x[j * stride] - xbar;
        ss += dev * dev;
    }
    shape = 0.5 * (alpha_lambda + (double)n);
    rate = 0.5 * (beta_lambda + ss
                  + gamma_0 * (double)n * (xbar - mu_0) * (xbar - mu_0) / (gamma_0 + (double)n));
    prec = mf_gamma(shape, seed, stream, sweep, 0, coord) / rate;
    center = (gamma_0 * mu_0 + sum) / (gamma_0 + (double)n);
    *prec_out = prec;
    *mean_out = center
        + mf_normal(seed, stream, sweep, 1, coord, 0) / sqrt((gamma_0 + (double)n) * prec);
}

/* --- one row's parameters ------------------------------------------------------------- */

/* Four partial sums, one per rating position n % 4, combined as (0 + 1) + (2 + 3): the
 * order is fixed by the source, so every build path, thread and run gives the same bits.
 * With GCC or Clang the lanes are two 2-double vectors (mf_vd2: SSE2, the x86-64
 * baseline); the plain C below computes exactly the same operations. */
#if MF_VECTORS
static inline mf_vd2 mf_load2(const double *p)
{
    mf_vd2 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void mf_store2(double *p, mf_vd2 v)
{
    memcpy(p, &v, sizeof v);
}
#endif

/* The shift and the sums of ``mf_shift_and_sum`` over the ratings n < m - m % 4, four at
 * a time, lane j of a[] and b[] taking the ratings n % 4 == j (h == NULL: h[n] = 1);
 * returns the first rating left. */
#if MF_VECTORS
static inline int64_t mf_lanes_sse2(double *MF_RESTRICT e, int64_t m, double step,
                                    const double *MF_RESTRICT h,
                                    const double *MF_RESTRICT next, double *a, double *b)
{
    mf_vd2 a01 = {0.0, 0.0}, a23 = {0.0, 0.0}, b01 = {0.0, 0.0}, b23 = {0.0, 0.0};
    mf_vd2 st = {step, step}, one = {1.0, 1.0};
    int64_t n = 0;
    for (; n + 4 <= m; n += 4) {
        mf_vd2 h01 = h == NULL ? one : mf_load2(h + n);
        mf_vd2 h23 = h == NULL ? one : mf_load2(h + n + 2);
        mf_vd2 x01 = mf_load2(next + n), x23 = mf_load2(next + n + 2);
        mf_vd2 e01 = mf_load2(e + n) - st * h01, e23 = mf_load2(e + n + 2) - st * h23;
        mf_store2(e + n, e01);
        mf_store2(e + n + 2, e23);
        a01 += x01 * e01, a23 += x23 * e23;
        b01 += x01 * x01, b23 += x23 * x23;
    }
    a[0] = a01[0], a[1] = a01[1], a[2] = a23[0], a[3] = a23[1];
    b[0] = b01[0], b[1] = b01[1], b[2] = b23[0], b[3] = b23[1];
    return n;
}
#else
static inline int64_t mf_lanes_sse2(double *MF_RESTRICT e, int64_t m, double step,
                                    const double *MF_RESTRICT h,
                                    const double *MF_RESTRICT next, double *a, double *b)
{
    int64_t n = 0, j;
    for (; n + 4 <= m; n += 4)
        for (j = 0; j < 4; j++) {
            double en = e[n + j] - step * (h == NULL ? 1.0 : h[n + j]);
            e[n + j] = en;
            a[j] += next[n + j] * en;
            b[j] += next[n + j] * next[n + j];
        }
    return n;
}
#endif

/* The same on AVX's four-double registers, on x86 CPUs that have it: lane j of a register
 * holds what lane j of ``mf_lanes_sse2``'s pair does, and without FMA (target "avx" only)
 * each product is rounded before its sum as there, so the results are the same bits. */
#if MF_VECTORS && (defined(__x86_64__) || defined(__i386__))
#define MF_GIBBS_AVX 1
__attribute__((target("avx"))) static inline int64_t mf_lanes_avx(double *MF_RESTRICT e, int64_t m,
                                                           double step,
                                                           const double *MF_RESTRICT h,
                                                           const double *MF_RESTRICT next,
                                                           double *a, double *b)
{
    mf_vd4 acc = {0.0, 0.0, 0.0, 0.0}, sq = {0.0, 0.0, 0.0, 0.0};
    mf_vd4 st = {step, step, step, step}, one = {1.0, 1.0, 1.0, 1.0};
    int64_t n = 0, j;
    for (; n + 4 <= m; n += 4) {
        mf_vd4 hv = one, x, ev;
        if (h != NULL)
            memcpy(&hv, h + n, sizeof hv);
        memcpy(&x, next + n, sizeof x);
        memcpy(&ev, e + n, sizeof ev);
        ev = ev - st * hv;
        memcpy(e + n, &ev, sizeof ev);
        acc += x * ev;
        sq += x * x;
    }
    for (j = 0; j < 4; j++)
        a[j] = acc[j], b[j] = sq[j];
    return n;
}

/* 1 when this CPU runs AVX (checked once, by the caller of ``mf_gibbs_use_avx``). */
static int mf_gibbs_avx = 0;

static inline void mf_gibbs_use_avx(void)
{
    __builtin_cpu_init();
    mf_gibbs_avx = __builtin_cpu_supports("avx");
}
#else
#define MF_GIBBS_AVX 0
static inline void mf_gibbs_use_avx(void) {}
#endif

/* z[j] = mf_normal_quantile(p[j]) for j < n, bit for bit: on AVX registers four at a
 * time where the CPU has them (the central branch in every lane, no FMA: each operation
 * rounded as in the scalar code), then the lanes in a tail (a logarithm, 15% of draws) and
 * the last n % 4 one by one. A row's normals are its slowest part after its ratings. */
#if MF_GIBBS_AVX
__attribute__((target("avx"))) static inline int64_t mf_quantiles_avx(const double *p,
                                                                       double *z, int64_t n)
{
    int64_t j, l;
    for (j = 0; j + 4 <= n; j += 4) {
        mf_vd4 q, r, x;
        memcpy(&q, p + j, sizeof q);
        q = q - 0.5;
        r = 0.180625 - q * q;
        x = MF_AS241_CENTRAL(q, r);
        memcpy(z + j, &x, sizeof x);
        for (l = 0; l < 4; l++)
            if (!(fabs(q[l]) <= 0.425))
                z[j + l] = mf_normal_quantile(p[j + l]);
    }
    return j;
}
#endif

static inline void mf_normal_quantiles(const double *p, double *z, int64_t n)
{
    int64_t j = 0;
#if MF_GIBBS_AVX
    if (mf_gibbs_avx)
        j = mf_quantiles_avx(p, z, n);
#endif
    for (; j < n; j++)
        z[j] = mf_normal_quantile(p[j]);
}

/* Subtract step * h[n] from e[n] (h == NULL: h[n] = 1) and, when next != NULL, return in
 * *s1, *s2 the sums of next[n] * e[n] (the updated e) and next[n]^2, in four partial
 * sums (above). */
static inline void mf_shift_and_sum(double *MF_RESTRICT e, int64_t m, double step,
                                    const double *MF_RESTRICT h,
                                    const double *MF_RESTRICT next, double *s1, double *s2)
{
    double a[4] = {0.0, 0.0, 0.0, 0.0}, b[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t n = 0, j;
    if (next == NULL) {
        if (h == NULL)
            for (n = 0; n < m; n++)
                e[n] -= step;
        else
            for (n = 0; n < m; n++)
                e[n] -= step * h[n];
        return;
    }
#if MF_GIBBS_AVX
    if (mf_gibbs_avx)
        n = mf_lanes_avx(e, m, step, h, next, a, b);
    else
#endif
        n = mf_lanes_sse2(e, m, step, h, next, a, b);
    for (j = 0; n < m; n++, j++) { /* the last m % 4 ratings, in their lanes */
        double en = e[n] - step * (h == NULL ? 1.0 : h[n]);
        e[n] = en;
        a[j] += next[n] * en;
        b[j] += next[n] * next[n];
    }
    *s1 = (a[0] + a[1]) + (a[2] + a[3]);
    *s2 = (b[0] + b[1]) + (b[2] + b[3]);
}

/* H[f * m + n] = other[other_row[n] * k + f], ratings n0 <= n < m: the other side's
 * factors of the row's ratings, one coordinate's features contiguous. Eight ratings at a
 * time, so that each write fills a cache line and the eight source rows stay in L1. */
static inline void mf_gather_scalar(const int32_t *MF_RESTRICT other_row,
                                    const double *MF_RESTRICT other, int64_t k, int64_t m,
                                    int64_t n0, double *MF_RESTRICT H)
{
    int64_t f, j;
    for (; n0 < m; n0 += 8) {
        const double *src[8] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
        int64_t nb = m - n0 < 8 ? m - n0 : 8;
        for (j = 0; j < nb; j++)
            src[j] = other + (int64_t)other_row[n0 + j] * k;
        if (nb == 8)
            for (f = 0; f < k; f++) {
                double *dst = H + f * m + n0;
                dst[0] = src[0][f], dst[1] = src[1][f], dst[2] = src[2][f];
                dst[3] = src[3][f], dst[4] = src[4][f], dst[5] = src[5][f];
                dst[6] = src[6][f], dst[7] = src[7][f];
            }
        else
            for (f = 0; f < k; f++)
                for (j = 0; j < nb; j++)
                    H[f * m + n0 + j] = src[j][f];
    }
}

#if MF_GIBBS_AVX
#include <immintrin.h>
/* The same copy on AVX registers, four ratings at a time: four features of each of the
 * four rows loaded, transposed in registers, stored as four features' runs of four. */
__attribute__((target("avx"))) static inline void mf_gather_avx(
    const int32_t *MF_RESTRICT other_row, const double *MF_RESTRICT other, int64_t k,
    int64_t m, double *MF_RESTRICT H)
{
    int64_t n0, f, j;
    for (n0 = 0; n0 + 4 <= m; n0 += 4) {
        const double *src[4];
        for (j = 0; j < 4; j++)
            src[j] = other + (int64_t)other_row[n0 + j] * k;
        for (f = 0; f + 4 <= k; f += 4) {
            __m256d r0 = _mm256_loadu_pd(src[0] + f), r1 = _mm256_loadu_pd(src[1] + f);
            __m256d r2 = _mm256_loadu_pd(src[2] + f), r3 = _mm256_loadu_pd(src[3] + f);
            __m256d lo01 = _mm256_unpacklo_pd(r0, r1), hi01 = _mm256_unpackhi_pd(r0, r1);
            __m256d lo23 = _mm256_unpacklo_pd(r2, r3), hi23 = _mm256_unpackhi_pd(r2, r3);
            _mm256_storeu_pd(H + f * m + n0, _mm256_permute2f128_pd(lo01, lo23, 0x20));
            _mm256_storeu_pd(H + (f + 1) * m + n0, _mm256_permute2f128_pd(hi01, hi23, 0x20));
            _mm256_storeu_pd(H + (f + 2) * m + n0, _mm256_permute2f128_pd(lo01, lo23, 0x31));
            _mm256_storeu_pd(H + (f + 3) * m + n0, _mm256_permute2f128_pd(hi01, hi23, 0x31));
        }
        for (; f < k; f++)
            for (j = 0; j < 4; j++)
                H[f * m + n0 + j] = src[j][f];
    }
    mf_gather_scalar(other_row, other, k, m, n0, H);
}
#endif

static inline void mf_gather_features(const int32_t *MF_RESTRICT other_row,
                                      const double *MF_RESTRICT other, int64_t k, int64_t m,
                                      double *MF_RESTRICT H)
{
#if MF_GIBBS_AVX
    if (mf_gibbs_avx) {
        mf_gather_avx(other_row, other, k, m, H);
        return;
    }
#endif
    mf_gather_scalar(other_row, other, k, m, 0, H);
}

/* e[n] = source[pos[n]]: the row's m residuals, gathered from the other side's order. */
static inline void mf_gather_residuals(double *MF_RESTRICT e,
                                       const double *MF_RESTRICT source,
                                       const int64_t *MF_RESTRICT pos, int64_t m)
{
    int64_t n;
    for (n = 0; n < m; n++)
        e[n] = source[pos[n]];
}

/* Normals a row draws in one loop before it needs them: a draw's Philox rounds and
 * quantile are a long chain of dependent operations, and independent draws side by side
 * let the core overlap those chains. */
#define MF_DRAW_BATCH 8

/* Sample one row's parameters from their full conditionals, coordinate by coordinate:
 * its bias (coordinate 0, feature 1 on each of its ratings), then its factors f = 0..k-1
 * (coordinate 1 + f, feature h_n = the other side's factor f of rating n). For a
 * parameter theta with features h_n on the row's m ratings and group (mean mu_c,
 * precision lambda_c):
 *     precision = alpha sum h_n^2 + lambda_c
 *     mean      = (alpha sum h_n (e_n + theta h_n) + lambda_c mu_c) / precision
 *     theta'    = mean + z / sqrt(precision),  z = mf_normal(seed, stream, sweep, row, c, 0)
 *     e_n      -= (theta' - theta) h_n.
 * e: the row's m residuals r - prediction (updated in place); other_row[n]: the other
 * side's row of rating n; other: the other side's factors, k per row; H: scratch of m * k
 * doubles; mean_g, prec_g: the group hyperparameters of coordinates 0..k. A row without
 * ratings (m = 0) draws from its prior. */
static inline void mf_gibbs_row(double *bias, double *w, double *e, int64_t m,
                                const int32_t *other_row, const double *other, int64_t k,
                                double *H, const double *mean_g, const double *prec_g,
                                double alpha, uint64_t seed, uint64_t stream, uint64_t sweep,
                                uint64_t row)
{
    double s1 = 0.0, s2 = (double)m, u[MF_DRAW_BATCH], z[MF_DRAW_BATCH];
    int64_t n, c;
    mf_gather_features(other_row, other, k, m, H);
    {
        double a[4] = {0.0, 0.0, 0.0, 0.0};
        int64_t j;
        for (n = 0; n + 4 <= m; n += 4)
            a[0] += e[n], a[1] += e[n + 1], a[2] += e[n + 2], a[3] += e[n + 3];
        for (j = 0; n < m; n++, j++)
            a[j] += e[n];
        s1 = (a[0] + a[1]) + (a[2] + a[3]);
    }
    for (c = 0; c <= k; c++) {
        double *theta = c == 0 ? bias : &w[c - 1];
        const double *h = c == 0 ? NULL : H + (c - 1) * m;
        const double *next = c < k ? H + c * m : NULL;
        double prec = alpha * s2 + prec_g[c], mean, value;
        if (c % MF_DRAW_BATCH == 0) { /* the next coordinates' normals (no data needed) */
            for (n = 0; n < MF_DRAW_BATCH && c + n <= k; n++) /* mf_normal's uniforms */
                u[n] = mf_unit(mf_draw_block(seed, stream, sweep, row, (uint64_t)(c + n), 0).v[0]);
            mf_normal_quantiles(u, z, n);
        }
        mean = (alpha * (s1 + *theta * s2) + prec_g[c] * mean_g[c]) / prec;
        value = mean + z[c % MF_DRAW_BATCH] / sqrt(prec);
        double step = value - *theta;
        *theta = value;
        mf_shift_and_sum(e, m, step, h, next, &s1, &s2);
    }
}

/* --- implicit feedback: SVD++ (y) and its flipped item side (z) ------------------------
 *
 * With implicit terms a user's effective vector is pe_u = p_u + ybar_u, ybar_u = c_u sum
 * of y_j over j in N(u), c_u = |N(u)|^-1/2 (the item side's qe_i = q_i + zbar_i
 * likewise). The sampler draws the effective vectors themselves: given y, pe_u has the
 * prior N(m + ybar_u, 1 / lambda) of p_u shifted by ybar_u, and the ratings see only
 * pe_u, so a user row is ``mf_gibbs_row`` with that prior mean. Given the effective
 * vectors the ratings carry no more information about y: y enters only the prior of
 * pe, as a linear regression per factor column f,
 *     pe_uf - m_f = c_u sum_{j in N(u)} y_jf + noise of precision lambda_f,
 * y_jf ~ N(my_f, 1 / ly_f) (its own group). The columns are independent (the prior
 * precisions are per column), so blocks of columns are the tasks of a parallel loop, and
 * a column's draws cost the implicit pairs, not the ratings (``mf_implicit_columns``). */

/* Implicit columns a task: the block's columns share the pass over each row's members. */
#define MF_IMPLICIT_BLOCK 4

/* Draw columns f0 .. f0 + bb - 1 (bb <= MF_IMPLICIT_BLOCK) of the implicit vectors x
 * (n_rows rows, k per row) from the regression above, rows in order, and refresh those
 * columns of the implicit terms and own factors. The columns are independent given the
 * effective vectors; drawing them in one pass over each row's members shares the index
 * loads. Row j's members are members[ptr[j]] .. members[ptr[j + 1] - 1] (for y: the
 * users whose N(u) holds j); a member v has the targets t_vf = effective[v k + f] -
 * mean_p[f] and the scale c_v = scale[v] = |N(v)|^-1/2 (0 for none); weight[j] = sum
 * of c_v^2 over row j's members. With the running residuals res_vf = t_vf - bar_vf
 * (in ``work``, of (1 + MF_IMPLICIT_BLOCK) (n_members + n_rows) doubles: c_v beside the
 * residuals of each member, then the block's columns of x) and theta = x[j k + f]:
 *     precision = prec_p[f] weight[j] + prec_x[f]
 *     mean      = (prec_p[f] (sum_v c_v res_vf + theta weight[j]) + prec_x[f] mean_x[f])
 *                 / precision
 *     theta'    = mean + z / sqrt(precision),  z = mf_normal(seed, stream, sweep, j, f, 0)
 *     res_vf   -= c_v (theta' - theta)   for every member v.
 * mean_p, prec_p, mean_x, prec_x: the groups of the effective vectors' and of x's
 * columns, indexed by f. Afterwards bar_vf = t_vf - res_vf, the implicit term of the
 * new column (to rounding: it only shifts the prior mean of the effective vectors,
 * which are the sampled quantity, so the difference does not accumulate into
 * predictions) and own[v k + f] = effective[v k + f] - bar_vf. Each sum runs over the
 * members in order. */
static inline void mf_implicit_columns(double *x, int64_t n_rows, int64_t k, int64_t f0,
                                       int64_t bb, const int64_t *ptr,
                                       const int32_t *members, const double *weight,
                                       int64_t n_members, const double *scale,
                                       const double *effective, double *bar, double *own,
                                       const double *mean_p, const double *prec_p,
                                       const double *mean_x, const double *prec_x,
                                       double *work, uint64_t seed, uint64_t stream,
                                       uint64_t sweep)
{
    const int64_t w = 1 + MF_IMPLICIT_BLOCK; /* a member's record: c_v, then residuals */
    double *cr = work, *col = work + w * n_members;
    int64_t j, t, v, q;
    for (v = 0; v < n_members; v++) {
        double *p = cr + w * v;
        p[0] = scale[v];
        for (q = 0; q < MF_IMPLICIT_BLOCK; q++)
            p[1 + q] = q < bb ? effective[v * k + f0 + q] - mean_p[f0 + q]
                                    - bar[v * k + f0 + q]
                              : 0.0;
    }
    for (j = 0; j < n_rows; j++)
        for (q = 0; q < bb; q++)
            col[j * MF_IMPLICIT_BLOCK + q] = x[j * k + f0 + q];
    for (j = 0; j < n_rows; j++) {
        double s[MF_IMPLICIT_BLOCK] = {0.0}, step[MF_IMPLICIT_BLOCK] = {0.0};
        double *theta = col + j * MF_IMPLICIT_BLOCK;
        for (t = ptr[j]; t < ptr[j + 1]; t++) {
            const double *p = cr + w * (int64_t)members[t];
            for (q = 0; q < MF_IMPLICIT_BLOCK; q++)
                s[q] += p[0] * p[1 + q];
        }
        for (q = 0; q < bb; q++) {
            int64_t f = f0 + q;
            double prec = prec_p[f] * weight[j] + prec_x[f];
            double mean = (prec_p[f] * (s[q] + theta[q] * weight[j]) + prec_x[f] * mean_x[f])
                          / prec;
            double value = mean + mf_normal(seed, stream, sweep, (uint64_t)j, (uint64_t)f, 0)
                                  / sqrt(prec);
            step[q] = value - theta[q];
            theta[q] = value;
        }
        for (t = ptr[j]; t < ptr[j + 1]; t++) {
            double *p = cr + w * (int64_t)members[t];
            for (q = 0; q < MF_IMPLICIT_BLOCK; q++)
                p[1 + q] -= p[0] * step[q];
        }
    }
    for (j = 0; j < n_rows; j++)
        for (q = 0; q < bb; q++)
            x[j * k + f0 + q] = col[j * MF_IMPLICIT_BLOCK + q];
    for (v = 0; v < n_members; v++)
        for (q = 0; q < bb; q++) {
            int64_t f = f0 + q;
            bar[v * k + f] = effective[v * k + f] - mean_p[f] - cr[w * v + 1 + q];
            own[v * k + f] = effective[v * k + f] - bar[v * k + f];
        }
}

#endif /* MFCORE_BAYES_GIBBS_H */
