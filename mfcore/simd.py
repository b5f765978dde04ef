"""The one SIMD path selector for every kernel (SGD, ALS, implicit ALS, prediction, top-N).

At import the widest path the CPU supports is chosen, or ``$MFCORE_SIMD``
(``baseline``, ``avx2`` or ``avx512``) when set. The paths compute the same
thing and differ only in the last bits (summation order, FMA contraction);
within one path every result is exact and independent of the thread count.
The selection is one number in ``mfcore._kernels.simd``, which every kernel
module reads: ``select`` is the only way to change it.
"""
import os

from ._kernels import sgd as _sgd
from ._kernels import simd as _simd

__all__ = ["PATHS", "supported", "current", "select", "specialized_k"]

PATHS = _simd.SIMD_PATHS


def supported():
    """The paths this build has and this CPU can run, narrowest first.

    Examples
    --------
    >>> import mfcore
    >>> "baseline" in mfcore.simd.supported()
    True
    """
    return _simd.simd_supported()


def current():
    """The path every kernel uses now.

    Examples
    --------
    >>> import mfcore
    >>> mfcore.simd.current() in mfcore.simd.supported()
    True
    """
    return _simd.current_path()


def select(name):
    """Use path ``name`` (one of ``supported()``) in every kernel; for tests and benchmarks.

    An unknown or unsupported path raises ValueError and changes nothing.

    Examples
    --------
    >>> import mfcore
    >>> before = mfcore.simd.current()
    >>> mfcore.simd.select("baseline")
    >>> mfcore.simd.current()
    'baseline'
    >>> mfcore.simd.select(before)
    """
    _simd.select_path(name)


def specialized_k():
    """The k whose training kernel has a copy compiled for that k (on every path, for
    float32 and float64); other k run a general loop.

    Examples
    --------
    >>> import mfcore
    >>> 64 in mfcore.simd.specialized_k()
    True
    """
    return _sgd.SPECIALIZED_K


def _select_default():
    wanted = os.environ.get("MFCORE_SIMD", "").strip().lower()
    select(wanted if wanted else supported()[-1])


_select_default()
