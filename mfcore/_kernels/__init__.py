"""mfcore's compiled kernels (Cython over C): no Python-level logic lives here.

``sgd``: the block-parallel SGD epoch, batch prediction and squared error;
``als``: the per-row regularised least-squares solves of ALS and fold-in;
``recommend``: top-N by partial selection; ``readers``: the rating-file parser;
``openmp``: what this build's OpenMP offers. The C headers beside them hold the
SIMD bodies (``*_simd.h``) and the instruction-set checks (``simd_dispatch.h``).
"""
