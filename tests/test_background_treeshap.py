"""Background (interventional) TreeSHAP in linear time: brute force over all coalitions,
the rows x background kernel it replaces, weights, wide paths and bad input."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
from naive import predict_reference
from oracles import brute_force_group_shapley, brute_force_shapley
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingRegressor

from shapgov.errors import InputError
from shapgov.explainers.kernels import background_treeshap
from shapgov.explainers.kernels.background_treeshap import background_shap
from shapgov.explainers.kernels.interventional_treeshap import interventional_shap
from shapgov_plugins.tree import tree_ensemble


def _lightgbm(seed: int, *, depth: int, nan: float, cat: bool, m: int = 6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(700, m))
    if cat:
        X[:, 0] = rng.integers(0, 6, 700)
    y = np.sin(X[:, 1]) * X[:, 2] + X[:, 0] * (X[:, 3] > 0) + rng.normal(scale=0.1, size=700)
    X[rng.random(X.shape) < nan] = np.nan
    X[:, -1] = 0.0  # never split on: a dummy
    params = {"num_leaves": 12, "max_depth": depth, "min_data_in_leaf": 5, "verbose": -1}
    ds = lightgbm.Dataset(X, y, categorical_feature=[0] if cat else "auto")
    return lightgbm.train(params, ds, num_boost_round=10), X


def _brute(ens, rows, bg, weights=None):
    """Brute force; integer weights repeat background rows (the weighted game's meaning)."""
    if weights is not None:
        bg = np.repeat(bg, weights, axis=0)
    cols = [f"f{j}" for j in range(rows.shape[1])]
    return brute_force_shapley(
        lambda d: predict_reference(ens, d.to_numpy(float)),
        pd.DataFrame(rows, columns=cols),
        pd.DataFrame(bg, columns=cols),
    )


@pytest.mark.parametrize("depth", [2, 4, -1])
@pytest.mark.parametrize(("nan", "cat"), [(0.0, False), (0.1, False), (0.05, True)])
def test_equals_brute_force(depth, nan, cat):
    booster, X = _lightgbm(depth + 7, depth=depth, nan=nan, cat=cat)
    ens = tree_ensemble(booster)
    rows, bg = X[:5], X[300:320]
    phi, base = background_shap(ens, rows, bg)
    ref, ref_base = _brute(ens, rows, bg)
    assert np.max(np.abs(phi - ref)) <= 1e-10
    assert np.max(np.abs(base - ref_base)) <= 1e-10
    assert np.all(phi[:, -1] == 0.0)  # the dummy
    np.testing.assert_allclose(
        base + phi.sum(1), booster.predict(rows, raw_score=True)[:, None], rtol=0, atol=1e-10
    )


def test_weighted_background_equals_repeated_rows():
    booster, X = _lightgbm(3, depth=4, nan=0.05, cat=True)
    ens = tree_ensemble(booster)
    rows, bg = X[:4], X[300:315]
    counts = np.random.default_rng(3).integers(1, 4, len(bg))
    phi, base = background_shap(ens, rows, bg, counts.astype(float))
    ref, ref_base = _brute(ens, rows, bg, counts)
    assert np.max(np.abs(phi - ref)) <= 1e-10
    assert np.max(np.abs(base - ref_base)) <= 1e-10
    # a zero weight removes the row; scaling all weights changes nothing
    zero = np.ones(len(bg))
    zero[::3] = 0.0
    a, _ = background_shap(ens, rows, bg, zero)
    b, _ = background_shap(ens, rows, bg[zero > 0])
    c, _ = background_shap(ens, rows, bg, 7.5 * zero)
    assert np.max(np.abs(a - b)) <= 1e-12 and np.max(np.abs(a - c)) <= 1e-12


def test_equals_the_rows_by_background_kernel_on_a_large_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 20))
    X[rng.random(X.shape) < 0.02] = np.nan
    y = np.nan_to_num(X[:, 0] * X[:, 1]) + np.nan_to_num(X[:, 2:8]).sum(1)
    model = lightgbm.LGBMRegressor(n_estimators=60, num_leaves=63, verbose=-1).fit(X, y)
    ens = tree_ensemble(model)
    rows, bg = X[:300], X[2000:2150]
    ours, base = background_shap(ens, rows, bg)
    ref, ref_base = interventional_shap(ens, rows, bg)
    assert np.max(np.abs(ours - ref)) <= 1e-9 * np.abs(ref).max()
    assert np.max(np.abs(base - ref_base)) <= 1e-9 * np.abs(ref).max()


def test_multi_output_leaves_and_sklearn_categories():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 5))
    labels = np.digitize(X[:, 0] + X[:, 1] * X[:, 2], [-0.5, 0.5])
    forest = ExtraTreesClassifier(n_estimators=6, max_depth=5, random_state=0).fit(X, labels)
    ens = tree_ensemble(forest)
    phi, base = background_shap(ens, X[:4], X[200:215])
    ref, ref_base = _brute(ens, X[:4], X[200:215])
    assert phi.shape == (4, 5, 3)
    assert np.max(np.abs(phi - ref)) <= 1e-10 and np.max(np.abs(base - ref_base)) <= 1e-10
    Xc = X.copy()
    Xc[:, 1] = rng.integers(0, 9, 500)
    Xc[rng.random(Xc.shape) < 0.05] = np.nan
    hgb = HistGradientBoostingRegressor(max_iter=8, categorical_features=[1]).fit(
        Xc, np.nan_to_num(Xc[:, 1] % 3) + np.nan_to_num(Xc[:, 0])
    )
    ens = tree_ensemble(hgb)
    Z = hgb._preprocessor.transform(Xc)
    phi, _ = background_shap(ens, Z[:4], Z[100:112])
    ref, _ = _brute(ens, Z[:4], Z[100:112])
    assert np.max(np.abs(phi - ref)) <= 1e-10


def test_wide_paths_take_the_pairing_route_with_the_same_values(monkeypatch):
    booster, X = _lightgbm(11, depth=-1, nan=0.05, cat=True)
    ens = tree_ensemble(booster)
    rows, bg = X[:30], X[300:360]
    dense, base = background_shap(ens, rows, bg)
    monkeypatch.setattr(background_treeshap, "DENSE_MAX_FEATURES", 0)  # every leaf pairs
    paired, paired_base = background_shap(ens, rows, bg)
    assert np.max(np.abs(dense - paired)) <= 1e-12
    assert np.max(np.abs(base - paired_base)) <= 1e-12


def test_bad_input_is_a_typed_error():
    booster, X = _lightgbm(5, depth=3, nan=0.0, cat=False)
    ens = tree_ensemble(booster)
    with pytest.raises(InputError, match="background is empty"):
        background_shap(ens, X[:3], X[:0])
    for weights in ([1.0, 2.0], -np.ones(5), np.zeros(5), [np.nan] * 5):
        with pytest.raises(InputError, match="weights must be 5"):
            background_shap(ens, X[:3], X[:5], np.asarray(weights, dtype=float))
    with pytest.raises(InputError, match="takes 6 columns"):
        background_shap(ens, X[:3, :4], X[:5])


@pytest.mark.parametrize("dense", [True, False])
def test_interactions_equal_the_interaction_index_by_brute_force(dense, monkeypatch):
    from oracles import brute_force_interactions

    from shapgov.explainers.kernels import background_interactions as module

    if not dense:
        monkeypatch.setattr(module, "DENSE_MAX_FEATURES", 0)  # every leaf pairs
    booster, X = _lightgbm(21, depth=-1, nan=0.08, cat=True, m=5)
    ens = tree_ensemble(booster)
    rows, bg = X[:4], X[300:316]
    counts = np.random.default_rng(21).integers(1, 3, len(bg))
    ours = module.background_interactions(ens, rows, bg, counts.astype(float))
    cols = list("abcde")
    ref = brute_force_interactions(
        lambda d: predict_reference(ens, d.to_numpy(float)),
        pd.DataFrame(rows, columns=cols),
        pd.DataFrame(np.repeat(bg, counts, axis=0), columns=cols),
    )
    assert np.max(np.abs(ours - ref)) <= 1e-10
    assert np.max(np.abs(ours - np.swapaxes(ours, 1, 2))) <= 1e-14
    phi, _ = background_shap(ens, rows, bg, counts.astype(float))
    assert np.max(np.abs(ours.sum(axis=2) - phi)) <= 1e-12
    assert np.all(ours[:, 4] == 0.0) and np.all(ours[:, :, 4] == 0.0)  # the dummy


def test_interactions_beyond_the_exact_budget_through_explain():
    """20 columns: past the coalition engine's 14, the linear-time kernel still gives the
    interventional interaction values; on 10 columns both routes agree."""
    import shapgov

    rng = np.random.default_rng(8)
    X = pd.DataFrame(rng.normal(size=(800, 20)), columns=[f"c{j}" for j in range(20)])
    y = X["c0"] * X["c1"] + np.sin(X["c2"]) * X["c3"] + X.iloc[:, 4:].sum(axis=1)
    model = lightgbm.LGBMRegressor(n_estimators=25, num_leaves=12, verbose=-1).fit(X, y)
    rows, bg = X.iloc[:6], X.iloc[400:440]
    e = shapgov.explain(model, rows, background=bg, interactions=True)
    inter = e.interaction_values
    assert inter.shape == (6, 20, 20)
    assert np.max(np.abs(inter.sum(axis=2) - e.values)) <= 1e-10
    assert np.max(np.abs(inter - np.swapaxes(inter, 1, 2))) <= 1e-12
    small = lightgbm.LGBMRegressor(n_estimators=15, num_leaves=8, verbose=-1).fit(X.iloc[:, :10], y)
    ens = tree_ensemble(small)
    fast = module_interactions(ens, rows.iloc[:, :10].to_numpy(), bg.iloc[:, :10].to_numpy())
    from shapgov.explainers.coalitions import interactions_from_values
    from shapgov.explainers.kernels.interventional_treeshap import coalition_margins

    v = coalition_margins(
        ens, rows.iloc[:, :10].to_numpy(), bg.iloc[:, :10].to_numpy(), np.arange(10), 10
    ).mean(axis=1)
    assert np.max(np.abs(fast - interactions_from_values(v))) <= 1e-10


def module_interactions(ens, rows, bg):
    from shapgov.explainers.kernels.background_interactions import background_interactions

    return background_interactions(ens, rows, bg)


def test_background_preparations_are_reused_only_for_the_same_trees_and_background():
    """The per-(trees, background) cache skips work and never changes a value."""
    import lightgbm
    import pandas as pd

    from shapgov.explainers.kernels import background_treeshap as bt
    from shapgov.explainers.kernels.interventional_treeshap import interventional_shap
    from shapgov_plugins.tree import tree_ensemble

    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(600, 5)))
    model = lightgbm.LGBMRegressor(n_estimators=15, num_leaves=8, verbose=-1).fit(
        X, X[0] * X[1] + X[2]
    )
    ens = tree_ensemble(model)
    Z = X.to_numpy()
    rows, first, second = Z[:7], Z[100:140].copy(), Z[200:230].copy()
    bt._PREPARED.clear()
    for background in (first, second, first):
        phi, _ = bt.background_shap(ens, rows, background)
        ref, _ = interventional_shap(ens, rows, background)
        np.testing.assert_allclose(phi, ref, rtol=0, atol=1e-12)
    assert len(bt._PREPARED) == 2
    first[3, 0] += 1.0  # the same array object, changed: a new preparation
    phi, _ = bt.background_shap(ens, rows, first)
    np.testing.assert_allclose(phi, interventional_shap(ens, rows, first)[0], rtol=0, atol=1e-12)
    assert len(bt._PREPARED) == 3


def test_values_are_the_same_floats_on_any_number_of_threads():
    """Trees are summed in fixed chunks: one thread (a Spark task) and every core give
    bitwise the same values, so results reproduce across machines."""
    import numba
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=600, n_features=8, random_state=3)
    model = lightgbm.LGBMRegressor(n_estimators=37, num_leaves=15, verbose=-1).fit(X, y)
    ens = tree_ensemble(model)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one, base_one = background_shap(ens, X[:200], X[300:400])
        numba.set_num_threads(before)
        many, base_many = background_shap(ens, X[:200], X[300:400])
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, many)
    np.testing.assert_array_equal(base_one, base_many)


def test_rows_beyond_one_block_are_explained(monkeypatch):
    """Rows are explained in blocks that bound the accumulators' memory; more rows than
    one block (at most 32768, fewer with many columns) once raised a TypeError."""
    booster, X = _lightgbm(13, depth=4, nan=0.05, cat=True)
    ens = tree_ensemble(booster)
    rows, bg = X[:600], X[600:640]
    whole, base = background_shap(ens, rows, bg)
    monkeypatch.setattr(background_treeshap, "ACCUMULATOR_BYTES", 1)  # blocks of 256 rows
    blocked, blocked_base = background_shap(ens, rows, bg)
    np.testing.assert_array_equal(blocked, whole)
    np.testing.assert_array_equal(blocked_base, base)


def _tabled(monkeypatch, block: int = 3) -> None:
    """Every call takes the leaf tables and row blocks of ``block`` rows, however few."""
    from shapgov.explainers.kernels import leaf_tables

    monkeypatch.setattr(background_treeshap, "TABLE_MIN_ROWS", 0)
    monkeypatch.setattr(leaf_tables, "TABLE_WORK_FACTOR", np.inf)
    monkeypatch.setattr(background_treeshap, "BLOCK_ROWS", block)


@pytest.mark.parametrize("depth", [3, -1])
@pytest.mark.parametrize(("nan", "cat"), [(0.0, False), (0.08, True)])
def test_leaf_tables_and_row_blocks_equal_brute_force(depth, nan, cat, monkeypatch):
    """The many-rows route (leaf tables, depth-first patterns, blocks ending ragged), with
    weights and grouped players, against brute force over all coalitions."""
    booster, X = _lightgbm(depth + 31, depth=depth, nan=nan, cat=cat)
    ens = tree_ensemble(booster)
    rows, bg = X[:7], X[300:318]
    counts = np.random.default_rng(depth + 31).integers(1, 3, len(bg))
    _tabled(monkeypatch)
    tabled, paired, twigs = _leaf_routes(ens, rows.shape[0], bg, counts.astype(float))
    assert tabled > 0 and (paired > 0 or depth > 0)  # the deep trees take both leaf routes
    assert twigs > 0  # and nodes whose two leaves are added at once
    phi, base = background_shap(ens, rows, bg, counts.astype(float))
    ref, ref_base = _brute(ens, rows, bg, counts)
    assert np.max(np.abs(phi - ref)) <= 1e-10
    assert np.max(np.abs(base - ref_base)) <= 1e-10
    assert np.all(phi[:, -1] == 0.0)
    players = np.array([0, 0, 1, 2, 2, -1])
    grouped, _ = background_shap(ens, rows, bg, counts.astype(float), players=players)
    cols = [f"f{j}" for j in range(6)]
    gref = brute_force_group_shapley(
        lambda d: predict_reference(ens, d.to_numpy(float)),
        pd.DataFrame(rows, columns=cols),
        pd.DataFrame(np.repeat(bg, counts, axis=0), columns=cols),
        [[0, 1], [2], [3, 4]],  # the last column is the same everywhere (player -1)
    )
    assert np.max(np.abs(grouped - gref)) <= 1e-10


def _leaf_routes(ens, n_rows, bg, weights) -> tuple[int, int, int]:
    """How many leaves with path features get a table, how many pair, and how many nodes
    add their two leaves at once (twigs), for a call."""
    from shapgov.explainers.kernels.leaf_tables import node_slots, table_layout, twig_layout

    node_player, _ = background_treeshap.node_players(ens, None)
    w = weights / weights.sum()
    paths, _, deep, _, _, distinct = background_treeshap._prepared(
        ens, ens.check_input(bg), w, node_player
    )
    widths = np.diff(paths[6])
    eligible = ~deep[paths[1]] & (widths <= background_treeshap.DENSE_MAX_FEATURES)
    start, _, _ = table_layout(widths, distinct[2], eligible, n_rows)
    _, leaf_of = node_slots(ens, paths[0], paths[3], paths[5])
    twigs, _ = twig_layout(ens.left, ens.right, leaf_of, paths[6], start, ens.value.shape[1])
    tabled, paired = int((start >= 0).sum()), int(((start < 0) & (widths > 0)).sum())
    return tabled, paired, int((twigs >= 0).sum())


def test_leaf_tables_with_multi_output_leaves(monkeypatch):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 5))
    labels = np.digitize(X[:, 0] + X[:, 1] * X[:, 2], [-0.5, 0.5])
    forest = ExtraTreesClassifier(n_estimators=5, max_depth=6, random_state=0).fit(X, labels)
    ens = tree_ensemble(forest)
    _tabled(monkeypatch, block=2)
    phi, base = background_shap(ens, X[:5], X[200:214])
    ref, ref_base = _brute(ens, X[:5], X[200:214])
    assert phi.shape == (5, 5, 3)
    assert np.max(np.abs(phi - ref)) <= 1e-10 and np.max(np.abs(base - ref_base)) <= 1e-10


def test_both_row_routes_agree_and_give_the_same_floats_on_any_number_of_threads(
    monkeypatch,
):
    """The many-rows route equals the per-block one (to rounding: the sums run in another
    order) and, each row block being one thread's from the first tree to the last, gives
    bitwise the same values on one thread or all."""
    import numba
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=3000, n_features=8, random_state=5)
    X[::17, 2] = np.nan
    model = lightgbm.LGBMRegressor(n_estimators=30, num_leaves=31, verbose=-1).fit(X, y)
    ens = tree_ensemble(model)
    rows, bg = X[:2500], X[2500:2600]
    blocked, base_blocked = background_shap(ens, rows, bg)
    _tabled(monkeypatch, block=64)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one, base_one = background_shap(ens, rows, bg)
        numba.set_num_threads(before)
        many, base_many = background_shap(ens, rows, bg)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, many)
    np.testing.assert_array_equal(base_one, base_many)
    scale = np.abs(blocked).max()
    assert np.max(np.abs(many - blocked)) <= 1e-12 * scale
    np.testing.assert_array_equal(base_many, base_blocked)
    raw = model.predict(rows, raw_score=True)
    assert np.max(np.abs(base_many[0] + many.sum(1)[:, 0] - raw)) <= 1e-9


def test_the_table_route_is_taken_only_where_building_the_tables_pays():
    """The routing rule: tables (``3**d x d`` work a leaf, path-dependent ``2**d``
    patterns) must cost no more than the rows' adds; a deep forest at 32,000 rows keeps
    the former routes, 31-leaf boosting at 20,000 rows takes the tables."""
    from shapgov.explainers.kernels.leaf_tables import path_dependent_worth_it, table_layout

    # path widths of LightGBM 100 trees x 31 leaves on 30 features (bench_million.py)
    counts = [0, 21, 104, 226, 446, 623, 530, 458, 295, 249, 122, 21, 5]
    boosting = np.repeat(np.arange(len(counts)), counts)
    deep_forest = np.full(100_000, 14)
    for widths, rows, expected in ((boosting, 20_000, True), (deep_forest, 32_000, False)):
        eligible = np.ones(widths.size, dtype=bool)
        _, _, worth_it = table_layout(widths, np.full(widths.size, 60), eligible, rows)
        assert worth_it is expected
        assert path_dependent_worth_it(widths, rows) is expected
    # a few rows never pay for the tables
    few = table_layout(boosting, np.full(boosting.size, 60), np.ones(boosting.size, bool), 50)
    assert not few[2]
