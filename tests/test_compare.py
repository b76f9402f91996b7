"""SHAP versus XEMP: agreement on additive models, flags where they disagree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

import shapgov
from shapgov.analyses.compare import compare_shap_xemp
from shapgov.analyses.exemplars import xemp
from shapgov.analyses.impact import feature_impact, permutation_impact
from shapgov.errors import InputError
from shapgov.opaque import PredictFunction


def _discrete(n: int = 1500, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({c: rng.integers(0, 10, n).astype(float) for c in "abcd"})
    y = 4 * X["a"] - 2 * X["b"] + 1 * X["c"]
    return X, y


def test_linear_model_methods_agree_exactly():
    X, y = _discrete()
    model = LinearRegression().fit(X, y)
    rows = X.iloc[:40]
    e = shapgov.explain(model, rows, background=X)
    x = xemp(model, rows, training=X)
    # with the whole training set as background, SHAP and XEMP coincide for linear models
    assert np.max(np.abs(e.values - x.strengths[:, :, 0])) <= 1e-9
    impacts = [feature_impact(model, X, sample=300), permutation_impact(model, X, y, n_repeats=2)]
    cmp = compare_shap_xemp(e, x, k=2, impacts=impacts)
    assert cmp.rows["overlap"].min() == 1.0 and not cmp.rows["flagged"].any()
    agreement = cmp.global_agreement.set_index(["first", "second"])
    assert agreement.loc[("shap", "xemp"), "spearman"] == pytest.approx(1.0)
    assert agreement.loc[("permutation", "xemp"), "spearman"] == pytest.approx(1.0)
    assert cmp.to_dict()["params"]["k"] == 2


def test_disagreement_is_flagged_with_its_reason():
    X, _ = _discrete(seed=2)

    def f(d):
        d = np.asarray(d, dtype=float)
        return 5 * (d[:, 0] > 8) * (d[:, 1] > 8) + 0.3 * d[:, 2] - 0.2 * d[:, 3]

    model = PredictFunction(f)
    rows = X.iloc[:60]
    e = shapgov.explain(model, rows, background=X.iloc[::10])
    x = xemp(model, rows, training=X)
    cmp = compare_shap_xemp(e, x, k=2, min_overlap=1.0, min_rank_correlation=0.9)
    flagged = cmp.flagged
    assert len(flagged) > 0
    assert flagged["reason"].str.contains("overlap|Spearman|sign").all()
    assert not cmp.rows.loc[~cmp.rows["flagged"], "reason"].astype(bool).any()


def test_multiclass_and_groups_and_bad_input():
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    rows = X.iloc[::25]
    e = shapgov.explain(clf, rows, background=X, output="probability")
    pair = {"sepal": ["sepal length (cm)", "sepal width (cm)"]}
    x = xemp(clf, rows, training=X, groups=pair)
    cmp = compare_shap_xemp(e, x, k=2)
    assert len(cmp.rows) == len(rows) * 3 and set(cmp.rows["output"]) == {0, 1, 2}
    with pytest.raises(InputError, match="k must be between"):
        compare_shap_xemp(e, x, k=7)
    with pytest.raises(InputError, match="same rows"):
        compare_shap_xemp(e[:2], x)


def test_results_are_json_ready():
    import json

    X, y = _discrete(300)
    model = LinearRegression().fit(X, y)
    rows = X.iloc[:5]
    e = shapgov.explain(model, rows, background=X)
    x = shapgov.xemp(model, rows, training=X)
    cmp = shapgov.compare_shap_xemp(e, x)
    impact = shapgov.permutation_impact(model, X, y, n_repeats=2)
    for payload in (x.to_dict(), cmp.to_dict(), impact.to_dict()):
        assert json.loads(json.dumps(payload, allow_nan=False))
