"""mfcore: fast, dependable biased matrix factorization for rating data."""
try:
    from ._openmp import openmp_enabled
except ImportError as exc:  # the source tree, not an installed build
    raise ImportError(
        "mfcore's compiled extensions are missing. Install the package with "
        "'pip install .' (or build in place with 'python setup.py build_ext --inplace') "
        f"and do not import it from an unbuilt source folder ({exc})") from exc

from .errors import (DuplicateRatingsWarning, ModelFileError, NotFittedError,
                     TrainingDivergedError, UnknownIdWarning)
from .ids import IdMap
from .model import Model
from .persistence import load
from . import datasets
from .search import Search, search

__version__ = "0.1.0"

__all__ = ["Model", "load", "Search", "search", "openmp_enabled", "IdMap", "NotFittedError",
           "TrainingDivergedError", "ModelFileError", "UnknownIdWarning",
           "DuplicateRatingsWarning", "datasets", "__version__"]
