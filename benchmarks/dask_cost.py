"""What an iteration of ``mfcore.dask.fit`` costs against the local fit's, with the machine's
contention taken out, and the bytes each process sends.

Run (from the repository root, after an in-place build):

    OMP_WAIT_POLICY=passive PYTHONPATH=. python benchmarks/dask_cost.py --shape ml-10m \\
        --algorithms als,bayes,sgd --layouts 1x2,2x1 --iterations 8

For each solver and layout (W workers x T threads, ``LocalCluster(processes=True)``, no
memory limit) on synthetic data of the shape asked (``mfcore.datasets.synthetic``, seed 0;
the Dask DataFrame of 8 partitions persisted on the workers first):

* the local fit (``n_threads = W x T``) runs in a child process and the Dask fit in this
  one, their iterations **strictly alternating** (Dask 1, local 1, Dask 2, local 2 ...:
  each waits for the other's to end), so both see the same load;
* per iteration, the step's wall seconds, the CPU-seconds of every process (local: the
  child; Dask: client + scheduler + workers, read with ``time.process_time`` in each), and
  the **bytes every Dask process wrote** on its comms (``distributed.comm.tcp.TCP.write``
  counted in the client, the scheduler and each worker; the readings' own messages,
  measured between two readings with nothing between them, are subtracted);
* medians over iterations 2..n, the median of the pairwise Dask/local ratios, and whether
  the fitted arrays equal the local fit's bit for bit.

The wall time of a step excludes what the driver does around it (the finiteness check,
validation, the history), the same for both. The client's actor calls go through the
scheduler (a default ``Client``): with worker-to-worker exchange that is W small calls per
iteration.

A written model for a bigger job (printed at the end, from the measured figures): N ratings,
m users, n items, k factors, W workers of T threads, link B bytes/s full duplex; per
iteration

* compute: the workers' CPU-seconds per rating measured here (client and scheduler
  excluded: their CPU is Dask's own bookkeeping, about constant per wall second), times N,
  over W T threads;
* ALS, worker to worker: each worker sends its band of each side to the W - 1 others and
  receives theirs: ``(W - 1) / W x S`` bytes in and out, ``S = (m + n)(k + 1) 4``; the
  client and scheduler carry W calls of scalars;
* ALS through the client (before): ``(W + 1) S`` through the client, twice through the
  scheduler's event loop.

The model neglects what the measurement shows to be small here (the calls' latency, the
per-row solve's share at another users-per-rating ratio) and adds compute and exchange
(no overlap): an upper bound if the links are as fast as stated.
"""
import argparse
import multiprocessing
import os
import statistics
import time

from dask_scaling import estimator  # the rows' estimators, as the scaling benchmark builds them

os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def count_writes():
    """Count the bytes this process writes on Dask TCP comms (installed in every process)."""
    import distributed.comm.tcp as tcp
    if not hasattr(tcp, "mf_written"):
        tcp.mf_written = [0]
        write = tcp.TCP.write

        async def counted(self, msg, serializers=None, on_error="message"):
            n = await write(self, msg, serializers, on_error)
            tcp.mf_written[0] += n
            return n
        tcp.TCP.write = counted


def reading():
    """(CPU-seconds, bytes written) of this process so far."""
    import distributed.comm.tcp as tcp
    return time.process_time(), getattr(tcp, "mf_written", [0])[0]


def trainer_classes(algorithm):
    """(the local trainer class, the Dask trainer class) of ``algorithm``."""
    import mfcore.dask
    from mfcore.estimators import als, bayes, sgd
    local = {"als": als.ALSIterations, "sgd": sgd.SGDEpochs, "bayes": bayes.GibbsSweeps}
    return local[algorithm], mfcore.dask._TRAINERS[algorithm]


def local_child(conn, shape, algorithm, k, iterations, threads):
    """The local fit, one iteration each time the parent says so; returns its arrays."""
    from mfcore import datasets
    ratings = datasets.synthetic(shape, seed=0)
    trainer, _ = trainer_classes(algorithm)
    step = trainer.step

    def turn(self, epoch):
        conn.recv()
        cpu, start = time.process_time(), time.perf_counter()
        info = step(self, epoch)
        conn.send({"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu})
        return info
    trainer.step = turn
    model = estimator(algorithm, k, iterations, n_threads=threads)
    model.fit(ratings.user, ratings.item, ratings.rating)
    conn.send([a for a in model._parameters()])


def everyone(client):
    """Readings of the client, the scheduler and each worker."""
    return [reading(), client.run_on_scheduler(reading), *client.run(reading).values()]


def difference(after, before, baseline):
    return [(a[0] - b[0] - c[0], a[1] - b[1] - c[1]) for a, b, c in zip(after, before, baseline)]


def run(shape, algorithm, n_workers, threads, k, iterations):
    import dask.dataframe as dd
    import numpy as np
    from distributed import Client, LocalCluster, wait

    import mfcore.dask
    from mfcore import datasets

    ratings = datasets.synthetic(shape, seed=0)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    worker = ctx.Process(target=local_child, daemon=True,
                         args=(child, shape, algorithm, k, iterations, n_workers * threads))
    rows = []
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                      dashboard_address=None, memory_limit=0) as cluster, Client(cluster) as client:
        count_writes()
        client.run_on_scheduler(count_writes)
        client.run(count_writes)
        ddf = dd.from_pandas(ratings, npartitions=8, sort=False).persist()
        wait(ddf)
        first = everyone(client)
        baseline = difference(everyone(client), first, [(0, 0)] * len(first))
        worker.start()
        _, trainer = trainer_classes(algorithm)
        step = trainer.step

        def turn(self, epoch):
            before, start = everyone(client), time.perf_counter()
            info = step(self, epoch)
            wall = time.perf_counter() - start
            used = difference(everyone(client), before, baseline)
            parent.send("go")
            rows.append({"dask_wall": wall, "dask_cpu": sum(c for c, _ in used),
                         "cpu": [c for c, _ in used], "bytes": [b for _, b in used],
                         "local": parent.recv()})
            return info
        trainer.step = turn
        try:
            model = mfcore.dask.fit(estimator(algorithm, k, iterations), ddf, client=client)
        finally:
            trainer.step = step
        local = parent.recv()
        worker.join()
    same = all(np.array_equal(a, b) for a, b in zip(model._parameters(), local))
    return summary(rows[1:], same, len(ratings), n_workers)


def summary(rows, same, n_ratings, n_workers):
    def med(values):
        return statistics.median(values)
    return {"local_wall": med(r["local"]["wall"] for r in rows),
            "dask_wall": med(r["dask_wall"] for r in rows),
            "wall_ratio": med(r["dask_wall"] / r["local"]["wall"] for r in rows),
            "local_cpu": med(r["local"]["cpu"] for r in rows),
            "dask_cpu": med(r["dask_cpu"] for r in rows),
            "cpu_ratio": med(r["dask_cpu"] / r["local"]["cpu"] for r in rows),
            "client_cpu": med(r["cpu"][0] for r in rows),
            "scheduler_cpu": med(r["cpu"][1] for r in rows),
            "worker_cpu": med(sum(r["cpu"][2:]) for r in rows),
            "client_bytes": med(r["bytes"][0] for r in rows),
            "scheduler_bytes": med(r["bytes"][1] for r in rows),
            "worker_bytes": med(sum(r["bytes"][2:]) for r in rows),
            "worker_cpu_per_rating": med(sum(r["cpu"][2:]) for r in rows) / n_ratings,
            "same": same, "n_workers": n_workers}


def model_1e9(als_row, n_ratings=1e9, m=25e6, n=0.5e6, k=32, workers=16, threads=8,
              link=1.25e9):
    """Seconds per ALS iteration of a big job from a measured row (see the docstring)."""
    compute = als_row["worker_cpu_per_rating"] * n_ratings / (workers * threads)
    side_bytes = (m + n) * (k + 1) * 4
    allgather = (workers - 1) / workers * side_bytes / link
    hub = (workers + 1) * side_bytes / link
    return compute, allgather, hub


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="ml-1m")
    parser.add_argument("--algorithms", default="als,bayes,sgd")
    parser.add_argument("--layouts", default="1x2,2x1", help="WxT: workers x threads, comma-separated")
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=8)
    args = parser.parse_args()
    print(f"shape {args.shape}, k {args.k}, {args.iterations} iterations; load {os.getloadavg()}")
    print("| solver | layout | local s/iter | Dask s/iter | wall ratio | local CPU-s | Dask CPU-s "
          "client / scheduler / workers | CPU ratio (workers only) | bytes/iter client / scheduler / "
          "workers | = local |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    als_rows = []
    for algorithm in args.algorithms.split(","):
        for layout in args.layouts.split(","):
            w, t = (int(x) for x in layout.split("x"))
            r = run(args.shape, algorithm, w, t, args.k, args.iterations)
            if algorithm == "als":
                als_rows.append(r)
            print(f"| {algorithm} | {layout} | {r['local_wall']:.3f} | {r['dask_wall']:.3f} | "
                  f"{r['wall_ratio']:.2f}x | {r['local_cpu']:.2f} | {r['client_cpu']:.2f} / "
                  f"{r['scheduler_cpu']:.2f} / {r['worker_cpu']:.2f} | {r['cpu_ratio']:.2f}x "
                  f"({r['worker_cpu'] / r['local_cpu']:.2f}x) | "
                  f"{r['client_bytes']:,.0f} / {r['scheduler_bytes']:,.0f} "
                  f"/ {r['worker_bytes']:,.0f} | {'yes' if r['same'] else 'NO'} |", flush=True)
    print(f"load after: {os.getloadavg()}")
    for r in als_rows:
        compute, allgather, hub = model_1e9(r)
        print(f"ALS at 1e9 ratings, 25e6 x 0.5e6, k 32, 16 workers x 8 threads, 10 Gbit/s, from the "
              f"{r['n_workers']}-worker row: compute {compute:.1f} s + allgather {allgather:.1f} s = "
              f"{compute + allgather:.1f} s an iteration (through the client: {compute + hub:.1f} s)")


if __name__ == "__main__":
    main()
