"""Multi-output regression (shap#518): a regressor fitted on a 2-D ``y`` of K targets is
explained per output, ``(n, M, K)`` like multiclass margins, through the tree route, the
Kernel route (``opaque=True``, predict functions, exact and sampled) and a
``MultiOutputRegressor``'s per-output vertices; each output equals brute force through
the model's own predict and is locally accurate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
from oracles import brute_force_path_dependent, brute_force_shapley
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, PoissonRegressor, Ridge
from sklearn.multioutput import MultiOutputRegressor, RegressorChain
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

import shapgov
from shapgov.analyses.prediction_explanations import as_records, prediction_explanations
from shapgov.combination.explanation import Explanation
from shapgov.decomposition.blueprint import regression_outputs
from shapgov.errors import InputError, UnsupportedModelError
from shapgov_plugins.tree import tree_ensemble


def _data(n: int = 200, m: int = 5, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Columns a, b, ... and two targets that depend on them differently."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, m)), columns=[chr(97 + j) for j in range(m)])
    Y = np.column_stack(
        [
            2.0 * X["a"] + X["b"] ** 2 - X["c"] + 0.1 * rng.normal(size=n),
            X["c"] * X["d"] + np.sin(X["a"]) + 3.0 + 0.1 * rng.normal(size=n),
        ]
    )
    return X, Y


def _rows(X: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return X.iloc[[0, 3, 17, 50, 99]], X.iloc[100:130]


def _check_brute_force(e, predict, rows, bg, k=2):
    """Each output's values and base equal brute force through ``predict``; base + sum
    reproduces the model's own output per output (local accuracy)."""
    ref, base = brute_force_shapley(predict, rows, bg)
    assert ref.shape == (len(rows), rows.shape[1], k)  # the oracle sees K outputs
    assert e.values.shape == ref.shape and e.n_outputs == k
    assert e.task == "regression" and e.additivity.status == "pass"
    for o in range(k):
        assert np.max(np.abs(e.values[:, :, o] - ref[:, :, o])) <= 1e-10
        assert abs(e.expected_value[o] - base[o]) <= 1e-10
    own = np.asarray(predict(rows), dtype=float).reshape(len(rows), k)
    for o in range(k):
        local = e.expected_value[o] + e.values[:, :, o].sum(axis=1)
        assert np.max(np.abs(local - own[:, o])) <= 1e-10


TREES = [
    RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0),
    ExtraTreesRegressor(n_estimators=6, max_depth=5, random_state=0),
    DecisionTreeRegressor(max_depth=5, random_state=0),
]


@pytest.mark.parametrize("model", TREES, ids=lambda m: type(m).__name__)
def test_multi_output_trees_through_the_tree_route_equal_brute_force(model):
    X, Y = _data()
    model.fit(X, Y)
    rows, bg = _rows(X)
    e = shapgov.explain(model, rows, background=bg)
    assert e.explainers == {type(model).__name__.lower(): "tree"}
    _check_brute_force(e, model.predict, rows, bg)
    # each output is the game of that target alone
    for o in range(2):
        ref, _ = brute_force_shapley(lambda d, o=o: model.predict(d)[:, o], rows, bg)
        assert np.max(np.abs(e.values[:, :, o] - ref[:, :, 0])) <= 1e-10


@pytest.mark.parametrize("model", TREES, ids=lambda m: type(m).__name__)
def test_multi_output_trees_play_the_path_dependent_game_like_shap(model):
    X, Y = _data()
    model.fit(X, Y)
    rows = X.iloc[:20]
    e = shapgov.explain(model, rows)  # no background: tree_path_dependent
    assert e.feature_perturbation == "tree_path_dependent" and e.values.shape == (20, 5, 2)
    ref, base = brute_force_path_dependent(tree_ensemble(model), rows.to_numpy(float))
    assert np.max(np.abs(e.values - ref)) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    local = e.expected_value + e.values.sum(axis=1)
    assert np.max(np.abs(local - model.predict(rows))) <= 1e-10
    theirs = shap.TreeExplainer(model)  # shap#518: its multi-output values, (n, M, K)
    np.testing.assert_allclose(e.values, theirs.shap_values(rows), atol=1e-9)
    np.testing.assert_allclose(e.expected_value, np.ravel(theirs.expected_value), atol=1e-9)


def test_a_multi_output_forest_explained_as_a_whole_goes_through_kernel():
    X, Y = _data()
    model = RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0).fit(X, Y)
    rows, bg = _rows(X)
    e = shapgov.explain(model, rows, background=bg, opaque=True)
    assert e.explainers == {"blackbox": "kernel"}
    _check_brute_force(e, model.predict, rows, bg)
    tree = shapgov.explain(model, rows, background=bg)  # the same game, another route
    assert np.max(np.abs(e.values - tree.values)) <= 1e-10


@pytest.mark.parametrize(
    "member",
    [Ridge(alpha=0.5), GradientBoostingRegressor(n_estimators=15, max_depth=3, random_state=0)],
    ids=["ridge", "gbm"],
)
def test_multi_output_regressor_is_one_vertex_per_output(member):
    X, Y = _data()
    model = MultiOutputRegressor(member).fit(X, Y)
    rows, bg = _rows(X)
    e = shapgov.explain(model, rows, background=bg)
    explainer = "linear" if isinstance(member, Ridge) else "tree"
    assert e.explainers == {
        "multioutputregressor/output0": explainer,
        "multioutputregressor/output1": explainer,
    }
    _check_brute_force(e, model.predict, rows, bg)
    for o, part in enumerate(e.vertices):  # each vertex writes its own output only
        assert np.all(part.values[:, :, 1 - o] == 0.0)
    assert [c["name"] for c in e.composites] == ["multioutputregressor"]


def test_multi_output_regressor_of_pipelines_and_log_links():
    """Members behind their own preprocessing, one with a log link: explained in the
    prediction space (exp of its margin), as the composite outputs it."""
    X, Y = _data()
    Y = np.exp(Y / 4)  # Poisson targets
    member = make_pipeline(StandardScaler(), PoissonRegressor(alpha=0.1))
    model = MultiOutputRegressor(member).fit(X, Y)
    rows, bg = _rows(X)
    e = shapgov.explain(model, rows, background=bg)
    assert all(p.response is not None for p in e.vertices)
    _check_brute_force(e, model.predict, rows, bg)


def test_a_multi_output_regressor_explained_as_a_whole():
    X, Y = _data()
    model = MultiOutputRegressor(Ridge()).fit(X, Y)
    rows, bg = _rows(X)
    e = shapgov.explain(model, rows, background=bg, opaque=True)
    assert e.explainers == {"blackbox": "kernel"}
    _check_brute_force(e, model.predict, rows, bg)


@pytest.mark.parametrize(
    "model",
    [
        LinearRegression(),
        KNeighborsRegressor(n_neighbors=4),
        RegressorChain(Ridge(), order=[1, 0]),
        MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, random_state=0),
    ],
    ids=lambda m: type(m).__name__,
)
def test_other_multi_output_regressors_equal_brute_force(model):
    X, Y = _data()
    model.fit(X, Y)
    assert regression_outputs(model) == 2
    rows, bg = _rows(X)
    e = shapgov.explain(model, rows, background=bg)
    _check_brute_force(e, model.predict, rows, bg)


def test_regression_outputs_counts_one_target_as_one():
    X, Y = _data()
    for y in (Y[:, 0], Y[:, :1]):
        for model in (LinearRegression(), KNeighborsRegressor(), RandomForestRegressor(2)):
            assert regression_outputs(model.fit(X, y)) == 1


def test_a_predict_function_with_several_outputs_exact():
    X, _ = _data(m=6)
    rows, bg = _rows(X)

    def f(d):
        return np.column_stack([d["a"] * d["b"] + d["c"], np.tanh(d["d"] - d["e"]) * d["f"]])

    e = shapgov.explain(f, rows, background=bg)
    assert e.explainers == {"predictfunction": "kernel"} and e.std_error is None
    _check_brute_force(e, f, rows, bg)


def _wide(m: int = 16) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two rows and three background rows of ``m`` columns."""
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(80, m)), columns=[f"x{j}" for j in range(m)])
    return X.iloc[:2], X.iloc[40:43]


def _nonadditive(d):
    a = d.to_numpy(float)
    return np.column_stack([a[:, 0] * a[:, 1] + a[:, 2:].sum(1), np.maximum(a[:, 3], a[:, 4])])


SAMPLED = {"kernel": {"n_samples": 200}}  # 16 columns: beyond 14, the sampling mode


@pytest.mark.parametrize("estimator", ["odd", "leverage"])
def test_a_predict_function_with_several_outputs_sampled_beyond_14_columns(estimator):
    """An additive function's sampled values are its exact Shapley values, per output;
    a non-additive one's add up exactly per output (the efficiency constraint), with
    standard errors per output."""
    rows, bg = _wide()
    W = np.random.default_rng(5).normal(size=(rows.shape[1], 3))

    def f(d):
        return d.to_numpy(float) @ W + np.array([1.0, -2.0, 0.5])

    options = {"kernel": {**SAMPLED["kernel"], "estimator": estimator}}
    e = shapgov.explain(f, rows, background=bg, explainer_options=options)
    assert e.values.shape == (2, 16, 3) and e.std_error.shape == (2, 16, 3)
    assert {p.method for p in e.vertices} == {"sampled"}
    exact = (rows.to_numpy(float) - bg.to_numpy(float).mean(axis=0))[:, :, None] * W[None]
    assert np.max(np.abs(e.values - exact)) <= 1e-10
    local = e.expected_value + e.values.sum(axis=1)
    assert np.max(np.abs(local - f(rows))) <= 1e-10

    e = shapgov.explain(_nonadditive, rows, background=bg, explainer_options=options)
    assert e.values.shape == (2, 16, 2) and e.std_error.shape == (2, 16, 2)
    local = e.expected_value + e.values.sum(axis=1)
    assert np.max(np.abs(local - _nonadditive(rows))) <= 1e-10


def test_sampled_outputs_are_each_outputs_own_estimate():
    """The leverage-score estimator regresses every output on the same seeded sample, so
    each output of a K-output function gets exactly the values of that output alone."""
    rows, bg = _wide()
    options = {"kernel": {**SAMPLED["kernel"], "estimator": "leverage"}}
    both = shapgov.explain(_nonadditive, rows, background=bg, explainer_options=options)
    for o in range(2):
        alone = shapgov.explain(
            lambda d, o=o: _nonadditive(d)[:, o], rows, background=bg, explainer_options=options
        )
        assert np.max(np.abs(both.values[:, :, o] - alone.values)) <= 1e-10
        assert np.max(np.abs(both.std_error[:, :, o] - alone.std_error)) <= 1e-10
        assert abs(both.expected_value[o] - alone.expected_value[0]) <= 1e-10


def test_downstream_views_of_a_multi_output_explanation(tmp_path):
    """to_frame, Feature Impact, Prediction Explanations and parquet do not assume that a
    regression has one output: every output is named 0..K-1 and kept apart."""
    X, Y = _data()
    model = RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0).fit(X, Y)
    rows, bg = _rows(X)
    e = shapgov.explain(model, rows, background=bg)

    frame = e.to_frame()
    assert len(frame) == 2 * len(rows) and sorted(set(frame["output"])) == [0, 1]
    for o in range(2):
        part = frame[frame["output"] == o]
        np.testing.assert_array_equal(part[list(X.columns)].to_numpy(), e.values[:, :, o])
        assert (part["base_value"] == e.expected_value[o]).all()

    impact = shapgov.feature_impact(model, X, sample=30, background=bg)
    assert {"impact_0", "impact_1"} <= set(impact.frame.columns)
    sub = shapgov.explain(model, shapgov.analyses.impact.sample_rows(X, 30, 0), background=bg)
    mean_abs = np.abs(sub.values).mean(axis=0)  # (M, K)
    by_feature = impact.frame.set_index("feature")
    for o in range(2):
        np.testing.assert_allclose(
            by_feature.loc[list(X.columns), f"impact_{o}"], mean_abs[:, o], atol=1e-12
        )

    pe = prediction_explanations(e, k=2)
    assert len(pe) == 2 * len(rows) * 2 and sorted(set(pe["output"])) == [0, 1]
    for o in range(2):
        lines = pe[pe["output"] == o]
        np.testing.assert_allclose(
            lines.groupby("row")["prediction"].first().to_numpy(), model.predict(rows)[:, o]
        )
    records = as_records(pe)
    assert len(records) == 2 * len(rows)  # one record per row and output

    back = Explanation.read_parquet(e.to_parquet(tmp_path / "e.parquet"))
    np.testing.assert_array_equal(back.values, e.values)
    np.testing.assert_array_equal(back.expected_value, e.expected_value)


@pytest.mark.parametrize("method", ["trees", "predict"])
def test_multi_output_permutation_impact_scores_every_output(method):
    """rmse over both targets (y ``(n, 2)``), by walking the trees or by predicting; the
    baseline and every shuffled score equal those computed by hand."""
    X, Y = _data()
    model = RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0).fit(X, Y)
    impact = shapgov.permutation_impact(model, X, Y, n_repeats=2, method=method)
    assert impact.params["method"] == method and impact.params["sample"] == len(X)

    def rmse(pred):
        return np.sqrt(np.mean((Y - pred) ** 2))

    assert impact.params["baseline"] == pytest.approx(rmse(model.predict(X)), abs=1e-12)
    rng = np.random.default_rng(0)  # the shuffles, drawn as permutation_impact draws them
    orders = [rng.permutation(len(X)) for _ in X.columns for _ in range(2)]
    expected = {}
    for j, c in enumerate(X.columns):
        drops = []
        for r in range(2):
            shuffled = X.copy()
            shuffled[c] = X[c].to_numpy()[orders[2 * j + r]]
            drops.append(rmse(model.predict(shuffled)) - rmse(model.predict(X)))
        expected[c] = np.mean(drops)
    got = impact.frame.set_index("feature")["impact"]
    for c in X.columns:
        assert got[c] == pytest.approx(expected[c], abs=1e-12)
    with pytest.raises(InputError, match="one target column per output"):
        shapgov.permutation_impact(model, X, Y[:, 0], method=method)


@pytest.mark.parametrize("method", ["trees", "predict"])
def test_xemp_and_the_comparison_name_every_output(method):
    """XEMP strengths per output equal the definition through the model's own predict,
    f(x) - sum_e w_e f(x with x_j := e), and carry outputs 0..K-1 into every view."""
    from shapgov.analyses.exemplars import exemplars

    X, Y = _data()
    model = RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0).fit(X, Y)
    rows = X.iloc[:6]
    xe = shapgov.xemp(model, rows, training=X, n_exemplars=5, method=method)
    assert xe.params["method"] == method and xe.strengths.shape == (6, 5, 2)
    assert xe.classes == [0, 1]
    own = model.predict(rows)
    for j, c in enumerate(X.columns):
        values, weights = exemplars(X[[c]], 5)
        ice = np.zeros_like(own)
        for e_value, w in zip(values[c], weights, strict=True):
            changed = rows.copy()
            changed[c] = e_value
            ice += w * model.predict(changed)
        assert np.max(np.abs(xe.strengths[:, j, :] - (own - ice))) <= 1e-10
    assert sorted(set(xe.to_frame()["output"])) == [0, 1]
    assert sorted(set(xe.summary()["output"])) == [0, 1]
    assert sorted(set(xe.stored_frame()["output"].astype(str))) == ["0", "1"]
    e = shapgov.explain(model, rows, background=X.iloc[100:130])
    cmp = shapgov.compare_shap_xemp(e, xe)
    assert len(cmp.rows) == 6 * 2 and set(cmp.rows["output"]) == {0, 1}


def test_a_multi_output_regressor_is_logged_with_its_analyses(store):
    import mlflow

    import shapgov.mlflow

    X, Y = _data()
    model = RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0).fit(X, Y)
    with mlflow.start_run():
        e = shapgov.mlflow.explain_and_log(model, X.iloc[:10], y=Y[:10], background=X[100:130])
    assert e.values.shape == (10, 5, 2) and e.additivity.status == "pass"


def test_multi_output_classification_trees_are_refused_with_what_to_do():
    from sklearn.ensemble import RandomForestClassifier

    X, Y = _data()
    labels = (np.median(Y, axis=0) < Y).astype(int)
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, labels)
    with pytest.raises(UnsupportedModelError, match="one classifier per label column"):
        tree_ensemble(model)
    with pytest.raises(UnsupportedModelError, match="one classifier per label column"):
        shapgov.explain(model, X.iloc[:5], background=X.iloc[100:110])


def test_a_served_multi_output_regressor_names_each_outputs_columns():
    """Served rows carry every output under its own suffix, each equal to explain()."""
    from sklearn.ensemble import RandomForestRegressor

    from shapgov.serving import ServedExplainer

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    Y = np.c_[2 * X.a + X.b, X.c - X.d]
    model = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(X, Y)
    served = ServedExplainer(model, background=X.iloc[:50], top_k=1)
    out = served.explain(X.iloc[100:104])
    assert out.columns.tolist() == served.output_columns()
    e = shapgov.explain(model, X.iloc[100:104], background=X.iloc[:50])
    for k in range(2):
        got = out[[f"shap_{c}_{k}" for c in "abcd"]].to_numpy()
        np.testing.assert_allclose(got, e.values[:, :, k], rtol=0, atol=1e-12)
        np.testing.assert_allclose(out[f"prediction_{k}"], model.predict(X.iloc[100:104])[:, k])
        # each output its own Prediction Explanation (not the output with the larger value)
        top = np.abs(e.values[:, :, k]).argmax(axis=1)
        assert out[f"pe_1_feature_{k}"].tolist() == [list("abcd")[j] for j in top]


def test_the_report_shows_xemp_next_to_shap_for_each_output(tmp_path):
    """The report's cards find every output's XEMP strengths (they were looked up under
    the label of a single output, so a regressor of K targets showed none)."""
    from sklearn.ensemble import RandomForestRegressor

    from shapgov.analyses.exemplars import xemp
    from shapgov.mlflow.artifacts import write_set
    from shapgov.sinks.compliance import ArtifactSet, build_context

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    Y = np.c_[2 * X.a + X.b, X.c - X.d]
    model = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(X, Y)
    e = shapgov.explain(model, X.iloc[:40], background=X.iloc[100:150])
    write_set(tmp_path, e, xemp=xemp(model, e.data, training=X.iloc[100:150]))
    cards = build_context(ArtifactSet.read(tmp_path))["predictions"]["rows"]
    assert cards and all(f["strength"] != "–" for card in cards for f in card["features"])
