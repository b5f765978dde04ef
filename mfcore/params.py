"""Hyperparameter constraints: each estimator declares a table ``name -> constraint``.

A constraint is a small object that can be asked things, as scikit-learn's
parameter validation (in a fraction of its size):

* ``check(name, value)``: the value normalised (``int``, ``float`` ...), or
  ``InvalidParameterError`` carrying the name, the value and the rule;
* ``str(constraint)``: the rule, as messages and ``--help`` say it
  ("an integer >= 1");
* ``invalid_values()``: values just outside the rule (``0`` for ``k``,
  ``1.0`` for a fraction) that the contract suite feeds every estimator;
* ``cli_type()``: how the command line reads a value of it from text.

::

    PARAMS = {"k": Interval(int, 1), "lr": Interval(float, 0.0, closed="neither"),
              "reg_bias": Optional(Interval(float, 0.0)), "dtype": Options(*DTYPES)}
"""
import math
import numbers

import numpy as np

from .errors import InvalidParameterError

__all__ = ["Constraint", "Interval", "Options", "Optional", "Boolean", "Seed", "Threads",
           "InvalidParameterError", "is_int", "is_real", "DTYPES", "MAX_THREADS"]

DTYPES = {"float32": np.float32, "float64": np.float64}

#: More threads than this are refused: OpenMP runtimes crash when they cannot create them
#: (10**6 segfaulted here), and far past the CPU count they only cost time.
MAX_THREADS = 1024


def is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and np.isfinite(v)


class Constraint:
    """A rule a hyperparameter's value keeps; subclasses say ``accepts``, ``__str__``,
    ``invalid_values`` and, where the value needs it, ``normalize`` and ``cli_type``."""

    def accepts(self, value):
        raise NotImplementedError

    def normalize(self, value):
        return value

    def check(self, name, value):
        """``value`` normalised, or ``InvalidParameterError(name, value, str(self))``."""
        if not self.accepts(value):
            raise InvalidParameterError(name, value, str(self))
        return self.normalize(value)

    def invalid_values(self):
        """Values the rule refuses, at its boundaries first (for tests)."""
        raise NotImplementedError

    def cli_type(self):
        """A function from command-line text to a value to check (argparse's ``type``)."""
        return str


class Interval(Constraint):
    """A number of ``kind`` (``int`` or ``float``: finite) from ``low`` to ``high`` (None: no
    bound), ``closed`` at "both" ends, "left", "right" or "neither"."""

    def __init__(self, kind, low, high=None, closed="both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def _above_low(self, v):
        return self.low is None or (v >= self.low if self.closed in ("both", "left")
                                    else v > self.low)

    def _below_high(self, v):
        return self.high is None or (v <= self.high if self.closed in ("both", "right")
                                     else v < self.high)

    def accepts(self, v):
        return ((is_int(v) if self.kind is int else is_real(v))
                and self._above_low(v) and self._below_high(v))

    def normalize(self, v):
        return self.kind(v)

    def __str__(self):
        if self.kind is int:
            return f"an integer >= {self.low}"
        if self.high is None:
            return f"a finite number {'>=' if self.closed in ('both', 'left') else '>'} {self.low}"
        between = "strictly between" if self.closed == "neither" else "from"
        return f"a number {between} {self.low} {'and' if self.closed == 'neither' else 'to'} {self.high}"

    def invalid_values(self):
        out = []
        if self.low is not None:
            out.append(self.low - 1 if self._above_low(self.low) else self.low)
        if self.high is not None:
            out.append(self.high + 1 if self._below_high(self.high) else self.high)
        out += [(self.low or 0) + 0.5] if self.kind is int else [math.nan, math.inf]
        return out + [True, "nonsense"]

    def cli_type(self):
        return self.kind


class Options(Constraint):
    """One of the given strings."""

    def __init__(self, *options):
        self.options = options

    def accepts(self, v):
        return isinstance(v, str) and v in self.options

    def __str__(self):
        return f"one of {self.options}"

    def invalid_values(self):
        return [v for v in ("nonsense", self.options[0].upper(), 0, None) if v not in self.options]


class Optional(Constraint):
    """None, or a value ``inner`` accepts."""

    def __init__(self, inner):
        self.inner = inner

    def accepts(self, v):
        return v is None or self.inner.accepts(v)

    def normalize(self, v):
        return None if v is None else self.inner.normalize(v)

    def __str__(self):
        return f"None or {self.inner}"

    def invalid_values(self):
        return [v for v in self.inner.invalid_values() if v is not None]

    def cli_type(self):
        inner = self.inner.cli_type()
        return lambda text: None if text.strip().lower() in ("none", "null") else inner(text)


class Boolean(Constraint):
    """True or False (numpy's booleans too)."""

    def accepts(self, v):
        return isinstance(v, (bool, np.bool_))

    def normalize(self, v):
        return bool(v)

    def __str__(self):
        return "True or False"

    def invalid_values(self):
        return ["nonsense", 2, None]

    def cli_type(self):
        def boolean(text):
            lower = text.strip().lower()
            return {"true": True, "false": False}.get(lower, text)
        return boolean


class Seed(Constraint):
    """None (fresh randomness), an integer >= 0, or a numpy Generator."""

    def accepts(self, v):
        return v is None or (is_int(v) and v >= 0) or isinstance(v, np.random.Generator)

    def __str__(self):
        return "None, an integer >= 0 or a numpy Generator"

    def invalid_values(self):
        return [-1, 1.5, "nonsense"]

    def cli_type(self):
        return Optional(Interval(int, 0)).cli_type()


class Threads(Constraint):
    """None or -1 (scikit-learn's spelling: every available CPU), or 1 to ``MAX_THREADS``."""

    def accepts(self, v):
        return v is None or (is_int(v) and (v == -1 or 1 <= v <= MAX_THREADS))

    def normalize(self, v):
        return None if v is None else int(v)

    def __str__(self):
        return f"None or -1 (all available CPUs) or an integer from 1 to {MAX_THREADS}"

    def invalid_values(self):
        return [0, -2, MAX_THREADS + 1, 1.5, "nonsense"]

    def cli_type(self):
        return Optional(Interval(int, -1)).cli_type()
