"""Peak memory per rating of a local fit (SGD, ALS), with LIBMF beside it: issue 22's figure.

Each fit runs in a fresh process under ``/usr/bin/time -v``; its "Maximum resident set
size" is the peak. For each synthetic shape (``mfcore.datasets.synthetic``):

* ``input``: a process that imports mfcore and loads the ratings as the three arrays a
  fit takes (int32 users, int32 items, float32 ratings: 12 B a rating), and does not fit;
* ``SGD`` and ``ALS``: the same, then a fit (k, a few epochs, 2 threads);
* ``SGD from file`` and ``ALS from file``: a process that holds nothing but the fit, from
  the ratings' text file (``mfcore.RatingChunks``: the ratings go from the file into the
  training layout, a chunk at a time; the user guide's "Data larger than memory");
* ``LIBMF``: ``mf-train`` on the same text file (``$LIBMF_TRAIN`` or ``mf-train`` on
  PATH; skipped with the reason otherwise), same k and iterations.

Printed per row: the peak in MB (MiB), the peak per rating, the fit's own part, (peak -
the input process's peak) per rating: what training adds to data already in memory, and
the process's wall seconds (reading and laying out included; on a shared machine, load
dependent).

Where the bytes of a fit from a file go (n ratings, U users, I items, k factors, float32;
synthetic ML-10M: n = 10,000,054, U = 69,878, I = 10,677, k = 32):

* Python, NumPy and mfcore's kernels (RSS after ``import mfcore``): 38 MiB either way;
* the layout: SGD's records (u, i, r), 12 n (114.4 MiB); ALS's two CSR sides, 4 n columns
  + 1 n rating codes each (4 n values above 256 distinct ratings) and 8 (U + I) offsets
  (95.4 MiB);
* the seen items, 4 n + 8 U (38.7 MiB): built after training, when the layout is gone,
  so not at the peak;
* the factors and biases, 4 (U + I)(k + 1): twice for SGD (the model's, and the copy the
  kernel trains on cache lines: 20.3 MiB), once for ALS (10.1 MiB);
* the id maps and counts, about 32 (U + I): 2.5 MiB;
* a chunk: the parser's arrays (28 B a rating), row ids and 1 MiB of text (65,536
  ratings), plus for ALS a block of the training error (12 B x 262,144): 5-15 MiB, and
  what the heap keeps of them.

A fit from arrays holds the caller's arrays (12 n) and, while it lays them out, sort keys
and permutations besides. One run (k=32, 3 epochs or iterations, 2 threads, load 8-10: the
wall seconds are the load's, not the code's):

| shape | process | peak MB | peak B/rating | fit's own B/rating |
|---|---|---|---|---|
| ml-10m (10,000,054 ratings) | input | 153 | 16.0 |  |
| ml-10m | SGD | 477 | 50.1 | 34.0 |
| ml-10m | ALS | 523 | 54.9 | 38.8 |
| ml-10m | SGD from file | 183 | 19.2 |  |
| ml-10m | ALS from file | 160 | 16.8 |  |
| ml-10m | LIBMF | 130 | 13.6 |  |
| ml-20m (20,000,263 ratings) | input | 268 | 14.0 |  |
| ml-20m | SGD | 911 | 47.8 | 33.8 |
| ml-20m | ALS | 1,006 | 52.7 | 38.7 |
| ml-20m | SGD from file | 324 | 17.0 |  |
| ml-20m | ALS from file | 270 | 14.2 |  |
| ml-20m | LIBMF | 256 | 13.4 |  |

    PYTHONPATH=. python benchmarks/memory_per_rating.py [--shapes ml-10m,ml-20m] [--k 32]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import mfcore

CHILD = """
import sys, numpy as np, mfcore
folder, algorithm, k, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
estimator = {"SGD": lambda: mfcore.SGD(k=k, epochs=epochs, n_threads=2, seed=0),
             "ALS": lambda: mfcore.ALS(k=k, iterations=epochs, n_threads=2, seed=0)}
if algorithm.endswith(" from file"):
    estimator[algorithm.split()[0]]().fit(mfcore.RatingChunks(f"{folder}/train.txt"))
else:
    users, items, ratings = (np.load(f"{folder}/{name}.npy") for name in ("users", "items", "ratings"))
    if algorithm in estimator:
        estimator[algorithm]().fit(users, items, ratings)
"""
#: the processes measured, in order ("input" loads the arrays and stops)
PROCESSES = ("input", "SGD", "ALS", "SGD from file", "ALS from file")


def peak_mb(command, env=None):
    """(peak resident set size of ``command`` in MB, its wall seconds), from GNU time's
    'Maximum resident set size' and 'Elapsed (wall clock) time'."""
    result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True,
                            env=env, check=True)
    kbytes = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", result.stderr)
    seconds = sum(float(part) * 60 ** n for n, part in enumerate(reversed(wall.group(1).split(":"))))
    return int(kbytes) / 1024, seconds


def write_shape(shape, folder):
    """The shape's ratings as .npy arrays and as a text file (read by the streamed fits and
    LIBMF); returns their count."""
    data = mfcore.datasets.synthetic(shape, seed=0)
    arrays = {"users": data.user.to_numpy(np.int32), "items": data.item.to_numpy(np.int32),
              "ratings": data.rating.to_numpy(np.float32)}
    for name, values in arrays.items():
        np.save(os.path.join(folder, f"{name}.npy"), values)
    with open(os.path.join(folder, "train.txt"), "w") as fh:  # (tabs: LIBMF reads them too)
        for start in range(0, len(data), 1 << 20):
            part = slice(start, start + (1 << 20))
            np.savetxt(fh, np.c_[arrays["users"][part], arrays["items"][part],
                                 arrays["ratings"][part]], fmt="%d\t%d\t%g")
    return len(data)


def libmf():
    return os.environ.get("LIBMF_TRAIN") or shutil.which("mf-train")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="ml-10m,ml-20m")
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args(argv)
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    print(f"k={args.k}, {args.epochs} epochs/iterations, 2 threads; load {os.getloadavg()[0]:.1f}")
    print("| shape | process | peak MB | peak B/rating | fit's own B/rating | wall s |")
    print("|---|---|---|---|---|---|")
    for shape in args.shapes.split(","):
        with tempfile.TemporaryDirectory() as folder:
            n = write_shape(shape, folder)
            rows = {}
            for algorithm in PROCESSES:
                rows[algorithm] = peak_mb([sys.executable, "-c", CHILD, folder, algorithm,
                                           str(args.k), str(args.epochs)], env)
            if libmf():
                rows["LIBMF"] = peak_mb([libmf(), "-k", str(args.k), "-t", str(args.epochs),
                                         "-s", "2", "--quiet", os.path.join(folder, "train.txt"),
                                         os.path.join(folder, "model")], env)
            else:
                print(f"| {shape} | LIBMF | skipped: mf-train is not on PATH (set LIBMF_TRAIN) | | | |")
            for name, (mb, seconds) in rows.items():
                own = ("" if name in ("input", "LIBMF") or name.endswith("file")
                       else f"{(mb - rows['input'][0]) * 2**20 / n:.1f}")
                print(f"| {shape} ({n:,} ratings) | {name} | {mb:,.0f} | {mb * 2**20 / n:.1f} | "
                      f"{own} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
