"""Linear explainer: brute force, shap's LinearExplainer, and the Shapley invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
from oracles import brute_force_shapley
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import VotingRegressor
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shapgov

REGRESSORS = [
    LinearRegression(),
    Ridge(alpha=2.0),
    Lasso(alpha=0.1),
    ElasticNet(alpha=0.05),
    SGDRegressor(random_state=0),
    TweedieRegressor(power=0),
]


@pytest.fixture(scope="module")
def diabetes_numeric():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:, :7], y


@pytest.mark.parametrize("est", REGRESSORS, ids=lambda e: type(e).__name__)
def test_linear_regressors_equal_brute_force(diabetes_numeric, est):
    X, y = diabetes_numeric
    model = est.fit(X, y)
    rows, bg = X.iloc[:6], X.iloc[50:80]
    e = shapgov.explain(model, rows, background=bg)
    ref, base = brute_force_shapley(model.predict, rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


def test_linear_values_are_coef_times_centered_x(diabetes_numeric):
    X, y = diabetes_numeric
    model = Ridge().fit(X, y)
    e = shapgov.explain(model, X, background=X)
    expected = (X.to_numpy() - X.to_numpy().mean(0)) * model.coef_
    np.testing.assert_allclose(e.values, expected, rtol=0, atol=1e-12)


def test_agrees_with_shap_linear_explainer(diabetes_numeric):
    X, y = diabetes_numeric
    for model in (Ridge().fit(X, y), LinearRegression().fit(X, y)):
        bg = X.iloc[:100]
        ours = shapgov.explain(model, X.iloc[:50], background=bg)
        theirs = shap.LinearExplainer(model, shap.maskers.Independent(bg, max_samples=100))
        sv = theirs(X.iloc[:50])
        np.testing.assert_allclose(ours.values, sv.values, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ours.base_values, sv.base_values, rtol=0, atol=1e-9)


def test_agrees_with_shap_on_logistic_margins():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = pd.DataFrame(StandardScaler().fit_transform(X), columns=X.columns)
    model = LogisticRegression(max_iter=5000).fit(X, y)
    bg = X.iloc[:100]
    ours = shapgov.explain(model, X.iloc[:40], background=bg)
    sv = shap.LinearExplainer(model, shap.maskers.Independent(bg, max_samples=100))(X.iloc[:40])
    np.testing.assert_allclose(ours.values, sv.values, rtol=0, atol=1e-9)
    assert ours.link.name == "logit" and ours.output_space == "margin"


def test_multinomial_values_per_class_equal_brute_force():
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=2000).fit(X, y)
    e = shapgov.explain(model, X.iloc[::30], background=X.iloc[::7])
    assert e.values.shape == (5, 4, 3)
    ref, _ = brute_force_shapley(model.decision_function, X.iloc[::30], X.iloc[::7])
    assert np.max(np.abs(e.values - ref)) <= 1e-10
    np.testing.assert_allclose(
        shapgov.explain(model, X).explained_output, model.decision_function(X), atol=1e-10
    )


def test_dummy_feature_gets_exactly_zero(diabetes):
    X, y = diabetes
    ct = ColumnTransformer(
        [("num", StandardScaler(), ["bmi", "bp"]), ("drop", "drop", ["s1"])], remainder="drop"
    )
    model = make_pipeline(ct, Ridge()).fit(X, y)
    e = shapgov.explain(model, X.iloc[:20], background=X.iloc[100:200])
    unused = [j for j, c in enumerate(e.feature_names) if c not in ("bmi", "bp")]
    assert np.all(e.values[:, unused] == 0.0)
    assert np.all(np.abs(e.values[:, e.feature_names.index("bmi")]) > 0)


def test_symmetric_features_get_equal_values():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    X["b"] = X["a"]  # identical columns ...
    model = LinearRegression().fit(X, X["a"] * 2 + X["c"])
    model.coef_ = np.array([1.5, 1.5, 1.0])  # ... with identical coefficients
    e = shapgov.explain(model, X.iloc[:30], background=X.iloc[100:])
    np.testing.assert_array_equal(e.values[:, 0], e.values[:, 1])


def test_linearity_across_vertices(diabetes_numeric):
    """Voting values are the weighted mean of the members' own explanations."""
    X, y = diabetes_numeric
    members = [("ridge", Ridge(alpha=3.0)), ("ols", LinearRegression())]
    vote = VotingRegressor(members, weights=[1, 3]).fit(X, y)
    bg, rows = X.iloc[:80], X.iloc[200:230]
    ev = shapgov.explain(vote, rows, background=bg)
    parts = [shapgov.explain(m, rows, background=bg) for m in vote.estimators_]
    combined = 0.25 * parts[0].values + 0.75 * parts[1].values
    np.testing.assert_allclose(ev.values, combined, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sum(p.values for p in ev.vertices)[:, :, 0], ev.values, atol=1e-12)


def test_one_hot_columns_sum_back_to_their_feature(diabetes):
    X, y = diabetes
    from cases import preprocess

    model = make_pipeline(preprocess(), Ridge()).fit(X, y)
    e = shapgov.explain(model, X.iloc[:10], background=X.iloc[::5])
    assert e.feature_names == list(X.columns)
    ridge = model[-1]
    onehot_coef = ridge.coef_[-2:]  # the two 'sex' columns come last from the transformer
    Z = model[0].transform(X.iloc[:10])[:, -2:]
    Zb = model[0].transform(X.iloc[::5])[:, -2:]
    expected = ((Z - Zb.mean(0)) * onehot_coef).sum(1)
    np.testing.assert_allclose(e.values[:, list(X.columns).index("sex")], expected, atol=1e-12)
    np.testing.assert_allclose(e.explained_output[:, 0], model.predict(X.iloc[:10]), atol=1e-9)
