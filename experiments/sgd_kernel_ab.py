"""A/B of two versions of the SGD block kernel, epochs alternated in one process (issue 25).

On a shared, loaded machine two separate runs differ by more than a kernel change does.
Here the kernel headers of two folders (e.g. a copy of ``mfcore/_kernels`` from main and
one from a branch) are each compiled with ``DRIVER`` into a small shared library, and
one process trains the same data with both, epoch by epoch in alternating order, timing
each epoch in CPU time (thread time with one thread), so that time the process spends
descheduled does not count. It prints each version's median updates/s, B's speed-up over
A (the median over epochs of A's time / B's), and whether both ended with bit-identical parameters (they
start equal and see the same epochs).

    git worktree add /tmp/base main   # A: main's kernels; B: this checkout's
    PYTHONPATH=. python experiments/sgd_kernel_ab.py /tmp/base/mfcore/_kernels \
        mfcore/_kernels 32,64,128 [threads] [epochs]

``OFFSETS=16,0`` places A's factor arrays 16 bytes past a cache line and B's on one (the
default, ``0,0``, both on one); ``SHAPE`` picks the synthetic set (default ml-1m);
``PATH_SIMD`` the kernel path (avx2; baseline, avx512). float32, the default settings.
"""
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from mfcore.estimators.sgd import SGDTrainer

#: The SGD block epoch of one kernel version, exported for ctypes: compiled against a folder
#: of kernel headers (gcc -I folder). float32, global mean 0.
DRIVER = """#include "sgd_simd.h"
static int cell;
double ab_epoch_f32(const void *rec, const int64_t *block_ptr, const int32_t *schedule, int grid,
                    uint64_t seed, int32_t *scratch, int64_t max_runs, float *P, float *Q,
                    float *bu, float *bi, int64_t k, float lr, float reg, float regb,
                    double *block_sse, int n_threads, int path)
{
    cell = path;
    mf_bind_path(&cell);
    return mf_sgd_epoch_f32((const mf_rec32 *)rec, block_ptr, schedule, grid, seed, 1, scratch,
                            max_runs, P, Q, bu, bi, k, 0.0f, lr, reg, regb, block_sse, n_threads);
}
"""


def build(folder):
    """Compile ``DRIVER`` against the headers in ``folder`` (in a temporary folder, not the
    headers' own); return the library."""
    out = tempfile.mkdtemp(prefix="mfcore-ab-")
    source, so = os.path.join(out, "driver.c"), os.path.join(out, "driver.so")
    with open(source, "w") as fh:
        fh.write(DRIVER)
    subprocess.run(["gcc", "-O3", "-g0", "-fopenmp", "-fPIC", "-shared", "-Wno-psabi",
                    "-I", os.path.abspath(folder), "-o", so, source], check=True)
    lib = ctypes.CDLL(so)
    lib.ab_epoch_f32.restype = ctypes.c_double
    return lib


def load(shape):
    path = os.path.join(tempfile.gettempdir(), f"mfcore-ab-{shape}.npz")
    if not os.path.exists(path):
        import mfcore
        d = mfcore.datasets.synthetic(shape, seed=0)
        np.savez(path, u=d.user.to_numpy() - 1, i=d.item.to_numpy() - 1, r=d.rating.to_numpy())
    z = np.load(path)
    r = z["r"]
    return z["u"].astype(np.int32), z["i"].astype(np.int32), ((r - r.mean()) / r.std()).astype(
        np.float32)


def placed(a, offset):
    """A copy of ``a`` whose data starts ``offset`` bytes past a 64-byte line."""
    buf = np.empty(a.nbytes + 128, np.uint8)
    start = -buf.ctypes.data % 64 + offset
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def main():
    folders, ks = sys.argv[1:3], [int(x) for x in sys.argv[3].split(",")]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    epochs = int(sys.argv[5]) if len(sys.argv) > 5 else 16
    path = {"baseline": 0, "avx2": 1, "avx512": 2}[os.environ.get("PATH_SIMD", "avx2")]
    offsets = [int(x) for x in os.environ.get("OFFSETS", "0,0").split(",")]
    shape = os.environ.get("SHAPE", "ml-1m")
    libs = [build(f) for f in folders]
    u, i, r = load(shape)
    tr = SGDTrainer(u, i, r, threads)
    clock = time.thread_time if threads == 1 else time.process_time
    print(f"{shape}: {len(r)} ratings, grid {tr.grid}, {threads} thread(s), path {path}, "
          f"load {os.getloadavg()[0]:.2f}; A={folders[0]} B={folders[1]}")
    rng = np.random.default_rng(0)
    for k in ks:
        P0 = (rng.standard_normal((tr.n_users, k)) * 0.1).astype(np.float32)
        Q0 = (rng.standard_normal((tr.n_items, k)) * 0.1).astype(np.float32)
        states = [[placed(P0, off), placed(Q0, off), np.zeros(tr.n_users, np.float32),
                   np.zeros(tr.n_items, np.float32)] for off in offsets]
        times = [[], []]
        for e in range(epochs):
            rounds = tr.schedule(np.random.default_rng(e))
            for j in ((0, 1) if e % 2 == 0 else (1, 0)):
                P, Q, bu, bi = states[j]
                start = clock()
                libs[j].ab_epoch_f32(ptr(tr._record_bytes), ptr(tr.block_ptr), ptr(rounds),
                                     tr.grid, ctypes.c_uint64(1000 + e), ptr(tr._scratch),
                                     ctypes.c_int64(len(tr._scratch) // threads), ptr(P),
                                     ptr(Q), ptr(bu), ptr(bi), ctypes.c_int64(k),
                                     ctypes.c_float(0.01), ctypes.c_float(0.05),
                                     ctypes.c_float(0.05), ptr(tr._block_sse), threads, path)
                times[j].append(clock() - start)
        same = all(np.array_equal(a, b) for a, b in zip(*states))
        a, b = (len(r) / statistics.median(t) / 1e6 for t in times)
        ratio = statistics.median(x / y for x, y in zip(*times))
        print(f"k={k:4d}: A {a:6.1f}  B {b:6.1f} M updates/s (CPU time, median of {epochs} "
              f"epochs)  B/A {ratio:.3f}  bit-identical {same}", flush=True)


if __name__ == "__main__":
    main()
