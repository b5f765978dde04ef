"""The one place mfcore's version is written: ``pyproject.toml`` reads it, ``mfcore.__version__`` shows it."""

__version__ = "0.1.0"
