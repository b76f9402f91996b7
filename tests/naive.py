"""Naive reference versions of shapgov's kernels, in plain Python (after stumpy's
``tests/naive.py``): slow, obvious, and sharing no code with what they check.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np

from shapgov.explainers.trees import (
    MISSING_DEFAULT,
    ZERO_AND_MISSING_DEFAULT,
    ZERO_THRESHOLD,
    TreeEnsemble,
)


def goes_left(ens: TreeEnsemble, i: int, x: float) -> bool:
    """Routing of one value at split node ``i`` (the twin of ``kernels.routing.goes_left``)."""
    if ens.cat_start[i] < ens.cat_end[i]:
        if np.isnan(x):
            return bool(ens.missing[i] == MISSING_DEFAULT and ens.default_left[i])
        if x < 0:
            return False
        return int(x) in set(ens.cat_values[ens.cat_start[i] : ens.cat_end[i]].tolist())
    kind = ens.missing[i]
    if kind == ZERO_AND_MISSING_DEFAULT and (np.isnan(x) or abs(x) <= ZERO_THRESHOLD):
        return bool(ens.default_left[i])
    if kind == MISSING_DEFAULT and np.isnan(x):
        return bool(ens.default_left[i])
    if np.isnan(x):
        x = 0.0
    return bool(x <= ens.threshold[i])


def predict_reference(ens: TreeEnsemble, X: np.ndarray) -> np.ndarray:
    """Plain-Python prediction (raw margin), ``(n, K)``: the reference for the parsers."""
    X = ens.check_input(X)
    out = np.tile(ens.base_offset.astype(float), (X.shape[0], 1))
    for r, x in enumerate(X):
        for t, root in enumerate(ens.roots):
            i = int(root)
            while ens.left[i] >= 0:
                i = int(ens.left[i] if goes_left(ens, i, x[ens.feature[i]]) else ens.right[i])
            o = ens.tree_output[t]
            out[r, o : o + ens.value.shape[1]] += ens.value[i]
    return out


def naive_shapley(v: np.ndarray) -> np.ndarray:
    """Shapley values of one game ``v`` ``(2**P,)`` (bit j of the index: player j in S) by
    the textbook sum."""
    p = int(v.shape[0]).bit_length() - 1
    phi = np.zeros(p)
    for j in range(p):
        others = [i for i in range(p) if i != j]
        for size in range(p):
            w = factorial(size) * factorial(p - size - 1) / factorial(p)
            for subset in combinations(others, size):
                s = sum(1 << i for i in subset)
                phi[j] += w * (v[s | (1 << j)] - v[s])
    return phi


def naive_interactions(v: np.ndarray) -> np.ndarray:
    """Shapley interaction index of one game ``v`` ``(2**P,)``, ``(P, P)``: off the diagonal
    ``sum_S |S|!(P-|S|-2)!/(2(P-1)!) (v(S+ij) - v(S+i) - v(S+j) + v(S))``, on it what
    the pairs leave of each Shapley value."""
    p = int(v.shape[0]).bit_length() - 1
    out = np.zeros((p, p))
    for i, j in combinations(range(p), 2):
        others = [k for k in range(p) if k not in (i, j)]
        total = 0.0
        for size in range(len(others) + 1):
            w = factorial(size) * factorial(p - size - 2) / (2 * factorial(p - 1))
            for subset in combinations(others, size):
                s = sum(1 << k for k in subset)
                total += w * (v[s | 1 << i | 1 << j] - v[s | 1 << i] - v[s | 1 << j] + v[s])
        out[i, j] = out[j, i] = total
    phi = naive_shapley(v)
    for i in range(p):
        out[i, i] = phi[i] - out[i].sum()
    return out


def naive_walsh(v: np.ndarray, n_players: int) -> dict[tuple[int, ...], float]:
    """Walsh coefficients ``beta_T = 2**-P sum_S v(S) chi_T(S)`` of a game given on all
    ``2**P`` coalitions (bit j of the index = player j), ``chi_T(S) = (-1)**|S ∩ T|``."""
    ids = np.arange(1 << n_players)
    z = (ids[:, None] >> np.arange(n_players)) & 1
    out = {}
    for size in range(n_players + 1):
        for T in combinations(range(n_players), size):
            chi = np.prod(1 - 2 * z[:, list(T)], axis=1) if T else np.ones(ids.size)
            out[T] = float(v @ chi) / ids.size
    return out
