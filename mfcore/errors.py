"""Exceptions and warnings raised by mfcore."""
import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite loss or parameter (learning rate too large)."""


class ModelFileError(ValueError):
    """A model file is missing, truncated, foreign, tampered with or of an unknown version."""


class UnknownIdError(KeyError):
    """An id the model does not know, where the caller asked for an error (a ``KeyError``)."""

    def __str__(self):  # the message as written, not KeyError's quoted repr
        return str(self.args[0]) if self.args else ""


class IdKindError(TypeError):
    """Ids of the other kind than the model's (strings for a model of integer ids, or the
    reverse)."""


class UnknownIdWarning(UserWarning):
    """Some ids passed to a fitted model were not seen in training."""


class DuplicateRatingsWarning(UserWarning):
    """The training data held the same (user, item) pair more than once."""


class ImplicitFeedbackWarning(UserWarning):
    """Every training rating has one value: the data say which items were chosen, not how well
    they were liked, and an explicit-rating model learns nothing from them beyond the mean."""


class DataUnavailableError(OSError):
    """A data set is neither on disk nor downloadable (offline, or the download failed its check)."""


class BadLinesWarning(UserWarning):
    """A rating file had malformed lines that were skipped on request."""


def warn(message, category):
    """Warn, attributed to the first caller outside mfcore (the line of the user's code)."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2: the caller of warn()
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)
