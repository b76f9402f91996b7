"""The compliance report's section "Adverse-action reasons", from a set's reason files
(:mod:`shapgov.adverse_action.stored`): the catalogue, the decision rule, the reference
population, how the explained rows ended, how often each code is given, the stability
figures and a sample notice. Every file it reads is one the manifest lists (the set was
checked against its hashes when read); the catalogue is rebuilt and checked against its
own SHA-256 too."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

#: Statuses of an explained row, in the order the section lists them, and what each means.
STATUSES = (
    ("approved", "the rule approved the row: no reasons are owed"),
    ("reasons", "declined, with the reasons below"),
    (
        "no adverse input",
        "declined, but nothing pushed the score toward decline by at least the minimum share",
    ),
    (
        "needs review",
        "declined, and no automatic notice would be true: entries pushed toward decline but "
        "none's statement is true of the row (its inputs lie on the favourable side of the "
        "reference population's median, or are missing), or inputs declared never a reason "
        "pushed further toward decline than the reasons: a reviewer states the reasons",
    ),
    ("withheld", "declined, but the additivity policy withheld the row's values: no reasons"),
)
#: Least stable rows listed by name.
UNSTABLE_ROWS = 10


def reasons_section(aset: Any) -> dict[str, Any] | None:
    """Everything the section shows; ``None`` when the set holds no reasons."""
    from shapgov.adverse_action.catalogue import make_catalogue

    listed = aset.manifest.get("artifacts", {})
    if "reasons.json" not in listed or "reason_catalogue.json" not in listed:
        return None
    summary = json.loads((aset.directory / "reasons.json").read_text())
    stored = json.loads((aset.directory / "reason_catalogue.json").read_text())
    catalogue = make_catalogue(
        name=stored["name"],
        version=stored["version"],
        reasons=stored["reasons"],
        never_a_reason=stored["never_a_reason"],
    )
    frame = aset.table("reasons.parquet")
    if frame is None:
        frame = pd.DataFrame(columns=["row", "status"])
    k = int(summary.get("max_reasons", 0))
    code_columns = [f"reason_{j + 1}" for j in range(k) if f"reason_{j + 1}" in frame.columns]
    given = frame[frame["status"] == "reasons"]
    return {
        "catalogue": {
            "name": catalogue.name,
            "version": catalogue.version,
            "sha256": stored.get("sha256"),
            "verified": catalogue.sha256 == stored.get("sha256")
            and catalogue.sha256 == summary.get("catalogue", {}).get("sha256"),
            "reasons": [
                {
                    "code": r.code,
                    "statement": r.statement,
                    "inputs": ", ".join(r.inputs),
                    "adverse": r.adverse,
                }
                for r in catalogue.reasons
            ],
            "never": sorted(catalogue.never.items()),
        },
        "decision": _decision(summary),
        "reference": _reference(summary.get("reference") or {}, listed),
        "rows": len(frame),
        "declined": int((frame["status"] != "approved").sum()),
        "status": _status_counts(frame),
        "frequencies": _frequencies(given, code_columns, catalogue, summary),
        "direction": (summary.get("direction") or {}).get("rule"),
        "with_reasons": len(given),
        "stability": _stability(summary.get("stability"), aset.table("reason_stability.parquet")),
        "notice": _sample_notice(given, code_columns, catalogue),
        "game_sha256": summary.get("game_sha256") or "–",
        "additivity": (summary.get("additivity") or {}).get("status") or "–",
    }


def _decision(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    rule = summary.get("decision") or {}
    positive = rule.get("positive_class")
    side = "at or above" if rule.get("declines") == "above" else "below"
    rows = [
        ("Rule", rule.get("rule")),
        ("Score", rule.get("score")),
        ("Cutoff", rule.get("cutoff")),
        ("Declines", f"a score {side} the cutoff"),
    ]
    if rule.get("score") == "probability":
        rows.append(("Class whose probability is the score", _class(positive)))
    return [
        *rows,
        ("At most this many reasons per row", summary.get("max_reasons")),
        ("A reason's minimum share of the row's adverse push", _share(summary.get("min_share"))),
    ]


def _class(label: Any) -> str:
    return "the model's last class" if label is None else str(label)


def _reference(reference: dict[str, Any], listed: dict[str, str]) -> dict[str, Any]:
    population = reference.get("population")
    how = {
        "approved": "the candidate reference rows the decision rule approves (what an approved "
        "applicant looks like)",
        "all": "every candidate reference row",
        "near_cutoff": f"the {_share(reference.get('share'))} of candidate reference rows whose "
        "scores are closest to the cutoff (marginal applicants)",
    }.get(str(population), str(population))
    return {
        "population": population,
        "how": how,
        "candidates": reference.get("candidates"),
        "rows": reference.get("rows"),
        "mean_score": _num(reference.get("mean_score")),
        "sha256": listed.get("reason_reference.parquet", "–"),
    }


def _status_counts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    counts = frame["status"].value_counts()
    known = [s for s, _ in STATUSES]
    rows = [
        {"status": s, "rows": int(counts.get(s, 0)), "meaning": meaning} for s, meaning in STATUSES
    ]
    rows += [
        {"status": str(s), "rows": int(n), "meaning": ""}
        for s, n in counts.items()
        if s not in known
    ]
    return rows


def _frequencies(
    given: pd.DataFrame, columns: list[str], catalogue: Any, summary: dict[str, Any]
) -> list[dict[str, Any]]:
    """How often each code is given among the declined rows with reasons, from the
    per-row table: first reason, anywhere among the reasons, and that as a share; and
    (from the summary) how often its push made it a reason but its statement was not true
    of the row."""
    against = {
        f.get("code"): f.get("contradicted", 0)
        for f in summary.get("frequencies") or []
        if isinstance(f, dict)
    }
    codes = given[columns].to_numpy(dtype=object) if columns else None
    n = len(given)
    out = []
    for r in catalogue.reasons:
        first = int((codes[:, 0] == r.code).sum()) if n and columns else 0
        anywhere = int((codes == r.code).any(axis=1).sum()) if n and columns else 0
        out.append(
            {
                "code": r.code,
                "statement": r.statement,
                "first": first,
                "any": anywhere,
                "share": f"{anywhere / n:.1%}" if n else "–",
                "contradicted": int(against.get(r.code) or 0),
            }
        )
    out.sort(key=lambda f: (-f["any"], f["code"]))
    return out


def _stability(figures: dict[str, Any] | None, per_row: pd.DataFrame | None) -> dict[str, Any]:
    if not figures:
        return {"measured": False}
    unstable: list[dict[str, Any]] = []
    if per_row is not None and len(per_row):
        worst = per_row[per_row["share_kept"] < 1.0].sort_values(
            ["share_kept", "row"], kind="stable"
        )
        unstable = [
            {"row": r["row"], "share": _share(r["share_kept"])}
            for r in worst.head(UNSTABLE_ROWS).to_dict(orient="records")
        ]
        n_unstable = len(worst)
    else:
        n_unstable = 0
    return {
        "measured": True,
        "resamples": figures.get("resamples"),
        "method": figures.get("method"),
        "random_state": figures.get("random_state"),
        "rows": figures.get("rows"),
        "withheld": figures.get("withheld_resamples") or 0,
        "mean": _share(figures.get("mean_share_kept")),
        "min": _share(figures.get("min_share_kept")),
        "always": _share(figures.get("rows_always_kept")),
        "first": _share(figures.get("first_reason_kept")),
        "unstable": unstable,
        "n_unstable": n_unstable,
    }


def _sample_notice(
    given: pd.DataFrame, columns: list[str], catalogue: Any
) -> dict[str, Any] | None:
    """The notice of the first declined row with reasons, in row order: the text
    :meth:`~shapgov.adverse_action.derive.AdverseActionReasons.notice` gives."""
    from shapgov.adverse_action.derive import notice_text

    if not len(given):
        return None
    first = given.iloc[0]
    codes = [first[c] for c in columns]
    return {"row": first["row"], "text": notice_text(first["row"], "reasons", codes, catalogue)}


def _share(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return f"{float(value):.1%}"


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return f"{float(value):.{digits}g}"
