"""shapgov on a real local Spark (local[2], started by the tests): values equal the
in-process explanation, the policy holds at scale, published parts are verified by
approval, a killed job publishes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

import shapgov
import shapgov.spark
from shapgov.errors import AdditivityError, InputError, WorkerEnvironmentError

ROWS = 3000


TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({f"x{j}": rng.normal(size=ROWS) for j in range(5)})
    X.loc[rng.uniform(size=ROWS) < 0.05, "x3"] = np.nan  # LightGBM routes missing values
    y = X.x0 + X.x1 * X.x2 + np.nan_to_num(X.x3)
    model = lgb.LGBMRegressor(n_estimators=40, num_leaves=15, verbose=-1).fit(X, y)
    return model, X, X.iloc[:100]


def _sdf(spark, X, partitions=3):
    return spark.createDataFrame(X.assign(id=np.arange(len(X)))).repartition(partitions)


def test_values_equal_the_in_process_explanation(spark, table):
    model, X, bg = table
    out = shapgov.spark.explain(model, _sdf(spark, X), background=bg, keys=["id"])
    got = out.toPandas().sort_values("id").reset_index(drop=True)
    e = shapgov.explain(model, X, background=bg)
    shap = got[[f"shap_x{j}" for j in range(5)]].to_numpy()
    np.testing.assert_allclose(shap, e.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["base_value"], e.base_values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["prediction"], e.prediction[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        got["additivity_mismatch"], e.additivity.row_mismatch, rtol=0, atol=1e-15
    )
    assert set(got["additivity_status"]) == {"pass"}


def test_several_outputs_and_the_path_dependent_game(spark, table):
    _, X, bg = table
    Xf = X.fillna(0.0)
    labels = pd.cut(Xf.x0 + Xf.x1, 3, labels=["low", "mid", "high"]).astype(str)
    forest = RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0).fit(Xf, labels)
    rows = Xf.iloc[:300]
    out = shapgov.spark.explain(forest, _sdf(spark, rows), background=bg.fillna(0.0), keys=["id"])
    got = out.toPandas().sort_values("id")
    e = shapgov.explain(forest, rows, background=bg.fillna(0.0))
    for k, label in enumerate(e.classes):
        shap = got[[f"shap_x{j}__{label}" for j in range(5)]].to_numpy()
        np.testing.assert_allclose(shap, e.values[:, :, k], rtol=0, atol=1e-12)
    model, X, _ = table
    out = shapgov.spark.explain(
        model, _sdf(spark, X.iloc[:500]), keys=["id"], feature_perturbation="tree_path_dependent"
    )
    got = out.toPandas().sort_values("id")
    e = shapgov.explain(model, X.iloc[:500], feature_perturbation="tree_path_dependent")
    np.testing.assert_allclose(got[[f"shap_x{j}" for j in range(5)]], e.values, atol=1e-12)


def test_bad_input_is_refused_on_the_driver(spark, table):
    model, X, bg = table
    sdf = _sdf(spark, X.iloc[:50])
    with pytest.raises(InputError, match="pass background="):
        shapgov.spark.explain(model, sdf, keys=["id"])
    with pytest.raises(InputError, match="key column"):
        shapgov.spark.explain(model, sdf, background=bg, keys=["nope"])
    with pytest.raises(InputError, match="unknown explain option"):
        shapgov.spark.explain(model, sdf, background=bg, keys=["id"], colour="red")


def _registered(model, name):
    # requirements declared: inferring them loads the model in a subprocess (~5 s)
    info = mlflow.lightgbm.log_model(model, name="model", pip_requirements=["lightgbm"])
    return mlflow.register_model(info.model_uri, name)


def test_a_governed_table_is_published_hashed_logged_and_approved(spark, table, store, tmp_path):
    model, X, bg = table
    target = tmp_path / "published" / "scores"
    with mlflow.start_run() as run:
        published = shapgov.spark.explain_and_log(
            model, _sdf(spark, X), background=bg, keys=["id"], path=target, sample=300
        )
        mv = _registered(model, "spark-table")
    assert published.rows == ROWS and published.additivity["status"] == "pass"
    assert sum(p["rows"] for p in published.parts) == ROWS
    on_disk = pd.read_parquet(target)
    assert len(on_disk) == ROWS and not list(tmp_path.glob("published/.scores.staging-*"))
    document = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/shapgov/spark.json")
    assert document["parts"] == published.parts and document["rows"] == ROWS
    # a small table is uploaded beside the set, a large one referenced: both by hash
    table_uri = f"runs:/{run.info.run_id}/shapgov-table/"
    assert all(p["uri"].startswith(table_uri) for p in published.parts)
    manifest = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/shapgov/manifest.json")
    assert "spark.json" in manifest["artifacts"]
    # Feature Impact of the whole table, aggregated in Spark
    e = shapgov.explain(model, X, background=bg)
    impact = dict(
        zip(published.feature_impact["column"], published.feature_impact["impact"], strict=True)
    )
    np.testing.assert_allclose(
        [impact[f"shap_x{j}"] for j in range(5)], np.abs(e.values).mean(axis=0), rtol=1e-12
    )
    assert shapgov.approve("spark-table", mv.version).approved
    with pytest.raises(InputError, match="never overwritten"):
        shapgov.spark.explain_and_log(model, _sdf(spark, X), background=bg, path=target)

    # a missing, an extra or an altered part is a rejection
    parts = sorted(target.glob("part-*.parquet"))
    original = parts[0].read_bytes()
    parts[0].write_bytes(original[:-8] + b"\0" * 8)
    verdict = shapgov.approve("spark-table", mv.version)
    assert not verdict.approved and any("altered" in r for r in verdict.reasons)
    parts[0].write_bytes(original)
    (target / "part-99999-extra.snappy.parquet").write_bytes(original)
    verdict = shapgov.approve("spark-table", mv.version)
    assert not verdict.approved and any("extra part" in r for r in verdict.reasons)
    (target / "part-99999-extra.snappy.parquet").unlink()
    parts[1].unlink()
    verdict = shapgov.approve("spark-table", mv.version)
    assert not verdict.approved and any("missing" in r for r in verdict.reasons)


def test_a_table_over_the_threshold_publishes_nothing(spark, table, store, tmp_path):
    """Threshold 0: exactly the rows whose rebuilt prediction differs from the model's in
    the last bits fail (known in process, row by row); nothing is published."""
    model, X, bg = table
    e = shapgov.explain(model, X, background=bg, additivity_threshold=1.0, pass_tolerance=1.0)
    mismatch = np.asarray(e.additivity.row_mismatch)
    failing = np.flatnonzero(mismatch > 0)
    assert 0 < failing.size < ROWS
    target = tmp_path / "refused"
    with mlflow.start_run() as run, pytest.raises(AdditivityError) as info:
        shapgov.spark.explain_and_log(
            model,
            _sdf(spark, X),
            background=bg,
            keys=["id"],
            path=target,
            additivity_threshold=0.0,
            pass_tolerance=0.0,
        )
    report = info.value.report
    assert report.n_over_threshold == failing.size and report.n_rows == ROWS
    # the table's mean |prediction| is summed by Spark in another order: equal to an ulp
    assert report.max_normalized_mismatch == pytest.approx(mismatch.max(), rel=1e-12)
    worst = [r["id"] for r in report.applied["worst_rows"]]
    assert worst == [int(i) for i in np.argsort(-mismatch, kind="stable")[: len(worst)]] or set(
        worst
    ) <= set(failing.tolist())
    assert not target.exists() and not list(tmp_path.glob(".refused.staging-*"))
    names = {
        f.path.split("/")[-1]
        for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "shapgov")
    }
    assert "values.parquet" not in names and "additivity.json" in names


def test_a_model_whose_additivity_fails_on_known_rows_publishes_nothing(
    spark, table, store, tmp_path
):
    """ClippedRegressor caps its predictions; its test plugin decomposes it without the
    cap, so exactly the capped rows fail. The plugin manager travels with the broadcast."""
    import shapgov_testplugin

    from shapgov.registry import make_plugin_manager

    _, X, bg = table
    Xf = X.fillna(0.0)
    y = Xf.x0 + Xf.x1 * Xf.x2
    inner = lgb.LGBMRegressor(n_estimators=30, num_leaves=15, verbose=-1)
    upper = float(np.quantile(inner.fit(Xf, y).predict(Xf), 0.99))
    model = shapgov_testplugin.ClippedRegressor(inner, upper=upper).fit(Xf, y)
    capped = set(np.flatnonzero(model.regressor_.predict(Xf) > upper).tolist())
    pm = make_plugin_manager()
    pm.register(shapgov_testplugin)
    target = tmp_path / "clipped"
    with mlflow.start_run(), pytest.raises(AdditivityError) as info:
        shapgov.spark.explain_and_log(
            model,
            _sdf(spark, Xf),
            background=bg.fillna(0.0),
            keys=["id"],
            path=target,
            plugin_manager=pm,
        )
    report = info.value.report
    worst = {r["id"] for r in report.applied["worst_rows"]}
    assert 0 < report.n_over_threshold <= len(capped) and worst <= capped
    assert not target.exists() and not list(tmp_path.glob(".clipped.staging-*"))
    with pytest.raises(AdditivityError) as local:  # the same verdict in one process
        shapgov.explain(model, Xf, background=bg.fillna(0.0), plugin_manager=pm)
    assert local.value.report.n_over_threshold == report.n_over_threshold


KILLED = """
import os, sys
os.environ["PYSPARK_PYTHON"] = sys.executable
import numpy as np, pandas as pd, lightgbm as lgb, mlflow
from pyspark.sql import SparkSession
import shapgov.spark
spark = (
    SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    .config("spark.sql.execution.arrow.pyspark.enabled", "true")  # the table sent as Arrow
    .getOrCreate()
)
rng = np.random.default_rng(0)
# 50,000 rows: the write runs for seconds on 2 cores, so the kill, 1 s into it, lands
# half way; more rows only lengthen the conversion and the passes before the write
X = pd.DataFrame({f"x{j}": rng.normal(size=50_000) for j in range(8)})
y = (X.x0 * X.x1).iloc[:20000]
model = lgb.LGBMRegressor(n_estimators=100, num_leaves=31, verbose=-1).fit(X.iloc[:20000], y)
mlflow.set_tracking_uri(sys.argv[2])
with mlflow.start_run() as run:
    print(run.info.run_id, flush=True)
    table = spark.createDataFrame(X).repartition(8)
    shapgov.spark.explain_and_log(model, table, background=X.iloc[:50], path=sys.argv[1])
print("finished", flush=True)
"""


def test_a_job_killed_half_way_publishes_nothing_and_logs_no_set(store, tmp_path):
    target = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(target), store],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the JVM and the Python workers die with it
    )
    run_id = proc.stdout.readline().strip()
    deadline = time.time() + 240
    while time.time() < deadline and not list(tmp_path.glob(".killed.staging-*/_temporary")):
        assert proc.poll() is None, "the job ended before it was killed"
        time.sleep(0.2)
    assert list(tmp_path.glob(".killed.staging-*")), "the job never started writing"
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not target.exists()
    client = mlflow.MlflowClient()
    assert client.list_artifacts(run_id, "shapgov") == []  # no set, not even a part of one
    leftovers = list(tmp_path.glob(".killed.staging-*"))
    assert leftovers and all(not (p / "_SUCCESS").exists() for p in leftovers)


def test_the_explaining_model_runs_through_spark_udf(spark, store):
    """The explaining model of issue 13, as MLflow's own Spark UDF: every row's values
    equal shapgov.explain against the served background."""
    from test_serving import _explaining

    model, X, background, info = _explaining(store, top_k=0)
    rows = X.iloc[300:420].reset_index(drop=True)
    udf = mlflow.pyfunc.spark_udf(spark, info.model_uri, env_manager="local")
    sdf = spark.createDataFrame(rows)
    got = sdf.withColumn("served", udf(*rows.columns)).select("served.*").toPandas()
    e = shapgov.explain(model, rows, background=background)
    for j, c in enumerate(rows.columns):
        np.testing.assert_allclose(got[f"shap_{c}"], e.values[:, j], rtol=0, atol=1e-12)


def test_a_categorical_model_runs_through_spark_udf_from_strings(spark, store):
    """Issue 30, item 1: Spark hands the UDF strings (and nulls) for a category column;
    the explaining model recodes them to the model's categories."""
    from test_serving_credit import NAME, _approved_credit, _as_client_sends

    from shapgov.mlflow.serving import log_explaining_model

    X, _, model, background, _ = _approved_credit(store)
    with mlflow.start_run():
        info = log_explaining_model(f"models:/{NAME}@champion", keys=["applicant_id"])
    rows = X.iloc[800:830]
    sent = _as_client_sends(rows)
    sent.loc[2, "purpose"] = None
    udf = mlflow.pyfunc.spark_udf(spark, info.model_uri, env_manager="local")
    sdf = spark.createDataFrame(sent)
    # the UDF names its arguments by the signature's order: the features, then the key
    served = sdf.withColumn("served", udf(*X.columns, "applicant_id"))
    got = served.select("applicant_id", "served.*").toPandas()
    truth = rows.copy()
    truth.loc[truth.index[2], "purpose"] = np.nan
    e = shapgov.explain(model, truth, background=background)
    assert got["applicant_id"].tolist() == list(rows.index)
    for j, c in enumerate(X.columns):
        np.testing.assert_allclose(got[f"shap_{c}"], e.values[:, j], rtol=0, atol=1e-12)


def test_workers_without_shapgov_are_refused_on_the_driver(spark, table, tmp_path):
    """Issue 30, item 11: a driver run from a virtual environment that is not activated
    gets workers whose Python lacks shapgov, and the tasks failed with a raw
    ``ModuleNotFoundError``. The workers here run the same interpreter through a wrapper,
    as PYSPARK_PYTHON would name it (read into ``pythonExec`` when the context starts;
    every job's functions take it from there): ``-S`` skips the ``.pth`` files that put
    the editable shapgov on the path, site-packages stay on PYTHONPATH (pandas, pyarrow),
    and the worker starts outside the checkout. So the tasks meet exactly the issue's
    error, with pyspark's own dependencies present, whatever Python the machine has."""
    import sysconfig

    model, X, bg = table
    wrapper = tmp_path / "python-without-shapgov"
    site = sysconfig.get_paths()["purelib"]
    wrapper.write_text(
        f'#!/bin/sh\ncd "{tmp_path}" || exit 1\n'
        f'PYTHONPATH="$PYTHONPATH:{site}" exec "{sys.executable}" -S "$@"\n'
    )
    wrapper.chmod(0o755)
    hidden = subprocess.run([wrapper, "-c", "import pandas, pyarrow, shapgov"], capture_output=True)
    # what the workers will meet (an editable install, as the test command makes)
    assert b"No module named 'shapgov'" in hidden.stderr, hidden.stderr.decode()
    sc = spark.sparkContext
    told = sc.pythonExec
    sc.pythonExec = str(wrapper)
    try:
        with pytest.raises(WorkerEnvironmentError, match="PYSPARK_PYTHON") as info:
            shapgov.spark.explain(model, _sdf(spark, X.iloc[:50]), background=bg, keys=["id"])
        sc.pythonExec = str(tmp_path / "no-such-python")
        with pytest.raises(WorkerEnvironmentError, match=r"Cannot run program .*no-such-python"):
            shapgov.spark.explain(model, _sdf(spark, X.iloc[:50]), background=bg, keys=["id"])
    finally:
        sc.pythonExec = told
    message = str(info.value)
    assert str(wrapper) in message and "No module named 'shapgov'" in message
    assert "os.environ['PYSPARK_PYTHON'] = sys.executable" in message
