# The one SIMD path selection (simd.pyx): every kernel module with SIMD paths runs
# ``mf_bind_path(path_cell())`` at import, so that its kernels run the selected path.
cdef extern from "simd_dispatch.h" nogil:
    void mf_bind_path(const int* cell)

cdef const int* path_cell() noexcept nogil
