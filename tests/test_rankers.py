"""Rankers (issue 30, item 13): LGBMRanker and XGBRanker are tree vertices in their raw
margin, and objectives with no known link fall back to the Kernel explainer.

A ranking score is the trees' raw margin (``predict`` returns it as is), so the identity
link is exact: the values are held to brute-force Shapley values over every coalition
(through LightGBM's own ``predict``; through the parsed trees for XGBoost, whose own
output is float32) and to the libraries' own contributions, and ``e.prediction`` is the
model's own ``predict``.
"""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from naive import predict_reference
from oracles import brute_force_path_dependent, brute_force_shapley

import shapgov
from shapgov.errors import FallbackWarning, UndecomposableModelError
from shapgov_plugins.tree import tree_ensemble

F32 = float(np.finfo(np.float32).eps)


def _queries(seed: int = 0, n_groups: int = 60, size: int = 20):
    """Queries of ``size`` documents each: graded relevance 0..3 from the columns."""
    rng = np.random.default_rng(seed)
    n = n_groups * size
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=["bm25", "clicks", "age", "len", "pr"])
    score = X["bm25"] + 0.5 * X["clicks"] * X["pr"] - 0.3 * X["age"]
    y = np.digitize(score + rng.normal(scale=0.5, size=n), [-0.5, 0.5, 1.5])
    return X, y, [size] * n_groups


@pytest.mark.parametrize("objective", ["lambdarank", "rank_xendcg"])
def test_lgbm_ranker_is_a_tree_vertex_in_its_raw_margin(objective):
    X, y, group = _queries()
    m = lightgbm.LGBMRanker(objective=objective, n_estimators=30, num_leaves=8, verbose=-1)
    m.fit(X, y, group=group)
    rows, bg = X[:6], X[600:630]
    e = shapgov.explain(m, rows)  # default fallback: no FallbackWarning, a tree vertex
    assert e.link.name == "identity"
    assert [p.explainer for p in e.vertices] == ["tree"]
    assert e.feature_perturbation == "tree_path_dependent"
    np.testing.assert_array_equal(e.prediction[:, 0], m.predict(rows))
    contrib = m.predict(rows, pred_contrib=True)
    assert np.max(np.abs(e.values - contrib[:, :-1])) <= 1e-10
    assert np.max(np.abs(e.expected_value[0] - contrib[0, -1])) <= 1e-10
    ref, _ = brute_force_path_dependent(tree_ensemble(m), rows.to_numpy(float))
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    ei = shapgov.explain(m, rows, background=bg)
    ref, base = brute_force_shapley(m.predict, rows, bg)
    assert np.max(np.abs(ei.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(ei.expected_value - base)) <= 1e-10
    assert ei.additivity.status == "pass"
    assert ei.additivity.max_normalized_mismatch <= 1e-12


@pytest.mark.parametrize("objective", ["rank:pairwise", "rank:ndcg", "rank:map"])
def test_xgb_ranker_is_a_tree_vertex_in_its_raw_margin(objective):
    X, y, group = _queries(1)
    if objective == "rank:map":
        y = (y >= 2).astype(int)  # XGBoost's MAP takes binary relevance only
    m = xgb.XGBRanker(objective=objective, n_estimators=30, max_depth=3)
    m.fit(X, y, group=group)
    rows, bg = X[:6], X[600:630]
    e = shapgov.explain(m, rows)
    assert e.link.name == "identity"
    assert [p.explainer for p in e.vertices] == ["tree"]
    np.testing.assert_array_equal(e.prediction[:, 0], m.predict(rows).astype(float))
    ens = tree_ensemble(m)
    ref, base = brute_force_path_dependent(ens, rows.to_numpy(float))
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    contrib = m.get_booster().predict(xgb.DMatrix(rows), pred_contribs=True)
    scale = np.abs(contrib).max()
    assert np.max(np.abs(e.values - contrib[:, :-1])) <= 1e-5 * scale
    assert np.max(np.abs(e.expected_value[0] - contrib[0, -1])) <= 1e-5 * scale
    ei = shapgov.explain(m, rows, background=bg)
    ref, base = brute_force_shapley(lambda d: predict_reference(ens, d.to_numpy(float)), rows, bg)
    assert np.max(np.abs(ei.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(ei.expected_value - base)) <= 1e-10
    assert ei.additivity.status == "pass"  # against XGBoost's own float32 predict


UNKNOWN_LINKS = {
    # the prediction is 0/1 from the sign of the margin: no link
    "xgboost binary:hinge": lambda X, y: (
        xgb.XGBClassifier(objective="binary:hinge", n_estimators=10, max_depth=3).fit(X, y > 1),
        "predict_proba",
    ),
    # the prediction is log(1 + exp(margin)), a map no link here expresses
    "lightgbm cross_entropy_lambda": lambda X, y: (
        lightgbm.LGBMRegressor(objective="cross_entropy_lambda", n_estimators=10, verbose=-1).fit(
            X, y / 3
        ),
        "predict",
    ),
}


@pytest.mark.parametrize("name", sorted(UNKNOWN_LINKS))
def test_an_objective_with_no_known_link_falls_back_to_kernel(name):
    X, y, _ = _queries(2, n_groups=20)
    m, method = UNKNOWN_LINKS[name](X, y)
    rows, bg = X[:4], X[200:215]
    with pytest.warns(FallbackWarning, match="no known link"):
        e = shapgov.explain(m, rows, background=bg)
    assert [p.explainer for p in e.vertices] == ["kernel"]
    assert "no known link" in e.game["fallback_reason"]

    def f(d):
        out = np.asarray(getattr(m, method)(d), dtype=float)
        return out[:, 1:] if method == "predict_proba" else out

    ref, base = brute_force_shapley(f, rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    with pytest.raises(UndecomposableModelError, match="opaque=True"):
        shapgov.explain(m, rows, background=bg, fallback=None)


def test_the_matrix_names_the_rankers():
    matrix = shapgov.matrix()
    rows = matrix.set_index("id")
    assert "lightgbm.LGBMRanker" in rows.loc["lightgbm", "classes"]
    assert "xgboost.XGBRanker" in rows.loc["xgboost", "classes"]
    for row in ("lightgbm", "xgboost"):
        assert "raw margin" in rows.loc[row, "notes"]
