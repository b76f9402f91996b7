"""GLMs logged with MLflow's own flavors (``mlflow.statsmodels``; glum through
``mlflow.sklearn``): the governed set, the evaluator, the CLI, the explaining model and
Spark, each equal to the in-process explanation of the model itself."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from stores import use_store

import shapgov
import shapgov.mlflow
import shapgov.spark
from shapgov.cli import main

sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")
glum = pytest.importorskip("glum")

NAME = "statsmodels-claims"
COLUMNS = ["age", "power", "region"]


def _book(n: int = 500) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, n),
            "power": rng.integers(4, 13, n).astype(float),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    exposure = rng.uniform(0.2, 1.0, n)
    eta = -1.5 + 0.2 * np.cos(X.age / 12) + 0.05 * X.power + 0.3 * (X.region == "east")
    counts = rng.poisson(exposure * np.exp(eta))
    return X, exposure, counts


@pytest.fixture(scope="module")
def approved(module_store, monkeypatch_module):
    monkeypatch_module.setenv("SHAPGOV_APPROVAL_KEY", "glm-test-approval-key-0123456789")
    monkeypatch_module.setenv("SHAPGOV_USER", "validator")
    use_store(module_store)
    X, exposure, counts = _book()
    model = smf.glm(
        "counts ~ bs(age, 3) + power + C(region) + power:C(region)",
        data=X.assign(counts=counts),
        family=sm.families.Poisson(),
        exposure=exposure,
    ).fit()
    background = X.iloc[300:380]
    with mlflow.start_run():
        # a served request carries no exposure: the approved set is explained without it
        shapgov.mlflow.explain_and_log(model, X.iloc[:60], background=background, analyses=False)
        info = mlflow.statsmodels.log_model(model, name="model", pip_requirements=["statsmodels"])
    mv = mlflow.register_model(info.model_uri, NAME)
    assert shapgov.approve(NAME, mv.version, alias="champion").approved
    return model, X, exposure, counts, background, info, mv


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_the_set_records_the_glm_and_its_library(approved, module_store):
    use_store(module_store)
    model, X, exposure, _, background, _, mv = approved
    with mlflow.start_run():
        e = shapgov.mlflow.explain_and_log(
            model, X.iloc[:60], background=background, exposure=exposure[:60], analyses=False
        )
    assert e.additivity.status == "pass"
    assert e.additivity.applied["exposure_taken_by"].startswith("statsmodels")
    assert (
        np.max(np.abs(e.prediction[:, 0] - model.predict(X.iloc[:60], exposure=exposure[:60])))
        < 1e-12
    )
    run = mlflow.get_run(mlflow.MlflowClient().get_model_version(NAME, mv.version).run_id)
    assert run.data.tags["shapgov.status"] == "pass"
    assert run.data.tags["shapgov.explainers.base"] == "terms"
    client = mlflow.MlflowClient()
    path = client.download_artifacts(run.info.run_id, "shapgov/manifest.json")
    manifest = pd.read_json(path, typ="series")
    assert "statsmodels" in manifest["environment"]


def test_the_evaluator_explains_the_flavors_model_with_its_terms(approved, module_store):
    use_store(module_store)
    _, X, _, counts, _, info, _ = approved
    with mlflow.start_run() as run:
        mlflow.models.evaluate(
            info.model_uri,
            X.assign(counts=counts),
            targets="counts",
            model_type="regressor",
            evaluators=["shapgov"],
            evaluator_config={"shapgov": {"sample": 30, "background": 40, "analyses": False}},
        )
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["shapgov.status"] == "pass"
    assert tags["shapgov.explainers.base"] == "terms"


def test_the_cli_explains_a_model_uri(approved, module_store, tmp_path):
    use_store(module_store)
    _, X, _, _, background, _, mv = approved
    X.iloc[100:140].to_csv(tmp_path / "rows.csv", index=False)
    background.to_csv(tmp_path / "background.csv", index=False)
    args = ["explain", "--model-uri", f"models:/{NAME}/{mv.version}"]
    args += ["--tracking-uri", module_store, "--data", str(tmp_path / "rows.csv")]
    args += ["--background", str(tmp_path / "background.csv"), "--no-analyses"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "additivity pass" in result.output


def test_the_explaining_model_serves_the_in_process_values(approved, module_store):
    from shapgov.mlflow.serving import log_explaining_model

    use_store(module_store)
    model, X, _, _, background, _, _ = approved
    with mlflow.start_run():
        info = log_explaining_model(f"models:/{NAME}@champion", top_k=2)
    served = mlflow.pyfunc.load_model(info.model_uri)
    rows = X.iloc[200:230].reset_index(drop=True)
    out = served.predict(rows)
    e = shapgov.explain(model, rows, background=background)
    cols = [f"shap_{c}" for c in COLUMNS]
    np.testing.assert_allclose(out[cols].to_numpy(), e.values, rtol=0, atol=1e-12)
    assert set(out["additivity_status"]) == {"pass"}


def test_spark_explains_the_model_like_the_process(approved, spark):
    model, X, _, _, background, _, _ = approved
    rows = X.iloc[:120].assign(id=np.arange(120))
    sdf = spark.createDataFrame(rows).repartition(2)
    got = shapgov.spark.explain(model, sdf, background=background, keys=["id"])
    got = got.toPandas().sort_values("id").reset_index(drop=True)
    e = shapgov.explain(model, X.iloc[:120], background=background)
    cols = [f"shap_{c}" for c in COLUMNS]
    np.testing.assert_allclose(got[cols].to_numpy(), e.values, rtol=0, atol=1e-12)


def test_a_glum_model_logged_with_the_sklearn_flavor(module_store):
    use_store(module_store)
    X, exposure, counts = _book()
    table = X.assign(region=pd.Categorical(X.region))
    model = glum.GeneralizedLinearRegressor(family="poisson", alpha=0.01).fit(
        table, counts, offset=np.log(exposure)
    )
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model, name="model", pip_requirements=["glum"], serialization_format="cloudpickle"
        )
        mlflow.models.evaluate(
            info.model_uri,
            table.assign(counts=counts),
            targets="counts",
            model_type="regressor",
            evaluators=["shapgov"],
            evaluator_config={"shapgov": {"sample": 30, "background": 40, "analyses": False}},
        )
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["shapgov.status"] == "pass"
    assert tags["shapgov.explainers.base"] == "terms"
