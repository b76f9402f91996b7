"""The compliance report's approval section: the verdict on a model version, whether its
signature verifies here, the rules and checks it applied, and its explaining models (the
last two as the MLflow layer found them: a sink imports nothing of that layer)."""

from __future__ import annotations

import json
from typing import Any

#: What ``shapgov approve`` checks (:mod:`shapgov.mlflow.approval`), for the reader.
APPROVAL_CHECKS = (
    "the artifact set is complete and unaltered: its manifest names this run, every file "
    "it lists matches its SHA-256, and the values, vertices, additivity audit and Feature "
    "Impact are there (for a table explained on Spark, every part it published too)",
    "the additivity status is pass (warn only where the approval allowed it)",
    "every vertex was explained through a compatibility-matrix row that supports its task",
    "the set's compliance report is there, matches its recorded hash and was built from "
    "this very manifest",
)


def _approval_checks(raw_rules: str | None) -> list[str]:
    """The checks a verdict applied: the required ones and the optional rules it had."""
    checks = list(APPROVAL_CHECKS)
    try:
        rules = json.loads(raw_rules) if raw_rules else {}
    except ValueError:
        rules = {}
    rules = rules if isinstance(rules, dict) else {}
    if rules.get("max_impact_drift") is not None:
        checks.append(
            "the set holds explanations over time and no window's impact drift against the "
            f"reference window exceeds max_impact_drift = {rules['max_impact_drift']}"
        )
    if rules.get("min_adverse_impact_ratio") is not None:
        checks.append(
            "the set holds fair-lending checks and no protected group's adverse impact ratio "
            f"is below min_adverse_impact_ratio = {rules['min_adverse_impact_ratio']}"
        )
    if rules.get("max_proxy_score") is not None:
        checks.append(
            "the set holds fair-lending checks and no input's proxy score for a protected "
            f"attribute reaches max_proxy_score = {rules['max_proxy_score']}"
        )
    if rules.get("max_impact_rank_change") is not None:
        checks.append(
            f"against {rules.get('against')}: no input of the champion's top k moved more than "
            f"max_impact_rank_change = {rules['max_impact_rank_change']} ranks of Feature Impact"
        )
    if rules.get("min_metric_gain") is not None:
        checks.append(
            f"against {rules.get('against')}: the primary metric gained at least "
            f"min_metric_gain = {rules['min_metric_gain']}"
        )
    if rules.get("require_explaining_model"):
        checks.append("an explaining model carries this set's manifest SHA-256")
    return checks


def approval_section(
    model_version: Any, state: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The section's context for a registered version (``None`` for a run's report).

    :param state: What only the MLflow layer can check, handed in by it
        (:func:`shapgov.mlflow.reporting.approval_state`): ``"signature"`` (whether the
        verdict verifies with the keys held here), ``"explaining_models"`` and
        ``"review"`` (the version's findings, sign-offs and whether the identities were
        authenticated, from the review ledger); without it
        the section says they were not checked. The sink imports nothing of the MLflow
        layer.
    """
    if model_version is None:
        return None
    state = state or {}
    tags = dict(model_version.tags or {})
    reasons = tags.get("shapgov.approval.reasons", "")
    return {
        "name": model_version.name,
        "version": model_version.version,
        "verdict": tags.get("shapgov.approval", "not checked"),
        "reasons": [r for r in reasons.split("; ") if r],
        "time": tags.get("shapgov.approval.time", "–"),
        "approver": tags.get("shapgov.approval.approver", "–"),
        "authenticated": tags.get("shapgov.approval.authenticated"),
        "signature": state.get("signature", {"status": "unchecked", "text": "not checked"}),
        "by_version": tags.get("shapgov.approval.version", "–"),
        "rules": _approval_rules(tags.get("shapgov.approval.rules")),
        "checks": _approval_checks(tags.get("shapgov.approval.rules")),
        "aliases": list(getattr(model_version, "aliases", []) or []),
        "explaining_models": state.get("explaining_models", []),
        "review": state.get("review"),
    }


def _approval_rules(raw: str | None) -> str:
    """The optional rules the verdict applied, as text ("–" before they were recorded)."""
    try:
        rules = json.loads(raw) if raw else None
    except ValueError:
        return "unreadable"
    if not isinstance(rules, dict):
        return "–"
    on = [f"{k} = {v}" for k, v in sorted(rules.items()) if v not in (None, False)]
    return ", ".join(on) or "none beyond the required checks"
