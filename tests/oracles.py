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
    from_x = {c: X[c].to_numpy()[np.repeat(np.arange(n), nb)] for c in X.columns}
    from_b = {c: background[c].to_numpy()[np.tile(np.arange(nb), n)] for c in X.columns}
    dtypes = X.dtypes.to_dict()
    values = {}
    for size in range(m + 1):
        for subset in combinations(range(m), size):
            data = {c: (from_x if j in subset else from_b)[c] for j, c in enumerate(X.columns)}
            hybrid = pd.DataFrame(data).astype(dtypes)
            out = np.asarray(f(hybrid), dtype=float).reshape(n * nb, -1)
            values[frozenset(subset)] = out.reshape(n, nb, -1).mean(axis=1)
    return values


def brute_force_shapley(
    f: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, background: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Interventional Shapley values ``(n, M, K)`` and base ``(K,)`` by the definition."""
    v = coalition_values(f, X, background)
    return shapley_by_definition(v, X.shape[1]), v[frozenset()].mean(axis=0)


def shapley_by_definition(v: dict[frozenset[int], np.ndarray], m: int) -> np.ndarray:
    """phi_j = sum over S without j of |S|!(m-|S|-1)!/m! (v(S + j) - v(S)); v(S) is (n, K)."""
    phi = np.zeros((*v[frozenset()].shape[:-1], m, v[frozenset()].shape[-1]))
    for j in range(m):
        others = [i for i in range(m) if i != j]
        for size in range(m):
            weight = factorial(size) * factorial(m - size - 1) / factorial(m)
            for subset in combinations(others, size):
                s = frozenset(subset)
                phi[..., j, :] += weight * (v[s | {j}] - v[s])
    return phi


def tree_conditional_expectation(ens, x: np.ndarray, subset: frozenset[int]) -> np.ndarray:
    """Path-dependent value function: E[f(x) | x_S] with unknown splits averaged by cover.
    A split on a derived column (a CatBoost CTR over a combination of columns) is known
    only when every column it reads is in S."""
    from naive import goes_left

    out = ens.base_offset.astype(float).copy()
    n = ens.n_features
    reads = ens.derived.reads if ens.derived is not None else ()
    x = ens.split_inputs(np.asarray(x, dtype=float)[None])[0] if reads else x

    def walk(i: int) -> np.ndarray:
        if ens.left[i] < 0:
            return ens.value[i]
        f = ens.feature[i]
        if (f in subset) if f < n else set(reads[f - n]) <= subset:
            child = ens.left[i] if goes_left(ens, i, x[f]) else ens.right[i]
            return walk(int(child))
        lc, rc = int(ens.left[i]), int(ens.right[i])
        return (ens.cover[lc] * walk(lc) + ens.cover[rc] * walk(rc)) / ens.cover[i]

    for t, root in enumerate(ens.roots):
        o = ens.tree_output[t]
        out[o : o + ens.value.shape[1]] += walk(int(root))
    return out


def brute_force_path_dependent(ens, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Path-dependent Shapley values ``(n, M, K)`` by enumerating coalitions."""
    X = ens.check_input(X)  # the model's own input rounding (float32 for scikit-learn)
    n, m = X.shape
    phi = np.zeros((n, m, ens.n_outputs))
    for r in range(n):
        v = {
            frozenset(s): tree_conditional_expectation(ens, X[r], frozenset(s))[None]
            for size in range(m + 1)
            for s in combinations(range(m), size)
        }
        phi[r] = shapley_by_definition(v, m)[0]
    return phi, tree_conditional_expectation(ens, X[0], frozenset())


def brute_force_path_dependent_interactions(ens, X: np.ndarray) -> np.ndarray:
    """Shapley interaction index by its definition over all coalitions, ``(n, M, M, K)``:
    ``Phi_ij = sum_S |S|! (M-|S|-2)! / (2 (M-1)!) * (v(S+ij) - v(S+i) - v(S+j) + v(S))``
    off the diagonal, and ``Phi_ii = phi_i - sum_{j != i} Phi_ij``."""
    X = ens.check_input(X)
    n, m = X.shape
    out = np.zeros((n, m, m, ens.n_outputs))
    for r in range(n):
        v = {
            frozenset(s): tree_conditional_expectation(ens, X[r], frozenset(s))[None]
            for size in range(m + 1)
            for s in combinations(range(m), size)
        }
        out[r] = interaction_index(v, m)[0]
    return out


def interaction_index(v: dict[frozenset[int], np.ndarray], m: int) -> np.ndarray:
    """Shapley interaction index ``(n, M, M, K)`` of coalition values ``v`` (each (n, K)):
    off the diagonal its definition, on it ``phi_i - sum_{j != i} Phi_ij``."""
    phi = shapley_by_definition(v, m)
    out = np.zeros((*phi.shape[:-2], m, m, phi.shape[-1]))
    for i, j in combinations(range(m), 2):
        others = [k for k in range(m) if k not in (i, j)]
        total = 0.0
        for size in range(len(others) + 1):
            w = factorial(size) * factorial(m - size - 2) / (2 * factorial(m - 1))
            for s in combinations(others, size):
                S = frozenset(s)
                total = total + w * (v[S | {i, j}] - v[S | {i}] - v[S | {j}] + v[S])
        out[..., i, j, :] = total
        out[..., j, i, :] = total
    for i in range(m):
        out[..., i, i, :] = phi[..., i, :] - out[..., i, :, :].sum(axis=-2)
    return out


def brute_force_interactions(
    f: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, background: pd.DataFrame
) -> np.ndarray:
    """Interventional SHAP interaction values ``(n, M, M, K)`` by the definition."""
    return interaction_index(coalition_values(f, X, background), X.shape[1])


def group_coalition_values(
    f: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    background: pd.DataFrame,
    groups: list[list[int]],
) -> dict[frozenset[int], np.ndarray]:
    """v(T) per row over coalitions T of groups: the columns of every group in T from the
    row, the rest from each background row, averaged; each ``(n, K)``."""
    n, nb, g = len(X), len(background), len(groups)
    from_x = {c: X[c].to_numpy()[np.repeat(np.arange(n), nb)] for c in X.columns}
    from_b = {c: background[c].to_numpy()[np.tile(np.arange(nb), n)] for c in X.columns}
    dtypes = X.dtypes.to_dict()
    values = {}
    for size in range(g + 1):
        for subset in combinations(range(g), size):
            cols = {j for k in subset for j in groups[k]}
            data = {c: (from_x if j in cols else from_b)[c] for j, c in enumerate(X.columns)}
            out = np.asarray(f(pd.DataFrame(data).astype(dtypes)), dtype=float)
            values[frozenset(subset)] = out.reshape(n, nb, -1).mean(axis=1)
    return values


def brute_force_group_shapley(
    f: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    background: pd.DataFrame,
    groups: list[list[int]],
) -> np.ndarray:
    """Interventional Shapley values ``(n, G, K)`` of the game whose players are the
    groups (lists of column positions), by the definition."""
    return shapley_by_definition(group_coalition_values(f, X, background, groups), len(groups))


def brute_force_group_path_dependent(ens, X: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Path-dependent Shapley values ``(n, G, K)`` of the game whose players are groups of
    the trees' input columns, by enumerating coalitions of groups."""
    X = ens.check_input(X)
    g = len(groups)
    phi = np.zeros((len(X), g, ens.n_outputs))
    for r in range(len(X)):
        v = {}
        for size in range(g + 1):
            for subset in combinations(range(g), size):
                cols = frozenset(j for k in subset for j in groups[k])
                v[frozenset(subset)] = tree_conditional_expectation(ens, X[r], cols)[None]
        phi[r] = shapley_by_definition(v, g)[0]
    return phi
