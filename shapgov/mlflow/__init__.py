"""shapgov inside MLflow: log explanation artifact sets to runs.

``import shapgov.mlflow`` imports mlflow; nothing else in shapgov does.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from shapgov.additivity import AdditivityReport
from shapgov.mlflow.artifacts import MANIFEST, write_failure, write_set

ARTIFACT_PATH = "shapgov"

__all__ = ["ARTIFACT_PATH", "autolog", "explain_and_log", "log_explanation", "log_failure"]


def autolog(**options: Any) -> None:
    """See :func:`shapgov.mlflow.autologging.autolog`."""
    from shapgov.mlflow.autologging import autolog as _autolog

    _autolog(**options)


def _run_id(run_id: str | None) -> str:
    import mlflow

    if run_id is not None:
        return run_id
    run = mlflow.active_run()
    if run is None:
        from shapgov.errors import InputError

        raise InputError("no active MLflow run; start one (mlflow.start_run()) or pass run_id=")
    return run.info.run_id


def _upload(run_id: str, directory: Path) -> None:
    """Every file but the manifest, then the manifest: a set without its manifest is
    incomplete by definition, so an interrupted upload is never mistaken for a set."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    for path in sorted(directory.iterdir()):
        if path.name != MANIFEST:
            client.log_artifact(run_id, str(path), ARTIFACT_PATH)
    client.log_artifact(run_id, str(directory / MANIFEST), ARTIFACT_PATH)


def log_explanation(
    explanation: Any,
    *,
    run_id: str | None = None,
    permutation: Any = None,
    xemp: Any = None,
    comparison: Any = None,
    seconds: float | None = None,
    top_k: int = 3,
) -> dict[str, Any]:
    """Log the artifact set of ``explanation`` to a run (the active one by default).

    Also logs metrics (``shapgov.max_normalized_mismatch``, ``shapgov.mean_normalized_mismatch``,
    ``shapgov.rows``, ``shapgov.seconds``) and tags (``shapgov.status``,
    ``shapgov.explainers``, ``shapgov.version``) in one batch, after the artifacts.
    :returns: The manifest.
    """
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    from shapgov._version import __version__

    rid = _run_id(run_id)
    with tempfile.TemporaryDirectory(prefix="shapgov-") as tmp:
        manifest = write_set(
            Path(tmp),
            explanation,
            permutation=permutation,
            xemp=xemp,
            comparison=comparison,
            top_k=top_k,
        )
        _upload(rid, Path(tmp))
    report = explanation.additivity
    now = int(time.time() * 1000)
    metrics = [
        Metric("shapgov.max_normalized_mismatch", report.max_normalized_mismatch, now, 0),
        Metric("shapgov.mean_normalized_mismatch", report.mean_normalized_mismatch, now, 0),
        Metric("shapgov.rows", float(len(explanation)), now, 0),
    ]
    if seconds is not None:
        metrics.append(Metric("shapgov.seconds", float(seconds), now, 0))
    explainers = sorted(set(explanation.explainers.values()))
    tags = [
        RunTag("shapgov.status", report.status),
        RunTag("shapgov.explainers", ",".join(explainers)),
        RunTag("shapgov.version", __version__),
    ]
    MlflowClient().log_batch(rid, metrics=metrics, tags=tags)
    return manifest


def log_failure(report: AdditivityReport, *, run_id: str | None = None) -> dict[str, Any]:
    """Log a failed additivity check: its diagnostics and ``shapgov.status = fail``."""
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    from shapgov._version import __version__

    rid = _run_id(run_id)
    with tempfile.TemporaryDirectory(prefix="shapgov-") as tmp:
        manifest = write_failure(Path(tmp), report)
        _upload(rid, Path(tmp))
    now = int(time.time() * 1000)
    MlflowClient().log_batch(
        rid,
        metrics=[Metric("shapgov.max_normalized_mismatch", report.max_normalized_mismatch, now, 0)],
        tags=[RunTag("shapgov.status", "fail"), RunTag("shapgov.version", __version__)],
    )
    return manifest


def explain_and_log(model: Any, X: Any, *, run_id: str | None = None, **options: Any) -> Any:
    """:func:`shapgov.explain` and log the result; on an additivity failure, log the
    diagnostics (no values) and re-raise."""
    from shapgov.engine import explain
    from shapgov.errors import AdditivityError

    start = time.perf_counter()
    try:
        e = explain(model, X, **options)
    except AdditivityError as err:
        log_failure(err.report, run_id=run_id)
        raise
    log_explanation(e, run_id=run_id, seconds=time.perf_counter() - start)
    return e
