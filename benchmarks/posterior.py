"""BayesianMF's posterior: what ``predict(return_std=True)`` costs, and the model file's size
at 1e9 ratings by a written model scaled from a measured small file.

``--std``: on ML-100K u1 (u1.base -> u1.test), for the samples posterior (defaults) and the
summary (``posterior_mb=0``), the median CPU time of ``predict`` and of ``predict(...,
return_std=True)`` over the 20,000 test pairs and over those of known ids, 1 thread.

``--size``: fits a synthetic model of ``--rows`` rows with the summary posterior, saves it,
and reads each member's bytes from the file; then scales each part by rows (or by ratings:
the seen items) to 1e9 ratings over 25.5 million rows (25e6 users, 0.5e6 items, a
Netflix-like shape), and says which parts fit 2 GB.

Run (mfcore built in place):
    MFCORE_DATA=/path/to/data PYTHONPATH=. python benchmarks/posterior.py --std
    PYTHONPATH=. python benchmarks/posterior.py --size [--k 10]
"""
import argparse
import os
import tempfile
import time
import warnings
import zipfile

import numpy as np

import mfcore

USERS, ITEMS, RATINGS = 25_000_000, 500_000, 1_000_000_000


def std_cost(root):
    """Rows of (model, pairs, predict ms, predict + std ms) on ML-100K u1, 1 thread."""
    base = np.loadtxt(os.path.join(root, "ml-100k", "u1.base"), dtype=np.int64)[:, :3]
    test = np.loadtxt(os.path.join(root, "ml-100k", "u1.test"), dtype=np.int64)[:, :3]
    known = np.isin(test[:, 1], base[:, 1]) & np.isin(test[:, 0], base[:, 0])
    rows = []
    for label, settings in (("samples", {}), ("summary", {"posterior_mb": 0.0})):
        model = mfcore.BayesianMF(seed=0, n_threads=1, **settings).fit(
            base[:, 0], base[:, 1], base[:, 2].astype(np.float64))
        for pairs, chosen in (("all", test), ("known ids", test[known])):
            plain, both = [], []
            for _ in range(7):
                start = time.process_time()
                model.predict(chosen[:, 0], chosen[:, 1])
                middle = time.process_time()
                model.predict(chosen[:, 0], chosen[:, 1], return_std=True)
                plain.append(middle - start)
                both.append(time.process_time() - middle)
            rows.append((f"{label} (k={model.k}, S={model.n_kept_})", f"{pairs} ({len(chosen):,})",
                         1e3 * np.median(plain), 1e3 * np.median(both)))
    return rows


def member_bytes(path):
    """Bytes of each ``state.*`` member of a model file (other members: 'other')."""
    out = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename[:-4]
            name = name[6:] if name.startswith("state.") else "other"
            out[name] = out.get(name, 0) + info.compress_size + len(info.filename) + 30
    return out


#: the file's parts, their members and what each scales with (rows of a side, ratings)
PARTS = (("factor means", ("user_factors", "item_factors"), None),
         ("summary stds (float16)", ("user_posterior_std", "item_posterior_std"), None),
         ("biases", ("user_bias", "item_bias"), None),
         ("id maps", ("user_ids", "item_ids"), None),
         ("item counts", ("item_counts",), "items"),
         ("seen items (indptr)", ("seen_indptr",), "users"),
         ("seen items (int32 a rating)", ("seen_items",), "ratings"))


def written_model(k, rows):
    """(the measured file's parts, the parts scaled to 1e9 ratings), in bytes."""
    n_users, n_items = rows * 49 // 50, rows // 50
    data = mfcore.datasets.synthetic(n_users=n_users, n_items=n_items, n_ratings=rows * 20,
                                     seed=0)
    model = mfcore.BayesianMF(k=k, burn_in=2, n_samples=3, posterior_mb=0.0, seed=0)
    model.fit(data.user.to_numpy(), data.item.to_numpy(), data.rating.to_numpy())
    n_users, n_items = len(model.user_map_), len(model.item_map_)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.mfz")
        model.save(path)
        measured = member_bytes(path)
    per = {"users": USERS / n_users, "items": ITEMS / n_items,
           "ratings": RATINGS / model.n_ratings_}
    scaled = {}
    for label, members, by in PARTS:
        total = 0.0
        for name in members:
            side = by or ("users" if name.startswith("user") else "items")
            if name == "seen_items":  # int32 at 1e9 ratings (item rows beyond 2^16)
                total += RATINGS * 4
                continue
            total += measured.get(name, 0) * per[side]
        scaled[label] = total
    return measured, scaled, (n_users, n_items, model.n_ratings_)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--std", action="store_true")
    parser.add_argument("--size", action="store_true")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rows", type=int, default=50_000,
                        help="rows of the measured synthetic model (--size)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", mfcore.UnknownIdWarning)
    print(f"mfcore {mfcore.__version__}, load {os.getloadavg()[0]:.1f}\n")
    if args.std:
        root = os.environ.get("MFCORE_DATA")
        if not root:
            raise SystemExit("set MFCORE_DATA to the folder holding ml-100k/")
        print("| model | pairs | predict (CPU ms) | predict + std (CPU ms) | ratio |")
        print("|---|---|---|---|---|")
        for model, pairs, plain, both in std_cost(root):
            print(f"| {model} | {pairs} | {plain:.1f} | {both:.1f} | {both / plain:.1f}x |")
        print()
    if args.size:
        measured, scaled, (n_users, n_items, n_ratings) = written_model(args.k, args.rows)
        print(f"measured: summary posterior, k={args.k}, float32, {n_users:,} users, "
              f"{n_items:,} items, {n_ratings:,} ratings: {sum(measured.values()):,} bytes")
        print(f"\n1e9 ratings, {USERS:,} users + {ITEMS:,} items, k={args.k}:\n")
        print("| part | bytes | GB |")
        print("|---|---|---|")
        for label, value in scaled.items():
            print(f"| {label} | {value:,.0f} | {value / 1e9:.2f} |")
        without = sum(v for label, v in scaled.items() if not label.startswith("seen"))
        print(f"| **without the seen items** | {without:,.0f} | **{without / 1e9:.2f}** |")
        print(f"| with them | {sum(scaled.values()):,.0f} | {sum(scaled.values()) / 1e9:.2f} |")
        samples = (USERS + ITEMS) * (args.k + 1) * 4
        print(f"\n(one kept sample: {samples / 1e9:.2f} GB; the defaults' 150: "
              f"{150 * samples / 1e9:.0f} GB)")


if __name__ == "__main__":
    main()
