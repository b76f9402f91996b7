"""Tree explainer: parsers, the numba kernel and its oracles (brute force, LightGBM, shap)."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
import shap
from naive import predict_reference
from oracles import brute_force_path_dependent, brute_force_shapley
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor

import shapgov
from shapgov.errors import InputError, UnsupportedModelError
from shapgov.explainers.kernels.interventional_treeshap import interventional_shap
from shapgov.explainers.kernels.linear_treeshap import linear_path_dependent_shap
from shapgov.explainers.kernels.subset_treeshap import subset_path_dependent
from shapgov.explainers.kernels.treeshap import path_dependent_shap
from shapgov_plugins.tree import tree_ensemble


def _data(seed: int, n: int = 600, m: int = 6, *, nan: float = 0.0, cat: bool = False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m))
    if cat:
        X[:, 0] = rng.integers(0, 6, size=n)
    y = X[:, 0] * 1.5 + np.sin(3 * X[:, 1]) + X[:, 2] * X[:, 3] + rng.normal(scale=0.1, size=n)
    if nan:
        X[rng.random(X.shape) < nan] = np.nan
    X[:, -1] = 0.0  # never used by any split: a dummy feature
    return X, y


SMALL = {
    "nan-default": dict(data=dict(nan=0.1), params={}),
    "zero-as-missing": dict(data=dict(nan=0.05), params={"zero_as_missing": True}),
    "nan-as-zero": dict(data=dict(nan=0.05), params={"use_missing": False}),
    "categorical": dict(data=dict(cat=True), params={"categorical_feature": [0]}),
}


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("depth", [2, 4, -1])
def test_small_lightgbm_equals_brute_force(name, depth, monkeypatch):
    spec = SMALL[name]
    X, y = _data(depth + 10, **spec["data"])
    params = {k: v for k, v in spec["params"].items() if k != "categorical_feature"}
    ds = lightgbm.Dataset(
        X, y, categorical_feature=spec["params"].get("categorical_feature", "auto")
    )
    booster = lightgbm.train(
        {"num_leaves": 8, "max_depth": depth, "min_data_in_leaf": 5, "verbose": -1, **params},
        ds,
        num_boost_round=8,
    )
    ens = tree_ensemble(booster)
    rows = X[:12].copy()
    rows[::3, 1] = 0.0  # exact zeros: LightGBM's zero_as_missing sends them as NaN
    rows[1::3, 2] = -0.0
    np.testing.assert_allclose(
        predict_reference(ens, rows)[:, 0],
        booster.predict(rows, raw_score=True),
        rtol=0,
        atol=1e-12,
    )
    ref, ref_base = brute_force_path_dependent(ens, rows)
    contrib = booster.predict(rows, pred_contrib=True)
    # the subset kernel too: its vectorized split decisions follow every missing-value
    # rule (NaN as zero, NaN default, zero-and-NaN default) and categorical splits
    for kernel in (path_dependent_shap, linear_path_dependent_shap, subset_path_dependent):
        phi, base = kernel(ens, rows)
        assert np.max(np.abs(phi - ref)) <= 1e-10
        assert np.max(np.abs(base - ref_base)) <= 1e-10
        assert np.all(phi[:, -1] == 0.0)  # the dummy feature
        assert np.max(np.abs(phi[:, :, 0] - contrib[:, :-1])) <= 1e-10
    _leaf_tables(monkeypatch)  # the many-rows route: leaf tables, blocks of 5 rows
    phi, base = linear_path_dependent_shap(ens, rows)
    assert np.max(np.abs(phi - ref)) <= 1e-10
    assert np.max(np.abs(base - ref_base)) <= 1e-10


def _leaf_tables(monkeypatch, block: int = 5) -> None:
    """Every path-dependent call takes the leaf tables and row blocks of ``block`` rows."""
    from shapgov.explainers.kernels import leaf_tables, linear_treeshap

    monkeypatch.setattr(linear_treeshap, "TABLE_MIN_ROWS", 0)
    monkeypatch.setattr(leaf_tables, "TABLE_WORK_FACTOR", np.inf)
    monkeypatch.setattr(linear_treeshap, "BLOCK_ROWS", block)


def test_path_dependent_leaf_tables_with_players_and_multi_output_leaves(monkeypatch):
    """The many-rows route with grouped players (and a constant column) and with
    multi-output leaves against brute force; a leaf too wide for a table sends the call
    to the linear walk, with the same values."""
    from oracles import brute_force_group_path_dependent
    from sklearn.ensemble import ExtraTreesClassifier

    from shapgov.explainers.kernels import background_treeshap

    X, y = _data(21, nan=0.05, cat=True)
    ds = lightgbm.Dataset(X, y, categorical_feature=[0])
    params = {"num_leaves": 20, "min_data_in_leaf": 3, "verbose": -1}
    ens = tree_ensemble(lightgbm.train(params, ds, num_boost_round=6))
    rows = X[:9]
    _leaf_tables(monkeypatch, block=4)
    players = np.array([0, 1, 1, 2, 0, -1])
    grouped, _ = linear_path_dependent_shap(ens, rows, players=players)
    ref = brute_force_group_path_dependent(ens, rows, [[0, 4], [1, 2], [3]])
    assert np.max(np.abs(grouped - ref)) <= 1e-10
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    forest = ExtraTreesClassifier(n_estimators=4, max_depth=6, random_state=0)
    fens = tree_ensemble(forest.fit(np.nan_to_num(X), labels))
    phi, base = linear_path_dependent_shap(fens, np.nan_to_num(rows))
    fref, fbase = brute_force_path_dependent(fens, np.nan_to_num(rows))
    assert phi.shape == (9, 6, 3)
    assert np.max(np.abs(phi - fref)) <= 1e-10 and np.max(np.abs(base - fbase)) <= 1e-10
    monkeypatch.setattr(background_treeshap, "DENSE_MAX_FEATURES", 1)  # no table fits
    walked, _ = linear_path_dependent_shap(fens, np.nan_to_num(rows))
    assert np.max(np.abs(walked - fref)) <= 1e-10


def test_large_lightgbm_matches_pred_contrib():
    X, y = _data(0, n=5000, m=20, nan=0.02)
    model = lightgbm.LGBMRegressor(n_estimators=100, num_leaves=63, verbose=-1).fit(X, y)
    contrib = model.predict(X[:1000], pred_contrib=True)
    scale = np.abs(contrib[:, :-1]).max()
    for kernel in (path_dependent_shap, linear_path_dependent_shap):
        phi, base = kernel(tree_ensemble(model), X[:1000])
        assert np.max(np.abs(phi[:, :, 0] - contrib[:, :-1])) <= 1e-9 * scale
        np.testing.assert_allclose(base, contrib[0, -1], atol=1e-9 * scale)


def test_path_dependent_blocks_give_the_same_values(monkeypatch):
    """Rows are walked in blocks (a short last block, padded; fewer rows per block when a
    tree's scratch would be too large): every block size gives the same values."""
    from shapgov.explainers.kernels import linear_treeshap

    X, y = _data(4, n=2000, m=8, nan=0.05)
    model = RandomForestRegressor(n_estimators=3, max_depth=12, random_state=0).fit(X, y)
    ens, rows = tree_ensemble(model), X[:131]  # 2 full blocks of 64, then 3 rows
    ref, _ = path_dependent_shap(ens, rows)
    sizes, block_rows = [], linear_treeshap._block_rows
    monkeypatch.setattr(
        linear_treeshap, "_block_rows", lambda *a: sizes.append(block_rows(*a)) or sizes[-1]
    )
    for scratch in (64 << 20, 2_000_000, 1):  # 64, a few, then 1 row per block
        monkeypatch.setattr(linear_treeshap, "_SCRATCH_BYTES", scratch)
        phi, _ = linear_path_dependent_shap(ens, rows)
        assert np.max(np.abs(phi - ref)) <= 1e-12 * np.abs(ref).max()
    assert sizes[0] == 64 and 1 < sizes[1] < 64 and sizes[2] == 1, sizes


def test_multiclass_lightgbm_per_class_values():
    X, y = _data(3, n=900)
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    model = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1).fit(X, labels)
    e = shapgov.explain(model, X[:50])
    assert e.values.shape == (50, 6, 3) and e.link.name == "softmax"
    contrib = model.predict(X[:50], pred_contrib=True).reshape(50, 3, 7)
    np.testing.assert_allclose(e.values, np.transpose(contrib[:, :, :6], (0, 2, 1)), atol=1e-10)


def test_sklearn_models_agree_with_shap():
    Xd, yd = load_diabetes(return_X_y=True)
    Xb, yb = load_breast_cancer(return_X_y=True)
    for model, X, y in [
        (RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0), Xd, yd),
        (GradientBoostingClassifier(n_estimators=20, random_state=0), Xb, yb),
    ]:
        model.fit(X, y)
        phi, base = linear_path_dependent_shap(tree_ensemble(model), X[:100])
        theirs = shap.TreeExplainer(model)
        np.testing.assert_allclose(phi[:, :, 0], theirs.shap_values(X[:100]), atol=1e-9)
        np.testing.assert_allclose(base, np.ravel(theirs.expected_value), atol=1e-9)


def test_tree_vertex_inside_a_blender_is_additive():
    from sklearn.ensemble import VotingRegressor
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    vote = VotingRegressor(
        [("lgbm", lightgbm.LGBMRegressor(n_estimators=30, verbose=-1)), ("ridge", Ridge())]
    ).fit(X, y)
    e = shapgov.explain(vote, X.iloc[:40], background=X)
    assert e.explainers == {"votingregressor/lgbm": "tree", "votingregressor/ridge": "linear"}
    np.testing.assert_allclose(e.explained_output[:, 0], vote.predict(X.iloc[:40]), atol=1e-9)


def test_bad_input_to_the_tree_explainer():
    X, y = _data(1)
    model = lightgbm.LGBMRegressor(n_estimators=3, verbose=-1).fit(X, y)
    with pytest.raises(InputError, match="takes 6 columns"):
        path_dependent_shap(tree_ensemble(model), X[:, :5])
    linear = lightgbm.LGBMRegressor(n_estimators=3, linear_tree=True, verbose=-1).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="linear_tree"):
        shapgov.explain(linear, X[:5])
    frame = pd.DataFrame(X)
    gbc = GradientBoostingClassifier(n_estimators=3).fit(frame, y > 0)
    bad = frame.iloc[:5].copy()
    bad.iloc[0, 1] = np.nan
    from shapgov.errors import MissingValueError

    with pytest.raises(MissingValueError):
        shapgov.explain(gbc, bad, background=frame)


def test_linear_kernel_on_multi_output_and_deep_trees():
    """Forest classifiers carry K values per leaf; unlimited depth repeats features."""
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.tree import DecisionTreeRegressor

    X, y = _data(7, n=400, m=5)
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    for model in (
        ExtraTreesClassifier(n_estimators=5, random_state=0).fit(X, labels),
        DecisionTreeRegressor(random_state=0).fit(X, y),  # unlimited depth
    ):
        ens = tree_ensemble(model)
        a, base_a = linear_path_dependent_shap(ens, X[:30])
        b, base_b = path_dependent_shap(ens, X[:30])
        scale = np.abs(b).max()
        assert np.max(np.abs(a - b)) <= 1e-10 * max(scale, 1.0)
        np.testing.assert_allclose(base_a, base_b, atol=1e-12)
    assert ens.max_depth > 12


@pytest.mark.parametrize("name", sorted(SMALL))
def test_interventional_equals_brute_force_through_predict(name):
    spec = SMALL[name]
    X, y = _data(5, **spec["data"])
    params = {k: v for k, v in spec["params"].items() if k != "categorical_feature"}
    cats = spec["params"].get("categorical_feature", "auto")
    booster = lightgbm.train(
        {"num_leaves": 10, "min_data_in_leaf": 5, "verbose": -1, **params},
        lightgbm.Dataset(X, y, categorical_feature=cats),
        num_boost_round=10,
    )
    rows, bg = X[:6], X[200:225]
    phi, base = interventional_shap(tree_ensemble(booster), rows, bg)
    cols = [f"f{j}" for j in range(X.shape[1])]
    ref, ref_base = brute_force_shapley(
        lambda d: booster.predict(d.to_numpy(float), raw_score=True),
        pd.DataFrame(rows, columns=cols),
        pd.DataFrame(bg, columns=cols),
    )
    assert np.max(np.abs(phi - ref)) <= 1e-10
    assert np.max(np.abs(base - ref_base)) <= 1e-10
    assert np.all(phi[:, -1] == 0.0)


def test_interventional_blender_equals_brute_force_on_its_predict():
    from sklearn.ensemble import VotingRegressor
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6]
    vote = VotingRegressor(
        [
            ("lgbm", lightgbm.LGBMRegressor(n_estimators=20, num_leaves=8, verbose=-1)),
            ("forest", RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0)),
            ("ridge", Ridge()),
        ]
    ).fit(X, y)
    rows, bg = X.iloc[:5], X.iloc[::30]
    e = shapgov.explain(vote, rows, background=bg)  # default options: one interventional game
    assert e.feature_perturbation == "interventional"
    ref, base = brute_force_shapley(vote.predict, rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


def test_interventional_agrees_with_shap():
    X, y = _data(11, n=800)
    model = lightgbm.LGBMRegressor(n_estimators=30, num_leaves=15, verbose=-1).fit(X, y)
    rows, bg = X[:40], X[400:500]
    phi, base = interventional_shap(tree_ensemble(model), rows, bg)
    theirs = shap.TreeExplainer(model, data=bg, feature_perturbation="interventional")
    # shap keeps its data in float32, so it agrees to single precision only
    np.testing.assert_allclose(phi[:, :, 0], theirs.shap_values(rows), atol=1e-6)
    np.testing.assert_allclose(base, np.ravel(theirs.expected_value), atol=1e-6)


def test_hist_gradient_boosting_with_nan_and_log_link():
    from sklearn.ensemble import HistGradientBoostingRegressor

    X, y = _data(13, n=1500, nan=0.08)
    model = HistGradientBoostingRegressor(loss="poisson", max_iter=15, max_leaf_nodes=8)
    model.fit(X, np.exp(y / 4))
    ens = tree_ensemble(model)
    rows = X[:8]
    np.testing.assert_allclose(
        predict_reference(ens, rows)[:, 0], model._raw_predict(rows)[:, 0], atol=1e-12
    )
    ref, ref_base = brute_force_path_dependent(ens, rows)
    phi, _ = linear_path_dependent_shap(ens, rows)
    assert np.max(np.abs(phi - ref)) <= 1e-10
    e = shapgov.explain(model, rows)  # a pure tree without background: path-dependent
    assert e.link.name == "log" and e.feature_perturbation == "tree_path_dependent"
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - ref_base)) <= 1e-10


def test_hist_gradient_boosting_with_categories_routes_like_sklearn():
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(14)
    X = rng.normal(size=(2000, 5))
    X[:, 1] = rng.integers(0, 12, 2000)
    X[:, 3] = rng.integers(0, 5, 2000)
    X[rng.random(X.shape) < 0.08] = np.nan
    y = np.nan_to_num(X[:, 1] % 4) + np.nan_to_num(X[:, 0]) + 2 * (X[:, 3] == 2)
    model = HistGradientBoostingRegressor(
        max_iter=20, categorical_features=[1, 3], max_leaf_nodes=12
    ).fit(X, y)
    ens = tree_ensemble(model)
    assert (ens.cat_end > ens.cat_start).sum() > 10
    rows = X[:300].copy()
    rows[:20, 1] = 15.0  # a category never seen in training: the missing-value way
    rows[20:30, 3] = -1.0  # a negative code: the missing-value way
    Z = model._preprocessor.transform(rows)
    np.testing.assert_array_equal(predict_reference(ens, Z)[:, 0], model._raw_predict(rows)[:, 0])
    ref, _ = brute_force_path_dependent(ens, Z[:8])
    phi, _ = linear_path_dependent_shap(ens, Z[:8])
    assert np.max(np.abs(phi - ref)) <= 1e-10


def test_hist_gradient_boosting_with_string_categories_equals_brute_force():
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = _data(15, n=1500, nan=0.05)
    frame = pd.DataFrame(X[:, :5], columns=list("abcde"))
    codes = np.random.default_rng(15).integers(0, 6, len(frame))
    frame["b"] = pd.Categorical(np.array(["red", "green", "blue", "amber", "grey", "teal"])[codes])
    target = (y + (codes % 3) > 1).astype(int)
    model = HistGradientBoostingClassifier(
        max_iter=10, max_leaf_nodes=6, categorical_features="from_dtype", random_state=0
    ).fit(frame, target)
    rows, bg = frame.iloc[:6], frame.iloc[100:130]
    e = shapgov.explain(model, rows, background=bg)
    ref, base = brute_force_shapley(model.decision_function, rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


def test_lightgbm_init_score_is_explained_as_an_offset():
    """A model boosted from a per-row init_score (log exposure) predicts without it; the
    init score returns at explain time as ``offset=`` and leaves the values unchanged."""
    X, _ = load_diabetes(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(16)
    exposure = rng.uniform(0.5, 3.0, len(X))
    counts = rng.poisson(exposure * np.exp(2 * X["bmi"] + X["s5"]).to_numpy())
    booster = lightgbm.train(
        {"objective": "poisson", "num_leaves": 8, "verbose": -1},
        lightgbm.Dataset(X, counts, init_score=np.log(exposure)),
        num_boost_round=30,
    )
    rows, offset = X.iloc[:40], np.log(exposure[:40])
    e = shapgov.explain(booster, rows, offset=offset)  # path-dependent: LightGBM's own game
    plain = shapgov.explain(booster, rows)
    assert np.array_equal(e.values, plain.values)
    contrib = booster.predict(rows, pred_contrib=True)
    assert np.max(np.abs(e.values - contrib[:, :-1])) <= 1e-10
    assert e.additivity.applied["offset"] is True
    bg = shapgov.explain(booster, rows, background=X.iloc[::20], offset=offset)
    plain_bg = shapgov.explain(booster, rows, background=X.iloc[::20])
    assert bg.feature_perturbation == "interventional"
    assert np.array_equal(bg.values, plain_bg.values)
    # DataRobot's rule rebuilds the full expected count: exp(base + sum(phi) + offset)
    full = np.exp(booster.predict(rows, raw_score=True) + offset)
    np.testing.assert_allclose(np.exp(e.explained_output[:, 0] + offset), full, rtol=1e-12)
