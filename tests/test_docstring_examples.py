"""Every ``Examples`` section of the public docstrings runs, against the installed mfcore.

The documentation's pages (docs/**/*.md) run through pytest's ``--doctest-glob`` (pyproject.toml);
docstrings are found here, module by module, so that an example in a module that needs an optional
dependency skips with a reason instead of failing on the import.
"""
import doctest
import importlib

import pytest

#: Every module with public names (mfcore.__all__ and the modules the API reference lists).
MODULES = ["mfcore", "mfcore.estimators.sgd", "mfcore.estimators.als", "mfcore.estimators.bayes",
           "mfcore.estimators.base", "mfcore.fitted", "mfcore.persistence", "mfcore.search",
           "mfcore.model_selection", "mfcore.io", "mfcore.split", "mfcore.datasets", "mfcore.ids",
           "mfcore.metrics", "mfcore.errors", "mfcore.sklearn", "mfcore.dask", "mfcore.progress",
           "mfcore.simd", "mfcore.cli"]
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
