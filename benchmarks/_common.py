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


class OtherLoad:
    """The share of the machine's CPU time that other processes took while the block ran
    (0: this process had the machine to itself; 0.5 on 2 CPUs: one CPU busy elsewhere),
    from /proc/stat less this process's own CPU time; None where /proc/stat is missing.
    Load averages lag and count this process too; this is what a thread-scaling figure
    needs beside it.

        with OtherLoad() as other:
            run()
        print(other)        # "others 3% of the CPUs"
    """

    def __enter__(self):
        self.share, self.start = None, self._now()
        return self

    def __exit__(self, *exc):
        end = self._now()
        if self.start is not None and end is not None:
            busy, own, wall = (b - a for a, b in zip(self.start, end))
            self.share = max(busy - own, 0.0) / max(wall * (os.cpu_count() or 1), 1e-9)
        return False

    @staticmethod
    def _now():
        try:
            with open("/proc/stat") as fh:
                fields = [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        busy = (sum(fields[:3]) + sum(fields[5:8])) / ticks  # user nice system irq softirq steal
        t = os.times()
        return busy, t.user + t.system, t.elapsed

    def __str__(self):
        return "others ?" if self.share is None else f"others {self.share:.0%} of the CPUs"
