"""The one SIMD path selector for every kernel (SGD, ALS, prediction, top-N).

At import the widest path the CPU supports is chosen, or ``$MFCORE_SIMD``
(``baseline``, ``avx2`` or ``avx512``) when set. The paths compute the same
thing and differ only in the last bits (summation order, FMA contraction);
within one path every result is exact and independent of the thread count.
Every kernel module runs on the same path: ``select`` is the only way to change it.
"""
import os

from ._kernels import predict as _predict
from ._kernels import recommend as _recommend
from ._kernels import rowsolve as _rowsolve
from ._kernels import sgd as _sgd
from ._kernels import simd as _simd

__all__ = ["PATHS", "supported", "current", "select", "specialized_k"]

PATHS = _simd.SIMD_PATHS

#: Every compiled kernel module with SIMD paths. Each has ``set_simd_path(name)``
#: (raising ValueError for an unknown or unsupported path) and ``simd_path()``; a new
#: kernel module with SIMD paths is added here, and only here.
_KERNEL_MODULES = (_sgd, _predict, _recommend, _rowsolve)


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
    paths = {module.__name__: module.simd_path() for module in _KERNEL_MODULES}
    if len(set(paths.values())) != 1:  # a module's set_simd_path was called directly
        raise RuntimeError(f"the kernels run on different SIMD paths {paths}; "
                           "use mfcore.simd.select")
    return paths[_sgd.__name__]


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
    if name not in PATHS:
        raise ValueError(f"SIMD path must be one of {PATHS}, got {name!r}")
    if name not in supported():
        raise ValueError(f"SIMD path {name!r} is not supported on this CPU "
                         f"(supported: {supported()})")
    for module in _KERNEL_MODULES:
        module.set_simd_path(name)


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
