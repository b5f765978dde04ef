"""TEMPORARY NumPy stand-in for the compiled row solve (mfcore/_kernels/als.pyx, in progress)."""
import numpy as np


def solve_rows(indptr, cols, ratings, other_factors, other_bias, mu, reg, reg_bias, base,
               count_weight, fit_bias, factors, bias, n_threads):
    k = other_factors.shape[1]
    for row in range(len(indptr) - 1):
        sel = slice(indptr[row], indptr[row + 1])
        n = indptr[row + 1] - indptr[row]
        if n == 0:
            factors[row] = 0
            bias[row] = 0
            continue
        Q = other_factors[cols[sel]].astype(np.float64)
        y = ratings[sel].astype(np.float64) - mu - other_bias[cols[sel]].astype(np.float64)
        scale = base + count_weight * n
        if fit_bias:
            A = np.empty((n, k + 1))
            A[:, 0] = 1.0
            A[:, 1:] = Q
            lam = np.full(k + 1, scale * reg)
            lam[0] = scale * reg_bias
            x = np.linalg.solve(A.T @ A + np.diag(lam), A.T @ y)
            bias[row], factors[row] = x[0], x[1:]
        else:
            factors[row] = np.linalg.solve(Q.T @ Q + np.eye(k) * scale * reg, Q.T @ y)
            bias[row] = 0
    return 0
