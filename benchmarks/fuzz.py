"""The long fuzzing run of the readers, ``mfcore.load`` and the command line (the suite
runs a few hundred examples).

    python benchmarks/fuzz.py [--examples 20000] [--target ratings,models,...|all] [--seed N]

Feeds that many inputs per target through the checks of ``tests/fuzz_harness.py``:

* ``ratings``: mutated rating files, every text layout (``::``, tab, comma, ``;``,
  whitespace; header or not), plain or gz/bz2/xz/zip (zip members of every method);
* ``parquet``: Parquet files of random column types, some with mutated bytes (pyarrow);
* ``models``: saved models with bytes flipped, members replaced (deep JSON too),
  dropped, added or compressed, re-signed or not; each load's wall time and peak
  allocation (tracemalloc) are measured, and the largest reported;
* ``ids``: string ids (zero-padded, exponents, Unicode digits...) through read, fit,
  save, load, predict and ``mfcore predict``'s CSV, byte for byte;
* ``cli``: command lines with hostile option values (every option of every command
  but ``demo``): exit code 0, 1 or 2 with a one-line error, never a traceback or a hang.

Prints how many inputs were tried and what became of them. Exit code 1 on a finding (an
undocumented exception or a wrong result), printed with the smallest input Hypothesis
shrank it to.
"""
import argparse
import collections
import os
import sys
import tempfile
import time
import traceback
import tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from hypothesis import given, seed as hypothesis_seed

import fuzz_harness as fz


def run(name, strategy, check, examples, seed):
    outcomes = collections.Counter()

    @fz.fuzz_settings(examples, derandomize=False)
    @given(strategy)
    def fuzz(case):
        outcomes[check(case)] += 1

    if seed is not None:
        fuzz = hypothesis_seed(seed)(fuzz)
    start = time.perf_counter()
    try:
        fuzz()
        finding = None
    except Exception as exc:  # a finding: report it, do not hide it in a traceback
        finding = exc
    seconds = time.perf_counter() - start
    tried = sum(outcomes.values())
    print(f"{name}: {tried:,} inputs in {seconds:.1f} s: "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())))
    if isinstance(check, Measured):
        print(f"  slowest {check.seconds * 1e3:.1f} ms, largest peak allocation "
              f"{check.peak / 2**20:.2f} MiB (load, predict and recommend)")
    for exc in getattr(finding, "exceptions", [finding] if finding is not None else []):
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"  FINDING: {type(exc).__name__} at {os.path.basename(where.filename)}:"
              f"{where.lineno} ({where.line}): {str(exc)[:1500]}")
        for note in getattr(exc, "__notes__", []):
            print("  " + note[:1500])
    return finding is None


class Measured:
    """``check`` with each call's wall time and peak allocation (tracemalloc) kept: the
    largest are printed at the end."""

    def __init__(self, check):
        self.check, self.seconds, self.peak = check, 0.0, 0

    def __call__(self, case):
        tracemalloc.start()
        start = time.perf_counter()
        try:
            return self.check(case)
        finally:
            self.seconds = max(self.seconds, time.perf_counter() - start)
            self.peak = max(self.peak, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()


def _models(folder):
    measured = Measured(lambda case: fz.check_model_file(folder, case[0], case[1]))
    return "mfcore.load", fz.model_files(fz.saved_models(folder)), measured


def _cli(folder):
    files = fz.cli_files(folder)
    return ("mfcore (command line)", fz.command_lines(fz.cli_options(), files),
            fz.check_command_line)


TARGETS = {
    "ratings": lambda folder: ("read_ratings", fz.rating_files(),
                               lambda case: fz.check_rating_file(folder, *case)),
    "parquet": lambda folder: ("read_ratings (Parquet)", fz.parquet_files(),
                               lambda case: fz.check_parquet_file(folder, *case)),
    "models": _models,
    "ids": lambda folder: ("string ids, read to CLI output", fz.string_id_files(),
                           lambda case: fz.check_string_ids(folder, *case)),
    "cli": _cli,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="inputs per target")
    parser.add_argument("--target", default="all",
                        help=f"comma-separated, from {', '.join(TARGETS)}, or all")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default random)")
    args = parser.parse_args(argv)
    targets = TARGETS if args.target == "all" else args.target.split(",")
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown target(s) {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        for target in targets:
            name, strategy, check = TARGETS[target](folder)
            ok &= run(name, strategy, check, args.examples, args.seed)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
