"""Feature Impact (SHAP and permutation) and Prediction Explanations."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

import shapgov
from shapgov.analyses.impact import (
    compare_impacts,
    feature_impact,
    mark_redundant,
    permutation_impact,
    shap_impact,
)
from shapgov.analyses.prediction_explanations import as_records, prediction_explanations
from shapgov.errors import InputError


def _independent(n: int = 4000, seed: int = 0):
    """y = 3 a - 2 b + 0.5 c exactly, independent columns with different spreads; d unused."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(0, 1.0, n),
            "b": rng.normal(0, 2.0, n),
            "c": rng.uniform(-1, 1, n),
            "d": rng.normal(0, 1.0, n),
        }
    )
    y = 3 * X["a"] - 2 * X["b"] + 0.5 * X["c"]
    return X, y, LinearRegression().fit(X, y)


def test_shap_impact_is_mean_absolute_centered_contribution():
    X, _, model = _independent()
    impact = feature_impact(model, X, sample=1000, random_state=3)
    rows = X.iloc[np.sort(np.random.default_rng(3).choice(len(X), 1000, replace=False))]
    expected = (np.abs((rows - rows.mean()) * model.coef_)).mean()
    got = impact.frame.set_index("feature")["impact"]
    assert np.max(np.abs(got[expected.index] - expected)) <= 1e-10
    assert impact.frame["feature"].tolist()[:2] == ["b", "a"]
    assert impact.frame["normalized"].iloc[0] == 100.0
    assert impact.frame.set_index("feature").loc["d", "impact"] <= 1e-12
    again = feature_impact(model, X, sample=1000, random_state=3)
    assert again.frame.equals(impact.frame)
    assert impact.to_dict()["features"][0]["feature"] == "b"


def test_permutation_impact_matches_twice_the_variance_share():
    X, y, model = _independent()

    def mse(t, p):
        return float(np.mean((t - p[:, 0]) ** 2))

    impact = permutation_impact(model, X, y, metric=mse, sample=4000, n_repeats=8)
    got = impact.frame.set_index("feature")["impact"]
    # shuffling column j adds coef_j^2 * E[(x_j - x_j')^2] = 2 coef_j^2 Var(x_j)
    expected = 2 * model.coef_**2 * X.var(ddof=0).to_numpy()
    np.testing.assert_allclose(got[X.columns].to_numpy()[:3], expected[:3], rtol=0.08)
    assert abs(got["d"]) <= 1e-10
    same = permutation_impact(model, X, y, metric=mse, sample=4000, n_repeats=8)
    assert same.frame.equals(impact.frame)
    other = permutation_impact(model, X, y, metric=mse, sample=4000, n_repeats=8, random_state=1)
    assert not other.frame.equals(impact.frame)
    both = compare_impacts(feature_impact(model, X, sample=500), impact)
    assert both.attrs["spearman"] == pytest.approx(1.0)


def test_groups_are_shuffled_together_and_metrics_per_task():
    X, y, model = _independent(1000)
    grouped = permutation_impact(model, X, y, groups={"ab": ["a", "b"]}, n_repeats=2)
    assert set(grouped.frame["feature"]) == {"ab", "c", "d"}
    assert grouped.frame["feature"].iloc[0] == "ab"
    r2 = permutation_impact(model, X, y, metric="r2", n_repeats=2)
    assert r2.params["metric"] == "r2" and r2.frame["impact"].iloc[0] > 0
    Xi, yi = load_iris(return_X_y=True, as_frame=True)
    clf = LogisticRegression(max_iter=500).fit(Xi, yi)
    for metric in ("log_loss", "auc"):
        imp = permutation_impact(clf, Xi, yi, metric=metric, n_repeats=2)
        assert imp.frame["impact"].iloc[0] > 0
    multi = shap_impact(shapgov.explain(clf, Xi.iloc[::10], background=Xi.iloc[::5]))
    assert {f"impact_{c}" for c in clf.classes_} <= set(multi.frame.columns)
    np.testing.assert_allclose(
        multi.frame[[f"impact_{c}" for c in clf.classes_]].mean(axis=1), multi.frame["impact"]
    )


def test_prediction_explanations_top_k_thresholds_and_records():
    X, y, _ = _independent(600)
    model = lightgbm.LGBMRegressor(n_estimators=30, num_leaves=8, verbose=-1).fit(X, y)
    e = shapgov.explain(model, X.iloc[:20], background=X)
    pe = prediction_explanations(e, k=2)
    assert len(pe) == 40 and pe["rank"].tolist()[:2] == [1, 2]
    first = pe[pe["row"] == 0]
    assert abs(first["shap"].iloc[0]) >= abs(first["shap"].iloc[1])
    total = first["shap"].sum() + first["others"].iloc[0]
    assert total == pytest.approx(e.values[0].sum(), abs=1e-10)
    assert first["value"].iloc[0] == X.loc[0, first["feature"].iloc[0]]
    pred = e.explained_output[:, 0]
    cut = prediction_explanations(e, k=1, low=np.quantile(pred, 0.25), high=np.quantile(pred, 0.75))
    assert set(cut["row"]) == set(
        np.flatnonzero((pred < np.quantile(pred, 0.25)) | (pred > np.quantile(pred, 0.75)))
    )
    records = as_records(pe)
    assert len(records) == 20 and len(records[0]["features"]) == 2


def test_bad_input_to_the_analyses():
    X, y, model = _independent(200)
    e = shapgov.explain(model, X.iloc[:5], background=X)
    with pytest.raises(InputError, match="between 1 and the number of features"):
        prediction_explanations(e, k=9)
    with pytest.raises(InputError, match="empty"):
        feature_impact(model, X.iloc[:0])
    with pytest.raises(InputError, match="does not fit a regression"):
        permutation_impact(model, X, y, metric="auc")
    with pytest.raises(InputError, match="needs the true target"):
        permutation_impact(model, X, None)
    with pytest.raises(InputError, match="unknown metric"):
        permutation_impact(model, X, y, metric="accuracy")
    with pytest.raises(InputError, match="groups name columns"):
        permutation_impact(model, X, y, groups={"x": ["zz"]})


def test_redundant_copy_of_a_feature_is_marked():
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=1500), "c": rng.normal(size=1500)})
    X["a_copy"] = X["a"] + rng.normal(scale=0.01, size=1500)  # carries a's information
    y = 3 * X["a"] + X["c"]
    model = LinearRegression().fit(X[["a", "c"]].assign(a_copy=0.0), y)  # never uses a_copy
    impact = permutation_impact(model, X, y, n_repeats=4)
    marked = mark_redundant(impact, X).frame.set_index("feature")
    assert marked.loc["a_copy", "redundant_with"] == "a"
    assert pd.isna(marked.loc["a", "redundant_with"]) and pd.isna(marked.loc["c", "redundant_with"])
    assert mark_redundant(impact, X).to_dict()["features"][-1]["redundant_with"] in (None, "a")
    # a model that uses the copy needs it: not redundant
    forest = RandomForestRegressor(n_estimators=10, random_state=0).fit(X[["a_copy", "c"]], y)
    uses = permutation_impact(forest, X[["a_copy", "c"]], y, n_repeats=2)
    assert mark_redundant(uses, X[["a_copy", "c"]]).frame["redundant_with"].isna().all()
    with pytest.raises(InputError, match="permutation impact"):
        mark_redundant(feature_impact(model, X, sample=50), X)
