"""Exceptions and warnings raised by mfcore."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite loss or parameter (learning rate too large)."""


class ModelFileError(ValueError):
    """A model file is missing, truncated, foreign, tampered with or of an unknown version."""


class UnknownIdWarning(UserWarning):
    """Some ids passed to a fitted model were not seen in training."""


class DuplicateRatingsWarning(UserWarning):
    """The training data held the same (user, item) pair more than once."""


class DataUnavailableError(OSError):
    """A data set is neither on disk nor downloadable (offline, or the download failed its check)."""
