"""Real MLflow sqlite stores for tests, made fast: one database migrated by MLflow per
session (``conftest._store_template``), copied for each store."""

from __future__ import annotations

from pathlib import Path


def new_store(template: Path, folder: Path, experiment: str = "shapgov-tests") -> str:
    """A real MLflow tracking and registry store in ``folder``: a copy of the session's
    freshly migrated database, with its Default experiment and ``experiment`` keeping their
    artifacts under ``folder/mlruns`` (where MLflow would put them, whatever the working
    directory); points MLflow at it and returns its URI."""
    import shutil
    import sqlite3

    import mlflow

    shutil.copyfile(template, folder / "mlflow.db")
    with sqlite3.connect(folder / "mlflow.db") as db:
        db.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
            (str(folder / "mlruns" / "0"),),
        )
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient()
    client.create_experiment(experiment, artifact_location=str(folder / "mlruns" / experiment))
    mlflow.set_experiment(experiment)
    return uri


def use_store(uri: str, experiment: str = "shapgov-tests") -> None:
    """Point MLflow (tracking, registry, active experiment) at a store made by
    :func:`new_store` again, e.g. in a module fixture set up after other tests moved it."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment)
