"""SHAP interaction values of tree vertices in both games: brute force, shap, invariants."""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest
import shap
from oracles import brute_force_interactions, brute_force_path_dependent_interactions
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestRegressor, VotingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import shapgov
from shapgov.errors import ExactBudgetError, InputError
from shapgov.explainers.kernels.treeshap import path_dependent_interactions
from shapgov_plugins.tree import tree_ensemble


def _small(seed: int, *, cat: bool):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(500, 5))
    X[rng.random(X.shape) < 0.1] = np.nan
    if cat:
        X[:, 0] = rng.integers(0, 5, 500)
    y = np.nan_to_num(X[:, 0]) * np.nan_to_num(X[:, 1]) + np.sin(np.nan_to_num(X[:, 2]))
    X[:, 4] = 0.0  # never split on
    params = {"num_leaves": 8, "min_data_in_leaf": 5, "verbose": -1}
    ds = lightgbm.Dataset(X, y, categorical_feature=[0] if cat else "auto")
    return lightgbm.train(params, ds, num_boost_round=6), X


@pytest.mark.parametrize("cat", [False, True])
def test_interactions_equal_the_definition_over_all_coalitions(cat):
    booster, X = _small(20 + cat, cat=cat)
    ens = tree_ensemble(booster)
    rows = X[:6]
    ours, _ = path_dependent_interactions(ens, rows)
    ref = brute_force_path_dependent_interactions(ens, rows)
    assert np.max(np.abs(ours - ref)) <= 1e-10
    # invariants: symmetric, rows sum to the SHAP values, the dummy feature is all zero
    assert np.max(np.abs(ours - np.swapaxes(ours, 1, 2))) <= 1e-12
    contrib = booster.predict(rows, pred_contrib=True)
    assert np.max(np.abs(ours.sum(axis=2)[:, :, 0] - contrib[:, :-1])) <= 1e-10
    assert np.all(ours[:, 4] == 0.0) and np.all(ours[:, :, 4] == 0.0)


def test_interactions_agree_with_shap_on_forests_and_multiclass_boosting():
    X, y = load_diabetes(return_X_y=True)
    forest = RandomForestRegressor(n_estimators=5, max_depth=5, random_state=0).fit(X, y)
    ours, _ = path_dependent_interactions(tree_ensemble(forest), X[:10])
    theirs = shap.TreeExplainer(forest).shap_interaction_values(X[:10])
    assert np.max(np.abs(ours[..., 0] - theirs)) <= 1e-9 * np.abs(theirs).max()
    Xi, yi = load_iris(return_X_y=True)
    model = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=6, verbose=-1).fit(Xi, yi)
    ours, _ = path_dependent_interactions(tree_ensemble(model), Xi[::15])
    theirs = np.asarray(shap.TreeExplainer(model).shap_interaction_values(Xi[::15]))
    theirs = theirs if theirs.shape[-1] == 3 else np.moveaxis(theirs, 0, -1)
    assert np.max(np.abs(ours - theirs)) <= 1e-9 * np.abs(theirs).max()


def test_explain_with_interactions_through_a_pipeline_and_a_blender():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6].copy()
    X["sex"] = np.where(X["sex"] > 0, "male", "female")
    encode = ColumnTransformer(
        [("sex", OneHotEncoder(), ["sex"])], remainder="passthrough", sparse_threshold=0
    )
    vote = VotingRegressor(
        [
            ("lgbm", make_pipeline(encode, lightgbm.LGBMRegressor(n_estimators=20, verbose=-1))),
            ("ridge", make_pipeline(encode, Ridge())),
        ]
    ).fit(X, y)
    e = shapgov.explain(vote, X.iloc[:30], background=X, interactions=True)
    inter = e.interaction_values
    assert inter.shape == (30, 6, 6)
    assert np.max(np.abs(inter.sum(axis=2) - e.values)) <= 1e-10
    assert np.max(np.abs(inter - np.swapaxes(inter, 1, 2))) <= 1e-10
    assert e[:5].interaction_values.shape == (5, 6, 6)
    # the one-hot pair of "sex" is one column: its within-group pairs sit on the diagonal
    assert np.abs(inter[:, 1, 1]).max() > 0


def test_interventional_interactions_equal_the_definition():
    """With a background every vertex plays the interventional game, interactions too:
    equal to the Shapley interaction index of that game, margin and prediction space."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5].assign(dummy=0.0)
    model = lightgbm.LGBMRegressor(
        objective="poisson", n_estimators=15, num_leaves=8, verbose=-1
    ).fit(X, y)
    rows, bg = X.iloc[:4], X.iloc[::40]
    for output, f in (
        ("margin", lambda d: model.predict(d, raw_score=True)),
        ("prediction", model.predict),
    ):
        e = shapgov.explain(model, rows, background=bg, interactions=True, output=output)
        assert e.feature_perturbation == "interventional"
        ref = brute_force_interactions(f, rows, bg)[..., 0]
        assert np.max(np.abs(e.interaction_values - ref)) <= 1e-10 * max(1.0, np.abs(ref).max())
        inter = e.interaction_values
        assert np.max(np.abs(inter - np.swapaxes(inter, 1, 2))) <= 1e-12
        assert np.max(np.abs(inter.sum(axis=2) - e.values)) <= 1e-10
        assert np.all(inter[:, 5] == 0.0) and np.all(inter[:, :, 5] == 0.0)  # the dummy


def test_interactions_are_refused_where_they_are_not_defined():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y)
    # in the margin any width is exact in linear time; a response of the margin goes
    # through the exact-coalition engine and its budget
    with pytest.raises(ExactBudgetError, match="max_exact_players"):
        shapgov.explain(
            model.set_params(objective="poisson").fit(X, y),
            X.iloc[:5],
            background=X.iloc[:20],
            interactions=True,
            output="prediction",
            explainer_options={"tree": {"max_exact_players": 8}},
        )
    with pytest.raises(InputError, match="tree_path_dependent"):
        shapgov.explain(
            model.set_params(objective="poisson").fit(X, y),
            X.iloc[:5],
            interactions=True,
            output="prediction",
            feature_perturbation="tree_path_dependent",
        )
