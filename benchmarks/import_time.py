"""Seconds that ``import mfcore`` takes in a fresh interpreter, and numpy's share of them.

Runs ``python -X importtime -c "import mfcore"`` several times in fresh processes and
prints the median total and the median of mfcore's own part (the total less numpy's
cumulative time). Byte-code caching is switched on for the children: an environment
with ``PYTHONDONTWRITEBYTECODE=1`` (this sandbox sets it) otherwise compiles every
module at every import and measures the compiler, not the import; a pip install
writes the byte code at install time, so users never pay it.

    PYTHONPATH=. python benchmarks/import_time.py [--repeats 15]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys


def one_import(env):
    """(total, numpy) microseconds of one ``import mfcore`` in a fresh interpreter."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import mfcore"], env=env,
                         capture_output=True, text=True, check=True).stderr
    cumulative = {m.group(2).strip(): int(m.group(1))
                  for m in re.finditer(r"^import time:\s+\d+ \|\s+(\d+) \|(.*)$", err, re.M)}
    return cumulative["mfcore"], cumulative.get("numpy", 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    one_import(env)   # writes the byte code
    runs = [one_import(env) for _ in range(args.repeats)]
    total = statistics.median(t for t, _ in runs) / 1e6
    own = statistics.median(t - n for t, n in runs) / 1e6
    print(f"import mfcore: median {total:.3f} s over {args.repeats} fresh interpreters "
          f"(numpy's import included), mfcore's own part {own:.3f} s; "
          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
