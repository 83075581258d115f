"""Sphinx configuration of the surrogate_natgrad documentation.

Pages are Markdown (MyST); the API reference is generated from the numpydoc docstrings by
autodoc/autosummary (see ``api/index.md``: one line per module). Build with
``nox -s docs`` or ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors).
"""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
from pathlib import Path

project = "surrogate_natgrad"
author = "surrogate_natgrad developers"
copyright = f"{datetime.date.today().year}, {author}"  # noqa: A001 - Sphinx's name
try:
    release = importlib.metadata.version("surrogate-natgrad")
except importlib.metadata.PackageNotFoundError:  # building from a checkout, not installed
    release = "0.1.0.dev0"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# --- MyST ---------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3

# --- autodoc / autosummary / numpydoc -----------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True  # public names are re-exported from private modules
autosummary_ignore_module_all = False  # a module's __all__ is its public API
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections say it better
autodoc_inherit_docstrings = True
numpydoc_show_class_members = False  # the class template lists members instead
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True
# Docstring validation runs in `nox -s lint` (docs/validate_docstrings.py), not here, so
# that a docstring nit never breaks the site build.
numpydoc_validation_checks: set[str] = set()



def _api_modules() -> list[str]:
    """The modules of the API reference: the entries of the list in ``api/index.md``."""
    text = (Path(__file__).parent / "api" / "index.md").read_text(encoding="utf-8")
    block = text.split(".. autosummary::", 1)[1].split("```", 1)[0]
    return [
        line.strip()
        for line in block.splitlines()
        if line.strip().startswith("surrogate_natgrad") and not line.strip().startswith(":")
    ]


def _api_homes(modules: list[str]) -> dict[str, str]:
    """Map ``module.name`` of every public name to the module that documents it.

    A name re-exported by several modules of the reference (``fit`` is
    ``surrogate_natgrad.fit`` and ``surrogate_natgrad.fitting.fit``) is documented once, in
    the most specific of them; the others link there. Documenting it twice would register
    its defining path twice (a duplicate-object warning).
    """
    exported: dict[int, list[str]] = {}
    entries: list[tuple[str, str, int]] = []
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if obj is None or isinstance(obj, str | int | float | bool):
                continue
            exported.setdefault(id(obj), []).append(module_name)
            entries.append((module_name, name, id(obj)))
    homes = {}
    for module_name, name, key in entries:
        candidates = exported[key]
        home = max(candidates, key=lambda m: (m.count("."), -candidates.index(m)))
        homes[f"{module_name}.{name}"] = home
    return homes


API_MODULES = _api_modules()
autosummary_context = {"api_homes": _api_homes(API_MODULES)}

# --- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "surrogate_natgrad"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
}
# The user-guide pages are single pages (their own table of contents is on the right): no
# section navigation on the left, so that wide tables get the room. The API reference keeps it.
html_sidebars = {"*": []}
html_show_sourcelink = False
