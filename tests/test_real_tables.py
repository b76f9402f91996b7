"""Real tables (issue 14): missing values, nullable dtypes, categories, predict functions
and signatures, each explained the way the model's own predict sees the rows and checked
against brute force over all coalitions through that predict (tests/oracles.py)."""

from __future__ import annotations

import json

import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost  # declared in the test extra: a missing install fails, never skips
from click.testing import CliRunner
from oracles import brute_force_shapley
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import shapgov
import shapgov.mlflow
from shapgov.combination.explanation import Explanation
from shapgov.demo import _trusted_types
from shapgov.errors import InputError, ModelOutputError

TOL = 1e-9
#: XGBoost sums its trees in float32: its own predict, the oracle's value function, is
#: exact to float32 rounding per tree (shapgov's values are float64 on the parsed trees).
F32 = float(np.finfo(np.float32).eps)


def _check(e, f, rows, background, *, float32_trees=0):
    """Values and base value equal brute force through ``f`` (the model's own output)."""
    phi, base = brute_force_shapley(f, rows, background)
    scale = max(1.0, float(np.abs(phi).max()))
    tol = max(TOL, float32_trees * F32) * scale
    assert np.abs(e.values.reshape(phi.shape) - phi).max() <= tol
    assert np.abs(np.ravel(e.expected_value) - base).max() <= tol


def _credit(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.lognormal(10, 1, n),
            "region": rng.choice(["N", "S", "E"], n),
            "product": rng.choice(["a", "b"], n),
        }
    )
    df.loc[rng.random(n) < 0.1, "income"] = np.nan
    y = ((df.age > 40) ^ (df.region == "N") | (df.income > 3e4)).astype(int)
    return df, y


def _credit_pipeline(df, y):
    numbers = make_pipeline(SimpleImputer(), StandardScaler())
    columns = ColumnTransformer(
        [("num", numbers, ["age", "income"]), ("cat", OneHotEncoder(), ["region", "product"])]
    )
    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1)
    return Pipeline([("columns", columns), ("model", model)]).fit(df, y)


def test_missing_values_are_explained_logged_reported_and_approved(store, tmp_path):
    df, y = _credit()
    pipe = _credit_pipeline(df, y)
    rows, bg = df[:40], df[1000:1030]
    e = shapgov.explain(pipe, rows, background=bg)
    margin = lambda d: pipe[-1].predict(pipe[:-1].transform(d), raw_score=True)  # noqa: E731
    _check(e, margin, rows, bg)
    assert rows["income"].isna().any()
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(pipe, df[:500], y=y[:500], background=df[1000:1200])
        info = mlflow.sklearn.log_model(
            pipe, name="model", pip_requirements=["scikit-learn"], **_trusted_types(pipe)
        )
    out = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="shapgov", dst_path=str(tmp_path / "set")
    )
    pe = pd.read_parquet(tmp_path / "set" / "shapgov" / "prediction_explanations.parquet")
    missing = pe[pe["value"].isna()]
    assert len(missing) and (missing["dtype"] == "float64").all()
    assert set(missing["feature"]) == {"income"}
    present = pe[pe["feature"] == "income"].dropna(subset=["value"])
    assert all(
        float(v) == df[:500]["income"].iloc[r]
        for v, r in zip(present["value"], present["row"], strict=True)
    )
    summary = json.loads(
        (tmp_path / "set" / "shapgov" / "prediction_explanations.json").read_text()
    )
    assert summary["rows"] == 500 and sum(f["first_rows"] for f in summary["features"]) == 500
    values = Explanation.read_parquet(f"{out}/values.parquet")
    assert values.data["income"].isna().sum() == df[:500]["income"].isna().sum()
    from shapgov.mlflow.approval import approve

    mv = mlflow.register_model(info.model_uri, "credit")
    result = approve("credit", mv.version)
    assert result.approved, result.reasons
    from shapgov.sinks.compliance import _feature_value

    assert _feature_value(np.nan) == _feature_value(pd.NA) == _feature_value(None) == "missing"


def _nullable(n=1200, seed=1):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {"a": rng.integers(0, 10, n), "b": rng.normal(size=n), "c": rng.normal(size=n)}
    ).convert_dtypes()
    X.loc[rng.random(n) < 0.1, "a"] = pd.NA
    X.loc[rng.random(n) < 0.1, "b"] = pd.NA
    return X


def test_nullable_dtypes_with_pd_na_lightgbm_and_xgboost():
    X = _nullable()
    assert str(X.dtypes["a"]) == "Int64" and str(X.dtypes["b"]) == "Float64"
    target = (X["c"].astype(float) + X["a"].astype(float).fillna(3) / 5 > 0).astype(int)
    rows, bg = X[:8], X[100:130]
    xgb = xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, target)
    e = shapgov.explain(xgb, rows, background=bg)
    _check(e, lambda d: xgb.predict(d, output_margin=True), rows, bg, float32_trees=20)
    lgb = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(X, X["c"].astype(float))
    e = shapgov.explain(lgb, rows, background=bg)
    _check(e, lgb.predict, rows, bg)
    assert list(e.data.dtypes) == list(X.dtypes)


@pytest.mark.parametrize("labels", [["M", "F"], [10, 20]])
def test_category_columns_use_the_categories_lightgbm_stored_at_fit(labels):
    rng = np.random.default_rng(2)
    n = 1500
    sex = pd.Categorical(rng.choice(labels, n))
    X = pd.DataFrame({"sex": sex, "u": rng.normal(size=n), "v": rng.normal(size=n)})
    y = ((X.sex == labels[0]) ^ (X.u > 0)).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y)
    rows, bg = X[:8].copy(), X[100:130].copy()
    # the rows' categories in another order, one unseen label, and a missing one:
    # LightGBM re-codes them through its stored categories (unseen and missing: NaN)
    rows["sex"] = rows["sex"].cat.set_categories(
        [labels[1], "Z" if labels[0] == "M" else 99, labels[0]]
    )
    rows.loc[0, "sex"] = "Z" if labels[0] == "M" else 99
    rows.loc[1, "sex"] = np.nan
    e = shapgov.explain(model, rows, background=bg)
    _check(e, lambda d: model.predict(d, raw_score=True), rows, bg)
    assert e.values[:, 0].std() > 0  # the category column matters


def test_xgboost_categories_follow_its_stored_encoding():
    rng = np.random.default_rng(3)
    n = 1500
    X = pd.DataFrame(
        {"sex": pd.Categorical(rng.choice(["M", "F", "X"], n)), "u": rng.normal(size=n)}
    )
    y = ((X.sex == "M") ^ (X.u > 0)).astype(int)
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3, enable_categorical=True)
    model.fit(X, y)
    rows, bg = X[:8].copy(), X[100:130]
    rows["sex"] = rows["sex"].cat.reorder_categories(["X", "M", "F"])
    e = shapgov.explain(model, rows, background=bg)
    _check(e, lambda d: model.predict(d, output_margin=True), rows, bg, float32_trees=10)


def test_a_predict_function_gets_dataframes_like_x():
    df, y = _credit()
    pipe = _credit_pipeline(df, y)
    seen = []

    def g(d):
        seen.append(d)
        return pipe.predict_proba(d)[:, 1]

    rows, bg = df[:4], df[100:120]
    e = shapgov.explain(g, rows, background=bg)
    _check(e, lambda d: pipe.predict_proba(d)[:, 1], rows, bg)
    assert all(isinstance(d, pd.DataFrame) and list(d.columns) == list(df.columns) for d in seen)
    assert all((d.dtypes == df.dtypes).all() for d in seen)


@pytest.mark.parametrize(
    ("output", "says"),
    [(None, "returned None"), ("text", "not numeric"), ([[1.0], [2.0, 3.0]], "not numeric")],
)
def test_a_predict_function_with_bad_output_raises_model_output_error(output, says):
    df, _ = _credit()
    with pytest.raises(ModelOutputError, match=says):
        shapgov.explain(lambda d: output, df[:4], background=df[100:120])


def test_integer_column_names_come_back_as_given(tmp_path):
    X = _nullable()
    X.columns = [0, 1, 2]
    model = lightgbm.LGBMRegressor(n_estimators=10, verbose=-1).fit(X, X[2].astype(float))
    e = shapgov.explain(model, X[:5], background=X[100:120])
    assert e.feature_names == [0, 1, 2] and list(e.to_frame().columns[1:]) == [0, 1, 2]
    back = Explanation.read_parquet(e.to_parquet(tmp_path / "e.parquet"))
    assert back.feature_names == [0, 1, 2]
    pd.testing.assert_frame_equal(back.data, e.data)


class _Int32Model(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input["a"].to_numpy() * 2.0 + model_input["b"].to_numpy()


def _register_int32_model(n=60):
    from mlflow.models import infer_signature

    rng = np.random.default_rng(4)
    X = pd.DataFrame({"a": rng.integers(0, 100, n).astype(np.int32), "b": rng.normal(size=n)})
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=_Int32Model(),
            signature=infer_signature(X, X["a"] * 2.0),
            pip_requirements=["pandas"],
        )
    mlflow.register_model(info.model_uri, "int32model")
    return X


def _explain_cli(store, data, *options):
    from shapgov.cli import main

    args = ["explain", "--model-uri", "models:/int32model/1", "--data", str(data)]
    return CliRunner().invoke(main, [*args, *options, "--tracking-uri", store])


def test_cli_casts_to_an_int32_signature_losslessly(store, tmp_path):
    X = _register_int32_model()
    X[:40].to_csv(tmp_path / "rows.csv", index=False)  # read back as int64
    X[40:].to_csv(tmp_path / "background.csv", index=False)
    result = _explain_cli(
        store,
        tmp_path / "rows.csv",
        *("--background", str(tmp_path / "background.csv"), "--background-size", "20"),
        *("--sample", "10", "--no-analyses"),
    )
    assert result.exit_code == 0, result.output
    run_id = result.output.split("(run ")[1].split(")")[0]
    out = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="shapgov", dst_path=str(tmp_path / "set")
    )
    e = Explanation.read_parquet(f"{out}/values.parquet")
    assert e.data.dtypes["a"] == np.int32  # explained as the signature declares
    loaded = mlflow.pyfunc.load_model("models:/int32model/1")
    _check(e, loaded.predict, e.data, X[40:].reset_index(drop=True))


def test_cli_refuses_a_lossy_cast_naming_the_column(store, tmp_path):
    X = _register_int32_model()
    X["a"] = X["a"].astype(float) + 0.5  # not whole: int32 would change it
    X.to_csv(tmp_path / "rows.csv", index=False)
    result = _explain_cli(store, tmp_path / "rows.csv")
    assert result.exit_code == 2
    assert "'a'" in result.output and "float64" in result.output and "int32" in result.output
    assert len(result.output) < 1000  # never a dump of hybrid rows


def test_a_pyfunc_model_is_explained_after_the_cast_and_equals_brute_force(store):
    X = _register_int32_model()
    loaded = mlflow.pyfunc.load_model("models:/int32model/1")
    rows, bg = X[:5].astype({"a": "int64"}), X[20:40].astype({"a": "int64"})
    e = shapgov.explain(loaded, rows, background=bg)
    cast = {"a": np.int32}
    _check(e, lambda d: loaded.predict(d.astype(cast)), rows.astype(cast), bg.astype(cast))
    with pytest.raises(InputError, match="'a'"):
        shapgov.explain(loaded, rows.astype({"a": float}) + 0.5, background=bg)


def test_a_table_of_every_dtype_is_logged_whole_with_integer_names(store, tmp_path):
    """Nullable Int64/Float64/boolean with pd.NA, categories with missing labels, integer
    column names: explained, logged with permutation impact, XEMP and the report."""
    rng = np.random.default_rng(5)
    n = 800
    sex = rng.choice(["M", "F"], n).astype(object)
    sex[rng.random(n) < 0.1] = None
    X = pd.DataFrame(
        {
            0: pd.array(rng.integers(0, 10, n), dtype="Int64"),
            1: pd.array(rng.normal(size=n), dtype="Float64"),
            2: pd.Categorical(sex),
            3: pd.array(rng.random(n) > 0.5, dtype="boolean"),
        }
    )
    X.loc[rng.random(n) < 0.1, 0] = pd.NA
    X.loc[rng.random(n) < 0.1, 3] = pd.NA
    y = (X[1].astype(float).fillna(0) + (X[2] == "M").astype(float) > 0.5).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y)
    rows, bg = X[:6], X[400:420].reset_index(drop=True)
    e = shapgov.explain(model, rows, background=bg)
    _check(e, lambda d: model.predict(d, raw_score=True), rows, bg)
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(model, X[:300], y=y[:300], background=X[400:500])
    out = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="shapgov", dst_path=str(tmp_path / "set")
    )
    logged = Explanation.read_parquet(f"{out}/values.parquet")
    assert logged.feature_names == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(logged.data, X[:300].reset_index(drop=True))
    report = (tmp_path / "set" / "shapgov" / "report.html").read_text()
    assert "<td>missing</td>" in report


def test_xgboost_missing_marker_is_missing_for_the_trees():
    rng = np.random.default_rng(6)
    n = 1000
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    y = X["a"] * 2 + X["b"] + rng.normal(scale=0.1, size=n)
    X.loc[rng.random(n) < 0.2, "a"] = -999.0  # the bank's "unknown" code
    model = xgboost.XGBRegressor(n_estimators=10, max_depth=3, missing=-999.0).fit(X, y)
    rows, bg = X[:6], X[200:220].reset_index(drop=True)
    assert (rows["a"] == -999).any() and (bg["a"] == -999).any()
    e = shapgov.explain(model, rows, background=bg)
    _check(e, lambda d: model.predict(d, output_margin=True), rows, bg, float32_trees=10)


@pytest.mark.parametrize("params", [{"zero_as_missing": True}, {"use_missing": False}])
def test_lightgbm_missing_settings_route_as_its_predict(params):
    rng = np.random.default_rng(7)
    n = 1500
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    X.loc[rng.random(n) < 0.2, "a"] = 0.0
    X.loc[rng.random(n) < 0.2, "b"] = np.nan
    y = X["a"].fillna(1) * 2 + X["b"].fillna(-1) + rng.normal(scale=0.1, size=n)
    model = lightgbm.LGBMRegressor(n_estimators=10, verbose=-1, **params).fit(X, y)
    rows = pd.DataFrame({"a": [0.0, np.nan, 0.5, 0.0], "b": [np.nan, 0.0, 1.0, 0.2], "c": 0.1})
    bg = X[200:230].reset_index(drop=True)
    e = shapgov.explain(model, rows, background=bg)
    _check(e, lambda d: model.predict(d, raw_score=True), rows, bg)
