"""XGBoost plugin: the JSON parser against XGBoost's own routing, margins and pred_contribs.

XGBoost predicts in float32, so its margins and SHAP values agree with ours only to float32
rounding; exactness is shown where it can be: the leaf every row reaches in every tree
(``pred_leaf``) is identical, and our values equal brute-force Shapley over the parsed trees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from naive import goes_left, predict_reference
from oracles import brute_force_path_dependent, brute_force_shapley

import shapgov
from shapgov.errors import UnsupportedModelError
from shapgov.explainers.kernels.interventional_treeshap import interventional_shap
from shapgov.explainers.kernels.linear_treeshap import linear_path_dependent_shap
from shapgov_plugins.tree import tree_ensemble

F32 = float(np.finfo(np.float32).eps)


def _frame(seed: int = 0, n: int = 1500) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Five columns: a categorical one (codes 0..7), NaN everywhere, a dummy last column."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 0] = rng.integers(0, 8, n)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 4] = 1.0
    y = np.nan_to_num(X[:, 0] % 3) + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2])
    y = y + rng.normal(scale=0.1, size=n)
    df = pd.DataFrame(X, columns=list("abcde"))
    df["a"] = pd.Categorical(df["a"].astype("Int64"), categories=list(range(8)))
    return df, X, y


MODELS = {
    "regression": lambda: (xgb.XGBRegressor(n_estimators=25, max_depth=4), lambda y: y),
    "binary": lambda: (xgb.XGBClassifier(n_estimators=25, max_depth=4), lambda y: y > 1),
    "binary-base-score": lambda: (
        xgb.XGBClassifier(n_estimators=10, max_depth=3, base_score=0.3),
        lambda y: y > 1,
    ),
    "poisson": lambda: (
        xgb.XGBRegressor(n_estimators=25, max_depth=4, objective="count:poisson"),
        lambda y: np.exp(y / 3),
    ),
    "multiclass": lambda: (
        xgb.XGBClassifier(n_estimators=10, max_depth=3, max_cat_to_onehot=1),
        lambda y: np.digitize(y, [0.5, 1.5]),
    ),
    "onehot-categories": lambda: (
        xgb.XGBRegressor(n_estimators=10, max_depth=3, max_cat_to_onehot=16),
        lambda y: y,
    ),
    "random-forest": lambda: (xgb.XGBRFRegressor(n_estimators=6, max_depth=4), lambda y: y),
    # dart: every tree scaled by its weight_drop at prediction
    "dart": lambda: (
        xgb.XGBRegressor(n_estimators=15, max_depth=3, booster="dart", rate_drop=0.3),
        lambda y: y,
    ),
}


def _fit(name: str, seed: int = 0):
    df, X, y = _frame(seed)
    model, target = MODELS[name]()
    model.set_params(enable_categorical=True, tree_method="hist")
    model.fit(df, target(y))
    return model, df, X


def _leaves(ens, X: np.ndarray) -> np.ndarray:
    """Leaf reached in every tree (index within the tree), by the reference router."""
    X = ens.check_input(X)
    out = np.empty((X.shape[0], ens.n_trees), dtype=np.int64)
    for r, x in enumerate(X):
        for t, root in enumerate(ens.roots):
            i = int(root)
            while ens.left[i] >= 0:
                i = int(ens.left[i] if goes_left(ens, i, x[ens.feature[i]]) else ens.right[i])
            out[r, t] = i - root
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parsed_trees_route_every_row_like_xgboost(name):
    model, df, X = _fit(name)
    ens = tree_ensemble(model)
    dm = xgb.DMatrix(df, enable_categorical=True)
    theirs = model.get_booster().predict(dm, pred_leaf=True).reshape(len(X), -1)
    assert np.array_equal(_leaves(ens, X[:400]), theirs[:400])
    if name != "random-forest":  # forests have no categorical splits here
        assert (ens.cat_end > ens.cat_start).any() or name == "onehot-categories"
    margin = model.get_booster().predict(dm, output_margin=True).reshape(len(X), -1)
    ours = predict_reference(ens, X)
    # float32 accumulation over the trees on XGBoost's side
    assert np.max(np.abs(ours - margin)) <= 4 * F32 * ens.n_trees * np.abs(margin).max()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_values_match_xgboost_pred_contribs(name):
    model, df, X = _fit(name)
    ens = tree_ensemble(model)
    phi, base = linear_path_dependent_shap(ens, X)
    dm = xgb.DMatrix(df, enable_categorical=True)
    contrib = model.get_booster().predict(dm, pred_contribs=True)
    contrib = contrib.reshape(len(X), ens.n_outputs, X.shape[1] + 1)
    scale = np.abs(contrib).max()
    assert np.max(np.abs(np.transpose(phi, (0, 2, 1)) - contrib[:, :, :-1])) <= 1e-5 * scale
    assert np.max(np.abs(base - contrib[0, :, -1])) <= 1e-5 * scale
    assert np.all(phi[:, 4] == 0.0)  # the constant column is never split on


@pytest.mark.parametrize("name", ["binary", "multiclass", "poisson", "dart"])
def test_small_models_equal_brute_force(name):
    model, _df, X = _fit(name, seed=3)
    ens = tree_ensemble(model)
    rows = X[:12]
    phi, base = linear_path_dependent_shap(ens, rows)
    ref, ref_base = brute_force_path_dependent(ens, rows)
    assert np.max(np.abs(phi - ref)) <= 1e-10
    assert np.max(np.abs(base - ref_base)) <= 1e-10
    bg = X[100:120]
    phi_i, base_i = interventional_shap(ens, rows, bg)
    ref_i, ref_base_i = brute_force_shapley(
        lambda d: predict_reference(ens, d.to_numpy(dtype=float)),
        pd.DataFrame(rows),
        pd.DataFrame(bg),
    )
    assert np.max(np.abs(phi_i - ref_i)) <= 1e-10
    assert np.max(np.abs(base_i - ref_base_i)) <= 1e-10


def test_explain_end_to_end_with_links_and_float32_outputs():
    model, df, _ = _fit("poisson")
    e = shapgov.explain(model, df.iloc[:100], background=df.iloc[500:700])
    assert e.link.name == "log"
    assert e.additivity.applied["model_output_dtype"] == "float32"
    assert e.additivity.max_normalized_mismatch <= 64 * F32
    clf, df, _X = _fit("multiclass")
    e = shapgov.explain(clf, df.iloc[:50], background=df.iloc[500:600])
    assert e.values.shape == (50, 5, 3)
    margin = clf.predict(df.iloc[:50], output_margin=True)
    assert np.max(np.abs(e.explained_output - margin)) <= 64 * F32 * np.abs(margin).max()


def test_early_stopping_explains_the_best_iteration():
    df, _X, y = _frame(5)
    model = xgb.XGBRegressor(
        n_estimators=400,
        learning_rate=0.3,
        early_stopping_rounds=3,
        enable_categorical=True,
        tree_method="hist",
    )
    model.fit(df.iloc[:1000], y[:1000], eval_set=[(df.iloc[1000:], y[1000:])], verbose=False)
    assert model.best_iteration + 1 < model.get_booster().num_boosted_rounds()
    ens = tree_ensemble(model)
    assert ens.n_trees == model.best_iteration + 1
    e = shapgov.explain(model, df.iloc[:50], background=df.iloc[1000:1100])
    margin = model.predict(df.iloc[:50], output_margin=True)
    assert np.max(np.abs(e.explained_output[:, 0] - margin)) <= 64 * F32 * np.abs(margin).max()


def test_unsupported_xgboost_models_are_refused_with_advice():
    _df, X, y = _frame(1, n=300)
    model = xgb.XGBRegressor(n_estimators=3, booster="gblinear").fit(X, y)
    with pytest.raises(UnsupportedModelError, match="gblinear"):
        tree_ensemble(model)
    booster = xgb.XGBRegressor(n_estimators=3).fit(X, y).get_booster()
    assert tree_ensemble(booster).n_trees == 3
    with pytest.raises(UnsupportedModelError, match="scikit-learn wrapper"):
        shapgov.explain(booster, X[:5])


def test_stored_categories_recode_text_labels_as_xgboost_would():
    """``shapgov_stored_categories`` for XGBoost >= 3.1: the categories stored at fit, by
    column; a table with the labels as text (a CSV) recoded to them explains as the typed
    table does."""
    from credit import HOME, PURPOSE, credit_table

    from shapgov.decomposition.encoding import as_stored_categories
    from shapgov.registry import PluginCalls, resolve_plugin_manager

    X, y = credit_table(500)
    model = xgb.XGBClassifier(n_estimators=5, enable_categorical=True, tree_method="hist")
    model.fit(X, y)
    plugins = PluginCalls(resolve_plugin_manager(None))
    stored = plugins.first("shapgov_stored_categories", model=model, plugins=plugins)
    if not hasattr(model.get_booster(), "get_categories"):  # XGBoost < 3.1 stores none
        assert stored is None
        return
    assert stored == {"home_ownership": HOME, "purpose": PURPOSE}
    text = X.iloc[:20].astype({"home_ownership": object, "purpose": object})
    recoded = shapgov.explain(model, as_stored_categories(text, stored), background=X.iloc[100:150])
    typed = shapgov.explain(model, X.iloc[:20], background=X.iloc[100:150])
    np.testing.assert_array_equal(recoded.values, typed.values)
