"""The exact-coalition engine against the plain-Python references in tests/naive.py."""

from __future__ import annotations

import numpy as np
import pytest
from naive import naive_interactions, naive_shapley
from scipy.special import expit

from shapgov.errors import ExactBudgetError
from shapgov.explainers import coalitions
from shapgov.explainers.coalitions import (
    coalition_masks,
    exact_shapley,
    interactions_from_values,
    players_of,
    shapley_from_values,
)


@pytest.mark.parametrize("players", [1, 2, 5, 8])
def test_shapley_from_values_matches_naive(players):
    rng = np.random.default_rng(players)
    v = rng.normal(size=(3, 1 << players, 2))
    phi = shapley_from_values(v)
    for i in range(3):
        for k in range(2):
            np.testing.assert_allclose(phi[i, :, k], naive_shapley(v[i, :, k]), atol=1e-12)
    # efficiency: the values add up to v(all) - v(empty)
    np.testing.assert_allclose(phi.sum(1), v[:, -1] - v[:, 0], atol=1e-12)


@pytest.mark.parametrize("players", [1, 2, 3, 6])
def test_interactions_from_values_match_naive(players):
    rng = np.random.default_rng(10 + players)
    v = rng.normal(size=(2, 1 << players, 2))
    inter = interactions_from_values(v)
    for i in range(2):
        for k in range(2):
            np.testing.assert_allclose(
                inter[i, :, :, k], naive_interactions(v[i, :, k]), atol=1e-12
            )
    np.testing.assert_allclose(inter, np.swapaxes(inter, 1, 2), atol=0)  # symmetric
    np.testing.assert_allclose(inter.sum(2), shapley_from_values(v), atol=1e-12)


def test_a_dummy_player_gets_zero_values_and_interactions():
    rng = np.random.default_rng(3)
    v = rng.normal(size=(1, 1 << 3, 1))
    ids = np.arange(8)
    v[0, ids | 0b100, 0] = v[0, ids & 0b011, 0]  # player 2 changes nothing
    assert np.max(np.abs(shapley_from_values(v)[0, 2])) <= 1e-15
    inter = interactions_from_values(v)
    assert np.max(np.abs(inter[0, 2])) <= 1e-15 and np.max(np.abs(inter[0, :, 2])) <= 1e-15


def test_exact_shapley_is_block_independent(monkeypatch):
    rng = np.random.default_rng(0)
    d, e = rng.normal(size=(7, 6)), rng.normal(size=(9, 6))
    masks = coalition_masks(6)

    def values(rows):
        margins = (
            0.3 + e.sum(1)[None, None, :] + (masks[None] @ (d[rows, :, None] - e.T[None]))
        )  # (r, S, B)
        return expit(margins).mean(axis=2)[..., None]

    kwargs = dict(n_rows=7, n_players=6, elements_per_row=64 * 9, max_players=14, what="t")
    whole = exact_shapley(values, **kwargs)
    monkeypatch.setattr(coalitions, "CHUNK_ELEMENTS", 1)  # one row per block
    blocks = exact_shapley(values, **kwargs)
    np.testing.assert_allclose(whole, blocks, rtol=0, atol=1e-15)
    for i in range(7):
        np.testing.assert_allclose(whole[i, :, 0], naive_shapley(values(slice(i, i + 1))[0, :, 0]))


def test_budget_is_enforced_before_any_work():
    def values(rows):
        raise AssertionError("no coalition value may be computed above the budget")

    with pytest.raises(ExactBudgetError, match="raise it through explainer_options"):
        exact_shapley(values, n_rows=1, n_players=15, elements_per_row=1, max_players=14, what="t")


def test_players_of_maps_columns_to_original_players():
    active, player = players_of(np.array([3, 3, -1, 0, 5]))
    assert active.tolist() == [0, 3, 5]
    assert player.tolist() == [1, 1, -1, 0, 2]
