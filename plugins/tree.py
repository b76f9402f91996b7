"""Built-in plugin: the tree explainer (exact TreeSHAP in numba).

Trees are parsed once per model through the ``shapgov_tree_ensemble`` hook into
:class:`shapgov.explainers.trees.TreeEnsemble`. It plays both games:

* ``tree_path_dependent``: linear-time path-dependent TreeSHAP (Gauss-Legendre quadrature
  of the Shapley integral, after Yu et al. 2022), in the raw margin; interaction values by
  Lundberg et al.'s (2020) Algorithm 2 conditioned on each feature. Trees with empty
  leaves (cover 0: CatBoost's) or splits that read several columns at once (CatBoost's
  CTRs over combinations) are played over every coalition of each tree's players
  instead (:mod:`shapgov.explainers.kernels.subset_treeshap`), values and interactions.
* ``interventional``: exact against the background, in the raw margin, in time linear in
  rows + background rows (:mod:`shapgov.explainers.kernels.background_treeshap`; the
  rows x background kernel of Lundberg et al. 2020 is kept as a cross-check), interaction
  values too (:mod:`shapgov.explainers.kernels.background_interactions`); symmetric
  trees (CatBoost's) by the background's histogram of leaf indices per tree
  (:mod:`shapgov.explainers.kernels.oblivious_interventional`). Where the
  parent consumes a response of the margin (probabilities, soft voting), the raw output
  of every hybrid row is summed from the trees per coalition of original columns (one
  numba walk), the response applied, averaged over the background, and the coalition
  values handed to the exact-coalition engine (:mod:`shapgov.explainers.coalitions`): up
  to ``max_exact_players`` original columns. Trees with splits on derived columns
  (CatBoost's CTRs over combinations) take the same exact route in the margin.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.errors import UnsupportedModelError
from shapgov.explainers.base import (
    Explainer,
    VertexRequest,
    VertexValues,
    group_sum_pairs,
    scatter_players,
)
from shapgov.explainers.coalitions import (
    DEFAULT_MAX_EXACT_PLAYERS,
    checked_max_players,
    exact_shapley,
    players_of,
)
from shapgov.explainers.kernels.background_interactions import background_interactions
from shapgov.explainers.kernels.background_treeshap import background_shap
from shapgov.explainers.kernels.interventional_treeshap import coalition_margins, predict_raw
from shapgov.explainers.kernels.linear_treeshap import linear_path_dependent_shap
from shapgov.explainers.kernels.oblivious_interventional import (
    oblivious_interventional_shap,
    plays_oblivious_interventional,
)
from shapgov.explainers.kernels.subset_treeshap import plays_here, subset_path_dependent
from shapgov.explainers.kernels.treeshap import path_dependent_interactions
from shapgov.explainers.trees import TreeEnsemble
from shapgov.planning.game import INTERVENTIONAL, TREE_PATH_DEPENDENT
from shapgov.registry import PluginCalls, resolve_plugin_manager


def tree_ensemble(model: object, *, plugin_manager: Any = None) -> TreeEnsemble:
    """The flat trees of ``model``, from whichever plugin of ``plugin_manager`` (default:
    the default manager) can parse them.

    :raises UnsupportedModelError: No plugin parses the model.
    """
    plugins = PluginCalls(resolve_plugin_manager(plugin_manager))
    return _parse(model, plugins)


def _parse(model: object, plugins: PluginCalls) -> TreeEnsemble:
    ens = plugins.first("shapgov_tree_ensemble", model=model)
    if ens is None:
        raise UnsupportedModelError(
            f"no plugin can parse the trees of {type(model).__name__}; install one that "
            "answers shapgov_tree_ensemble"
        )
    return ens


def _vertex_trees(request: VertexRequest) -> TreeEnsemble:
    """The request's vertex's trees, with as many outputs as the vertex has margins."""
    vertex = request.vertex
    ens = _parse(vertex.estimator, request.plugins)
    if ens.n_outputs != vertex.n_margins:
        raise UnsupportedModelError(
            f"{vertex.name}: parsed trees give {ens.n_outputs} outputs, the model "
            f"{vertex.n_margins}"
        )
    return ens


class TreeExplainer(Explainer):
    """Exact TreeSHAP in either game.

    :param max_exact_players: Most original columns for the coalition path (a response of
        the margin, or interaction values in the interventional game).
    """

    name = "tree"
    supports_response = True
    feature_perturbations = (INTERVENTIONAL, TREE_PATH_DEPENDENT)

    def __init__(self, *, max_exact_players: int = DEFAULT_MAX_EXACT_PLAYERS) -> None:
        self.max_exact_players = checked_max_players(max_exact_players)

    def explain(self, request: VertexRequest) -> VertexValues:
        ens = _vertex_trees(request)
        vertex, game = request.vertex, request.game
        if game.feature_perturbation == TREE_PATH_DEPENDENT:
            if vertex.response is not None:  # the plan never sends one; a direct call may
                raise UnsupportedModelError(
                    f"{vertex.name}: {vertex.response.name} output is explained in the "
                    "interventional game only"
                )
        elif vertex.response is not None or ens.derived is not None:
            # a response of the margin, or splits that read several columns at once (the
            # linear-time kernels read one column per split): every coalition, exactly
            return self._coalition_values(request, ens, interactions=False)
        # the kernels play the game of the original columns (several input columns of one
        # original column enter and leave coalitions together), not of the input columns
        active, player = players_of(request.origins)
        if game.feature_perturbation == TREE_PATH_DEPENDENT and plays_here(ens):
            phi, base = subset_path_dependent(ens, request.Z, players=player)
        elif game.feature_perturbation == TREE_PATH_DEPENDENT:
            phi, base = linear_path_dependent_shap(ens, request.Z, players=player)
        elif plays_oblivious_interventional(ens):
            phi, base = oblivious_interventional_shap(
                ens, request.Z, request.Z_background, game.background_weights, players=player
            )
        else:
            weights = game.background_weights
            phi, base = background_shap(
                ens, request.Z, request.Z_background, weights, players=player
            )
        return VertexValues(scatter_players(phi, active, request.n_features), base)

    def interactions(self, request: VertexRequest) -> np.ndarray:
        """SHAP interaction values ``(n, M, M, K)`` in the request's game.

        Path-dependent interaction values are computed per input column and summed into
        original columns; where an original column feeds several input columns (one-hot)
        its pairs are those sums (the diagonal still makes rows add up to the values).
        """
        ens = _vertex_trees(request)
        if request.game.feature_perturbation == TREE_PATH_DEPENDENT and plays_here(ens):
            active, player = players_of(request.origins)
            inter, _ = subset_path_dependent(ens, request.Z, players=player, interactions=True)
            return scatter_players(inter, active, request.n_features, pairs=True)
        if request.game.feature_perturbation == TREE_PATH_DEPENDENT:
            inter, _ = path_dependent_interactions(ens, request.Z)
            return group_sum_pairs(inter, request.origins, request.n_features)
        if request.vertex.response is not None or ens.derived is not None:
            return self._coalition_values(request, ens, interactions=True)
        active, player = players_of(request.origins)  # linear time, any number of columns
        weights = request.game.background_weights
        if plays_oblivious_interventional(ens):
            inter, _ = oblivious_interventional_shap(
                ens, request.Z, request.Z_background, weights, players=player, interactions=True
            )
            return scatter_players(inter, active, request.n_features, pairs=True)
        inter = background_interactions(
            ens, request.Z, request.Z_background, weights, players=player
        )
        return scatter_players(inter, active, request.n_features, pairs=True)

    def _coalition_values(
        self, request: VertexRequest, ens: TreeEnsemble, *, interactions: bool
    ) -> VertexValues | np.ndarray:
        """Exact interventional values (or interaction values) of the vertex's output,
        through the exact-coalition engine (see the module doc)."""
        vertex, Z, Zb = request.vertex, request.Z, request.Z_background
        active, player = players_of(request.origins)
        respond = vertex.output
        game = request.game

        def values(rows: slice) -> np.ndarray:
            margins = coalition_margins(ens, Z[rows], Zb, player, active.size)
            return game.average(respond(margins), axis=1)  # (r, 2**P, K_out)

        phi = exact_shapley(
            values,
            n_rows=Z.shape[0],
            n_players=active.size,
            elements_per_row=Zb.shape[0] * (1 << active.size) * ens.n_outputs,
            max_players=self.max_exact_players,
            what=f"{vertex.name} ({vertex.response.name if vertex.response else 'margin'})"
            + (f", whose trees split on {ens.derived.what}" if ens.derived else ""),
            instead=ens.derived.instead if ens.derived else "explain fewer columns",
            interactions=interactions,
        )
        out = scatter_players(phi, active, request.n_features, pairs=interactions)
        if interactions:
            return out
        base = game.average(respond(predict_raw(ens, Zb)), axis=0)
        return VertexValues(out, base)


@hookimpl(trylast=True)
def shapgov_explainers() -> list[type[Explainer]]:
    return [TreeExplainer]
