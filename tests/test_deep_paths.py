"""Interventional TreeSHAP on trees whose paths test more than 62 distinct players (issue
30, item 14): the pattern bitmasks of the linear-time kernel hold 62, so such trees take
the rows x background walk, tree by tree. Oracles: brute force over every coalition on a
small model with the route forced, the linear-time kernel on trees it can serve, shap's
interventional TreeExplainer on the issue's model, and the model's own prediction."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
import shap
from naive import predict_reference
from oracles import brute_force_group_shapley, brute_force_interactions, brute_force_shapley

import shapgov
from shapgov.errors import InputError
from shapgov.explainers.kernels import background_interactions as bi
from shapgov.explainers.kernels import background_treeshap as bt
from shapgov.explainers.kernels.interventional_treeshap import pairwise_tree_shap
from shapgov_plugins.tree import tree_ensemble


def _issue_model():
    """Issue 30's model exactly as written (seed 0)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 150))
    X[:, 0] = rng.random(3000)
    y = 1.5 ** np.floor(X[:, 0] * 100)
    m = lightgbm.LGBMRegressor(
        n_estimators=4, num_leaves=250, min_child_samples=5, learning_rate=1.0, verbose=-1
    ).fit(X, y)
    return m, X


def _widest(ens, players=None) -> np.ndarray:
    """The most distinct players on one path, per tree ``(trees,)``, counted here."""
    node_player, _ = bt.node_players(ens, players)
    paths = bt._leaf_paths(ens.left, ens.right, node_player, ens.roots)
    widths, leaf_tree = np.diff(paths[6]), paths[1]
    return np.array([widths[leaf_tree == t].max() for t in range(ens.n_trees)])


def _small(seed: int = 4, m: int = 8):
    """A small LightGBM with deep paths, missing values and a categorical column; the last
    column is a constant dummy."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(800, m))
    X[:, 0] = rng.integers(0, 6, 800)
    y = np.sin(X[:, 1]) * X[:, 2] + X[:, 0] * (X[:, 3] > 0) + X[:, 4] * X[:, 5]
    X[rng.random(X.shape) < 0.06] = np.nan
    X[:, -1] = 0.0
    params = {"num_leaves": 24, "min_data_in_leaf": 3, "verbose": -1}
    ds = lightgbm.Dataset(X, y, categorical_feature=[0])
    return lightgbm.train(params, ds, num_boost_round=6), X


class _Spy:
    """Records the trees each call of the walk gets, so a forced-route test cannot pass
    on the other route."""

    def __init__(self) -> None:
        self.trees: list[list[int]] = []

    def __call__(self, *args, **kwargs):
        self.trees.append(np.asarray(args[6]).tolist())
        return pairwise_tree_shap(*args, **kwargs)


@pytest.fixture
def forced(monkeypatch):
    """``force(limit)``: paths wider than ``limit`` players take the walk; returns the spy."""

    def force(limit: int) -> _Spy:
        spy = _Spy()
        monkeypatch.setattr(bt, "MAX_PATH_FEATURES", limit)
        monkeypatch.setattr(bt, "pairwise_tree_shap", spy)
        monkeypatch.setattr(bi, "pairwise_tree_shap", spy)
        return spy

    return force


def test_the_issue_model_is_explained_exactly():
    model, X = _issue_model()
    ens = tree_ensemble(model)
    widest = _widest(ens)
    assert widest.max() > bt.MAX_PATH_FEATURES  # 76: the issue's error
    assert widest.min() <= bt.MAX_PATH_FEATURES  # both routes in one model
    rows, bg = X[:3], X[:30]
    e = shapgov.explain(model, rows, background=bg)
    raw = model.predict(rows, raw_score=True)
    values, base = e.values, e.base_values
    assert np.all(np.isfinite(values))
    # local accuracy: the values reach ~3e16 and cancel to predictions as small as 2e9,
    # so no float sum is closer than rounding at the scale of its terms
    scale = np.abs(values).sum(axis=1) + np.abs(base)
    assert np.all(np.abs(base + values.sum(axis=1) - raw) <= 1e-10 * scale)
    # shap's interventional explainer stores thresholds, leaf values and weights as
    # float32 (shap/cext/tree_shap.h, struct Node): it agrees to single precision
    ref = shap.TreeExplainer(model, data=bg, feature_perturbation="interventional")
    sv = ref.shap_values(rows, check_additivity=False)
    assert np.all(np.isfinite(sv))
    assert np.max(np.abs(values - sv)) <= 1e-6 * np.abs(values).max()
    assert abs(ref.expected_value - base[0]) <= 1e-6 * abs(base[0])
    # the path-dependent game (no background) on the same model: additive to rounding,
    # where LightGBM's pred_contrib misses by ~1e12 (see docs/explaining.md)
    pd_e = shapgov.explain(model, rows)
    assert pd_e.game["feature_perturbation"] == "tree_path_dependent"
    pd_scale = np.abs(pd_e.values).sum(axis=1) + np.abs(pd_e.base_values)
    assert np.all(np.abs(pd_e.base_values + pd_e.values.sum(axis=1) - raw) <= 1e-10 * pd_scale)
    # weights: integer weights are repeated background rows
    counts = np.random.default_rng(1).integers(1, 4, len(bg))
    w = shapgov.explain(model, rows, background=bg, background_weights=counts.astype(float))
    rep = shapgov.explain(model, rows, background=np.repeat(bg, counts, axis=0))
    assert np.all(np.abs(w.values - rep.values) <= 1e-10 * scale[:, None])
    assert np.all(np.abs(w.base_values - rep.base_values) <= 1e-10 * scale)


@pytest.mark.parametrize("limit", [0, 4])
def test_the_walk_equals_brute_force_with_weights_players_missing_and_categories(forced, limit):
    booster, X = _small()
    ens = tree_ensemble(booster)
    rows, bg = X[:3], X[300:308]
    deep = np.flatnonzero(_widest(ens) > limit).tolist()
    assert deep and (limit == 0 or len(deep) < ens.n_trees)  # all walked, or some
    counts = np.random.default_rng(2).integers(1, 4, len(bg))
    spy = forced(limit)
    phi, base = bt.background_shap(ens, rows, bg, counts.astype(float))
    assert spy.trees == [deep]
    cols = [f"f{j}" for j in range(X.shape[1])]
    f = lambda d: predict_reference(ens, d.to_numpy(float))  # noqa: E731
    rep = pd.DataFrame(np.repeat(bg, counts, axis=0), columns=cols)
    ref, ref_base = brute_force_shapley(f, pd.DataFrame(rows, columns=cols), rep)
    assert np.max(np.abs(phi - ref)) <= 1e-10
    assert np.max(np.abs(base - ref_base)) <= 1e-10
    assert np.all(phi[:, -1] == 0.0)  # the dummy
    np.testing.assert_allclose(
        base + phi.sum(1), booster.predict(rows, raw_score=True)[:, None], rtol=0, atol=1e-10
    )
    # grouped players; the constant dummy is no player (-1)
    groups = [[0, 3], [1, 2, 4], [5], [6]]
    players = np.array([0, 1, 1, 0, 1, 2, 3, -1])
    gphi, gbase = bt.background_shap(ens, rows, bg, counts.astype(float), players=players)
    deep = np.flatnonzero(_widest(ens, players) > limit).tolist()
    assert spy.trees[1:] == ([deep] if deep else [])
    gref = brute_force_group_shapley(f, pd.DataFrame(rows, columns=cols), rep, groups)
    assert np.max(np.abs(gphi - gref)) <= 1e-10
    assert np.max(np.abs(gbase - ref_base)) <= 1e-10


@pytest.mark.parametrize("limit", [0, 4])
def test_walked_interaction_values_equal_brute_force(forced, limit):
    booster, X = _small(seed=9, m=6)
    ens = tree_ensemble(booster)
    rows, bg = X[:3], X[300:310]
    deep = np.flatnonzero(_widest(ens) > limit).tolist()
    assert deep and (limit == 0 or len(deep) < ens.n_trees)
    counts = np.random.default_rng(9).integers(1, 3, len(bg))
    spy = forced(limit)
    ours = bi.background_interactions(ens, rows, bg, counts.astype(float))
    assert spy.trees == [deep, deep]  # the pairs, then the values for the diagonal
    cols = list("abcdef")
    ref = brute_force_interactions(
        lambda d: predict_reference(ens, d.to_numpy(float)),
        pd.DataFrame(rows, columns=cols),
        pd.DataFrame(np.repeat(bg, counts, axis=0), columns=cols),
    )
    assert np.max(np.abs(ours - ref)) <= 1e-10
    assert np.max(np.abs(ours - np.swapaxes(ours, 1, 2))) <= 1e-14


def test_the_walk_equals_the_linear_kernel_where_both_serve(forced):
    """A model the pattern kernel serves whole, against the walk forced on part of it and
    on all of it, with weights and grouped players."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 20))
    X[rng.random(X.shape) < 0.03] = np.nan
    y = np.nan_to_num(X[:, 0] * X[:, 1]) + np.sin(np.nan_to_num(X[:, 2:9])).sum(1)
    model = lightgbm.LGBMRegressor(n_estimators=25, num_leaves=40, verbose=-1).fit(X, y)
    ens = tree_ensemble(model)
    rows, bg = X[:40], X[1000:1060]
    w = rng.random(len(bg))
    players = np.arange(20) // 3
    fast = [bt.background_shap(ens, rows, bg, w, players=p) for p in (None, players)]
    fast_pairs = bi.background_interactions(ens, rows[:5], bg, w, players=players)
    mixed = 0
    for limit in (7, 3, 0):
        spy = forced(limit)
        for p, (phi, base) in zip((None, players), fast, strict=True):
            walked, walked_base = bt.background_shap(ens, rows, bg, w, players=p)
            assert np.max(np.abs(walked - phi)) <= 1e-10
            assert np.max(np.abs(walked_base - base)) <= 1e-10
            deep = np.flatnonzero(_widest(ens, p) > limit).tolist()
            assert spy.trees.pop(0) == deep if deep else not spy.trees
            mixed += 0 < len(deep) < ens.n_trees
        pairs = bi.background_interactions(ens, rows[:5], bg, w, players=players)
        assert np.max(np.abs(pairs - fast_pairs)) <= 1e-10
    assert mixed >= 2  # both routes in one model, with and without groups


def test_the_walk_checks_its_arguments():
    booster, X = _small()
    ens = tree_ensemble(booster).validate()
    w = np.full(5, 0.2)
    trees = np.arange(ens.n_trees)
    ok = pairwise_tree_shap(ens, X[:2], X[:5], w, ens.feature, ens.n_features, trees)
    assert ok[0].shape == (2, ens.n_features, 1) and ok[1] is None
    bad = [
        (X[:2], X[:5], w[:4], ens.feature, trees),
        (X[:2], X[:5], 2 * w, ens.feature, trees),
        (X[:2], X[:5], np.r_[-0.2, 0.4, w[2:]], ens.feature, trees),
        (X[:2, :3], X[:5], w, ens.feature, trees),
        (X[:2], X[:5], w, np.zeros(3, dtype=int), trees),
        (X[:2], X[:5], w, ens.feature, trees + 1),
    ]
    for rows, bg, weights, node_player, tr in bad:
        with pytest.raises(InputError, match="do not fit"):
            pairwise_tree_shap(ens, rows, bg, weights, node_player, ens.n_features, tr)
