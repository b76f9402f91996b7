"""Built-in plugin: the tree explainer (exact path-dependent TreeSHAP in numba).

Trees are parsed once per model through the ``shapgov_tree_ensemble`` hook into
:class:`shapgov.trees.TreeEnsemble`; values are in the model's raw margin.
"""

from __future__ import annotations

import numpy as np

from shapgov import hookimpl
from shapgov.blueprint import Vertex
from shapgov.errors import UnsupportedModelError
from shapgov.explainers import Explainer, VertexValues, group_sum
from shapgov.kernels.interventional_treeshap import interventional_shap
from shapgov.kernels.linear_treeshap import linear_path_dependent_shap
from shapgov.kernels.treeshap import path_dependent_shap
from shapgov.registry import get_plugin_manager
from shapgov.trees import TreeEnsemble

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
    """Exact TreeSHAP. Options: ``algorithm`` (see ``ALGORITHMS``)."""

    name = "tree"

    def explain(
        self, vertex: Vertex, Z: np.ndarray, Z_background: np.ndarray, *, n_features: int
    ) -> VertexValues:
        algorithm = self.options.get("algorithm", "path_dependent")
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
        phi, base = ALGORITHMS[algorithm](ens, Z, Z_background)
        return VertexValues(group_sum(phi, vertex.origins, n_features), base)


@hookimpl(trylast=True)
def shapgov_explainers() -> list[type[Explainer]]:
    return [TreeExplainer]
