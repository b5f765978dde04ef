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
machine compare the ratios within one run. The script ends with the written model of a
1-billion-rating job on 16 workers (``dask_cost.model_1e9``, the one model; see its docstring)
from each solver's measured shard kernel seconds per rating.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from dask_cost import estimator, exchange_cost, model_line  # rows' estimators; the model

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
            "bit_identical": same, "n_workers": n_workers, "threads": threads,
            "algorithm": algorithm, "n_ratings": len(train), "k": k}


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


def model_lines(rows, handling):
    """The written model of a 1e9-rating job (``dask_cost.model_1e9``) from each Dask row:
    the shard kernel's CPU-seconds per rating (its slowest shard's kernel seconds times the
    threads of all shards, over the ratings; Dask's own work on the workers left out; the
    model's k is 32, so a row measured at another k says so); ``handling``: the workers'
    CPU-seconds per byte exchanged (``dask_cost.exchange_cost``)."""
    return [model_line(r["algorithm"], r["shard_seconds"] * r["n_workers"] * r["threads"]
                       / r["n_ratings"], f"shard kernel seconds at {r['layout']}, k {r['k']}", handling)
            for r in rows if "shard_seconds" in r]


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
    if any("shard_seconds" in r for r in rows):
        for line in model_lines(rows, exchange_cost()):
            print(line)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"shape": args.shape, "k": args.k, "iterations": args.iterations,
                       "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
