"""Exact Shapley values from a table of coalition values, and the GAM-response engine.

Coalitions are integers: bit ``j`` set means player ``j`` is in the coalition.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from math import comb

import numpy as np

from shapgov.errors import ExactBudgetError

DEFAULT_MAX_EXACT_PLAYERS = 14
_CHUNK_ELEMENTS = 1 << 22


@cache
def coalition_masks(n_players: int) -> np.ndarray:
    """``(2**n_players, n_players)`` 0/1 matrix; row ``s`` is coalition ``s``."""
    ids = np.arange(1 << n_players)[:, None]
    return ((ids >> np.arange(n_players)) & 1).astype(float)


@cache
def _marginal_index(n_players: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every player j: the coalitions S without j, S + {j}, and the Shapley weight of |S|."""
    ids = np.arange(1 << n_players)
    sizes = np.array([bin(i).count("1") for i in range(1 << n_players)])
    weights = np.array([1.0 / (n_players * comb(n_players - 1, s)) for s in range(n_players)])
    without, with_, w = [], [], []
    for j in range(n_players):
        s = ids[(ids >> j) & 1 == 0]
        without.append(s)
        with_.append(s | (1 << j))
        w.append(weights[sizes[s]])
    return np.array(without), np.array(with_), np.array(w)


def shapley_from_values(v: np.ndarray) -> np.ndarray:
    """Shapley values ``(n, P, K)`` from coalition values ``v`` of shape ``(n, 2**P, K)``."""
    n_players = int(v.shape[1]).bit_length() - 1
    if v.shape[1] != 1 << n_players:
        raise ValueError(f"expected 2**P coalition values, got {v.shape[1]}")
    if n_players == 0:
        return np.zeros((v.shape[0], 0, v.shape[2]))
    without, with_, w = _marginal_index(n_players)
    diff = v[:, with_, :] - v[:, without, :]  # (n, P, 2**(P-1), K)
    return np.einsum("npsk,ps->npk", diff, w)


def gam_response_shapley(
    d: np.ndarray,
    e: np.ndarray,
    intercept: np.ndarray,
    response: Callable[[np.ndarray], np.ndarray],
    *,
    max_players: int = DEFAULT_MAX_EXACT_PLAYERS,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact interventional SHAP of ``response(intercept + sum_g h_g(x_g))``.

    ``d[i, g]`` is player g's margin contribution on row i, ``e[b, g]`` on background
    row b (each ``(…, K)``). The value of coalition S on row i is the background mean of
    ``response`` at the margin that takes players in S from the row and the others from
    the background row. All ``2**P`` coalitions are enumerated.

    :returns: ``(values (n, P, K_out), base (K_out,))``.
    """
    n, n_players, _ = d.shape
    if n_players > max_players:
        raise ExactBudgetError(
            f"exact enumeration over {n_players} columns needs 2**{n_players} coalitions, "
            f"above the budget of {max_players}; raise max_exact_players (cost doubles per "
            "column) or explain fewer columns."
        )
    masks = coalition_masks(n_players)  # (S, P)
    e_total = e.sum(axis=1) + intercept  # (B, K)
    base_rows = response(e_total)
    base = base_rows.mean(axis=0)
    n_bg, k_out = e.shape[0], base_rows.shape[-1]
    per_row = masks.shape[0] * n_bg * max(d.shape[2], k_out)
    step = max(1, _CHUNK_ELEMENTS // per_row)
    values = np.empty((n, n_players, k_out))
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        delta = d[rows, None, :, :] - e[None, :, :, :]  # (r, B, P, K)
        r = delta.shape[0]
        shifted = np.einsum("sp,rbpk->rsbk", masks, delta, optimize=True)
        margins = shifted + e_total[None, None]  # (r, S, B, K)
        v = response(margins).mean(axis=2)  # (r, S, K_out)
        values[rows] = shapley_from_values(v.reshape(r, masks.shape[0], k_out))
    return values, base
