"""Batch prediction, RMSE evaluation, id mapping and memory, on ML-1M-shaped data."""
import os
import time
import tracemalloc

import numpy as np

import mfcore
from mfcore.estimators.sgd import SGDTrainer
from _common import HYPER, record
from _data import load


def _best_of(fn, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def test_predict_and_evaluate_throughput(benchmark):
    train, test = load("ml-1m")
    model = mfcore.Model(k=64, epochs=1, n_threads=2, reg_bias=HYPER["reg"], **HYPER).fit(*train)
    users = np.tile(train[0], 2)[:2_000_000]
    items = np.tile(train[1], 2)[:2_000_000]
    ratings = np.tile(train[2], 2)[:2_000_000]
    from mfcore._kernels import predict as _kernels
    u, i = model.user_map_.lookup(users, "users"), model.item_map_.lookup(items, "items")
    out = np.empty(len(u), np.float32)
    params = (model.user_factors_, model.item_factors_, model.user_bias_, model.item_bias_,
              model.global_mean_, 1.0, 5.0, out)
    for threads in (1, 2):
        t = _best_of(lambda: _kernels.predict(u, i, *params, threads))
        record(None, table="other", what=f"predict kernel, 2M pairs, k=64, {threads} thread(s)",
               value=f"{len(u) / t / 1e6:.1f} M predictions/s")
        t = _best_of(lambda: _kernels.squared_error(u, i, ratings, *params[:-1], threads))
        record(None, table="other", what=f"squared-error kernel, 2M ratings, {threads} thread(s)",
               value=f"{len(u) / t / 1e6:.1f} M ratings/s")
        model.n_threads = threads
        t = _best_of(lambda: model.predict(users, items))
        record(None, table="other", what=f"Model.predict (raw ids), 2M pairs, {threads} thread(s)",
               value=f"{len(users) / t / 1e6:.1f} M predictions/s")
        t = _best_of(lambda: model.evaluate(users, items, ratings))
        record(None, table="other", what=f"Model.evaluate (raw ids), 2M ratings, {threads} thread(s)",
               value=f"{len(users) / t / 1e6:.1f} M ratings/s")
    benchmark.pedantic(lambda: model.predict(users, items), rounds=3, iterations=1)


def test_id_mapping_of_a_million_raw_ids(benchmark):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 10**12, 1_000_000)
    start = time.perf_counter()
    id_map, _ = mfcore.IdMap.fit(raw, "users")
    fit_seconds = time.perf_counter() - start
    lookup = _best_of(lambda: id_map.lookup(raw, "users"), repeat=3)
    strings = raw.astype(str)
    start = time.perf_counter()
    mfcore.IdMap.fit(strings, "users")
    string_seconds = time.perf_counter() - start
    record(None, table="other", what="IdMap.fit, 1M raw int64 ids (build + map)",
           value=f"{fit_seconds:.3f} s")
    record(None, table="other", what="IdMap.lookup, 1M raw int64 ids", value=f"{lookup:.3f} s")
    record(None, table="other", what="IdMap.fit, 1M raw string ids", value=f"{string_seconds:.3f} s")
    benchmark.pedantic(lambda: id_map.lookup(raw, "users"), rounds=3, iterations=1)


def test_memory_per_rating(benchmark, tmp_path):
    train, _ = load("ml-1m")
    n = len(train[2])
    trainer = SGDTrainer(*train, n_threads=2)
    record(None, table="other", what="SGDTrainer (records + offsets + scratch), bytes/rating",
           value=f"{trainer.nbytes / n:.2f} (float32; float64 records take 16)")
    tracemalloc.start()
    model = mfcore.Model(k=32, epochs=2, n_threads=2, reg_bias=HYPER["reg"], **HYPER).fit(*train)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    params = sum(a.nbytes for a in (model.user_factors_, model.item_factors_,
                                    model.user_bias_, model.item_bias_))
    record(None, table="other", what="Model.fit peak traced allocation, bytes/rating (k=32)",
           value=f"{peak / n:.1f} (id maps, duplicate check; parameters {params / n:.2f}; "
                 "input not counted)")
    record(None, table="other", what="held during the epochs, bytes/rating",
           value=f"{trainer.nbytes / n + 12:.1f} (trainer records + Model's int32/int32/float32 "
                 f"copies) + parameters {params / n:.2f}")
    path = tmp_path / "m.mfz"
    model.save(path)
    size = os.path.getsize(path)
    record(None, table="other", what="saved model (k=32, ML-1M shape)",
           value=f"{size / 1e6:.2f} MB = {size / n:.2f} bytes/rating, "
                 f"{size / (len(model.user_factors_) + len(model.item_factors_)):.0f} bytes/row")
    benchmark.pedantic(lambda: SGDTrainer(*train, n_threads=2), rounds=1, iterations=1)
