"""Settings and the result rows shared by the benchmark modules and conftest.

Settings (environment variables):
  MFCORE_BENCH_EPOCHS   epochs of every fit (default 10)
  MFCORE_BENCH_ROUNDS   repeated fits of mfcore for the median (default 3)
  MFCORE_BENCH_PRESETS  data sets of the throughput rows (default "ml-1m,ml-10m")
  MFCORE_BENCH_PEERS    data sets on which the peers also run (default "ml-1m")
  MFCORE_BENCH_SCALING  data sets of the size-scaling rows (default "ml-1m,ml-10m,ml-20m")
"""
import os
import platform

import numpy as np


def setting(name, default):
    return os.environ.get(f"MFCORE_BENCH_{name}", default)


EPOCHS = int(setting("EPOCHS", "10"))
ROUNDS = int(setting("ROUNDS", "3"))
PRESETS = setting("PRESETS", "ml-1m,ml-10m").split(",")
PEER_PRESETS = setting("PEERS", "ml-1m").split(",")
SCALING = setting("SCALING", "ml-1m,ml-10m,ml-20m").split(",")
KS = (16, 32, 64, 128)
# every implementation trains with these (one reg for biases and factors, as the peers have)
HYPER = {"lr": 0.01, "reg": 0.08, "init_std": 0.05}

#: rows of the final table, filled by the benchmarks: dicts with keys
#: table, preset, k, impl, threads, updates_per_sec, rmse, seconds, note
ROWS = []


def record(benchmark, **row):
    """Keep a result for the summary table and in the benchmark's JSON (extra_info)."""
    ROWS.append(row)
    if benchmark is not None:
        benchmark.extra_info.update({key: value for key, value in row.items()
                                     if isinstance(value, (int, float, str))})


def median_updates(seconds, n):
    """Median over epochs of ratings per second."""
    return float(np.median([n / s for s in seconds]))


def cpu_model():
    """The CPU's model name (for the benchmark headers)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
