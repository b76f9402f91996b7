"""Sphinx configuration of the shapgov documentation site.

Build (from the repository root, offline; warnings are errors):

    sphinx-build -W --keep-going -b html docs docs/_build/html

Broken links fail the build: a missing page or heading anchor (myst), an unknown
``shapgov.*`` target in a docstring (nitpicky), and an object of the API reference without
a docstring (``_require_docstring`` below).
"""

from __future__ import annotations

import os
from typing import Any

from sphinx.util import logging

from shapgov import __version__

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

project = "shapgov"
author = "the shapgov authors"
copyright = "the shapgov authors"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
# The sources are the Markdown pages (source_suffix): the PNGs beside them are images the
# pages show, conf.py is this file, and _build is the output.
exclude_patterns = ["_build"]

# Markdown pages. Headings up to ### get anchors, so [text](page.md#heading) is checked:
# a missing page or heading is a warning, and so an error with -W.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# Every reference must resolve. Annotations name third-party types (pd.DataFrame, Any,
# numpy.ndarray, TYPE_CHECKING-only names) that no inventory is loaded for (the build is
# offline, no intersphinx): those are ignored, but only those. A target that starts with
# "shapgov" (shapgov.*, shapgov_plugins.*) is ours and must exist.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!shapgov).*")]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"

html_theme = "furo"
html_title = f"shapgov {release}"
# Offline: furo uses the system fonts and bundles its CSS and JS; the one local stylesheet
# aligns long table cells to the top.
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False

logger = logging.getLogger(__name__)


def _require_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """A documented object without a docstring is a warning (an error with -W)."""
    if what != "module" and not any(line.strip() for line in lines):
        logger.warning("%s %s has no docstring", what, name, type="shapgov", subtype="docstring")


def _require_member_docstring(
    app: Any, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """A public method or property of a documented class without a docstring is a warning
    too: autodoc's ``:members:`` would leave it out silently."""
    if what in ("class", "exception") and skip and not name.startswith("_"):
        target = obj.fget if isinstance(obj, property) else obj
        if callable(target) and not (getattr(target, "__doc__", None) or "").strip():
            where = getattr(target, "__qualname__", name)
            logger.warning(
                "member %s (%s) has no docstring",
                where,
                getattr(target, "__module__", "?"),
                type="shapgov",
                subtype="docstring",
            )
    return None


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _require_docstring)
    app.connect("autodoc-skip-member", _require_member_docstring)
    return {"parallel_read_safe": True}
