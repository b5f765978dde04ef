# cython: language_level=3
"""The SIMD paths every kernel module is compiled for, and which of them this CPU runs.

Each kernel module with SIMD paths (``sgd``, ``predict``, ``rowsolve``, ``recommend``) has
``simd_path()`` and ``set_simd_path(name)``, which takes its path number from ``path_number``;
``mfcore.simd.select`` sets them all at once.
"""

cdef extern from "simd_dispatch.h" nogil:
    int mf_path_supported(int path)

#: The paths, in the order of simd_dispatch.h's MF_PATH_* numbers.
SIMD_PATHS = ("baseline", "avx2", "avx512")


def simd_supported():
    """The SIMD paths this build has and this CPU can run, narrowest first."""
    return tuple(name for p, name in enumerate(SIMD_PATHS) if mf_path_supported(p))


def path_number(name):
    """The number of path ``name`` (simd_dispatch.h's MF_PATH_*), for a kernel module's
    selector; ValueError for a path that is unknown or that this CPU cannot run."""
    if name not in SIMD_PATHS:
        raise ValueError(f"SIMD path must be one of {SIMD_PATHS}, got {name!r}")
    if not mf_path_supported(SIMD_PATHS.index(name)):
        raise ValueError(f"SIMD path {name!r} is not supported on this CPU "
                         f"(supported: {simd_supported()})")
    return SIMD_PATHS.index(name)
