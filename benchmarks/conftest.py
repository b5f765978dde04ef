"""Benchmark settings and the comparison table printed at the end of the run.

The settings are in ``_common.py``.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # the benchmarks' own helper modules

from _common import EPOCHS, HYPER, ROUNDS, ROWS, cpu_model


def _mups(x):
    return f"{x / 1e6:8.2f}" if x else "       -"


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    import mfcore
    write = terminalreporter.write_line
    write("")
    write(f"mfcore benchmark: {cpu_model()}, {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; epochs={EPOCHS}, "
          f"rounds={ROUNDS}; {HYPER}")
    config = mfcore.show_config(file=open(os.devnull, "w"))
    write(f"SIMD path {config['simd_path']} (supported {config['simd_supported']}), "
          f"OpenMP {config['openmp']}")

    through = [r for r in ROWS if r["table"] == "throughput"]
    if through:
        write("")
        write("Throughput: million rating updates per second per epoch (median), held-out RMSE")
        write(f"{'data':8} {'k':>4} {'implementation':28} {'thr':>3} {'Mupd/s':>8} "
              f"{'RMSE':>7} {'vs mfcore 2T':>13}")
        for key in sorted({(r["preset"], r["k"]) for r in through}):
            group = [r for r in through if (r["preset"], r["k"]) == key]
            best = next((r["updates_per_sec"] for r in group
                         if r["impl"] == "mfcore" and r["threads"] == 2), None)
            for r in group:
                ratio = (f"{best / r['updates_per_sec']:12.1f}x"
                         if best and r["updates_per_sec"] and r["impl"] != "mfcore" else "")
                if r["impl"] == "mfcore" and r["threads"] == 2:
                    one = next((o["updates_per_sec"] for o in group
                                if o["impl"] == "mfcore" and o["threads"] == 1), None)
                    ratio = f"{r['updates_per_sec'] / one:9.2f}x 1T" if one else ""
                rmse = f"{r['rmse']:7.4f}" if r.get("rmse") is not None else "      -"
                write(f"{key[0]:8} {key[1]:4d} {r['impl']:28} {r['threads']:3d} "
                      f"{_mups(r['updates_per_sec'])} {rmse} {ratio:>13} {r.get('note', '')}")

    scaling = [r for r in ROWS if r["table"] == "scaling"]
    if scaling:
        write("")
        write("Epoch time against data size (mfcore, k=32, 2 threads; median of rounds)")
        base = scaling[0]
        for r in scaling:
            per = r["seconds"] / r["n"] * 1e9
            write(f"{r['preset']:8} {r['n']:>11,d} ratings  {r['seconds']:7.3f} s/epoch  "
                  f"{per:6.2f} ns/rating ({per / (base['seconds'] / base['n'] * 1e9):.2f}x "
                  f"{base['preset']}'s)")

    other = [r for r in ROWS if r["table"] == "other"]
    if other:
        write("")
        write("Prediction, evaluation, id mapping and memory")
        for r in other:
            write(f"  {r['what']:58} {r['value']}")
    write("")


@pytest.fixture(scope="session")
def hyper():
    return dict(HYPER)
