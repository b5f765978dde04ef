"""Does regularization scaled by a row's rating count help plain SGD? ML-100K u1.

Per-update penalty reg * (n_row / mean n)^-alpha for user and item factors (alpha 0 is
mfcore's rule). A serial float64 prototype (freqreg_proto.pyx); validation is 10% carved
from u1.base; each run stops after 10 epochs without improvement and prints
alpha, reg, [best val RMSE, best epoch, u1.test RMSE there].

Run: cythonize -i benchmarks/experiments/freqreg_proto.pyx
     MFCORE_DATA=/path/to/data PYTHONPATH=benchmarks/experiments \
         python benchmarks/experiments/freqreg.py
"""
import os

import numpy as np

import freqreg_proto as fr

D = os.path.join(os.environ["MFCORE_DATA"], "ml-100k", "")


def read(n):
    a = np.loadtxt(D + n, dtype=np.int64)
    return a[:, 0], a[:, 1], a[:, 2].astype(float)


bu_, bi_, br_ = read("u1.base"); tu_, ti_, tr_ = read("u1.test")
umap = {x: j for j, x in enumerate(np.unique(np.concatenate([bu_, tu_])))}
imap = {x: j for j, x in enumerate(np.unique(np.concatenate([bi_, ti_])))}
U = np.array([umap[x] for x in bu_], np.int32); I = np.array([imap[x] for x in bi_], np.int32)
TU = np.array([umap[x] for x in tu_], np.int32); TI = np.array([imap[x] for x in ti_], np.int32)
rng = np.random.default_rng(0); perm = rng.permutation(len(br_)); nv = len(br_) // 10
va, tr = perm[:nv], np.sort(perm[nv:])


def train(k, lr, reg, alpha, init=0.01, epochs=200, patience=10):
    rng = np.random.default_rng(0)
    u, i, r = U[tr], I[tr], br_[tr]
    nu, ni = len(umap), len(imap)
    cu = np.bincount(u, minlength=nu).astype(float); ci = np.bincount(i, minlength=ni).astype(float)
    # per-update reg scaled by (n / mean n)^-alpha: alpha 0 = plain SGD
    ru = reg * (np.maximum(cu, 1) / cu[cu > 0].mean()) ** -alpha
    ri = reg * (np.maximum(ci, 1) / ci[ci > 0].mean()) ** -alpha
    mu = r.mean()
    P = rng.normal(0, init, (nu, k)); Q = rng.normal(0, init, (ni, k)); bu = np.zeros(nu); bi = np.zeros(ni)
    best = (9, 0, 9); bad = 0
    for ep in range(1, epochs + 1):
        fr.epoch(u, i, r, rng.permutation(len(r)), mu, bu, bi, P, Q, ru, ri, lr, reg)
        v = fr.rmse(U[va], I[va], br_[va], mu, bu, bi, P, Q)
        if v < best[0]: best = (v, ep, fr.rmse(TU, TI, tr_, mu, bu, bi, P, Q)); bad = 0
        else:
            bad += 1
            if bad >= patience: break
    return best


for alpha in (0.0, 0.25, 0.5):
    for reg in (0.04, 0.06, 0.08, 0.12):
        print(alpha, reg, ["%.4f" % x if isinstance(x, float) else x for x in train(64, 0.01, reg, alpha)], flush=True)
