"""The thread count: OpenMP's presence, the order argument > OMP_NUM_THREADS > CPUs."""
import pytest

import mfcore
from mfcore import Model


def test_openmp_flag_and_threads():
    from mfcore._threads import available_cpus, resolve_n_threads
    assert isinstance(mfcore.openmp_enabled(), bool)
    assert available_cpus() >= 1
    expected = 3 if mfcore.openmp_enabled() else 1
    assert resolve_n_threads(3) == expected
    assert resolve_n_threads(None) >= 1
    assert resolve_n_threads(-1) == resolve_n_threads(None)      # scikit-learn's "all CPUs"
    assert Model(k=2, epochs=1, n_threads=-1).fit([1, 2], [1, 2], [3.0, 4.0]).n_epochs_ == 1


def test_thread_count_order_is_argument_then_omp_num_threads_then_cpus(monkeypatch):
    from mfcore._threads import available_cpus, resolve_n_threads
    if not mfcore.openmp_enabled():
        pytest.skip("a build without OpenMP always runs one thread")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resolve_n_threads(None) == 3 and resolve_n_threads(-1) == 3
    assert resolve_n_threads(2) == 2                      # an explicit count wins
    monkeypatch.setenv("OMP_NUM_THREADS", "5,2")          # nested levels: the first counts
    assert resolve_n_threads(None) == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "many")         # unusable: ignored
    assert resolve_n_threads(None) == available_cpus()
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert resolve_n_threads(None) == available_cpus()
