"""Path-dependent TreeSHAP of symmetric (oblivious) trees, every coalition per tree, with
the symmetry used: the kernel :mod:`.subset_treeshap` calls for CatBoost's default trees.

In an oblivious tree of depth D every node at level j splits alike and bit j of a leaf's
index is that split's outcome. The path-dependent walk (Lundberg et al. 2020, Algorithm
1) gives leaf l, in coalition S and for a row whose decision vector is d, the weight

    w_S(l, d) = prod_{j known in S} [bit_j(l) == d_j] * prod_{j unknown} C_j(l) / C_{j+1}(l)

where ``C_j(l)`` is the training weight of the leaves sharing bits j..D-1 with l (the
cover of l's ancestor at level j - 1; ``C_D`` the tree's), so

    v_S(d) = sum over leaves l with l = d on the known bits of value(l) * r_S(l),

``r_S(l)`` the product of the unknown levels' ratios. One pass over the 2**D leaves per
coalition bins ``value * r_S`` by the known bits and serves every decision vector the rows
reach: ``2**u * 2**D * D`` operations per tree (u its players), not per row. A level whose
subtree no training row reached (``C_{j+1} = 0``) splits its weight in halves: such a
subtree's leaves hold one value (the parser refuses others), so this is the collapsed leaf
the flat walk reads. A level is known in S when S holds every player its split reads
(``need`` masks: a CatBoost CTR over a combination reads several). Values and interaction
values then follow from the definitions (:mod:`.coalition_sums`).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from shapgov.explainers.kernels.coalition_sums import (
    _add_row,
    _interactions_from_coalitions,
    _values_from_coalitions,
    _weights,
)
from shapgov.explainers.trees import ObliviousLevels

#: Most players one tree may read (2**u coalitions per tree); the subset kernel's bound.
MAX_TREE_PLAYERS = 16


def level_ratios(levels: ObliviousLevels) -> np.ndarray:
    """``(T, D, 2**D)``: ``C_j(l) / C_{j+1}(l)`` per tree, level and leaf; 0.5 where
    ``C_{j+1}(l) = 0`` (see the module), 1.0 beyond a tree's depth."""
    t, d = levels.node.shape
    n_leaves = 1 << d
    weight = levels.leaf_weight
    out = np.ones((t, d, n_leaves))
    for j in range(d):
        # cover of the leaves sharing bits j..D-1 (and j+1..D-1) with each leaf
        cover_j = np.repeat(weight.reshape(t, n_leaves >> j, 1 << j).sum(axis=2), 1 << j, axis=1)
        above = np.repeat(
            weight.reshape(t, n_leaves >> (j + 1), 1 << (j + 1)).sum(axis=2), 1 << (j + 1), axis=1
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(above > 0, cover_j / np.where(above > 0, above, 1.0), 0.5)
        out[:, j] = np.where((j < levels.depth)[:, None], ratio, 1.0)
    return out


@njit(cache=True)
def _oblivious_tree_rows(
    decisions,
    level_split,
    left_is_true,
    depth,
    need,
    players_of_local,
    n_local,
    leaf_value,
    ratio,
    w1,
    w2,
    interactions,
    out_phi,
    out_inter,
    keys,
    hist,
):  # pragma: no cover - numba
    """Add one oblivious tree's values (or interaction values) to every row's.

    Path-dependent game when ``hist`` is empty; else the interventional game against a
    background whose decision vectors have the (weight-normalized) histogram ``hist``
    ``(2**depth,)``: a hybrid row takes the row's decision at the known levels and the
    background row's elsewhere, so ``v_S(d) = sum_c G_S(c) value(d & M_S | c)`` with
    ``G_S`` the histogram marginalized onto the unknown levels (M_S: the known ones).

    ``level_split[j]``: the row of ``decisions`` ``(S, n)`` (the distinct split) of level
    j; ``left_is_true[j]``: whether going left is bit 1; ``need[j]``: the local players
    level j reads; ``leaf_value`` ``(2**depth, K)``; ``ratio`` ``(depth, 2**depth)``;
    ``keys`` ``(n,)`` scratch.
    """
    n = decisions.shape[1]
    n_leaves = 1 << depth
    k_out = leaf_value.shape[1]
    keys[:] = 0
    for j in range(depth):
        row = decisions[level_split[j]]
        bit = 1 << j
        want = left_is_true[j]
        for r in range(n):
            if row[r] == want:
                keys[r] |= bit
    slot = np.full(n_leaves, -1, dtype=np.int64)
    found_keys = np.empty(n_leaves, dtype=np.int64)
    n_found = 0
    for r in range(n):
        if slot[keys[r]] < 0:
            slot[keys[r]] = n_found
            found_keys[n_found] = keys[r]
            n_found += 1
    n_masks = 1 << n_local
    v = np.zeros((n_found, n_masks, k_out))
    acc = np.zeros((n_leaves, k_out))
    marginal = np.zeros(n_leaves)
    for mask in range(n_masks):
        known = 0
        for j in range(depth):
            if (mask & need[j]) == need[j]:
                known |= 1 << j
        if hist.shape[0] > 0:  # interventional
            marginal[:] = 0.0
            for b in range(n_leaves):
                marginal[b & ~known] += hist[b]
            for f in range(n_found):
                d = found_keys[f] & known
                for c in range(n_leaves):
                    if marginal[c] != 0.0:
                        for k in range(k_out):
                            v[f, mask, k] += marginal[c] * leaf_value[d | c, k]
            continue
        acc[:] = 0.0
        for leaf in range(n_leaves):
            w = 1.0
            for j in range(depth):
                if not (known >> j) & 1:
                    w *= ratio[j, leaf]
            if w != 0.0:
                b = leaf & known
                for k in range(k_out):
                    acc[b, k] += w * leaf_value[leaf, k]
        for f in range(n_found):
            b = found_keys[f] & known
            for k in range(k_out):
                v[f, mask, k] = acc[b, k]
    width = n_local * n_local if interactions else n_local
    table = np.zeros((n_found, width, k_out))
    for f in range(n_found):
        if interactions:
            inter = _interactions_from_coalitions(v[f], n_local, w1, w2)
            table[f] = inter.reshape(n_local * n_local, k_out)
        else:
            table[f] = _values_from_coalitions(v[f], n_local, w1)
    for r in range(n):
        _add_row(
            out_phi, out_inter, r, table[slot[keys[r]]], players_of_local, n_local, 0, interactions
        )


@njit(cache=True, parallel=True)
def _oblivious_all(
    decisions,
    level_split,
    left_is_true,
    depth,
    level_slots,
    leaf_value,
    ratio,
    w1_by_u,
    w2_by_u,
    interactions,
    out_phi,
    out_inter,
    bg_decisions,
    bg_weights,
    out_base,
):  # pragma: no cover - numba
    """Every tree, in ``out_phi.shape[0]`` chunks of trees run in parallel, each adding to
    its own ``out_phi[c]`` (``out_inter[c]``); ``level_slots[t, j]`` lists the player
    slots level j of tree t reads (padded with -1). With background decisions
    ``bg_decisions`` ``(S, b)`` (weights ``bg_weights``, summing to 1) the game is
    interventional and ``out_base[c]`` receives the background's mean raw output."""
    n_trees = depth.shape[0]
    n_chunks = out_phi.shape[0]
    n = decisions.shape[1]
    interventional = bg_decisions.shape[1] > 0
    for c in prange(n_chunks):
        keys = np.empty(n, dtype=np.int64)
        for t in range(c, n_trees, n_chunks):
            d = depth[t]
            hist = np.zeros((1 << d) if interventional else 0)
            if interventional:
                for q in range(bg_decisions.shape[1]):
                    b = 0
                    for j in range(d):
                        if bg_decisions[level_split[t, j], q] == left_is_true[t, j]:
                            b |= 1 << j
                    hist[b] += bg_weights[q]
                for b in range(1 << d):
                    for k in range(leaf_value.shape[2]):
                        out_base[c, k] += hist[b] * leaf_value[t, b, k]
            # the tree's players: the distinct slots its levels read, sorted
            used = np.empty(d * level_slots.shape[2], dtype=np.int64)
            u = 0
            for j in range(d):
                for q in range(level_slots.shape[2]):
                    p = level_slots[t, j, q]
                    if p < 0:
                        continue
                    seen = False
                    for a in range(u):
                        if used[a] == p:
                            seen = True
                    if not seen:
                        used[u] = p
                        u += 1
            used = np.sort(used[:u])
            need = np.zeros(d, dtype=np.int64)
            for j in range(d):
                for q in range(level_slots.shape[2]):
                    p = level_slots[t, j, q]
                    if p >= 0:
                        for a in range(u):
                            if used[a] == p:
                                need[j] |= 1 << a
            _oblivious_tree_rows(
                decisions,
                level_split[t, :d],
                left_is_true[t, :d],
                d,
                need,
                used,
                u,
                leaf_value[t, : 1 << d],
                ratio[t, :d, : 1 << d],
                w1_by_u[u],
                w2_by_u[u],
                interactions,
                out_phi[c],
                out_inter[c],
                keys,
                hist,
            )


def oblivious_rows(
    levels: ObliviousLevels,
    decisions: np.ndarray,
    level_split: np.ndarray,
    level_slots: np.ndarray,
    *,
    n_slots: int,
    interactions: bool,
    background: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every tree's values ``(n, slots, K)`` (or interaction values
    ``(n, slots, slots, K)``), and the base value's tree part ``(K,)`` (the background's
    weighted mean raw output without the offset; zeros in the path-dependent game).

    :param decisions: ``(S, n)`` whether each row goes left at each distinct split.
    :param level_split: ``(T, D)`` the distinct split (row of ``decisions``) of each level.
    :param level_slots: ``(T, D, R)`` the player slots each level's split reads, -1 padded.
    :param n_slots: Player slots (players plus the slot of constant columns).
    :param background: ``(decisions (S, b), weights (b,) summing to 1)`` of background
        rows: the interventional game; None: the path-dependent one.
    """
    n, k = decisions.shape[1], levels.leaf_value.shape[2]
    chunks = max(1, min(numba.get_num_threads(), levels.node.shape[0]))
    if interactions:  # the unused one: one empty buffer per chunk
        phi, inter = np.zeros((chunks, 1, 1, 1)), np.zeros((chunks, n, n_slots, n_slots, k))
    else:
        phi, inter = np.zeros((chunks, n, n_slots, k)), np.zeros((chunks, 1, 1, 1, 1))
    if background is None:
        bg_decisions, bg_weights = np.zeros((decisions.shape[0], 0), dtype=np.bool_), np.zeros(0)
    else:
        bg_decisions, bg_weights = background
    base = np.zeros((chunks, k))
    top = max(MAX_TREE_PLAYERS, 1) + 1
    w1_by_u, w2_by_u = np.zeros((top, top)), np.zeros((top, top))
    for u in range(top):
        w1, w2 = _weights(u)
        w1_by_u[u, : w1.shape[0]], w2_by_u[u, : w2.shape[0]] = w1, w2
    _oblivious_all(
        decisions,
        np.ascontiguousarray(level_split, dtype=np.int64),
        np.ascontiguousarray(levels.left_is_true),
        np.ascontiguousarray(levels.depth, dtype=np.int64),
        np.ascontiguousarray(level_slots, dtype=np.int64),
        np.ascontiguousarray(levels.leaf_value),
        level_ratios(levels),
        w1_by_u,
        w2_by_u,
        interactions,
        phi,
        inter,
        bg_decisions,
        np.ascontiguousarray(bg_weights, dtype=np.float64),
        base,
    )
    return (inter if interactions else phi).sum(axis=0), base.sum(axis=0)
