"""Do other SGD update rules train better than mfcore's? ML-100K u1, serial float64 prototypes.

    const    mfcore's rule (constant rate, one penalty), the reference for "ada"
    ada      per-row AdaGrad (LIBMF's rule)
    freqreg  factor penalty scaled by the row's rating count: reg * (n / mean n)^-alpha

Both rules live in sgd_rules_proto.pyx, so the comparison is of the rules, not of mfcore's
kernels. Validation: 10% carved from u1.base; each run stops after `patience` epochs without
improvement and prints its settings and [best val RMSE, best epoch, u1.test RMSE there].

Run: cythonize -i experiments/sgd_rules_proto.pyx
     MFCORE_DATA=/path/to/data PYTHONPATH=experiments \\
         python experiments/sgd_rules.py const|ada|freqreg
"""
import itertools
import os
import sys

import numpy as np

import sgd_rules_proto as proto

ROOT = os.path.join(os.environ["MFCORE_DATA"], "ml-100k")


def read(name):
    a = np.loadtxt(os.path.join(ROOT, name), dtype=np.int64)
    return a[:, 0], a[:, 1], a[:, 2].astype(float)


base_u, base_i, base_r = read("u1.base")
test_u, test_i, test_r = read("u1.test")
user_rows = {x: j for j, x in enumerate(np.unique(np.concatenate([base_u, test_u])))}
item_rows = {x: j for j, x in enumerate(np.unique(np.concatenate([base_i, test_i])))}
U = np.array([user_rows[x] for x in base_u], np.int32)
I = np.array([item_rows[x] for x in base_i], np.int32)
TU = np.array([user_rows[x] for x in test_u], np.int32)
TI = np.array([item_rows[x] for x in test_i], np.int32)
perm = np.random.default_rng(0).permutation(len(base_r))
val, train_rows = perm[:len(base_r) // 10], np.sort(perm[len(base_r) // 10:])


def train(rule, k, lr, reg, regb, init, epochs, patience, tol, alpha=0.0):
    rng = np.random.default_rng(0)
    u, i, r = U[train_rows], I[train_rows], base_r[train_rows]
    nu, ni, mu = len(user_rows), len(item_rows), r.mean()
    P, Q = rng.normal(0, init, (nu, k)), rng.normal(0, init, (ni, k))
    bu, bi = np.zeros(nu), np.zeros(ni)
    if rule == "ada":
        state = (np.ones(nu), np.ones(ni), np.ones(nu), np.ones(ni), lr, reg, regb)
        step = proto.epoch_adagrad
    else:
        cu = np.bincount(u, minlength=nu).astype(float)
        ci = np.bincount(i, minlength=ni).astype(float)
        ru = reg * (np.maximum(cu, 1) / cu[cu > 0].mean()) ** -alpha
        ri = reg * (np.maximum(ci, 1) / ci[ci > 0].mean()) ** -alpha
        state, step = (ru, ri, lr, regb), proto.epoch_plain
    best, bad = (9.0, 0, 9.0), 0
    for epoch in range(1, epochs + 1):
        step(u, i, r, rng.permutation(len(r)), mu, bu, bi, P, Q, *state)
        v = proto.rmse(U[val], I[val], base_r[val], mu, bu, bi, P, Q, 1, 5)
        if v < best[0] - tol:
            best, bad = (v, epoch, proto.rmse(TU, TI, test_r, mu, bu, bi, P, Q, 1, 5)), 0
        else:
            bad += 1
            if bad >= patience:
                break
    return best


def show(*settings, result):
    print(*settings, [f"{x:.4f}" if isinstance(x, float) else x for x in result], flush=True)


mode = sys.argv[1]
if mode in ("const", "ada"):
    lrs = [0.01] if mode == "const" else [0.02, 0.05, 0.1]
    regs = [0.08, 0.1] if mode == "const" else [0.05, 0.08, 0.12]
    for k, lr, reg, regb in itertools.product([64, 128], lrs, regs, [0.005, 0.02]):
        show(mode, k, lr, reg, regb, result=train(mode, k, lr, reg, regb, init=0.05,
                                                  epochs=150, patience=8, tol=1e-4))
elif mode == "freqreg":
    for alpha, reg in itertools.product([0.0, 0.25, 0.5], [0.04, 0.06, 0.08, 0.12]):
        show(alpha, reg, result=train("plain", 64, 0.01, reg, reg, init=0.01, epochs=200,
                                      patience=10, tol=0.0, alpha=alpha))
else:
    sys.exit(f"unknown mode {mode!r}: const, ada or freqreg")
