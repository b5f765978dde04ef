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

DSGD's Dask trainer sends each epoch's call before the last epoch's results are back (the
shard starts it as soon as the last one ends), so its epochs overlap and cannot alternate
one by one: for it (``SENDS_AHEAD``) whole fits alternate (``--fits``, default 5: Dask,
local, Dask ...), each timed from its first epoch's start to its last one's end and read in
every process at those two points; the figures are per epoch, medians over the fits.
A ``LocalCluster``'s scheduler runs in the client's process, so the client column holds both
(``everyone``).

An iteration is timed as the driver runs it (``iteration``: the trainer's step, the
finiteness check of the model's arrays, the penalty), without validation and the history,
the same for both: the local penalty and check run on the client, a shard computes its
bands' penalty and finiteness in its step. The client's actor calls go through the
scheduler (a default ``Client``): with worker-to-worker exchange that is W small calls per
iteration.

A written model for a bigger job (``model_1e9``, printed at the end from the measured figures;
``dask_scaling.py`` prints the same): N ratings, m users, n items, k factors, W workers of T
threads, links of B bytes/s each way; per iteration, from what the code exchanges
(``exchanged``, checked here against the bytes each worker wrote at the layouts run):

* compute: the workers' CPU-seconds per rating measured here (client and scheduler
  excluded: their CPU is Dask's own bookkeeping, about constant per wall second), times N,
  over the threads that can work at once (W T; DSGD: W min(T, g / W), one block per user
  group and round);
* ALS: each half, every worker sends its solved band (factors and biases in the model's
  dtype, b bytes) to the W - 1 others: ``(W - 1) / W (m + n)(k + 1) b`` out and as much in;
* BayesianMF: the same for both sides in float64 (the chain's state), plus each half the
  residual (8 bytes) of every rating whose user band and item band differ, one way:
  ``2 x 8 x cross / W`` (``cross``: ``(W - 1) / W N`` when bands are independent);
* DSGD: at each of an epoch's g round changes an item group moves to another worker with
  probability ``1 - (g / W - 1) / (g - 1)``: ``g x that x n (k + 1) b / W`` per worker;
  and every row's penalty term (``8 (m + n)`` bytes, plus the held groups' numbers) crosses
  the client's link after every epoch: the client weighs them as the local trainer does,
  so the history's penalty is the local one bit for bit (a sum of the shards' sums would
  round differently); the model itself only at the end;
* the client and the scheduler carry W calls of scalars (ALS, BayesianMF; with validation
  data or a callback, the model too); each synchronous exchange step
  (ALS 2, BayesianMF 5, DSGD g) adds a round trip (``LATENCY``).

The model adds compute, the exchange and latency (the code overlaps none of them, except
DSGD's client part: an epoch's call goes out while the one before runs, and its penalty
terms travel back while the next one runs, so a DSGD epoch takes the longer of its rounds,
compute + peers + latency, and the client part); the exchange takes the longer of its
bytes over the link and the workers' CPU for them (serializing, sending, receiving and
copying into the model: ``exchange_cost`` measures it per byte between 2 workers, about
1-2 ns here, so Dask's comms, not a 10 Gbit/s link, set the pace). An upper bound if the
links are as fast as stated. Compute grows with the rows per rating as well as the ratings
(each row solves or draws a (k + 1)-system): measure it on
``--shape netflix-1m`` (25,000 users, 500 items, 1M ratings), the job's proportions, or
``netflix-10m`` (ten times as many users and items: a shard's user rows no longer fit in
the cache, as at 1e9). DSGD's model is printed for the job's default block grid
(``choose_grid``) and for a grid of 64 beside it: its peers' bytes and latency grow with
the grid, its compute shrinks until every thread has a block.
"""
import argparse
import multiprocessing
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

#: Shapes beyond ``mfcore.datasets.synthetic``'s presets: the written model's job scaled
#: down 1000 times (the same ratings per user and per item)
SHAPES = {"netflix-1m": {"n_users": 25_000, "n_items": 500, "n_ratings": 1_000_000},
          "netflix-10m": {"n_users": 250_000, "n_items": 5_000, "n_ratings": 10_000_000}}

#: The job of the written model: a Netflix-like billion ratings, 16 workers x 8 threads,
#: 10 Gbit/s links (1.25 GB/s each way)
BIG = {"n_ratings": 1e9, "users": 25e6, "items": 0.5e6, "k": 32, "workers": 16, "threads": 8,
       "link": 1.25e9}

#: Solvers whose Dask trainer sends an iteration's call before the last one's results are in
#: (``mfcore.dask.sgd.SGDEpochs.step``): a Dask iteration overlaps the next, so whole fits
#: alternate, not iterations
SENDS_AHEAD = {"sgd"}

#: Seconds a synchronous exchange step costs beyond its bytes: an empty actor call worker to
#: worker measured 2.0 ms here (../shared/reports/dask-2026-12-07.md, b5)
LATENCY = 2e-3


def estimator(algorithm, k, iterations, **extra):
    """The estimator of one benchmark row (BayesianMF: 2 burn-in sweeps, then samples)."""
    import mfcore
    if algorithm == "als":
        return mfcore.ALS(k=k, iterations=iterations, **extra)
    if algorithm == "sgd":
        return mfcore.Model(k=k, epochs=iterations, **extra)
    return mfcore.BayesianMF(k=k, burn_in=2, n_samples=max(iterations - 2, 1), **extra)


def synthetic(shape):
    """The benchmark's ratings of ``shape`` (a preset of ``datasets.synthetic`` or ``SHAPES``)."""
    from mfcore import datasets
    if shape in SHAPES:
        return datasets.synthetic(**SHAPES[shape], seed=0)
    return datasets.synthetic(shape, seed=0)


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


def iteration(trainer, step, epoch):
    """One iteration as the driver runs it, without validation and history: ``step``, the
    finiteness check (``Trainer.finite``: the local model's arrays, the Dask shards' flags)
    and the penalty (``driver.run`` does both again, untimed)."""
    info = step(trainer, epoch)
    trainer.finite(info["sse"])
    trainer.penalty()
    return info


def local_child(conn, shape, algorithm, k, iterations, threads, fits):
    """The local fit, one iteration each time the parent says so; or, with ``fits``, that
    many fits, a whole one each time the parent says so (``per_iteration``). Returns the
    arrays of its last fit."""
    ratings = synthetic(shape)
    trainer, _ = trainer_classes(algorithm)
    step = trainer.step

    def turn(self, epoch):
        conn.recv()
        cpu, start = time.process_time(), time.perf_counter()
        info = iteration(self, step, epoch)
        conn.send({"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu})
        return info
    for _ in range(fits or 1):
        span = {}
        if fits:
            conn.recv()
            trainer.step = spanned(step, iterations, lambda: (time.perf_counter(),
                                                              time.process_time()), span)
        else:
            trainer.step = turn
        model = estimator(algorithm, k, iterations, n_threads=threads)
        model.fit(ratings.user, ratings.item, ratings.rating)
        if fits:
            conn.send({"wall": per_iteration(span, 0, iterations),
                       "cpu": per_iteration(span, 1, iterations)})
    conn.send([a for a in model._parameters()])


def spanned(step, last, read, span):
    """``step`` that records ``read()`` in ``span`` before iteration 1 and after iteration
    ``last``: the span of a whole fit's iterations."""
    def timed(self, epoch):
        if epoch == 1:
            span["before"] = read()
        info = step(self, epoch)
        if epoch == last:
            span["after"] = read()
        return info
    return timed


def per_iteration(span, field, iterations):
    """A reading's change over a fit's ``span`` (``spanned``), per iteration."""
    return (span["after"][field] - span["before"][field]) / iterations


def everyone(client):
    """Readings of the client, the scheduler and each worker. A ``LocalCluster``'s scheduler
    runs in the client's process: its CPU and bytes are the client's reading, counted once
    (the scheduler's column reads 0)."""
    scheduler = client.run_on_scheduler(_reading_of, os.getpid())
    return [reading(), scheduler, *client.run(reading).values()]


def _reading_of(client_pid):
    """``reading()`` of a process other than the client's, else nothing (see ``everyone``)."""
    return reading() if os.getpid() != client_pid else (0.0, 0)


def difference(after, before, baseline):
    return [(a[0] - b[0] - c[0], a[1] - b[1] - c[1]) for a, b, c in zip(after, before, baseline)]


def run(shape, algorithm, n_workers, threads, k, iterations, fits):
    """One row: the Dask fit in this process against the local fit in a child, iterations
    alternating; with ``fits``, that many whole fits alternating (Dask, local, Dask ...),
    each timed from its first iteration's start to its last one's end."""
    import dask.dataframe as dd
    import numpy as np
    from distributed import Client, LocalCluster, wait

    import mfcore.dask

    ratings = synthetic(shape)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    worker = ctx.Process(target=local_child, daemon=True,
                         args=(child, shape, algorithm, k, iterations, n_workers * threads, fits))
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

        def measured(wall, before, after, n):
            used = difference(after, before, baseline)
            parent.send("go")
            rows.append({"dask_wall": wall / n, "dask_cpu": sum(c for c, _ in used) / n,
                         "cpu": [c / n for c, _ in used], "bytes": [b / n for _, b in used],
                         "local": parent.recv()})

        def turn(self, epoch):
            before, start = everyone(client), time.perf_counter()
            info = iteration(self, step, epoch)
            measured(time.perf_counter() - start, before, everyone(client), 1)
            return info
        try:
            for _ in range(fits or 1):
                span = {}
                trainer.step = spanned(step, iterations, lambda: (time.perf_counter(),
                                                                  everyone(client)), span)
                if not fits:
                    trainer.step = turn
                model = mfcore.dask.fit(estimator(algorithm, k, iterations), ddf, client=client)
                if fits:
                    measured(span["after"][0] - span["before"][0], span["before"][1],
                             span["after"][1], iterations)
        finally:
            trainer.step = step
        local = parent.recv()
        worker.join()
    same = all(np.array_equal(a, b) for a, b in zip(model._parameters(), local))
    out = summary(rows if fits else rows[1:], same, len(ratings), n_workers)
    out["predicted_bytes"] = predicted_bytes(ratings, algorithm, n_workers, k)
    return out


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


def exchange_cost(megabytes=64, repeats=3):
    """The workers' CPU-seconds per byte of a worker-to-worker exchange (``Shard.allgather``
    between 2 workers of 1 thread, ``megabytes`` each way, each copied into a model-sized
    array as the shards do), the least of ``repeats`` runs (contention only adds)."""
    from distributed import Client, LocalCluster

    bounce = _bounce_class()  # (a class made here travels by value: workers lack this file)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit=0) as cluster, Client(cluster) as client:
        addresses = sorted(client.scheduler_info()["workers"])
        futures = [client.submit(bounce, b, workers=[a], actor=True)
                   for b, a in enumerate(addresses)]
        shards = [f.result() for f in futures]
        for shard in shards:
            shard.connect(addresses, [f.key for f in futures]).result()
        costs = []
        for r in range(repeats):
            calls = [shard.bounce(r, int(megabytes * 1e6)) for shard in shards]
            costs.append(sum(c.result() for c in calls) / (2 * megabytes * 1e6))
    return min(costs)


def _bounce_class():
    """A bare ``Shard`` whose ``bounce`` allgathers a payload and returns the
    process's CPU-seconds for it (``exchange_cost``)."""
    import threading

    import numpy as np

    from mfcore.dask._shard import Shard

    class Bounce(Shard):
        def __init__(self, band):
            self.band, self.peers, self.inbox, self.aborted = band, [], {}, None
            self.arrived, self.n_threads = threading.Condition(), 1

        def bounce(self, tag, nbytes):
            payload = np.ones(nbytes // 8)
            model = np.empty(len(payload) * len(self.peers))
            start = time.process_time()
            for b, part in enumerate(self.allgather(tag, payload, 600)):
                model[b * len(part):(b + 1) * len(part)] = part
            return time.process_time() - start
    return Bounce


def sgd_moves(grid, workers):
    """The chance that an item group changes worker from one DSGD round to the next: the
    next round pairs it with another of the g user groups, g / W - 1 of them on its worker."""
    return 0.0 if workers == 1 else 1 - (grid / workers - 1) / (grid - 1)


def exchanged(algorithm, users, items, n_ratings, k, workers, value_bytes=4, cross=None,
              grid=None):
    """(bytes one worker sends the others per iteration, as many as it receives; bytes
    through the client's link) as the code exchanges them (see the module docstring)."""
    w = workers
    if algorithm == "sgd":
        peers = grid * sgd_moves(grid, w) * items * (k + 1) * value_bytes / w
        return peers, (users + items + grid) * 8  # every row's penalty term, held groups
    side = (w - 1) / w * (users + items) * (k + 1)
    if algorithm == "als":
        return side * value_bytes, 0.0
    cross = (w - 1) / w * n_ratings if cross is None else cross
    return side * 8 + 2 * 8 * cross / w, 0.0


def model_1e9(algorithm, cpu_per_rating, handling=0.0, job=BIG, value_bytes=4, grid=None):
    """Seconds an iteration of ``job`` (default ``BIG``) takes by the written model (see the
    module docstring), from the workers' CPU-seconds per rating and per byte exchanged
    (``handling``, ``exchange_cost``): ``{"compute", "peers", "client", "latency",
    "total", "grid", "threads"}``; "peers" and "client" take the slower of the link and the
    CPU handling the bytes. DSGD runs on ``grid`` (default: the job's ``choose_grid``)."""
    from mfcore.estimators.sgd import choose_grid
    w, t = job["workers"], job["threads"]
    grid = grid or choose_grid(job["n_ratings"], job["users"], job["items"])
    threads = w * (min(t, grid / w) if algorithm == "sgd" else t)
    peers, client = exchanged(algorithm, job["users"], job["items"], job["n_ratings"],
                              job["k"], w, value_bytes, grid=grid)
    steps = {"als": 2, "bayes": 5, "sgd": grid}[algorithm] if w > 1 else 0
    out = {"compute": cpu_per_rating * job["n_ratings"] / threads,
           "peers": max(peers / job["link"], peers * handling),
           "client": max(client / job["link"], client * handling),
           "latency": steps * LATENCY}
    out["total"] = sum(out.values())
    if algorithm in SENDS_AHEAD:  # (the client part overlaps the next epoch)
        out["total"] = max(out["compute"] + out["peers"] + out["latency"], out["client"])
    return dict(out, grid=grid, threads=threads)


def model_line(algorithm, cpu_per_rating, source, handling=0.0, grid=None):
    """The printed line of ``model_1e9`` (``source``: where the CPU per rating came from)."""
    j, m = BIG, model_1e9(algorithm, cpu_per_rating, handling, grid=grid)
    word = {"als": "iteration", "bayes": "sweep", "sgd": "epoch"}[algorithm]
    sums = ("max(compute {compute:.2f} s + peers {peers:.2f} s + latency {latency:.2f} s, "
            "client {client:.2f} s)" if algorithm in SENDS_AHEAD else
            "compute {compute:.2f} s + peers {peers:.2f} s + client {client:.2f} s + "
            "latency {latency:.2f} s")
    grid = f"block grid {m['grid']}, {m['threads']:.0f} threads busy, " if algorithm == "sgd" else ""
    return (f"{algorithm} at {j['n_ratings']:.0e} ratings, {j['users']:.3g} x {j['items']:.3g}, "
            f"k {j['k']}, {j['workers']} workers x {j['threads']} threads, "
            f"{j['link'] * 8 / 1e9:.0f} Gbit/s, {grid}{cpu_per_rating * 1e9:.0f} CPU-ns per rating "
            f"({source}), {handling * 1e9:.2f} CPU-ns per byte exchanged: "
            f"{sums.format(**m)} = {m['total']:.2f} s a {word}")


def predicted_bytes(ratings, algorithm, workers, k):
    """What the workers write per iteration on this run's data by ``exchanged``: the sum over
    workers (BayesianMF's crossing residuals counted on the data's bands)."""
    import numpy as np

    from mfcore.estimators.sgd import choose_grid
    rows = [np.unique(ratings[c].to_numpy(), return_inverse=True)[1] for c in ("user", "item")]
    m, n, big_n = int(rows[0].max()) + 1, int(rows[1].max()) + 1, len(ratings)
    bands = [np.searchsorted([b * size // workers for b in range(workers + 1)], r,
                             side="right") - 1 for r, size in zip(rows, (m, n))]
    cross = int(np.count_nonzero(bands[0] != bands[1]))
    peers, client = exchanged(algorithm, m, n, big_n, k, workers, cross=cross,
                              grid=choose_grid(big_n, m, n))
    return workers * peers + client


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="ml-1m")
    parser.add_argument("--algorithms", default="als,bayes,sgd")
    parser.add_argument("--layouts", default="1x2,2x1", help="WxT: workers x threads, comma-separated")
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--fits", type=int, default=5,
                        help="whole fits alternated for solvers whose iterations overlap "
                             f"({', '.join(sorted(SENDS_AHEAD))})")
    parser.add_argument("--exchange-mb", type=float, default=64,
                        help="payload of the exchange-cost measurement (0: skip it)")
    args = parser.parse_args()
    handling = exchange_cost(args.exchange_mb) if args.exchange_mb else 0.0
    print(f"worker-to-worker exchange: {handling * 1e9:.2f} CPU-ns per byte (2 workers, "
          f"{args.exchange_mb:g} MB each way, least of 3); load {os.getloadavg()}")
    print(f"shape {args.shape}, k {args.k}, {args.iterations} iterations; load {os.getloadavg()}")
    print("| solver | layout | local s/iter | Dask s/iter | wall ratio | local CPU-s | Dask CPU-s "
          "client / scheduler / workers | CPU ratio (workers only) | bytes/iter client / scheduler / "
          "workers | = local |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    measured = []
    for algorithm in args.algorithms.split(","):
        for layout in args.layouts.split(","):
            w, t = (int(x) for x in layout.split("x"))
            r = run(args.shape, algorithm, w, t, args.k, args.iterations,
                    args.fits if algorithm in SENDS_AHEAD else 0)
            measured.append((algorithm, layout, r))
            print(f"| {algorithm} | {layout} | {r['local_wall']:.4f} | {r['dask_wall']:.4f} | "
                  f"{r['wall_ratio']:.2f}x | {r['local_cpu']:.4f} | {r['client_cpu']:.4f} / "
                  f"{r['scheduler_cpu']:.4f} / {r['worker_cpu']:.4f} | {r['cpu_ratio']:.2f}x "
                  f"({r['worker_cpu'] / r['local_cpu']:.2f}x) | "
                  f"{r['client_bytes']:,.0f} / {r['scheduler_bytes']:,.0f} "
                  f"/ {r['worker_bytes']:,.0f} | {'yes' if r['same'] else 'NO'} |", flush=True)
    print(f"load after: {os.getloadavg()}")
    print("\n| solver | layout | workers' bytes/iter measured | by the written model | ratio |")
    print("|---|---|---|---|---|")
    for algorithm, layout, r in measured:
        ratio = (f"{r['worker_bytes'] / r['predicted_bytes']:.3f}" if r["predicted_bytes"]
                 else "-")
        print(f"| {algorithm} | {layout} | {r['worker_bytes']:,.0f} | "
              f"{r['predicted_bytes']:,.0f} | {ratio} |")
    print()
    for algorithm, layout, r in measured:
        for grid in (None, 64) if algorithm == "sgd" else (None,):
            print(model_line(algorithm, r["worker_cpu_per_rating"],
                             f"measured at {args.shape} {layout}", handling, grid))


if __name__ == "__main__":
    main()
