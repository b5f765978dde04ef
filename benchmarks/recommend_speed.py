"""Recommending figures (a script, not part of the pytest runs).

    python benchmarks/recommend_speed.py [speed|quality|all] [rounds]

speed: ``Model.recommend`` top-10 for every user, ``similar_items`` for every
    item, ``metrics.ranking_metrics`` over a 10% test set, and the latency of
    one user's recommend / one item's similar_items / one fold_in, on ML-1M- and
    ML-10M-shaped models at k=64 (float32). The models are not trained: the
    id maps and the seen-items CSR come from ``fit(epochs=0)`` on
    ``datasets.synthetic(preset)`` (power-law users and items, the real
    rating counts), then factors and biases are set to random values of the
    trained scale. Median of ``rounds`` runs at 1 and 2 threads (the machine
    may be shared: compare within one run).
quality: on MovieLens 100K u1 ($MFCORE_DATA): the ranking metrics of the
    default model (u1.base -> u1.test, relevant: rating >= 4) beside a
    popularity ranking; and fold-in: 10% of the users are left out of training
    and folded in from their u1.base ratings (all of them, or only 5), then
    scored on their u1.test ratings against a full refit on all of u1.base and
    against the unknown-user fallback.
"""
import copy
import os
import statistics
import sys
import time
import warnings

import numpy as np

import mfcore
from mfcore import datasets
from mfcore.errors import UnknownIdWarning
from mfcore.metrics import ranking_metrics


def _median_time(fn, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_model(preset, k=64, seed=0):
    """A model with the maps and seen items of ``preset``'s synthetic ratings and random parameters."""
    frame = datasets.synthetic(preset, seed=seed)
    test = np.random.default_rng(seed).random(len(frame)) < 0.1
    train = frame[~test]
    model = mfcore.Model(k=k, epochs=0, init_std=0.1).fit(train["user"], train["item"],
                                                          train["rating"])
    rng = np.random.default_rng(seed + 1)
    model.user_bias_[:] = rng.normal(0, 0.3, len(model.user_bias_))
    model.item_bias_[:] = rng.normal(0, 0.3, len(model.item_bias_))
    return model, frame[test]


def speed(rounds):
    print(f"{'shape':8} {'what':44} {'threads':>7} {'seconds':>8}")
    for preset in ("ml-1m", "ml-10m"):
        model, test = random_model(preset)
        users = model.user_map_.ids
        label = f"{len(users):,} users x {len(model.item_map_):,} items, k=64"
        for threads in (1, 2):
            model.n_threads = threads
            t = _median_time(lambda: model.recommend(users, n=10), rounds)
            print(f"{preset:8} {'recommend top-10, every user':44} {threads:7d} {t:8.3f}   {label}")
        for threads in (1, 2):
            model.n_threads = threads
            t = _median_time(lambda: model.similar_items(model.item_map_.ids, n=10), rounds)
            print(f"{preset:8} {'similar_items top-10, every item':44} {threads:7d} {t:8.3f}")
        model.n_threads = 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownIdWarning)
            t = _median_time(lambda: ranking_metrics(model, test["user"], test["item"],
                                                     test["rating"], k=10), rounds)
        print(f"{preset:8} {f'ranking_metrics@10, {len(test):,} test ratings':44} {2:7d} {t:8.3f}")
        model.n_threads = 1
        one_user, one_item = users[len(users) // 2], model.item_map_.ids[0]
        latency = (("recommend, one user", lambda: model.recommend(one_user, n=10)),
                   ("similar_items, one item", lambda: model.similar_items(one_item, n=10)),
                   ("fold_in, one user with 20 ratings",
                    lambda: model.fold_in(-1, model.item_map_.ids[:20], np.full(20, 4.0))))
        for what, call in latency:
            t = _median_time(call, 5 * rounds)
            print(f"{preset:8} {what:44} {1:7d} {t:8.4f}")
        items, _ = model.recommend(users[:1000], n=10)
        seen = model.seen_items_
        for row in range(1000):  # sanity: no seen item in the output
            rated = model.item_map_.ids[seen[model.seen_indptr_[row]:model.seen_indptr_[row + 1]]]
            assert not np.isin(items[row], rated).any()


def quality():
    import pandas as pd

    from mfcore.io import read_ratings

    root = os.environ.get("MFCORE_DATA")
    if not root or not os.path.exists(os.path.join(root, "ml-100k", "u1.base")):
        print("quality: set MFCORE_DATA to a folder holding ml-100k/ (skipped)")
        return
    base = read_ratings(os.path.join(root, "ml-100k", "u1.base"))
    test = read_ratings(os.path.join(root, "ml-100k", "u1.test"))
    full = mfcore.Model().fit(base["user"], base["item"], base["rating"])
    print("ML-100K u1, default Model(), relevant = rating >= 4, k = 10")
    m = ranking_metrics(full, test["user"], test["item"], test["rating"], k=10, threshold=4)
    popular = mfcore.Model(k=1, epochs=0).fit(base["user"], base["item"], base["rating"])
    counts = base["item"].value_counts()
    popular.item_bias_[:] = counts.reindex(popular.item_map_.ids).to_numpy() / counts.max()
    pop = ranking_metrics(popular, test["user"], test["item"], test["rating"], k=10, threshold=4)
    names = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")
    print(f"  {'':22}" + "".join(f"{n:>10}" for n in names) + "     users")
    for label, res in (("default model", m), ("popularity (counts)", pop)):
        print(f"  {label:22}" + "".join(f"{res[n]:10.4f}" for n in names) + f"{res['n_users']:10d}")

    rng = np.random.default_rng(0)
    all_users = np.unique(base["user"])
    new = rng.choice(all_users, len(all_users) // 10, replace=False)
    is_new = base["user"].isin(new).to_numpy()
    held = test[test["user"].isin(new)]
    old = base[~is_new]
    given = base[is_new]
    rest = mfcore.Model().fit(old["user"], old["item"], old["rating"])

    def score(model):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownIdWarning)
            return model.evaluate(held["user"], held["item"], held["rating"])["rmse"]

    print(f"fold-in: {len(new)} users left out of training ({int(is_new.sum()):,} u1.base ratings), "
          f"scored on their {len(held):,} u1.test ratings (RMSE)")
    print(f"  not folded in (unknown-user fallback)        {score(rest):.4f}")
    for label, part in (("all their u1.base ratings", given),
                        ("their first 5 u1.base ratings", given.groupby("user").head(5))):
        both = pd.concat([old, part])
        refit = mfcore.Model().fit(both["user"], both["item"], both["rating"])
        print(f"  with {label}:")
        print(f"    full refit                                 {score(refit):.4f}")
        for shrinkage in (50.0, 10.0, 0.0):
            model = copy.deepcopy(rest)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnknownIdWarning)  # items absent from `old`
                model.fold_in(part["user"], part["item"], part["rating"], shrinkage=shrinkage)
            seconds = time.perf_counter() - start
            print(f"    fold_in(shrinkage={shrinkage:4g})                   {score(model):.4f}"
                  f"   ({seconds * 1e3:.0f} ms for {len(new)} users, {len(part):,} ratings)")


def main(argv):
    what = argv[1] if len(argv) > 1 else "all"
    rounds = int(argv[2]) if len(argv) > 2 else 3
    print(f"mfcore {mfcore.__version__}, OpenMP {mfcore.openmp_enabled()}, "
          f"{os.cpu_count()} CPUs")
    if what in ("speed", "all"):
        speed(rounds)
    if what in ("quality", "all"):
        quality()


if __name__ == "__main__":
    main(sys.argv)
