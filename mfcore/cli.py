"""Command line: ``mfcore demo`` (more subcommands come with the data workflow)."""
import argparse
import os
import sys
import time

import numpy as np


def _load_ml100k():
    root = os.environ.get("MFCORE_DATA")
    path = os.path.join(root, "ml-100k", "u.data") if root else None
    if path and os.path.exists(path):
        data = np.loadtxt(path, dtype=np.int64)
        return data[:, 0], data[:, 1], data[:, 2].astype(np.float32), f"MovieLens 100K ({path})"
    return None


def _synthetic(seed=0, n_users=6040, n_items=3706, n=1_000_209, k=10):
    rng = np.random.default_rng(seed)
    P = rng.normal(0, 0.5, (n_users, k))
    Q = rng.normal(0, 0.5, (n_items, k))
    u = rng.integers(0, n_users, n)
    i = rng.integers(0, n_items, n)
    r = np.clip(np.rint(3.5 + np.einsum("nk,nk->n", P[u], Q[i]) + rng.normal(0, 0.5, n)), 1, 5)
    return u, i, r.astype(np.float32), "synthetic ML-1M-shaped data"


def demo(args):
    import mfcore

    data = _load_ml100k()
    if data is None:
        print("MovieLens 100K not found (set MFCORE_DATA to a folder holding ml-100k/u.data); "
              "using synthetic ML-1M-shaped data instead.")
        data = _synthetic()
    users, items, ratings, name = data
    rng = np.random.default_rng(888)
    perm = rng.permutation(len(ratings))
    n_train, n_val = int(0.8 * len(perm)), int(0.9 * len(perm))
    tr, va, te = perm[:n_train], perm[n_train:n_val], perm[n_val:]
    print(f"data: {name}: {len(ratings):,} ratings; split 80/10/10 (seed 888)")
    start = time.perf_counter()
    model = mfcore.Model(k=20).fit(users[tr], items[tr], ratings[tr])
    seconds = time.perf_counter() - start
    print(f"fit: k=20, {model.epochs} epochs in {seconds:.2f} s "
          f"(OpenMP={'on' if mfcore.openmp_enabled() else 'off'})")
    for label, idx in (("validation", va), ("test", te)):
        res = model.evaluate(users[idx], items[idx], ratings[idx])
        print(f"{label} RMSE {res['rmse']:.4f}  MAE {res['mae']:.4f}")
    pred = model.predict(users[te[:5]], items[te[:5]])
    for u, i, r, p in zip(users[te[:5]], items[te[:5]], ratings[te[:5]], pred):
        print(f"  user {u} item {i}: true {r:.0f} predicted {p:.2f}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mfcore", description="Matrix factorization for ratings.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train and evaluate on MovieLens 100K (or synthetic data)")
    p.set_defaults(func=demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
