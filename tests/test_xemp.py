"""XEMP-style exemplar explanations: closed forms, symbols, groups, shapes, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from shapgov.analyses.exemplars import cut_points, exemplars, symbols, xemp
from shapgov.errors import InputError


def _discrete(n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.integers(0, 10, n).astype(float),
            "b": rng.integers(0, 5, n).astype(float),
            "c": rng.integers(0, 3, n).astype(float),
        }
    )
    y = 2 * X["a"] - 3 * X["b"] + 0.1 * X["c"]
    return X, y


def test_linear_strength_is_coefficient_times_deviation_from_the_mean():
    X, y = _discrete()
    model = LinearRegression().fit(X, y)
    result = xemp(model, X.iloc[:30], training=X)
    expected = (X.iloc[:30] - X.mean()).to_numpy() * model.coef_
    assert np.max(np.abs(result.strengths[:, :, 0] - expected)) <= 1e-9
    frame = result.to_frame()
    assert set(frame.columns) >= {"row", "feature", "strength", "q", "symbol"}
    assert len(frame) == 30 * 3


def test_additive_model_strength_is_its_centered_shape_function():
    X, _ = _discrete(seed=1)

    class Additive:
        def predict(self, d):
            d = np.asarray(d, dtype=float)
            return np.sin(d[:, 0]) + d[:, 1] ** 2 + 0.0 * d[:, 2]

    from shapgov.opaque import PredictFunction

    f = PredictFunction(Additive().predict)
    result = xemp(f, X.iloc[:25], training=X)
    shape_a = np.sin(X["a"])
    expected_a = np.sin(X["a"].iloc[:25]) - shape_a.mean()
    expected_b = X["b"].iloc[:25] ** 2 - (X["b"] ** 2).mean()
    np.testing.assert_allclose(result.strengths[:, 0, 0], expected_a, atol=1e-10)
    np.testing.assert_allclose(result.strengths[:, 1, 0], expected_b, atol=1e-10)
    assert np.all(result.strengths[:, 2, 0] == 0.0)  # a dummy feature


def test_symbols_follow_the_published_two_feature_cut_points():
    assert cut_points(2) == {"strong": 0.75, "medium": 0.25, "trivial": 0.001}
    q = np.array([-0.8, -0.75, -0.3, -0.25, -0.001, 0.0005, 0.001, 0.25, 0.26, 0.75, 0.76])
    got = symbols(q, 2).tolist()
    assert got == ["---", "--", "--", "-", "-", "trivial", "+", "+", "++", "++", "+++"]
    assert cut_points(10)["strong"] == pytest.approx(0.15)
    assert cut_points(50) == cut_points(10) and cut_points(1) == cut_points(2)


def test_exemplars_bins_and_missing_values():
    col = pd.DataFrame({"x": np.r_[np.arange(100.0), [np.nan] * 25]})
    values, weights = exemplars(col, 4)
    assert len(values) == 5 and np.isnan(values["x"].iloc[-1])
    np.testing.assert_allclose(weights, [0.2, 0.2, 0.2, 0.2, 0.2])
    cats = pd.DataFrame({"s": ["x"] * 6 + ["y"] * 3 + ["z"]})
    values, weights = exemplars(cats, 20)
    assert values["s"].tolist() == ["x", "y", "z"]
    np.testing.assert_allclose(weights, [0.6, 0.3, 0.1])


def test_groups_multiclass_and_feature_budget():
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    pair = {"sepal": ["sepal length (cm)", "sepal width (cm)"]}
    result = xemp(clf, X.iloc[::30], training=X, groups=pair)
    assert result.strengths.shape == (5, 3, 3)
    assert result.features[0] == "sepal" and result.classes == [0, 1, 2]
    with pytest.raises(InputError, match="max_features"):
        xemp(clf, X.iloc[:3], training=X, max_features=2)
    from shapgov.analyses.impact import feature_impact

    impact = feature_impact(clf, X, sample=50)
    top = xemp(clf, X.iloc[:3], training=X, max_features=2, impact=impact)
    assert top.evaluated == impact.frame["feature"].tolist()[:2]
    assert np.isnan(
        top.strengths[:, [top.features.index(f) for f in top.features if f not in top.evaluated]]
    ).all()


def test_bad_input_to_xemp():
    X, y = _discrete(100)
    model = LinearRegression().fit(X, y)
    with pytest.raises(InputError, match="no rows"):
        xemp(model, X.iloc[:0], training=X)
    with pytest.raises(InputError, match="training has no rows"):
        xemp(model, X.iloc[:3], training=X.iloc[:0])
    with pytest.raises(InputError, match="n_exemplars"):
        xemp(model, X.iloc[:3], training=X, n_exemplars=0)
