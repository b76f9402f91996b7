"""Path-dependent TreeSHAP by the definition, tree by tree, for trees with empty leaves.

The path-dependent value of a coalition S for one tree is the walk of Lundberg et al.
(2020, Algorithm 1): a split whose player is in S follows the row, any other averages
its children by cover. Linear TreeSHAP (:mod:`.linear_treeshap`) and the classic
recursion divide by a child's share of its parent's cover, so a leaf no training row
reached (cover 0, common in CatBoost's trees) breaks them; the walk itself never divides
by a child's cover. Here every tree's game is evaluated on all ``2**u`` coalitions of the
``u`` players its splits read (players outside a tree are null players in its game, and
Shapley values and SHAP interaction values of the others do not depend on them), and the
values (or interaction values, Lundberg et al. 2020, eq. 2) follow from the definition.

A tree's game depends on a row only through the row's decision at each split of that
tree: rows with the same decisions (the same leaf of an oblivious tree) share one
evaluation, computed once per tree (decisions packed into one integer where a tree has
at most 63 distinct splits). Each distinct split of the ensemble (nodes that route alike:
the levels of an oblivious tree, a binary feature reused across trees) is decided once
per row. Cost: rows x distinct splits, plus per tree distinct decision vectors x
``2**u`` x nodes and rows x tree splits; trees reading more than
:data:`MAX_TREE_PLAYERS` players are refused.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from shapgov.errors import UnsupportedModelError
from shapgov.explainers.kernels.coalition_sums import (
    _add_row,
    _interactions_from_coalitions,
    _values_from_coalitions,
    _weights,
)
from shapgov.explainers.kernels.oblivious_treeshap import MAX_TREE_PLAYERS, oblivious_rows
from shapgov.explainers.kernels.routing import goes_left
from shapgov.explainers.trees import (
    MISSING_DEFAULT,
    ZERO_AND_MISSING_DEFAULT,
    ZERO_THRESHOLD,
    TreeEnsemble,
)

#: Trees with at most this many distinct splits index their decision vectors directly
#: (a table of 2**splits slots) instead of sorting the rows by them.
DIRECT_KEY_BITS = 16


def has_empty_leaves(ensemble: TreeEnsemble) -> bool:
    """Whether a leaf has cover 0: the one routing rule that sends a path-dependent
    explanation here instead of to linear TreeSHAP."""
    return bool((ensemble.cover[ensemble.left < 0] <= 0).any())


def plays_here(ensemble: TreeEnsemble) -> bool:
    """The routing rule of the path-dependent game, defined once: trees with empty leaves
    (:func:`has_empty_leaves`) or splits on derived columns (read from several columns at
    once) are played here, every other ensemble by linear TreeSHAP."""
    return ensemble.derived is not None or has_empty_leaves(ensemble)


@njit(cache=True)
def _coalition_values(
    start, left, right, need, cover, value, decide, n_local
):  # pragma: no cover - numba
    """v[mask, k] for every coalition of the tree's local players; split i follows the row
    when the coalition holds every local player of its mask ``need[i]``."""
    n_masks = 1 << n_local
    k_out = value.shape[1]
    v = np.zeros((n_masks, k_out))
    stack_n = np.empty(4096, dtype=np.int64)
    stack_w = np.empty(4096)
    for mask in range(n_masks):
        top = 0
        stack_n[0] = start
        stack_w[0] = 1.0
        top = 1
        while top > 0:
            top -= 1
            i = stack_n[top]
            w = stack_w[top]
            if left[i] < 0:
                for k in range(k_out):
                    v[mask, k] += w * value[i, k]
                continue
            if (mask & need[i]) == need[i]:
                stack_n[top] = left[i] if decide[i] else right[i]
                stack_w[top] = w
                top += 1
            else:
                c = cover[i]
                stack_n[top] = left[i]
                stack_w[top] = w * cover[left[i]] / c
                stack_n[top + 1] = right[i]
                stack_w[top + 1] = w * cover[right[i]] / c
                top += 2
    return v


@njit(cache=True)
def _split_decisions(
    X, nodes, feature, threshold, default_left, missing, cat_start, cat_end, cat_values
):  # pragma: no cover - numba
    """``out[r, s]``: whether row r goes left at distinct split s (node ``nodes[s]``)."""
    n = X.shape[0]
    out = np.zeros((n, nodes.shape[0]), dtype=np.bool_)
    for r in range(n):
        for s in range(nodes.shape[0]):
            i = nodes[s]
            out[r, s] = goes_left(
                X[r, feature[i]],
                i,
                threshold,
                default_left,
                missing,
                cat_start,
                cat_end,
                cat_values,
            )
    return out


@njit(cache=True)
def _row_values(
    row,
    decisions,
    t_start,
    t_end,
    left,
    right,
    node_split,
    need,
    cover,
    value,
    decide,
    n_local,
    w1,
    w2,
    interactions,
):  # pragma: no cover - numba
    """One row's values ``(u, K)`` (interactions: ``(u * u, K)``) in one tree's game."""
    for i in range(t_start, t_end):
        if left[i] >= 0:
            decide[i] = decisions[node_split[i], row]
    v = _coalition_values(t_start, left, right, need, cover, value, decide, n_local)
    if interactions:
        inter = _interactions_from_coalitions(v, n_local, w1, w2)
        return inter.reshape(n_local * n_local, value.shape[1])
    return _values_from_coalitions(v, n_local, w1)


@njit(cache=True)
def _tree_rows(
    decisions,
    t_start,
    t_end,
    left,
    right,
    node_split,
    tree_splits,
    need,
    players_of_local,
    cover,
    value,
    n_local,
    w1,
    w2,
    interactions,
    out_phi,
    out_inter,
    out_offset,
    direct_bits,
    packed_bits,
):  # pragma: no cover - numba
    """Add one tree's values (or interaction values) to every row's; ``tree_splits`` are
    the distinct splits of the tree (columns of ``decisions``), ``node_split[i]`` the
    distinct split of node i."""
    n = decisions.shape[1]
    n_splits = tree_splits.shape[0]
    keys = np.zeros(n, dtype=np.int64)
    packed = n_splits <= packed_bits
    decide = np.zeros(left.shape[0], dtype=np.bool_)
    if packed:
        for r in range(n):
            key = 0
            for s in range(n_splits):
                if decisions[tree_splits[s], r]:
                    key |= 1 << s
            keys[r] = key
    # rows with one decision vector share one evaluation: number the vectors met
    group = np.empty(n, dtype=np.int64)
    n_found = 0
    if packed and n_splits <= direct_bits:
        # few splits (an oblivious tree's levels): one slot per decision vector, no sort
        slot = np.full(1 << n_splits, -1, dtype=np.int64)
        for r in range(n):
            if slot[keys[r]] < 0:
                slot[keys[r]] = n_found
                n_found += 1
            group[r] = slot[keys[r]]
    elif packed:
        order = np.argsort(keys, kind="mergesort")
        for q in range(n):
            if q == 0 or keys[order[q]] != keys[order[q - 1]]:
                n_found += 1
            group[order[q]] = n_found - 1
    else:  # too many splits to pack: every row on its own
        for r in range(n):
            group[r] = r
        n_found = n
    # the rows of each group, in row order (a counting sort)
    starts = np.zeros(n_found + 1, dtype=np.int64)
    for r in range(n):
        starts[group[r] + 1] += 1
    for f in range(n_found):
        starts[f + 1] += starts[f]
    filled = starts[:-1].copy()
    rows = np.empty(n, dtype=np.int64)
    for r in range(n):
        rows[filled[group[r]]] = r
        filled[group[r]] += 1
    for f in range(n_found):
        found = _row_values(
            rows[starts[f]],
            decisions,
            t_start,
            t_end,
            left,
            right,
            node_split,
            need,
            cover,
            value,
            decide,
            n_local,
            w1,
            w2,
            interactions,
        )
        for q in range(starts[f], starts[f + 1]):
            _add_row(
                out_phi, out_inter, rows[q], found, players_of_local, n_local, out_offset,
                interactions,
            )  # fmt: skip


def split_decisions(ens: TreeEnsemble, X: np.ndarray, split_nodes: np.ndarray) -> np.ndarray:
    """``(S, n)`` booleans: whether each row goes left at each distinct split. Numerical
    splits compare each row with the threshold after the missing-value rule of
    ``routing.goes_left`` (one numba pass per column); categorical ones (few values:
    their category sets are scanned per label) are decided once per distinct value of the
    column by the routing kernel itself and gathered back to the rows."""
    out = np.empty((split_nodes.shape[0], X.shape[0]), dtype=np.bool_)
    columns = ens.feature[split_nodes]
    categorical = ens.cat_start[split_nodes] < ens.cat_end[split_nodes]
    for c in np.unique(columns):
        numeric = np.flatnonzero((columns == c) & ~categorical)
        if numeric.size:
            nodes = split_nodes[numeric]
            part = np.empty((numeric.size, X.shape[0]), dtype=np.bool_)
            _numeric_decisions(
                np.ascontiguousarray(X[:, c]),
                np.ascontiguousarray(ens.threshold[nodes]),
                np.ascontiguousarray(ens.missing[nodes]),
                np.ascontiguousarray(ens.default_left[nodes]),
                part,
            )
            out[numeric] = part
        listed = np.flatnonzero((columns == c) & categorical)
        if listed.size:
            values, inverse = np.unique(X[:, c], return_inverse=True)
            on_values = _split_decisions(
                np.ascontiguousarray(values[:, None]),
                split_nodes[listed],
                np.zeros_like(ens.feature),
                *ens.routing(),
            )
            out[listed] = on_values[inverse.ravel()].T
    return out


@njit(cache=True)
def _numeric_decisions(x, threshold, missing, default_left, out):  # pragma: no cover - numba
    """``out[s, r]``: left iff ``x[r] <= threshold[s]`` after split s's missing-value
    rule (0: NaN reads as 0.0; 1: NaN follows ``default_left``; 2: NaN and zero follow
    it), as ``routing.goes_left`` decides one value."""
    for s in range(threshold.shape[0]):  # one pass per split: ~1 ns a comparison
        t, kind, dl = threshold[s], missing[s], default_left[s]
        for r in range(x.shape[0]):
            v = x[r]
            if np.isnan(v):
                out[s, r] = dl if kind >= MISSING_DEFAULT else t >= 0.0
            elif kind == ZERO_AND_MISSING_DEFAULT and abs(v) <= ZERO_THRESHOLD:
                out[s, r] = dl
            else:
                out[s, r] = v <= t


def distinct_splits(
    ens: TreeEnsemble, nodes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(split of every node (-1 at leaves and nodes not asked about), one node per
    distinct split)``: nodes that route every value alike (same column, threshold,
    missing rule and category set, as the levels of an oblivious tree and a binary
    feature reused across trees do) share one split, so a row's decision is computed once
    per split, not per node. ``nodes``: only these split nodes (default: all)."""
    node_split = np.full(ens.left.shape[0], -1, dtype=np.int64)
    split = ens.left >= 0
    if nodes is not None:
        split = split & np.isin(np.arange(split.shape[0]), nodes)
    numeric = np.flatnonzero(split & (ens.cat_start >= ens.cat_end))
    keys = np.column_stack(
        [
            ens.feature[numeric],
            ens.threshold[numeric].view(np.int64),  # the bits: equal thresholds, equal keys
            ens.default_left[numeric].astype(np.int64),
            ens.missing[numeric].astype(np.int64),
        ]
    )
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    node_split[numeric] = inverse.ravel()
    chosen = list(numeric[first])
    found: dict[tuple, int] = {}
    for i in np.flatnonzero(split & (ens.cat_start < ens.cat_end)):  # few: scanned here
        a, b = ens.cat_start[i], ens.cat_end[i]
        key = (
            int(ens.feature[i]),
            bool(ens.default_left[i]),
            int(ens.missing[i]),
            ens.cat_values[a:b].tobytes(),
        )
        if key not in found:
            found[key] = len(chosen)
            chosen.append(int(i))
        node_split[i] = found[key]
    return node_split, np.asarray(chosen, dtype=np.int64)


def level_inputs(
    ens: TreeEnsemble, node_split: np.ndarray, slot: np.ndarray, derived_slots: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct split of each level (T, D), player slots each level reads (T, D, R),
    -1 padded)`` of an ensemble with a symmetric layout (``ensemble.oblivious``).

    :raises UnsupportedModelError: A tree reads more than :data:`MAX_TREE_PLAYERS` players.
    """
    levels = ens.oblivious
    reads = [slot[c : c + 1] for c in range(ens.n_features)] + derived_slots
    width = max(r.shape[0] for r in reads)
    table = np.full((len(reads), width), -1, dtype=np.int64)
    for c, r in enumerate(reads):
        table[c, : r.shape[0]] = r
    at = np.maximum(levels.node, 0)
    level_slots = np.where((levels.node >= 0)[:, :, None], table[ens.feature[at]], -1)
    if level_slots.shape[1] * level_slots.shape[2] > MAX_TREE_PLAYERS:  # else cannot be
        for t in range(levels.node.shape[0]):
            u = np.unique(level_slots[t][level_slots[t] >= 0]).shape[0]
            if u > MAX_TREE_PLAYERS:
                raise UnsupportedModelError(_too_many(u, t))
    return node_split[at], level_slots


def level_nodes(ens: TreeEnsemble) -> np.ndarray:
    """The nodes the symmetric layout reads (one per level): the only ones whose
    decisions its kernels need."""
    return np.unique(ens.oblivious.node[ens.oblivious.node >= 0])


def column_players(
    ens: TreeEnsemble, players: np.ndarray | None
) -> tuple[np.ndarray, list[np.ndarray], int]:
    """``(slot of each input column, slots each derived column reads, P)``: a derived
    column reads the union of its columns' slots (see ``column_slots``)."""
    from shapgov.explainers.kernels.background_treeshap import column_slots

    slot, n_players = column_slots(ens, players)
    reads = ens.derived.reads if ens.derived is not None else ()
    return slot, [np.unique(slot[list(cols)]) for cols in reads], n_players


def _too_many(u: int, t: int) -> str:
    return (
        f"tree {t} reads {u} players; the path-dependent game of trees with empty leaves or "
        f"derived columns is evaluated over every coalition of a tree's players (at most "
        f"{MAX_TREE_PLAYERS}): explain it with feature_perturbation='interventional'"
    )


def _flat_rows(
    ens: TreeEnsemble,
    decisions: np.ndarray,
    node_split: np.ndarray,
    slot: np.ndarray,
    derived_slots: list[np.ndarray],
    value: np.ndarray,
    phi: np.ndarray,
    inter: np.ndarray,
    interactions: bool,
    direct_key_bits: int,
    packed_key_bits: int,
) -> None:
    """Every tree's values added to ``phi`` (``inter``), walking the flat nodes."""
    ends = np.append(ens.roots[1:], ens.left.shape[0])
    need = np.zeros(ens.left.shape[0], dtype=np.int64)
    for t, (start, end) in enumerate(zip(ens.roots, ends, strict=True)):
        splits = start + np.flatnonzero(ens.left[start:end] >= 0)
        columns = ens.feature[splits]
        plain = columns < ens.n_features
        derived = [derived_slots[c - ens.n_features] for c in columns[~plain]]
        used = np.unique(np.concatenate([slot[columns[plain]], *derived]))
        u = used.shape[0]
        if u > MAX_TREE_PLAYERS:
            raise UnsupportedModelError(_too_many(u, t))
        need[splits[plain]] = 1 << np.searchsorted(used, slot[columns[plain]])
        for i, slots_read in zip(splits[~plain], derived, strict=True):
            need[i] = int(np.bitwise_or.reduce(1 << np.searchsorted(used, slots_read)))
        w1, w2 = _weights(u)
        tree_splits = np.unique(node_split[start:end][ens.left[start:end] >= 0])
        _tree_rows(
            decisions,
            int(start),
            int(end),
            ens.left,
            ens.right,
            node_split,
            tree_splits,
            need,
            np.ascontiguousarray(used, dtype=np.int64),
            ens.cover,
            value,
            u,
            w1,
            w2,
            interactions,
            phi,
            inter,
            int(ens.tree_output[t]),
            int(direct_key_bits),
            min(int(packed_key_bits), 63),
        )


def subset_path_dependent(
    ensemble: TreeEnsemble,
    X: np.ndarray,
    *,
    players: np.ndarray | None = None,
    interactions: bool = False,
    direct_key_bits: int = DIRECT_KEY_BITS,
    packed_key_bits: int = 63,
    oblivious: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact path-dependent SHAP values ``(n, P, K)`` (or interaction values
    ``(n, P, P, K)``) and the base value ``(K,)``, whatever the leaves' covers.

    :param ensemble: The trees (split nodes need a positive cover; leaves may have 0). A
        split on a derived column (:class:`~shapgov.explainers.trees.DerivedColumns`)
        follows the row only in coalitions holding every column it reads.
    :param X: Rows as the trees compare them, ``(n, n_features)``.
    :param players: The player of each input column (see
        :func:`~shapgov.explainers.kernels.background_treeshap.node_players`); default:
        every column its own player.
    :param interactions: Return SHAP interaction values instead of values.
    :param direct_key_bits: Trees with at most this many distinct splits keep one slot per
        decision vector; others sort their rows by it (0: every tree sorts; a cross-check).
    :param packed_key_bits: Trees with more distinct splits (at most 63) evaluate every row
        on its own (0: every tree does; a cross-check).
    :param oblivious: Where the ensemble holds its trees level by level
        (``ensemble.oblivious``), use the symmetry (:mod:`.oblivious_treeshap`); False walks
        the flat nodes instead (a cross-check).
    :raises UnsupportedModelError: A tree reads more than :data:`MAX_TREE_PLAYERS`
        players (explain it in the interventional game).
    :raises InputError: ``X`` or ``players`` do not fit the trees.
    """
    ens = ensemble.validate(derived=True)
    X = ens.split_inputs(ens.check_input(X))
    slot, derived_slots, n_players = column_players(ens, players)
    slots = n_players + 1  # the extra slot holds columns outside the game (dropped)
    n = X.shape[0]
    k_all = ens.n_outputs
    oblivious = oblivious and ens.oblivious is not None
    # the symmetric layout reads one node per level: only those need a decision
    some = level_nodes(ens) if oblivious else None
    node_split, split_nodes = distinct_splits(ens, some)
    decisions = split_decisions(ens, X, split_nodes)
    if oblivious:
        levels = ens.oblivious
        level_split, slots_read = level_inputs(ens, node_split, slot, derived_slots)
        out, _ = oblivious_rows(
            levels, decisions, level_split, slots_read, n_slots=slots, interactions=interactions
        )
        if interactions:
            inter = out
        else:
            phi = out
    else:
        phi = np.zeros((n, slots, k_all)) if not interactions else np.zeros((1, 1, 1))
        inter = np.zeros((n, slots, slots, k_all)) if interactions else np.zeros((1, 1, 1, 1))
        value = np.ascontiguousarray(ens.value, dtype=np.float64)
        _flat_rows(ens, decisions, node_split, slot, derived_slots, value, phi, inter,
                   interactions, direct_key_bits, packed_key_bits)  # fmt: skip
    base = ens.expected_value()
    if interactions:
        return inter[:, :n_players, :n_players], base
    return phi[:, :n_players], base
