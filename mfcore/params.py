"""Hyperparameter checks: each estimator declares a table ``name -> check`` built from these.

A check takes (name, value), returns the value normalised (``int``, ``float`` ...)
or raises ``ValueError`` naming the parameter, the rule and the value given.
"""
import numbers

import numpy as np

from ._threads import check_n_threads

__all__ = ["is_int", "is_real", "int_at_least", "real", "choice", "seed", "fraction", "boolean",
           "n_threads", "DTYPES"]

DTYPES = {"float32": np.float32, "float64": np.float64}


def is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and np.isfinite(v)


def int_at_least(lo, optional=False):
    def check(name, v):
        if optional and v is None:
            return None
        if not is_int(v) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        return int(v)
    return check


def real(lo, strict, optional=False):
    def check(name, v):
        if optional and v is None:
            return None
        if not is_real(v) or (v <= lo if strict else v < lo):
            raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {lo}, "
                             f"got {v!r}")
        return float(v)
    return check


def choice(options):
    def check(name, v):
        if v not in options:
            raise ValueError(f"{name} must be one of {options}, got {v!r}")
        return v
    return check


def seed(name, v):
    if v is None or is_int(v) or isinstance(v, np.random.Generator):
        return v
    raise ValueError(f"{name} must be None, an integer or a numpy Generator, got {v!r}")


def fraction(name, v):
    if v is None:
        return None
    if not is_real(v) or not 0.0 < v < 1.0:
        raise ValueError(f"{name} must be None or a number strictly between 0 and 1, got {v!r}")
    return float(v)


def boolean(name, v):
    if not isinstance(v, (bool, np.bool_, numbers.Integral)):
        raise ValueError(f"{name} must be True or False, got {v!r}")
    return bool(v)


def n_threads(name, v):
    return check_n_threads(v, name)
