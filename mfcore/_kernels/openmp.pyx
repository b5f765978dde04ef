"""OpenMP facts of this build: is it there, and how many threads it offers."""

cdef extern from "openmp_shim.h":
    int MFCORE_OPENMP
    int omp_get_max_threads() nogil


def openmp_enabled():
    """True if mfcore was compiled with OpenMP (parallel kernels); without it every fit runs
    one thread, and ``mfcore.show_config()`` says so.

    Examples
    --------
    >>> import mfcore
    >>> mfcore.openmp_enabled() in (True, False)
    True
    """
    return bool(MFCORE_OPENMP)


def openmp_max_threads():
    """Threads OpenMP would use by default (1 without OpenMP)."""
    return omp_get_max_threads()
