"""The estimators mfcore knows, by stable name: one explicit registry.

``register(cls)`` adds an estimator class under its declared ``name`` (the
name ``--algorithm`` takes, ``ALGORITHMS`` lists and model files record);
``mfcore.load`` rebuilds only classes registered here, never an arbitrary
import. A name is registered once: a second class under a taken name is
refused, so a user's ``class Model(mfcore.Model)`` cannot take over the
loading of SGD files, and a base class without a name (``Estimator``) is never
loadable. Registering also checks the class's declarations (see
``mfcore.estimators.base.Estimator``), so a wrong one fails at import, not in
the middle of a command::

    from mfcore.estimators import Estimator, register

    @register
    class Toy(Estimator):
        name = "toy"
        ...

This module imports nothing of mfcore: every layer may read it.
"""
import re
import types

__all__ = ["register", "get", "ESTIMATORS"]

_CLASSES = {}

#: The registered estimator classes by name, in registration order (a read-only view:
#: estimators registered later appear in it).
ESTIMATORS = types.MappingProxyType(_CLASSES)

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def register(cls):
    """Register the estimator class ``cls`` under ``cls.name``; return ``cls`` (a decorator).

    Raises ``ValueError`` for a class without a lower-case name, a name taken by
    another class, or declarations that do not match the class's parameters.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"cannot register {cls.__qualname__}: its name must be a lower-case "
                         f"identifier such as 'sgd', got {name!r} (a base class is not "
                         "registered)")
    if name in _CLASSES and _CLASSES[name] is not cls:
        taken = _CLASSES[name]
        raise ValueError(f"cannot register {cls.__module__}.{cls.__qualname__} as {name!r}: "
                         f"that name is {taken.__module__}.{taken.__qualname__}'s; give the "
                         "class its own name")
    cls._check_declarations()
    _CLASSES[name] = cls
    return cls


def get(name):
    """The estimator class registered as ``name``; ``KeyError`` naming the known ones."""
    try:
        return _CLASSES[name]
    except (KeyError, TypeError):
        raise KeyError(f"no estimator is registered as {name!r} (known: "
                       f"{', '.join(_CLASSES)})") from None
