"""The compliance report's section "Fair lending", read from the set's ``fairness.json``
and ``fairness_*.parquet`` (:func:`shapgov.analyses.fairness.fairness`): the groups'
approval rates and adverse impact ratios with the flag rule, the inputs that carry each
flagged group's gap, and the proxy screen."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Inputs listed per gap decomposition, and proxies listed per attribute.
TOP_GAP, TOP_PROXIES = 5, 10


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    return f"{float(value):.{digits}g}"


def _interval(r: dict[str, Any], rate: str) -> str:
    low, high = _num(r.get(rate + "_low")), _num(r.get(rate + "_high"))
    return f"{_num(r.get(rate + '_diff'))} ({low} – {high})"


def _share(value: Any) -> str:
    return "–" if pd.isna(value) else f"{value:.1%}"


def fairness_section(aset: Any) -> dict[str, Any] | None:
    """The section's context, or ``None`` when the set holds no fair-lending checks."""
    summary = aset.fairness
    groups = aset.table("fairness_groups.parquet")
    if not isinstance(summary, dict) or groups is None:
        return None
    gaps = aset.table("fairness_gaps.parquet")
    proxies = aset.table("fairness_proxies.parquet")
    rules = summary.get("rules", {})
    outcomes = bool(summary.get("outcomes"))
    group_rows = []
    for r in groups.to_dict(orient="records"):
        row = {
            "attribute": r["attribute"], "group": str(r["group"]), "reference": str(r["reference"]),
            "n": _num(r["n"]), "approval_rate": f"{r['approval_rate']:.1%}",
            "air": _num(r["air"]), "interval": f"{_num(r['air_low'])} – {_num(r['air_high'])}",
            "p": _num(r.get("p_adjusted")), "smd": _num(r["smd"]), "gap": _num(r["gap"]),
            "small": bool(r["small"]), "flagged": bool(r["flagged"]),
            "is_reference": str(r["group"]) == str(r["reference"]),
        }  # fmt: skip
        if outcomes:
            row.update(
                fpr=_num(r.get("fpr")), fnr=_num(r.get("fnr")),
                fpr_diff=_interval(r, "fpr"), fnr_diff=_interval(r, "fnr"),
                observed=_num(r.get("observed_rate")),
            )  # fmt: skip
        group_rows.append(row)
    carried = []
    for f in summary.get("flagged_groups", []):
        part = gaps[(gaps["attribute"] == f["attribute"]) & (gaps["group"] == str(f["group"]))]
        carried.append(
            {
                "attribute": f["attribute"], "group": str(f["group"]), "air": _num(f["air"]),
                "rows": [
                    {"player": p["player"], "contribution": _num(p["contribution"]),
                     "share": "–" if pd.isna(p["share"]) else f"{p['share']:.0%}"}
                    for p in part.head(TOP_GAP).to_dict(orient="records")
                ],
            }
        )  # fmt: skip
    proxy_rows = [
        {
            "attribute": p["attribute"], "input": p["input"], "score": _num(p["score"]),
            "shap": _num(p["shap_proxy_score"]),
            "group": str(p["group"]), "impact": _share(p["impact_share"]),
            "flagged": bool(p["flagged"]),
        }
        for p in proxies[proxies["order"] <= TOP_PROXIES].to_dict(orient="records")
    ] if proxies is not None else []  # fmt: skip
    flagged_groups = [f"{f['group']} ({f['attribute']}, AIR {_num(f['air'])})" for f in carried]
    flagged_proxies = [p["input"] for p in summary.get("flagged_proxies", [])]
    text = (
        f"disparate impact flagged for {', '.join(flagged_groups)}"
        if flagged_groups
        else f"no group flagged (lowest adverse impact ratio {_num(summary.get('min_air'))})"
    )
    if carried and carried[0]["rows"]:
        text += f"; the gap runs mostly through {carried[0]['rows'][0]['player']}"
    text += (
        f"; proxies: {', '.join(dict.fromkeys(flagged_proxies))}"
        if flagged_proxies
        else f"; no proxy (highest proxy score {_num(summary.get('max_proxy'))})"
    )
    windows, figure = [], None
    by_window = aset.table("fairness_windows.parquet")
    if by_window is not None:
        compared = by_window[by_window["group"] != by_window["reference"]]
        windows = [
            {
                "window": r["window"], "attribute": r["attribute"], "group": r["group"],
                "n": _num(r["n"]), "approval_rate": f"{r['approval_rate']:.1%}",
                "air": _num(r["air"]), "interval": f"{_num(r['air_low'])} – {_num(r['air_high'])}",
                "p": _num(r.get("p_adjusted")), "small": bool(r["small"]),
                "flagged": bool(r["flagged"]),
            }
            for r in compared.to_dict(orient="records")
        ]  # fmt: skip
        png = aset.directory / "fairness_over_time.png"
        if png.name in aset.manifest.get("artifacts", {}):
            import base64

            figure = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
        flagged_windows = summary.get("flagged_windows") or []
        text += (
            f"; over time, flagged in windows {', '.join(flagged_windows)}"
            if flagged_windows
            else "; over time, no window flagged"
        )
    return {
        "summary": text,
        "windows": windows,
        "windows_figure": figure,
        "flagged": bool(flagged_groups or flagged_proxies),
        "rules": rules,
        "decision": summary.get("decision", {}),
        "protected_sha256": summary.get("protected_sha256"),
        "counts": summary.get("group_counts", {}),
        "outcomes": outcomes,
        "groups": group_rows,
        "carried": carried,
        "proxies": proxy_rows,
    }
