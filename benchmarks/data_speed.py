"""Data-workflow speed figures (a script, not part of the pytest runs).

    python benchmarks/data_speed.py [rounds]

1. Read speed: ``mfcore.read_ratings`` on a 1,000,000-line MovieLens ``::``
   file against pandas' C engine reading the same data as plain CSV (files
   written once under $TMPDIR/mfcore-readbench, never in the repository).
   Rounds are interleaved and the ratio is the median of per-round ratios,
   since the machine may be shared.
2. Generator speed: ``mfcore.datasets.synthetic("ml-20m")``, wall time and
   the process's peak resident memory next to the output size.
"""
import os
import resource
import statistics
import sys
import tempfile
import time

import numpy as np
import pandas as pd

import mfcore
from mfcore import datasets


def read_speed(rounds):
    folder = os.path.join(tempfile.gettempdir(), "mfcore-readbench")
    os.makedirs(folder, exist_ok=True)
    dat, csv = os.path.join(folder, "ratings.dat"), os.path.join(folder, "ratings.csv")
    if not (os.path.exists(dat) and os.path.exists(csv)):
        df = datasets.synthetic(n_users=6040, n_items=3706, n_ratings=1_000_000, seed=0)
        stamps = 956703932 + np.random.default_rng(0).integers(0, 10**8, len(df))
        lines = [f"{u}::{i}::{int(r)}::{t}\n"
                 for u, i, r, t in zip(df["user"], df["item"], df["rating"], stamps)]
        with open(dat, "w") as fh:
            fh.writelines(lines)
        with open(csv, "w") as fh:
            fh.writelines(line.replace("::", ",") for line in lines)
    names = ["user", "item", "rating", "timestamp"]
    runs = {
        "pandas C engine, plain CSV": lambda: pd.read_csv(csv, header=None, names=names),
        "mfcore.read_ratings, '::' file": lambda: mfcore.read_ratings(dat),
        "mfcore.read_ratings, CSV file": lambda: mfcore.read_ratings(csv),
    }
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    base = times["pandas C engine, plain CSV"]
    for name, values in times.items():
        ratio = statistics.median(a / b for a, b in zip(values, base))
        print(f"{name:32s} median {statistics.median(values):.3f} s   ratio {ratio:.2f}")
    start = time.perf_counter()
    pd.read_csv(dat, sep="::", header=None, names=names, engine="python")
    print(f"{'pandas Python engine, sep=::':32s} once   {time.perf_counter() - start:.3f} s")


def generator_speed(rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        frame = datasets.synthetic("ml-20m", seed=0)
        times.append(time.perf_counter() - start)
        size = frame.memory_usage().sum()
        del frame
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"synthetic('ml-20m'): median {statistics.median(times):.2f} s over {rounds} runs; "
          f"output {size / 2**20:.0f} MiB; peak RSS of this process {peak:.0f} MiB")


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    generator_speed(3)   # first, so the peak RSS is the generator's
    read_speed(rounds)
