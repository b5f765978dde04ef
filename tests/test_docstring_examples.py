"""Every ``Examples`` section of the public docstrings runs, against the installed mfcore.

The documentation's pages (docs/**/*.md) run through pytest's ``--doctest-glob`` (pyproject.toml);
docstrings are found here, module by module, so that an example in a module that needs an optional
dependency skips with a reason instead of failing on the import.
"""
import doctest
import importlib
import importlib.util
import inspect
import os
import sys

import pytest

#: Every module with public names (mfcore.__all__ and the modules the API reference lists).
MODULES = ["mfcore", "mfcore.estimators.sgd", "mfcore.estimators.als", "mfcore.estimators.bayes",
           "mfcore.estimators.base", "mfcore.fitted", "mfcore.persistence", "mfcore.search",
           "mfcore.model_selection", "mfcore.io", "mfcore.split", "mfcore.datasets", "mfcore.ids",
           "mfcore.metrics", "mfcore.errors", "mfcore.sklearn", "mfcore.dask", "mfcore.progress",
           "mfcore.simd", "mfcore.cli.main", "mfcore.timeterms", "mfcore.ordinal", "mfcore._kernels.openmp"]
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
OPTIONAL = {"mfcore.sklearn": "sklearn", "mfcore.dask": "distributed"}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name], reason=f"{name}'s examples need {OPTIONAL[name]}")
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module, name) if t.examples]
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"
    if not tests:
        pytest.skip(f"{name} has no examples yet")


def _public_names():
    """The API reference's pages: ``mfcore.__all__`` and the modules it lists on their own
    (``docs/api_reference.SEPARATE_MODULES``)."""
    import mfcore
    if not os.path.exists(os.path.join(DOCS, "api_reference.py")):
        pytest.skip("docs/ is not beside the tests")
    sys.path.insert(0, DOCS)
    try:
        from api_reference import SEPARATE_MODULES
    finally:
        sys.path.remove(DOCS)
    names = [(f"mfcore.{n}", getattr(mfcore, n)) for n in mfcore.__all__ if not n.startswith("__")]
    for module_name in SEPARATE_MODULES:
        if module_name in OPTIONAL and importlib.util.find_spec(OPTIONAL[module_name]) is None:
            continue
        module = importlib.import_module(module_name)
        names += [(f"{module_name}.{n}", getattr(module, n)) for n in module.__all__]
    # constants (PRESETS, TERMS ...) carry no docstring of their own: their module documents them
    return [(name, obj) for name, obj in names if callable(obj) or inspect.ismodule(obj)]


def test_every_public_name_has_an_example():
    # the examples themselves run in test_docstring_examples_run, module by module
    lacking = [name for name, obj in _public_names()
               if not doctest.DocTestParser().get_examples(inspect.getdoc(obj) or "")]
    assert len(_public_names()) > 40 and not lacking, f"no example: {lacking}"
