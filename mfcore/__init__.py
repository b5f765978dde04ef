"""mfcore: fast, dependable biased matrix factorization for rating data."""
import sys

try:
    from ._kernels.openmp import openmp_enabled, openmp_max_threads
except ImportError as exc:  # the source tree, not an installed build
    import os as _os
    _here = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    _source = _os.path.isfile(_os.path.join(_here, "setup.py"))
    raise ImportError(
        "mfcore's compiled extensions are missing"
        + (f": this is mfcore's unbuilt source folder ({_here}), which hides an installed "
           "mfcore; run Python from another folder, or build here with "
           "'python setup.py build_ext --inplace'" if _source else
           ". Install the package with 'pip install .' (or build in place with "
           "'python setup.py build_ext --inplace')") + f" ({exc})") from exc

from .errors import (BadLinesWarning, DataUnavailableError, DuplicateRatingsWarning,
                     ImplicitFeedbackWarning, InvalidParameterError, ModelFileError,
                     NotFittedError, TrainingDivergedError, UnknownIdError,
                     UnknownIdWarning, WorkerLostError)
from ._threads import resolve_n_threads
from .ids import IdMap
from . import simd
from .estimators import ALS, SGD, BayesianMF, ImplicitALS, Model
from .fitted import FactorModel
from .persistence import load
from . import datasets, split
from .io import RatingChunks, read_ratings
from .model_selection import cross_validate
from .search import Search, search
from ._version import __version__


def show_config(file=None):
    """Print and return how this build runs: SIMD path, OpenMP, default thread count.

    Every kernel uses the widest SIMD path the CPU supports (chosen once at
    import by ``mfcore.simd``; ``MFCORE_SIMD=baseline|avx2|avx512`` overrides it).

    Examples
    --------
    >>> import mfcore
    >>> config = mfcore.show_config()  # doctest: +ELLIPSIS
                 version: ...
    >>> config["openmp"] in (True, False)
    True
    """
    config = {
        "version": __version__,
        "simd_path": simd.current(),
        "simd_supported": list(simd.supported()),
        "openmp": openmp_enabled(),
        "openmp_max_threads": openmp_max_threads(),
        "default_n_threads": resolve_n_threads(None),
    }
    out = sys.stdout if file is None else file
    for key, value in config.items():
        print(f"{key:>20}: {value}", file=out)
    return config


__all__ = ["SGD", "Model", "ALS", "BayesianMF", "ImplicitALS", "FactorModel", "load", "Search", "search",
           "openmp_enabled", "show_config", "IdMap",
           "datasets", "split", "read_ratings", "RatingChunks", "cross_validate", "__version__",
           "NotFittedError", "InvalidParameterError", "TrainingDivergedError", "ModelFileError", "UnknownIdError",
           "UnknownIdWarning", "DuplicateRatingsWarning", "BadLinesWarning", "ImplicitFeedbackWarning",
           "DataUnavailableError", "WorkerLostError"]
