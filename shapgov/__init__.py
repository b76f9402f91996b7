"""shapgov: exact SHAP explanations of whole blueprints, governed for MLflow.

The public API is loaded on first use, so ``import shapgov`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shapgov._version import __version__
from shapgov.registry import hookimpl

if TYPE_CHECKING:
    from shapgov.background import summarize_background
    from shapgov.compatibility import matrix
    from shapgov.engine import decompose, explain
    from shapgov.errors import AdditivityError
    from shapgov.explanation import Explanation
    from shapgov.opaque import BlackBox

__all__ = [
    "AdditivityError",
    "BlackBox",
    "Explanation",
    "__version__",
    "decompose",
    "explain",
    "hookimpl",
    "matrix",
    "summarize_background",
]

_LAZY = {
    "explain": "shapgov.engine",
    "decompose": "shapgov.engine",
    "matrix": "shapgov.compatibility",
    "Explanation": "shapgov.explanation",
    "AdditivityError": "shapgov.errors",
    "summarize_background": "shapgov.background",
    "BlackBox": "shapgov.opaque",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'shapgov' has no attribute {name!r}")
