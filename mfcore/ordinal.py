"""Ordinal ratings in ``mfcore.BayesianMF(likelihood="ordered_probit")``: the ordered probit.

A rating on a small ordered scale (1 to 5 stars) is one of C classes, the distinct
training ratings sorted (``classes_``). The ordered probit (Albert and Chib 1993) reads
it as a latent rating that fell between two cut points::

    z = f(u, i) + eps,  eps ~ N(0, 1),    class c  <=>  cut_{c-1} < z <= cut_c

with cut_{-1} = -inf, cut_{C-1} = +inf, and f the model's usual prediction without the
global mean (biases, factors, implicit, feature and time terms). So
``P(c) = Phi(cut_c - f) - Phi(cut_{c-1} - f)``: the gap between two stars is learnt
from the data instead of being one star everywhere, and the noise of a rating is
allowed to depend on where it falls on the scale.

Identification: the latent scale's unit is the noise (its precision is fixed at 1, so
no alpha is drawn) and its origin is the first cut point, held where the training
ratings' share of the lowest class puts it for a latent N(0, 2),
``cut_0 = sqrt(2) Phi^-1(share of class 0)``; the other C - 2 are sampled. So the
latent mean starts near 0, where the factors and biases start and their priors are
centered, and nothing else has to absorb an offset (the biases' group means are free
as in the Gaussian model).

Each sweep (``GibbsSweeps.step``):

1. the parameters given the latent ratings: the Gaussian sweep on the residuals
   z - f with the noise precision fixed at 1 (every term of the model, unchanged);
2. the cut points given f with the latent ratings integrated out (Cowles 1996): a
   Metropolis-Hastings step whose proposal is a multivariate t (5 degrees of freedom)
   centered on the Newton step from the current cut points, with the negative Hessian
   there as precision (Gamerman 1997's proposal for GLMs; the log-likelihood is
   concave, and nearly quadratic with this much data, so one step lands at its mode);
   the acceptance ratio corrects for the proposal's densities there and back. With
   80,000 ratings the cut points are known to about 0.01 given f, so Albert and Chib's
   uniform draw between the neighbouring latent ratings would barely move; this step
   draws from the whole conditional at once (85% accepted on ML-100K u1), for two passes
   over the ratings (``_kernels.bayes.cut_statistics``);
3. the latent ratings given f and the cut points: each a normal truncated to its
   class's interval, drawn by the inverse CDF (``_kernels.bayes.latent_draw``; in logs
   where the class has little mass, ``bayes_probit.h``: exact in either tail).

Together 2 and 3 draw (cut points, latent ratings) jointly given f. Every random
number is keyed on (seed, stream, sweep, rating or coordinate) and every sum runs in
fixed chunks, so a fit is bit-identical for any thread count.

Predictions: ``predict_proba`` gives each class's probability, the mean over the kept
samples of ``Phi((cut_c - f_s) / sd) - Phi((cut_{c-1} - f_s) / sd)``, sd =
sqrt(1 + the variance of f_s for an unknown row's prior); ``predict`` the expected
rating ``sum_c value_c P(c)``; its ``return_std`` the spread of that distribution.

Examples
--------
>>> import numpy as np, mfcore
>>> ratings = mfcore.datasets.synthetic(n_users=100, n_items=80, n_ratings=3000, seed=0)
>>> stars = np.clip(np.round(ratings.rating), 1, 5)
>>> bmf = mfcore.BayesianMF(k=4, burn_in=5, n_samples=10, likelihood="ordered_probit")
>>> bmf = bmf.fit(ratings.user, ratings.item, stars)
>>> bmf.classes_.tolist()
[1.0, 2.0, 3.0, 4.0, 5.0]
>>> proba = bmf.predict_proba(ratings.user[:3], ratings.item[:3])
>>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1.0))
((3, 5), True)
"""
import numpy as np

from ._kernels import bayes as _bayes

__all__ = ["MAX_CLASSES", "ordinal_classes"]  # the sampler's pieces are BayesianMF's, not public

#: The most distinct ratings an ordinal scale may have (more: use the Gaussian likelihood).
MAX_CLASSES = 20
#: The t proposal's degrees of freedom (heavier tails than the posterior: robust).
PROPOSAL_DF = 5.0


def ordinal_classes(ratings):
    """The classes of ordinal ``ratings``: their distinct values sorted (float64).
    ValueError, naming the value, unless they are whole or half numbers (stars) of at
    least 2 and at most ``MAX_CLASSES`` distinct values.

    Examples
    --------
    >>> from mfcore.ordinal import ordinal_classes
    >>> ordinal_classes([4, 3.5, 5, 4]).tolist()
    [3.5, 4.0, 5.0]
    """
    values = np.unique(np.asarray(ratings, dtype=np.float64))
    off = values[2 * values != np.round(2 * values)]
    if len(off):
        raise ValueError(f"likelihood='ordered_probit' needs ratings on an ordinal scale "
                         f"(whole or half stars), got the rating {off[0]:g} (averaged "
                         "duplicates? pass duplicates='last'); use likelihood='gaussian' "
                         "for continuous ratings")
    if not 2 <= len(values) <= MAX_CLASSES:
        raise ValueError(f"likelihood='ordered_probit' needs 2 to {MAX_CLASSES} distinct "
                         f"ratings (classes), got {len(values)}"
                         + (f" ({values[0]:g} to {values[-1]:g})" if len(values) else "")
                         + "; use likelihood='gaussian'")
    return values


def class_moments(proba, values):
    """The mean and standard deviation of the rating under class probabilities ``proba``
    (n, C) of the class values ``values``."""
    mean = proba @ values
    var = proba @ (values * values) - mean * mean
    return mean, np.sqrt(np.maximum(var, 0.0))


def expected_ratings(f, cut, values, n_threads=1):
    """The expected rating of each latent mean ``f`` under one sample's cut points."""
    proba = np.empty((len(f), len(values)))
    _bayes.class_probabilities(np.ascontiguousarray(f, np.float64)[:, None],
                               np.zeros((len(f), 1)), cut[None, :], proba, n_threads)
    return proba @ values


class LatentRatings:
    """The chain's ordinal state: each rating's class (residual order), the latent ratings
    z, and the cut points with their Metropolis-Hastings step (see the module docstring).
    The caller's residuals are z - f."""

    def __init__(self, ratings, n_threads):
        self.values = ordinal_classes(ratings)
        self.classes = np.searchsorted(self.values, ratings).astype(np.int8)
        self.n_threads = n_threads
        shares = np.bincount(self.classes, minlength=len(self.values)) / len(ratings)
        self.cut = np.sqrt(2.0) * np.array(
            [_bayes.normal_quantile(min(max(s, 1e-12), 1 - 1e-12))
             for s in np.cumsum(shares)[:-1]])
        self.z = np.zeros(len(ratings))
        self.accepted = 0

    def start(self, residual, seed):
        """The first latent ratings, given the initial f = -residual (z is 0)."""
        _bayes.latent_draw(self.z, residual, self.classes, self.cut, self.values, seed, 0, 1,
                           self.n_threads)

    def sweep(self, residual, seed, sweep):
        """Steps 2 and 3 of a sweep given f = z - residual: new cut points, new latent
        ratings (``residual`` kept z - f); returns the squared error of the expected
        ratings of this f."""
        self._draw_cutpoints(residual, seed, sweep)
        return _bayes.latent_draw(self.z, residual, self.classes, self.cut, self.values, seed,
                                  sweep, 0, self.n_threads)

    def _stats(self, residual, cut):
        return _bayes.cut_statistics(self.z, residual, self.classes, cut, self.n_threads)

    @staticmethod
    def _precision(stats):
        """The free cut points' (all but the first) negative Hessian, tridiagonal, dense."""
        _, _, diag, off = stats
        d = len(diag) - 1
        H = np.zeros((d, d))
        H[np.arange(d), np.arange(d)] = -diag[1:]
        H[np.arange(d - 1), np.arange(1, d)] = H[np.arange(1, d), np.arange(d - 1)] = -off[1:]
        return H

    def _proposal(self, stats, cut):
        """The proposal from ``cut`` (``stats``: its log-likelihood's): a multivariate t
        around the Newton step from it, with the negative Hessian there as precision;
        (center, Cholesky factor of the precision), or None where that is not positive
        definite (not for a concave log-likelihood with data in every class)."""
        H = self._precision(stats)
        try:
            chol = np.linalg.cholesky(H)
        except np.linalg.LinAlgError:
            return None
        center = cut.copy()
        center[1:] += np.linalg.solve(H, stats[1][1:])
        return center, chol

    @staticmethod
    def _log_q(x, proposal):
        """The log density (up to a constant shared by every proposal) of the free cut
        points of ``x`` under ``proposal`` (``_proposal``'s)."""
        center, chol = proposal
        y = chol.T @ (x[1:] - center[1:])
        return (np.log(np.diag(chol)).sum()
                - 0.5 * (PROPOSAL_DF + len(y)) * np.log1p(y @ y / PROPOSAL_DF))

    def _draw_cutpoints(self, residual, seed, sweep):
        """The Metropolis-Hastings step (module docstring): propose from the Newton step
        from the current cut points (``_proposal``), accept with the likelihood ratio
        corrected by the proposal's densities there and back. Keyed draws (stream
        "cutpoints": coordinate 0 the normals, 1 the t's Gamma, 2 the acceptance)."""
        d = len(self.cut) - 1
        if d < 1:  # two classes: the one cut point is the fixed one
            return
        current = self._stats(residual, self.cut)
        forward = self._proposal(current, self.cut)
        if forward is None:
            return
        stream = _bayes.STREAMS["cutpoints"]
        eps, w, u = np.empty(d), np.empty(1), np.empty(1)
        _bayes.draws("normal", seed, stream, sweep, 0, eps)
        _bayes.draws("gamma", seed, stream, sweep, 1, w, shape=PROPOSAL_DF / 2)
        _bayes.draws("uniform", seed, stream, sweep, 2, u)
        proposal = forward[0].copy()
        proposal[1:] += np.linalg.solve(forward[1].T, eps) / np.sqrt(w[0] / (PROPOSAL_DF / 2))
        if not (np.diff(proposal) > 0).all():
            return  # outside the support: rejected
        there = self._stats(residual, proposal)
        backward = self._proposal(there, proposal)
        if backward is None:
            return
        log_ratio = (there[0] - current[0] + self._log_q(self.cut, backward)
                     - self._log_q(proposal, forward))
        if np.log(u[0]) < log_ratio:
            self.cut = proposal
            self.accepted += 1
