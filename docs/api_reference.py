"""Write ``api.rst``: every name in ``mfcore.__all__`` and in the separately imported modules, by kind.

Kinds are found from the objects themselves (an estimator class, an error, a warning, a
function, a module ...), so a name added to ``mfcore.__all__`` gets a page in the right
section at the next build, with no edit here.
"""
import inspect

import mfcore
from mfcore.estimators import Estimator

#: Public modules that ``import mfcore`` does not import (optional dependencies, or kept out
#: of the import to keep it light): each gets a page listing its ``__all__``.
SEPARATE_MODULES = ["mfcore.metrics", "mfcore.sklearn", "mfcore.dask", "mfcore.progress", "mfcore.simd", "mfcore.cli",
                    "mfcore.timeterms", "mfcore.ordinal"]

SECTIONS = [
    ("Estimators", "Each fits ratings and *is* a :class:`~mfcore.FactorModel` once fitted."),
    ("Fitted models and files", ""),
    ("Functions", ""),
    ("Classes", ""),
    ("Modules", "Modules of functions, each with its own page."),
    ("Errors", "Every error mfcore raises on purpose; each is also a standard Python exception."),
    ("Warnings", ""),
]


def _section(obj):
    if inspect.ismodule(obj):
        return "Modules"
    if inspect.isclass(obj):
        if issubclass(obj, Warning):
            return "Warnings"
        if issubclass(obj, BaseException):
            return "Errors"
        if issubclass(obj, Estimator):
            return "Estimators"
        if issubclass(obj, mfcore.FactorModel):
            return "Fitted models and files"
        return "Classes"
    if obj is mfcore.load:
        return "Fitted models and files"
    return "Functions"


def write(path):
    groups = {title: [] for title, _ in SECTIONS}
    seen, aliases = {}, []
    for name in mfcore.__all__:
        if name.startswith("__"):
            continue      # __version__: said in the text
        obj = getattr(mfcore, name)
        if id(obj) in seen:   # a second name of the same object (Model = SGD): one page, the alias said
            aliases.append(f"``mfcore.{name}`` is another name for :obj:`mfcore.{seen[id(obj)]}`.")
            continue
        seen[id(obj)] = name
        groups[_section(obj)].append(f"mfcore.{name}")
    groups["Modules"] += SEPARATE_MODULES
    lines = ["API reference", "=============", "",
             "Everything below is public: ``mfcore.NAME`` for the names of ``mfcore.__all__``, and the modules",
             "listed under *Modules*. ``mfcore.__version__`` is the installed version.", "",
             *[line for alias in aliases for line in (alias, "")],
             ]
    for title, intro in SECTIONS:
        if not groups[title]:
            continue
        lines += [title, "-" * len(title), ""]
        if intro:
            lines += [intro, ""]
        template = "autosummary/module.rst" if title == "Modules" else None
        lines += [".. autosummary::", "   :toctree: generated", "   :nosignatures:"]
        if template:
            lines += [f"   :template: {template}"]
        lines += [""] + [f"   {name}" for name in groups[title]] + [""]
    text = "\n".join(lines)
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return   # unchanged: keep the file's time so Sphinx does not rebuild it
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
