"""Independent oracles: brute-force Shapley values over every coalition of original columns.

Plain Python over coalitions, calling the model's own predict on hybrid rows: nothing
here shares code with shapgov's explainers.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd


def coalition_values(
    f: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, background: pd.DataFrame
) -> dict[frozenset[int], np.ndarray]:
    """v(S) per row: mean over background rows b of f(x_S, b_rest), each ``(n, K)``."""
    n, m = X.shape
    nb = len(background)
    rows_x = X.iloc[np.repeat(np.arange(n), nb)].reset_index(drop=True)
    rows_b = background.iloc[np.tile(np.arange(nb), n)].reset_index(drop=True)
    values = {}
    for size in range(m + 1):
        for subset in combinations(range(m), size):
            hybrid = rows_b.copy()
            for j in subset:
                hybrid.iloc[:, j] = rows_x.iloc[:, j].to_numpy()
            out = np.asarray(f(hybrid), dtype=float).reshape(n * nb, -1)
            values[frozenset(subset)] = out.reshape(n, nb, -1).mean(axis=1)
    return values


def brute_force_shapley(
    f: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, background: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Interventional Shapley values ``(n, M, K)`` and base ``(K,)`` by the definition."""
    v = coalition_values(f, X, background)
    m = X.shape[1]
    k = v[frozenset()].shape[1]
    phi = np.zeros((len(X), m, k))
    for j in range(m):
        others = [i for i in range(m) if i != j]
        for size in range(m):
            weight = factorial(size) * factorial(m - size - 1) / factorial(m)
            for subset in combinations(others, size):
                s = frozenset(subset)
                phi[:, j] += weight * (v[s | {j}] - v[s])
    return phi, v[frozenset()].mean(axis=0)
