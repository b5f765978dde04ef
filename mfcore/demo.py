"""A first look at mfcore: train and evaluate on MovieLens 100K (or synthetic data).

Run it as ``python -m mfcore.demo`` or ``mfcore demo`` (``--help`` for the options). It splits
the ratings 80/10/10 at random, trains ``mfcore.Model(k=20)`` with early stopping on the
validation part, and prints validation and test RMSE and MAE, the fit time and a few test
predictions beside the true ratings. Without the real data it says so and uses synthetic
MovieLens-1M-shaped data instead.
"""
import argparse
import sys
import time

from . import datasets, openmp_enabled
from .estimators import SGD
from .split import train_val_test_split

SEED = 888              # the split seed
DOWNLOAD_TIMEOUT = 10.0
MAX_EPOCHS = 200        # early stopping on the validation part ends the fit sooner
K = 20

DESCRIPTION = (
    "Train and evaluate on MovieLens 100K with a fixed protocol: a random 80/10/10 "
    f"train/validation/test split of all 100,000 ratings (seed {SEED}), mfcore.SGD with "
    f"k={K} and the other defaults, up to {MAX_EPOCHS} epochs with early stopping on the "
    "validation part (the best epoch kept); print validation and test RMSE and MAE, the fit "
    "time and a few test predictions beside the true ratings. Without the real data it says "
    "so and uses synthetic MovieLens-1M-shaped data.")


def add_arguments(parser):
    """The demo's options, on ``parser`` (its own, or the ``mfcore demo`` subcommand's)."""
    parser.add_argument("--synthetic", action="store_true",
                        help="use synthetic data even if the real set is available")
    parser.add_argument("--no-download", action="store_true",
                        help="do not try to download MovieLens")
    parser.add_argument("--seed", type=int, default=SEED, help=f"split seed (default {SEED})")


def load_data(synthetic=False, download=True):
    """(DataFrame, description): MovieLens 100K if it can be had, else synthetic ML-1M."""
    reason = "--synthetic was given"
    if not synthetic:
        try:
            path = datasets.movielens_path(
                "ml-100k", download=download, timeout=DOWNLOAD_TIMEOUT,
                progress=lambda line: print(f"MovieLens 100K is not on this machine; {line}",
                                            flush=True))
            return datasets.movielens("ml-100k", download=False), f"MovieLens 100K ({path})"
        except (OSError, ValueError) as exc:  # offline, no cache folder, an edited copy...
            reason = str(exc)
    print(f"MovieLens 100K unavailable: {reason}")
    print("Running on synthetic MovieLens-1M-shaped data instead "
          "(set MFCORE_DATA to a folder holding ml-100k/u.data to use the real set).")
    return datasets.synthetic("ml-1m", seed=0), "synthetic ML-1M-shaped data"


def run(synthetic=False, download=True, seed=SEED):
    """Run the demo, printing as it goes (progress on stderr); returns the fitted model."""
    data, name = load_data(synthetic, download)
    train, val, test = train_val_test_split(data, 0.1, 0.1, seed=seed)
    print(f"data: {name}: {len(data):,} ratings, {data['user'].nunique():,} users, "
          f"{data['item'].nunique():,} items")
    print(f"split: random 80/10/10 (seed {seed}): {len(train):,} train, "
          f"{len(val):,} validation, {len(test):,} test")
    model = SGD(k=K, epochs=MAX_EPOCHS)
    print(f"training k={K} for up to {MAX_EPOCHS} epochs, stopping early on the validation "
          "part ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    model.fit(train["user"], train["item"], train["rating"],
              validation=(val["user"], val["item"], val["rating"]))
    seconds = time.perf_counter() - start
    print(f"fit: k={K}, {model.n_epochs_} epochs in {seconds:.2f} s (OpenMP "
          f"{'on' if openmp_enabled() else 'off'}); {model.stop_reason_}")
    for label, part in (("validation", val), ("test", test)):
        scores = model.evaluate(part["user"], part["item"], part["rating"])
        print(f"{label:>10} RMSE {scores['rmse']:.4f}  MAE {scores['mae']:.4f}")
    sample = test.sample(5, random_state=seed)
    pred = model.predict(sample["user"], sample["item"])
    print("a few test ratings:")
    for (user, item, true), guess in zip(sample[["user", "item", "rating"]].itertuples(index=False),
                                        pred):
        print(f"  user {user:>5}  item {item:>5}  true {true:g}  predicted {guess:.2f}")
    return model


def main(argv=None):
    """``python -m mfcore.demo [--synthetic] [--no-download] [--seed N]``; returns 0."""
    parser = argparse.ArgumentParser(prog="python -m mfcore.demo", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    run(args.synthetic, not args.no_download, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
