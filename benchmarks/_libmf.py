"""LIBMF's training iterations timed on in-memory ratings, through its C API (ctypes).

LIBMF (https://github.com/cjlin1/libmf) is not a Python package: build its shared
library (``make lib``; link it with ``-fopenmp`` if the build used ``-DUSEOMP``) and
name it in ``$LIBMF_LIB``. ``iteration_seconds`` calls ``mf_train`` on the same
problem with ``n`` and ``2 n`` iterations and returns the difference divided by
``n``: LIBMF's seconds per iteration without its setup (copying, shuffling,
scaling and gridding the ratings, initializing the model, starting its threads),
which its API cannot time apart. Timing the ``mf-train`` program instead would
add process start-up and parsing a text file.

    LIBMF_LIB=/path/to/libmf.so.2 python benchmarks/_libmf.py   # a smoke run
"""
import ctypes
import os
import time

import numpy as np

#: mf_node: one rating, 0-based row and column
NODE = np.dtype([("u", "<i4"), ("v", "<i4"), ("r", "<f4")])


class _Problem(ctypes.Structure):
    _fields_ = [("m", ctypes.c_int), ("n", ctypes.c_int), ("nnz", ctypes.c_longlong),
                ("R", ctypes.c_void_p)]


class _Parameter(ctypes.Structure):
    _fields_ = [("fun", ctypes.c_int), ("k", ctypes.c_int), ("nr_threads", ctypes.c_int),
                ("nr_bins", ctypes.c_int), ("nr_iters", ctypes.c_int),
                ("lambda_p1", ctypes.c_float), ("lambda_p2", ctypes.c_float),
                ("lambda_q1", ctypes.c_float), ("lambda_q2", ctypes.c_float),
                ("eta", ctypes.c_float), ("alpha", ctypes.c_float), ("c", ctypes.c_float),
                ("do_nmf", ctypes.c_bool), ("quiet", ctypes.c_bool),
                ("copy_data", ctypes.c_bool)]


class _Model(ctypes.Structure):
    _fields_ = [("fun", ctypes.c_int), ("m", ctypes.c_int), ("n", ctypes.c_int),
                ("k", ctypes.c_int), ("b", ctypes.c_float),
                ("P", ctypes.POINTER(ctypes.c_float)), ("Q", ctypes.POINTER(ctypes.c_float))]


def missing():
    """Why LIBMF cannot run here, or None."""
    path = os.environ.get("LIBMF_LIB")
    if not path:
        return "LIBMF_LIB is not set (build LIBMF's shared library with `make lib`)"
    if not os.path.exists(path):
        return f"LIBMF_LIB={path} does not exist"
    return None


def _library():
    lib = ctypes.CDLL(os.environ["LIBMF_LIB"])
    lib.mf_get_default_param.restype = _Parameter
    lib.mf_train.restype = ctypes.POINTER(_Model)
    lib.mf_train.argtypes = [ctypes.POINTER(_Problem), _Parameter]
    lib.mf_destroy_model.argtypes = [ctypes.POINTER(ctypes.POINTER(_Model))]
    return lib


class LIBMF:
    """LIBMF's L2 matrix factorization (no biases) on rows ``users``, columns ``items``
    (0-based) and ``ratings``, trained by ``fit`` with the settings of ``__init__``."""

    def __init__(self, users, items, ratings, k, threads, reg=0.05, lr=0.01):
        self.lib = _library()
        self.nodes = np.empty(len(ratings), dtype=NODE)
        self.nodes["u"], self.nodes["v"], self.nodes["r"] = users, items, ratings
        self.problem = _Problem(int(users.max()) + 1, int(items.max()) + 1, len(ratings),
                                self.nodes.ctypes.data)
        self.param = self.lib.mf_get_default_param()
        self.param.k, self.param.nr_threads = k, threads
        self.param.nr_bins = max(self.param.nr_bins, 2 * threads + 1)
        self.param.lambda_p2 = self.param.lambda_q2 = reg
        self.param.lambda_p1 = self.param.lambda_q1 = 0.0
        self.param.eta, self.param.quiet, self.param.copy_data = lr, True, True

    def fit(self, iterations):
        """Train from scratch; return (wall seconds of mf_train, the model's P, Q, b)."""
        self.param.nr_iters = iterations
        start = time.perf_counter()
        model = self.lib.mf_train(ctypes.byref(self.problem), self.param)
        seconds = time.perf_counter() - start
        if not model:
            raise RuntimeError("LIBMF's mf_train failed")
        m = model.contents
        P = np.ctypeslib.as_array(m.P, (m.m, m.k)).copy()
        Q = np.ctypeslib.as_array(m.Q, (m.n, m.k)).copy()
        b = float(m.b)
        self.lib.mf_destroy_model(ctypes.byref(model))
        return seconds, (P, Q, b)

    def iteration_seconds(self, n):
        """Seconds per iteration: (time of 2n iterations - time of n) / n; and the
        2n-iteration model."""
        short, _ = self.fit(n)
        long, model = self.fit(2 * n)
        return (long - short) / n, model


def rmse(model, users, items, ratings):
    """Held-out RMSE of a LIBMF model (rows it never saw predict its mean ``b``, as
    LIBMF's mf_predict does)."""
    P, Q, b = model
    known = (users < len(P)) & (items < len(Q))
    pred = np.full(len(ratings), b, dtype=np.float64)
    pred[known] = np.einsum("nk,nk->n", P[users[known]], Q[items[known]])
    pred[~np.isfinite(pred)] = b
    return float(np.sqrt(np.mean((pred - ratings) ** 2)))


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 500, 50_000), rng.integers(0, 300, 50_000)
    r = rng.integers(1, 6, 50_000).astype(np.float32)
    if missing():
        raise SystemExit(missing())
    lm = LIBMF(u, i, r, k=32, threads=1)
    seconds, model = lm.iteration_seconds(5)
    print(f"{seconds * 1e3:.2f} ms/iteration, {len(r) / seconds / 1e6:.1f} M updates/s, "
          f"train RMSE {rmse(model, u, i, r):.3f}")
