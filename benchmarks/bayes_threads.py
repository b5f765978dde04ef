"""Seconds per Gibbs sweep of BayesianMF for 1 and 2 threads, and where a sweep's time goes.

Times the sweeps of one fit (after a few warm-up sweeps) alternating the thread count
sweep by sweep, so that a noisy machine slows both alike; prints medians, the 1 -> 2
thread speed-up, and the share of a sweep spent outside the compiled kernel.

    MFCORE_DATA=../shared/data python benchmarks/bayes_threads.py [--set ml1m|ml100k] [--k 10]
"""
import argparse
import os
import time

import numpy as np

import mfcore
from mfcore._kernels import bayes as _bayes
from mfcore.data import prepare

from bayes_compare import load


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="ml1m")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--sweeps", type=int, default=30)
    args = ap.parse_args(argv)
    train, _ = load(args.set, os.environ.get("MFCORE_DATA", "/work/shared/data"))
    model = mfcore.BayesianMF(k=args.k, burn_in=10**6, n_samples=1, seed=0)
    params = model._checked_params()
    data = prepare(train[:, 0], train[:, 1], train[:, 2], np.float32, "mean")
    model._start(data, params, seen=False)
    sweeps = model._trainer(data, params, {}, {})  # no layouts cached, no fit-time inputs
    kernel_calls = []
    original = _bayes.gibbs_sweep

    def timed(*a, **kw):
        start = time.perf_counter()
        out = original(*a, **kw)
        kernel_calls.append(time.perf_counter() - start)
        return out

    _bayes.gibbs_sweep = timed
    times = {1: [], 2: []}
    kernel = {1: [], 2: []}
    try:
        for sweep in range(1, args.sweeps + 1):
            threads = 1 + sweep % 2
            sweeps.n_threads = threads
            start = time.perf_counter()
            sweeps.step(sweep)
            if sweep > 4:
                times[threads].append(time.perf_counter() - start)
                kernel[threads].append(kernel_calls[-1])
    finally:
        _bayes.gibbs_sweep = original
    print(f"{args.set}: {len(data):,} ratings, k={args.k}, load average {os.getloadavg()[0]:.2f}")
    for t in (1, 2):
        step, kern = np.median(times[t]), np.median(kernel[t])
        print(f"  {t} thread(s): {step * 1e3:7.1f} ms a sweep ({len(data) / step / 1e6:5.1f}M "
              f"ratings/s), kernel {kern * 1e3:7.1f} ms, outside it {(step - kern) * 1e3:5.1f} ms")
    print(f"  1 -> 2 threads: {np.median(times[1]) / np.median(times[2]):.2f}x "
          f"(kernel alone {np.median(kernel[1]) / np.median(kernel[2]):.2f}x)")


if __name__ == "__main__":
    main()
