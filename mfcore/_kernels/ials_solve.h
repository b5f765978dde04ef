/* One row of weighted ALS over all pairs (implicit ALS) by conjugate gradient, in the factors'
 * type (float32 like implicit's, or float64), compiled per instruction set. The exact (Cholesky) solve of the same system reuses
 * als_solve.h; see ials.pyx for the objective.
 *
 * A row's system is
 *
 *   (w0 G + sum_j c_j a_j a_j^T + diag(lam)) x = w0 g + sum_j c_j y_j a_j
 *
 * with a_j the other side's augmented row [q_j, 1] (a bias) or [q_j, 0], G = sum over ALL
 * other rows of a a^T, g = sum over all other rows of -b_j a (the missing pairs' target is 0
 * for the whole score, so -b_j for the part this row solves), and c_j, y_j the confidence and
 * target of the row's observed pairs (y_j already net of the other side's bias).
 *
 * Vectors and the rows of A and G hold S values of the factors' type (float or double),
 * S = k + 1 rounded up to a multiple of 8, zero past the unknowns, so every loop runs over whole blocks of 8 in 8 fixed lanes:
 * the compiler vectorises them, and the sums keep one order on every thread.
 *
 * The solve starts from the row's current value (warm start) and runs a fixed number of
 * conjugate gradient steps (Takacs, Pilaszy and Tikk 2011; Hu et al.'s Gram trick), stopping
 * early only when the residual is exactly or almost 0: each step costs one product with the
 * system matrix, S^2 + 2 n S multiply-adds for a row of n pairs, instead of the n S^2 / 2 of
 * forming the system.
 */
#ifndef MFCORE_IALS_SOLVE_H
#define MFCORE_IALS_SOLVE_H

#include "als_solve.h"

#if defined(__GNUC__)
#define MF_IALS_PREFETCH(address) __builtin_prefetch(address)
#else
#define MF_IALS_PREFETCH(address) ((void)0)
#endif

/* Values in one vector or row of A and G: k + 1 rounded up to a multiple of 8. */
static inline int64_t mf_ials_stride(int64_t k)
{
    return (k + 1 + 7) / 8 * 8;
}

#define MF_REAL float
#define MF_R(name) name##_f
#include "ials_cg_body.h"
#undef MF_REAL
#undef MF_R
#define MF_REAL double
#define MF_R(name) name##_d
#include "ials_cg_body.h"
#undef MF_REAL
#undef MF_R

#endif
