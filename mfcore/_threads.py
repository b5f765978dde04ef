"""One place that checks ``n_threads`` and turns it into a thread count for the kernels."""
import os

from ._kernels.openmp import openmp_enabled
from .params import MAX_THREADS, Threads


def available_cpus():
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_limit()
    if quota is not None:
        n = min(n, quota)
    return max(1, n)


def _cgroup_cpu_limit():
    """CPUs allowed by a cgroup v2 (cpu.max) or v1 (cfs quota) limit, or None."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            return max(1, int(int(quota) // int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as fh:
            quota = int(fh.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as fh:
            period = int(fh.read())
        if quota > 0 and period > 0:
            return max(1, quota // period)
    except (OSError, ValueError):
        pass
    return None


def check_n_threads(n_threads, name="n_threads"):
    """``n_threads`` if valid (see ``params.Threads``), else ``InvalidParameterError``."""
    return Threads().check(name, n_threads)


def _omp_num_threads():
    """The thread count OMP_NUM_THREADS asks for (its first entry), or None if unset or invalid."""
    text = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    try:
        n = int(text)
    except ValueError:
        return None
    return n if n >= 1 else None


def resolve_n_threads(n_threads):
    """The thread count for ``n_threads``; 1 without OpenMP.

    In this order: the argument when it is a count; for None or -1,
    ``OMP_NUM_THREADS`` when set (a Dask or joblib worker sets it to avoid
    oversubscription); otherwise every CPU this process may use (affinity
    mask and cgroup quota).
    """
    n = check_n_threads(n_threads)
    if n is None or n == -1:
        n = _omp_num_threads() or available_cpus()
    return min(n, MAX_THREADS) if openmp_enabled() else 1
