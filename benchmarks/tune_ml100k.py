"""The ML-100K accuracy table of the training issue: defaults, search on u1, and u1..u5.

Run: MFCORE_DATA=/path/to/data python benchmarks/tune_ml100k.py [--folds 1 2 3 4 5]
Every search carves its validation split from u{k}.base only; u{k}.test is used
once, to score the model the search refit.
"""
import argparse
import os
import sys
import time

import numpy as np

import mfcore

GRID = {"k": [64, 128, 256], "reg": [0.04, 0.06, 0.08, 0.1], "reg_bias": [0.005, 0.02],
        "lr": [0.005, 0.01], "init_std": [0.003, 0.01], "epochs": [200]}


def read(root, name):
    data = np.loadtxt(os.path.join(root, "ml-100k", name), dtype=np.int64)
    return data[:, 0], data[:, 1], data[:, 2]


def learning_curve(root, args, epochs=80):
    """Train and held-out RMSE per epoch of the default model (u1.test only watched, never
    used to choose anything), as a table and, with matplotlib, a PNG."""
    train, test = read(root, "u1.base"), read(root, "u1.test")
    model = mfcore.Model(epochs=epochs, n_iter_no_change=epochs, n_threads=args.n_threads)
    model.fit(*train, validation=test)
    rows = [(h["epoch"], h["train_rmse"], h["val_rmse"]) for h in model.history_]
    print("epoch  train RMSE  u1.test RMSE   (default Model run on past its 40 epochs)")
    for epoch, train_rmse, test_rmse in rows:
        if epoch % 5 == 0 or epoch == 1:
            print(f"{epoch:5d}  {train_rmse:10.4f}  {test_rmse:12.4f}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return
    epoch, train_rmse, test_rmse = zip(*rows)
    plt.plot(epoch, train_rmse, label="train (during the epoch)")
    plt.plot(epoch, test_rmse, label="u1.test")
    plt.axvline(mfcore.Model().epochs, ls=":", c="grey", label="default epochs")
    plt.title("mfcore.Model() defaults on MovieLens 100K u1.base -> u1.test")
    plt.xlabel("epoch")
    plt.ylabel("RMSE")
    plt.legend()
    plt.savefig(args.curves, dpi=120)
    print(f"wrote {args.curves}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--n-threads", type=int, default=None)
    parser.add_argument("--curves", metavar="PNG", default=None,
                        help="print the defaults' learning curve on u1 (train and u1.test RMSE "
                        "per epoch) and plot it to PNG when matplotlib is installed")
    args = parser.parse_args()
    root = os.environ.get("MFCORE_DATA")
    if not root or not os.path.exists(os.path.join(root, "ml-100k", "u1.base")):
        sys.exit("set MFCORE_DATA to a folder holding ml-100k/u1.base")
    if args.curves:
        learning_curve(root, args)
    base = mfcore.Model(n_threads=args.n_threads)
    rows = []
    for fold in args.folds:
        train, test = read(root, f"u{fold}.base"), read(root, f"u{fold}.test")
        start = time.perf_counter()
        default = mfcore.Model(n_threads=args.n_threads).fit(*train)
        default_seconds = time.perf_counter() - start
        default_rmse = default.evaluate(*test)["rmse"]
        start = time.perf_counter()
        found = mfcore.search(*train, GRID, base=base, validation_fraction=0.1, seed=0)
        search_seconds = time.perf_counter() - start
        tuned_rmse = found.best_model_.evaluate(*test)["rmse"]
        rows.append((default_rmse, tuned_rmse))
        print(f"u{fold}: defaults test RMSE {default_rmse:.4f} (fit {default_seconds:.2f} s); "
              f"searched {len(found.results_)} settings in {search_seconds:.1f} s, "
              f"best {found.best_params_} -> val {found.best_score_:.4f}, test {tuned_rmse:.4f}",
              flush=True)
    if len(rows) > 1:
        d, t = np.array(rows).T
        print(f"mean over {len(rows)} folds: defaults {d.mean():.4f} +- {d.std():.4f}, "
              f"tuned {t.mean():.4f} +- {t.std():.4f}")


if __name__ == "__main__":
    main()
