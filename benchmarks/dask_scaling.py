"""ALS on a Dask cluster against the local fit and Spark's ALS: time per iteration, bytes, RMSE.

Run (from the repository root, the Spark part in a venv that has pyspark):

    OMP_WAIT_POLICY=passive python benchmarks/dask_scaling.py --shape ml-10m \\
        --spark-python /work/benchvenv/bin/python --json dask_ml10m.json

On synthetic data of the shape asked (``mfcore.datasets.synthetic``, 90/10 random
split, seed 0), with the same k and iteration count for everyone:

* mfcore local: ``ALS(n_threads=2).fit`` in this process;
* mfcore Dask, 1 worker x 2 threads and 2 workers x 1 thread
  (``LocalCluster(processes=True)``): ``mfcore.dask.fit`` on the training part as a
  Dask DataFrame of 8 partitions persisted on the workers first; per iteration the
  whole iteration's seconds, the slowest shard's kernel seconds (``shard_seconds``:
  the two half-iterations added) and the bytes of factors sent and received
  (``exchanged_bytes``); also the set-up seconds (scan, id maps, routing, shards)
  and whether the fitted arrays equal the local fit's bit for bit;
* Spark ALS (``pyspark``, ``local[2]``, rank k, regParam = mfcore's reg, Spark's
  ALS-WR scaling like mfcore's ``count_weighted``, no biases): seconds per
  iteration from two fits, ``(t(1 + n) - t(1)) / n``, and the held-out RMSE of the
  longer one (clipped to the training range like mfcore's).

Seconds are medians over the iterations; the local fit runs again after the
Dask rows (the "(again)" row) to show how the machine's load drifted; on a shared
machine compare the ratios within one run. The script ends with the 16-worker model of a 1-billion-rating
job computed from the measured per-shard compute rate and the exchange sizes.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

SPARK = r'''
import json, sys, time
from pyspark.sql import SparkSession
from pyspark.ml.recommendation import ALS
from pyspark.sql import functions as F
train_path, test_path, k, iters, reg, lo, hi = sys.argv[1:8]
k, iters, reg, lo, hi = int(k), int(iters), float(reg), float(lo), float(hi)
spark = (SparkSession.builder.master("local[2]").config("spark.driver.memory", "8g")
         .config("spark.sql.shuffle.partitions", "4").config("spark.ui.enabled", "false")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
train = spark.read.parquet(train_path).cache()
test = spark.read.parquet(test_path).cache()
train.count(); test.count()
times = {}
for n in (1, 1 + iters):
    als = ALS(rank=k, maxIter=n, regParam=reg, userCol="user", itemCol="item",
              ratingCol="rating", coldStartStrategy="nan", seed=0, numUserBlocks=2,
              numItemBlocks=2)
    start = time.perf_counter()
    model = als.fit(train)
    model.userFactors.count(); model.itemFactors.count()
    times[n] = time.perf_counter() - start
pred = model.transform(test).withColumn(
    "p", F.when(F.isnan("prediction"), F.lit(None)).otherwise(
        F.least(F.greatest("prediction", F.lit(lo)), F.lit(hi))))
mean = train.agg(F.avg("rating")).first()[0]
rmse = pred.select(F.sqrt(F.avg((F.coalesce("p", F.lit(mean)) - F.col("rating")) ** 2))).first()[0]
print(json.dumps({"per_iteration": (times[1 + iters] - times[1]) / iters,
                  "fit_1": times[1], "fit_n": times[1 + iters], "rmse": rmse}))
'''


def med(history, key):
    return statistics.median(h[key] for h in history)


def estimator(algorithm, k, iterations, **extra):
    """The estimator of one benchmark row (BayesianMF: 2 burn-in sweeps, then samples)."""
    import mfcore
    if algorithm == "als":
        return mfcore.ALS(k=k, iterations=iterations, **extra)
    if algorithm == "sgd":
        return mfcore.Model(k=k, epochs=iterations, **extra)
    return mfcore.BayesianMF(k=k, burn_in=2, n_samples=max(iterations - 2, 1), **extra)


def run_local(algorithm, train, test, k, iterations):
    model = estimator(algorithm, k, iterations, n_threads=2)
    start = time.perf_counter()
    model.fit(train.user, train.item, train.rating)
    return model, {"impl": f"mfcore {algorithm} local", "layout": "1 process x 2 threads",
                   "total": time.perf_counter() - start,
                   "per_iteration": med(model.history_, "seconds"),
                   "rmse": model.evaluate(test.user, test.item, test.rating)["rmse"]}


def run_dask(algorithm, train, test, k, iterations, n_workers, threads, local):
    import numpy as np
    import dask.dataframe as dd
    from distributed import Client, LocalCluster, wait

    import mfcore.dask
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                      dashboard_address=":0", memory_limit=0) as cluster, Client(cluster) as client:
        ddf = dd.from_pandas(train, npartitions=8, sort=False).persist()
        wait(ddf)
        model = estimator(algorithm, k, iterations)
        start = time.perf_counter()
        mfcore.dask.fit(model, ddf, client=client)
        total = time.perf_counter() - start
    same = all(np.array_equal(a, b) for a, b in zip(model._parameters(), local._parameters()))
    loop = sum(h["seconds"] for h in model.history_)
    return {"impl": f"mfcore {algorithm} dask",
            "layout": f"{n_workers} worker(s) x {threads} thread(s)",
            "total": total, "setup": total - loop, "per_iteration": med(model.history_, "seconds"),
            "shard_seconds": med(model.history_, "shard_seconds"),
            "exchanged_bytes": med(model.history_, "exchanged_bytes"),
            "rmse": model.evaluate(test.user, test.item, test.rating)["rmse"],
            "bit_identical": same, "n_workers": n_workers}


def run_spark(python, train, test, k, iterations, reg):
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, f"{name}.parquet") for name in ("train", "test")]
        for frame, path in zip((train, test), paths):
            frame.astype({"user": "int32", "item": "int32", "rating": "float32"}).to_parquet(path)
        lo, hi = float(train.rating.min()), float(train.rating.max())
        out = subprocess.run([python, "-c", SPARK, *paths, str(k), str(iterations), str(reg),
                              str(lo), str(hi)], capture_output=True, text=True, check=False)
    if out.returncode:
        print(out.stderr[-3000:], file=sys.stderr)
        raise SystemExit("the Spark run failed")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"impl": "Spark ALS (no biases)", "layout": "local[2]",
            "total": result["fit_n"], "per_iteration": result["per_iteration"],
            "rmse": result["rmse"]}


def model_16(rows, n_ratings, n_users, n_items, k):
    """A 1-billion-rating ALS job on 16 workers from the measured figures (printed lines)."""
    two = next(r for r in rows if r.get("n_workers") == 2 and "als" in r["impl"])
    # per-shard kernel time per rating at one thread (each 2x1 shard holds half the ratings)
    rate = two["shard_seconds"] / (n_ratings / 2)
    rows_per_rating = (n_users + n_items) / n_ratings
    N, W, T = 1e9, 16, 8
    users, items = 25e6, 0.5e6  # a Netflix-like shape of a billion ratings
    compute = rate * (N / W) / T
    side_bytes = (users + items) * (k + 1) * 4
    hub = (W + 1) * side_bytes          # this design: the client sends W copies, gets 1
    ring = 2 * side_bytes * (W - 1) / W  # a worker-to-worker allgather, per worker link
    lines = [
        f"measured: {rate * 1e9:.1f} ns of shard kernel per rating per half-iteration pair "
        f"(1 thread, k={k}; {rows_per_rating:.4f} rows per rating here)",
        f"1e9 ratings, {users / 1e6:.0f}M users, {items / 1e6:.1f}M items, k={k}, "
        f"16 workers x {T} threads:",
        f"  compute per iteration ~ {compute:.1f} s if the kernel scales with threads",
        f"  hub exchange (this design) = (W + 1) x (users + items) x (k + 1) x 4 B = "
        f"{hub / 1e9:.1f} GB per iteration through the client: {hub / 1.25e9:.0f} s at "
        f"10 Gbit/s",
        f"  a worker-to-worker allgather would move {ring / 1e9:.1f} GB per worker link "
        f"({ring / 1.25e9:.1f} s at 10 Gbit/s)",
        f"  the client also holds both factor sides ({side_bytes / 1e9:.1f} GB) and "
        f"the seen-items CSR (4 B a rating: {4 * N / 1e9:.0f} GB)",
    ]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="ml-10m")
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--algorithms", default="als",
                        help="comma-separated: als, sgd, bayes (Spark runs beside als)")
    parser.add_argument("--bayes-k", type=int, default=10, help="k of the BayesianMF rows")
    parser.add_argument("--spark-python", default=None,
                        help="a Python with pyspark (skip Spark without it)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import numpy as np
    import mfcore
    df = mfcore.datasets.synthetic(args.shape, seed=0)
    held = np.random.default_rng(0).random(len(df)) < 0.1
    train, test = df[~held].reset_index(drop=True), df[held].reset_index(drop=True)
    n_users, n_items = int(train.user.nunique()), int(train.item.nunique())
    print(f"{args.shape}: {len(train):,} training ratings, {n_users:,} users, {n_items:,} items, "
          f"k={args.k}, {args.iterations} iterations; {mfcore.__version__}, "
          f"{os.cpu_count()} CPUs", flush=True)
    rows, bases = [], {}
    for algorithm in args.algorithms.split(","):
        k = args.bayes_k if algorithm == "bayes" else args.k
        local, row = run_local(algorithm, train, test, k, args.iterations)
        rows.append(row)
        bases[id(row)] = row["per_iteration"]
        print(rows[-1], flush=True)
        for n_workers, threads in ((1, 2), (2, 1)):
            rows.append(run_dask(algorithm, train, test, k, args.iterations, n_workers,
                                 threads, local))
            bases[id(rows[-1])] = row["per_iteration"]
            print(rows[-1], flush=True)
        _, again = run_local(algorithm, train, test, k, args.iterations)  # load drifts
        again["impl"] += " (again)"
        rows.append(again)
        bases[id(again)] = row["per_iteration"]
        print(rows[-1], flush=True)
        if algorithm == "als" and args.spark_python:
            rows.append(run_spark(args.spark_python, train, test, args.k, args.iterations,
                                  mfcore.ALS().reg))
            bases[id(rows[-1])] = row["per_iteration"]
            print(rows[-1], flush=True)

    print("\n| implementation | layout | s / iteration | vs local | shard kernel s | "
          "MB exchanged / iteration | set-up s | held-out RMSE | = local |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        base = bases[id(r)]
        print(f"| {r['impl']} | {r['layout']} | {r['per_iteration']:.2f} | "
              f"{r['per_iteration'] / base:.2f}x | "
              f"{r['shard_seconds']:.2f} | " if "shard_seconds" in r else
              f"| {r['impl']} | {r['layout']} | {r['per_iteration']:.2f} | "
              f"{r['per_iteration'] / base:.2f}x | - | ", end="")
        print(f"{r['exchanged_bytes'] / 1e6:.1f} | {r['setup']:.1f} | " if "setup" in r
              else "- | - | ", end="")
        print(f"{r['rmse']:.4f} | {r.get('bit_identical', '-')} |")
    print()
    if any("als dask" in r["impl"] for r in rows):
        for line in model_16(rows, len(train), n_users, n_items, args.k):
            print(line)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"shape": args.shape, "k": args.k, "iterations": args.iterations,
                       "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
