"""Combine several benchmark runs into one table: medians across runs, ratios within runs.

    pytest benchmarks --benchmark-json=run1.json    (repeat: run2.json, run3.json)
    python benchmarks/compare.py run1.json run2.json run3.json

For each (data, k, implementation, threads) row: the median and range of the
runs' updates per second, the held-out RMSE, and the speed ratio mfcore 2
threads / row taken within each run (then the median of those ratios), so that
machine noise between runs does not enter the ratios.
"""
import json
import statistics
import sys


def rows(path):
    with open(path) as fh:
        data = json.load(fh)
    out = {}
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        if info.get("table") == "throughput":
            key = (info["preset"], info["k"], info["impl"], info["threads"])
            out[key] = info
    return out


def main(paths):
    runs = [rows(p) for p in paths]
    keys = sorted({key for run in runs for key in run},
                  key=lambda k: (k[0], k[1], k[2] != "mfcore", k[2], k[3]))
    print(f"{len(paths)} run(s); million updates/s per epoch: median [min-max] over runs")
    print(f"{'data':8} {'k':>4} {'implementation':28} {'thr':>3} {'median':>8} "
          f"{'range':>15} {'RMSE':>7} {'mfcore 2T / row':>16}")
    for key in keys:
        ups = [run[key]["updates_per_sec"] / 1e6 for run in runs if key in run]
        rmse = [run[key]["rmse"] for run in runs if key in run]
        ref = (key[0], key[1], "mfcore", 2)
        ratios = [run[ref]["updates_per_sec"] / run[key]["updates_per_sec"]
                  for run in runs if key in run and ref in run]
        if key[2] == "mfcore" and key[3] == 2:
            one = (key[0], key[1], "mfcore", 1)
            ratios = [run[key]["updates_per_sec"] / run[one]["updates_per_sec"]
                      for run in runs if key in run and one in run]
            ratio = f"{statistics.median(ratios):6.2f}x vs 1T" if ratios else ""
        else:
            ratio = f"{statistics.median(ratios):9.1f}x" if ratios and key[2] != "mfcore" else ""
        print(f"{key[0]:8} {key[1]:4d} {key[2]:28} {key[3]:3d} {statistics.median(ups):8.2f} "
              f"[{min(ups):6.2f}-{max(ups):6.2f}] {statistics.median(rmse):7.4f} {ratio:>16}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
