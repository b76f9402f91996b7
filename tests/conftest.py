from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on PyTorch: no TensorFlow needed
TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))


@pytest.fixture(scope="session")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    """Diabetes data with 'sex' as a categorical column (for one-hot pipelines)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.copy()
    X["sex"] = np.where(X["sex"] > 0, "male", "female")
    return X, y


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """Every test runs in its own temp dir: what MLflow writes next to the working
    directory (./mlruns artifacts of sqlite stores) never lands in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def _store_template(tmp_path_factory) -> Path:
    """One MLflow sqlite database with every tracking and registry table created and
    migrated by MLflow itself; each test's ``store`` starts from a copy of it (MLflow's
    schema migrations cost about 0.8 s a store, a copy 0.03 s)."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("store-template")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments()  # creates the tracking tables and the Default experiment
    client.search_registered_models()  # the registry's
    return folder / "mlflow.db"


@pytest.fixture
def store(tmp_path, monkeypatch, _store_template):
    """A real MLflow tracking and registry store: sqlite in a temp dir (a copy of the
    session's freshly migrated database, the Default experiment's artifacts under this
    test's ``mlruns``, as MLflow would have put them); yields its URI."""
    import shutil
    import sqlite3

    import mlflow

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    shutil.copyfile(_store_template, tmp_path / "mlflow.db")
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        db.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
            (str(tmp_path / "mlruns" / "0"),),
        )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("shapgov-tests")
    yield uri
    if mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def test_plugin(tmp_path, monkeypatch):
    """Install tests/shapgov_testplugin.py through a real ``shapgov`` entry point."""
    from shapgov.registry import reset_plugin_manager

    dist = tmp_path / "shapgov_testplugin-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: shapgov-testplugin\nVersion: 0.0\n"
    )
    (dist / "entry_points.txt").write_text("[shapgov]\ntestplugin = shapgov_testplugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    reset_plugin_manager()
    yield importlib.import_module("shapgov_testplugin")
    monkeypatch.undo()
    importlib.invalidate_caches()
    reset_plugin_manager()
