"""Artifact sets logged to a real MLflow tracking store (sqlite in a temp dir), and
registry approval against it."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shapgov
from shapgov.combination.explanation import Explanation
from shapgov.errors import AdditivityError
from shapgov.mlflow.artifacts import MANIFEST, sha256_file

# Requirements declared up front: inferring them loads each model in a subprocess (~5 s).
SKLEARN = ["scikit-learn"]


def _model():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return make_pipeline(StandardScaler(), Ridge()).fit(X, y), X, y


def _download(run_id, tmp_path):
    return mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="shapgov", dst_path=str(tmp_path / run_id)
    )


def test_every_artifact_is_present_parses_round_trips_and_matches_its_hash(store, tmp_path):
    import pandas as pd

    model, X, y = _model()
    with mlflow.start_run() as run:
        e = shapgov.explain(model, X.iloc[:40], background=X)
        perm = shapgov.permutation_impact(model, X, y, n_repeats=2)
        manifest = shapgov.mlflow.log_explanation(e, permutation=perm, seconds=1.5)
    local = _download(run.info.run_id, tmp_path)
    from pathlib import Path

    local = Path(local)
    files = {p.name for p in local.iterdir()}
    assert set(manifest["artifacts"]) | {MANIFEST, "report.html", "report.json"} == files
    for name, digest in manifest["artifacts"].items():
        assert sha256_file(local / name) == digest
        if name.endswith(".json"):
            json.loads((local / name).read_text())
        elif name.endswith(".csv"):
            assert len(pd.read_csv(local / name)) > 0
        elif name.endswith(".parquet"):
            assert len(pd.read_parquet(local / name)) > 0
    back = Explanation.read_parquet(local / "values.parquet")
    assert np.array_equal(back.values, e.values) and back.additivity == e.additivity
    impact = json.loads((local / "feature_impact.json").read_text())
    assert impact["features"][0]["normalized"] == 100.0
    assert (local / "feature_impact.png").read_bytes()[:4] == b"\x89PNG"
    finished = mlflow.get_run(run.info.run_id)
    assert finished.data.tags["shapgov.status"] == "pass"
    assert finished.data.tags["shapgov.explainers.base"] == "linear"
    assert finished.data.metrics["shapgov.rows"] == 40
    assert finished.data.metrics["shapgov.seconds"] == 1.5


def test_additivity_failure_logs_diagnostics_and_no_values(store, tmp_path, test_plugin):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    upper = float(np.quantile(Ridge().fit(X, y).predict(X), 0.9))
    clipped = test_plugin.ClippedRegressor(Ridge(), upper=upper).fit(X, y)
    with mlflow.start_run() as run, pytest.raises(AdditivityError):
        shapgov.mlflow.explain_and_log(clipped, X)
    from pathlib import Path

    local = Path(_download(run.info.run_id, tmp_path))
    files = {p.name for p in local.iterdir()}
    expected = {"additivity.json", "additivity.parquet", MANIFEST, "report.html", "report.json"}
    assert files == expected
    assert json.loads((local / "additivity.json").read_text())["status"] == "fail"
    import pandas as pd

    rows = pd.read_parquet(local / "additivity.parquet")  # diagnostics only, never values
    assert list(rows.columns) == ["row", "normalized_mismatch"] and len(rows) == len(X)
    assert rows["normalized_mismatch"].max() > 0.01
    assert mlflow.get_run(run.info.run_id).data.tags["shapgov.status"] == "fail"


def _register(store, tmp_path, *, tamper=None, skip_manifest=False):
    model, X, _ = _model()
    with mlflow.start_run() as run:
        e = shapgov.explain(model, X.iloc[:30], background=X)
        if skip_manifest:  # an interrupted upload: everything but the manifest
            from pathlib import Path

            from shapgov.mlflow.artifacts import write_set

            out = Path(tmp_path / "partial")
            write_set(out, e)
            (out / MANIFEST).unlink()
            mlflow.log_artifacts(str(out), "shapgov")
        else:
            shapgov.mlflow.log_explanation(e)
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=SKLEARN)
    if tamper:
        # change bytes of a logged artifact after the fact, in the run's artifact store
        from pathlib import Path
        from urllib.parse import urlparse

        root = Path(urlparse(mlflow.get_run(run.info.run_id).info.artifact_uri).path)
        target = root / "shapgov" / tamper
        target.write_bytes(target.read_bytes() + b" ")  # still parses; bytes differ
    mv = mlflow.register_model(info.model_uri, "diabetes")
    return mv


def test_approval_approves_a_good_version_and_sets_the_alias(store, tmp_path):
    from shapgov.mlflow.approval import approve

    mv = _register(store, tmp_path)
    result = approve("diabetes", mv.version, alias="champion")
    assert result.approved, result.reasons
    client = mlflow.tracking.MlflowClient()
    tags = client.get_model_version("diabetes", mv.version).tags
    assert tags["shapgov.approval"] == "approved"
    assert client.get_model_version_by_alias("diabetes", "champion").version == mv.version
    again = approve("diabetes", mv.version, alias="champion")  # idempotent
    assert again.approved


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("tampered", "tampered"), ("no-manifest", "no manifest"), ("no-set", "no shapgov")],
)
def test_approval_rejects_with_its_reason(store, tmp_path, kind, reason):
    from shapgov.mlflow.approval import approve

    if kind == "tampered":
        mv = _register(store, tmp_path, tamper="vertices.json")
    elif kind == "no-manifest":
        mv = _register(store, tmp_path, skip_manifest=True)
    else:
        model, _, _ = _model()
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=SKLEARN)
        mv = mlflow.register_model(info.model_uri, "diabetes")
    result = approve("diabetes", mv.version, alias="champion")
    assert not result.approved and any(reason in r for r in result.reasons)
    client = mlflow.tracking.MlflowClient()
    tags = client.get_model_version("diabetes", mv.version).tags
    assert tags["shapgov.approval"] == "rejected" and reason in tags["shapgov.approval.reasons"]
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias("diabetes", "champion")


def test_cli_exits_nonzero_on_rejection(store, tmp_path):
    from shapgov.cli import main

    good = _register(store, tmp_path)
    ok = CliRunner().invoke(
        main, ["approve", "diabetes", str(good.version), "--tracking-uri", store]
    )
    assert ok.exit_code == 0, ok.output
    bad = _register(store, tmp_path, tamper="additivity.json")
    out = CliRunner().invoke(
        main, ["approve", "diabetes", str(bad.version), "--tracking-uri", store]
    )
    assert out.exit_code == 1 and "rejected" in out.output


def test_approval_rejects_a_vertex_without_a_supported_matrix_row(store, tmp_path):
    from sklearn.svm import SVR

    from shapgov.mlflow.approval import approve

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5]
    model = make_pipeline(StandardScaler(), SVR()).fit(X, y)  # a Kernel fallback vertex
    with mlflow.start_run():
        e = shapgov.explain(model, X.iloc[:5], background=X.iloc[::40])
        shapgov.mlflow.log_explanation(e)
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=SKLEARN)
    mv = mlflow.register_model(info.model_uri, "svr")
    result = approve("svr", mv.version)
    assert not result.approved
    assert any("no compatibility-matrix row" in r for r in result.reasons)


def _log_one(args):
    uri, seed = args
    import os

    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import mlflow as m

    import shapgov.mlflow

    m.set_tracking_uri(uri)
    m.set_experiment("shapgov-tests")
    model, X, _ = _model()
    with m.start_run() as run:
        e = shapgov.explain(model, X.iloc[seed : seed + 20], background=X)
        shapgov.mlflow.log_explanation(e)
    return run.info.run_id


def test_four_processes_log_into_one_sqlite_store_at_once(store, tmp_path):
    import multiprocessing as mp

    from shapgov.mlflow.approval import check_run

    mlflow.set_experiment("shapgov-tests")  # create the store's tables first
    with mp.get_context("spawn").Pool(4) as pool:
        run_ids = pool.map(_log_one, [(store, 20 * i) for i in range(4)])
    assert len(set(run_ids)) == 4
    for run_id in run_ids:
        assert mlflow.get_run(run_id).data.tags["shapgov.status"] == "pass"
        assert check_run(run_id).approved


@pytest.mark.parametrize("flavor", ["sklearn", "lightgbm", "pyfunc"])
def test_evaluate_with_the_shapgov_evaluator_logs_the_set(store, tmp_path, flavor):
    import lightgbm

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6]
    data = X.assign(target=y)
    with mlflow.start_run() as run:
        if flavor == "lightgbm":
            model = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(X, y)
            info = mlflow.lightgbm.log_model(model, name="model", pip_requirements=["lightgbm"])
        else:
            model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
            if flavor == "sklearn":
                info = mlflow.sklearn.log_model(model, name="model", pip_requirements=SKLEARN)
            else:

                class Wrapped(mlflow.pyfunc.PythonModel):
                    def __init__(self, inner):
                        self.inner = inner

                    def predict(self, context, model_input: pd.DataFrame):
                        return self.inner.predict(model_input)

                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=Wrapped(model),
                    input_example=X.iloc[:2],
                    pip_requirements=SKLEARN,
                )
        mlflow.models.evaluate(
            info.model_uri,
            data,
            targets="target",
            model_type="regressor",
            evaluators=["shapgov"],
            evaluator_config={"shapgov": {"sample": 30, "background": 40}},
        )
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["shapgov.status"] == "pass"
    expected = {"sklearn": "linear", "lightgbm": "tree", "pyfunc": "kernel"}[flavor]
    assert tags["shapgov.explainers.base"] == expected
    from shapgov.mlflow.approval import check_run

    assert check_run(run.info.run_id).approved


def test_a_crash_while_building_the_set_logs_nothing(store, monkeypatch):
    import shapgov.mlflow.artifacts as artifacts
    import shapgov.sinks.compliance as compliance

    model, X, _ = _model()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    with mlflow.start_run() as run:
        e = shapgov.explain(model, X.iloc[:10], background=X)
    for where in (artifacts, compliance):  # midway through the set; in its report
        with monkeypatch.context() as patch:
            patch.setattr(where, "_png" if where is compliance else "_bar_chart", broken)
            with pytest.raises(RuntimeError, match="disk full"):
                shapgov.mlflow.log_explanation(e, run_id=run.info.run_id)
    client = mlflow.tracking.MlflowClient()
    assert client.list_artifacts(run.info.run_id) == []
    assert "shapgov.status" not in mlflow.get_run(run.info.run_id).data.tags


def test_approval_rejects_a_failed_additivity_run(store, test_plugin):
    from shapgov.mlflow.approval import approve

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    upper = float(np.quantile(Ridge().fit(X, y).predict(X), 0.9))
    clipped = test_plugin.ClippedRegressor(Ridge(), upper=upper).fit(X, y)
    with mlflow.start_run():
        with pytest.raises(AdditivityError):
            shapgov.mlflow.explain_and_log(clipped, X)
        info = mlflow.sklearn.log_model(
            clipped,
            name="model",
            skops_trusted_types=["shapgov_testplugin.ClippedRegressor"],
            pip_requirements=SKLEARN,
        )
    mv = mlflow.register_model(info.model_uri, "clipped")
    result = shapgov.approve("clipped", mv.version)
    assert not result.approved
    assert any("additivity status is 'fail'" in r for r in result.reasons)
    assert approve("clipped", mv.version).reasons == result.reasons


def test_json_artifacts_stay_small_whatever_the_row_count(tmp_path):
    """Per-row data is parquet; every JSON file of the set is a summary (issue 16)."""
    import lightgbm
    from sklearn.datasets import make_regression

    from shapgov.analyses.compare import compare_shap_xemp
    from shapgov.analyses.exemplars import xemp
    from shapgov.analyses.impact import permutation_impact
    from shapgov.mlflow.artifacts import write_set

    X, y = make_regression(n_samples=3000, n_features=8, random_state=0)
    X = pd.DataFrame(X, columns=[f"f{j}" for j in range(8)])
    model = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(X, y)
    sizes = {}
    for n in (150, 3000):
        rows = X.iloc[:n]
        e = shapgov.explain(model, rows)
        strengths = xemp(model, rows, training=X)
        manifest = write_set(
            tmp_path / str(n),
            e,
            permutation=permutation_impact(model, rows, y[:n]),
            xemp=strengths,
            comparison=compare_shap_xemp(e, strengths),
        )
        sizes[n] = {
            name: (tmp_path / str(n) / name).stat().st_size
            for name in manifest["artifacts"]
            if name.endswith(".json")
        }
        assert {"xemp.parquet", "comparison.parquet", "additivity.parquet"} <= set(
            manifest["artifacts"]
        )
        assert len(pd.read_parquet(tmp_path / str(n) / "comparison.parquet")) == n
    assert set(sizes[150]) == set(sizes[3000])
    for name, small in sizes[150].items():
        assert sizes[3000][name] <= small + 600, name  # digits, not rows
