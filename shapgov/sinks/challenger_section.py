"""The compliance report's section "Challenger comparison": a version compared with the
champion it would replace (:func:`shapgov.compare_versions`, logged on its run under
``shapgov-comparison/``), read from the comparison's files, each checked against its
manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shapgov.errors import AlteredSetError

#: Inputs listed (those whose impact moved most first).
TOP_MOVED = 10


def _num(value: Any, digits: int = 3) -> str:
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
        return "–"


def challenger_section(directory: str | Path | None) -> dict[str, Any] | None:
    """The section's context from a downloaded comparison folder (``None``: none).

    :raises AlteredSetError: A file of the comparison does not match its manifest.
    """
    if directory is None:
        return None
    from shapgov.mlflow.artifacts import sha256_file

    directory = Path(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    for file, digest in manifest["artifacts"].items():
        if sha256_file(directory / file) != digest:
            raise AlteredSetError(f"the comparison's {file} does not match its manifest hash")
    data = json.loads((directory / "comparison.json").read_text())
    s = data["summary"]
    return {
        "champion": manifest["champion"],
        "challenger": manifest["challenger"],
        "manifest_sha256": sha256_file(directory / "manifest.json"),
        "space": s.get("space"),
        "game": s.get("game"),
        "rows": s.get("rows"),
        "rows_sha256": s.get("rows_sha256"),
        "background_sha256": s.get("background_sha256"),
        "rank_correlation": _num(s.get("rank_correlation")),
        "top_k_overlap": _num(s.get("top_k_overlap")),
        "k": s.get("k"),
        "row_overlap": _num(s.get("mean_row_top_k_overlap")),
        "sign_agreement": _num(s.get("mean_sign_agreement")),
        "psi": _num(s.get("psi")),
        "ks": _num((s.get("ks") or {}).get("statistic")),
        "ks_p": _num((s.get("ks") or {}).get("p_value")),
        "decisions": None
        if "decisions_changed" not in s
        else f"{s['decisions_changed']} rows change decision ({s['newly_declined']} newly "
        f"declined, {s['newly_approved']} newly approved)",
        "metrics": [
            {
                "metric": m["metric"],
                "champion": _num(m["champion"], 4),
                "challenger": _num(m["challenger"], 4),
                "difference": _num(m["difference"], 3),
                "interval": f"{_num(m['low'], 3)} – {_num(m['high'], 3)}",
                "gain": _num(m["gain"], 3),
            }
            for m in data.get("metrics", [])
        ],
        "windows": [
            {
                "window": w["window"],
                "rows": w["rows"],
                "psi": _num(w["psi"]),
                "ks": _num(w["ks"]),
                "rank_correlation": _num(w["rank_correlation"]),
                "metric": next(
                    (
                        f"{_num(w[m + '_champion'], 4)} → {_num(w[m + '_challenger'], 4)}"
                        for m in ("roc_auc", "r2")
                        if m + "_champion" in w
                    ),
                    "–",
                ),
            }
            for w in data.get("windows", [])
        ],
        "moved": [
            {
                "input": r["input"],
                "champion": f"{r['share_champion']:.1%}",
                "challenger": f"{r['share_challenger']:.1%}",
                "ranks": f"{r['rank_champion']} → {r['rank_challenger']}",
            }
            for r in data.get("impact", [])[:TOP_MOVED]
        ],
    }
