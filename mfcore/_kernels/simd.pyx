# cython: language_level=3
"""The SIMD paths every kernel module is compiled for, which of them this CPU runs, and the
one selection of the path they all run.

The selection is one number, here (``path_cell``); each kernel module with SIMD paths
(``sgd``, ``predict``, ``rowsolve``, ``ials``, ``recommend``) binds it at import
(``mf_bind_path``, simd_dispatch.h), and each kernel call runs the selected path's copy.
``mfcore.simd.select`` sets it.
"""

cdef extern from "simd_dispatch.h" nogil:
    int mf_path_supported(int path)

#: The paths, in the order of simd_dispatch.h's MF_PATH_* numbers.
SIMD_PATHS = ("baseline", "avx2", "avx512")

cdef int _path = 0  # MF_PATH_BASELINE until select_path


cdef const int* path_cell() noexcept nogil:
    return &_path


def simd_supported():
    """The SIMD paths this build has and this CPU can run, narrowest first."""
    return tuple(name for p, name in enumerate(SIMD_PATHS) if mf_path_supported(p))


def path_number(name):
    """The number of path ``name`` (simd_dispatch.h's MF_PATH_*); ValueError for a path that
    is unknown or that this CPU cannot run."""
    if name not in SIMD_PATHS:
        raise ValueError(f"SIMD path must be one of {SIMD_PATHS}, got {name!r}")
    if not mf_path_supported(SIMD_PATHS.index(name)):
        raise ValueError(f"SIMD path {name!r} is not supported on this CPU "
                         f"(supported: {simd_supported()})")
    return SIMD_PATHS.index(name)


def select_path(name):
    """Run path ``name`` in every kernel; ValueError (nothing changes) for a path that is
    unknown or that this CPU cannot run."""
    global _path
    _path = path_number(name)


def current_path():
    """The path every kernel runs."""
    return SIMD_PATHS[_path]
