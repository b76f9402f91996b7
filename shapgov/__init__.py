"""shapgov: exact SHAP explanations of whole blueprints, governed for MLflow.

The public API is loaded on first use, so ``import shapgov`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shapgov._version import __version__
from shapgov.registry import hookimpl

if TYPE_CHECKING:
    from shapgov.adverse_action.catalogue import load_catalogue
    from shapgov.adverse_action.decision import Decision
    from shapgov.adverse_action.derive import reasons
    from shapgov.analyses.compare import compare_shap_xemp
    from shapgov.analyses.exemplars import xemp
    from shapgov.analyses.fairness import fairness
    from shapgov.analyses.impact import feature_impact, permutation_impact
    from shapgov.analyses.over_time import over_time
    from shapgov.analyses.prediction_explanations import prediction_explanations
    from shapgov.combination.explanation import Explanation
    from shapgov.engine import decompose, explain
    from shapgov.errors import AdditivityError
    from shapgov.grouped import explain_groups
    from shapgov.mlflow.approval import approve
    from shapgov.mlflow.autologging import autolog
    from shapgov.mlflow.comparing import compare_versions
    from shapgov.mlflow.documenting import document
    from shapgov.mlflow.reporting import report
    from shapgov.opaque import BlackBox
    from shapgov.planning.background import summarize_background
    from shapgov.planning.compatibility import matrix

__all__ = [
    "AdditivityError",
    "BlackBox",
    "Decision",
    "Explanation",
    "__version__",
    "approve",
    "autolog",
    "compare_shap_xemp",
    "compare_versions",
    "decompose",
    "document",
    "explain",
    "explain_groups",
    "fairness",
    "feature_impact",
    "hookimpl",
    "load_catalogue",
    "matrix",
    "over_time",
    "permutation_impact",
    "prediction_explanations",
    "reasons",
    "report",
    "summarize_background",
    "xemp",
]

_LAZY = {
    "reasons": "shapgov.adverse_action.derive",
    "Decision": "shapgov.adverse_action.decision",
    "load_catalogue": "shapgov.adverse_action.catalogue",
    "explain": "shapgov.engine",
    "decompose": "shapgov.engine",
    "explain_groups": "shapgov.grouped",
    "matrix": "shapgov.planning.compatibility",
    "Explanation": "shapgov.combination.explanation",
    "AdditivityError": "shapgov.errors",
    "summarize_background": "shapgov.planning.background",
    "BlackBox": "shapgov.opaque",
    "feature_impact": "shapgov.analyses.impact",
    "permutation_impact": "shapgov.analyses.impact",
    "prediction_explanations": "shapgov.analyses.prediction_explanations",
    "xemp": "shapgov.analyses.exemplars",
    "over_time": "shapgov.analyses.over_time",
    "compare_shap_xemp": "shapgov.analyses.compare",
    "approve": "shapgov.mlflow.approval",
    "autolog": "shapgov.mlflow.autologging",
    "report": "shapgov.mlflow.reporting",
    "fairness": "shapgov.analyses.fairness",
    "compare_versions": "shapgov.mlflow.comparing",
    "document": "shapgov.mlflow.documenting",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'shapgov' has no attribute {name!r}")


def __dir__() -> list[str]:  # the public names, lazy ones included, for tab completion
    loaded = {n for n, v in globals().items() if type(v).__name__ == "module"}
    return sorted(set(__all__) | {n for n in loaded if not n.startswith("_")})
