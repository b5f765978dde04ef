"""Seconds per sweep of BayesianMF with and without implicit terms (and, with --myfm, of
myFM's relation-block model of the same features), at the same k, in one run.

Each configuration is fitted ``--rounds`` times, the rounds interleaved (plain, implicit,
plain, ...) so that a change of load hits both alike; the medians of wall seconds and of
CPU seconds (all threads of this process) per sweep are printed with the ratio implicit /
plain. On a shared machine the CPU seconds of a 1-thread fit are the steadier figure;
2-thread wall times need an otherwise idle machine. Data: ML-100K u1.base and the ML-1M
notebook split's training part.

Run (mfcore built in place; myFM in the environment for --myfm):
    OMP_WAIT_POLICY=passive MFCORE_DATA=/path/to/data PYTHONPATH=.:benchmarks \\
        python benchmarks/bayes_implicit_speed.py [--sets ml100k,ml1m] [--ks 10,32]
        [--threads 1,2] [--sweeps 30] [--rounds 3] [--myfm]
"""
import argparse
import os
import time

import numpy as np

import mfcore

from bayes_implicit_compare import load_fold, load_ml1m, run_myfm
from bayes_compare import import_myfm


def per_sweep(train, k, sweeps, n_threads, implicit):
    """(wall, cpu) seconds per sweep of one fit of ``sweeps`` sweeps (a fifth burn-in)."""
    burn_in = sweeps // 5
    model = mfcore.BayesianMF(k=k, n_samples=sweeps - burn_in, burn_in=burn_in,
                              n_threads=n_threads, implicit=implicit)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(train[:, 0], train[:, 1], train[:, 2])
    return (time.perf_counter() - wall) / sweeps, (time.process_time() - cpu) / sweeps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="ml100k,ml1m")
    ap.add_argument("--ks", default="10,32")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--sweeps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--myfm", action="store_true")
    args = ap.parse_args(argv)
    root = os.environ.get("MFCORE_DATA", "/work/shared/data")
    myfm = import_myfm() if args.myfm else None
    print(f"load average {os.getloadavg()}; {args.sweeps} sweeps a fit, {args.rounds} rounds; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}", flush=True)
    print(f"{'data':7} {'k':>3} {'threads':>7} {'plain ms':>9} {'implicit ms':>11} "
          f"{'ratio':>6} {'plain cpu':>9} {'impl cpu':>9} {'ratio':>6} {'myFM ms':>8}")
    for name in args.sets.split(","):
        train = load_fold(root, 1)[0] if name == "ml100k" else load_ml1m(root)[0]
        for k in (int(x) for x in args.ks.split(",")):
            fm_ms = np.nan
            if myfm is not None:
                fm_ms = run_myfm(myfm, train, [train[:10]], k, args.sweeps,
                                 args.sweeps // 5, 0)[1]
            for t in (int(x) for x in args.threads.split(",")):
                got = {False: [], True: []}
                for _ in range(args.rounds):
                    for implicit in (False, True):
                        got[implicit].append(per_sweep(train, k, args.sweeps, t, implicit))
                (pw, pc), (iw, ic) = (np.median(np.array(got[x]), axis=0) for x in (False, True))
                print(f"{name:7} {k:3d} {t:7d} {1e3 * pw:9.1f} {1e3 * iw:11.1f} {iw / pw:6.2f} "
                      f"{1e3 * pc:9.1f} {1e3 * ic:9.1f} {ic / pc:6.2f} {fm_ms:8.1f}", flush=True)


if __name__ == "__main__":
    main()
