"""The executive summary a reviewer reads first, at the top of the compliance report and of
every model document.

One line per fact, each pointing to the section that holds its detail: the verdict and
who signed it, the game in one sentence, additivity in one line, the top drivers, the
drift over time, the adverse-action and fairness results (when the set holds them), the
SHAP-vs-XEMP flags and the open findings. Read from the report's context (itself read from
the hash-checked set and the registry), never recomputed.
"""

from __future__ import annotations

from typing import Any

#: Drivers named in the summary.
TOP_DRIVERS = 5
#: Findings still open (for the summary): every status but these.
CLOSED = ("closed",)


def executive_summary(context: dict[str, Any]) -> list[dict[str, str]]:
    """The summary's lines: each ``{"label", "text", "section", "flag"}``, ``section`` the
    anchor of the section with the detail and ``flag`` ``"ok"``, ``"attention"`` or
    ``"problem"`` (how the line should strike the reader)."""
    lines = [_verdict(context.get("approval"))]
    game = (context["model"].get("game") or {}).get("description")
    game = game.removeprefix("Explained game: ") if game else game
    lines.append(
        _line(
            "Game",
            game or "not recorded: no values were logged",
            "model",
            "ok" if game else "problem",
        )
    )
    lines.append(_additivity(context))
    impact = context.get("impact")
    if impact and impact.get("rows"):
        top = [f"{r['feature']} ({r['shap']})" for r in impact["rows"][:TOP_DRIVERS]]
        lines.append(
            _line(
                "Top drivers",
                "by mean |SHAP| (top feature = 100): " + ", ".join(top),
                "impact",
                "ok",
            )
        )
    over_time = context.get("over_time")
    if over_time:
        flagged = over_time.get("flagged") or []
        text = (
            f"drift flagged in windows {', '.join(map(str, flagged))}"
            if flagged
            else "no window flagged"
        )
        text += f"; largest impact drift against the reference {over_time.get('max_impact_drift')}"
        lines.append(_line("Drift over time", text, "over_time", "attention" if flagged else "ok"))
    reasons = context.get("reasons")
    if reasons:
        lines.append(_reasons(reasons))
    fairness = context.get("fairness")
    if fairness:
        lines.append(
            _line(
                "Fair lending",
                str(fairness.get("summary", "")),
                "fairness",
                "attention" if fairness.get("flagged") else "ok",
            )
        )
    agreement = context.get("agreement")
    if agreement:
        lines.append(
            _line(
                "SHAP and XEMP",
                f"{agreement['n_flagged']} of {agreement['n_rows']} {agreement['compared']} "
                f"({agreement['share']}) flagged for review",
                "agreement",
                "attention" if agreement["n_flagged"] else "ok",
            )
        )
    lines.append(_findings(context.get("approval")))
    return lines


def _line(label: str, text: str, section: str, flag: str) -> dict[str, str]:
    return {"label": label, "text": text, "section": section, "flag": flag}


def _verdict(approval: dict[str, Any] | None) -> dict[str, str]:
    if not approval:
        return _line(
            "Verdict",
            "none: this report is of a run, not of a registered model version",
            "approval",
            "attention",
        )
    verdict = str(approval.get("verdict"))
    signature = approval.get("signature") or {}
    who = approval.get("approver", "–")
    if approval.get("authenticated") == "false":
        who += " (declared, not authenticated)"
    text = (
        f"{verdict} by {who} at {approval.get('time', '–')}; signature "
        f"{signature.get('status', 'unchecked')}"
    )
    flag = "ok" if verdict == "approved" and signature.get("status") == "verified" else "attention"
    if verdict == "rejected" or signature.get("status") == "not verified":
        flag = "problem"
    return _line("Verdict", text, "approval", flag)


def _additivity(context: dict[str, Any]) -> dict[str, str]:
    report = context["additivity"]["report"]
    text = (
        f"{report.status}: the values rebuild every prediction to a normalized mismatch of at "
        f"most {report.max_normalized_mismatch:.3g} over {report.n_rows} rows (warn above "
        f"{report.pass_tolerance:g}, withheld above {report.threshold:g})"
    )
    flag = {"pass": "ok", "warn": "attention"}.get(report.status, "problem")
    return _line("Additivity", text, "additivity", flag)


def _reasons(reasons: dict[str, Any]) -> dict[str, str]:
    text = f"{reasons['declined']} of {reasons['rows']} explained rows declined"
    frequencies = sorted(reasons.get("frequencies") or [], key=lambda f: -int(f["first"] or 0))
    if frequencies and int(frequencies[0]["first"] or 0) > 0:
        top = frequencies[0]
        text += f"; most often the first reason: {top['code']} ({top['statement']})"
    stability = reasons.get("stability") or {}
    if stability.get("measured"):
        text += f"; a row keeps {stability['mean']} of its reasons across resamples"
    return _line("Adverse action", text, "reasons", "ok")


def _findings(approval: dict[str, Any] | None) -> dict[str, str]:
    review = (approval or {}).get("review") or {}
    if not review.get("in_force"):
        return _line(
            "Findings",
            "the review workflow was not in force (no roles granted)",
            "approval",
            "attention",
        )
    open_ = [f for f in review.get("findings", []) if f.get("status") not in CLOSED]
    if not open_:
        return _line("Findings", "no open findings", "approval", "ok")
    listed = "; ".join(f"{f['id']} ({f['severity']}): {f['title']}" for f in open_)
    return _line("Open findings", listed, "approval", "problem")
