"""Odd Fourier coefficients of a tree ensemble's interventional game, for one row.

For one leaf with value ``c``, one background row ``b`` of weight ``w`` and the players
on the leaf's path, let ``A`` be the players only the row satisfies and ``B`` those only
``b`` satisfies (a player neither satisfies closes the leaf). The leaf's game is
``c w prod_{j in A} z_j prod_{j in B} (1 - z_j)``; with ``chi_j = 1 - 2 z_j`` that is
``c w 2^-k sum_{T ⊆ A ∪ B} (-1)^{|T ∩ A|} chi_T``, ``k = |A| + |B|``. Summing over leaves
and background rows gives the game's Walsh (Fourier) coefficients ``beta_T``; the odd
ones (``|T|`` odd) are all that Shapley values depend on (Fumagalli et al., ICML 2026,
"An odd estimator for Shapley values"). This kernel accumulates the odd coefficients of
orders 3 to ``max_order`` (singletons are always in the regression), keyed by
``sum_i (p_i + 1) (P + 1)**i`` over the sorted players ``p_i``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict

from shapgov.explainers.kernels.background_treeshap import _leaf_paths
from shapgov.explainers.kernels.routing import goes_left
from shapgov.explainers.trees import TreeEnsemble


@njit(cache=True)
def _odd_spectrum(
    x,
    B,
    w,
    node_player,
    n_players,
    max_order,
    feature,
    threshold,
    default_left,
    missing,
    cat_start,
    cat_end,
    cat_values,
    value,
    leaf_node,
    path_ptr,
    path_node,
    path_left,
):
    coef = Dict.empty(key_type=types.int64, value_type=types.float64)
    base = n_players + 1
    cap = 64
    players = np.empty(cap, np.int64)
    x_ok = np.empty(cap, np.bool_)
    b_ok = np.empty(cap, np.bool_)
    active = np.empty(cap, np.int64)
    sign = np.empty(cap, np.int64)
    idx = np.empty(max_order, np.int64)
    for leaf in range(leaf_node.shape[0]):
        c0 = value[leaf_node[leaf], 0]
        if c0 == 0.0:
            continue
        for b in range(B.shape[0]):
            n_on = 0
            for q in range(path_ptr[leaf], path_ptr[leaf + 1]):
                u = path_node[q]
                p = node_player[u]
                if p < 0:
                    continue
                f = feature[u]
                left = path_left[q]
                xs = (
                    goes_left(
                        x[f], u, threshold, default_left, missing, cat_start, cat_end, cat_values
                    )
                    == left
                )
                bs = (
                    goes_left(
                        B[b, f], u, threshold, default_left, missing, cat_start, cat_end, cat_values
                    )
                    == left
                )
                slot = -1
                for s in range(n_on):
                    if players[s] == p:
                        slot = s
                        break
                if slot < 0:
                    slot = n_on
                    players[slot] = p
                    x_ok[slot] = True
                    b_ok[slot] = True
                    n_on += 1
                x_ok[slot] = x_ok[slot] and xs
                b_ok[slot] = b_ok[slot] and bs
            k = 0
            dead = False
            for s in range(n_on):
                if not x_ok[s] and not b_ok[s]:
                    dead = True
                    break
                if x_ok[s] != b_ok[s]:
                    active[k] = players[s]
                    sign[k] = -1 if x_ok[s] else 1
                    k += 1
            if dead or k < 3:
                continue
            # sort the active players (insertion sort: k is a path length)
            for i in range(1, k):
                j = i
                while j > 0 and active[j - 1] > active[j]:
                    active[j - 1], active[j] = active[j], active[j - 1]
                    sign[j - 1], sign[j] = sign[j], sign[j - 1]
                    j -= 1
            c = c0 * w[b] / (2.0**k)
            for order in range(3, min(max_order, k) + 1, 2):
                for i in range(order):
                    idx[i] = i
                while True:
                    key = 0
                    mult = 1
                    s = 1
                    for i in range(order):
                        key += (active[idx[i]] + 1) * mult
                        mult *= base
                        s *= sign[idx[i]]
                    coef[key] = coef.get(key, 0.0) + s * c
                    # next combination of ``order`` out of ``k``
                    i = order - 1
                    while i >= 0 and idx[i] == k - order + i:
                        i -= 1
                    if i < 0:
                        break
                    idx[i] += 1
                    for j in range(i + 1, order):
                        idx[j] = idx[j - 1] + 1
    keys = np.empty(len(coef), np.int64)
    vals = np.empty(len(coef), np.float64)
    n = 0
    for key, val in coef.items():
        keys[n] = key
        vals[n] = val
        n += 1  # noqa: SIM113 (numba: no enumerate over typed dict items)
    return keys, vals


def odd_spectrum(
    ens: TreeEnsemble,
    x: np.ndarray,
    background: np.ndarray,
    weights: np.ndarray,
    node_player: np.ndarray,
    n_players: int,
    max_order: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Odd Walsh coefficients of orders 3..``max_order`` of the single-output ensemble's
    interventional game at row ``x``: ``(keys, coefficients)`` (see the module docstring
    for the keys; :func:`decode` turns a key into its players)."""
    paths = _leaf_paths(ens.left, ens.right, ens.feature, ens.roots)
    leaf_node, _, path_ptr, path_node, path_left = paths[:5]
    return _odd_spectrum(
        np.ascontiguousarray(x, dtype=float),
        np.ascontiguousarray(background, dtype=float),
        np.ascontiguousarray(weights, dtype=float),
        node_player,
        n_players,
        max_order,
        ens.feature,
        *ens.routing(),
        ens.value,
        leaf_node,
        path_ptr,
        path_node,
        path_left,
    )


def decode(key: int, n_players: int) -> list[int]:
    """The sorted players of a coefficient key."""
    out = []
    base = n_players + 1
    while key:
        key, digit = divmod(int(key), base)
        out.append(digit - 1)
    return out
