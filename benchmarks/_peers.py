"""Reference implementations of the same model for the benchmarks.

Each ``fit_*`` trains r = mu + b_u + b_i + p_u . q_i with the same
hyperparameters as mfcore (k, epochs, lr, reg, init_std) and returns
``(epoch_seconds, predict)`` where ``predict(users, items)`` gives raw
(unclipped) predictions. Optional peers raise ``pytest.skip`` with the reason
when their package is missing.

- ``fit_numpy``: vectorized NumPy mini-batch SGD (gather, compute, scatter-add).
- ``fit_numba``: the notebook's approach: mini-batch gradient steps on randomly
  drawn batches, written as array expressions inside ``numba.njit``.
- ``fit_surprise``: ``surprise.SVD`` (biased, SGD), the usual Python baseline.
"""
import time

import numpy as np
import pytest


def _init(n_users, n_items, k, init_std, mean, seed):
    rng = np.random.default_rng(seed)
    P = rng.normal(0.0, init_std, (n_users, k)).astype(np.float32)
    Q = rng.normal(0.0, init_std, (n_items, k)).astype(np.float32)
    return rng, P, Q, np.zeros(n_users, np.float32), np.zeros(n_items, np.float32), np.float32(mean)


def _predictor(P, Q, bu, bi, mu):
    def predict(users, items):
        return mu + bu[users] + bi[items] + np.einsum("nk,nk->n", P[users], Q[items])
    return predict


def fit_numpy(train, k, epochs, lr, reg, init_std, batch=1024, seed=0):
    """Mini-batch SGD in NumPy: each batch's summed gradient, scattered with ``np.add.at``."""
    u, i, r = train
    rng, P, Q, bu, bi, mu = _init(u.max() + 1, i.max() + 1, k, init_std, r.mean(), seed)
    lr, reg = np.float32(lr), np.float32(reg)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(r))
        for lo in range(0, len(r), batch):
            idx = order[lo:lo + batch]
            uu, ii = u[idx], i[idx]
            pu, qi = P[uu], Q[ii]
            e = r[idx] - (mu + bu[uu] + bi[ii] + np.einsum("nk,nk->n", pu, qi))
            np.add.at(bu, uu, lr * (e - reg * bu[uu]))
            np.add.at(bi, ii, lr * (e - reg * bi[ii]))
            np.add.at(P, uu, lr * (e[:, None] * qi - reg * pu))
            np.add.at(Q, ii, lr * (e[:, None] * pu - reg * qi))
        seconds.append(time.perf_counter() - start)
    return seconds, _predictor(P, Q, bu, bi, mu)


_numba_step = None


def _numba_kernel():
    """Compile (once) the notebook-style mini-batch step."""
    global _numba_step
    if _numba_step is None:
        numba = pytest.importorskip("numba", reason="numba is not installed (pip install numba)")

        @numba.njit(cache=False)
        def step(u, i, r, idx, P, Q, bu, bi, mu, lr, reg):
            uu, ii = u[idx], i[idx]
            pu, qi = P[uu], Q[ii]  # gathers: (batch, k) copies, as array code does
            e = r[idx] - (mu + bu[uu] + bi[ii] + (pu * qi).sum(axis=1))
            gp = e.reshape(-1, 1) * qi - reg * pu
            gq = e.reshape(-1, 1) * pu - reg * qi
            gbu = e - reg * bu[uu]
            gbi = e - reg * bi[ii]
            for t in range(len(idx)):  # scatter-add (a user may appear twice in a batch)
                bu[uu[t]] += lr * gbu[t]
                bi[ii[t]] += lr * gbi[t]
                P[uu[t]] += lr * gp[t]
                Q[ii[t]] += lr * gq[t]
            return (e * e).sum()

        _numba_step = step
    return _numba_step


def fit_numba(train, k, epochs, lr, reg, init_std, batch=1024, seed=0):
    """The notebook's approach: n / batch gradient steps an epoch, each on a random batch."""
    step = _numba_kernel()
    u, i, r = train
    rng, P, Q, bu, bi, mu = _init(u.max() + 1, i.max() + 1, k, init_std, r.mean(), seed)
    lr, reg = np.float32(lr), np.float32(reg)
    step(u, i, r, np.arange(2, dtype=np.int64), P.copy(), Q.copy(), bu.copy(), bi.copy(),
         mu, lr, reg)  # compile outside the timing
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _ in range(len(r) // batch):
            step(u, i, r, rng.integers(0, len(r), batch), P, Q, bu, bi, mu, lr, reg)
        seconds.append(time.perf_counter() - start)
    return seconds, _predictor(P, Q, bu, bi, mu)


def fit_surprise(train, k, epochs, lr, reg, init_std, seed=0):
    """``surprise.SVD`` on the same ratings; per-epoch time is its fit time / epochs."""
    surprise = pytest.importorskip(
        "surprise", reason="scikit-surprise is not installed (pip install scikit-surprise)")
    import pandas as pd
    u, i, r = train
    frame = pd.DataFrame({"u": u, "i": i, "r": r.astype(np.float64)})
    data = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(1, 5)))
    trainset = data.build_full_trainset()
    algo = surprise.SVD(n_factors=k, n_epochs=epochs, lr_all=lr, reg_all=reg,
                        init_std_dev=init_std, biased=True, random_state=seed)
    start = time.perf_counter()
    algo.fit(trainset)
    total = time.perf_counter() - start
    # Surprise's arrays are indexed by its inner ids; map ours through them once
    inner_u = np.full(u.max() + 1, -1, np.int64)
    inner_i = np.full(i.max() + 1, -1, np.int64)
    for raw in np.unique(u):
        inner_u[raw] = trainset.to_inner_uid(raw)
    for raw in np.unique(i):
        inner_i[raw] = trainset.to_inner_iid(raw)
    predict = _predictor(algo.pu, algo.qi, algo.bu, algo.bi, trainset.global_mean)
    return [total / epochs] * epochs, lambda users, items: predict(inner_u[users], inner_i[items])
