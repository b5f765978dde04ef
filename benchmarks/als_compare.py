"""mfcore's ALS against cmfrec's and LensKit's explicit ALS: speed and accuracy, one run, same splits.

Run (MovieLens under $MFCORE_DATA, see /work/shared/data/README.md):

    MFCORE_DATA=/path/to/data python benchmarks/als_compare.py            # both tables
    python benchmarks/als_compare.py --quick                              # smoke run
    python benchmarks/als_compare.py --tune --json als.json               # grid-search the peers

Tables:

1. Speed, ML-1M, the notebook's split (800,167 training ratings): seconds per
   iteration (median over the iterations after the first) at each k and thread
   count, with the same iteration count for everyone; held-out RMSE on the
   split's test part; total fit time; CPU use (process CPU time / wall time of
   the fit: up to the thread count on an idle machine, less when others share
   the cores); busy threads (how many threads did real work during the fit,
   from /proc/self/task: the check that the thread setting applied, unaffected
   by load); and the ratio of each row's seconds per iteration to the faster
   mfcore's (``mfcore-cg``, ``ALS(solver="cg")``, when it runs; > 1: mfcore is
   faster).
2. Accuracy: ML-100K u1.base -> u1.test and the ML-1M notebook split
   (validation and test RMSE), mfcore ALS with its defaults, the peers with
   known-good settings (``KNOWN``) or, with ``--tune``, the best of ``GRID`` on
   a validation split (10% of u1.base, seed 0, for ML-100K; the notebook's
   validation part for ML-1M; never the test part), refit on the whole
   training part for ML-100K.

Every fit runs in its own subprocess (``--worker``), with the thread count set
before any library is imported: LensKit's Rust (Rayon) thread pool can be
sized only once per process, and this also keeps one run's OpenMP/BLAS state
out of the next. Thread control per implementation:

* mfcore: ``ALS(n_threads=t)`` (OMP_NUM_THREADS=t as well).
* cmfrec: ``CMF(method="als", use_cg=False, user_bias=True, item_bias=True,
  nthreads=t)``; cmfrec 3.5 has no ``MF`` class, ``CMF`` without side
  information is its explicit MF. ``nthreads`` sizes its OpenMP loops; the BLAS it calls
  (SciPy's OpenBLAS) is held at 1 thread with threadpoolctl and
  OPENBLAS_NUM_THREADS=1, so t threads in all, not t x BLAS threads.
* LensKit: ``lenskit.parallel.initialize(threads=t, backend_threads=1)`` (also
  LK_NUM_THREADS=t, LK_NUM_BACKEND_THREADS=1) before training; the worker checks
  ``lenskit._accel.thread_count() == t``.

Every implementation's predictions are clipped to the training rating range
before the RMSE (mfcore's ``evaluate`` does so itself). The peers' predictions
are mu + b_u + b_i + p_u . q_i from their fitted parameters, an unknown user or
item contributing 0 (its bias and its factor term), checked against the
library's own prediction on known pairs.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from _common import cpu_model  # benchmarks/ is the script's folder, so on sys.path

IMPLS = ("mfcore", "mfcore-cg", "cmfrec", "lenskit")  # mfcore-cg: ALS(solver="cg")

# Known-good settings of the peers (found with --tune on the validation splits
# described above; ``reg`` is cmfrec's lambda_ (not scaled by counts) and
# LensKit's regularization (scaled by each row's rating count); ``damping`` is
# LensKit's bias damping). The speed table uses the ML-1M ones at every k.
KNOWN = {
    "ml-100k": {"cmfrec": {"k": 128, "reg": 10.0, "iterations": 15},
                "lenskit": {"k": 128, "reg": 0.1, "damping": 5.0, "iterations": 15}},
    "ml-1m": {"cmfrec": {"k": 64, "reg": 25.0, "iterations": 15},
              "lenskit": {"k": 64, "reg": 0.075, "damping": 5.0, "iterations": 15}},
}
# --tune: the product of these (k from --tune-k) with the iterations of KNOWN. Validation
# RMSE found (2 threads, 15 iterations): ML-100K k in 32, 64, 128: cmfrec best k=128
# reg=10 (0.9192; k=32 reg=15: 0.9201), LensKit k=128 reg=0.1 damping=5 (0.9212);
# ML-1M k=64: cmfrec reg=25 (0.8610; reg=10: 0.8992; k=128 reg=20: 0.8611),
# LensKit reg=0.075 damping=5 (0.8617; reg=0.1: 0.8670).
GRID = {"cmfrec": {"reg": [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]},
        "lenskit": {"reg": [0.03, 0.05, 0.075, 0.1, 0.15, 0.2], "damping": [0.0, 5.0, 10.0]}}


# --- data ------------------------------------------------------------------------------

def _triple(frame):
    return (frame["user"].to_numpy(np.int32), frame["item"].to_numpy(np.int32),
            frame["rating"].to_numpy(np.float32))


def load(dataset):
    """{"train", "val", "test"} triples of (users, items, ratings), raw MovieLens ids.

    ml-100k: u1.base (train) and u1.test; "val" is a 10% random carve of u1.base
    (seed 0) and "fit" the remaining 90%, for tuning. ml-1m: the notebook's
    split (train 800,167 / val 100,021 / test 100,021).
    """
    import mfcore
    if dataset == "ml-100k":
        folder = os.path.dirname(mfcore.datasets.movielens_path("ml-100k", download=False))
        base = mfcore.read_ratings(os.path.join(folder, "u1.base"))
        test = mfcore.read_ratings(os.path.join(folder, "u1.test"))
        fit, val = mfcore.split.train_test_split(base, 0.1, seed=0)
        return {"train": _triple(base), "test": _triple(test), "fit": _triple(fit),
                "val": _triple(val)}
    if dataset == "ml-1m":
        from sklearn.model_selection import train_test_split
        frame = mfcore.datasets.movielens("ml-1m", download=False)
        rows = np.arange(len(frame))
        train, rest = train_test_split(rows, test_size=0.2, random_state=888)
        val, test = train_test_split(rest, test_size=0.5, random_state=0)
        parts = {name: _triple(frame.iloc[idx]) for name, idx in
                 (("train", train), ("val", val), ("test", test))}
        assert len(parts["train"][2]) == 800_167, "not the notebook's split"
        parts["fit"] = parts["train"]  # the notebook tunes on val without refitting
        return parts
    raise ValueError(dataset)


def rmse(pred, ratings, lo, hi):
    err = np.clip(np.asarray(pred, np.float64), lo, hi) - ratings
    return float(np.sqrt(np.mean(err * err)))


def _rows(ids, mapping):
    """Positions of ``ids`` in the fitted ``mapping`` (array of raw ids), -1 if unknown."""
    order = np.argsort(mapping, kind="stable")
    srt = np.asarray(mapping)[order]
    pos = np.clip(np.searchsorted(srt, ids), 0, len(srt) - 1)
    return np.where(srt[pos] == ids, order[pos], -1)


def _biased_predictor(mu, user_ids, item_ids, bu, bi, P, Q):
    def predict(users, items):
        u, i = _rows(users, user_ids), _rows(items, item_ids)
        ku, ki = u >= 0, i >= 0
        both = ku & ki
        out = np.full(len(users), float(mu))
        out[ku] += bu[u[ku]]
        out[ki] += bi[i[ki]]
        out[both] += np.einsum("nk,nk->n", P[u[both]], Q[i[both]])
        return out
    return predict


# --- implementations (run in the worker) -------------------------------------------------

class Fit:
    """One fit: per-iteration seconds (or None), total seconds, CPU seconds, and how to score."""

    def __init__(self, seconds, total, cpu, score, timing, info="", busy=None):
        self.seconds, self.total, self.cpu, self.score = seconds, total, cpu, score
        self.timing, self.info, self.busy = timing, info, busy


def _clock():
    return time.perf_counter(), time.process_time()


def thread_ticks():
    """{thread id: user + system CPU ticks} of this process's threads (Linux; {} elsewhere)."""
    ticks = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ticks[tid] = int(fields[11]) + int(fields[12])
    except OSError:
        pass
    return ticks


def busy_threads(before, after):
    """Threads that did at least a quarter of the busiest one's work between two ``thread_ticks``.

    Unlike CPU time / wall time, this count does not drop when other processes
    share the cores: it shows how many threads the fit really kept working.
    """
    delta = [after[t] - before.get(t, 0) for t in after]
    top = max(delta, default=0)
    return sum(d >= 0.25 * top for d in delta) if top > 0 else 0


def fit_mfcore(train, params, threads, iterations, seed=0):
    import mfcore
    kwargs = {key: params[key] for key in ("k", "reg", "reg_bias", "solver", "cg_steps")
              if key in params}
    if iterations is not None:
        kwargs["iterations"] = iterations
    model = mfcore.ALS(seed=seed, n_threads=threads, dtype="float32", **kwargs)
    wall, cpu = _clock()
    model.fit(*train)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    seconds = [float(h["seconds"]) for h in model.history_]
    params = {key: getattr(model, key) for key in ("k", "iterations", "reg", "reg_bias",
                                                  "solver", "cg_steps") if hasattr(model, key)}
    return Fit(seconds, wall, cpu, lambda part: float(model.evaluate(*part)["rmse"]),
               "measured", params)


def fit_cmfrec(train, params, threads, iterations, seed=0):
    import cmfrec
    import pandas as pd
    from threadpoolctl import threadpool_limits
    u, i, r = train
    frame = pd.DataFrame({"UserId": u, "ItemId": i, "Rating": r})
    model = cmfrec.CMF(k=params["k"], lambda_=params["reg"], method="als", use_cg=False,
                       user_bias=True, item_bias=True, niter=iterations, nthreads=threads,
                       random_state=seed, verbose=False)
    with threadpool_limits(1, "blas"):
        wall, cpu = _clock()
        model.fit(frame)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    predict = _biased_predictor(model.glob_mean_, model.user_mapping_, model.item_mapping_,
                                model.user_bias_, model.item_bias_, model.A_, model.B_)
    n = min(1000, len(u))
    gap = np.abs(predict(u[:n], i[:n]) - model.predict(u[:n], i[:n])).max()
    assert gap < 1e-3, f"cmfrec: own predictions differ from CMF.predict by {gap}"
    lo, hi = float(r.min()), float(r.max())
    return Fit(None, wall, cpu, lambda part: rmse(predict(part[0], part[1]), part[2], lo, hi),
               "fit/iterations")


def fit_lenskit(train, params, threads, iterations, seed=0):
    import pandas as pd
    from lenskit._accel import thread_count
    from lenskit.als import BiasedMFConfig, BiasedMFScorer
    from lenskit.data import ItemList, from_interactions_df
    from lenskit.training import TrainingOptions
    assert thread_count() == threads, f"LensKit runs {thread_count()} threads, not {threads}"
    u, i, r = train
    data = from_interactions_df(pd.DataFrame({"user_id": u, "item_id": i, "rating": r}))
    scorer = BiasedMFScorer(BiasedMFConfig(embedding_size=params["k"], epochs=iterations,
                                           regularization=params["reg"],
                                           damping=params.get("damping", 5.0)))
    # what scorer.train() does, with each epoch timed
    wall, cpu = _clock()
    trainer = scorer.create_trainer(data, TrainingOptions(rng=seed))
    seconds = []
    ticks = thread_ticks()  # over the epochs only: the main thread waits for the Rayon pool
    for _ in range(iterations):
        start = time.perf_counter()
        trainer.train_epoch()
        seconds.append(time.perf_counter() - start)
    busy = busy_threads(ticks, thread_ticks())
    trainer.finalize()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    bias = scorer.bias
    predict = _biased_predictor(bias.global_bias, data.users.ids(), data.items.ids(),
                                bias.user_biases, bias.item_biases, scorer.user_embeddings,
                                scorer.item_embeddings)
    user = u[0]  # check against LensKit's own scoring of one user's training items
    own = scorer(int(user), ItemList(item_ids=i[u == user])).scores()
    gap = np.abs(own - predict(u[u == user], i[u == user])).max()
    assert gap < 1e-3, f"LensKit: own predictions differ from the scorer's by {gap}"
    lo, hi = float(r.min()), float(r.max())
    return Fit(seconds, wall, cpu, lambda part: rmse(predict(part[0], part[1]), part[2], lo, hi),
               "measured", f"{thread_count()} Rayon threads", busy)


def fit_mfcore_cg(train, params, threads, iterations, seed=0):
    return fit_mfcore(train, dict(params, solver="cg"), threads, iterations, seed)


FITS = {"mfcore": fit_mfcore, "mfcore-cg": fit_mfcore_cg, "cmfrec": fit_cmfrec,
        "lenskit": fit_lenskit}


def _setup_threads(impl, threads):
    """Called in the worker before the implementation is imported (see the module docstring)."""
    if impl == "lenskit":
        from lenskit import parallel
        parallel.initialize(threads=threads, backend_threads=1)


def _version(impl):
    from importlib.metadata import version
    if impl.startswith("mfcore"):
        import mfcore
        return mfcore.__version__
    try:
        return version(impl)
    except Exception:
        return "?"


def _missing(impl):
    """Why ``impl`` cannot run here, or None."""
    import importlib.util
    if impl.startswith("mfcore"):
        import mfcore
        if not hasattr(mfcore, "ALS"):
            return f"mfcore.ALS does not exist yet in {os.path.dirname(mfcore.__file__)}"
        return None
    if importlib.util.find_spec(impl) is None:
        return f"{impl} is not installed (pip install {impl})"
    return None


def worker(job):
    """Run one job (a dict) and return its result rows."""
    impl, threads = job["impl"], job["threads"]
    _setup_threads(impl, threads)
    parts = load(job["dataset"])
    fit = FITS[impl]
    if job["kind"] == "speed":
        before = thread_ticks()
        f = fit(parts["train"], job["params"], threads, job["iterations"])
        busy = busy_threads(before, thread_ticks()) if f.busy is None else f.busy
        per_iter = (statistics.median(f.seconds[1:] or f.seconds) if f.seconds
                    else f.total / job["iterations"])
        return [{"table": "speed", "dataset": job["dataset"], "impl": impl,
                 "k": job["params"]["k"], "threads": threads, "iterations": job["iterations"],
                 "sec_per_iter": per_iter, "timing": f.timing, "fit_seconds": f.total,
                 "cpu_use": f.cpu / f.total, "busy_threads": busy, "rmse_test": f.score(parts["test"]),
                 "params": job["params"], "info": f.info, "version": _version(impl)}]
    # accuracy: each candidate fitted on "fit" and scored on "val"; the best one's test
    # RMSE, from a refit on all of "train" where "fit" is a part of it (ML-100K)
    same = parts["fit"] is parts["train"]
    tried = []
    for params in job["candidates"]:
        f = fit(parts["fit"], params, threads, params.get("iterations"))
        tried.append({"val": f.score(parts["val"]), "params": params, "seconds": f.total,
                      "info": f.info, "test": f.score(parts["test"]) if same else None})
        if len(job["candidates"]) > 1:
            print(f"  {impl} {job['dataset']} {params}: val {tried[-1]['val']:.4f} "
                  f"({f.total:.1f} s)", file=sys.stderr, flush=True)
    best = min(tried, key=lambda t: t["val"])
    if not same:
        f = fit(parts["train"], best["params"], threads, best["params"].get("iterations"))
        best = dict(best, test=f.score(parts["test"]), seconds=f.total)
    return [{"table": "accuracy", "dataset": job["dataset"], "impl": impl, "threads": threads,
             "params": best["params"] if not impl.startswith("mfcore") else (best["info"] or "defaults"),
             "tuned": len(tried) > 1, "n_tried": len(tried), "rmse_val": best["val"],
             "rmse_test": best["test"], "fit_seconds": best["seconds"],
             "version": _version(impl)}]


# --- the driver -------------------------------------------------------------------------

def run_job(job):
    """``worker(job)`` in a fresh interpreter with the thread settings in its environment."""
    t = str(job["threads"])
    env = dict(os.environ, OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               LK_NUM_THREADS=t, LK_NUM_BACKEND_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)],
                          env=env, capture_output=True, text=True)
    sys.stderr.write("".join(line + "\n" for line in proc.stderr.splitlines()
                             if line.startswith("  ")))  # tuning progress
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    print(f"  {job['impl']} failed (exit {proc.returncode}): {tail}", flush=True)
    return []


def _load():
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _f(x, fmt):
    return "-" if x is None else format(x, fmt)


def speed_table(rows, impls):
    print("\nSpeed: ML-1M, the notebook's split (800,167 training ratings), "
          f"{rows[0]['iterations'] if rows else '?'} iterations")
    print(f"{'k':>4} {'thr':>3} {'implementation':15} {'s/iter':>8} {'fit s':>7} {'CPU use':>7} "
          f"{'busy':>4} {'test RMSE':>9} {'/ mfcore':>11}  settings")
    for k, threads in sorted({(r["k"], r["threads"]) for r in rows}):
        group = {r["impl"]: r for r in rows if (r["k"], r["threads"]) == (k, threads)}
        ref = group.get("mfcore-cg", group.get("mfcore"))  # the faster mfcore
        for impl in impls:
            r = group.get(impl)
            if r is None:
                continue
            ratio = (f"{r['sec_per_iter'] / ref['sec_per_iter']:10.2f}x"
                     if ref and r is not ref else "")
            mark = "*" if r["timing"] != "measured" else " "
            params = r["info"] if isinstance(r.get("info"), dict) else r["params"]
            settings = ", ".join(f"{key}={v}" for key, v in params.items()
                                 if key not in ("k", "iterations"))
            print(f"{k:4d} {threads:3d} {impl:15} {r['sec_per_iter']:7.3f}{mark} "
                  f"{r['fit_seconds']:7.2f} {r['cpu_use']:7.2f} {r['busy_threads']:4d} "
                  f"{r['rmse_test']:9.4f} "
                  f"{ratio:>11}  {settings}")
    print("  s/iter: median over iterations 2..N of the measured per-iteration time; "
          "* = (total fit time) / iterations, as cmfrec reports no per-iteration time "
          "(includes its setup: id mapping, matrix building).")
    print("  fit s: the whole fit (mfcore: fit() including id mapping; LensKit: trainer "
          "creation (matrix, biases) + epochs, after its Dataset was built; cmfrec: fit() "
          "from a DataFrame). CPU use: process CPU seconds / wall seconds of the fit (below "
          "the thread count when other processes share the cores); busy: threads that did "
          ">= 1/4 of the busiest thread's CPU work during the fit (LensKit: during its "
          "epochs), the check that the thread setting applied.")
    print("  LensKit's biases are damped means computed once before ALS (not re-fitted per "
          "iteration); cmfrec and mfcore re-fit them in every iteration.")


def accuracy_table(rows, impls):
    print("\nAccuracy (held-out RMSE, predictions clipped to the training range)")
    print(f"{'data':10} {'implementation':15} {'val RMSE':>8} {'test RMSE':>9} {'fit s':>7}  "
          "settings")
    for dataset in ("ml-100k", "ml-1m"):
        for impl in impls:
            for r in rows:
                if (r["dataset"], r["impl"]) != (dataset, impl):
                    continue
                how = (f"best of {r['n_tried']} on validation" if r["tuned"]
                       else "defaults" if impl.startswith("mfcore") else "known-good")
                params = r["params"]
                settings = (", ".join(f"{k}={v}" for k, v in params.items())
                            if isinstance(params, dict) else str(params))
                name = "u1" if dataset == "ml-100k" else "ml-1m nb"
                print(f"{name:10} {impl:15} {_f(r['rmse_val'], '8.4f')} "
                      f"{r['rmse_test']:9.4f} {r['fit_seconds']:7.2f}  {how}: {settings}")
    print("  u1: val = RMSE on 10% of u1.base (seed 0) of a fit on the other 90%; test = "
          "u1.test RMSE of a refit on all of u1.base (fit s: that refit). ml-1m nb: the "
          "notebook's split, fit on its 800,167 training ratings, val and test of that fit.")


def candidates(impl, dataset, tune, tune_k):
    if impl.startswith("mfcore"):
        return [{}]  # ALS() defaults (mfcore-cg: with solver="cg")

    known = KNOWN[dataset][impl]
    if not tune:
        return [dict(known)]
    grid = [{"k": k, "iterations": known["iterations"]} for k in tune_k]
    for key, values in GRID[impl].items():
        grid = [dict(g, **{key: v}) for g in grid for v in values]
    return grid


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: k=32, 4 iterations, accuracy on ML-100K only")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--k", default="32,64,128", help="k of the speed table")
    parser.add_argument("--iterations", type=int, default=10,
                        help="iterations of every speed-table fit (default 10)")
    parser.add_argument("--skip-peers", action="store_true", help="mfcore only")
    parser.add_argument("--tune", action="store_true",
                        help="grid-search the peers on the validation splits (GRID)")
    parser.add_argument("--tune-k", default="32,64,128", help="k values of the --tune grid")
    parser.add_argument("--datasets", default="ml-100k,ml-1m",
                        help="data sets of the accuracy table (default ml-100k,ml-1m)")
    parser.add_argument("--only", choices=("speed", "accuracy"), help="one table only")
    parser.add_argument("--json", metavar="PATH", help="also save the rows as JSON")
    parser.add_argument("--worker", metavar="JOB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return

    import mfcore
    ks = [32] if args.quick else [int(x) for x in args.k.split(",")]
    threads = [int(x) for x in args.threads.split(",")]
    iterations = 4 if args.quick else args.iterations
    tune_k = [int(x) for x in args.tune_k.split(",")]
    datasets = ["ml-100k"] if args.quick else args.datasets.split(",")
    if not os.environ.get("MFCORE_DATA"):
        sys.exit("set MFCORE_DATA to the folder holding ml-100k/ and ml-1m/")

    print(f"ALS comparison: {cpu_model()}, {os.cpu_count()} CPUs, load average {_load()}; "
          f"Python {platform.python_version()}, mfcore {mfcore.__file__}")
    config = mfcore.show_config(file=open(os.devnull, "w"))
    print(f"mfcore SIMD path {config['simd_path']}, OpenMP {config['openmp']}")
    impls = []
    for impl in (("mfcore",) if args.skip_peers else IMPLS):
        reason = _missing(impl)
        if reason:
            print(f"skipping {impl}: {reason}")
        else:
            impls.append(impl)
            print(f"{impl} {_version(impl)}")
    if not impls:
        sys.exit("nothing to run")

    rows = []
    if args.only in (None, "speed"):
        speed = []
        for k in ks:
            for t in threads:
                for impl in impls:
                    params = {"k": k} if impl.startswith("mfcore") else dict(
                        {key: v for key, v in KNOWN["ml-1m"][impl].items()
                         if key != "iterations"}, k=k)
                    job = {"kind": "speed", "dataset": "ml-1m", "impl": impl, "threads": t,
                           "iterations": iterations, "params": params}
                    got = run_job(job)
                    for r in got:
                        print(f"  speed k={k} threads={t} {impl}: {r['sec_per_iter']:.3f} s/iter, "
                              f"test RMSE {r['rmse_test']:.4f}, CPU use {r['cpu_use']:.2f}, "
                              f"{r['busy_threads']} busy threads "
                              f"(load {_load()})", flush=True)
                    speed += got
        rows += speed
    if args.only in (None, "accuracy"):
        accuracy = []
        for dataset in datasets:
            for impl in impls:
                job = {"kind": "accuracy", "dataset": dataset, "impl": impl,
                       "threads": max(threads),
                       "candidates": candidates(impl, dataset, args.tune, tune_k)}
                got = run_job(job)
                for r in got:
                    print(f"  accuracy {dataset} {impl}: test RMSE {r['rmse_test']:.4f}",
                          flush=True)
                accuracy += got
        rows += accuracy

    print(f"\nload average at the end: {_load()}")
    if args.only in (None, "speed"):
        speed_table([r for r in rows if r["table"] == "speed"], impls)
    if args.only in (None, "accuracy"):
        accuracy_table([r for r in rows if r["table"] == "accuracy"], impls)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": {"cpu": cpu_model(), "cpus": os.cpu_count(),
                                   "load_end": os.getloadavg()}, "rows": rows}, fh, indent=1)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
