"""shap's API on shapgov's engine: ``import shapgov.shap as shap``.

``Explainer``, ``TreeExplainer``, ``LinearExplainer``, ``KernelExplainer`` and
``DeepExplainer`` take shap's
arguments and return shap's shapes, computed by :func:`shapgov.explain`: one game, exact
values, the additivity policy applied (a withheld explanation raises shap's own
``ExplainerError`` type when shap is installed). ``__call__`` returns a real
``shap.Explanation`` when shap is installed (``shap.plots.*`` take it), else
:class:`Explanation` with the same attributes. shap is never a requirement.

Every other name (``plots``, ``maskers``, ``kmeans``, ``sample``, ``datasets``, ...) passes
through to shap itself when it is installed, so ``import shapgov.shap as shap`` is the
whole switch.

Source of the API followed: shap 0.51 (Lundberg and Lee 2017; Lundberg et al. 2020).
"""

from shapgov.shap.deep import DeepExplainer
from shapgov.shap.dispatch import Explainer
from shapgov.shap.explanation import Explanation
from shapgov.shap.linear import KernelExplainer, LinearExplainer
from shapgov.shap.tree import TreeExplainer

__all__ = [
    "DeepExplainer",
    "Explainer",
    "Explanation",
    "KernelExplainer",
    "LinearExplainer",
    "TreeExplainer",
]


def __getattr__(name: str) -> object:
    """shap's own names (``shap.plots``, ``shap.maskers``, ``shap.kmeans`` ...), passed
    through when shap is installed.

    :raises AttributeError: shap is not installed, or has no such name.
    """
    from shapgov.shap.explanation import shap_installed

    if name.startswith("__") or not shap_installed():
        raise AttributeError(
            f"shapgov.shap has no {name!r}"
            + ("" if name.startswith("__") else " (shap's own names need shap installed)")
        )
    import shap

    try:
        return getattr(shap, name)
    except AttributeError:
        raise AttributeError(f"shapgov.shap has no {name!r}, and shap has none") from None
