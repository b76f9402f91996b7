"""Built-in plugin: the Kernel explainer, model-agnostic interventional SHAP.

Explains any vertex through its margin function (the vertex's own predictions), so it
serves opaque predict functions, whole black-box models and every vertex without a
dedicated explainer. Exact by enumeration up to ``max_exact_players`` original columns
(14), leverage-sampled Kernel SHAP beyond, with standard errors. See
:mod:`shapgov.explainers.kernelshap` for the algorithms; options are passed through:
``mode``, ``max_exact_players``, ``n_samples``, ``random_state``, ``n_jobs``,
``batch_rows``, ``dedupe``, ``progress``, ``n_bootstrap``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Vertex
from shapgov.errors import ModelOutputError, PerformanceWarning, UnsupportedModelError
from shapgov.explainers.base import Explainer, VertexValues
from shapgov.explainers.kernelshap import kernel_shap

#: Background size above which the explainer warns (the work grows with it linearly).
LARGE_BACKGROUND = 500
#: Model evaluations above which the explainer warns that the work will be slow.
LARGE_WORK = 10**8
_OPTIONS = {
    "mode",
    "max_exact_players",
    "n_samples",
    "random_state",
    "n_jobs",
    "batch_rows",
    "dedupe",
    "progress",
    "n_bootstrap",
}


class KernelExplainer(Explainer):
    """Model-agnostic interventional SHAP (exact up to 14 columns, sampled beyond)."""

    name = "kernel"
    supports_response = True

    def explain(
        self, vertex: Vertex, Z: Any, Z_background: Any, *, n_features: int
    ) -> VertexValues:
        if vertex.margin is None:
            raise UnsupportedModelError(
                f"{vertex.name}: the vertex has no margin function to call; its plugin must "
                "build it with DecomposeContext.leaf"
            )
        unknown = set(self.options) - _OPTIONS
        if unknown:
            raise UnsupportedModelError(
                f"unknown Kernel explainer option(s) {sorted(unknown)}; known: {sorted(_OPTIONS)}"
            )
        if len(Z_background) > LARGE_BACKGROUND:
            warnings.warn(
                PerformanceWarning(
                    f"{vertex.name}: {len(Z_background)} background rows make Kernel SHAP "
                    f"work {len(Z_background)}x per coalition; summarize them first, e.g. "
                    "background=shapgov.summarize_background(X, n=100)"
                ),
                stacklevel=4,
            )
        origins = np.asarray(vertex.origins)
        active = np.unique(origins[origins >= 0])
        player = np.where(origins >= 0, np.searchsorted(active, origins), -1)
        exact = self.options.get("mode", "auto") == "exact" or (
            self.options.get("mode", "auto") == "auto"
            and active.size <= self.options.get("max_exact_players", 14)
        )
        per_row = 2**active.size if exact else self.options.get("n_samples") or 2048
        work = len(Z) * per_row * len(Z_background)
        if work > LARGE_WORK:
            warnings.warn(
                PerformanceWarning(
                    f"{vertex.name}: Kernel SHAP needs up to {work:.2g} model evaluations "
                    f"({len(Z)} rows x {per_row} coalitions x {len(Z_background)} background "
                    "rows); summarize the background (shapgov.summarize_background) or "
                    "explain fewer rows"
                ),
                stacklevel=4,
            )

        def f(table: Any) -> np.ndarray:
            return vertex.output(vertex.margin(table))

        result = kernel_shap(f, Z, Z_background, player=player, **self.options)
        k = result.values.shape[2]
        if k != vertex.n_outputs:
            raise ModelOutputError(
                f"{vertex.name}: the model returned {k} outputs per row where {vertex.n_outputs} "
                "were expected; return one prediction per row (or one per class)"
            )
        values = np.zeros((len(Z), n_features, k))
        values[:, active] = result.values
        std_error = None
        if result.std_error is not None:
            std_error = np.zeros_like(values)
            std_error[:, active] = result.std_error
        return VertexValues(values, result.base, std_error=std_error)


@hookimpl(trylast=True)
def shapgov_explainers() -> list[type[Explainer]]:
    return [KernelExplainer]
