"""Does per-row AdaGrad (LIBMF's rule) train better than constant-rate SGD? ML-100K u1.

A plain serial float64 prototype of both update rules (adagrad_proto.pyx), so the
comparison is of the rules, not of mfcore's kernels. Validation: 10% carved from
u1.base; each run stops after 8 epochs without improvement, and the u1.test RMSE
of its best validation epoch is printed.

Run: cythonize -i benchmarks/experiments/adagrad_proto.pyx
     MFCORE_DATA=/path/to/data PYTHONPATH=benchmarks/experiments \
         python benchmarks/experiments/adagrad.py const|ada
Prints: rule k [lr] reg reg_bias [best val RMSE, best epoch, test RMSE there].
"""
import itertools
import os
import sys

import numpy as np

import adagrad_proto as proto

D = os.path.join(os.environ["MFCORE_DATA"], "ml-100k", "")


def read(n):
    a = np.loadtxt(D + n, dtype=np.int64)
    return a[:, 0], a[:, 1], a[:, 2].astype(float)


bu_, bi_, br_ = read("u1.base")
tu_, ti_, tr_ = read("u1.test")
items = np.unique(np.concatenate([bi_, ti_]))
umap = {x: j for j, x in enumerate(np.unique(np.concatenate([bu_, tu_])))}
imap = {x: j for j, x in enumerate(items)}
U = np.array([umap[x] for x in bu_], np.int32); I = np.array([imap[x] for x in bi_], np.int32)
TU = np.array([umap[x] for x in tu_], np.int32); TI = np.array([imap[x] for x in ti_], np.int32)
rng = np.random.default_rng(0); perm = rng.permutation(len(br_)); nv = len(br_) // 10
va, tr = perm[:nv], np.sort(perm[nv:])


def train(k, lr, reg, regb, ada, epochs=150, seed=0, patience=8, on_full=False):
    rng = np.random.default_rng(seed)
    idx = np.arange(len(br_)) if on_full else tr
    u, i, r = U[idx], I[idx], br_[idx]
    mu = r.mean(); nu, ni = len(umap), len(imap)
    P = rng.normal(0, 0.05, (nu, k)); Q = rng.normal(0, 0.05, (ni, k))
    bu = np.zeros(nu); bi = np.zeros(ni)
    g = [np.ones(nu), np.ones(ni), np.ones(nu), np.ones(ni)]
    best = (9, 0, 9); bad = 0
    for ep in range(1, epochs + 1):
        proto.epoch(u, i, r, rng.permutation(len(r)), mu, bu, bi, P, Q, *g, lr, reg, regb, ada)
        v = proto.rmse(U[va], I[va], br_[va], mu, bu, bi, P, Q, 1, 5)
        t = proto.rmse(TU, TI, tr_, mu, bu, bi, P, Q, 1, 5)
        if v < best[0] - 1e-4: best = (v, ep, t); bad = 0
        else:
            bad += 1
            if bad >= patience: break
    return best


mode = sys.argv[1]
if mode == "const":
    for k, reg, regb in itertools.product([64, 128], [0.08, 0.1], [0.005, 0.02]):
        print("const", k, reg, regb, ["%.4f" % x if isinstance(x, float) else x for x in train(k, 0.01, reg, regb, 0)], flush=True)
else:
    for k, lr, reg, regb in itertools.product([64, 128], [0.02, 0.05, 0.1], [0.05, 0.08, 0.12], [0.005, 0.02]):
        print("ada", k, lr, reg, regb, ["%.4f" % x if isinstance(x, float) else x for x in train(k, lr, reg, regb, 1)], flush=True)
