"""Interventional TreeSHAP against a background set (Lundberg et al., 2020).

For one row x and one background row z, a leaf is reached by the hybrid (x_S, z_rest)
exactly when S contains every feature whose split sends x (and not z) towards the leaf,
the set A, and none of those sending z (and not x) there, the set B. Its Shapley share
is then closed form: with s = |A| and t = |B|, each i in A gets v s!-weights
(s-1)! t! / (s+t)! and each i in B gets -v s! (t-1)! / (s+t)!. One depth-first walk per
(x, z, tree) visits only the leaves some hybrid reaches; values are averaged over z
(weighted where the background carries weights). Players are the nodes' split players
(one-hot columns of one original column, or a declared group, enter together), and the
walk keeps them in boolean arrays, so a path may test any number of distinct players:
this is the route of the trees whose paths are too wide for the pattern bitmasks of
:mod:`.background_treeshap` (:func:`pairwise_tree_shap`). Cost: rows x background rows x
the leaves some hybrid reaches x depth.
"""

from __future__ import annotations

from math import comb
from typing import Any

import numpy as np
from numba import njit, prange

from shapgov.errors import InputError
from shapgov.explainers.kernels.routing import goes_left as _goes_left
from shapgov.explainers.trees import TreeEnsemble


def _weights(size: int) -> np.ndarray:
    """``W[a, b] = a! b! / (a + b + 1)! = 1 / ((a + b + 1) C(a + b, a))``, correctly
    rounded (exact integers, one division) at any size."""
    W = np.zeros((size + 1, size + 1))
    for a in range(size + 1):
        for b in range(size + 1 - a):
            W[a, b] = 1 / ((a + b + 1) * comb(a + b, a))
    return W


def pair_weights(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(AA, BB, AB)[a, b]``, ``a + b <= size``: the Shapley interaction index of the leaf
    game ``value * [A ⊆ S, S ∩ B = ∅]`` (``|A| = a``, ``|B| = b``, ``k = a + b``) per
    ordered pair, split evenly between ``(i, j)`` and ``(j, i)`` as in Lundberg et al.
    2020: ``(a-2)! b! / (2 (k-1)!)`` for two players of ``A``, ``a! (b-2)! / (2 (k-1)!)``
    for two of ``B``, ``-(a-1)! (b-1)! / (2 (k-1)!)`` across (0 where undefined), each
    as one correctly rounded division of integers."""
    aa, bb, ab = (np.zeros((size + 1, size + 1)) for _ in range(3))
    for a in range(size + 1):
        for b in range(size + 1 - a):
            k = a + b
            if k < 2:
                continue
            if a >= 2:
                aa[a, b] = 1 / (2 * (k - 1) * comb(k - 2, b))
            if b >= 2:
                bb[a, b] = 1 / (2 * (k - 1) * comb(k - 2, a))
            if a >= 1 and b >= 1:
                ab[a, b] = -1 / (2 * (k - 1) * comb(k - 2, a - 1))
    return aa, bb, ab


@njit(cache=True)
def _predict_raw(
    X,
    trees,
    left,
    right,
    feature,
    threshold,
    default_left,
    missing,
    cat_start,
    cat_end,
    cat_values,
    value,
    roots,
    tree_output,
    n_outputs,
):
    out = np.zeros((X.shape[0], n_outputs))
    for r in range(X.shape[0]):
        for t in trees:
            i = roots[t]
            while left[i] >= 0:
                if _goes_left(
                    X[r, feature[i]],
                    i,
                    threshold,
                    default_left,
                    missing,
                    cat_start,
                    cat_end,
                    cat_values,
                ):
                    i = left[i]
                else:
                    i = right[i]
            for v in range(value.shape[1]):
                out[r, tree_output[t] + v] += value[i, v]
    return out


@njit(cache=True, parallel=True)
def _interventional(
    X, Z, w, node_player, n_players, trees, left, right, feature, threshold, default_left,
    missing, cat_start, cat_end, cat_values, value, roots, tree_output, n_outputs, max_depth,
    W, waa, wbb, wab, pairs,
):  # fmt: skip
    """Values ``(n, P, K)`` and, with ``pairs``, off-diagonal interaction values
    ``(n, P, P, K)`` (else ``(0, 0, 0, 0)``) of trees ``trees``: one walk per (row,
    background row, tree). ``node_player[u]`` is the player of node ``u``'s split; ``w``
    the background weights summing to one."""
    n = X.shape[0]
    nz = Z.shape[0]
    nv = value.shape[1]
    m = n_players
    phi = np.zeros((n, m, n_outputs))
    inter = np.zeros((n if pairs else 0, m, m, n_outputs))
    depth_cap = max_depth + 2
    for r in prange(n):
        x = X[r]
        in_x = np.zeros(m, dtype=np.bool_)
        in_z = np.zeros(m, dtype=np.bool_)
        list_x = np.empty(depth_cap, dtype=np.int64)
        list_z = np.empty(depth_cap, dtype=np.int64)
        # stack entries: (kind, node or player); kinds: 0 visit, 1 undo x, 2 undo z,
        # 3 take the player from x then visit node, 4 take it from z then visit node
        kind = np.empty(4 * depth_cap, dtype=np.int64)
        arg = np.empty(4 * depth_cap, dtype=np.int64)
        arg2 = np.empty(4 * depth_cap, dtype=np.int64)
        acc = np.zeros((m, n_outputs))
        for zi in range(nz):
            z = Z[zi]
            wz_row = w[zi]
            if wz_row == 0.0:
                continue
            for t in trees:
                out = tree_output[t]
                nx_, nz_ = 0, 0
                top = 0
                kind[0], arg[0] = 0, roots[t]
                while top >= 0:
                    k, a, a2 = kind[top], arg[top], arg2[top]
                    top -= 1
                    if k == 1:
                        in_x[a] = False
                        nx_ -= 1
                        continue
                    if k == 2:
                        in_z[a] = False
                        nz_ -= 1
                        continue
                    if k == 3 or k == 4:
                        if k == 3:
                            in_x[a2] = True
                            list_x[nx_] = a2
                            nx_ += 1
                        else:
                            in_z[a2] = True
                            list_z[nz_] = a2
                            nz_ += 1
                        top += 1
                        kind[top], arg[top] = k - 2, a2  # the undo, run after the subtree
                        top += 1
                        kind[top], arg[top] = 0, a
                        continue
                    u = a
                    if left[u] < 0:
                        if nx_ + nz_ == 0:
                            continue
                        wx = W[nx_ - 1, nz_] * wz_row if nx_ > 0 else 0.0
                        wz = W[nx_, nz_ - 1] * wz_row if nz_ > 0 else 0.0
                        for v in range(nv):
                            val = value[u, v]
                            for i in range(nx_):
                                acc[list_x[i], out + v] += val * wx
                            for i in range(nz_):
                                acc[list_z[i], out + v] -= val * wz
                        if pairs and nx_ + nz_ >= 2:
                            dest = inter[r]
                            cxx = waa[nx_, nz_] * wz_row
                            czz = wbb[nx_, nz_] * wz_row
                            cxz = wab[nx_, nz_] * wz_row
                            for v in range(nv):
                                val = value[u, v]
                                for i in range(nx_):
                                    pi = list_x[i]
                                    for j in range(nx_):
                                        if j != i:
                                            dest[pi, list_x[j], out + v] += val * cxx
                                    for j in range(nz_):
                                        dest[pi, list_z[j], out + v] += val * cxz
                                        dest[list_z[j], pi, out + v] += val * cxz
                                for i in range(nz_):
                                    pi = list_z[i]
                                    for j in range(nz_):
                                        if j != i:
                                            dest[pi, list_z[j], out + v] += val * czz
                        continue
                    f = feature[u]
                    p = node_player[u]
                    gx = _goes_left(
                        x[f], u, threshold, default_left, missing, cat_start, cat_end, cat_values
                    )
                    cx = left[u] if gx else right[u]
                    if in_x[p]:
                        top += 1
                        kind[top], arg[top] = 0, cx
                        continue
                    gz = _goes_left(
                        z[f], u, threshold, default_left, missing, cat_start, cat_end, cat_values
                    )
                    cz = left[u] if gz else right[u]
                    if in_z[p] or cx == cz:
                        top += 1
                        kind[top], arg[top] = 0, cz
                        continue
                    top += 1
                    kind[top], arg[top], arg2[top] = 4, cz, p
                    top += 1
                    kind[top], arg[top], arg2[top] = 3, cx, p
        phi[r] = acc
    return phi, inter


def predict_raw(ensemble: TreeEnsemble, X: np.ndarray) -> np.ndarray:
    """Raw output ``(n, K)`` of the flat trees (base offset included); derived columns
    (:class:`~shapgov.explainers.trees.DerivedColumns`) are computed from the rows."""
    ens = ensemble.validate(derived=True)
    trees = np.arange(ens.n_trees, dtype=np.int64)
    rows = ens.split_inputs(ens.check_input(X))
    return _predict_raw(rows, trees, *_arrays(ens)) + ens.base_offset


def _arrays(ens: TreeEnsemble) -> tuple[Any, ...]:
    return (*ens.structure(), ens.value, ens.roots, ens.tree_output, ens.n_outputs)


def interventional_shap(
    ensemble: TreeEnsemble, X: np.ndarray, background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact interventional TreeSHAP: ``(values (n, M, K), base (K,))``, base = mean over the
    background of the raw output, so ``base + values.sum(1)`` is the raw output of each row.
    One walk per (row, background row, tree): the rows x background kernel."""
    ens = ensemble.validate()
    X = ens.check_input(X)
    Z = ens.check_input(background)
    if Z.shape[0] == 0:
        raise InputError("the background is empty; pass at least one background row")
    w = np.full(Z.shape[0], 1.0 / Z.shape[0])
    trees = np.arange(ens.n_trees, dtype=np.int64)
    phi, _, base = _walked(ens, X, Z, w, ens.feature, ens.n_features, trees, False)
    return phi, base + ens.base_offset


def pairwise_tree_shap(
    ens: TreeEnsemble,
    X: np.ndarray,
    Z: np.ndarray,
    w: np.ndarray,
    node_player: np.ndarray,
    n_players: int,
    trees: np.ndarray,
    *,
    interactions: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The rows x background kernel on the trees ``trees`` alone, for any number of
    distinct players on a path (the route of paths too wide for the pattern bitmasks of
    :mod:`.background_treeshap`).

    :param ens: Validated trees (:meth:`TreeEnsemble.validate`).
    :param X: Checked rows ``(n, M)`` (:meth:`TreeEnsemble.check_input`).
    :param Z: Checked background rows ``(b, M)``, ``b >= 1``.
    :param w: Background weights ``(b,)``, non-negative, summing to one.
    :param node_player: The player of every node's split ``(nodes,)``, ints in
        ``0..n_players-1`` at splits (:func:`.background_treeshap.node_players`).
    :param trees: Tree indices ``(t,)`` to walk.
    :param interactions: Also return the off-diagonal interaction values
        (:func:`pair_weights`; the diagonal is left at 0).
    :returns: ``(values (n, P, K), interactions (n, P, P, K) or None, reach (K,))``;
        ``reach`` is the weighted background mean of these trees' output (no base offset).
    :raises InputError: Arrays that do not fit the trees.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    b = Z.shape[0]
    node_player = np.ascontiguousarray(node_player, dtype=np.int64)
    trees = np.ascontiguousarray(trees, dtype=np.int64)
    w = np.ascontiguousarray(w, dtype=np.float64)
    split = ens.left >= 0
    if (
        X.ndim != 2
        or Z.ndim != 2
        or X.shape[1] != ens.n_features
        or Z.shape[1] != ens.n_features
        or b == 0
        or w.shape != (b,)
        or not np.all(w >= 0)
        or abs(w.sum() - 1.0) > 1e-9
        or node_player.shape != ens.left.shape
        or (node_player[split] < 0).any()
        or (node_player[split] >= n_players).any()
        or (trees < 0).any()
        or (trees >= ens.n_trees).any()
    ):
        raise InputError(
            "pairwise_tree_shap: rows, background, weights, players or trees do not fit"
        )
    return _walked(ens, X, Z, w, node_player, n_players, trees, interactions)


def _walked(
    ens: TreeEnsemble,
    X: np.ndarray,
    Z: np.ndarray,
    w: np.ndarray,
    node_player: np.ndarray,
    n_players: int,
    trees: np.ndarray,
    interactions: bool,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """:func:`pairwise_tree_shap` without the checks."""
    arrays = _arrays(ens)
    depth = ens.max_depth
    size = min(depth, n_players) + 2  # a path has at most this many distinct players
    empty = np.zeros((1, 1))
    waa, wbb, wab = pair_weights(size) if interactions else (empty, empty, empty)
    phi, inter = _interventional(
        X, Z, w, node_player, n_players, trees, *arrays, depth, _weights(size),
        waa, wbb, wab, interactions,
    )  # fmt: skip
    reach = w @ _predict_raw(Z, trees, *arrays)
    return phi, (inter if interactions else None), reach


@njit(cache=True, parallel=True)
def _coalition_margins(
    X,
    Z,
    player,
    n_players,
    left,
    right,
    feature,
    threshold,
    default_left,
    missing,
    cat_start,
    cat_end,
    cat_values,
    value,
    roots,
    tree_output,
    n_outputs,
    max_depth,
):
    n = X.shape[0]
    nz = Z.shape[0]
    nv = value.shape[1]
    full = (1 << n_players) - 1
    out = np.zeros((n, nz, full + 1, n_outputs))
    cap = max_depth + 2
    for r in prange(n):
        x = X[r]
        node = np.empty(cap, dtype=np.int64)
        need_in = np.empty(cap, dtype=np.int64)  # players the hybrid must take from x
        need_out = np.empty(cap, dtype=np.int64)  # players it must take from z
        for zi in range(nz):
            z = Z[zi]
            dest = out[r, zi]
            for t in range(roots.shape[0]):
                o = tree_output[t]
                top = 0
                node[0], need_in[0], need_out[0] = roots[t], 0, 0
                while top >= 0:
                    u, a, b = node[top], need_in[top], need_out[top]
                    top -= 1
                    if left[u] < 0:
                        free = full & ~(a | b)
                        sub = free
                        while True:
                            for v in range(nv):
                                dest[sub | a, o + v] += value[u, v]
                            if sub == 0:
                                break
                            sub = (sub - 1) & free
                        continue
                    f = feature[u]
                    gx = _goes_left(
                        x[f], u, threshold, default_left, missing, cat_start, cat_end, cat_values
                    )
                    gz = _goes_left(
                        z[f], u, threshold, default_left, missing, cat_start, cat_end, cat_values
                    )
                    cx = left[u] if gx else right[u]
                    cz = left[u] if gz else right[u]
                    p = player[f]
                    bit = 0 if p < 0 else 1 << p
                    if cx == cz or bit == 0 or (a & bit) != 0:
                        top += 1
                        node[top], need_in[top], need_out[top] = cx, a, b
                    elif (b & bit) != 0:
                        top += 1
                        node[top], need_in[top], need_out[top] = cz, a, b
                    else:
                        top += 1
                        node[top], need_in[top], need_out[top] = cz, a, b | bit
                        top += 1
                        node[top], need_in[top], need_out[top] = cx, a | bit, b
    return out


def coalition_margins(
    ensemble: TreeEnsemble,
    X: np.ndarray,
    background: np.ndarray,
    player: np.ndarray,
    n_players: int,
) -> np.ndarray:
    """Raw outputs of every hybrid row, ``(n, b, 2**P, K)``.

    Entry ``[i, j, S]`` is the model's raw output on the row that takes the columns of the
    players in coalition S (bit p set: player p is in) from ``X[i]`` and the others from
    ``background[j]``. ``player[f]`` is the player of input column f (-1: a column equal
    in every row, taken from the row). Cost: one walk per (row, background row, tree) over
    the leaves some hybrid reaches, and 2**P additions per tree. Trees with derived
    columns (:class:`~shapgov.explainers.trees.DerivedColumns`) are evaluated on every
    hybrid row built whole (its derived columns computed from it): one predict per
    (row, background row, coalition).
    """
    ens = ensemble.validate(derived=True)
    X = ens.check_input(X)
    Z = ens.check_input(background)
    player = np.ascontiguousarray(player, dtype=np.int64)
    if player.shape != (ens.n_features,) or player.max(initial=-1) >= n_players:
        raise InputError(
            f"player must map each of the {ens.n_features} columns to one of {n_players} players"
        )
    if n_players > 30:
        raise InputError(f"{n_players} players are too many to enumerate coalitions")
    if ens.derived is not None:
        return _hybrid_margins(ens, X, Z, player, n_players)
    out = _coalition_margins(
        X,
        Z,
        player,
        n_players,
        *ens.structure(),
        ens.value,
        ens.roots,
        ens.tree_output,
        ens.n_outputs,
        ens.max_depth,
    )
    return out + ens.base_offset


def _hybrid_margins(
    ens: TreeEnsemble, X: np.ndarray, Z: np.ndarray, player: np.ndarray, n_players: int
) -> np.ndarray:
    """:func:`coalition_margins` by building each hybrid row: ``(n, b, 2**P, K)``."""
    n, b = X.shape[0], Z.shape[0]
    out = np.empty((n, b, 1 << n_players, ens.n_outputs))
    trees = np.arange(ens.n_trees, dtype=np.int64)
    arrays = _arrays(ens)
    for mask in range(1 << n_players):
        from_row = (player >= 0) & (((mask >> np.maximum(player, 0)) & 1) == 1)
        from_row |= player < 0  # equal in every row: taken from the row
        hybrid = np.where(from_row[None, None, :], X[:, None, :], Z[None, :, :])
        rows = ens.split_inputs(np.ascontiguousarray(hybrid.reshape(n * b, -1)))
        out[:, :, mask] = _predict_raw(rows, trees, *arrays).reshape(n, b, -1)
    return out + ens.base_offset
