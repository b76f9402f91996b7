"""``shapgov.spark.explain_and_log``: the additivity policy at any size, on Spark.

1. The values are written as Parquet to a **staging** directory beside ``path``
   (``.<name>.staging-<id>``), computed once.
2. The whole table is judged **in Spark** from the staged files: rows, max and mean
   normalized mismatch, rows per status, and SHAP Feature Impact (mean |SHAP| per
   feature); one row of aggregates reaches the driver, never the values.
3. Any row over the threshold: the staging directory is deleted, nothing is published,
   the diagnostics (with the keys of the worst rows) are logged as a failure set and
   :class:`~shapgov.errors.AdditivityError` is raised: the same rule as in one process.
4. Otherwise the staging directory is **renamed** to ``path`` (atomic on one file
   system), every Parquet part is hashed (SHA-256) and counted, a seeded sample of at most
   ``sample`` rows is explained in the driver for Prediction Explanations, XEMP and the
   report, and the set is logged with ``spark.json``: the parts, the table's verdict and
   Feature Impact. Approval verifies every part (:mod:`shapgov.mlflow.approval`).

A job killed before the rename leaves only a staging directory (never read, never
published) and no set; the manifest is uploaded last, so a kill during the upload leaves
no set either. ``path`` must be on a file system this process can read and rename in
(local disk, or a cluster's shared mount such as ``/dbfs/...``).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from shapgov.errors import AdditivityError, InputError
from shapgov.mlflow.artifacts import sha256_file
from shapgov.spark.batches import ABS_MISMATCH, MISMATCH, STATUS

#: The set's document of a table explained on Spark.
SPARK_DOCUMENT = "spark.json"
#: Where a small table's parts are uploaded in the run, beside the set.
TABLE_ARTIFACTS = "shapgov-table"
#: Tables up to this many bytes are uploaded to the run too; larger ones are referenced.
UPLOAD_LIMIT = 64 << 20
_LISTED_KEYS = 20


@dataclass(frozen=True)
class PublishedTable:
    """What :func:`explain_and_log` published: ``path``, ``rows``, ``parts`` (name,
    sha256, rows, bytes), the table's ``additivity`` figures, its SHAP ``feature_impact``
    and the driver-side ``sample`` :class:`~shapgov.Explanation`."""

    path: Path
    rows: int
    parts: list[dict[str, Any]]
    additivity: dict[str, Any]
    feature_impact: pd.DataFrame
    sample: Any = field(default=None, repr=False)


def local_path(path: str | os.PathLike[str]) -> Path:
    """``path`` (or a ``file://`` URI) as a local path.

    :raises InputError: Another scheme (hdfs://, s3://): not supported yet.
    """
    text = os.fspath(path)
    if "://" in text:
        if not text.startswith("file://"):
            raise InputError(
                f"{text}: shapgov publishes to a file system it can rename in (a local path, "
                "file://, or a shared mount such as /dbfs/...); other schemes are not "
                "supported yet"
            )
        text = text[len("file://") :]
    return Path(text).absolute()


def explain_and_log(
    model: Any,
    sdf: Any,
    *,
    path: str | os.PathLike[str],
    background: Any = None,
    keys: Sequence[str] = (),
    run_id: str | None = None,
    sample: int = 1000,
    analyses: bool = True,
    random_state: int = 0,
    capping: tuple[float | None, float | None] | None = None,
    report: bool = True,
    upload_limit: int = UPLOAD_LIMIT,
    reasons: Any = None,
    **options: Any,
) -> PublishedTable:
    """Explain every row of ``sdf`` on Spark and publish the values only if the additivity
    policy allows (see the module docstring).

    :param path: Where the values are published (a directory of Parquet parts); must not
        exist: published values are never overwritten.
    :param sample: Rows explained in the driver for the set (Prediction Explanations,
        XEMP with the background as exemplars, the report); seeded by ``random_state``.
    :param analyses: Also XEMP and the SHAP-vs-XEMP comparison on the sample.
    :param upload_limit: A table of at most this many bytes is also uploaded to the run
        (``shapgov-table/``, each part's ``uri`` a ``runs:/`` URI); a larger one is
        referenced by its ``file://`` URIs. Either way every part's SHA-256 is listed.
    :param reasons: An approved set's adverse-action reasons (as in
        :func:`shapgov.spark.explain`): the published parts carry every row's reason
        columns too (the driver's sample set holds none).
    :param options: As in :func:`shapgov.spark.explain` (``background=``, ``keys=``,
        ``output=``, ``additivity_threshold=``, ...).
    :returns: :class:`PublishedTable`.
    :raises AdditivityError: A row is over the threshold: nothing published, diagnostics
        logged.
    :raises InputError: ``path`` exists or is not local; bad options or data.
    """
    from shapgov.mlflow import _run_id
    from shapgov.spark.frames import explain

    target = local_path(path)
    if target.exists():
        raise InputError(
            f"{target} exists; published values are never overwritten, choose a new path"
        )
    rid = _run_id(run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.staging-{uuid.uuid4().hex}"
    started = time.perf_counter()
    out = explain(
        model, sdf, background=background, keys=keys, capping=capping, reasons=reasons, **options
    )
    out.write.parquet(str(staging))
    try:
        figures, impact = _judge(sdf.sparkSession, staging, keys, options)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if figures["status"] == "fail":
        shutil.rmtree(staging, ignore_errors=True)
        _log_refusal(figures, rid, report)
    os.rename(staging, target)  # publish: one rename
    parts = part_list(target)
    if sum(p["bytes"] for p in parts) <= upload_limit:
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        for p in parts:  # before the set: a set's manifest is always the last upload
            client.log_artifact(rid, str(target / p["name"]), TABLE_ARTIFACTS)
            p["uri"] = f"runs:/{rid}/{TABLE_ARTIFACTS}/{p['name']}"
    else:
        for p in parts:
            p["uri"] = (target / p["name"]).as_uri()
    e, extras = _sample_set(
        model,
        sdf,
        keys,
        background,
        capping,
        options,
        figures["rows"],
        sample=sample,
        analyses=analyses,
        random_state=random_state,
    )
    document = {
        "engine": "spark",
        "spark_version": sdf.sparkSession.version,
        "path": str(target),
        "rows": figures["rows"],
        "parts": parts,
        "columns": out.columns,
        "keys": list(keys),
        "additivity": figures,
        "feature_impact": impact.to_dict(orient="records"),
        "sample": {"rows": len(e), "random_state": random_state},
        "seconds": time.perf_counter() - started,
    }
    from shapgov.mlflow import log_explanation

    log_explanation(e, run_id=rid, attachments={SPARK_DOCUMENT: document}, report=report, **extras)
    return PublishedTable(target, figures["rows"], parts, figures, impact, e)


def _judge(
    spark: Any, staging: Path, keys: Sequence[str], options: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The table's verdict and Feature Impact, aggregated in Spark from the staged parts."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(str(staging))
    shap = [c for c in df.columns if c.startswith("shap_")]
    aggs = [
        F.count(F.lit(1)).alias("rows"),
        F.max(MISMATCH).alias("max"),
        F.avg(MISMATCH).alias("mean"),
        F.max(ABS_MISMATCH).alias("max_abs"),
        F.sum(F.when(F.col(STATUS) == "warn", 1).otherwise(0)).alias("warn"),
        F.sum(F.when(F.col(STATUS) == "fail", 1).otherwise(0)).alias("fail"),
    ]
    aggs += [F.avg(F.abs(F.col(c))).alias(f"impact{i}") for i, c in enumerate(shap)]
    row = df.agg(*aggs).collect()[0]
    n = int(row["rows"])
    fail, warn = int(row["fail"] or 0), int(row["warn"] or 0)
    status = "fail" if fail else ("warn" if warn else "pass")
    figures: dict[str, Any] = {
        "status": status,
        "rows": n,
        "max_normalized_mismatch": float(row["max"] or 0.0),
        "mean_normalized_mismatch": float(row["mean"] or 0.0),
        "max_abs_mismatch": float(row["max_abs"] or 0.0),
        "rows_warn": warn,
        "rows_fail": fail,
        "threshold": float(options.get("additivity_threshold", 0.01)),
        "pass_tolerance": float(options.get("pass_tolerance", 1e-6)),
    }
    if fail or warn:
        worst = (
            df.filter(F.col(STATUS) != "pass")
            .orderBy(F.col(MISMATCH).desc())
            .select(*keys, MISMATCH)
            .limit(_LISTED_KEYS)
            .collect()
        )
        figures["worst_rows"] = [r.asDict() for r in worst]
    impact = pd.DataFrame(
        {"column": shap, "impact": [float(row[f"impact{i}"] or 0.0) for i in range(len(shap))]}
    )
    return figures, impact


def _log_refusal(figures: dict[str, Any], run_id: str, report: bool) -> None:
    """Log the diagnostics of a refused table and raise :class:`AdditivityError`."""
    from shapgov.combination.policy import AdditivityReport
    from shapgov.mlflow import log_failure

    worst = figures.get("worst_rows", [])
    result = AdditivityReport(
        status="fail",
        max_normalized_mismatch=figures["max_normalized_mismatch"],
        mean_normalized_mismatch=figures["mean_normalized_mismatch"],
        max_abs_mismatch=figures["max_abs_mismatch"],
        n_rows=figures["rows"],
        n_mismatched=figures["rows_warn"] + figures["rows_fail"],
        n_over_threshold=figures["rows_fail"],
        mismatched_rows=(),
        threshold=figures["threshold"],
        pass_tolerance=figures["pass_tolerance"],
        applied={"engine": "spark", "worst_rows": worst, "published": False},
    )
    log_failure(result, run_id=run_id, with_report=report)
    raise AdditivityError(result)


def part_list(directory: Path) -> list[dict[str, Any]]:
    """Every Parquet part of ``directory``: name, SHA-256, rows (from its footer), bytes."""
    import pyarrow.parquet as pq

    out = []
    for part in sorted(directory.glob("*.parquet")):
        out.append(
            {
                "name": part.name,
                "sha256": sha256_file(part),
                "rows": int(pq.read_metadata(part).num_rows),
                "bytes": part.stat().st_size,
            }
        )
    return out


def _sample_set(
    model: Any,
    sdf: Any,
    keys: Sequence[str],
    background: Any,
    capping: Any,
    options: dict[str, Any],
    rows: int,
    *,
    sample: int,
    analyses: bool,
    random_state: int,
) -> tuple[Any, dict[str, Any]]:
    """The seeded sample explained in the driver, with its analyses for the set."""
    import shapgov
    from shapgov.analyses.impact import shap_impact

    fraction = min(1.0, 2.0 * sample / max(rows, 1))
    features = [c for c in sdf.columns if c not in keys]
    picked = sdf.select(*features).sample(False, fraction, seed=random_state).limit(sample)
    frame = picked.toPandas()
    if frame.empty:
        frame = sdf.select(*features).limit(sample).toPandas()
    if hasattr(background, "toPandas"):
        background = background.toPandas()
    bg = None if background is None else background[features]
    e = shapgov.explain(model, frame, background=bg, capping=capping, **options)
    extras: dict[str, Any] = {}
    if analyses:
        from shapgov.analyses.compare import compare_shap_xemp
        from shapgov.analyses.exemplars import xemp

        impact = shap_impact(e)
        strengths = xemp(model, e.data, training=bg if bg is not None else e.data, impact=impact)
        k = min(3, len(strengths.evaluated))
        extras["xemp"] = strengths
        extras["comparison"] = compare_shap_xemp(e, strengths, k=k, impacts=[impact])
    return e, extras
