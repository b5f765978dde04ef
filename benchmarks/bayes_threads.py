"""Seconds per Gibbs sweep of BayesianMF for 1 and 2 threads, and where a sweep's time goes.

For each (data set, k) cell: times the sweeps of one fit (after a few warm-up sweeps)
alternating the thread count sweep by sweep, so that a noisy machine slows both alike;
prints medians, the 1 -> 2 thread speed-up of the whole sweep and of the kernel alone,
the time outside the compiled kernel, and the kernel's own account of each step
(``gibbs_sweep(timing=...)``): per thread the seconds in its tasks ("busy"), its CPU
seconds and the step's wall time to the end of its barrier (wall - busy: the time it
waits at the barrier); per step the CPU seconds of both threads over those of one (above
1: work the second thread adds, such as memory traffic between the cores) and the busier
thread's share of them (0.5: balanced; under load a descheduled thread's rows go to the
other, which shows here). The steps: "hyper" the user groups' hyperparameters and the sum
of squared residuals, "users" the other groups' and the users' rows, "items" the items'
rows. With the default policy a thread spinning at a barrier burns CPU too, so there both
ratios follow the wall times (a thread that waits looks busy): read the work and the
balance from a passive run. The load average is printed before the run and with each
cell: thread-scaling figures taken while other jobs run are meaningless. Run it on a quiet
machine with OpenMP's default wait policy (printed; passive makes every barrier a sleep);
the CPU columns count a thread spinning at a barrier, so the CPU ratios are the work only
with OMP_WAIT_POLICY=passive.

Each cell also prints the share of the CPUs other processes took while it ran (from
/proc/stat): a figure taken beside another job is no thread-scaling figure.

``--fits`` adds, per cell, whole fits timed as ``bayes_compare.py`` times them (fit +
posterior-mean predictions of the test part, from the raw ids), interleaved seed by seed:
myFM on 1 thread (when installed), mfcore on 1 and on 2 threads; it prints the medians
over the seeds of mfcore's speed-up over myFM at 1 thread (equal k and sweeps) and of the
fit's 1 -> 2 thread speed-up. FITS gives the sweeps and burn-in per data set
(default "ml100k:200:50,ml1m:60:20": myFM takes minutes for 200 sweeps of ML-1M).

Every cell of the issue's target (ML-100K u1 and the ML-1M notebook split, k = 10 and 32),
and the myFM ratio (myFM needs its ``pkg_resources`` stand-in on PYTHONPATH, see
``bayes_compare.import_myfm``):

    MFCORE_DATA=/path/to/data PYTHONPATH=.:benchmarks \\
        python benchmarks/bayes_threads.py [--sets ml100k,ml1m] [--ranks 10,32] [--sweeps 40]
        [--fits [FITS]] [--seeds 0,1,2]
"""
import argparse
import os
import time

import numpy as np

import mfcore
from mfcore._kernels import bayes as _bayes
from mfcore.data import prepare

from _common import OtherLoad
from bayes_compare import import_myfm, load, rows, run_mfcore, run_myfm

STEPS = ("hyper", "users", "items")


def load_average():
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def time_sweeps(train, k, n_sweeps):
    """Per thread count (1, 2): the wall seconds of each step() and of its kernel call, and
    the kernel's timing rows, for sweeps 5.. of one fit alternating 1 and 2 threads."""
    model = mfcore.BayesianMF(k=k, burn_in=10**6, n_samples=1, seed=0)
    params = model._checked_params()
    data = prepare(train[:, 0], train[:, 1], train[:, 2], np.float32, "mean")
    model._start(data, params, seen=False)
    sweeps = model._trainer(data, params, {}, {})  # no layouts cached, no fit-time inputs
    original = _bayes.gibbs_sweep
    calls = []

    def timed(*args, **kw):
        timing = np.zeros((sweeps.n_threads, len(_bayes.TIMING)))
        start = time.perf_counter()
        out = original(*args, timing=timing, **kw)
        calls.append((time.perf_counter() - start, timing))
        return out

    out = {t: {"step": [], "kernel": [], "timing": []} for t in (1, 2)}
    _bayes.gibbs_sweep = timed
    try:
        for sweep in range(1, n_sweeps + 1):
            threads = 1 + sweep % 2
            sweeps.n_threads = threads
            start = time.perf_counter()
            sweeps.step(sweep)
            if sweep > 4:
                out[threads]["step"].append(time.perf_counter() - start)
                out[threads]["kernel"].append(calls[-1][0])
                out[threads]["timing"].append(calls[-1][1])
    finally:
        _bayes.gibbs_sweep = original
    return len(data), out


def report(n, out):
    step = {t: np.median(out[t]["step"]) for t in (1, 2)}
    kernel = {t: np.median(out[t]["kernel"]) for t in (1, 2)}
    for t in (1, 2):
        print(f"  {t} thread(s): {step[t] * 1e3:7.1f} ms a sweep ({n / step[t] / 1e6:5.1f}M "
              f"ratings/s), kernel {kernel[t] * 1e3:7.1f} ms, outside it "
              f"{(step[t] - kernel[t]) * 1e3:5.2f} ms")
        timing = np.median(np.array(out[t]["timing"]), axis=0) * 1e3  # (threads, columns)
        col = {name: timing[:, j] for j, name in enumerate(_bayes.TIMING)}
        for s in STEPS:
            print(f"    {s:5}: busy " + " + ".join(f"{x:6.2f}" for x in col[s + " busy"])
                  + " ms, cpu " + " + ".join(f"{x:6.2f}" for x in col[s + " cpu"])
                  + " ms, wall " + " / ".join(f"{x:6.2f}" for x in col[s + " wall"]) + " ms")
        print(f"    fork {' / '.join(f'{x:.3f}' for x in col['fork'])} ms, call "
              f"{col['call'][0]:.2f} ms (outside the steps "
              f"{col['call'][0] - sum(col[s + ' wall'][0] for s in STEPS):.2f} ms)")
    one = np.median(np.array(out[1]["timing"]), axis=0)[0]
    two = np.median(np.array(out[2]["timing"]), axis=0)
    names = list(_bayes.TIMING)
    for s in STEPS:
        cpu1, cpu2 = one[names.index(s + " cpu")], two[:, names.index(s + " cpu")]
        if cpu1 > 0:
            print(f"    {s:5}: CPU seconds at 2 threads / at 1 {cpu2.sum() / cpu1:.3f}, "
                  f"the busier thread's share {cpu2.max() / cpu2.sum():.3f}")
    print(f"  1 -> 2 threads: {step[1] / step[2]:.2f}x (kernel alone "
          f"{kernel[1] / kernel[2]:.2f}x)")

def time_fits(myfm, train, test, k, sweeps, burn_in, seeds):
    """Per seed, the (wall, CPU) seconds of myFM's fit + predictions (absent without myFM)
    and of mfcore's on 1 and on 2 threads, and the others' CPU share while they ran."""
    tu, ti, qu, qi, n_users, n_items = rows(train, test)
    data = (tu, ti, qu, qi, n_users, n_items, train[:, 2].astype(np.float64), None)
    out = []
    for j, seed in enumerate(seeds):
        got = {}
        with OtherLoad() as other:
            if myfm is not None:
                got["myFM"] = run_myfm(myfm, data, k, sweeps, burn_in, seed)[1:3]
            for t in (1, 2) if j % 2 == 0 else (2, 1):
                got[t] = run_mfcore(train, test, k, sweeps, burn_in, t, seed, std=False)[3:5]
        out.append((got, other))
    return out


def report_fits(out, sweeps, burn_in):
    for got, other in out:
        print(f"    fits of {sweeps} sweeps ({burn_in} burn-in): " + ", ".join(
            f"{'myFM' if t == 'myFM' else f'mfcore {t}t'} {s:.2f} s ({c:.2f} CPU s)"
            for t, (s, c) in got.items()) + f"; {other}")
    speed = [got[1][0] / got[2][0] for got, _ in out]
    line = f"  fit 1 -> 2 threads: {np.median(speed):.2f}x"
    if "myFM" in out[0][0]:  # both on one thread: the CPU seconds' ratio is load-robust
        line += "; mfcore 1 thread vs myFM: " + ", ".join(
            f"{np.median([got['myFM'][j] / got[1][j] for got, _ in out]):.1f}x {what}"
            for j, what in ((0, "wall"), (1, "CPU")))
    print(line + f" (medians over {len(out)} seeds)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", "--set", default="ml100k,ml1m")
    ap.add_argument("--ranks", "--k", default="10,32")
    ap.add_argument("--sweeps", type=int, default=40)
    ap.add_argument("--fits", nargs="?", const="ml100k:200:50,ml1m:60:20", default=None)
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args(argv)
    root = os.environ.get("MFCORE_DATA", "/work/shared/data")
    fits = {} if args.fits is None else {
        name: (int(n), int(b)) for name, n, b in (x.split(":") for x in args.fits.split(","))}
    myfm = import_myfm() if fits else None
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; {load_average()}")
    for name in args.sets.split(","):
        train, test = load(name, root)
        for k in (int(x) for x in args.ranks.split(",")):
            with OtherLoad() as other:
                n, out = time_sweeps(train, k, args.sweeps)
            print(f"{name}: {n:,} ratings, k={k}, medians of {len(out[1]['step'])} sweeps "
                  f"each; {load_average()}; {other}")
            report(n, out)
            if name in fits:
                sweeps, burn_in = fits[name]
                report_fits(time_fits(myfm, train, test, k, sweeps, burn_in,
                                      [int(x) for x in args.seeds.split(",")]), sweeps, burn_in)


if __name__ == "__main__":
    main()
