"""Sphinx configuration of mfcore's documentation site.

Built against the *installed* package (CI: ``pip install ".[docs]"`` then
``sphinx-build -W --keep-going -n docs docs/_build/html``). The API reference is
generated at build time from ``mfcore.__all__`` (plus the modules ``import mfcore``
leaves out), so a new public name gets its page without editing the docs.
"""
import inspect
import os
import sys

import mfcore

sys.path.insert(0, os.path.dirname(__file__))   # api_reference.py, beside this file
import api_reference

project = "mfcore"
author = "the mfcore developers"
copyright = "2026, the mfcore developers"
version = release = mfcore.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
    "sphinx-mathjax-offline",   # MathJax copied into the site: the math renders offline too
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_intersphinx", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]
nitpicky = True

# --- the API reference -------------------------------------------------------------------
api_reference.write(os.path.join(os.path.dirname(__file__), "api.rst"))
autosummary_generate = True
autosummary_ignore_module_all = False      # a module's page lists its __all__
autodoc_typehints = "none"                  # types are in the numpydoc Parameters sections
autodoc_member_order = "groupwise"
autodoc_default_options = {"exclude-members": "__init__"}
numpydoc_show_class_members = False         # the class template lists members (autodoc)
numpydoc_validation_checks = set()
add_module_names = False
python_display_short_literal_types = True

# --- Markdown (the user guide) ------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# --- links to other projects, from inventories kept in docs/_intersphinx (offline builds) --
_inv = os.path.join(os.path.dirname(__file__), "_intersphinx")
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", os.path.join(_inv, "python.inv")),
    "numpy": ("https://numpy.org/doc/stable/", os.path.join(_inv, "numpy.inv")),
    "pandas": ("https://pandas.pydata.org/docs/", os.path.join(_inv, "pandas.inv")),
    "sklearn": ("https://scikit-learn.org/stable/", os.path.join(_inv, "sklearn.inv")),
    "dask": ("https://docs.dask.org/en/stable/", os.path.join(_inv, "dask.inv")),
    "distributed": ("https://distributed.dask.org/en/stable/", os.path.join(_inv, "distributed.inv")),
}
intersphinx_timeout = 5

# --- HTML --------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"mfcore {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"index": []}
html_last_updated_fmt = None
html_show_sourcelink = False


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Leave out members a class inherits from outside mfcore (scikit-learn's, the builtins')."""
    module = getattr(inspect.unwrap(obj), "__module__", None) if obj is not None else None
    if what == "class" and module and not module.startswith("mfcore"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
