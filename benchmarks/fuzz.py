"""The long fuzzing run of ``read_ratings`` and ``mfcore.load`` (the suite runs a few hundred).

    python benchmarks/fuzz.py [--examples 20000] [--target ratings|parquet|models|all] [--seed N]

Feeds that many mutated rating files (every text layout, compressed ones too), as many
Parquet files (random column types, some with mutated bytes; needs pyarrow) and as many
mutated model files through the checks of ``tests/fuzz_harness.py`` and prints how many
inputs were tried and what became of them (read or loaded, or refused with the documented
error). Exit code 1 on a finding: an undocumented exception or a wrong result, printed
with the smallest input Hypothesis shrank it to.
"""
import argparse
import collections
import os
import sys
import tempfile
import time
import traceback

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
    for exc in getattr(finding, "exceptions", [finding] if finding is not None else []):
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"  FINDING: {type(exc).__name__} at {os.path.basename(where.filename)}:"
              f"{where.lineno} ({where.line}): {str(exc)[:1500]}")
        for note in getattr(exc, "__notes__", []):
            print("  " + note[:1500])
    return finding is None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="inputs per target")
    parser.add_argument("--target", choices=("ratings", "parquet", "models", "all"), default="all")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default random)")
    args = parser.parse_args(argv)
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        if args.target in ("ratings", "all"):
            ok &= run("read_ratings", fz.rating_files(),
                      lambda case: fz.check_rating_file(folder, *case),
                      args.examples, args.seed)
        if args.target in ("parquet", "all"):
            ok &= run("read_ratings (Parquet)", fz.parquet_files(),
                      lambda case: fz.check_parquet_file(folder, *case),
                      args.examples, args.seed)
        if args.target in ("models", "all"):
            saved = fz.saved_models(folder)
            ok &= run("mfcore.load", fz.model_files(saved),
                      lambda case: fz.check_model_file(folder, case[0], case[1]),
                      args.examples, args.seed)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
