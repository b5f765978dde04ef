"""The one SIMD path selector for every kernel (training, prediction, top-N).

At import the widest path the CPU supports is chosen, or ``$MFCORE_SIMD``
(``baseline``, ``avx2`` or ``avx512``) when set. The paths compute the same
thing and differ only in the last bits (summation order, FMA contraction);
within one path every result is exact and independent of the thread count.
"""
import os

from ._kernels import recommend as _recommend
from ._kernels import sgd as _sgd

__all__ = ["PATHS", "supported", "current", "select"]

PATHS = _sgd.SIMD_PATHS


def supported():
    """The paths this build has and this CPU can run, narrowest first."""
    return _sgd.simd_supported()


def current():
    """The path every kernel uses now."""
    return _sgd.simd_path()


def select(name):
    """Use path ``name`` (one of ``supported()``) in every kernel; for tests and benchmarks."""
    _sgd.set_simd_path(name)  # raises ValueError for an unknown or unsupported path
    _recommend.set_simd_path(name)


def _select_default():
    wanted = os.environ.get("MFCORE_SIMD", "").strip().lower()
    select(wanted if wanted else supported()[-1])


_select_default()
