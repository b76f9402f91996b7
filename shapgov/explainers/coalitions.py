"""The exact-coalition engine: every explainer that enumerates coalitions goes through it.

Coalitions are integers: bit ``j`` set means player ``j`` is in the coalition. An
explainer supplies the coalition values ``v(S)`` of a block of rows, ``(r, 2**P, K)``;
the engine checks the budget, cuts the rows into blocks that bound memory, and applies
the Shapley formula (Shapley 1953) or the Shapley interaction index (Grabisch and
Roubens 1999; Lundberg et al. 2020, eq. 7).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from math import comb, factorial

import numpy as np

from shapgov.errors import ExactBudgetError, InputError

#: Most players (original columns) enumerated exactly by default: 2**14 coalitions.
DEFAULT_MAX_EXACT_PLAYERS = 14
#: Elements (rows x coalitions x background rows x outputs) one block may hold.
CHUNK_ELEMENTS = 1 << 22


def players_of(origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(active, player)``: the original columns a vertex reads, sorted, and the player
    index of each of its input columns (-1 for a constant column, origin -1)."""
    origins = np.asarray(origins, dtype=np.int64)
    active = np.unique(origins[origins >= 0])
    player = np.where(origins >= 0, np.searchsorted(active, origins), -1).astype(np.int64)
    return active, player


def checked_max_players(value: object) -> int:
    """A ``max_exact_players`` option, checked: a non-negative int, else InputError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"max_exact_players must be a non-negative int, got {value!r}")
    return value


def check_budget(
    n_players: int, max_players: int, *, what: str, instead: str = "explain fewer columns"
) -> None:
    """Raise :class:`~shapgov.errors.ExactBudgetError` when ``2**n_players`` coalitions are
    above the budget; ``what`` names the computation, ``instead`` the way out."""
    if n_players > max_players:
        raise ExactBudgetError(
            f"{what}: exact values over {n_players} columns need 2**{n_players} coalitions, "
            f"above max_exact_players={max_players}; raise it through "
            f"explainer_options (cost doubles per column) or {instead}"
        )


@cache
def coalition_masks(n_players: int) -> np.ndarray:
    """``(2**n_players, n_players)`` 0/1 matrix; row ``s`` is coalition ``s``."""
    ids = np.arange(1 << n_players)[:, None]
    return ((ids >> np.arange(n_players)) & 1).astype(float)


@cache
def _marginal_index(n_players: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every player j: the coalitions S without j, S + {j}, and the Shapley weight."""
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


@cache
def _pair_index(n_players: int) -> tuple[np.ndarray, ...]:
    """For every pair i < j: coalitions S without i and j, and the interaction weight."""
    p = n_players
    ids = np.arange(1 << p)
    sizes = np.array([bin(i).count("1") for i in range(1 << p)])
    weight = np.array(
        [factorial(s) * factorial(p - s - 2) / (2 * factorial(p - 1)) for s in range(p - 1)]
    )
    first, second, base, w = [], [], [], []
    for i in range(p):
        for j in range(i + 1, p):
            s = ids[((ids >> i) & 1 == 0) & ((ids >> j) & 1 == 0)]
            first.append(i)
            second.append(j)
            base.append(s)
            w.append(weight[sizes[s]])
    return np.array(first), np.array(second), np.array(base), np.array(w)


def _n_players(v: np.ndarray) -> int:
    n_players = int(v.shape[1]).bit_length() - 1
    if v.shape[1] != 1 << n_players:
        raise ValueError(f"expected 2**P coalition values, got {v.shape[1]}")
    return n_players


def shapley_from_values(v: np.ndarray) -> np.ndarray:
    """Shapley values ``(n, P, K)`` from coalition values ``v`` of shape ``(n, 2**P, K)``."""
    n_players = _n_players(v)
    if n_players == 0:
        return np.zeros((v.shape[0], 0, v.shape[2]))
    without, with_, w = _marginal_index(n_players)
    diff = v[:, with_, :] - v[:, without, :]  # (n, P, 2**(P-1), K)
    return np.einsum("npsk,ps->npk", diff, w)


def interactions_from_values(v: np.ndarray) -> np.ndarray:
    """SHAP interaction values ``(n, P, P, K)`` from coalition values ``(n, 2**P, K)``.

    Off the diagonal the Shapley interaction index, split evenly between ``(i, j)`` and
    ``(j, i)``; on it, what the pairs leave of each Shapley value, so rows sum to them.
    """
    n_players = _n_players(v)
    phi = shapley_from_values(v)
    out = np.zeros((v.shape[0], n_players, n_players, v.shape[2]))
    if n_players >= 2:
        first, second, base, w = _pair_index(n_players)
        bi, bj = (1 << first)[:, None], (1 << second)[:, None]
        delta = v[:, base | bi | bj] - v[:, base | bi] - v[:, base | bj] + v[:, base]
        pairs = np.einsum("nqsk,qs->nqk", delta, w)  # (n, pairs, K)
        out[:, first, second] = pairs
        out[:, second, first] = pairs
    idx = np.arange(n_players)
    out[:, idx, idx] = phi - out.sum(axis=2)
    return out


def exact_shapley(
    coalition_values: Callable[[slice], np.ndarray],
    *,
    n_rows: int,
    n_players: int,
    elements_per_row: int,
    max_players: int,
    what: str,
    instead: str = "explain fewer columns",
    interactions: bool = False,
) -> np.ndarray:
    """Exact Shapley values ``(n, P, K)`` (or interaction values ``(n, P, P, K)``).

    :param coalition_values: Called with a block of rows (a slice); returns their
        coalition values ``(r, 2**P, K)``.
    :param elements_per_row: Elements one row's coalition values take while they are
        computed (``2**P`` times background rows times outputs), to size the blocks.
    :param max_players: The budget; above it :class:`~shapgov.errors.ExactBudgetError`.
    :param what: Names the computation in errors (the vertex, usually).
    :param instead: The way out the budget error offers beside a larger budget.
    """
    check_budget(n_players, max_players, what=what, instead=instead)
    step = max(1, CHUNK_ELEMENTS // max(1, elements_per_row))
    out: np.ndarray | None = None
    for start in range(0, n_rows, step):
        rows = slice(start, min(n_rows, start + step))
        v = coalition_values(rows)
        block = interactions_from_values(v) if interactions else shapley_from_values(v)
        if out is None:
            out = np.empty((n_rows, *block.shape[1:]))
        out[rows] = block
    if out is None:
        raise ValueError("there are no rows to explain")
    return out
