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
# Two xdist workers share two cores: OpenMP threads (LightGBM's, scikit-learn's) that spin
# while they wait starve the other worker's. Sleeping instead took the Kernel-sampling and
# odd-regression tests from 40-66 s to 31 s on the 2-core machine; set here, before any
# OpenMP runtime loads, so the workers (spawned later) inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

from stores import new_store  # noqa: E402 (tests/ is on the path from here on)


@pytest.fixture(scope="session")
def spark():
    """One local Spark (2 cores) for the whole run: its JVM and Python workers start once."""
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers run this interpreter
    # workers import the test plugin (shapgov_testplugin) by name, as the driver does
    paths = [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("shapgov-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "500")  # several batches
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    """Diabetes data with 'sex' as a categorical column (for one-hot pipelines)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.copy()
    X["sex"] = np.where(X["sex"] > 0, "male", "female")
    return X, y


@pytest.fixture(scope="session", autouse=True)
def _checkout_stays_clean():
    """Nothing a test writes lands at the top of the checkout (an ``mlruns`` there means
    a store was made while the working directory was the checkout's: give it a folder)."""
    before = {p.name for p in TESTS.parent.iterdir()}
    yield
    added = sorted({p.name for p in TESTS.parent.iterdir()} - before)
    if added:
        raise RuntimeError(f"the tests wrote {added} into the checkout {TESTS.parent}")


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
    """A real MLflow tracking and registry store for one test (see :func:`new_store`);
    yields its URI."""
    import mlflow

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    yield new_store(_store_template, tmp_path)
    if mlflow.active_run():
        mlflow.end_run()


@pytest.fixture(scope="module")
def module_store(tmp_path_factory, _store_template):
    """One store shared by a module's tests that read what its module fixtures logged
    (each test registers its own names); module fixtures call :func:`use_store` on it
    before they log, since other tests may have pointed MLflow elsewhere. Yields its URI."""
    import mlflow

    folder = tmp_path_factory.mktemp("module-store")
    with pytest.MonkeyPatch.context() as mp:
        # MLflow resolves the artifact root of experiments made later (./mlruns, e.g. the
        # CLI's) against the working directory of a store's first use: its folder, not
        # the checkout (module fixtures start before a test's own temp dir)
        mp.chdir(folder)
        uri = new_store(_store_template, folder)
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
