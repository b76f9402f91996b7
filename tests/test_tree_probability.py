"""Tree vertices explained in probability space: exact interventional Shapley values.

The oracle is brute force over all coalitions through the model's own ``predict_proba``;
the coalition-margin kernel is also checked against a plain-numpy reference.
"""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
import shap
from naive import predict_reference
from oracles import brute_force_shapley
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shapgov
from shapgov.errors import ExactBudgetError, InputError
from shapgov.explainers.kernels.interventional_treeshap import coalition_margins
from shapgov_plugins.tree import tree_ensemble


def _cancer(columns: int = 6) -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:, :columns], y


def _iris() -> tuple[pd.DataFrame, pd.Series]:
    return load_iris(return_X_y=True, as_frame=True)


def naive_coalition_margins(ens, X, background, player, n_players):
    """Plain-numpy reference: build every hybrid row and predict it."""
    out = np.empty((len(X), len(background), 1 << n_players, ens.n_outputs))
    for s in range(1 << n_players):
        take = np.array([p >= 0 and (s >> p) & 1 == 1 for p in player]) | (player < 0)
        for i, x in enumerate(X):
            hybrid = np.where(take, x, background)
            out[i, :, s] = predict_reference(ens, hybrid)
    return out


def test_coalition_margins_kernel_matches_the_numpy_reference():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 5))
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 3] = rng.integers(0, 5, 400)
    y = np.nan_to_num(X[:, 0]) * np.nan_to_num(X[:, 1]) + X[:, 3] % 2
    booster = lightgbm.train(
        {"num_leaves": 8, "min_data_in_leaf": 5, "verbose": -1},
        lightgbm.Dataset(X, y, categorical_feature=[3]),
        num_boost_round=8,
    )
    ens = tree_ensemble(booster)
    player = np.array([0, 1, 1, 2, -1])  # columns 1 and 2 move together; 4 stays
    X[:, 4] = 0.5
    ours = coalition_margins(ens, X[:4], X[100:110], player, 3)
    ref = naive_coalition_margins(ens, X[:4], X[100:110], player, 3)
    assert np.max(np.abs(ours - ref)) <= 1e-12


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_probability_output_equals_brute_force(task):
    X, y = _cancer() if task == "binary" else _iris()
    model = lightgbm.LGBMClassifier(n_estimators=25, num_leaves=8, verbose=-1).fit(X, y)
    rows, bg = X.iloc[::57], X.iloc[::23]
    e = shapgov.explain(model, rows, background=bg, output="probability")
    proba = (lambda d: model.predict_proba(d)[:, 1]) if task == "binary" else model.predict_proba
    ref, base = brute_force_shapley(proba, rows, bg)
    values = e.values if e.values.ndim == 3 else e.values[:, :, None]
    assert e.output_space == "probability"
    assert np.max(np.abs(values - ref)) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


def test_probability_values_are_not_shaps_rescaled_approximation():
    """shap's interventional probability output rescales margin values per background row;
    it is additive but not the Shapley value of the probability game. Ours is."""
    X, y = _cancer()
    model = lightgbm.LGBMClassifier(n_estimators=25, num_leaves=8, verbose=-1).fit(X, y)
    rows, bg = X.iloc[:20], X.iloc[::40]
    ref, _ = brute_force_shapley(lambda d: model.predict_proba(d)[:, 1], rows, bg)
    ours = shapgov.explain(model, rows, background=bg, output="probability").values
    theirs = shap.TreeExplainer(
        model, bg, model_output="probability", feature_perturbation="interventional"
    ).shap_values(rows)
    assert np.max(np.abs(ours - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(theirs - ref[:, :, 0])) > 1e-3
    # both are additive in probability space
    np.testing.assert_allclose(ours.sum(1), theirs.sum(1), atol=1e-6)


def test_soft_voting_with_boosted_trees_is_exact():
    X, y = _cancer(5)
    vote = VotingClassifier(
        [
            ("lgbm", lightgbm.LGBMClassifier(n_estimators=20, num_leaves=6, verbose=-1)),
            ("forest", RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0)),
            ("logit", make_pipeline(StandardScaler(), LogisticRegression())),
        ],
        voting="soft",
        weights=[2, 1, 1],
    ).fit(X, y)
    rows, bg = X.iloc[::71], X.iloc[::29]
    # default options: with a background every vertex plays the interventional game
    e = shapgov.explain(vote, rows, background=bg)
    ref, base = brute_force_shapley(lambda d: vote.predict_proba(d)[:, 1], rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    lgbm = next(p for p in e.vertices if p.name.endswith("lgbm"))
    assert lgbm.explainer == "tree" and lgbm.response is not None


def test_probability_output_refusals():
    X, y = _cancer()
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    rows = X.iloc[:5]
    with pytest.raises(InputError, match="tree_path_dependent"):
        shapgov.explain(
            model, rows, output="probability", feature_perturbation="tree_path_dependent"
        )
    with pytest.raises(InputError, match="feature_perturbation="):
        shapgov.explain(
            model,
            rows,
            background=X,
            output="probability",
            explainer_options={"tree": {"algorithm": "path_dependent"}},
        )
    with pytest.raises(ExactBudgetError, match="max_exact_players"):
        shapgov.explain(
            model,
            rows,
            background=X,
            output="probability",
            explainer_options={"tree": {"max_exact_players": 4}},
        )
    with pytest.raises(InputError, match="offset"):
        shapgov.explain(model, rows, background=X, output="probability", offset=0.1)
    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    reg = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(Xr, yr)
    with pytest.raises(InputError, match="classifier"):
        shapgov.explain(reg, Xr.iloc[:5], output="probability")
    with pytest.raises(InputError, match="output must be"):
        shapgov.explain(model, rows, output="proba")


def test_prediction_output_of_a_log_link_model():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5].assign(dummy=0.0)  # never split on: gets exactly 0
    model = lightgbm.LGBMRegressor(
        objective="poisson", n_estimators=20, num_leaves=8, verbose=-1
    ).fit(X, y)
    rows, bg = X.iloc[::90], X.iloc[::40]
    e = shapgov.explain(model, rows, background=bg, output="prediction")
    ref, _ = brute_force_shapley(model.predict, rows, bg)
    assert e.link.name == "identity"
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10 * np.abs(ref).max()
    assert np.all(e.values[:, -1] == 0.0)
