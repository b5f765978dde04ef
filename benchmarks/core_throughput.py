"""Updates per second of Model.fit at k = 20, 64, 128 with 1 and 2 threads (a quick check).

Run: PYTHONPATH=. python benchmarks/core_throughput.py   (an in-place build; or installed)
Synthetic ML-1M-shaped data, 90/10 split, default hyperparameters but k, 10 epochs;
the median epoch of each fit, median of 3 fits. The full suite is `pytest benchmarks`.
"""
import statistics
import time

import mfcore
from mfcore.split import train_test_split
d = mfcore.datasets.synthetic("ml-1m", seed=0)
tr, te = train_test_split(d, 0.1, seed=0)
for k in (20, 64, 128):
    for t in (1, 2):
        runs = []
        for _rep in range(3):
            start = time.perf_counter()
            m = mfcore.Model(k=k, epochs=10, n_threads=t).fit(tr.user, tr.item, tr.rating)
            fit = time.perf_counter() - start
            runs.append((statistics.median(h["updates_per_sec"] for h in m.history_), fit))
        ups, fit = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"k={k:3d} threads={t}: {ups/1e6:6.1f} M updates/s (median epoch, median of 3 fits); "
              f"10-epoch fit {fit:.2f} s; held-out RMSE {m.evaluate(te.user, te.item, te.rating)['rmse']:.4f}")
