"""The shapgov artifact set: files written to a directory, hashed into a manifest.

Layout (under the run's ``shapgov/`` artifact path)::

    values.parquet            SHAP values, base values, data, per-vertex parts, metadata
    vertices.json             explainer and matrix row per vertex
    additivity.json           the additivity report
    feature_impact.json/.csv  SHAP Feature Impact, and feature_impact.png (bar chart)
    permutation_impact.json/.csv, prediction_explanations.json/.csv,
    xemp.json, comparison.json                               (when given)
    manifest.json             SHA-256 of every file above and of the explained data,
                              library versions
    report.html, report.json  the compliance report (shapgov.sinks.compliance) and the record
                              that binds it to this manifest

A set is complete only when its manifest is present and every hash matches: the
manifest is logged last, so an interrupted upload leaves a set that approval rejects.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from shapgov._version import __version__
from shapgov.combination.explanation import Explanation
from shapgov.combination.policy import AdditivityReport
from shapgov.planning.game import frame_sha256
from shapgov.sinks import strict_json
from shapgov.versions import library_versions

SET_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED = ("values.parquet", "vertices.json", "additivity.json", "feature_impact.json")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: SHA-256 of the explained rows (values and column names, not the index).
data_hash = frame_sha256


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(strict_json.dumps(payload, indent=2, sort_keys=True))


def write_set(
    directory: Path,
    explanation: Explanation,
    *,
    permutation: Any = None,
    xemp: Any = None,
    comparison: Any = None,
    top_k: int = 3,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Write a complete artifact set for ``explanation`` into ``directory``; returns the
    manifest (also written, last). ``run_id`` names the run the set is for: approval
    refuses a set that was copied into another run."""
    from shapgov.analyses.impact import shap_impact
    from shapgov.analyses.prediction_explanations import as_records, prediction_explanations

    directory.mkdir(parents=True, exist_ok=True)
    explanation.to_parquet(directory / "values.parquet")
    _write_json(directory / "vertices.json", [p.meta() for p in explanation.vertices])
    _write_json(directory / "additivity.json", explanation.additivity.to_dict())
    impact = shap_impact(explanation)
    _write_json(directory / "feature_impact.json", impact.to_dict())
    impact.frame.to_csv(directory / "feature_impact.csv", index=False)
    _bar_chart(impact.frame, directory / "feature_impact.png")
    k = min(top_k, len(explanation.feature_names))
    pe = prediction_explanations(explanation, k=k)
    _write_json(directory / "prediction_explanations.json", as_records(pe))
    pe.to_csv(directory / "prediction_explanations.csv", index=False)
    if permutation is not None:
        _write_json(directory / "permutation_impact.json", permutation.to_dict())
        permutation.frame.drop(columns=["columns"], errors="ignore").to_csv(
            directory / "permutation_impact.csv", index=False
        )
    if xemp is not None:
        _write_json(directory / "xemp.json", xemp.to_dict())
    if comparison is not None:
        _write_json(directory / "comparison.json", comparison.to_dict())
    manifest = {
        "set_version": SET_VERSION,
        "shapgov_version": __version__,
        "created": datetime.now(UTC).isoformat(),
        "run_id": run_id,
        "status": explanation.additivity.status,
        "rows": len(explanation),
        "data_sha256": data_hash(explanation.data),
        "model_class": explanation.model_class,
        "game": explanation.game,
        "plugins": explanation.plugins,
        "environment": library_versions(
            [explanation.model_class, *(p.estimator_class for p in explanation.vertices)]
        ),
        "artifacts": {
            p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.name != MANIFEST
        },
    }
    _write_json(directory / MANIFEST, manifest)
    return manifest


def write_failure(
    directory: Path, report: AdditivityReport, *, run_id: str | None = None
) -> dict[str, Any]:
    """The set of a failed additivity check: the diagnostics only, never values."""
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(directory / "additivity.json", report.to_dict())
    manifest = {
        "set_version": SET_VERSION,
        "shapgov_version": __version__,
        "created": datetime.now(UTC).isoformat(),
        "run_id": run_id,
        "status": "fail",
        "environment": library_versions(),
        "artifacts": {"additivity.json": sha256_file(directory / "additivity.json")},
    }
    _write_json(directory / MANIFEST, manifest)
    return manifest


def _bar_chart(frame: pd.DataFrame, path: Path, top: int = 20) -> None:
    from shapgov.sinks.plots import impact_bar, to_png

    path.write_bytes(to_png(impact_bar(frame, max_display=top)))
