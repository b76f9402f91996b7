"""The vectorized governance analyses (issue 16) give the values the per-row versions gave.

``tests/legacy_governance.py`` keeps the per-row implementations: one predict call per
(row, feature) for XEMP, one scipy call per row for the comparison, one predict call per
(feature, shuffle) for permutation impact, one tuple per (row, rank) for Prediction
Explanations. Every case compares value by value: 1e-12 where the model computes in
float64; XGBoost (float32 predictions) to the float32 rounding of its trees.
"""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
from cases import CASES, cancer, diabetes, iris
from legacy_governance import (
    compare_rows,
    permutation_drops,
    redundant_with,
    xemp_frame,
    xemp_strengths,
)
from legacy_governance import prediction_explanations as legacy_pe
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import shapgov
from shapgov.analyses.compare import _grouped_shap, compare_shap_xemp
from shapgov.analyses.exemplars import xemp
from shapgov.analyses.impact import _scorer, mark_redundant, permutation_impact, shap_impact
from shapgov.analyses.prediction_explanations import prediction_explanations
from shapgov.analyses.row_ranks import row_kendall, row_spearman, top_k
from shapgov.demo import cases as demo_cases
from shapgov.engine import decompose
from shapgov.errors import UnsupportedModelError

F32 = float(np.finfo(np.float32).eps)
TREE_ROWS = {"lightgbm", "xgboost", "catboost", "random_forest", "sklearn_gbm", "sklearn_hist_gbm"}


def _legacy_xemp(model, frame, training, n_exemplars=20, groups=None, evaluated=None):
    """Strengths through the model's own predict, one call per (row, feature)."""
    blueprint = decompose(model)
    groups = dict(groups or {})
    grouped = {c for cols in groups.values() for c in cols}
    units = {**groups, **{str(c): [c] for c in frame.columns if c not in grouped}}

    def predict(d):
        inp = d if hasattr(blueprint.model, "feature_names_in_") else d.to_numpy()
        return blueprint.predict(inp)

    chosen = list(units) if evaluated is None else evaluated
    return xemp_strengths(model, frame, training, units, chosen, n_exemplars, predict)


def _tolerance(model, scale: float) -> float:
    float32 = "xgboost" in type(model).__module__
    return (200 * F32 if float32 else 1e-12) * max(scale, 1.0)


def _check_xemp(model, rows, training, *, method, groups=None, n_exemplars=20, **options):
    result = xemp(model, rows, training=training, groups=groups, n_exemplars=n_exemplars, **options)
    assert result.params["method"] == method, result.params
    reference = _legacy_xemp(model, rows, training, n_exemplars, groups, result.evaluated)
    scale = float(np.nanmax(np.abs(reference)))
    np.testing.assert_allclose(result.strengths, reference, rtol=0, atol=_tolerance(model, scale))
    old = xemp_frame(result)
    new = result.to_frame(values=False)
    pd.testing.assert_frame_equal(new.reset_index(drop=True), old, check_dtype=False)
    stored = result.stored_frame()  # what xemp.parquet holds
    for column in ("row", "strength", "q"):
        np.testing.assert_array_equal(stored[column].to_numpy(), old[column].to_numpy())
    assert stored["feature"].astype(str).tolist() == [str(f) for f in old["feature"]]
    assert stored["symbol"].astype(str).tolist() == old["symbol"].tolist()
    outputs = stored["output"].astype(object).where(stored["output"].notna(), None)
    assert outputs.tolist() == [None if o is None else str(o) for o in old["output"]]
    summary = result.summary().set_index(["output", "feature"])  # what xemp.json holds
    for (output, feature), lines in old.groupby(["output", "feature"], dropna=False):
        line = summary.loc[(output, feature)]
        assert line["mean_abs_strength"] == pytest.approx(lines["strength"].abs().mean(), 1e-12)
        for symbol in ("+++", "++", "+", "trivial", "-", "--", "---"):
            assert line[f"share_{symbol}"] == pytest.approx((lines["symbol"] == symbol).mean())
    return result


@pytest.mark.parametrize("key", sorted(CASES), ids="-".join)
def test_xemp_matches_the_per_row_predict_reference_on_every_matrix_case(key):
    case = CASES[key]()
    rows = case.X.iloc[:6]
    method = "trees" if key[0] in TREE_ROWS else "predict"
    _check_xemp(case.model, rows, case.background, method=method)


@pytest.mark.parametrize("case", demo_cases(), ids=lambda c: c.name)
def test_demo_models_keep_every_value(case):
    from shapgov.demo import _fit

    _fit(case)
    rows, training = case.X_test.iloc[:25], case.X_train
    if case.over_time is not None:  # the time column is not one of the model's features
        rows = rows.drop(columns=case.over_time["time"])
    e = shapgov.explain(case.model, rows, background=training.iloc[:60])
    method = "trees" if case.flavor == "lightgbm" else "predict"
    result = _check_xemp(case.model, rows, training, method=method)
    _check_comparison(e, result)
    _check_permutation(case.model, rows, case.y_test.iloc[:25], method=method)
    _check_prediction_explanations(e)


def _check_comparison(e, result, k=3):
    new = compare_shap_xemp(e, result, k=k)
    idx = [result.features.index(f) for f in result.evaluated]
    old = compare_rows(
        _grouped_shap(e, result),
        result.strengths[:, idx],
        result.evaluated,
        result.classes,
        k=k,
        min_overlap=2 / 3,
        min_rank_correlation=0.5,
    )
    for column in ("row", "top_shap", "top_xemp"):
        assert new.rows[column].tolist() == old[column].tolist(), column
    # scipy's Spearman can land one ulp below a threshold it equals exactly (ties), and
    # the old rule flagged such rows; shapgov's rho is exact there and does not
    differ = np.flatnonzero(new.rows["reason"].to_numpy() != old["reason"].to_numpy())
    for i in differ:
        assert new.rows["spearman"].iloc[i] == 0.5 > old["spearman"].iloc[i], i
        kept = [c for c in old["reason"].iloc[i].split("; ") if not c.startswith("Spearman")]
        assert new.rows["reason"].iloc[i] == "; ".join(kept)
    assert (new.rows["flagged"] == (new.rows["reason"] != "")).all()
    assert new.rows["output"].tolist() == old["output"].tolist()
    for column in ("overlap", "spearman", "kendall", "sign_agreement"):
        np.testing.assert_allclose(
            new.rows[column].to_numpy(float), old[column].to_numpy(float), rtol=0, atol=1e-12
        )
    return new


def _check_permutation(model, rows, y, *, method, n_repeats=3):
    new = permutation_impact(model, rows, y, n_repeats=n_repeats, random_state=5)
    assert new.params["method"] == method, new.params
    blueprint = decompose(model)
    frame = rows.reset_index(drop=True)
    classes = getattr(blueprint.model, "classes_", None)
    scorer = _scorer(None, blueprint.task, None if classes is None else list(classes))
    from shapgov.explainers.stage import model_input

    drops = permutation_drops(
        lambda d: scorer.fn(np.asarray(y), blueprint.predict(model_input(d, blueprint.model))),
        frame,
        {str(c): [c] for c in frame.columns},
        n_repeats,
        5,
        scorer.greater_is_better,
    )
    marked = mark_redundant(new, frame)
    got_marks = [None if pd.isna(m) else m for m in marked.frame["redundant_with"]]
    assert got_marks == redundant_with(new.frame, frame)
    got = new.frame.set_index("feature")
    for name, values in drops.items():
        assert got.loc[name, "impact"] == pytest.approx(np.mean(values), abs=1e-12)
        assert got.loc[name, "impact_std"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)


def _check_prediction_explanations(e, k=3):
    new = prediction_explanations(e, k=k)
    old = legacy_pe(e, k)
    for column in ("row", "output", "rank", "feature"):
        assert new[column].tolist() == old[column].tolist(), column
    for column in ("prediction", "shap", "others"):
        np.testing.assert_allclose(new[column], old[column], rtol=0, atol=1e-12)
    expected = [e.data.loc[i, f] for i, f in zip(new["row"], new["feature"], strict=True)]
    assert [str(v) for v in new["value"]] == [str(v) for v in expected]


def _workload(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 50)), columns=[f"x{j}" for j in range(50)])
    X.iloc[::9, 4] = np.nan
    y = X["x0"] * X["x1"] + np.sin(3 * X["x2"]) + (X.iloc[:, 3:10] ** 2).sum(axis=1) * 0.2
    model = lightgbm.LGBMRegressor(n_estimators=60, num_leaves=31, verbose=-1).fit(X, y)
    return model, X, y


def test_the_benchmark_workload_keeps_every_value():
    model, X, y = _workload()
    rows = X.iloc[:40]
    e = shapgov.explain(model, rows)
    result = _check_xemp(model, rows, X, method="trees")
    _check_comparison(e, result)
    _check_permutation(model, rows, y.iloc[:40], method="trees")
    _check_prediction_explanations(e)
    # the top 12 features by SHAP impact, in impact order (not column order)
    ranked = _check_xemp(model, rows, X, method="trees", max_features=12, impact=shap_impact(e))
    assert ranked.evaluated != sorted(ranked.evaluated, key=ranked.features.index)
    _check_comparison(e, ranked)


def test_multiclass_forest_and_grouped_one_hot_columns_walk_the_trees():
    X, y = diabetes()
    label = pd.cut(y, [0, 100, 180, 400], labels=["low", "mid", "high"]).astype(str)
    onehot = ColumnTransformer(
        [("cat", OneHotEncoder(), ["sex"])], remainder="passthrough", sparse_threshold=0
    )
    model = make_pipeline(onehot, RandomForestClassifier(n_estimators=6, max_depth=5)).fit(X, label)
    groups = {"sex and bmi": ["sex", "bmi"]}
    result = _check_xemp(model, X.iloc[:12], X, method="trees", groups=groups)
    assert result.strengths.shape[2] == 3
    e = shapgov.explain(model, X.iloc[:12], background=X.iloc[:40])
    _check_comparison(e, result, k=2)
    _check_permutation(model, X.iloc[:80], label.iloc[:80], method="trees")


def test_categorical_splits_missing_values_and_more_than_64_exemplars():
    rng = np.random.default_rng(3)
    n = 3000
    X = pd.DataFrame(
        {
            "city": pd.Categorical(rng.integers(0, 90, n).astype(str)),
            "income": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "age": rng.integers(18, 90, n).astype(float),
        }
    )
    y = X["city"].cat.codes % 7 + np.nan_to_num(X["income"]) * 2 + X["age"] / 30
    model = lightgbm.LGBMRegressor(n_estimators=30, num_leaves=15, verbose=-1).fit(X, y)
    _check_xemp(model, X.iloc[:10], X, method="trees", n_exemplars=80)
    _check_permutation(model, X.iloc[:300], y.iloc[:300], method="trees")


def test_a_dummy_feature_gets_exactly_zero_and_the_binary_link_is_kept():
    X, y = cancer()
    X = X.iloc[:, :6].assign(dummy=0.5)
    model = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1).fit(X, y)
    result = _check_xemp(model, X.iloc[:20], X, method="trees")
    assert np.all(result.strengths[:, -1] == 0.0)
    assert np.all((result.prediction > 0) & (result.prediction < 1))  # probabilities


def test_method_trees_refuses_a_model_that_is_not_trees():
    from sklearn.linear_model import LogisticRegression

    X, y = iris()
    model = LogisticRegression(max_iter=500).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="not a tree model"):
        xemp(model, X.iloc[:5], training=X, method="trees")
    assert xemp(model, X.iloc[:5], training=X).params["fallback_reason"]


def test_catboost_ctr_combinations_take_the_predict_route_and_say_why():
    """The tree walks read one column per split; a CatBoost CTR over a combination reads
    several: XEMP falls back to predict, equal to the per-row reference, reason stated."""
    pytest.importorskip("catboost")
    from test_catboost import combination_model

    model, X = combination_model("floats")
    result = _check_xemp(model, X.iloc[:6], X.iloc[300:360], method="predict")
    assert "CTRs over combinations" in result.params["fallback_reason"]
    with pytest.raises(UnsupportedModelError, match="CTRs over combinations"):
        xemp(model, X.iloc[:6], training=X.iloc[300:360], method="trees")


def test_row_rank_correlations_match_scipy_with_ties_and_constant_rows():
    from scipy.stats import kendalltau, spearmanr

    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(300, 7)).astype(float)
    b = rng.integers(0, 4, size=(300, 7)).astype(float)
    a[0] = 1.0  # constant: NaN
    b[1, 2] = np.nan
    rho, tau = row_spearman(a, b), row_kendall(a, b)
    for i in range(len(a)):
        if np.all(a[i] == a[i, 0]) or np.all(b[i] == b[i, 0]) or np.isnan(b[i]).any():
            assert np.isnan(rho[i]) and np.isnan(tau[i])
            continue
        assert rho[i] == pytest.approx(spearmanr(a[i], b[i]).statistic, abs=1e-12)
        assert tau[i] == pytest.approx(kendalltau(a[i], b[i]).statistic, abs=1e-12)
    assert np.isnan(rho[:2]).all()
    c = np.abs(rng.normal(size=(200, 9))).round(1)  # many ties
    np.testing.assert_array_equal(top_k(c, 4), np.argsort(-c, axis=1, kind="stable")[:, :4])


def test_redundancy_marks_match_the_pairwise_reference_with_a_near_copy():
    model, X, y = _workload(n=800)
    X = X.assign(twin=X["x0"] + 1e-3 * np.random.default_rng(1).normal(size=len(X)))
    X["x4"] = X["x4"].fillna(0.0)
    model = lightgbm.LGBMRegressor(n_estimators=40, num_leaves=15, verbose=-1).fit(X, y)
    perm = permutation_impact(model, X, y, n_repeats=4)
    marked = mark_redundant(perm, X)
    expected = redundant_with(perm.frame, X)
    assert [None if pd.isna(m) else m for m in marked.frame["redundant_with"]] == expected
    assert any(m is not None for m in expected)


def test_ensembles_of_tree_vertices_walk_every_vertex():
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        RandomForestClassifier,
        VotingClassifier,
        VotingRegressor,
    )

    X, y = diabetes()
    X = X.drop(columns=["sex"])
    reg = VotingRegressor(
        [
            ("lgbm", lightgbm.LGBMRegressor(n_estimators=20, num_leaves=8, verbose=-1)),
            ("trees", ExtraTreesRegressor(n_estimators=5, max_depth=4, random_state=0)),
        ],
        weights=[0.3, 0.7],
    ).fit(X, y)
    _check_xemp(reg, X.iloc[:15], X, method="trees")  # affine: margin changes add up
    _check_permutation(reg, X.iloc[:120], y.iloc[:120], method="trees")
    label = (y > 140).astype(int)
    clf = VotingClassifier(
        [
            ("lgbm", lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1)),
            ("forest", RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0)),
        ],
        voting="soft",
    ).fit(X, label)
    _check_xemp(clf, X.iloc[:15], X, method="trees")  # probabilities: composed per exemplar
    _check_permutation(clf, X.iloc[:120], label.iloc[:120], method="trees")


def test_tree_walk_kernels_refuse_bad_shapes_with_typed_errors():
    from shapgov.errors import InputError
    from shapgov.explainers.kernels.exemplar_trees import donor_deltas, exemplar_deltas
    from shapgov_plugins.tree import tree_ensemble

    model, X, _ = _workload(n=200)
    ens = tree_ensemble(model)
    Z = X.to_numpy()
    unit_of = np.arange(50)
    with pytest.raises(InputError, match="exemplar values"):
        exemplar_deltas(ens, Z, unit_of, np.zeros((50, 3, 49)), np.full(50, 3))
    with pytest.raises(InputError, match="at most E"):
        exemplar_deltas(ens, Z, unit_of, np.zeros((50, 3, 50)), np.full(50, 4))
    orders = np.tile(np.arange(200), (50, 1))
    with pytest.raises(InputError, match="outside X"):
        donor_deltas(ens, Z, unit_of, orders + 1, np.arange(50), np.ones(50))
    with pytest.raises(InputError, match="index the rows"):
        donor_deltas(ens, Z, unit_of, orders, np.arange(50), np.full(50, 2))
    # identity shuffles change nothing: every margin change is exactly zero
    delta, margin = donor_deltas(ens, Z, unit_of, orders, np.arange(50), np.ones(50))
    assert np.all(delta == 0.0)
    np.testing.assert_allclose(margin[:, 0], model.predict(X), rtol=0, atol=1e-12)


def test_column_ranks_are_pandas_average_ranks_with_ties_and_missing_values():
    from shapgov.analyses.row_ranks import column_ranks

    rng = np.random.default_rng(4)
    a = rng.integers(0, 6, size=(500, 5)).astype(float)
    a[rng.random(a.shape) < 0.1] = np.nan
    a[:, 4] = np.nan  # a column with nothing to rank
    expected = pd.DataFrame(a).rank().to_numpy()
    np.testing.assert_array_equal(column_ranks(a), expected)
