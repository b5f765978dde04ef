"""Names for the types in mfcore's public signatures (annotations only; nothing here runs at import).

Modules that use them write ``from __future__ import annotations`` and import this module
under ``typing.TYPE_CHECKING``, so that ``import mfcore`` stays as light as before.
"""
from __future__ import annotations

import os

import numpy as np
from numpy.typing import ArrayLike

#: A file name: a string or any ``os.PathLike``.
PathLike = str | os.PathLike
#: What every ``seed`` argument takes: an int, None (fresh entropy) or a NumPy Generator.
Seed = int | np.random.Generator | None

__all__ = ["ArrayLike", "PathLike", "Seed"]
