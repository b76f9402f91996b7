"""Interventional ("background") TreeSHAP in time linear in rows + background rows.

For one leaf ``L`` of a tree and the ``d`` distinct features tested on its path, a row's
*pattern* is the bitmask of features whose path conditions it satisfies. In the
interventional game a hybrid ``(x_S, z_rest)`` reaches ``L`` iff every feature in ``S``
is satisfied by ``x`` and every other by ``z``; so, with ``A`` the features only ``x``
satisfies and ``B`` those only ``z`` satisfies (a feature neither satisfies closes the
leaf), the leaf's game is ``v(S) = value * [A ⊆ S, S ∩ B = ∅]``, whose Shapley values are
``value * (|A|-1)! |B|! / (|A|+|B|)!`` for ``i ∈ A`` and ``-value * |A|! (|B|-1)! /
(|A|+|B|)!`` for ``i ∈ B`` (Lundberg et al. 2020, the interventional TreeSHAP proof).
These depend on ``x`` and ``z`` only through their patterns, so per leaf the background
is reduced once to weighted pattern counts ``C[zp]`` (work: background rows x path
length), each distinct row pattern ``xp`` gets its per-feature coefficients by summing
over the patterns ``zp ⊇ ~xp`` (``2**|xp|`` of them, a per-path term that depends on depth
only), and each row adds its pattern's coefficients (work: rows x path length). The
decision-pattern idea is that of WOODELF (Nadel and Wettenstein, AAAI-26,
arXiv:2511.09376); this is our own formulation and code.

Leaves with more than :data:`DENSE_MAX_FEATURES` distinct path features, and leaves whose
``2**d`` tables would cost more than pairing the rows with the background rows directly
(rows x background rows < ``2**d``: one served row, say), pair them for that leaf alone
(still exact). Patterns are 64-bit words, so a tree with a path that tests more than
:data:`MAX_PATH_FEATURES` distinct players (:func:`deep_trees`, the one routing rule) is
explained by the rows x background walk of :mod:`.interventional_treeshap` instead, that
tree alone: exact at any depth, in time rows x background rows.

Calls of :data:`TABLE_MIN_ROWS` rows or more tabulate every leaf's coefficients once for
all its patterns and take the rows in cache-sized blocks, one thread per block
(:mod:`.leaf_tables`); fewer rows take the per-block route here, tree chunks in parallel.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numba import njit, prange

from shapgov.errors import InputError
from shapgov.explainers.kernels.interventional_treeshap import pairwise_tree_shap
from shapgov.explainers.kernels.leaf_tables import (
    BLOCK_ROWS,
    TABLE_BYTES,
    _coefficients,
    _leaf_tables,
    _paired_leaf,
    _reach,
    _shapley_weights,
    _table_shap,
    _twig_tables,
    node_slots,
    table_layout,
    twig_layout,
)
from shapgov.explainers.kernels.routing import goes_left
from shapgov.explainers.trees import TreeEnsemble

#: Most distinct features on one path for the pattern-count tables (2**d entries).
DENSE_MAX_FEATURES = 18
#: Patterns are int64 bitmasks: trees with a wider path take the rows x background walk.
MAX_PATH_FEATURES = 62
#: Rows explained per kernel call, at most: per-chunk accumulators are (M, K, block)
#: floats, and a block's accumulators stay under ``ACCUMULATOR_BYTES``.
ROW_BLOCK = 1 << 15
ACCUMULATOR_BYTES = 64 << 20
#: Calls with at least this many rows take the leaf tables and row blocks of
#: :mod:`.leaf_tables` (tables cost ``3**d`` per leaf whatever the row count).
TABLE_MIN_ROWS = 20_000
#: Trees are summed in this many fixed chunks (trees c, c + 8, ...), whatever the number
#: of threads: a row's values are the same floats on 1 core, 2 or 64 (a Spark task with
#: one thread, a laptop, a server), not merely equal to rounding.
TREE_CHUNKS = 8


@njit(cache=True)
def _leaf_paths(left, right, feature, roots):
    """Every leaf's root-to-leaf path: ``(leaf_node, leaf_tree, path_ptr, path_node,
    path_left, path_slot, feat_ptr, feats)``; ``path_slot`` is the index of the node's
    feature among the leaf's distinct path features ``feats[feat_ptr[L]:feat_ptr[L+1]]``,
    numbered from the root down, so leaves under one node share its path's slots."""
    n_nodes = left.shape[0]
    n_leaves = 0
    for i in range(n_nodes):
        if left[i] < 0:
            n_leaves += 1
    parent = np.full(n_nodes, -1, np.int64)
    for i in range(n_nodes):
        if left[i] >= 0:
            parent[left[i]] = i
            parent[right[i]] = i
    tree_of = np.zeros(n_nodes, np.int64)
    for t in range(roots.shape[0]):
        end = roots[t + 1] if t + 1 < roots.shape[0] else n_nodes
        for i in range(roots[t], end):
            tree_of[i] = t
    leaf_node = np.empty(n_leaves, np.int64)
    leaf_tree = np.empty(n_leaves, np.int64)
    path_ptr = np.zeros(n_leaves + 1, np.int64)
    feat_ptr = np.zeros(n_leaves + 1, np.int64)
    k = 0
    for i in range(n_nodes):
        if left[i] < 0:
            leaf_node[k] = i
            leaf_tree[k] = tree_of[i]
            depth = 0
            j = i
            while parent[j] >= 0:
                depth += 1
                j = parent[j]
            path_ptr[k + 1] = path_ptr[k] + depth
            k += 1
    total = path_ptr[n_leaves]
    path_node = np.empty(total, np.int64)
    path_left = np.empty(total, np.bool_)
    path_slot = np.empty(total, np.int64)
    feats = np.empty(total, np.int64)
    for k in range(n_leaves):
        q = path_ptr[k]
        j = leaf_node[k]
        while parent[j] >= 0:
            p = parent[j]
            path_node[q] = p
            path_left[q] = left[p] == j
            q += 1
            j = p
        n_distinct = 0
        base = feat_ptr[k]
        # slots root first: every leaf under a node shares its ancestors' slots
        for q in range(path_ptr[k + 1] - 1, path_ptr[k] - 1, -1):
            f = feature[path_node[q]]
            slot = -1
            for s in range(n_distinct):
                if feats[base + s] == f:
                    slot = s
                    break
            if slot < 0:
                slot = n_distinct
                feats[base + n_distinct] = f
                n_distinct += 1
            path_slot[q] = slot
        feat_ptr[k + 1] = base + n_distinct
    return leaf_node, leaf_tree, path_ptr, path_node, path_left, path_slot, feat_ptr, feats


@njit(cache=True)
def _tree_patterns(
    Dt, t, roots, left, feature, threshold, default_left, missing, cat_start, cat_end,
    cat_values, leaf_first, leaf_last, path_ptr, path_node, path_left, path_slot, feat_ptr,
):  # fmt: skip
    """Patterns ``(leaves of tree t, rows)`` of the rows of ``Dt`` (the data transposed,
    ``(M, rows)``): each split is evaluated once per row, then every leaf clears the bit
    of each path node its rows do not follow. Loops run over rows innermost, on
    contiguous memory, so they vectorize."""
    root = roots[t]
    end = roots[t + 1] if t + 1 < roots.shape[0] else left.shape[0]
    n = Dt.shape[1]
    dec = np.zeros((end - root, n), np.bool_)
    for i in range(root, end):
        if left[i] >= 0:
            col = Dt[feature[i]]
            di = dec[i - root]
            for r in range(n):
                di[r] = goes_left(
                    col[r], i, threshold, default_left, missing, cat_start, cat_end, cat_values
                )
    out = np.empty((leaf_last - leaf_first, n), np.int64)
    for L in range(leaf_first, leaf_last):
        row = out[L - leaf_first]
        full = (np.int64(1) << (feat_ptr[L + 1] - feat_ptr[L])) - 1
        for r in range(n):
            row[r] = full
        for q in range(path_ptr[L], path_ptr[L + 1]):
            clear = ~(np.int64(1) << path_slot[q])
            want = path_left[q]
            di = dec[path_node[q] - root]
            for r in range(n):
                row[r] &= clear | -np.int64(di[r] == want)
    return out


@njit(cache=True)
def _row_and_background_patterns(
    Xt, Zt, t, roots, left, feature, threshold, default_left, missing, cat_start, cat_end,
    cat_values, leaf_first, leaf_last, path_ptr, path_node, path_left, path_slot, feat_ptr,
):  # fmt: skip
    """:func:`_tree_patterns` of the rows and of the background, for tree ``t``."""
    xpats = _tree_patterns(
        Xt, t, roots, left, feature, threshold, default_left, missing, cat_start, cat_end,
        cat_values, leaf_first, leaf_last, path_ptr, path_node, path_left, path_slot, feat_ptr,
    )  # fmt: skip
    zpats = _tree_patterns(
        Zt, t, roots, left, feature, threshold, default_left, missing, cat_start, cat_end,
        cat_values, leaf_first, leaf_last, path_ptr, path_node, path_left, path_slot, feat_ptr,
    )  # fmt: skip
    return xpats, zpats


@njit(cache=True, parallel=True)
def _background_patterns(
    Zt, roots, left, feature, threshold, default_left, missing, cat_start, cat_end,
    cat_values, leaf_ptr, path_ptr, path_node, path_left, path_slot, feat_ptr, deep,
):  # fmt: skip
    """:func:`_tree_patterns` of the background for every leaf ``(leaves, b)`` (0 for the
    leaves of ``deep`` trees, which have none): they depend on the trees and the
    background only, so a served model computes them once."""
    out = np.zeros((leaf_ptr[-1], Zt.shape[1]), np.int64)
    for t in prange(roots.shape[0]):
        if deep[t]:
            continue
        out[leaf_ptr[t] : leaf_ptr[t + 1]] = _tree_patterns(
            Zt, t, roots, left, feature, threshold, default_left, missing, cat_start, cat_end,
            cat_values, leaf_ptr[t], leaf_ptr[t + 1], path_ptr, path_node, path_left,
            path_slot, feat_ptr,
        )  # fmt: skip
    return out


@njit(cache=True)
def _leaf_values(
    L, xpat, zpat, w, value, tree_output, leaf_node, leaf_tree, feat_ptr, feats, wa, wb,
    dense_max, phi, reach,
):  # fmt: skip
    """Add leaf ``L``'s Shapley values to ``phi`` ``(M, K, n)`` and its weighted reach
    times its value to ``reach`` ``(K,)``, from the rows' patterns ``xpat`` ``(n,)`` and
    the background's ``zpat`` ``(b,)``."""
    n = xpat.shape[0]
    nz = zpat.shape[0]
    n_values = value.shape[1]
    d = feat_ptr[L + 1] - feat_ptr[L]
    full = (np.int64(1) << d) - 1
    leaf = leaf_node[L]
    o = tree_output[leaf_tree[L]]
    fbase = feat_ptr[L]
    # the tables cost 2**d per leaf whatever the row count; few rows pair faster
    if d <= dense_max and n * nz >= (np.int64(1) << d):
        counts = np.zeros(np.int64(1) << d)
        for r in range(nz):
            zp = zpat[r]
            counts[zp] += w[r]
        for k in range(n_values):
            reach[o + k] += counts[full] * value[leaf, k]
        if d == 0:
            return
        marker = np.full(np.int64(1) << d, -1, np.int64)
        table = np.empty((d, min(n, np.int64(1) << d)))
        coef = np.empty(d)
        row_idx = np.empty(n, np.int64)
        used = 0
        for r in range(n):
            xp = xpat[r]
            idx = marker[xp]
            if idx < 0:
                idx = used
                marker[xp] = idx
                _coefficients(xp, d, counts, wa, wb, coef)
                for j in range(d):
                    table[j, idx] = coef[j]
                used += 1
            row_idx[r] = idx
        for j in range(d):  # rows innermost: contiguous adds into phi[f, output]
            f = feats[fbase + j]
            tj = table[j]
            for k in range(n_values):
                v = value[leaf, k]
                dst = phi[f, o + k]
                for r in range(n):
                    dst[r] += tj[row_idx[r]] * v
    else:  # deep path, or few rows (a served request): pair rows and background rows
        for r in range(nz):
            if zpat[r] == full:
                for k in range(n_values):
                    reach[o + k] += w[r] * value[leaf, k]
        _paired_leaf(L, xpat, n, d, zpat, w, wa, wb, feats, fbase, value, leaf, o, phi)


@njit(cache=True)
def _distinct_patterns(zpat_all, w):
    """Per leaf, the background's distinct patterns (ascending) and their summed weights:
    ``(patterns (L, b), weights (L, b), counts (L,))``, entries past ``counts[L]`` unused.
    The pairing route then walks distinct patterns, not background rows (a served row
    against 100 background rows meets a few dozen patterns per leaf); the sums run in
    (pattern, row) order, the same on any number of threads."""
    n_leaves, b = zpat_all.shape
    zu = np.zeros((n_leaves, b), np.int64)
    wu = np.zeros((n_leaves, b))
    nu = np.zeros(n_leaves, np.int64)
    for L in range(n_leaves):
        order = np.argsort(zpat_all[L], kind="mergesort")
        k = -1
        prev = np.int64(0)
        for i in range(b):
            r = order[i]
            zp = zpat_all[L, r]
            if k < 0 or zp != prev:
                k += 1
                zu[L, k] = zp
                prev = zp
            wu[L, k] += w[r]
        nu[L] = k + 1
    return zu, wu, nu


@njit(cache=True, parallel=True)
def _background_shap(
    Xt, zpat_all, w_all, n_distinct, left, right, feature, threshold, default_left, missing,
    cat_start, cat_end, cat_values, value, roots, tree_output, n_outputs, leaf_node, leaf_tree,
    path_ptr, path_node, path_left, path_slot, feat_ptr, feats, leaf_ptr, deep, wa, wb,
    dense_max, n_chunks, m,
):  # fmt: skip
    """Values ``(M, K, n)`` and the background's weighted reach ``(K,)`` of the trees not
    ``deep``, from each leaf's distinct background patterns ``zpat_all[L, :n_distinct[L]]``
    and their weights ``w_all[L, ...]`` (:func:`_distinct_patterns`)."""
    n = Xt.shape[1]
    n_trees = roots.shape[0]
    # one accumulator per chunk of trees (trees c, c + n_chunks, ...): no two threads
    # ever add into the same one
    phi = np.zeros((n_chunks, m, n_outputs, n))
    reach = np.zeros((n_chunks, n_outputs))
    for c in prange(n_chunks):
        for t in range(c, n_trees, n_chunks):
            if deep[t]:
                continue
            first, last = leaf_ptr[t], leaf_ptr[t + 1]
            xpats = _tree_patterns(
                Xt, t, roots, left, feature, threshold, default_left, missing, cat_start,
                cat_end, cat_values, first, last, path_ptr, path_node, path_left, path_slot,
                feat_ptr,
            )  # fmt: skip
            for L in range(first, last):
                nz = n_distinct[L]
                _leaf_values(
                    L, xpats[L - first], zpat_all[L, :nz], w_all[L, :nz], value, tree_output,
                    leaf_node, leaf_tree, feat_ptr, feats, wa, wb, dense_max, phi[c],
                    reach[c],
                )  # fmt: skip
    return phi.sum(axis=0), reach.sum(axis=0)


def checked_background(
    ensemble: TreeEnsemble, X: np.ndarray, background: np.ndarray, weights: np.ndarray | None
) -> tuple[TreeEnsemble, np.ndarray, np.ndarray, np.ndarray]:
    """The validated trees, rows and background as the kernels take them, and the weights
    normalized to sum to one.

    :raises InputError: Empty background, bad weights, or columns that do not fit.
    """
    ens = ensemble.validate()
    X = ens.check_input(X)
    Z = ens.check_input(background)
    if Z.shape[0] == 0:
        raise InputError("the background is empty; pass at least one background row")
    w = np.ones(Z.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (Z.shape[0],) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise InputError(
            f"background weights must be {Z.shape[0]} finite non-negative numbers with a "
            "positive sum"
        )
    return ens, X, Z, np.ascontiguousarray(w / w.sum())


def background_shap(
    ensemble: TreeEnsemble,
    X: np.ndarray,
    background: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    players: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact interventional TreeSHAP, linear in rows + background rows.

    :param ensemble: The flat trees.
    :param X: Rows to explain, ``(n, M)``.
    :param background: Background rows, ``(b, M)``.
    :param weights: Background row weights ``(b,)`` (non-negative, positive sum); default
        equal. The game is ``v(S) = sum_b w_b f(x_S, z_b) / sum_b w_b``.
    :param players: The player of each input column, ``(M,)`` ints in ``0..P-1``, or -1
        for a column that is the same in every row and background row (a constant);
        default: every column its own player. Columns of one player enter and leave a
        coalition together, so the values are the exact Shapley values of the game whose
        players these are (one-hot columns of one original column, or a declared group),
        not sums of per-column values: a leaf's path conditions are grouped by player.
    :returns: ``(values (n, P, K), base (K,))`` in the raw margin (``P = M`` without
        ``players``); ``base`` is the weighted background mean of the raw output, so
        ``base + values.sum(1)`` is the raw output of each row.
    :raises InputError: Empty background, bad weights or players, or columns that do not
        fit.

    A tree with a path that tests more than :data:`MAX_PATH_FEATURES` distinct players
    (:func:`deep_trees`) is walked per (row, background row) instead
    (:func:`~.interventional_treeshap.pairwise_tree_shap`); the other trees keep this
    kernel.
    """
    ens, X, Z, w = checked_background(ensemble, X, background, weights)
    node_player, n_players = node_players(ens, players)
    paths, leaf_ptr, deep, wa, wb, distinct = _prepared(ens, Z, w, node_player)
    zpat, zweight, n_distinct = distinct
    if X.shape[0] >= TABLE_MIN_ROWS:
        phi = _tabled(ens, X, paths, leaf_ptr, deep, wa, wb, distinct, n_players + 1)
    else:
        phi = _blocked(ens, X, paths, leaf_ptr, deep, wa, wb, distinct, n_players + 1)
    reach = _reach(zpat, zweight, n_distinct, paths[0], paths[1], paths[6], deep, ens.value,
                   ens.tree_output, ens.n_outputs)  # fmt: skip
    if deep.any():
        walked, _, deep_reach = pairwise_tree_shap(
            ens, X, Z, w, node_player, n_players + 1, np.flatnonzero(deep)
        )
        phi += walked
        reach = reach + deep_reach
    return phi[:, :n_players], reach + ens.base_offset


def _blocked(ens, X, paths, leaf_ptr, deep, wa, wb, distinct, m) -> np.ndarray:
    """Values ``(n, m, K)`` of the trees not ``deep``, tree chunks in parallel, rows in
    blocks that bound the accumulators (:func:`_background_shap`)."""
    zpat, zweight, n_distinct = distinct
    chunks = max(1, min(TREE_CHUNKS, ens.n_trees))
    phi = np.empty((X.shape[0], m, ens.n_outputs))
    per_row = 8 * chunks * m * ens.n_outputs
    block = max(256, min(ROW_BLOCK, ACCUMULATOR_BYTES // per_row))
    for start in range(0, max(X.shape[0], 1), block):  # bounds memory for large X
        rows = slice(start, start + block)
        values, _ = _background_shap(
            np.ascontiguousarray(X[rows].T),
            zpat,
            zweight,
            n_distinct,
            *ens.structure(),
            ens.value,
            ens.roots,
            ens.tree_output,
            ens.n_outputs,
            *paths,
            leaf_ptr,
            deep,
            wa,
            wb,
            DENSE_MAX_FEATURES,
            chunks,
            m,
        )
        phi[rows] = values.transpose(2, 0, 1)
    return phi


def _tabled(ens, X, paths, leaf_ptr, deep, wa, wb, distinct, m) -> np.ndarray:
    """Values ``(n, m, K)`` of the trees not ``deep`` from leaf tables, row blocks in
    parallel (:mod:`.leaf_tables`); the per-block route where the tables would take more
    than :data:`~.leaf_tables.TABLE_BYTES`."""
    zpat, zweight, n_distinct = distinct
    leaf_node, leaf_tree, _, path_node, _, path_slot, feat_ptr, feats = paths
    widths = np.diff(feat_ptr)
    eligible = ~deep[leaf_tree] & (widths <= DENSE_MAX_FEATURES)
    tab_ptr, total, worth_it = table_layout(widths, n_distinct, eligible, X.shape[0])
    if not worth_it:
        return _blocked(ens, X, paths, leaf_ptr, deep, wa, wb, distinct, m)
    node_slot, leaf_of = node_slots(ens, leaf_node, path_node, path_slot)
    twig_ptr, twig_total = twig_layout(
        ens.left, ens.right, leaf_of, feat_ptr, tab_ptr, ens.value.shape[1]
    )
    if 8 * (total + twig_total) > TABLE_BYTES:
        return _blocked(ens, X, paths, leaf_ptr, deep, wa, wb, distinct, m)
    tables = _leaf_tables(zpat, zweight, n_distinct, feat_ptr, tab_ptr, total, wa, wb)
    twigs = _twig_tables(ens.left, ens.right, leaf_of, feat_ptr, node_slot, ens.value,
                         tables, tab_ptr, twig_ptr, twig_total)  # fmt: skip
    sizes = np.diff(np.append(ens.roots, ens.left.shape[0]))
    return _table_shap(
        np.ascontiguousarray(X),
        *ens.structure(),
        ens.value,
        ens.roots,
        ens.tree_output,
        ens.n_outputs,
        node_slot,
        leaf_of,
        feat_ptr,
        feats,
        deep,
        tables,
        tab_ptr,
        zpat,
        zweight,
        n_distinct,
        wa,
        wb,
        max(ens.max_depth, 1),
        int(sizes.max(initial=1)),
        m,
        BLOCK_ROWS,
        twig_ptr,
        twigs,
    )


def deep_trees(leaf_tree: np.ndarray, feat_ptr: np.ndarray, n_trees: int) -> np.ndarray:
    """The routing rule, defined once for the values and the interaction values: the trees
    ``(n_trees,)`` bool with a leaf whose path tests more than :data:`MAX_PATH_FEATURES`
    distinct players (the pattern bitmasks' width), from :func:`_leaf_paths`'s
    ``leaf_tree`` and ``feat_ptr``. They are walked per (row, background row)."""
    deep = np.zeros(n_trees, dtype=np.bool_)
    deep[leaf_tree[np.diff(feat_ptr) > MAX_PATH_FEATURES]] = True
    return deep


def column_slots(ens: TreeEnsemble, players: np.ndarray | None) -> tuple[np.ndarray, int]:
    """``(slot of every input column, P)``: its player, or the extra slot ``P`` shared by
    constant columns (player -1); default: every column its own player.

    :raises InputError: ``players`` is not one int >= -1 per input column.
    """
    if players is None:
        return np.arange(ens.n_features, dtype=np.int64), ens.n_features
    p = np.asarray(players)
    if p.shape != (ens.n_features,) or p.dtype.kind not in "iu" or (p < -1).any():
        raise InputError(
            f"players must give one int >= -1 per input column ({ens.n_features}), got "
            f"{p.dtype} of shape {p.shape}"
        )
    n_players = int(p.max(initial=-1)) + 1
    return np.where(p >= 0, p, n_players).astype(np.int64), n_players


def node_players(ens: TreeEnsemble, players: np.ndarray | None) -> tuple[np.ndarray, int]:
    """``(player of every node's split (-1 at leaves), P)``. Constant columns (player -1)
    share the extra slot ``P``: rows and background agree on them, so it gets 0.

    :raises InputError: ``players`` is not one int >= -1 per input column.
    """
    if players is None:
        return ens.feature, ens.n_features
    slot, n_players = column_slots(ens, players)
    node = np.where(ens.feature >= 0, slot[np.maximum(ens.feature, 0)], -1)
    return np.ascontiguousarray(node, dtype=np.int64), n_players


#: Background preparations kept per process (most recent first), for models explained
#: request after request against the same background (a served model).
_PREPARED: list[tuple[TreeEnsemble, bytes, tuple[Any, ...]]] = []
_PREPARED_MAX = 8


def _prepared(
    ens: TreeEnsemble, Z: np.ndarray, w: np.ndarray, node_player: np.ndarray
) -> tuple[Any, ...]:
    """Leaf paths (grouped by ``node_player``), the trees too deep for patterns
    (:func:`deep_trees`), Shapley weights and the background's distinct patterns per leaf
    with their weights (:func:`_distinct_patterns`),
    computed once per (trees, background, weights, players, routing): a pure function of
    them, so a cache cannot change a value, only skip work. Keyed by the ensemble object
    and a digest of the rest."""
    key = (
        hashlib.sha256(
            np.ascontiguousarray(Z).tobytes()
            + np.ascontiguousarray(w).tobytes()
            + np.ascontiguousarray(node_player).tobytes()
        ).digest()
        + str((Z.shape, MAX_PATH_FEATURES)).encode()
    )
    for i, (cached_ens, cached_key, prepared) in enumerate(_PREPARED):
        if cached_ens is ens and cached_key == key:
            if i:
                _PREPARED.insert(0, _PREPARED.pop(i))
            return prepared
    paths = _leaf_paths(ens.left, ens.right, node_player, ens.roots)
    deep = deep_trees(paths[1], paths[6], ens.n_trees)
    widths = np.diff(paths[6])
    widest = int(widths[~deep[paths[1]]].max(initial=0))
    wa, wb = _shapley_weights(max(widest, 1))
    leaf_ptr = np.searchsorted(paths[1], np.arange(ens.n_trees + 1)).astype(np.int64)
    zpat_all = _background_patterns(
        np.ascontiguousarray(Z.T),
        ens.roots,
        ens.left,
        ens.feature,
        *ens.routing(),
        leaf_ptr,
        paths[2],
        paths[3],
        paths[4],
        paths[5],
        paths[6],
        deep,
    )
    prepared = (paths, leaf_ptr, deep, wa, wb, _distinct_patterns(zpat_all, w))
    _PREPARED.insert(0, (ens, key, prepared))
    del _PREPARED[_PREPARED_MAX:]
    return prepared
