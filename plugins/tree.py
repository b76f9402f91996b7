"""Built-in plugin: the tree explainer (exact TreeSHAP in numba).

Trees are parsed once per model through the ``shapgov_tree_ensemble`` hook into
:class:`shapgov.explainers.trees.TreeEnsemble`. Values are in the model's raw margin; where the
parent consumes a response of the margin (probabilities: ``explain(output="probability")``,
soft voting), they are exact interventional Shapley values in that space: the raw output
of every hybrid row is summed from the trees per coalition of original columns, the
response applied, averaged over the background, and the Shapley formula applied to the
``2**P`` coalition values (P original columns, up to ``max_exact_players``).
"""

from __future__ import annotations

import numpy as np

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Vertex
from shapgov.errors import ExactBudgetError, UnsupportedModelError
from shapgov.explainers.base import Explainer, VertexValues, group_sum, group_sum_pairs
from shapgov.explainers.coalitions import DEFAULT_MAX_EXACT_PLAYERS, shapley_from_values
from shapgov.explainers.kernels.interventional_treeshap import (
    coalition_margins,
    interventional_shap,
    predict_raw,
)
from shapgov.explainers.kernels.linear_treeshap import linear_path_dependent_shap
from shapgov.explainers.kernels.treeshap import path_dependent_interactions, path_dependent_shap
from shapgov.explainers.trees import TreeEnsemble
from shapgov.registry import get_plugin_manager

_CHUNK_ELEMENTS = 1 << 22

#: "path_dependent": linear-time TreeSHAP (default, no background); "path_dependent_classic":
#: Lundberg's Algorithm 2, kept as an independent cross-check; "interventional": exact
#: against the background rows, the same game as the linear explainer's.
ALGORITHMS = {
    "path_dependent": lambda ens, Z, Zb: linear_path_dependent_shap(ens, Z),
    "path_dependent_classic": lambda ens, Z, Zb: path_dependent_shap(ens, Z),
    "interventional": interventional_shap,
}


def tree_ensemble(model: object) -> TreeEnsemble:
    """The flat trees of ``model``, from whichever plugin can parse it."""
    ens = get_plugin_manager().hook.shapgov_tree_ensemble(model=model)
    if ens is None:
        raise UnsupportedModelError(
            f"no plugin can parse the trees of {type(model).__name__}; install one that "
            "answers shapgov_tree_ensemble"
        )
    return ens


class TreeExplainer(Explainer):
    """Exact TreeSHAP. Options: ``algorithm`` (see ``ALGORITHMS``; a response of the margin
    needs "interventional", the default then), ``max_exact_players`` (responses only)."""

    name = "tree"
    supports_response = True

    def explain(
        self, vertex: Vertex, Z: np.ndarray, Z_background: np.ndarray, *, n_features: int
    ) -> VertexValues:
        default = "interventional" if vertex.response is not None else "path_dependent"
        algorithm = self.options.get("algorithm", default)
        if algorithm not in ALGORITHMS:
            raise UnsupportedModelError(
                f"tree algorithm {algorithm!r} is not available; choose one of {list(ALGORITHMS)}"
            )
        ens = tree_ensemble(vertex.estimator)
        if ens.n_outputs != vertex.n_margins:
            raise UnsupportedModelError(
                f"{vertex.name}: parsed trees give {ens.n_outputs} outputs, the model "
                f"{vertex.n_margins}"
            )
        if vertex.response is not None:
            if algorithm != "interventional":
                raise UnsupportedModelError(
                    f"{vertex.name}: {vertex.response.name} output is explained only by the "
                    f"interventional algorithm (path-dependent TreeSHAP is defined for the "
                    f"raw margin); drop algorithm={algorithm!r} or explain the margin."
                )
            return self._response_values(vertex, ens, Z, Z_background, n_features)
        phi, base = ALGORITHMS[algorithm](ens, Z, Z_background)
        return VertexValues(group_sum(phi, vertex.origins, n_features), base)

    def interactions(
        self, vertex: Vertex, Z: np.ndarray, Z_background: np.ndarray, *, n_features: int
    ) -> np.ndarray:
        """Path-dependent SHAP interaction values in the margin, ``(n, M, M, K)``."""
        algorithm = self.options.get("algorithm", "path_dependent")
        if vertex.response is not None or not algorithm.startswith("path_dependent"):
            raise UnsupportedModelError(
                f"{vertex.name}: interaction values are computed by path-dependent TreeSHAP "
                "in the raw margin only; explain with output='margin' and the default "
                "algorithm."
            )
        inter, _ = path_dependent_interactions(tree_ensemble(vertex.estimator), Z)
        return group_sum_pairs(inter, vertex.origins, n_features)

    def _response_values(
        self, vertex: Vertex, ens: TreeEnsemble, Z: np.ndarray, Zb: np.ndarray, n_features: int
    ) -> VertexValues:
        """Exact interventional values of ``response(raw output)`` (see the module doc)."""
        origins = vertex.origins
        active = np.unique(origins[origins >= 0])
        budget = self.options.get("max_exact_players", DEFAULT_MAX_EXACT_PLAYERS)
        if active.size > budget:
            raise ExactBudgetError(
                f"{vertex.name}: exact {vertex.response.name} values over {active.size} "
                f"columns need 2**{active.size} coalitions, above the budget of {budget}; "
                "raise max_exact_players (cost doubles per column) or explain the margin."
            )
        player = np.where(origins >= 0, np.searchsorted(active, origins), -1)
        respond = vertex.response.fn
        base = respond(predict_raw(ens, Zb)).mean(axis=0)
        per_row = Zb.shape[0] * (1 << active.size) * ens.n_outputs
        step = max(1, _CHUNK_ELEMENTS // per_row)
        values = np.zeros((Z.shape[0], n_features, base.shape[0]))
        for start in range(0, Z.shape[0], step):
            rows = slice(start, start + step)
            margins = coalition_margins(ens, Z[rows], Zb, player, active.size)
            v = respond(margins).mean(axis=1)  # (r, 2**P, K_out)
            values[rows, active] = shapley_from_values(v)
        return VertexValues(values, base)


@hookimpl(trylast=True)
def shapgov_explainers() -> list[type[Explainer]]:
    return [TreeExplainer]
