"""A CatBoost model logged with MLflow's own ``mlflow.catboost`` flavor, string categories
and all: explained by the evaluator, the CLI (``--model-uri``), the explaining model and
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

catboost = pytest.importorskip("catboost")

NAME = "catboost-credit"


def _table(n: int = 600) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame(
        {
            "income": rng.normal(50, 15, n),
            "utilization": rng.uniform(0, 1, n),
            "purpose": rng.choice(["car", "home", "education", "other"], n),
            "region": rng.choice([f"r{i}" for i in range(6)], n),
        }
    )
    X.loc[::11, "income"] = np.nan
    risk = X.utilization * 2 - np.nan_to_num(X.income, nan=30) / 40 + (X.purpose == "other")
    y = pd.Series((risk + rng.normal(0, 0.4, n) > 0.3).astype(int), name="default")
    return X, y


@pytest.fixture(scope="module")
def approved(module_store):
    from mlflow.models import infer_signature

    use_store(module_store)
    X, y = _table()
    model = catboost.CatBoostClassifier(
        iterations=30,
        depth=4,
        cat_features=["purpose", "region"],
        max_ctr_complexity=1,
        verbose=0,
        random_seed=0,
        allow_writing_files=False,
        thread_count=1,
    ).fit(X, y)
    background = X.iloc[300:400]
    with mlflow.start_run():
        shapgov.mlflow.explain_and_log(model, X.iloc[:60], background=background, analyses=False)
        info = mlflow.catboost.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict_proba(X)),
            pip_requirements=["catboost"],
        )
    mv = mlflow.register_model(info.model_uri, NAME)
    assert shapgov.approve(NAME, mv.version, alias="champion").approved
    return model, X, y, background, info, mv


def test_the_evaluator_explains_the_flavors_model_with_its_trees(approved, module_store):
    use_store(module_store)
    _, X, y, _, info, _ = approved
    with mlflow.start_run() as run:
        mlflow.models.evaluate(
            info.model_uri,
            X.assign(default=y),
            targets="default",
            model_type="classifier",
            evaluators=["shapgov"],
            evaluator_config={"shapgov": {"sample": 30, "background": 40, "analyses": False}},
        )
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["shapgov.status"] == "pass"
    assert tags["shapgov.explainers.base"] == "tree"


def test_the_cli_explains_a_model_uri_from_csv_files(approved, module_store, tmp_path):
    use_store(module_store)
    _, X, _, background, _, mv = approved
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
    model, X, _, background, _, _ = approved
    with mlflow.start_run():
        info = log_explaining_model(f"models:/{NAME}@champion", top_k=2)
    served = mlflow.pyfunc.load_model(info.model_uri)
    rows = X.iloc[200:230].reset_index(drop=True)
    out = served.predict(rows)
    e = shapgov.explain(model, rows, background=background)
    cols = [f"shap_{c}" for c in X.columns]
    np.testing.assert_allclose(out[cols].to_numpy(), e.values, rtol=0, atol=1e-12)
    assert set(out["additivity_status"]) == {"pass"}


def test_spark_explains_the_model_like_the_process(approved, spark):
    model, X, _, background, _, _ = approved
    rows = X.iloc[:200].assign(id=np.arange(200))
    sdf = spark.createDataFrame(rows).repartition(2)
    got = shapgov.spark.explain(model, sdf, background=background, keys=["id"])
    got = got.toPandas().sort_values("id").reset_index(drop=True)
    e = shapgov.explain(model, X.iloc[:200], background=background)
    cols = [f"shap_{c}" for c in X.columns]
    np.testing.assert_allclose(got[cols].to_numpy(), e.values, rtol=0, atol=1e-12)
