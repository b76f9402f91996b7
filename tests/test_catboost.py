"""CatBoost plugin: the JSON reader against CatBoost's own raw formula, and our values
against brute force over all coalitions (interventional: through ``model.predict`` on
hybrid tables of strings and floats; path-dependent: the trees' value function walked by
definition) and against CatBoost's own ShapValues where those are right (symmetric trees).

Tolerances are float64 rounding: CatBoost sums its leaf values in double precision, and
its float comparisons (float32) are reproduced exactly, so no float32 allowance applies.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

catboost = pytest.importorskip("catboost")

from naive import predict_reference  # noqa: E402
from oracles import (  # noqa: E402
    brute_force_interactions,
    brute_force_path_dependent,
    brute_force_path_dependent_interactions,
    brute_force_shapley,
)

import shapgov  # noqa: E402
from shapgov.errors import ExactBudgetError, InputError, UnsupportedModelError  # noqa: E402
from shapgov.explainers.kernels.interventional_treeshap import predict_raw  # noqa: E402
from shapgov.explainers.kernels.subset_treeshap import has_empty_leaves  # noqa: E402
from shapgov_plugins.catboost_json import CatBoostTrees, float32_threshold  # noqa: E402
from shapgov_plugins.catboost_trees import (  # noqa: E402
    CatBoostEncoding,
    model_json,
    model_shape,
)
from shapgov_plugins.tree import tree_ensemble  # noqa: E402

CAT = ["c", "d"]


@cache
def table(n: int = 700, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two floats (NaN in ``a``), a string column of 5 labels and one of 7, a planted
    effect in each."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.choice(list("pqrst"), n),
            "d": rng.choice([f"k{i}" for i in range(7)], n),
        }
    )
    X.loc[::9, "a"] = np.nan
    y = (
        np.nan_to_num(X["a"].to_numpy(), nan=-1.0)
        + (X["c"] == "p") * 1.0
        - X["d"].isin(["k1", "k2"]) * 0.7
        + X["b"] * (X["c"] == "q")
        + rng.normal(scale=0.3, size=n)
    )
    return X, y.to_numpy()


def _common(**kw):
    return {"verbose": 0, "random_seed": 0, "allow_writing_files": False, "thread_count": 1, **kw}


MODELS = {
    # symmetric float-only trees, NaN under nan_mode Min and Max
    "floats-nan-min": lambda X, y: catboost.CatBoostRegressor(
        iterations=25, depth=4, nan_mode="Min", **_common()
    ).fit(X[["a", "b"]], y),
    "floats-nan-max": lambda X, y: catboost.CatBoostRegressor(
        iterations=25, depth=4, nan_mode="Max", **_common()
    ).fit(X[["a", "b"]], y),
    # one-hot splits on every label (strings) beside floats
    "one-hot-255": lambda X, y: catboost.CatBoostRegressor(
        iterations=25, depth=4, one_hot_max_size=255, cat_features=CAT, **_common()
    ).fit(X, y),
    # CTRs over one column, Logloss
    "ctr-logloss": lambda X, y: catboost.CatBoostClassifier(
        iterations=25,
        depth=4,
        one_hot_max_size=1,
        max_ctr_complexity=1,
        cat_features=CAT,
        **_common(),
    ).fit(X, y > 0.5),
    "depthwise": lambda X, y: catboost.CatBoostClassifier(
        iterations=20,
        depth=4,
        grow_policy="Depthwise",
        max_ctr_complexity=1,
        cat_features=CAT,
        **_common(),
    ).fit(X, y > 0.5),
    "lossguide": lambda X, y: catboost.CatBoostRegressor(
        iterations=20,
        grow_policy="Lossguide",
        max_leaves=12,
        max_ctr_complexity=1,
        cat_features=CAT,
        **_common(),
    ).fit(X, y),
    "multiclass-3": lambda X, y: catboost.CatBoostClassifier(
        iterations=15,
        depth=3,
        loss_function="MultiClass",
        max_ctr_complexity=1,
        cat_features=CAT,
        **_common(),
    ).fit(X, np.digitize(y, [0.0, 1.0])),
    "poisson": lambda X, y: catboost.CatBoostRegressor(
        iterations=20,
        depth=3,
        loss_function="Poisson",
        max_ctr_complexity=1,
        cat_features=CAT,
        **_common(),
    ).fit(X, np.round(np.exp(y / 2))),
}


SYMMETRIC = sorted(n for n in MODELS if n not in ("depthwise", "lossguide"))


@cache
def fitted(name: str):
    X, y = table()
    return MODELS[name](X, y)


def _columns(model) -> list[str]:
    return list(model.feature_names_)


def _rows(model, rows: slice = slice(0, 40)) -> pd.DataFrame:
    X, _ = table()
    return X[_columns(model)].iloc[rows]


def _raw(model):
    if isinstance(model, catboost.CatBoostRanker):  # its predict is the raw formula
        return lambda d: np.asarray(model.predict(d))
    return lambda d: np.asarray(model.predict(d, prediction_type="RawFormulaVal"))


def _encoded(model, X: pd.DataFrame) -> np.ndarray:
    return CatBoostEncoding.of(model)(X)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parsed_trees_give_catboosts_raw_formula(name):
    """Every row of the table, unseen labels and values on the borders included."""
    model = fitted(name)
    X = _rows(model, slice(None)).copy()
    if "c" in X:
        X.loc[X.index[:7], "c"] = "never-seen"
        X.loc[X.index[5:12], "d"] = "k99"
    ens = tree_ensemble(model)
    trees = CatBoostTrees(model_json(model))  # the model's own shape, as its JSON has it
    assert model_shape(model)[:2] == (trees.n_features, trees.categorical_columns)
    info = model_json(model)["features_info"]["float_features"]
    # rows exactly on a border, one above and one below (float32 neighbours)
    for f in info:
        borders = f.get("borders", [])
        for border in borders[:: max(1, len(borders) // 6)]:
            b = np.float32(border)
            for v in (b, np.nextafter(b, np.float32(np.inf)), np.nextafter(b, np.float32(-1e30))):
                row = X.iloc[[0]].copy()
                row[X.columns[f["flat_feature_index"]]] = float(v)
                X = pd.concat([X, row], ignore_index=True)
    ours = predict_reference(ens, _encoded(model, X))
    theirs = _raw(model)(X).reshape(len(X), -1)
    assert ours.shape == theirs.shape
    assert np.max(np.abs(ours - theirs)) <= 1e-12 * max(1.0, np.abs(theirs).max())


def test_float32_threshold_is_exact_around_the_border():
    rng = np.random.default_rng(3)
    for border in [0.1, -2.345, 1e-30, 3.0e38, np.finfo(np.float32).max, -3.4028234663852886e38]:
        b = np.float32(border)
        t = float32_threshold(border)
        with np.errstate(over="ignore"):  # above float32's range rounds to inf
            assert np.float32(t) <= b
            assert np.float32(np.nextafter(t, np.inf)) > b
            xs = float(b) * (1 + rng.normal(scale=1e-7, size=200))
            assert ((xs <= t) == (xs.astype(np.float32) <= b)).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_interventional_values_equal_brute_force_through_predict(name):
    model = fitted(name)
    X, bg = _rows(model, slice(0, 12)), _rows(model, slice(300, 330))
    e = shapgov.explain(model, X, background=bg, feature_perturbation="interventional")
    ref, base = brute_force_shapley(_raw(model), X, bg)
    values = e.values if e.values.ndim == 3 else e.values[:, :, None]
    assert np.max(np.abs(values - ref)) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    assert e.vertices[0].matrix_row == "catboost"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_path_dependent_values_equal_the_trees_value_function(name):
    model = fitted(name)
    X = _rows(model, slice(0, 15))
    e = shapgov.explain(model, X)
    assert e.feature_perturbation == "tree_path_dependent"
    ref, base = brute_force_path_dependent(tree_ensemble(model), _encoded(model, X))
    values = e.values if e.values.ndim == 3 else e.values[:, :, None]
    assert np.max(np.abs(values - ref)) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


@pytest.mark.parametrize("name", ["floats-nan-min", "one-hot-255", "ctr-logloss", "multiclass-3"])
def test_symmetric_trees_agree_with_catboosts_own_shap_values(name):
    """CatBoost's ShapValues are path-dependent TreeSHAP, right on symmetric trees."""
    model = fitted(name)
    X = _rows(model, slice(0, 30))
    e = shapgov.explain(model, X)
    pool = catboost.Pool(X, cat_features=[c for c in CAT if c in X])
    native = model.get_feature_importance(pool, type="ShapValues")
    if native.ndim == 2:
        native = native[:, None, :]
    values = e.values if e.values.ndim == 3 else e.values[:, :, None]
    assert np.max(np.abs(values - native[:, :, :-1].transpose(0, 2, 1))) <= 1e-10
    assert np.max(np.abs(e.expected_value - native[0, :, -1])) <= 1e-10


@pytest.mark.parametrize("name", SYMMETRIC)
def test_the_oblivious_kernels_equal_the_flat_ones(name):
    """The symmetric layout's kernels against the flat-node ones, which share no code
    with them: path-dependent (the subset walk), interventional with weighted background
    rows and grouped players (the linear-time background kernel), interaction values."""
    from shapgov.explainers.kernels.background_interactions import background_interactions
    from shapgov.explainers.kernels.background_treeshap import background_shap
    from shapgov.explainers.kernels.oblivious_interventional import (
        oblivious_interventional_shap,
    )
    from shapgov.explainers.kernels.subset_treeshap import subset_path_dependent

    model = fitted(name)
    ens = tree_ensemble(model)
    assert ens.oblivious is not None and has_empty_leaves(ens)
    X, Z = (
        _encoded(model, _rows(model, slice(0, 40))),
        _encoded(model, _rows(model, slice(300, 337))),
    )
    w = np.random.default_rng(2).uniform(size=Z.shape[0])
    players = np.minimum(np.arange(X.shape[1]), 2)  # columns 2.. play as one
    for kw in ({}, {"players": players}):
        a, base_a = subset_path_dependent(ens, X, **kw)
        b, base_b = subset_path_dependent(ens, X, oblivious=False, **kw)
        assert np.max(np.abs(a - b)) <= 1e-12 and np.max(np.abs(base_a - base_b)) <= 1e-12
        a, base_a = oblivious_interventional_shap(ens, X, Z, w, **kw)
        b, base_b = background_shap(ens, X, Z, w, **kw)
        assert np.max(np.abs(a - b)) <= 1e-12 and np.max(np.abs(base_a - base_b)) <= 1e-12
    a, _ = oblivious_interventional_shap(ens, X[:6], Z, w, interactions=True)
    assert np.max(np.abs(a - background_interactions(ens, X[:6], Z, w))) <= 1e-12
    a, _ = subset_path_dependent(ens, X[:6], interactions=True)
    b, _ = subset_path_dependent(ens, X[:6], interactions=True, oblivious=False)
    assert np.max(np.abs(a - b)) <= 1e-12


@pytest.mark.parametrize("name", ["depthwise", "lossguide"])
def test_non_symmetric_trees_add_up_where_catboosts_own_values_do_not(name):
    """CatBoost's ShapValues on Depthwise/Lossguide trees miss the raw formula (catboost
    #1703, #2136); ours rebuild it row by row."""
    model = fitted(name)
    X = _rows(model, slice(0, 40))
    raw = _raw(model)(X).reshape(len(X), -1)
    e = shapgov.explain(model, X)
    ours = e.values.sum(axis=1).reshape(len(X), -1) + e.expected_value
    assert np.max(np.abs(ours - raw)) <= 1e-10
    native = model.get_feature_importance(
        catboost.Pool(X, cat_features=CAT), type="ShapValues"
    ).reshape(len(X), -1)
    theirs = native.sum(axis=1)
    assert np.max(np.abs(theirs - raw[:, 0])) > 1e-3  # the fault this plugin exists for


@pytest.mark.parametrize("name", ["ctr-logloss", "depthwise"])
def test_interaction_values_in_both_games_equal_brute_force(name):
    model = fitted(name)
    X, bg = _rows(model, slice(0, 6)), _rows(model, slice(300, 320))
    e = shapgov.explain(model, X, background=bg, interactions=True)
    ref = brute_force_interactions(_raw(model), X, bg)[..., 0]
    assert np.max(np.abs(e.interaction_values - ref)) <= 1e-10
    p = shapgov.explain(model, X, interactions=True)
    ref = brute_force_path_dependent_interactions(tree_ensemble(model), _encoded(model, X))
    assert np.max(np.abs(p.interaction_values - ref[..., 0])) <= 1e-10


def test_probability_output_equals_brute_force_through_predict_proba():
    model = fitted("ctr-logloss")
    X, bg = _rows(model, slice(0, 10)), _rows(model, slice(300, 330))
    e = shapgov.explain(model, X, background=bg, output="probability")
    ref, base = brute_force_shapley(lambda d: model.predict_proba(d)[:, 1], X, bg)
    assert np.max(np.abs(e.values - ref[..., 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


def test_scale_and_bias_enter_values_and_base():
    X, y = table()
    model = catboost.CatBoostRegressor(iterations=10, depth=3, cat_features=CAT, **_common())
    model.fit(X, y)
    model.set_scale_and_bias(0.5, 1.0)
    rows, bg = X.iloc[:10], X.iloc[300:330]
    e = shapgov.explain(model, rows, background=bg)
    ref, base = brute_force_shapley(_raw(model), rows, bg)
    assert np.max(np.abs(e.values - ref[..., 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    p = shapgov.explain(model, rows)
    assert np.max(np.abs(p.values.sum(axis=1) + p.expected_value - _raw(model)(rows))) <= 1e-10


def test_inside_pipelines_voting_stacking_and_calibration():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import StackingRegressor, VotingRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = table()
    Xn = X[["a", "b"]].fillna(0.0)
    rows, bg = Xn.iloc[:8], Xn.iloc[300:320]
    cb_reg = catboost.CatBoostRegressor(iterations=15, depth=3, **_common())
    blueprints = {
        "pipeline": make_pipeline(StandardScaler(), cb_reg),
        "voting": VotingRegressor([("cb", cb_reg), ("ridge", Ridge())]),
        "stacking": StackingRegressor(
            [("cb", cb_reg), ("ridge", Ridge())], final_estimator=LinearRegression(), cv=3
        ),
    }
    for name, model in blueprints.items():
        model.fit(Xn, y)
        e = shapgov.explain(model, rows, background=bg)
        ref, base = brute_force_shapley(model.predict, rows, bg)
        assert np.max(np.abs(e.values - ref[..., 0])) <= 1e-10, name
        assert np.max(np.abs(e.expected_value - base)) <= 1e-10, name
        assert "catboost" in {v.matrix_row for v in e.vertices}, name
    calibrated = CalibratedClassifierCV(
        catboost.CatBoostClassifier(iterations=15, depth=3, **_common()), cv=3
    ).fit(Xn, y > 0.5)
    e = shapgov.explain(calibrated, rows, background=bg)
    ref, _ = brute_force_shapley(lambda d: calibrated.predict_proba(d)[:, 1], rows, bg)
    assert np.max(np.abs(e.values - ref[..., 0])) <= 1e-10
    assert "catboost" in {v.matrix_row for v in e.vertices}


@cache
def combination_model(kind: str):
    """CTRs over combinations (``max_ctr_complexity=3``): ``"floats"`` on the table (a
    projection of two categorical columns and a binarized float among them);
    ``"one-hot"`` on a table with a two-label column, whose one-hot conditions enter
    projections (``cat_feature_exact_value``)."""
    if kind == "floats":
        X, y = table()
        model = catboost.CatBoostRegressor(
            iterations=30, depth=4, one_hot_max_size=2, max_ctr_complexity=3,
            cat_features=CAT, **_common(),
        ).fit(X, y)  # fmt: skip
        return model, X
    rng = np.random.default_rng(0)
    n = 2000
    X = pd.DataFrame(
        {
            "a": rng.choice(list("xyz"), n),
            "b": rng.choice(list("pqrs"), n),
            "f": rng.normal(size=n),
            "c": rng.choice(list("uv"), n),
        }
    )
    y = (
        (X.a == "x") * (X.b == "p") * 2.0
        + (X.f > 0) * (X.a == "y") * 3
        + (X.c == "u") * (X.f > 0.5)
        + rng.normal(scale=0.1, size=n)
    )
    model = catboost.CatBoostRegressor(
        iterations=100, depth=4, one_hot_max_size=2, max_ctr_complexity=3,
        cat_features=["a", "b", "c"], **_common(),
    ).fit(X, y)  # fmt: skip
    return model, X


def _element_kinds(model) -> set[tuple[str, ...]]:
    return {
        tuple(e["combination_element"] for e in c["elements"])
        for c in model_json(model)["features_info"]["ctrs"]
        if len(c["elements"]) > 1
    }


@pytest.mark.parametrize("kind", ["floats", "one-hot"])
def test_combination_ctrs_route_every_row_as_catboost_does(kind):
    """A projection's key folds each categorical hash, binarized float and one-hot
    condition in with CalcHash: checked on every row, unseen labels, rows mixing columns of
    different rows (the hybrids of the interventional game) and floats on the borders the
    projections binarize at."""
    model, X = combination_model(kind)
    kinds = _element_kinds(model)
    wanted = "float_feature" if kind == "floats" else "cat_feature_exact_value"
    assert any(wanted in k for k in kinds), kinds  # the case this model exists for
    ens = tree_ensemble(model)
    assert ens.derived is not None
    if kind == "floats":
        assert any(len(r) == 3 for r in ens.derived.reads)  # two labels and a float
    rng = np.random.default_rng(1)
    mixed = pd.DataFrame({c: X[c].to_numpy()[rng.permutation(len(X))] for c in X.columns})
    rows = pd.concat([X, mixed], ignore_index=True)
    cats = [X.columns[i] for i in model.get_cat_feature_indices()]
    rows.loc[rows.index[:9], cats[0]] = "never-seen"
    floats = [c for c in X.columns if c not in cats]
    for c in model_json(model)["features_info"]["ctrs"]:
        for e in c["elements"]:
            if e["combination_element"] == "float_feature":
                b = np.float32(e["border"])
                for v in (b, np.nextafter(b, np.float32(np.inf))):
                    row = rows.iloc[[3]].copy()
                    row[floats[e["float_feature_index"]]] = float(v)
                    rows = pd.concat([rows, row], ignore_index=True)
    ours = predict_raw(ens, _encoded(model, rows))
    theirs = _raw(model)(rows).reshape(len(rows), -1)
    assert np.max(np.abs(ours - theirs)) <= 1e-12 * max(1.0, np.abs(theirs).max())


@pytest.mark.parametrize("kind", ["floats", "one-hot"])
def test_combination_ctrs_in_both_games_equal_brute_force(kind):
    """Path-dependent: a combination split is known only when all its columns are (the
    grouped brute force); interventional: brute force through ``model.predict``. Values
    and interaction values. CatBoost's own ShapValues split a combination's value
    equally among its columns instead: not the Shapley value of the original columns."""
    model, X = combination_model(kind)
    rows, bg = X.iloc[:8], X.iloc[300:320]
    encoded = _encoded(model, rows)
    ens = tree_ensemble(model)
    p = shapgov.explain(model, rows)
    ref, base = brute_force_path_dependent(ens, encoded)
    assert np.max(np.abs(p.values - ref[..., 0])) <= 1e-10
    assert np.max(np.abs(p.expected_value - base)) <= 1e-10
    inter = shapgov.explain(model, rows[:4], interactions=True).interaction_values
    ref = brute_force_path_dependent_interactions(ens, encoded[:4])[..., 0]
    assert np.max(np.abs(inter - ref)) <= 1e-10
    e = shapgov.explain(model, rows, background=bg, feature_perturbation="interventional")
    ref, base = brute_force_shapley(_raw(model), rows, bg)
    assert np.max(np.abs(e.values - ref[..., 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    inter = shapgov.explain(model, rows[:3], background=bg, interactions=True).interaction_values
    ref = brute_force_interactions(_raw(model), rows[:3], bg)[..., 0]
    assert np.max(np.abs(inter - ref)) <= 1e-10
    cats = [X.columns[i] for i in model.get_cat_feature_indices()]
    native = model.get_feature_importance(catboost.Pool(rows, cat_features=cats), type="ShapValues")
    assert np.max(np.abs(native[:, :-1] - p.values)) > 1e-3  # the equal split


def test_combination_ctrs_are_refused_by_the_one_column_kernels_naming_the_setting():
    from shapgov.explainers.kernels.background_treeshap import background_shap

    model, X = combination_model("floats")
    Z = _encoded(model, X.iloc[:20])
    with pytest.raises(UnsupportedModelError, match="max_ctr_complexity=1"):
        background_shap(tree_ensemble(model), Z, Z, np.full(20, 1 / 20))
    # the exact-coalition route they take instead names it too when over its budget
    with pytest.raises(ExactBudgetError, match="max_ctr_complexity=1"):
        shapgov.explain(
            model, X.iloc[:3], background=X.iloc[:5], feature_perturbation="interventional",
            explainer_options={"tree": {"max_exact_players": 2}},
        )  # fmt: skip


def test_categorical_inputs_are_checked_like_catboost_checks_them():
    model = fitted("ctr-logloss")
    X = _rows(model, slice(0, 10)).copy()
    as_category = X.astype({"c": "category"})
    a = shapgov.explain(model, X, background=X)
    b = shapgov.explain(model, as_category, background=as_category)
    assert np.array_equal(a.values, b.values)
    missing = X.copy()
    missing.loc[missing.index[2], "c"] = None
    with pytest.raises(InputError, match=r"'c'.*missing"):
        shapgov.explain(model, missing, background=X)
    real = X.astype({"d": object})
    real.loc[real.index[1], "d"] = 1.5
    with pytest.raises(InputError, match="'d'"):
        shapgov.explain(model, real, background=X)
    words = X.astype({"a": object})
    words.loc[words.index[0], "a"] = "many"
    with pytest.raises(InputError, match="'a'"):
        shapgov.explain(model, words, background=X)


def test_integer_categories_by_index_on_arrays():
    rng = np.random.default_rng(5)
    n = 400
    codes = rng.integers(0, 6, n)
    x = rng.normal(size=n)
    y = x + (codes == 2) * 2.0
    frame = pd.DataFrame({"x": x, "code": codes})
    model = catboost.CatBoostRegressor(
        iterations=15, depth=3, cat_features=[1], one_hot_max_size=1, **_common()
    ).fit(frame, y)
    rows, bg = frame.iloc[:10], frame.iloc[200:230]
    e = shapgov.explain(model, rows, background=bg)
    ref, base = brute_force_shapley(_raw(model), rows, bg)
    assert np.max(np.abs(e.values - ref[..., 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


@pytest.mark.parametrize(("direct", "packed"), [(16, 63), (0, 63), (0, 0)])
@pytest.mark.parametrize("name", ["depthwise", "multiclass-3"])
def test_every_row_grouping_of_the_subset_kernel_equals_the_value_function(name, direct, packed):
    """Decision vectors in a table, rows sorted by them, or every row alone: one answer.
    The flat-node walk is forced (``oblivious=False``): symmetric trees otherwise take the
    oblivious kernel, which does not group rows this way."""
    from functools import partial

    from shapgov.explainers.kernels.subset_treeshap import subset_path_dependent

    subset_path_dependent = partial(subset_path_dependent, oblivious=False)
    model = fitted(name)
    X = _rows(model, slice(0, 25))
    ens, Z = tree_ensemble(model), _encoded(model, X)
    ref, base = brute_force_path_dependent(ens, Z)
    phi, b = subset_path_dependent(ens, Z, direct_key_bits=direct, packed_key_bits=packed)
    assert np.max(np.abs(phi - ref)) <= 1e-10
    assert np.max(np.abs(b - base)) <= 1e-10
    inter = subset_path_dependent(
        ens, Z[:4], interactions=True, direct_key_bits=direct, packed_key_bits=packed
    )[0]
    iref = brute_force_path_dependent_interactions(ens, Z[:4])
    assert np.max(np.abs(inter - iref)) <= 1e-10


def test_a_bare_catboost_and_a_ranker_explain_their_raw_formula():
    """The other two entry classes: a bare ``CatBoost`` (Logloss, predicting its raw
    formula) and a ``CatBoostRanker`` (YetiRank, raw scores), against brute force."""
    X, y = table()
    rows, bg = X.iloc[:8], X.iloc[300:325]
    bare = catboost.CatBoost(
        {"iterations": 15, "depth": 3, "loss_function": "Logloss", "cat_features": CAT, **_common()}
    ).fit(X, (y > 0.5).astype(int))
    groups = np.repeat(np.arange(len(X) // 10), 10)
    ranker = catboost.CatBoostRanker(
        iterations=15, depth=3, loss_function="YetiRank", cat_features=CAT, **_common()
    ).fit(X, np.digitize(y, [0.0, 1.0]), group_id=groups)
    for model in (bare, ranker):
        e = shapgov.explain(model, rows, background=bg)
        ref, base = brute_force_shapley(_raw(model), rows, bg)
        assert np.max(np.abs(e.values - ref[..., 0])) <= 1e-10
        assert np.max(np.abs(e.expected_value - base)) <= 1e-10
        p = shapgov.explain(model, rows)
        assert p.feature_perturbation == "tree_path_dependent"
        raw = _raw(model)(rows)
        assert np.max(np.abs(p.values.sum(axis=1) + p.expected_value - raw)) <= 1e-10
        encoding = CatBoostEncoding.of(model)  # the vertex's margin (Kernel's route)
        assert np.array_equal(encoding.margin(encoding(rows))[:, 0], raw)


def test_empty_leaves_are_why_catboost_needs_the_subset_kernel():
    """CatBoost's trees hold leaves no training row reached (cover 0): linear TreeSHAP
    refuses them, so the tree explainer routes such trees to the subset kernel."""
    from shapgov.explainers.kernels.linear_treeshap import linear_path_dependent_shap
    from shapgov.explainers.kernels.subset_treeshap import has_empty_leaves

    model = fitted("depthwise")
    ens = tree_ensemble(model)
    assert has_empty_leaves(ens)
    with pytest.raises(UnsupportedModelError, match="zero cover"):
        linear_path_dependent_shap(ens, _encoded(model, _rows(model, slice(0, 3))))
