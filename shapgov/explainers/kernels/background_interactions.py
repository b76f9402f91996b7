"""SHAP interaction values of the interventional (background) game for tree ensembles, in
time linear in rows + background rows.

Per leaf, the game of a row pattern ``x`` and a background pattern ``z`` is
``v(S) = value * [A ⊆ S, S ∩ B = ∅]`` (see :mod:`.background_treeshap`), with
``k = |A| + |B|`` relevant players. Its Shapley interaction index (Grabisch and Roubens
1999, split evenly between ``(i, j)`` and ``(j, i)`` as in Lundberg et al. 2020) is, from
the definition, non-zero for exactly one coalition per pair:

* ``i, j ∈ A``: ``(|A|-2)! |B|! / (2 (k-1)!)``;
* ``i, j ∈ B``: ``|A|! (|B|-2)! / (2 (k-1)!)``;
* ``i ∈ A, j ∈ B``: ``-(|A|-1)! (|B|-1)! / (2 (k-1)!)``.

The background is reduced to pattern counts once per leaf and every distinct row pattern
gets its ``d x d`` table by summing over the background patterns that keep the leaf open.
The diagonal takes what the pairs leave of each Shapley value, so rows sum to them.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from shapgov.explainers.kernels.background_treeshap import (
    _leaf_paths,
    _row_and_background_patterns,
    background_shap,
    checked_background,
    deep_trees,
    node_players,
)
from shapgov.explainers.kernels.interventional_treeshap import pair_weights, pairwise_tree_shap
from shapgov.explainers.kernels.leaf_tables import _popcount
from shapgov.explainers.trees import TreeEnsemble

#: Most distinct features on one path for the pattern-count tables.
DENSE_MAX_FEATURES = 16


@njit(cache=True)
def _pair_table(xp, d, counts, waa, wbb, wab, out):
    """The ``d x d`` pair coefficients of pattern ``xp`` (unit leaf value) into ``out``."""
    full = (np.int64(1) << d) - 1
    notx = full & ~xp
    b = d - _popcount(xp)
    n_x = d - b
    for i in range(d):
        for j in range(d):
            out[i, j] = 0.0
    s_bb = 0.0
    s_ab = np.zeros(d)
    t = xp
    while True:
        c = counts[notx | t]
        if c != 0.0:
            only_x = xp & ~t
            a = n_x - _popcount(t)
            if a + b >= 2:
                if b >= 2:
                    s_bb += c * wbb[a, b]
                if a >= 1 and b >= 1:
                    cab = c * wab[a, b]
                    for i in range(d):
                        if (only_x >> i) & 1:
                            s_ab[i] += cab
                if a >= 2:
                    caa = c * waa[a, b]
                    for i in range(d):
                        if (only_x >> i) & 1:
                            for j in range(i + 1, d):
                                if (only_x >> j) & 1:
                                    out[i, j] += caa
        if t == 0:
            break
        t = (t - 1) & xp
    for i in range(d):
        in_x = (xp >> i) & 1
        for j in range(d):
            if i == j:
                continue
            if in_x and (xp >> j) & 1:
                if j < i:
                    out[i, j] = out[j, i]
            elif not in_x and not (xp >> j) & 1:
                out[i, j] = s_bb
            elif in_x:
                out[i, j] = s_ab[i]
            else:
                out[i, j] = s_ab[j]


@njit(cache=True)
def _leaf_pairs(
    L, xpat, zpat, w, value, tree_output, leaf_node, leaf_tree, feat_ptr, feats, waa, wbb,
    wab, dense_max, out,
):  # fmt: skip
    """Add leaf ``L``'s off-diagonal interaction values to ``out`` ``(n, M, M, K)``."""
    n = xpat.shape[0]
    nz = zpat.shape[0]
    n_values = value.shape[1]
    d = feat_ptr[L + 1] - feat_ptr[L]
    if d < 2:
        return
    full = (np.int64(1) << d) - 1
    leaf = leaf_node[L]
    o = tree_output[leaf_tree[L]]
    fbase = feat_ptr[L]
    table = np.empty((d, d))
    if d <= dense_max:
        counts = np.zeros(np.int64(1) << d)
        for r in range(nz):
            counts[zpat[r]] += w[r]
        marker = np.full(np.int64(1) << d, -1, np.int64)
        tables = np.empty((min(n, np.int64(1) << d), d, d))
        used = 0
        for r in range(n):
            xp = xpat[r]
            idx = marker[xp]
            if idx < 0:
                idx = used
                marker[xp] = idx
                _pair_table(xp, d, counts, waa, wbb, wab, tables[idx])
                used += 1
            for i in range(d):
                fi = feats[fbase + i]
                for j in range(d):
                    c = tables[idx, i, j]
                    if c != 0.0:
                        fj = feats[fbase + j]
                        for k in range(n_values):
                            out[r, fi, fj, o + k] += c * value[leaf, k]
    else:  # a wide path: pair rows and background rows for this leaf only
        for r in range(n):
            xp = xpat[r]
            for s in range(nz):
                zp = zpat[s]
                if (xp | zp) != full:
                    continue
                _pair_from_one(xp, zp, d, w[s], waa, wbb, wab, table)
                for i in range(d):
                    fi = feats[fbase + i]
                    for j in range(d):
                        c = table[i, j]
                        if c != 0.0:
                            fj = feats[fbase + j]
                            for k in range(n_values):
                                out[r, fi, fj, o + k] += c * value[leaf, k]


@njit(cache=True)
def _pair_from_one(xp, zp, d, weight, waa, wbb, wab, out):
    """Pair coefficients of one (row, background row) pattern pair."""
    full = (np.int64(1) << d) - 1
    only_x = xp & ~zp
    only_z = full & ~xp
    a = _popcount(only_x)
    b = _popcount(only_z)
    for i in range(d):
        ia, ib = (only_x >> i) & 1, (only_z >> i) & 1
        for j in range(d):
            c = 0.0
            if i != j:
                ja, jb = (only_x >> j) & 1, (only_z >> j) & 1
                if ia and ja:
                    c = waa[a, b]
                elif ib and jb:
                    c = wbb[a, b]
                elif (ia and jb) or (ib and ja):
                    c = wab[a, b]
            out[i, j] = weight * c


@njit(cache=True, parallel=True)
def _background_pairs(
    Xt, Zt, w, left, right, feature, threshold, default_left, missing, cat_start, cat_end,
    cat_values, value, roots, tree_output, n_outputs, leaf_node, leaf_tree, path_ptr,
    path_node, path_left, path_slot, feat_ptr, feats, leaf_ptr, deep, waa, wbb, wab,
    dense_max, n_chunks, m,
):  # fmt: skip
    """Off-diagonal interaction values ``(n, M, M, K)`` of the trees not ``deep``."""
    n = Xt.shape[1]
    n_trees = roots.shape[0]
    out = np.zeros((n_chunks, n, m, m, n_outputs))
    for c in prange(n_chunks):
        for t in range(c, n_trees, n_chunks):
            if deep[t]:
                continue
            first, last = leaf_ptr[t], leaf_ptr[t + 1]
            xpats, zpats = _row_and_background_patterns(
                Xt, Zt, t, roots, left, feature, threshold, default_left, missing, cat_start,
                cat_end, cat_values, first, last, path_ptr, path_node, path_left, path_slot,
                feat_ptr,
            )  # fmt: skip
            for L in range(first, last):
                _leaf_pairs(
                    L, xpats[L - first], zpats[L - first], w, value, tree_output,
                    leaf_node, leaf_tree, feat_ptr, feats, waa, wbb, wab, dense_max, out[c],
                )  # fmt: skip
    return out.sum(axis=0)


def background_interactions(
    ensemble: TreeEnsemble,
    X: np.ndarray,
    background: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    players: np.ndarray | None = None,
) -> np.ndarray:
    """SHAP interaction values of the interventional game, ``(n, P, P, K)``, in the raw
    margin: symmetric, each row summing to the row's SHAP values (:func:`background_shap`).

    :param weights: Background row weights ``(b,)``; default equal.
    :param players: The player of each input column (see :func:`background_shap`);
        default: every column its own player (``P = M``).
    :raises InputError: Empty background, bad weights or players, or columns that do not
        fit.
    """
    ens, X, Z, w = checked_background(ensemble, X, background, weights)
    node_player, n_players = node_players(ens, players)
    paths = _leaf_paths(ens.left, ens.right, node_player, ens.roots)
    deep = deep_trees(paths[1], paths[6], ens.n_trees)  # walked per (row, background row)
    widest = int(np.diff(paths[6])[~deep[paths[1]]].max(initial=0))
    waa, wbb, wab = pair_weights(max(widest, 2))
    leaf_ptr = np.searchsorted(paths[1], np.arange(ens.n_trees + 1)).astype(np.int64)
    out = _background_pairs(
        np.ascontiguousarray(X.T),
        np.ascontiguousarray(Z.T),
        w,
        *ens.structure(),
        ens.value,
        ens.roots,
        ens.tree_output,
        ens.n_outputs,
        *paths,
        leaf_ptr,
        deep,
        waa,
        wbb,
        wab,
        DENSE_MAX_FEATURES,
        max(1, min(numba.get_num_threads(), ens.n_trees)),
        n_players + 1,  # + 1: the constants' slot
    )
    if deep.any():
        _, walked, _ = pairwise_tree_shap(
            ens, X, Z, w, node_player, n_players + 1, np.flatnonzero(deep), interactions=True
        )
        out += walked
    out = out[:, :n_players, :n_players]
    phi, _ = background_shap(ens, X, Z, w, players=players)
    idx = np.arange(n_players)
    out[:, idx, idx] = phi - out.sum(axis=2)
    return out
