"""The speed rows of issue 25 in one command: mfcore's three solvers beside their peers.

Rows (each a fresh subprocess with its thread count set before anything is imported):

* ``sgd``: SGD updates per second (median epoch of a 5-epoch fit) on the synthetic
  ML-1M shape (90% of it), k = 20, 32, 64, 128, 1 and 2 threads; LIBMF beside it when
  its shared library is named by ``$LIBMF_LIB``: its seconds per iteration on the same
  ratings in memory, same k, penalty and threads, setup excluded (``_libmf.py``), and
  its test RMSE (no biases, so higher). The ``ratio`` lines: mfcore / LIBMF, the median
  of the per-round ratios.
* ``scale``: SGD updates per second at k = 64 on the synthetic ML-10M and Netflix shapes
  (all their ratings, 3 epochs, the median epoch), 1 and 2 threads, and the Netflix /
  ML-10M ratio of each round (issue 25: at least 0.8). The sets are generated once into
  ``$MFCORE_BENCH_CACHE`` (default: a temporary folder; Netflix takes minutes and about
  1.2 GB), a fit of the Netflix shape holds about 4 GB.
* ``als``: seconds per ALS iteration on the ML-1M notebook split, 2 threads, k = 32, 64,
  128: mfcore's exact solve, ``solver="cg"``, LensKit and cmfrec, as
  ``als_compare.py`` runs them (its worker, its settings), with the test RMSE.
* ``bayes``: seconds per Gibbs sweep of BayesianMF on ML-100K u1 and the ML-1M notebook
  split at k = 10 and 32, on 1 and 2 threads (the speed-up is 1-thread / 2-thread), and
  myFM (single-threaded) for the same sweeps when it is installed.

The rounds interleave: every round runs every job once, in a rotated order, so that a
change of load slows every row alike; a cell is the median over the rounds, and the load
average is printed beside each job and at the end. A peer that is not installed is
skipped with the reason.

    MFCORE_DATA=/path/to/data PYTHONPATH=. python benchmarks/throughput.py \\
        [--rows sgd,als,bayes,scale] [--rounds 3] [--quick]

``--quick``: one round, k = 32 only, ML-100K only (a smoke run). The default rows are
``sgd,als,bayes``; ``scale`` runs only when named (minutes and gigabytes).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from _common import cpu_model  # benchmarks/ is the script's folder, so on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))


def _load():
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# --- the jobs (run in the worker) --------------------------------------------------------

def sgd_job(job):
    import mfcore
    from mfcore.split import train_test_split
    d = mfcore.datasets.synthetic("ml-1m", seed=0)
    train, test = train_test_split(d, 0.1, seed=0)
    if job["impl"] == "libmf":
        return _libmf(job, train, test)
    m = mfcore.SGD(k=job["k"], epochs=5, n_threads=job["threads"], seed=0)
    m.fit(train.user, train.item, train.rating)
    return {"value": statistics.median(h["updates_per_sec"] for h in m.history_) / 1e6,
            "rmse": m.evaluate(test.user, test.item, test.rating)["rmse"]}


def _libmf(job, train, test):
    """LIBMF's seconds per iteration through its C API (``_libmf.py``): the same ratings
    in memory, k, L2 penalty and threads; 5 and 10 iterations, the difference / 5."""
    from _libmf import LIBMF, rmse
    lm = LIBMF(train.user.to_numpy() - 1, train.item.to_numpy() - 1,
               train.rating.to_numpy(), k=job["k"], threads=job["threads"])
    seconds, model = lm.iteration_seconds(5)
    return {"value": len(train) / seconds / 1e6,
            "rmse": rmse(model, test.user.to_numpy() - 1, test.item.to_numpy() - 1,
                         test.rating.to_numpy())}


def bayes_job(job):
    from bayes_compare import import_myfm, load, rows, run_myfm
    root = os.environ["MFCORE_DATA"]
    train, test = load(job["set"], root)
    sweeps, burn_in = job["sweeps"], job["sweeps"] // 2
    if job["impl"] == "myfm":
        myfm = import_myfm()
        data = rows(train, test) + (train[:, 2].astype(float), test[:, 2])
        pred, wall, _ = run_myfm(myfm, data, job["k"], sweeps, burn_in, 0)
        rmse = float(np.sqrt(np.mean((pred - test[:, 2]) ** 2)))
        return {"value": wall / sweeps, "rmse": rmse, "note": "fit + predict / sweeps"}
    import mfcore
    m = mfcore.BayesianMF(k=job["k"], burn_in=burn_in, n_samples=sweeps - burn_in, seed=0,
                          n_threads=job["threads"])
    m.fit(train[:, 0], train[:, 1], train[:, 2])
    seconds = [h["seconds"] for h in m.history_[1:]]
    return {"value": statistics.median(seconds),
            "rmse": m.evaluate(test[:, 0], test[:, 1], test[:, 2])["rmse"]}


def scale_job(job):
    import mfcore
    data = np.load(job["path"])
    m = mfcore.SGD(k=job["k"], epochs=3, n_threads=job["threads"], seed=0)
    m.fit(data["user"], data["item"], data["rating"])
    return {"value": statistics.median(h["updates_per_sec"] for h in m.history_) / 1e6,
            "rmse": None}


def cached_shape(shape):
    """The path of the synthetic set ``shape`` as .npz in the cache folder (made once)."""
    folder = os.environ.get("MFCORE_BENCH_CACHE") or os.path.join(tempfile.gettempdir(),
                                                                  "mfcore-bench")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"synthetic-{shape}-seed0.npz")
    if not os.path.exists(path):
        import mfcore
        print(f"  generating the synthetic {shape} set into {path}", flush=True)
        d = mfcore.datasets.synthetic(shape, seed=0)
        tmp = path + ".part.npz"
        np.savez(tmp, user=d.user.to_numpy(), item=d.item.to_numpy(), rating=d.rating.to_numpy())
        os.replace(tmp, path)
    return path


def worker(job):
    return {"sgd": sgd_job, "scale": scale_job}.get(job["row"], bayes_job)(job)


def run(job):
    """One job in a fresh interpreter with its thread count in the environment."""
    if job["row"] == "als":  # als_compare's worker, in its own subprocess
        import als_compare
        got = als_compare.run_job({"kind": "speed", "dataset": "ml-1m", "impl": job["impl"],
                                   "threads": job["threads"], "iterations": 6,
                                   "params": _als_params(job)})
        return {"value": got[0]["sec_per_iter"], "rmse": got[0]["rmse_test"]} if got else None
    env = dict(os.environ, OMP_NUM_THREADS=str(job["threads"]), OPENBLAS_NUM_THREADS="1",
               PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker",
                           json.dumps(job)], env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    print(f"  {job} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return None


def _als_params(job):
    import als_compare
    if job["impl"].startswith("mfcore"):
        return {"k": job["k"]}
    known = als_compare.KNOWN["ml-1m"][job["impl"]]
    return dict({key: v for key, v in known.items() if key != "iterations"}, k=job["k"])


# --- the driver ---------------------------------------------------------------------------

def _missing(impl):
    import importlib.util
    if impl == "libmf":
        from _libmf import missing
        return missing()
    if impl in ("lenskit", "cmfrec", "myfm") and importlib.util.find_spec(impl) is None:
        return f"{impl} is not installed (pip install {impl})"
    return None


def jobs(rows, quick):
    ks = {"sgd": (32,) if quick else (20, 32, 64, 128), "als": (32,) if quick else (32, 64, 128),
          "bayes": (10,) if quick else (10, 32)}
    out = []
    if "sgd" in rows:
        out += [{"row": "sgd", "impl": impl, "k": k, "threads": t}
                for k in ks["sgd"] for t in (1, 2) for impl in ("mfcore", "libmf")]
    if "als" in rows:
        out += [{"row": "als", "impl": impl, "k": k, "threads": 2} for k in ks["als"]
                for impl in ("mfcore", "mfcore-cg", "lenskit", "cmfrec")]
    if "scale" in rows:
        out += [{"row": "scale", "impl": "mfcore", "set": shape, "k": 64, "threads": t,
                 "path": cached_shape(shape)} for shape in ("ml-10m", "netflix") for t in (1, 2)]
    if "bayes" in rows:
        for name in ("ml100k",) if quick else ("ml100k", "ml1m"):
            for k in ks["bayes"]:
                out += [{"row": "bayes", "impl": "mfcore", "set": name, "k": k, "threads": t,
                         "sweeps": 40} for t in (1, 2)]
                out.append({"row": "bayes", "impl": "myfm", "set": name, "k": k, "threads": 1,
                            "sweeps": 40})
    return out


def _key(job):
    return tuple(job.get(name) for name in ("row", "set", "k", "threads", "impl"))


def _order(item):
    """Rows by name, data, k and threads (numbers in numeric order), then implementation."""
    return tuple(x if isinstance(x, int) else str(x) for x in item[0])


def table(results):
    units = {"sgd": "M updates/s", "scale": "M updates/s", "als": "s/iteration",
             "bayes": "s/sweep"}
    print(f"\n{'row':6} {'data':7} {'k':>4} {'thr':>3} {'impl':10} {'median':>9} "
          f"{'rounds':>6} {'RMSE':>7}  unit")
    for key, got in sorted(results.items(), key=_order):
        row, data, k, threads, impl = key
        values = [g["value"] for g in got]
        rmse = got[-1].get("rmse")
        print(f"{row:6} {data or 'ml-1m':7} {k:4d} {threads:3d} {impl:10} "
              f"{statistics.median(values):9.3f} {len(values):6d} "
              f"{'' if rmse is None else format(rmse, '7.4f'):>7}  {units[row]}")
    for (row, data, k, threads, impl), got in sorted(results.items(), key=_order):
        libmf = results.get((row, data, k, threads, "libmf"))
        if row == "sgd" and impl == "mfcore" and libmf:
            ratio = statistics.median(a["value"] / b["value"] for a, b in zip(got, libmf))
            print(f"  SGD k={k} threads={threads}: mfcore / LIBMF {ratio:.2f}x (median of the "
                  "per-round ratios)")
    for threads in (1, 2):
        small = results.get(("scale", "ml-10m", 64, threads, "mfcore"))
        large = results.get(("scale", "netflix", 64, threads, "mfcore"))
        if small and large:
            ratio = statistics.median(a["value"] / b["value"] for a, b in zip(large, small))
            print(f"  SGD k=64 threads={threads}: Netflix shape / ML-10M shape {ratio:.2f} "
                  "(median of the per-round ratios)")
    speedups = {}
    for (row, data, k, threads, impl), got in results.items():
        if row == "bayes" and impl == "mfcore" and threads == 2:
            one = results.get((row, data, k, 1, impl))
            if one:
                speedups[(data, k)] = statistics.median(
                    a["value"] / b["value"] for a, b in zip(one, got))
    for (data, k), s in sorted(speedups.items()):
        print(f"  BayesianMF {data} k={k}: 1 -> 2 threads {s:.2f}x (median of the per-round "
              "ratios)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="sgd,als,bayes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return
    if not os.environ.get("MFCORE_DATA"):
        sys.exit("set MFCORE_DATA to the folder holding ml-100k/ and ml-1m/")
    sys.path.insert(0, HERE)
    import mfcore
    config = mfcore.show_config(file=open(os.devnull, "w"))
    print(f"throughput: {cpu_model()}, {os.cpu_count()} CPUs, SIMD path {config['simd_path']}, "
          f"load average {_load()}")
    todo, skipped = [], {}
    for job in jobs(args.rows.split(","), args.quick):
        reason = _missing(job["impl"])
        if reason:
            skipped[job["impl"]] = reason
        else:
            todo.append(job)
    for impl, reason in skipped.items():
        print(f"skipping {impl}: {reason}")
    results = {}
    rounds = 1 if args.quick else args.rounds
    for r in range(rounds):
        shift = r * len(todo) // rounds
        for job in todo[shift:] + todo[:shift]:
            got = run(job)
            if got is not None:
                results.setdefault(_key(job), []).append(got)
                print(f"  round {r + 1} {_key(job)}: {got['value']:.3f} (load {_load()})",
                      flush=True)
    print(f"\nload average at the end: {_load()}")
    table(results)


if __name__ == "__main__":
    main()
