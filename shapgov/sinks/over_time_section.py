"""The compliance report's section "Explanations over time", from a set's
``over_time.json`` and ``over_time.png`` (:mod:`shapgov.analyses.over_time`)."""

from __future__ import annotations

import base64
from typing import Any

import pandas as pd

#: Players named in the per-window table (by impact over all windows).
TABLE_TOP = 6


def over_time_section(aset: Any) -> dict[str, Any] | None:
    """Windows, the top players' impact per window, the drift table, flagged windows and
    the rules; ``None`` when the set has no explanations over time."""
    result = aset.over_time
    if result is None:
        return None
    figure = None
    drawn = aset.directory / "over_time.png"
    if drawn.name in aset.manifest.get("artifacts", {}):
        figure = "data:image/png;base64," + base64.b64encode(drawn.read_bytes()).decode("ascii")
    impact = pd.DataFrame(result.get("impact", []))
    windows = pd.DataFrame(result.get("windows", []))
    top: list[str] = []
    if len(impact):
        top = impact.groupby("player")["normalized"].mean().nlargest(TABLE_TOP).index.tolist()
        wide = impact.pivot(index="window", columns="player", values="normalized")
    drift = pd.DataFrame(result.get("drift", []))
    rows = []
    for rec in windows.to_dict(orient="records"):
        label = rec["window"]
        row = {
            "window": label,
            "rows": rec["rows"],
            "status": rec["additivity_status"],
            "flagged": rec["flagged"],
            "impacts": [_num(wide.at[label, p]) if top else "" for p in top],
        }
        for against in ("reference", "previous"):
            d = (
                drift[(drift["window"] == label) & (drift["against"] == against)]
                if len(drift)
                else drift
            )
            if len(d):
                r = d.iloc[0]
                row[against] = {
                    "spearman": _num(r["spearman"], 3),
                    "l1": _num(r["impact_l1"], 3),
                    "wasserstein": _num(r["max_wasserstein"], 3),
                    "p": _num(r["min_p_adjusted"], 2),
                    "shifted": r["shifted"] or "",
                    "moved": r["moved"] or "",
                }
            else:
                row[against] = None
        rows.append(row)
    rules = result.get("rules", {})
    return {
        "figure": figure,
        "players": top,
        "rows": rows,
        "flagged": result.get("flagged_windows", []),
        "max_impact_drift": _num(result.get("max_impact_drift"), 3),
        "reference": rules.get("reference_window"),
        "background": rules.get("background", {}),
        "rules": [
            ("Windows", rules.get("windows")),
            ("Reference window", rules.get("reference_window")),
            ("Rows outside every window", rules.get("rows_outside")),
            ("Impact", rules.get("impact")),
            ("Impact drift (L1)", rules.get("impact_l1")),
            ("Rank agreement", rules.get("rank_agreement")),
            ("Test", rules.get("test")),
            ("alpha", rules.get("alpha")),
            (
                "Materiality",
                f"{rules.get('min_effect_rule')} (min_effect {rules.get('min_effect')})",
            ),
            ("Share moved", f"listed above {rules.get('share_threshold')}"),
            ("Flag rule", rules.get("flag_rule")),
        ],
        "players_grouped": rules.get("players"),
    }


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return f"{float(value):.{digits}g}"
