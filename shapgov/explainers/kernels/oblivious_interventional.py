"""Exact interventional TreeSHAP of symmetric (oblivious) trees: CatBoost's default trees
against a background, values and interaction values.

In the interventional game (Janzing et al. 2020; Lundberg et al. 2020, the
``interventional`` TreeSHAP) ``v_x(S) = sum_b w_b f(x_S, z_b)``. In an oblivious tree
the hybrid row ``(x_S, z_b)`` takes, at every level whose split reads only players in S,
the decision of x, and elsewhere the decision of z_b (a level reads one input column,
so one player); its leaf is ``d(x) & M_S | d(z_b) & ~M_S`` (M_S: the levels known in S).
So a tree's game depends on the background only through the histogram of its decision
vectors, and on a row only through its own: per tree, ``2**u`` coalitions x decision
vectors the rows reach x ``2**D`` cells (:mod:`.oblivious_treeshap` evaluates them),
whatever the number of background rows. Splits on derived columns (a CatBoost CTR over a
combination) read several players, so a hybrid's decision is neither x's nor z_b's:
such ensembles are refused here and take the exact-coalition route.
"""

from __future__ import annotations

import numpy as np

from shapgov.errors import UnsupportedModelError
from shapgov.explainers.kernels.oblivious_treeshap import oblivious_rows
from shapgov.explainers.kernels.subset_treeshap import (
    column_players,
    distinct_splits,
    level_inputs,
    level_nodes,
    split_decisions,
)
from shapgov.explainers.trees import TreeEnsemble


def plays_oblivious_interventional(ensemble: TreeEnsemble) -> bool:
    """The routing rule, defined once: symmetric trees without derived columns."""
    return ensemble.oblivious is not None and ensemble.derived is None


def oblivious_interventional_shap(
    ensemble: TreeEnsemble,
    X: np.ndarray,
    background: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    players: np.ndarray | None = None,
    interactions: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact interventional SHAP values ``(n, P, K)`` (or interaction values
    ``(n, P, P, K)``) and the base value ``(K,)`` (the weighted background mean of the
    raw output), in the raw margin.

    :param ensemble: Trees with a symmetric layout (``ensemble.oblivious``) and no derived
        columns.
    :param X: Rows to explain, ``(n, M)``.
    :param background: Background rows, ``(b, M)``.
    :param weights: Background row weights ``(b,)`` (non-negative, positive sum); default
        equal.
    :param players: The player of each input column (-1: a constant column); default:
        every column its own player.
    :raises UnsupportedModelError: The trees are not symmetric, or split on derived
        columns, or a tree reads more than 16 players.
    :raises InputError: Empty background, bad weights or players, or columns that do not
        fit.
    """
    from shapgov.explainers.kernels.background_treeshap import checked_background

    if not plays_oblivious_interventional(ensemble):
        raise UnsupportedModelError(
            "this kernel reads symmetric trees without derived columns; use background_shap"
        )
    ens, X, Z, w = checked_background(ensemble, X, background, weights)  # w sums to 1
    slot, derived_slots, n_players = column_players(ens, players)
    node_split, split_nodes = distinct_splits(ens, level_nodes(ens))
    level_split, level_slots = level_inputs(ens, node_split, slot, derived_slots)
    values, base = oblivious_rows(
        ens.oblivious,
        split_decisions(ens, X, split_nodes),
        level_split,
        level_slots,
        n_slots=n_players + 1,
        interactions=interactions,
        background=(split_decisions(ens, Z, split_nodes), w),
    )
    if interactions:
        return values[:, :n_players, :n_players], base + ens.base_offset
    return values[:, :n_players], base + ens.base_offset
