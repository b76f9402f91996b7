"""Shapley values and SHAP interaction values of one tree's game from its coalition
values, for the kernels that evaluate every coalition of a tree's players
(:mod:`.subset_treeshap`, :mod:`.oblivious_treeshap`).

``v[mask, k]`` holds the value of the coalition whose local players are the set bits of
``mask``; values follow the Shapley definition, interaction values the Shapley
interaction index of Lundberg et al. (2020, eq. 2) with the diagonal
``phi_i - sum_{j != i} Phi_ij``.
"""

from __future__ import annotations

from math import factorial

import numpy as np
from numba import njit


def _weights(u: int) -> tuple[np.ndarray, np.ndarray]:
    """Shapley ``s!(u-s-1)!/u!`` and interaction ``s!(u-s-2)!/(2(u-1)!)`` weights."""
    w1 = np.zeros(max(u, 1))
    w2 = np.zeros(max(u - 1, 1))
    for s in range(u):
        w1[s] = factorial(s) * factorial(u - s - 1) / factorial(u)
    for s in range(u - 1):
        w2[s] = factorial(s) * factorial(u - s - 2) / (2.0 * factorial(u - 1))
    return w1, w2


@njit(cache=True)
def _popcount(mask):  # pragma: no cover - numba
    s = 0
    while mask:
        s += mask & 1
        mask >>= 1
    return s


@njit(cache=True)
def _values_from_coalitions(v, n_local, w1):  # pragma: no cover - numba
    k_out = v.shape[1]
    phi = np.zeros((n_local, k_out))
    for mask in range(1 << n_local):
        s = _popcount(mask)
        for i in range(n_local):
            if (mask >> i) & 1:
                continue
            for k in range(k_out):
                phi[i, k] += w1[s] * (v[mask | (1 << i), k] - v[mask, k])
    return phi


@njit(cache=True)
def _interactions_from_coalitions(v, n_local, w1, w2):  # pragma: no cover - numba
    k_out = v.shape[1]
    out = np.zeros((n_local, n_local, k_out))
    for mask in range(1 << n_local):
        s = _popcount(mask)
        for i in range(n_local):
            if (mask >> i) & 1:
                continue
            for j in range(i + 1, n_local):
                if (mask >> j) & 1:
                    continue
                for k in range(k_out):
                    d = (
                        v[mask | (1 << i) | (1 << j), k]
                        - v[mask | (1 << i), k]
                        - v[mask | (1 << j), k]
                        + v[mask, k]
                    )
                    out[i, j, k] += w2[s] * d
                    out[j, i, k] += w2[s] * d
    phi = _values_from_coalitions(v, n_local, w1)
    for i in range(n_local):
        for k in range(k_out):
            rest = 0.0
            for j in range(n_local):
                if j != i:
                    rest += out[i, j, k]
            out[i, i, k] = phi[i, k] - rest
    return out


@njit(cache=True)
def _add_row(
    out_phi, out_inter, r, found, players_of_local, n_local, out_offset, interactions
):  # pragma: no cover - numba
    for a in range(found.shape[0]):
        for k in range(found.shape[1]):
            if interactions:
                pa = players_of_local[a // n_local]
                pb = players_of_local[a % n_local]
                out_inter[r, pa, pb, out_offset + k] += found[a, k]
            else:
                out_phi[r, players_of_local[a], out_offset + k] += found[a, k]
