"""Adverse-action reasons served with predictions (issue 32): the explaining model of a
version whose approved set holds reasons serves ``decision``, ``reason_status``,
``reason_1..k`` and ``reason_statement_1..k`` per row, and ``shapgov.spark`` returns the
same columns; served (a real ``mlflow models serve``, JSON and CSV), Spark (a real local
Spark, both ``shapgov.spark.explain`` and MLflow's Spark UDF of the explaining model) and
in-process (``reasons_like_the_set``) reasons are equal, and equal to the set's own
``reasons.parquet`` for the set's rows.

One scorecard (binned inputs and a string ``housing`` column, one-hot in the pipeline) is
explained, logged with its reasons, registered, approved and wrapped once for the module,
and one server answers the module's requests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from stores import use_store
from test_reasons import applicants, catalogue, scorecard
from test_serving import _post, _split, serving

import shapgov
import shapgov.mlflow
import shapgov.spark
from shapgov.adverse_action.stored import read_reasons, reasons_like_the_set
from shapgov.demo import _trusted_types
from shapgov.errors import InputError, UnapprovedModelError
from shapgov.mlflow.serving import log_explaining_model
from shapgov.serving import ServedExplainer, reason_columns

NAME = "scorecard"
KEY = "applicant"
COLUMNS = reason_columns(4)  # the set's max_reasons: the default 4


def _served(frame: pd.DataFrame) -> pd.DataFrame:
    """The reason columns of an answer as they came (positional index)."""
    return frame[COLUMNS].reset_index(drop=True).astype(object)


def _as_served(frame: pd.DataFrame) -> pd.DataFrame:
    """In-process or stored reasons under the served names, as served: empty text where a
    row has fewer reasons (``None`` in process, null in parquet)."""
    renamed = {"status": "reason_status"} | {
        f"statement_{j}": f"reason_statement_{j}" for j in range(1, 5)
    }
    out = _served(frame.rename(columns=renamed))
    return out.where(out.notna(), "")


def _log_model(model):
    return mlflow.sklearn.log_model(
        model, name="model", pip_requirements=["scikit-learn"], **_trusted_types(model)
    )


@pytest.fixture(scope="module")
def approved(module_store, tmp_path_factory):
    """The scorecard's set with its reasons (no stability resamples: not needed here),
    registered, approved (alias champion) and wrapped in an explaining model keyed by
    the applicant ID; the set's folder downloaded."""
    use_store(module_store)
    X, y = applicants(2500, seed=11)
    model, _ = scorecard("scorecard", X, y)
    rows, reference = X.iloc[:200], X.iloc[1000:1300]  # the set's rows, its reference
    spec = dict(
        catalogue=catalogue(), decision=shapgov.Decision(cutoff=0.3), reference=reference,
        stability=0,
    )  # fmt: skip
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(
            model, rows, background=reference, analyses=False, reasons=spec
        )
        info = _log_model(model)
    mv = mlflow.register_model(info.model_uri, NAME)
    assert shapgov.approve(NAME, mv.version, alias="champion").approved
    with mlflow.start_run():
        explaining = log_explaining_model(
            f"models:/{NAME}@champion", keys=[KEY], registered_model_name="scorecard-explained"
        )
    folder = tmp_path_factory.mktemp("set")
    got = mlflow.artifacts.download_artifacts(
        f"runs:/{run.info.run_id}/shapgov", dst_path=str(folder)
    )
    return {
        "X": X, "model": model, "reference": reference, "run_id": run.info.run_id,
        "set": Path(got), "stored": read_reasons(Path(got)), "explaining": explaining,
    }  # fmt: skip


@pytest.fixture(scope="module")
def server(approved, module_store, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving("models:/scorecard-explained/1", module_store, log) as port:
        yield port


def _expected(approved, rows: pd.DataFrame) -> pd.DataFrame:
    """The in-process reasons of ``rows`` derived as the set's were."""
    return _as_served(reasons_like_the_set(approved["model"], rows, approved["stored"]).to_frame())


def _some(approved):
    """Rows of the set and new rows, each with declined rows (one to four reasons) and
    approved ones."""
    X = approved["X"]
    return X.iloc[:40], X.iloc[2000:2040]


def test_the_explaining_model_carries_the_set_reasons_and_serves_them_in_process(approved):
    stored = approved["stored"]
    local = Path(mlflow.artifacts.download_artifacts(approved["explaining"].model_uri))
    config = json.loads(next(local.rglob("config.json")).read_text())
    manifest = json.loads((approved["set"] / "manifest.json").read_text())
    files = config["reasons"]["files"]
    assert set(files) >= {"reasons.json", "reason_catalogue.json", "reason_reference.parquet"}
    assert all(manifest["artifacts"][name] == sha for name, sha in files.items())
    assert config["reasons"]["catalogue"]["sha256"] == catalogue().sha256
    assert config["reasons"]["columns"] == COLUMNS
    served = mlflow.pyfunc.load_model(approved["explaining"].model_uri)
    old, new = _some(approved)
    for rows in (old, new):
        out = served.predict(rows)  # the key held as the index comes back first
        assert out[KEY].tolist() == list(rows.index)
        assert list(out.columns[-len(COLUMNS) :]) == COLUMNS
        expected = _expected(approved, rows)
        assert {"approved", "reasons"} <= set(expected["reason_status"])
        pd.testing.assert_frame_equal(_served(out), expected)
    # the set's own reasons for its rows, with several reasons and approved rows among them
    out = _served(served.predict(old))
    pd.testing.assert_frame_equal(out, _as_served(stored["frame"].iloc[:40]))
    assert (out["reason_2"] != "").any() and not out.isna().any().any()
    # a key may not be named like a reason column
    with pytest.raises(InputError, match="named like the served reason columns"):
        ServedExplainer(
            approved["model"], background=approved["reference"], keys=["decision"], reasons=stored
        )
    # an altered reason file is refused when the model loads
    copy = shutil.copytree(local, local.parent / "altered")
    catalogue_file = next(Path(copy).rglob("reason_catalogue.json"))
    catalogue_file.write_text(catalogue_file.read_text() + "\n")
    with pytest.raises(InputError, match="altered"):
        mlflow.pyfunc.load_model(str(copy))


def test_a_real_server_serves_the_set_reasons_for_json_and_csv(approved, server):
    port = server
    old, new = _some(approved)
    for rows in (old, new):
        sent = rows.reset_index()
        for body, kind in (
            (_split(sent), "application/json"),
            (sent.to_csv(index=False).encode(), "text/csv"),
        ):
            status, payload = _post(port, body, kind)
            assert status == 200, payload
            answer = pd.DataFrame(payload["predictions"])
            assert answer[KEY].tolist() == list(rows.index)
            pd.testing.assert_frame_equal(_served(answer), _expected(approved, rows))
    status, payload = _post(port, _split(old.reset_index()), "application/json")
    pd.testing.assert_frame_equal(
        _served(pd.DataFrame(payload["predictions"])),
        _as_served(approved["stored"]["frame"].iloc[:40]),
    )


def test_spark_gives_the_same_reasons(approved, spark):
    """``shapgov.spark.explain(reasons=the set)`` and MLflow's Spark UDF of the explaining
    model give every row the in-process reasons."""
    old, new = _some(approved)
    rows = pd.concat([old, new])
    sent = rows.reset_index().astype({"housing": object})
    sdf = spark.createDataFrame(sent).repartition(2)
    out = shapgov.spark.explain(
        approved["model"], sdf, background=approved["reference"], keys=[KEY],
        reasons=f"runs:/{approved['run_id']}/shapgov",
    )  # fmt: skip
    got = out.toPandas().set_index(KEY).loc[rows.index]
    expected = _expected(approved, rows)
    pd.testing.assert_frame_equal(_served(got), expected)
    udf = mlflow.pyfunc.spark_udf(spark, approved["explaining"].model_uri, env_manager="local")
    served = sdf.withColumn("served", udf(*approved["X"].columns, KEY))
    got = served.select(KEY, "served.*").toPandas().set_index(KEY).loc[rows.index]
    pd.testing.assert_frame_equal(_served(got), expected)


def test_reason_files_that_are_not_the_manifest_are_refused(approved, tmp_path):
    """A reason file of the set altered after approval: no explaining model is logged from
    it, and Spark refuses a copy of the set with it."""
    path = next(
        Path(mlflow.get_run(approved["run_id"]).info.artifact_uri).glob("shapgov/reasons.json")
    )
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b'"min_share"', b'"min_share" ', 1))
        with (
            mlflow.start_run(),
            pytest.raises(UnapprovedModelError, match=r"reasons\.json differs"),
        ):
            log_explaining_model(f"models:/{NAME}@champion")
    finally:
        path.write_bytes(original)
    copy = Path(shutil.copytree(approved["set"], tmp_path / "set"))
    (copy / "reason_reference.parquet").write_bytes(b"not the file")
    from shapgov.spark.frames import set_reasons

    with pytest.raises(InputError, match="manifest lists"):
        set_reasons(copy)
    assert set_reasons(approved["set"])["summary"]["max_reasons"] == 4


def test_a_set_without_reasons_serves_no_reason_columns(approved):
    X, model, reference = approved["X"], approved["model"], approved["reference"]
    with mlflow.start_run():
        shapgov.mlflow.explain_and_log(model, X.iloc[:50], background=reference, analyses=False)
        info = _log_model(model)
    mv = mlflow.register_model(info.model_uri, "plain-scorecard")
    assert shapgov.approve("plain-scorecard", mv.version).approved
    with mlflow.start_run():
        explaining = log_explaining_model(f"models:/plain-scorecard/{mv.version}")
    out = mlflow.pyfunc.load_model(explaining.model_uri).predict(X.iloc[:5])
    assert not set(COLUMNS) & set(out.columns)
    assert out.columns[-1] == "link"
