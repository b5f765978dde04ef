/* The regularised least-squares solve of one ALS row, in float64, compiled per instruction set.
 *
 * One row (a user, or an item) with n ratings has the system
 *
 *   (sum_j a_j a_j^T + D) x = sum_j a_j y_j,   a_j = [q_j, 1],  x = [p, b],
 *   D = diag(lam_p, ..., lam_p, lam_b)
 *
 * (without a bias, a_j = q_j and x = p). The caller gathers the ratings in chunks of
 * MF_ALS_CHUNK rows of a "design" buffer X, one rating per row of ld doubles laid out as
 *
 *   X[t][0..k) = q_j,  X[t][k] = 1,  X[t][k + 1] = y_j,  X[t][k + 2..ld) = 0,
 *
 * and mf_als_accumulate adds X^T X into the Gram buffer G. Row i of G (i < d, the
 * unknowns) is kept from column (i rounded down to a multiple of 8) to ld: its upper
 * triangle plus the right-hand side G[i][k + 1]. Each pass over G is a rank-16 update
 * (every entry loaded and stored once per chunk, from L1 between its two rank-8 halves)
 * whose inner loop runs over 8 contiguous doubles, which the compiler turns into SSE2,
 * AVX2+FMA or AVX-512 code.
 *
 * mf_als_solve factors G + D by a blocked Cholesky (8-row panels; the trailing update is
 * the same rank-8 kernel with the sign flipped), carrying the right-hand side column along
 * so that the forward substitution comes out of the factorisation, then substitutes back.
 * If a pivot is not clearly positive (<= 1e-12 times its diagonal entry, or not finite)
 * it retries once with MF_ALS_JITTER times the mean diagonal (plus MF_ALS_JITTER_FLOOR)
 * added to the diagonal.
 *
 * The same row gives the same bits on every call and every thread; the SIMD paths differ
 * only in the last bits (FMA contraction). Every offset is int64_t.
 */
#ifndef MFCORE_ALS_SOLVE_H
#define MFCORE_ALS_SOLVE_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "mf_common.h"
#include "simd_dispatch.h"

enum { MF_ALS_CHUNK = 16 };        /* ratings per pass over G: two groups of 8 */

#define MF_ALS_PIVOT_TOL 1e-12     /* a pivot at or below this times its diagonal fails */
#define MF_ALS_JITTER 1e-6         /* the retry adds this times the mean diagonal ... */
#define MF_ALS_JITTER_FLOOR 1e-12  /* ... plus this */

/* Doubles in one row of X, G and U: k + 2 columns rounded up to a multiple of 8. */
static inline int64_t mf_als_ld(int64_t k)
{
    return (k + 2 + 7) / 8 * 8;
}

/* Doubles of scratch one thread needs for factors of length k, in this order: G and U
 * (k + 1 rows each), X (MF_ALS_CHUNK rows), x and shift (one row each). Every part is a
 * multiple of 8 doubles, so each stays 64-byte aligned when the whole is. */
static inline int64_t mf_als_scratch_doubles(int64_t k)
{
    return (2 * (k + 1) + MF_ALS_CHUNK + 2) * mf_als_ld(k);
}

/* G[i][c] += sign * sum_t X[t][i] * X[t][c] for t < 8 * groups, rows i in [i0, i1) and
 * columns c from i rounded down to a multiple of 8 up to ld; with `overwrite`, G[i][c] =
 * that sum (what G held there is not read). Row i takes the groups of 8 rows of X one
 * after the other while its segment of G stays in L1, and each group's 8 terms are summed
 * in two chains (even and odd t) so that a short row does not wait on one long chain. */
MF_INLINE void mf_als_syrk_body(double *MF_RESTRICT G, const double *MF_RESTRICT X,
                                    int64_t groups, int64_t i0, int64_t i1, int64_t ld,
                                    double sign, const int overwrite)
{
    for (int64_t i = i0; i < i1; i++) {
        double *g = G + i * ld;
        for (int64_t group = 0; group < groups; group++) {
            const double *x0 = X + group * 8 * ld, *x1 = x0 + ld, *x2 = x0 + 2 * ld;
            const double *x3 = x0 + 3 * ld, *x4 = x0 + 4 * ld, *x5 = x0 + 5 * ld;
            const double *x6 = x0 + 6 * ld, *x7 = x0 + 7 * ld;
            const double a0 = sign * x0[i], a1 = sign * x1[i], a2 = sign * x2[i];
            const double a3 = sign * x3[i], a4 = sign * x4[i], a5 = sign * x5[i];
            const double a6 = sign * x6[i], a7 = sign * x7[i];
            const int fresh = overwrite && group == 0;
            for (int64_t c = i & ~(int64_t)7; c < ld; c += 8) {
                for (int l = 0; l < 8; l++) {
                    const int64_t e = c + l;
                    double even = fresh ? a0 * x0[e] : g[e] + a0 * x0[e];
                    double odd = a1 * x1[e];
                    even += a2 * x2[e];
                    odd += a3 * x3[e];
                    even += a4 * x4[e];
                    odd += a5 * x5[e];
                    even += a6 * x6[e];
                    odd += a7 * x7[e];
                    g[e] = even + odd;
                }
            }
        }
    }
}

/* sum of u[c] * v[c] over c in [c0, ld), c0 and ld multiples of 8, in 8 fixed lanes. */
MF_INLINE double mf_als_dot_body(const double *MF_RESTRICT u,
                                     const double *MF_RESTRICT v, int64_t c0, int64_t ld)
{
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t c = c0; c < ld; c += 8)
        for (int l = 0; l < 8; l++) lane[l] += u[c + l] * v[c + l];
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* Cholesky of U (d rows, held as described above; U = G + diagonal on entry) in place,
 * U^T U = G + diagonal, with the columns past d (the right-hand side) carried along.
 * G is read only for the pivot test. Returns 0, or j + 1 for the first failed pivot j. */
MF_INLINE int64_t mf_als_factor_body(const double *MF_RESTRICT G,
                                         double *MF_RESTRICT U, int64_t d, int64_t ld,
                                         const double *MF_RESTRICT shift)
{
    for (int64_t j0 = 0; j0 < d; j0 += 8) {
        const int64_t j1 = j0 + 8 < d ? j0 + 8 : d;
        /* the panel: rows j0..j1-1, already updated by every earlier panel */
        for (int64_t j = j0; j < j1; j++) {
            double *uj = U + j * ld;
            for (int64_t m = j0; m < j; m++) {
                const double *um = U + m * ld;
                const double s = um[j];
                for (int64_t c = j0; c < ld; c += 8)
                    for (int l = 0; l < 8; l++) uj[c + l] -= s * um[c + l];
            }
            const double pivot = uj[j];
            const double diag = G[j * ld + j] + shift[j];
            if (!(pivot > MF_ALS_PIVOT_TOL * diag) || !(pivot < HUGE_VAL)) return j + 1;
            const double r = sqrt(pivot), inv = 1.0 / r;
            for (int64_t c = j0; c < ld; c += 8)
                for (int l = 0; l < 8; l++) uj[c + l] *= inv;
            for (int64_t c = j0; c < j; c++) uj[c] = 0.0;
            uj[j] = r;
        }
        /* the trailing rows, by the 8 rows of this panel (a full panel whenever any remain) */
        if (j1 < d) mf_als_syrk_body(U, U + j0 * ld, 1, j1, d, ld, -1.0, 0);
    }
    return 0;
}

/* Solve (G + diag(shift)) x = G[:, k + 1] for x[0..d); U and x are scratch like G.
 * Returns 0, or j + 1 for the first failed pivot j, or -1 for a non-finite solution. */
MF_INLINE int64_t mf_als_attempt_body(const double *MF_RESTRICT G,
                                          double *MF_RESTRICT U, double *MF_RESTRICT x,
                                          int64_t k, int64_t d, int64_t ld,
                                          const double *MF_RESTRICT shift)
{
    memcpy(U, G, (size_t)(d * ld) * sizeof(double));
    for (int64_t j = 0; j < d; j++) U[j * ld + j] += shift[j];
    const int64_t failed = mf_als_factor_body(G, U, d, ld, shift);
    if (failed) return failed;
    /* U x = z, z = U[:, k + 1]; x is zero beyond the entries already found, so each dot
     * product may run over whole 8-column blocks from the diagonal's block to ld */
    memset(x, 0, (size_t)ld * sizeof(double));
    for (int64_t j = d - 1; j >= 0; j--) {
        const double *uj = U + j * ld;
        x[j] = (uj[k + 1] - mf_als_dot_body(uj, x, j & ~(int64_t)7, ld)) / uj[j];
        if (!(fabs(x[j]) < HUGE_VAL)) return -1;
    }
    return 0;
}

/* The whole solve with one retry: penalties lam_p on x[0..k), lam_b on x[k] (fit_bias).
 * shift is scratch of k + 1 doubles. Returns 0 (solved), 1 (solved with jitter) or -1. */
MF_INLINE int mf_als_solve_body(const double *MF_RESTRICT G, double *MF_RESTRICT U,
                                    double *MF_RESTRICT x, double *MF_RESTRICT shift,
                                    int64_t k, int fit_bias, int64_t ld, double lam_p,
                                    double lam_b)
{
    const int64_t d = fit_bias ? k + 1 : k;
    double mean = 0.0;
    for (int64_t j = 0; j < d; j++) {
        shift[j] = j < k ? lam_p : lam_b;
        mean += G[j * ld + j] + shift[j];
    }
    if (mf_als_attempt_body(G, U, x, k, d, ld, shift) == 0) return 0;
    const double jitter = MF_ALS_JITTER * (d > 0 ? mean / (double)d : 0.0) + MF_ALS_JITTER_FLOOR;
    for (int64_t j = 0; j < d; j++) shift[j] += jitter;
    return mf_als_attempt_body(G, U, x, k, d, ld, shift) == 0 ? 1 : -1;
}

/* --- the paths: each entry point once per instruction set --- */

#define MF_ALS_PATH(suffix, attribute)                                                        \
    attribute static void mf_als_accumulate_##suffix(double *G, const double *X,             \
                                                     int64_t groups, int64_t d, int64_t ld,   \
                                                     int first)                               \
    {                                                                                         \
        if (first)                                                                            \
            mf_als_syrk_body(G, X, groups, 0, d, ld, 1.0, 1);                                 \
        else                                                                                  \
            mf_als_syrk_body(G, X, groups, 0, d, ld, 1.0, 0);                                 \
    }                                                                                         \
    attribute static int mf_als_solve_##suffix(const double *G, double *U, double *x,        \
                                               double *shift, int64_t k, int fit_bias,        \
                                               int64_t ld, double lam_p, double lam_b)        \
    {                                                                                         \
        return mf_als_solve_body(G, U, x, shift, k, fit_bias, ld, lam_p, lam_b);              \
    }

MF_EACH_PATH(MF_ALS_PATH)
#undef MF_ALS_PATH

/* Add the chunk X (8 * groups rows, groups <= MF_ALS_CHUNK / 8; rows past the ratings all
 * zero) to rows 0..d-1 of G, or with `first` set G to it (G need not be cleared before a
 * row's first chunk). */
static inline void mf_als_accumulate(double *G, const double *X, int64_t groups, int64_t d,
                                     int64_t ld, int first)
{
    MF_FOR_PATH(mf_path(), mf_als_accumulate)(G, X, groups, d, ld, first);
}

/* The parts of one thread's scratch (mf_als_scratch_doubles(k) doubles at `work`). */
typedef struct { double *G, *U, *X, *x, *shift; } mf_als_parts;

static inline mf_als_parts mf_als_scratch_parts(double *work, int64_t k, int64_t ld)
{
    mf_als_parts s;
    s.G = work;
    s.U = s.G + (k + 1) * ld;
    s.X = s.U + (k + 1) * ld;
    s.x = s.X + MF_ALS_CHUNK * ld;
    s.shift = s.x + ld;
    return s;
}

/* Add the chunk's first m rows of X (m <= MF_ALS_CHUNK) to G, or with `first` set G to
 * them: the rows from m up to a multiple of 8 are zeroed, then mf_als_accumulate. */
static inline void mf_als_add_chunk(double *G, double *X, int64_t m, int64_t d, int64_t ld,
                                    int first)
{
    const int64_t groups = (m + 7) / 8;
    for (int64_t t = m; t < 8 * groups; t++) memset(X + t * ld, 0, (size_t)ld * sizeof(double));
    mf_als_accumulate(G, X, groups, d, ld, first);
}

/* Solve the row's system from its Gram buffer G; U, x and shift are the thread's scratch. */
static inline int mf_als_solve(const double *G, double *U, double *x, double *shift, int64_t k,
                               int fit_bias, int64_t ld, double lam_p, double lam_b)
{
    return MF_FOR_PATH(mf_path(), mf_als_solve)(G, U, x, shift, k, fit_bias, ld, lam_p, lam_b);

}

#endif
