"""Interventional TreeSHAP against a background set (Lundberg et al., 2020).

For one row x and one background row z, a leaf is reached by the hybrid (x_S, z_rest)
exactly when S contains every feature whose split sends x (and not z) towards the leaf,
the set A, and none of those sending z (and not x) there, the set B. Its Shapley share
is then closed form: with s = |A| and t = |B|, each i in A gets v s!-weights
(s-1)! t! / (s+t)! and each i in B gets -v s! (t-1)! / (s+t)!. One depth-first walk per
(x, z, tree) visits only the leaves some hybrid reaches; values are averaged over z.
"""

from __future__ import annotations

from math import factorial

import numpy as np
from numba import njit, prange

from shapgov.errors import InputError
from shapgov.explainers.kernels.routing import goes_left as _goes_left
from shapgov.explainers.trees import TreeEnsemble


def _weights(size: int) -> np.ndarray:
    """``W[a, b] = a! b! / (a + b + 1)!``."""
    W = np.zeros((size + 1, size + 1))
    for a in range(size + 1):
        for b in range(size + 1 - a):
            W[a, b] = factorial(a) * factorial(b) / factorial(a + b + 1)
    return W


@njit(cache=True)
def _predict_raw(
    X,
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
        for t in range(roots.shape[0]):
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
    X,
    Z,
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
    W,
):
    n, m = X.shape
    nz = Z.shape[0]
    nv = value.shape[1]
    phi = np.zeros((n, m, n_outputs))
    depth_cap = max_depth + 2
    for r in prange(n):
        x = X[r]
        in_x = np.zeros(m, dtype=np.bool_)
        in_z = np.zeros(m, dtype=np.bool_)
        list_x = np.empty(depth_cap, dtype=np.int64)
        list_z = np.empty(depth_cap, dtype=np.int64)
        # stack entries: (kind, node or feature); kinds: 0 visit, 1 undo x, 2 undo z,
        # 3 take feature from x then visit node, 4 take it from z then visit node
        kind = np.empty(4 * depth_cap, dtype=np.int64)
        arg = np.empty(4 * depth_cap, dtype=np.int64)
        arg2 = np.empty(4 * depth_cap, dtype=np.int64)
        acc = np.zeros((m, n_outputs))
        for zi in range(nz):
            z = Z[zi]
            for t in range(roots.shape[0]):
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
                        wx = W[nx_ - 1, nz_] if nx_ > 0 else 0.0
                        wz = W[nx_, nz_ - 1] if nz_ > 0 else 0.0
                        for v in range(nv):
                            val = value[u, v]
                            for i in range(nx_):
                                acc[list_x[i], out + v] += val * wx
                            for i in range(nz_):
                                acc[list_z[i], out + v] -= val * wz
                        continue
                    f = feature[u]
                    gx = _goes_left(
                        x[f], u, threshold, default_left, missing, cat_start, cat_end, cat_values
                    )
                    cx = left[u] if gx else right[u]
                    if in_x[f]:
                        top += 1
                        kind[top], arg[top] = 0, cx
                        continue
                    gz = _goes_left(
                        z[f], u, threshold, default_left, missing, cat_start, cat_end, cat_values
                    )
                    cz = left[u] if gz else right[u]
                    if in_z[f] or cx == cz:
                        top += 1
                        kind[top], arg[top] = 0, cz
                        continue
                    top += 1
                    kind[top], arg[top], arg2[top] = 4, cz, f
                    top += 1
                    kind[top], arg[top], arg2[top] = 3, cx, f
        for j in range(m):
            for o in range(n_outputs):
                phi[r, j, o] = acc[j, o] / nz
    return phi


def predict_raw(ensemble: TreeEnsemble, X: np.ndarray) -> np.ndarray:
    """Raw output ``(n, K)`` of the flat trees (base offset included)."""
    ens = ensemble.validate()
    args = (*ens.structure(), ens.value, ens.roots, ens.tree_output, ens.n_outputs)
    return _predict_raw(ens.check_input(X), *args) + ens.base_offset


def interventional_shap(
    ensemble: TreeEnsemble, X: np.ndarray, background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact interventional TreeSHAP: ``(values (n, M, K), base (K,))``, base = mean over the
    background of the raw output, so ``base + values.sum(1)`` is the raw output of each row."""
    ens = ensemble.validate()
    X = ens.check_input(X)
    Z = ens.check_input(background)
    if Z.shape[0] == 0:
        raise InputError("the background is empty; pass at least one background row")
    args = (
        *ens.structure(),
        ens.value,
        ens.roots,
        ens.tree_output,
        ens.n_outputs,
    )
    base = _predict_raw(Z, *args).mean(axis=0) + ens.base_offset
    phi = _interventional(X, Z, *args, ens.max_depth, _weights(ens.max_depth + 2))
    return phi, base


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
    the leaves some hybrid reaches, and 2**P additions per tree.
    """
    ens = ensemble.validate()
    X = ens.check_input(X)
    Z = ens.check_input(background)
    player = np.ascontiguousarray(player, dtype=np.int64)
    if player.shape != (ens.n_features,) or player.max(initial=-1) >= n_players:
        raise InputError(
            f"player must map each of the {ens.n_features} columns to one of {n_players} players"
        )
    if n_players > 30:
        raise InputError(f"{n_players} players are too many to enumerate coalitions")
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
