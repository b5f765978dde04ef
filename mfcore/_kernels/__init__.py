"""mfcore's compiled kernels (Cython over C): no Python-level logic lives here.

``sgd``: the block-parallel SGD epoch, batch prediction and squared error;
``als``: the per-row regularised least-squares solves of ALS and fold-in;
``recommend``: top-N by partial selection; ``readers``: the rating-file parser;
``openmp``: what this build's OpenMP offers. The C headers beside them hold the
SIMD kernels: ``*_simd.h`` (types, dispatch tables) instantiate the bodies written
once in ``*_body.h`` per value type and instruction set; ``simd_dispatch.h`` has the
instruction-set checks.
"""
