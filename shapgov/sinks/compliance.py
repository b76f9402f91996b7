"""The compliance report: one self-contained HTML file that a model-risk reviewer reads.

Built from a logged artifact set (see :mod:`shapgov.mlflow.artifacts`), never from live
objects, so the report shows exactly what the audit trail holds. Jinja2 templates under
``reports/`` (installed as ``shapgov.reports``) with autoescaping: every name and value
from the data is text, never markup. CSS is inline, figures are embedded PNGs, and a
Content-Security-Policy forbids scripts and any request outside the file.

Next to the HTML, ``report.json`` records the report's SHA-256 and the SHA-256 of the
set manifest it was built from; approval requires both to match.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shapgov._version import __version__
from shapgov.combination.explanation import Explanation
from shapgov.errors import InputError
from shapgov.sinks import strict_json
from shapgov.sinks.approval_section import APPROVAL_CHECKS, approval_section
from shapgov.sinks.artifact_set import ArtifactSet, sha256_bytes
from shapgov.sinks.challenger_section import challenger_section
from shapgov.sinks.executive_summary import executive_summary
from shapgov.sinks.fairness_section import fairness_section
from shapgov.sinks.over_time_section import over_time_section
from shapgov.sinks.provenance_section import provenance_section
from shapgov.sinks.reasons_section import reasons_section
from shapgov.sinks.report_figures import Figures, save, stored

REPORT = "report.html"
MAX_SUMMARIES = 4  # summary plots per report (one per class); the rest are named, not drawn
MAX_POINTS = 2000  # rows drawn in summary and dependence plots (a seeded sample beyond)
# the report's options by default: the report logged with a set, whose figures it keeps
ROWS, TOP_K, TOP, N_DEPENDENCE, RANDOM_STATE = 5, 5, 15, 3, 0
REPORT_RECORD = "report.json"
SECTIONS = (
    ("model", "Model and blueprint"),
    ("data", "Data explained"),
    ("additivity", "Additivity audit"),
    ("impact", "Feature Impact"),
    ("summary", "SHAP summary and dependence"),
    ("predictions", "Prediction Explanations"),
    ("agreement", "SHAP and XEMP agreement"),
    ("over_time", "Explanations over time"),
    ("reasons", "Adverse-action reasons"),
    ("fairness", "Fair lending"),
    ("challenger", "Challenger comparison"),
    ("approval", "Approval"),
    ("provenance", "Versions and provenance"),
)


def _png(fig: Any) -> str:
    """``fig`` as a PNG data URI."""
    from shapgov.sinks.plots import to_png

    return "data:image/png;base64," + base64.b64encode(to_png(fig)).decode("ascii")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}g}"
    return str(value)


def _feature_value(value: Any) -> str:
    """A row's feature value for the reader: missing markers (NaN, None, pd.NA, NaT) read
    "missing"."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return "missing"
    return _fmt(_plain(value))


# ----------------------------------------------------------------------- sections
def _model_section(aset: ArtifactSet) -> dict[str, Any]:
    e = aset.explanation
    task = e.task if e is not None else None
    vertices = []
    for v in aset.vertices:
        vertices.append(
            {
                "name": v["name"],
                "estimator_class": v["estimator_class"],
                "explainer": v["explainer"],
                "matrix_row": v.get("matrix_row") or "none",
                "family": v.get("matrix_family") or "no matrix row",
                "status": v.get("matrix_status") or "unknown",
                "response": v.get("response") or "margin",
                "method": v.get("method", "exact"),
            }
        )
    return {
        "model_class": aset.manifest.get("model_class", "unknown"),
        "task": task or "unknown",
        "output_space": e.output_space if e is not None else "unknown",
        "link": e.link.name if e is not None else "unknown",
        "classes": [str(c) for c in e.classes] if e is not None and e.classes else [],
        "composites": e.composites if e is not None else [],
        "vertices": vertices,
        "game": e.game if e is not None else {},
        "plugins": e.plugins if e is not None else [],
        "sampling": _sampling_summary(e),
    }


def _sampling_summary(e: Any) -> dict[str, str] | None:
    """How uncertain sampled values are (their standard errors), or None when every value
    is exact."""
    if e is None or e.std_error is None:
        return None
    se, scale = np.asarray(e.std_error, dtype=float), float(np.abs(e.values).mean())
    return {
        "mean": _fmt(float(se.mean())),
        "max": _fmt(float(se.max())),
        "relative": f"{se.mean() / scale:.1%}" if scale > 0 else "n/a",
    }


def _data_section(aset: ArtifactSet) -> dict[str, Any]:
    e = aset.explanation
    columns = []
    if e is not None:
        for name in e.feature_names:
            col = e.data[name]
            numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
            columns.append(
                {
                    "name": name,
                    "dtype": str(col.dtype),
                    "missing": int(col.isna().sum()),
                    "summary": (
                        f"{_fmt(float(col.min()))} .. {_fmt(float(col.max()))}, "
                        f"mean {_fmt(float(col.mean()))}"
                        if numeric and col.notna().any()
                        else f"{col.nunique()} distinct values"
                    ),
                }
            )
    return {
        "rows": aset.manifest.get("rows", aset.additivity.n_rows),
        "columns": columns,
        "data_sha256": aset.manifest.get("data_sha256", "not recorded (failed set)"),
        "manifest_sha256": _file_sha(aset.directory / "manifest.json"),
        "artifacts": sorted(aset.manifest.get("artifacts", {}).items()),
    }


def _additivity_section(aset: ArtifactSet, figures: Figures) -> dict[str, Any]:
    from shapgov.sinks.plots import mismatch_histogram

    a = aset.additivity
    figure = None
    if a.row_mismatch:
        figure = figures.uri(
            "additivity",
            lambda: _png(
                mismatch_histogram(
                    np.asarray(a.row_mismatch),
                    pass_tolerance=a.pass_tolerance,
                    threshold=a.threshold,
                )
            ),
        )
    quantiles = {}
    if a.row_mismatch:
        values = np.asarray(a.row_mismatch, dtype=float)
        for q in (0.5, 0.9, 0.99, 1.0):
            quantiles[f"{q:.0%}" if q < 1 else "max"] = _fmt(float(np.quantile(values, q)), 3)
    return {
        "report": a,
        "figure": figure,
        "quantiles": quantiles,
        "applied": a.applied,
        "mismatched_rows": list(a.mismatched_rows[:50]),
        "describe": a.describe(),
    }


def _impact_section(aset: ArtifactSet, top: int) -> dict[str, Any] | None:
    from shapgov.sinks.plots import impact_bar

    if aset.shap_impact is None:
        return None
    shap = aset.shap_impact[["feature", "impact", "normalized", "rank"]]
    merged = shap.rename(
        columns={"impact": "shap_impact", "normalized": "shap_normalized", "rank": "shap_rank"}
    )
    agreement = None
    if aset.permutation is not None:
        perm = aset.permutation.copy()
        largest = float(perm["impact"].max())
        if "impact_std" in perm.columns:  # in the units of `normalized`
            perm["impact_std"] = perm["impact_std"] * (100.0 / largest if largest > 0 else 0.0)
        keep = ["feature", "impact", "normalized", "rank"]
        keep += [c for c in ("impact_std", "redundant_with") if c in perm.columns]
        perm = perm[keep].rename(
            columns={"impact": "perm_impact", "normalized": "perm_normalized", "rank": "perm_rank"}
        )
        merged = merged.merge(perm, on="feature", how="outer")
        both = merged.dropna(subset=["shap_rank", "perm_rank"])
        if len(both) > 1:
            agreement = float(both["shap_rank"].corr(both["perm_rank"], method="spearman"))
    lines = []
    for rec in merged.sort_values("shap_rank", na_position="last").to_dict(orient="records"):
        lines.append(
            {
                "feature": str(rec["feature"]),
                "shap": _fmt(rec.get("shap_normalized"), 3),
                "shap_rank": _fmt(rec.get("shap_rank")),
                "perm": _fmt(rec.get("perm_normalized"), 3),
                "perm_std": _fmt(rec.get("impact_std"), 3),
                "perm_rank": _fmt(rec.get("perm_rank")),
                "redundant_with": _text(rec.get("redundant_with")),
            }
        )
    from shapgov.mlflow.artifacts import IMPACT_TOP

    drawn = aset.directory / "feature_impact.png"
    same = top == IMPACT_TOP and aset.manifest.get("set_version", 1) >= 2
    if same and drawn.name in aset.manifest.get("artifacts", {}):
        figure = "data:image/png;base64," + base64.b64encode(drawn.read_bytes()).decode("ascii")
    else:
        figure = _png(impact_bar(aset.shap_impact, aset.permutation, max_display=top))
    return {"rows": lines, "figure": figure, "rank_agreement": _fmt(agreement, 3)}


def _summary_section(
    aset: ArtifactSet, n_dependence: int, figures: Figures
) -> dict[str, Any] | None:
    from shapgov.sinks.plots import dependence, summary, top_features

    e = aset.explanation
    if e is None:
        return None
    drawn = len(e)
    if len(e) > MAX_POINTS:  # the figures' cost stays flat whatever the row count
        rng = np.random.default_rng(0)
        e = e[np.sort(rng.choice(len(e), size=MAX_POINTS, replace=False))]
    outputs = list(range(min(e.n_outputs, MAX_SUMMARIES)))
    labels = _output_labels(e)
    summaries = [
        {
            "label": labels[k],
            "figure": figures.uri(f"summary/{k}", lambda k=k: _png(summary(e, output=k))),
        }
        for k in outputs
    ]
    names = top_features(e, min(n_dependence, len(e.feature_names)))
    plots = [
        {"feature": f, "figure": figures.uri(f"dependence/{f}", lambda f=f: _png(dependence(e, f)))}
        for f in names
    ]
    omitted = labels[len(outputs) :]
    sample = None if drawn == len(e) else {"points": len(e), "rows": drawn}
    return {"summaries": summaries, "dependence": plots, "omitted": omitted, "sample": sample}


def _output_labels(e: Explanation) -> list[str]:
    if e.n_outputs == 1:
        return [e.output_space]
    labels = e.classes or list(range(e.n_outputs))
    return [f"class {c}" for c in labels]


def _xemp_lookup(aset: ArtifactSet, rows: list[int]) -> dict[tuple[int, str, str], dict[str, Any]]:
    """XEMP strength and symbol of ``rows``, keyed by (row, output as text, feature)."""
    if aset.xemp is None:
        return {}
    if "rows" in aset.xemp:  # sets of version 1 kept every row in xemp.json
        records = aset.xemp["rows"]
    else:
        frame = aset.table("xemp.parquet", filters=[("row", "in", sorted(set(rows)))])
        records = [] if frame is None else frame.to_dict(orient="records")
    return {(int(r["row"]), _label(r["output"]), str(r["feature"])): r for r in records}


def _label(output: Any) -> str:
    """An output label as text; a single output (stored as None or null) is "None"."""
    return "None" if output is None or (np.ndim(output) == 0 and pd.isna(output)) else str(output)


def _flagged(aset: ArtifactSet) -> pd.DataFrame:
    """The comparison's flagged rows, in row order."""
    c = aset.comparison
    if c is None:
        return pd.DataFrame(columns=["row", "output", "overlap", "spearman", "flagged", "reason"])
    if "rows" in c:  # version 1
        rows = pd.DataFrame(c["rows"])
        return rows[rows["flagged"]] if len(rows) else rows
    frame = aset.table("comparison.parquet", filters=[("flagged", "==", True)])
    if frame is None:
        return pd.DataFrame(columns=["row", "output", "overlap", "spearman", "flagged", "reason"])
    frame["output"] = frame["output"].astype(object).where(frame["output"].notna(), None)
    return frame


def _output_index(e: Explanation, label: Any) -> int:
    """The output index of a class label as stored in JSON (0 for a single output)."""
    if e.n_outputs == 1 or label is None:
        return 0
    labels = [str(c) for c in (e.classes or range(e.n_outputs))]
    return labels.index(str(label))


def _chosen_rows(aset: ArtifactSet, n_rows: int, random_state: int) -> list[tuple[int, int, str]]:
    """``(row, output, why)``: a seeded sample of rows, each with its predicted class (for
    several outputs), then the three (row, class) pairs the SHAP-vs-XEMP comparison found
    most at odds (lowest overlap, then lowest rank correlation), with the flagged class."""
    e = aset.explanation
    rng = np.random.default_rng(random_state)
    picked = sorted(rng.choice(len(e), size=min(n_rows, len(e)), replace=False).tolist())
    chosen = [(int(i), int(np.argmax(e.explained_output[i])), "sampled") for i in picked]
    if aset.comparison is not None:
        flagged = _flagged(aset).to_dict(orient="records")
        flagged.sort(key=lambda r: (r["overlap"], _sortable(r.get("spearman")), r["row"]))
        for r in flagged:
            if sum(why != "sampled" for _, _, why in chosen) == 3:
                break
            pair = (int(r["row"]), _output_index(e, r.get("output")))
            if all(pair != (i, o) for i, o, _ in chosen):
                chosen.append((*pair, f"flagged: {r['reason']}"))
    return chosen


def _sortable(value: Any) -> float:
    return 2.0 if value is None or np.isnan(value) else float(value)


def _predictions_section(
    aset: ArtifactSet, n_rows: int, k: int, random_state: int, figures: Figures
) -> dict[str, Any] | None:
    from shapgov.sinks.plots import waterfall

    e = aset.explanation
    if e is None:
        return None
    if n_rows < 0 or k < 1:
        raise InputError(f"rows must be >= 0 and top_k >= 1, got rows={n_rows}, top_k={k}")
    chosen = _chosen_rows(aset, n_rows, random_state)
    xemp = _xemp_lookup(aset, [i for i, _, _ in chosen])
    rows_of_xemp = (aset.xemp or {}).get("params", {}).get("rows")
    same_rows = bool(xemp) and rows_of_xemp in (None, len(e))
    from shapgov.sinks.plot_parts import link_units

    predictions = e.link.inverse(e.explained_output)
    units = link_units(e)
    out = []
    for i, o, why in chosen:
        # XEMP's output label: none for one output, the class, else the output's position
        label = "None" if e.n_outputs == 1 else str(e.classes[o] if e.classes else o)
        phi = e._raw[i, :, o]
        order = np.argsort(-np.abs(phi), kind="stable")[:k]
        features = []
        for j in order:
            name = e.feature_names[j]
            x = xemp.get((i, label, name)) if same_rows else None
            features.append(
                {
                    "name": name,
                    "value": _feature_value(e.data.iloc[i, j]),
                    "shap": f"{phi[j]:+.4g}",
                    "strength": "–" if x is None else f"{x['strength']:+.4g}",
                    "symbol": "" if x is None else (x.get("symbol") or ""),
                }
            )
        out.append(
            {
                "row": row_key(e, i),
                "why": why,
                "output": _output_labels(e)[o],
                "link": e.link.name,
                "linked": _fmt(float(predictions[i, o])),
                "prediction": None if e.prediction is None else _fmt(float(e.prediction[i, o])),
                "explained": _fmt(float(e.explained_output[i, o])),
                "base": _fmt(float(e.expected_value[o])),
                "shap_sum": f"{phi.sum():+.4g}",
                "rest": f"{phi.sum() - phi[order].sum():+.4g}",
                "features": features,
                "figure": figures.uri(
                    f"waterfall/{i}/{o}", lambda i=i, o=o: _png(waterfall(e, i, output=o))
                ),
            }
        )
    unit, prediction, space = units or (f"{e.output_space} units", None, None)
    return {
        "rows": out,
        "k": k,
        "has_xemp": same_rows,
        "unit": unit,
        "prediction_name": prediction,
        "space": space,
    }


def row_key(e: Explanation | None, position: int) -> Any:
    """The key of the explained row at ``position`` (``X``'s index label), as the caller
    named it; the position itself where the set holds no explanation or that row."""
    if e is None or not 0 <= position < len(e):
        return position
    return _plain(e.data.index[position])


def _text(value: Any) -> str:
    """A cell that may be missing (None or NaN) as text, empty when missing."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _agreement_section(aset: ArtifactSet) -> dict[str, Any] | None:
    c = aset.comparison
    if c is None:
        return None
    flagged = _flagged(aset)
    if "rows" in c:  # version 1: the summary is computed from the rows
        rows = pd.DataFrame(c["rows"])
        summary = {
            "n_rows": len(rows),
            "mean_overlap": float(rows["overlap"].mean()) if len(rows) else None,
            "mean_spearman": float(rows["spearman"].astype(float).mean()) if len(rows) else None,
        }
    else:
        summary = c["summary"]
    params = c.get("params", {})
    e = aset.explanation
    several = e is not None and e.n_outputs > 1
    n_rows, n_flagged = summary["n_rows"], len(flagged)
    reasons = flagged["reason"].astype(str) if len(flagged) else pd.Series([], dtype=str)
    by = summary.get("flagged_by") or {
        "overlap": int(reasons.str.contains("overlap", regex=False).sum()),
        "spearman": int(reasons.str.contains("Spearman", regex=False).sum()),
        "sign": int(reasons.str.contains("sign of", regex=False).sum()),
    }
    k = int(params.get("k", 3))
    min_overlap = float(params.get("min_overlap", 2 / 3))
    return {
        "params": params,
        "k": k,
        # overlap < min_overlap <=> fewer than this many shared features
        "shared_needed": math.ceil(round(min_overlap * k, 9)),
        "n_rows": n_rows,
        "n_flagged": n_flagged,
        "share": f"{n_flagged / n_rows:.1%}" if n_rows else "–",
        "flagged_by": by,
        "several_outputs": several,
        "compared": "(row, class) pairs" if several else "rows",
        "n_features": len((aset.xemp or {}).get("evaluated", [])) or None,
        "mean_overlap": _fmt(summary["mean_overlap"], 3),
        "mean_spearman": _fmt(summary["mean_spearman"], 3),
        "global": [
            {k: _fmt(v, 3) if isinstance(v, float) else v for k, v in g.items()}
            for g in c.get("global", [])
        ],
        "flagged": [
            {
                "row": row_key(aset.explanation, int(r["row"])),
                "output": _flag_output(e, r.get("output")),
                "overlap": _fmt(r["overlap"], 3),
                "spearman": _fmt(r["spearman"], 3),
                "top_shap": ", ".join(map(str, r["top_shap"])),
                "top_xemp": ", ".join(map(str, r["top_xemp"])),
                "reason": r["reason"],
            }
            for r in flagged.head(50).to_dict(orient="records")
        ],
        "cut_points": (aset.xemp or {}).get("cut_points", {}),
    }


def _flag_output(e: Explanation | None, output: Any) -> str:
    """The output a comparison line is about, labelled as the rest of the report labels
    it: "class 1" for a class, the explained space for a single output."""
    if output is None or (np.ndim(output) == 0 and pd.isna(output)):
        return e.output_space if e is not None else "single output"
    return f"class {output}"


# ------------------------------------------------------------------------ render
def build_context(
    aset: ArtifactSet,
    *,
    run: Any = None,
    model_version: Any = None,
    approval_state: dict[str, Any] | None = None,
    rows: int = ROWS,
    top_k: int = TOP_K,
    top: int = TOP,
    n_dependence: int = N_DEPENDENCE,
    random_state: int = RANDOM_STATE,
    figures: Figures | None = None,
    comparison: str | Path | None = None,
) -> dict[str, Any]:
    """Everything the template shows, as plain values and embedded figures: those the set
    holds (:mod:`shapgov.sinks.report_figures`) where it holds them, the others drawn
    (``figures=Figures()`` draws every one)."""
    if figures is None:
        figures = stored(aset.directory, aset.manifest)
    title = aset.manifest.get("model_class", "model").rsplit(".", 1)[-1]
    if model_version is not None:
        title = f"{model_version.name} v{model_version.version}"
    over_time, reasons = over_time_section(aset), reasons_section(aset)
    fair = fairness_section(aset)
    challenger = challenger_section(comparison)
    # a set without explanations over time (or reasons) has no such section (nor its
    # contents entry)
    optional = {
        "over_time": over_time,
        "reasons": reasons,
        "fairness": fair,
        "challenger": challenger,
    }
    sections = [(i, name) for i, name in SECTIONS if optional.get(i, True)]
    context = {
        "title": title,
        "status": aset.additivity.status,
        "sections": sections,
        "model": _model_section(aset),
        "data": _data_section(aset),
        "additivity": _additivity_section(aset, figures),
        "impact": _impact_section(aset, top),
        "summary": _summary_section(aset, n_dependence, figures),
        "predictions": _predictions_section(aset, rows, top_k, random_state, figures),
        "agreement": _agreement_section(aset),
        "over_time": over_time,
        "reasons": reasons,
        "fairness": fair,
        "challenger": challenger,
        "approval": approval_section(model_version, approval_state),
        "approval_checks": list(APPROVAL_CHECKS),
        "provenance": provenance_section(aset, run, model_version),
    }
    context["executive"] = executive_summary(context)
    return context


def write_figures(directory: str | Path, manifest: dict[str, Any]) -> None:
    """Draw the figures of the set's report with the default options from the files
    ``manifest`` lists in ``directory`` (checked against their hashes) and store them in
    the set (:mod:`shapgov.sinks.report_figures`), before its manifest is written: the
    report logged with the set, and later ones of it, embed them instead of drawing them
    again."""
    aset = ArtifactSet.listed_in(directory, manifest)
    figures = Figures()
    _additivity_section(aset, figures)
    _summary_section(aset, N_DEPENDENCE, figures)
    _predictions_section(aset, ROWS, TOP_K, RANDOM_STATE, figures)
    save(Path(directory), figures, manifest["artifacts"])


@cache
def _template() -> tuple[Any, str]:
    """The report template, compiled once per process, and its CSS."""
    from shapgov.sinks.templates import environment, read

    return environment().get_template("report.html.j2"), read("report.css")


def render_html(context: dict[str, Any]) -> str:
    """Render the report template with autoescaping on."""
    template, css = _template()
    return template.render(css=css, **context)


def _file_sha(path: Path) -> str:
    from shapgov.mlflow.artifacts import sha256_file

    return sha256_file(path)


def write_report(
    directory: str | Path, *, run: Any = None, model_version: Any = None, **options: Any
) -> dict[str, Any]:
    """Render the report of the set in ``directory`` into ``report.html`` beside it, with
    ``report.json`` (its hash and the hash of the manifest it was built from).

    :returns: The record written to ``report.json``.
    """
    directory = Path(directory)
    aset = ArtifactSet.read(directory)
    html = render_html(build_context(aset, run=run, model_version=model_version, **options))
    data = html.encode("utf-8")
    (directory / REPORT).write_bytes(data)
    record = {
        "report_sha256": sha256_bytes(data),
        "manifest_sha256": _file_sha(directory / "manifest.json"),
        "created": datetime.now(UTC).isoformat(),
        "shapgov_version": __version__,
        "run_id": None if run is None else run.info.run_id,
        "model": None
        if model_version is None
        else {"name": model_version.name, "version": str(model_version.version)},
    }
    (directory / REPORT_RECORD).write_text(strict_json.dumps(record, indent=2, sort_keys=True))
    return record
