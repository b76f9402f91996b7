"""shapgov autologging composed with MLflow's, on real fits and a real sqlite store."""

from __future__ import annotations

import warnings

import lightgbm
import mlflow
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shapgov.mlflow
from shapgov.errors import InputError


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("autolog")
    yield
    shapgov.mlflow.autolog(disable=True)
    mlflow.sklearn.autolog(disable=True)
    mlflow.lightgbm.autolog(disable=True)
    if mlflow.active_run():
        mlflow.end_run()


def test_pipeline_fit_under_autolog_logs_the_set_in_the_fit_run(store):
    mlflow.sklearn.autolog(log_models=False)
    shapgov.mlflow.autolog(sample=40, background=40)
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    make_pipeline(StandardScaler(), Ridge()).fit(X, y)  # MLflow opens and closes a run
    run = mlflow.last_active_run()
    assert run.data.tags["shapgov.status"] == "pass"
    assert run.data.tags["shapgov.explainers.base"] == "linear"
    assert run.data.metrics["shapgov.rows"] == 40


def test_lgbm_classifier_fit_inside_an_active_run(store):
    mlflow.lightgbm.autolog(log_models=False)
    shapgov.mlflow.autolog(sample=30, background=30)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    with mlflow.start_run() as run:
        lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["shapgov.status"] == "pass" and tags["shapgov.explainers.base"] == "tree"


def _set_files(run_id: str) -> set[str]:
    return {
        f.path.rsplit("/", 1)[-1] for f in mlflow.MlflowClient().list_artifacts(run_id, "shapgov")
    }


def test_autolog_adds_only_the_cheap_analyses_unless_asked(store):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    shapgov.mlflow.autolog(sample=30, background=30)
    with mlflow.start_run() as light:
        lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)
    files = _set_files(light.info.run_id)
    assert {"values.parquet", "prediction_explanations.parquet", "report.html"} <= files
    assert not files & {"xemp.parquet", "comparison.parquet", "permutation_impact.json"}
    shapgov.mlflow.autolog(sample=30, background=30, analyses=("xemp", "comparison"))
    with mlflow.start_run() as asked:
        lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)
    files = _set_files(asked.info.run_id)
    assert {"xemp.parquet", "xemp.json", "comparison.parquet", "comparison.json"} <= files
    assert "permutation_impact.json" not in files
    with pytest.raises(InputError, match="needs XEMP"):
        shapgov.mlflow.autolog(analyses=("comparison",))
    with pytest.raises(InputError, match="unknown analyses"):
        shapgov.mlflow.autolog(analyses=("shapley",))


def test_a_failing_explanation_never_breaks_fit(store):
    shapgov.mlflow.autolog(explain_options={"output": "bogus"})
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    with mlflow.start_run() as run, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = Ridge().fit(X, y)
    assert hasattr(model, "coef_")  # fit completed
    assert any("shapgov autologging could not explain" in str(w.message) for w in caught)
    assert "shapgov.status" not in mlflow.get_run(run.info.run_id).data.tags
    shapgov.mlflow.autolog(disable=True)
    with mlflow.start_run() as quiet:
        Ridge().fit(X, y)
    assert "shapgov.status" not in mlflow.get_run(quiet.info.run_id).data.tags
