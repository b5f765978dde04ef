"""mfcore's compiled kernels (Cython over C): no Python-level logic lives here.

``predict``: prediction and the squared error, for every estimator;
``sgd``: the block-parallel SGD epoch and its record layout;
``rowsolve``: the per-row regularised least-squares solves (ALS, fold-in, Dask);
``bayes``: the Gibbs sweep and its counter-based random numbers;
``recommend``: top-N by partial selection; ``readers``: the rating-file parser;
``simd``: the SIMD path names and which this CPU runs;
``openmp``: what this build's OpenMP offers. The C headers beside them hold the
SIMD kernels: ``*_simd.h`` (dispatch tables) instantiate the bodies written
once in ``*_body.h`` per value type and instruction set; ``mf_common.h`` has the
inline, restrict and vector definitions every header shares, ``simd_dispatch.h``
the instruction-set checks.
"""
