"""A thin driver of the Gibbs sampler kernel for its tests (the estimator is mfcore.BayesianMF).

It does what the estimator will: maps ids to rows, builds the two CSR layouts, initializes
(factors ~ N(0, init_std^2), biases 0, the global mean fixed at the training mean), runs
burn-in and kept sweeps of one or more chains, and averages the kept samples' predictions
for the pairs asked about (the posterior predictive mean, clipped to the rating scale) with
their predictive std, sqrt(variance over samples + mean of 1 / alpha).

init_std is myFM's 0.1. From it a chain spends about 30 sweeps with its factors near zero
before it grows them (ML-100K u1, k = 10: training RMSE 0.92 at sweep 20, 0.79 from 0.3),
yet ends better than from a faster start: on a validation tenth of u1.base, 200 sweeps
with 50 burn-in score 0.8954 from 0.1 and 0.8964 from 0.3 at k = 10, 0.8971 and 0.9029 at
k = 32. Short chains need the faster start: 4 chains x 50 sweeps from 0.3 with 15 burn-in
each (the same 200 sweeps of work) score 0.8914 at k = 10 and 0.8953 at k = 32.

    python tests/bayes_harness.py [--fold 1] [--k 10] [--sweeps 200] [--burn-in 50]
                                  [--chains 1] [--threads 2] [--seed 0]

reads ML-100K u{fold}.base / u{fold}.test from $MFCORE_DATA/ml-100k and prints the test
RMSE, the share of test ratings inside the central 90% predictive interval and the speed.
"""
import argparse
import os
import time

import numpy as np

from mfcore._kernels import bayes as _bayes
from mfcore._kernels.predict import predict as _predict
from mfcore.estimators.bayes import sampler_layout

#: z of the central 90% interval of a normal distribution
Z90 = 1.6448536269514722


def layout(users, items, n_users, n_items):
    """The sampler's layouts (the estimator's own, ``mfcore.estimators.bayes.sampler_layout``)."""
    return sampler_layout(np.asarray(users, np.int64), np.asarray(items, np.int64),
                          n_users, n_items)


class GibbsState:
    """The sampler's arrays for one training set: layout, residuals, parameters."""

    def __init__(self, users, items, ratings, n_users, n_items, k, seed=0, init_std=0.1):
        (self.order, self.user_ptr, self.user_items, self.user_pos, self.item_ptr,
         self.item_users, self.item_pos) = layout(users, items, n_users, n_items)
        _bayes.check_layout(self.user_ptr, self.user_items, self.user_pos, self.item_ptr,
                            self.item_users, self.item_pos)
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        self.user_factors = rng.normal(0.0, init_std, (n_users, k))
        self.item_factors = rng.normal(0.0, init_std, (n_items, k))
        self.user_bias = np.zeros(n_users)
        self.item_bias = np.zeros(n_items)
        self.user_hyper = np.zeros((2, k + 1))
        self.item_hyper = np.zeros((2, k + 1))
        self.ratings = np.asarray(ratings, np.float64)[self.order][self.item_pos]
        self.mean = float(self.ratings.mean())
        self.residual = self.ratings - self.predict(*self.item_order_pairs())
        self.user_residual = np.empty_like(self.residual)
        self.sweeps = 0

    def item_order_pairs(self):
        """(user rows, item rows) of the ratings in item-CSR order (that of ``residual``)."""
        items = np.repeat(np.arange(len(self.item_ptr) - 1), np.diff(self.item_ptr))
        return self.item_users, items

    def predict(self, users, items, n_threads=1):
        """mu + b_u + b_i + p_u . q_i of the current sample, unclipped."""
        out = np.empty(len(users))
        _predict(np.asarray(users, np.int32), np.asarray(items, np.int32), self.user_factors,
                 self.item_factors, self.user_bias, self.item_bias, self.mean, -np.inf,
                 np.inf, out, n_threads)
        return out

    def sweep(self, n_threads=1):
        """One Gibbs sweep; returns (alpha, sse at the sweep's start)."""
        alpha, sse = _bayes.gibbs_sweep(
            self.user_ptr, self.user_items, self.user_pos, self.item_ptr, self.item_users,
            self.item_pos, self.residual, self.user_residual, self.user_factors,
            self.item_factors, self.user_bias, self.item_bias, self.user_hyper,
            self.item_hyper, self.seed, self.sweeps, n_threads)
        self.sweeps += 1
        return alpha, sse


def chain_seed(seed, chain):
    """The kernel's seed word for chain ``chain`` of a fit seeded ``seed``."""
    return int(np.random.SeedSequence((int(seed), int(chain))).generate_state(1, np.uint64)[0])


def fit_predict(users, items, ratings, query_users, query_items, n_users, n_items, k=10,
                n_sweeps=200, burn_in=50, n_chains=1, seed=0, init_std=0.1, n_threads=1,
                lo=1.0, hi=5.0):
    """Run ``n_chains`` chains of ``n_sweeps`` sweeps each (one after the other) and return
    the posterior predictive of the query pairs over the kept samples of all chains (the
    last n_sweeps - burn_in of each): a dict of ``mean`` (clipped to [lo, hi]),
    ``raw_mean``, ``std``, the ``alpha`` and ``sse`` traces (n_chains, n_sweeps), the last
    chain's ``state`` and ``seconds`` (the sweeps with the accumulation of the kept
    samples' predictions)."""
    if not 0 <= burn_in < n_sweeps:
        raise ValueError(f"burn_in must be from 0 to n_sweeps - 1 = {n_sweeps - 1}, "
                         f"got {burn_in}")
    if n_chains < 1:
        raise ValueError(f"n_chains must be >= 1, got {n_chains}")
    kept, mean, m2, inv_alpha = 0, np.zeros(len(query_users)), np.zeros(len(query_users)), 0.0
    alphas, sses = np.zeros((n_chains, n_sweeps)), np.zeros((n_chains, n_sweeps))
    seconds = 0.0
    for chain in range(n_chains):
        state = GibbsState(users, items, ratings, n_users, n_items, k,
                           chain_seed(seed, chain), init_std)
        start = time.perf_counter()
        for s in range(n_sweeps):
            alphas[chain, s], sses[chain, s] = state.sweep(n_threads)
            if not np.isfinite(sses[chain, s]):
                raise FloatingPointError(f"the residuals are not finite at sweep {s} of "
                                         f"chain {chain}")
            if s >= burn_in:  # Welford's running mean and sum of squared deviations
                pred = state.predict(query_users, query_items, n_threads)
                kept += 1
                delta = pred - mean
                mean += delta / kept
                m2 += delta * (pred - mean)
                inv_alpha += 1.0 / alphas[chain, s]
        seconds += time.perf_counter() - start
    std = np.sqrt(m2 / kept + inv_alpha / kept)
    return {"mean": np.clip(mean, lo, hi), "raw_mean": mean, "std": std, "alpha": alphas,
            "sse": sses, "state": state, "seconds": seconds}


def coverage(raw_mean, std, truth, z=Z90):
    """Share of ``truth`` inside mean +- z std (the central 90% interval for z = Z90)."""
    return float(np.mean(np.abs(truth - raw_mean) <= z * std))


def read_fold(root, fold):
    """u{fold}.base and u{fold}.test of ML-100K as (user, item, rating) int64 arrays."""
    base = np.loadtxt(os.path.join(root, f"u{fold}.base"), dtype=np.int64)[:, :3]
    test = np.loadtxt(os.path.join(root, f"u{fold}.test"), dtype=np.int64)[:, :3]
    return base, test


def rows(train, test):
    """Rows for the ids of both sets (the catalog): a test-only id gets a row without
    ratings, which the sampler draws from its prior. Returns (train_u, train_i, test_u,
    test_i, n_users, n_items)."""
    uid = np.unique(np.concatenate([train[:, 0], test[:, 0]]))
    iid = np.unique(np.concatenate([train[:, 1], test[:, 1]]))
    return (np.searchsorted(uid, train[:, 0]), np.searchsorted(iid, train[:, 1]),
            np.searchsorted(uid, test[:, 0]), np.searchsorted(iid, test[:, 1]),
            len(uid), len(iid))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fold", type=int, default=1)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--sweeps", type=int, default=200)
    ap.add_argument("--burn-in", type=int, default=50)
    ap.add_argument("--chains", type=int, default=1)
    ap.add_argument("--init-std", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    root = os.path.join(os.environ.get("MFCORE_DATA", "/work/shared/data"), "ml-100k")
    train, test = read_fold(root, args.fold)
    tu, ti, qu, qi, n_users, n_items = rows(train, test)
    out = fit_predict(tu, ti, train[:, 2], qu, qi, n_users, n_items, k=args.k,
                      n_sweeps=args.sweeps, burn_in=args.burn_in, n_chains=args.chains,
                      seed=args.seed, init_std=args.init_std,
                      n_threads=args.threads)
    truth = test[:, 2].astype(np.float64)
    rmse = float(np.sqrt(np.mean((out["mean"] - truth) ** 2)))
    total = args.sweeps * args.chains
    print(f"u{args.fold}: k={args.k} {args.chains} chain(s) x {args.sweeps} sweeps, burn-in "
          f"{args.burn_in}, threads={args.threads}: test RMSE {rmse:.4f}, 90% interval coverage "
          f"{coverage(out['raw_mean'], out['std'], truth):.3f}, "
          f"{total / out['seconds']:.1f} sweeps/s ({out['seconds']:.2f} s), "
          f"final noise std {1 / np.sqrt(out['alpha'][-1, -1]):.3f}")
    return rmse


if __name__ == "__main__":
    main()
