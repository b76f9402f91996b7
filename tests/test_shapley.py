"""The exact Shapley engine against a plain-Python reference on random games."""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pytest
from scipy.special import expit

from shapgov import shapley
from shapgov.errors import ExactBudgetError


def naive_shapley(v: np.ndarray) -> np.ndarray:
    """Shapley values of one game ``v`` (2**P,) by the textbook sum."""
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


@pytest.mark.parametrize("players", [1, 2, 5, 8])
def test_shapley_from_values_matches_naive(players):
    rng = np.random.default_rng(players)
    v = rng.normal(size=(3, 1 << players, 2))
    phi = shapley.shapley_from_values(v)
    for i in range(3):
        for k in range(2):
            np.testing.assert_allclose(phi[i, :, k], naive_shapley(v[i, :, k]), atol=1e-12)
    # efficiency: the values add up to v(all) - v(empty)
    np.testing.assert_allclose(phi.sum(1), v[:, -1] - v[:, 0], atol=1e-12)


def test_gam_response_is_chunk_independent(monkeypatch):
    rng = np.random.default_rng(0)
    d, e = rng.normal(size=(7, 6, 1)), rng.normal(size=(9, 6, 1))
    whole = shapley.gam_response_shapley(d, e, np.array([0.3]), expit)
    monkeypatch.setattr(shapley, "_CHUNK_ELEMENTS", 1)  # one row per chunk
    chunked = shapley.gam_response_shapley(d, e, np.array([0.3]), expit)
    # BLAS may sum in another order for another batch shape: equal to rounding only
    np.testing.assert_allclose(whole[0], chunked[0], rtol=0, atol=1e-15)
    # against the textbook sum on the coalition table built by hand
    masks = shapley.coalition_masks(6)
    for i in range(7):
        margins = 0.3 + e.sum(1)[None, :, 0] + masks @ (d[i, :, 0][:, None] - e[:, :, 0].T)
        v = expit(margins).mean(axis=1)
        np.testing.assert_allclose(whole[0][i, :, 0], naive_shapley(v), atol=1e-12)


def test_budget_is_enforced():
    with pytest.raises(ExactBudgetError, match="raise max_exact_players"):
        shapley.gam_response_shapley(np.zeros((1, 15, 1)), np.zeros((1, 15, 1)), np.zeros(1), expit)
