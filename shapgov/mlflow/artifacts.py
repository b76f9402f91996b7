"""The shapgov artifact set: files written to a directory, hashed into a manifest.

Layout (under the run's ``shapgov/`` artifact path). Per-row data is parquet; every JSON
file is a summary whose size does not grow with the row count::

    values.parquet            SHAP values, base values, data, per-vertex parts, per-row
                              additivity mismatch, sampled values' standard errors, metadata
    background.parquet        the background rows the game was played against, with their
                              weights (interventional game; shapgov.planning.stored_background)
    vertices.json             explainer and matrix row per vertex
    additivity.json           the additivity report (its per-row mismatch: additivity.parquet)
    feature_impact.json/.csv  SHAP Feature Impact, and feature_impact.png (bar chart)
    prediction_explanations.parquet/.json   top-k features of every row / counts per feature
    permutation_impact.json/.csv                                         (when given)
    xemp.parquet/.json        XEMP strengths and symbols per row / summary per feature
    comparison.parquet/.json  SHAP vs XEMP per row / counts, means, global agreement
    over_time.json/.parquet/.png  explanations over time windows (when a time column was
                              given): every table and rule / one row per window and
                              player / the impact of the top players per window
    fairness.json, fairness_*.parquet   fair-lending checks (when protected attributes were
                        given; the protected table itself only as its SHA-256 and counts)
    reasons.parquet/.json, reason_*   adverse-action reasons of the explained rows (when
                              asked; shapgov.adverse_action.stored lists the files)
    report_figures.parquet    the figures of the report logged with the set, drawn from
                              the files above, which later reports of it embed
                              (shapgov.sinks.report_figures; when logged with its report)
    manifest.json             SHA-256 of every file above and of the explained data,
                              library versions
    report.html, report.json  the compliance report (shapgov.sinks.compliance) and the record
                              that binds it to this manifest

A set is complete only when its manifest is present and every hash matches: the
manifest is logged last, so an interrupted upload leaves a set that approval rejects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shapgov._version import __version__
from shapgov.combination.explanation import Explanation
from shapgov.combination.policy import AdditivityReport
from shapgov.planning.game import frame_sha256
from shapgov.planning.stored_background import FILE as BACKGROUND_FILE
from shapgov.planning.stored_background import write_background
from shapgov.sinks import strict_json
from shapgov.versions import library_versions

SET_VERSION = 2  # 2: per-row data in parquet, JSON summaries
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
    over_time: Any = None,
    reasons: Any = None,
    fairness: Any = None,
    attachments: dict[str, Any] | None = None,
    top_k: int = 3,
    run_id: str | None = None,
    logged_by: dict[str, Any] | None = None,
    before_manifest: Callable[[Path, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Write a complete artifact set for ``explanation`` into ``directory``; returns the
    manifest (also written, last). ``run_id`` names the run the set is for: approval
    refuses a set that was copied into another run. ``over_time`` is an
    :class:`~shapgov.analyses.over_time.OverTime` of the same explanation; ``reasons``
    the :class:`~shapgov.adverse_action.derive.AdverseActionReasons` of its rows;
    ``attachments`` are more JSON documents by file name (``spark.json``: the parts of a
    table explained on Spark), hashed into the manifest like every file. ``logged_by``
    (``{"name", "authenticated"}``) records who logged the set: the review workflow never
    lets that user validate or approve it (:mod:`shapgov.review.actions`).
    ``before_manifest(directory, manifest)`` is called when every file above is written and
    hashed into ``manifest``, before it is written: the files it adds (the report's figures,
    :func:`shapgov.sinks.compliance.write_figures`) are hashed into it too."""
    from shapgov.analyses.impact import shap_impact
    from shapgov.analyses.prediction_explanations import prediction_explanations

    directory.mkdir(parents=True, exist_ok=True)
    explanation.to_parquet(directory / "values.parquet")
    if explanation.background is not None:  # the set alone reproduces the explanation
        write_background(
            directory / BACKGROUND_FILE,
            explanation.background,
            weights=explanation.background_weights,
            sha256=explanation.game.get("background_sha256"),
        )
    _write_json(directory / "vertices.json", [p.meta() for p in explanation.vertices])
    _write_additivity(directory, explanation.additivity)
    impact = shap_impact(explanation)
    _write_json(directory / "feature_impact.json", impact.to_dict())
    impact.frame.to_csv(directory / "feature_impact.csv", index=False)
    _bar_chart(
        impact.frame,
        None if permutation is None else permutation.frame,
        directory / "feature_impact.png",
    )
    k = min(top_k, len(explanation.feature_names))
    pe = prediction_explanations(explanation, k=k)
    write_parquet(directory / "prediction_explanations.parquet", as_stored(pe))
    _write_json(directory / "prediction_explanations.json", pe_summary(pe, k, len(explanation)))
    if permutation is not None:
        _write_json(directory / "permutation_impact.json", permutation.to_dict())
        permutation.frame.drop(columns=["columns"], errors="ignore").to_csv(
            directory / "permutation_impact.csv", index=False
        )
    if xemp is not None:
        write_parquet(directory / "xemp.parquet", xemp.stored_frame())
        _write_json(directory / "xemp.json", xemp.to_dict())
    if comparison is not None:
        write_parquet(directory / "comparison.parquet", comparison.rows)
        _write_json(directory / "comparison.json", comparison.to_dict())
    if over_time is not None:
        _write_over_time(directory, over_time)
    if fairness is not None:
        _write_fairness(directory, fairness)
    if reasons is not None:
        from shapgov.adverse_action.stored import write_reasons

        write_reasons(directory, reasons)
    for name, payload in (attachments or {}).items():
        _write_json(directory / name, payload)
    manifest = {
        "set_version": SET_VERSION,
        "shapgov_version": __version__,
        "created": datetime.now(UTC).isoformat(),
        "run_id": run_id,
        "logged_by": logged_by,
        "status": explanation.additivity.status,
        "rows": len(explanation),
        "data_sha256": data_hash(explanation.data),
        "model_class": explanation.model_class,
        "game": explanation.game,
        "plugins": explanation.plugins,
        "environment": library_versions(
            [explanation.model_class, *(p.estimator_class for p in explanation.vertices)]
        ),
        "artifacts": _hashes(directory),
    }
    if before_manifest is not None:
        before_manifest(directory, manifest)
        manifest["artifacts"] = _hashes(directory)
    _write_json(directory / MANIFEST, manifest)
    return manifest


def _hashes(directory: Path) -> dict[str, str]:
    """SHA-256 of every file in ``directory`` but the manifest."""
    return {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.name != MANIFEST}


def write_failure(
    directory: Path, report: AdditivityReport, *, run_id: str | None = None
) -> dict[str, Any]:
    """The set of a failed additivity check: the diagnostics only, never values."""
    directory.mkdir(parents=True, exist_ok=True)
    _write_additivity(directory, report)
    manifest = {
        "set_version": SET_VERSION,
        "shapgov_version": __version__,
        "created": datetime.now(UTC).isoformat(),
        "run_id": run_id,
        "status": "fail",
        "environment": library_versions(),
        "artifacts": {
            p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.name != MANIFEST
        },
    }
    _write_json(directory / MANIFEST, manifest)
    return manifest


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """One parquet file of ``frame`` (no index), in one row group per 1M rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, row_group_size=1 << 20)


def _write_additivity(directory: Path, report: AdditivityReport) -> None:
    """The additivity summary as JSON, its per-row mismatch as parquet (diagnostics, not
    values: a failed set keeps them too)."""
    _write_json(directory / "additivity.json", report.to_dict(rows=False))
    if report.row_mismatch:
        mismatch = np.asarray(report.row_mismatch, dtype=float)
        write_parquet(
            directory / "additivity.parquet",
            pd.DataFrame({"row": np.arange(mismatch.size), "normalized_mismatch": mismatch}),
        )


def as_stored(pe: pd.DataFrame) -> pd.DataFrame:
    """Prediction Explanations as parquet keeps them: ``value`` as text (one column holds
    every feature's values, of many types; the column's dtype is beside it), missing
    values as null."""
    out = pe.copy()
    value = out["value"].to_numpy(dtype=object)
    missing = pd.isna(out["value"]).to_numpy()
    text = np.empty(len(value), dtype=object)
    text[~missing] = value[~missing].astype(str)
    out["value"] = text
    return out


def pe_summary(pe: pd.DataFrame, k: int, rows: int) -> dict[str, Any]:
    """How often each feature is among a row's top ``k`` (and first), per output."""
    from shapgov.analyses.tables import json_records

    counts = (
        pe.assign(first=pe["rank"] == 1, output=pe["output"].astype(object).fillna("None"))
        .groupby(["output", "feature"], sort=False)
        .agg(
            top_k_rows=("row", "size"),
            first_rows=("first", "sum"),
            mean_abs_shap=("shap", lambda s: float(np.abs(s).mean())),
        )
        .reset_index()
        .sort_values(["output", "top_k_rows"], ascending=[True, False], kind="stable")
    )
    counts["feature"] = counts["feature"].map(str)
    return {"k": k, "rows": rows, "features": json_records(counts)}


#: The fair-lending tables of a set (beside ``fairness.json``, the summary).
FAIRNESS_TABLES = ("groups", "gaps", "proxies")


def _write_fairness(directory: Path, result: Any) -> None:
    """``fairness.json`` (summary: rules, protected SHA-256, group counts, flags) and one
    parquet per table; the protected table itself is not written."""
    _write_json(directory / "fairness.json", result.summary)
    for name in FAIRNESS_TABLES:
        frame = getattr(result, name).copy()
        for col in ("group", "reference"):
            if col in frame.columns:
                frame[col] = frame[col].astype(str)
        write_parquet(directory / f"fairness_{name}.parquet", frame)
    if result.windows is not None:
        from shapgov.sinks.plots import to_png
        from shapgov.sinks.time_plots import air_over_time

        frame = result.windows.copy()
        for col in ("group", "reference"):
            frame[col] = frame[col].astype(str)
        write_parquet(directory / "fairness_windows.parquet", frame)
        threshold = result.summary["rules"]["air_threshold"]
        figure = air_over_time(frame, threshold=threshold)
        (directory / "fairness_over_time.png").write_bytes(to_png(figure))


def _write_over_time(directory: Path, result: Any) -> None:
    from shapgov.sinks.plots import to_png
    from shapgov.sinks.time_plots import impact_over_time

    _write_json(directory / "over_time.json", result.to_dict())
    frame = result.to_frame()
    for c in ("start", "end"):
        frame[c] = frame[c].map(str)  # timestamps or numbers: one text column
    write_parquet(directory / "over_time.parquet", frame)
    figure = impact_over_time(
        result.impact, result.windows["window"].tolist(), flagged=result.flagged_windows
    )
    (directory / "over_time.png").write_bytes(to_png(figure))


#: Features drawn in feature_impact.png; the compliance report embeds that file (drawn
#: once) when it shows the same number of features.
IMPACT_TOP = 15


def _bar_chart(frame: pd.DataFrame, permutation: pd.DataFrame | None, path: Path) -> None:
    """SHAP Feature Impact (and permutation impact beside it, when given) as a PNG."""
    from shapgov.sinks.plots import impact_bar, to_png

    path.write_bytes(to_png(impact_bar(frame, permutation, max_display=IMPACT_TOP)))
