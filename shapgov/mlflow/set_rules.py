"""The approval rules on what an artifact set holds beyond its values: explanations over
time (``max_impact_drift``), adverse-action reasons (their additivity, always; their
stability, with ``min_reason_stability``) and fair-lending checks
(``min_adverse_impact_ratio``, ``max_proxy_score``). Each returns the reasons to reject (none: the
rule holds), as :func:`shapgov.approve` records them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shapgov.errors import InputError


def read_json(path: Path) -> Any:
    """The file's JSON, or None when it does not parse (a tampered file)."""
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def _share(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1%}"


def drift_reasons(local: Path, limit: float, listed: bool) -> list[str]:
    """The ``max_impact_drift`` rule on the set's explanations over time."""
    result = read_json(local / "over_time.json") if listed else None
    if not isinstance(result, dict):
        return [
            "no explanations over time in the set, so --max-impact-drift cannot be judged; "
            "log the set with a time column (explain_and_log(over_time=...) or "
            "'shapgov explain --time-column')"
        ]
    worst = [
        (r.get("impact_l1") or 0.0, r.get("window"))
        for r in result.get("drift", [])
        if r.get("against") == "reference"
    ]
    over = sorted((d, w) for d, w in worst if d > limit)
    if not over:
        return []
    d, w = over[-1]
    return [
        f"impact drift {d:.3f} (L1 of impact shares against the reference window) in window "
        f"{w} exceeds max_impact_drift {limit:g}; {len(over)} window(s) over"
    ]


def stability_rule(limit: Any) -> float | None:
    """``min_reason_stability`` as a float in [0, 1] (``None``: no rule).

    :raises InputError: Anything else.
    """
    if limit is None:
        return None
    try:
        value = float(limit)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(limit, bool) or not 0.0 <= value <= 1.0:
        raise InputError(
            f"min_reason_stability is a share of reasons kept, in [0, 1], not {limit!r}"
        )
    return value


def reason_stability_reasons(local: Path, limit: float, listed: bool) -> list[str]:
    """The ``min_reason_stability`` rule on the set's adverse-action reasons."""
    summary = read_json(local / "reasons.json") if listed else None
    if not isinstance(summary, dict):
        return [
            "no adverse-action reasons in the set, so min_reason_stability cannot be judged; "
            "log the set with reasons (explain_and_log(reasons={'catalogue': ..., "
            "'decision': ..., 'reference': ..., 'stability': 20}))"
        ]
    figures = summary.get("stability")
    if not isinstance(figures, dict):
        return [
            "the set's adverse-action reasons were derived without stability resamples, so "
            "min_reason_stability cannot be judged; log them with reasons={..., "
            "'stability': 20} (or more resamples)"
        ]
    kept, resamples = figures.get("mean_share_kept"), figures.get("resamples")
    if kept is None:
        return [
            "the set's adverse-action reasons have no stability figure: no declined row got "
            "reasons, so min_reason_stability cannot be judged"
        ]
    withheld = figures.get("withheld_resamples") or 0
    if resamples and withheld >= resamples:
        return [
            f"all {resamples} stability resamples of the reasons were withheld by the "
            "additivity policy, so min_reason_stability cannot be judged"
        ]
    if kept >= limit:
        return []
    return [
        f"reason stability {kept:.4f} (mean share of a declined row's reasons kept across "
        f"{resamples} resamples of the reference population, reasons.json) is below "
        f"min_reason_stability {limit:g}; {_share(figures.get('min_share_kept'))} kept by the "
        "least stable row"
    ]


def reasons_additivity_reasons(local: Path, allow_warn: bool) -> list[str]:
    """The set's adverse-action reasons, judged like its values: a declined row whose
    reasons the additivity policy withheld was given none, so the set is not approved;
    a ``warn`` on the reasons' game needs ``allow_warn`` like one on the values."""
    summary = read_json(local / "reasons.json")
    if not isinstance(summary, dict):
        return ["reasons.json is not valid JSON (tampered)"]
    withheld = int((summary.get("status") or {}).get("withheld", 0))
    declined = int(summary.get("declined") or 0)
    if withheld:
        return [
            f"the additivity policy withheld the adverse-action reasons of {withheld} of the "
            f"{declined} declined rows (reasons.json): their applicants would get no "
            "statement of reasons; find why the reasons' game does not add up (its additivity "
            "report) before approving"
        ]
    status = (summary.get("additivity") or {}).get("status")
    if status == "warn" and not allow_warn:
        return ["the adverse-action reasons' additivity status is 'warn' (allow_warn to accept)"]
    return []


def fairness_rule(min_air: Any, max_proxy: Any) -> dict[str, float] | None:
    """The fairness rules as floats (``None``: none asked).

    :raises InputError: ``min_adverse_impact_ratio`` outside (0, 1] or ``max_proxy_score``
        outside [0.5, 1].
    """
    rules: dict[str, float] = {}
    for name, value, low, high in (
        ("min_adverse_impact_ratio", min_air, 0.0, 1.0),
        ("max_proxy_score", max_proxy, 0.5, 1.0),
    ):
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not low <= number <= high or number == 0.0:
            raise InputError(f"{name} must be a number in ({low:g}, {high:g}], not {value!r}")
        rules[name] = number
    return rules or None


def fairness_reasons(local: Path, rules: dict[str, float], listed: bool) -> list[str]:
    """The fairness rules on the set's ``fairness_groups.parquet`` and
    ``fairness_proxies.parquet``."""
    import pandas as pd

    if not listed:
        return [
            "no fair-lending checks in the set, so "
            + " and ".join(sorted(rules))
            + " cannot be judged; log the set with explain_and_log(fairness={'protected': ..., "
            "'decision': ...})"
        ]
    out = []
    if "min_adverse_impact_ratio" in rules:
        groups = pd.read_parquet(local / "fairness_groups.parquet")
        low = groups[groups["air"] < rules["min_adverse_impact_ratio"]]
        for r in low.itertuples():
            out.append(
                f"adverse impact ratio {r.air:.3f} of group {r.group} ({r.attribute}; {r.n} "
                f"rows, reference {r.reference}) is below min_adverse_impact_ratio "
                f"{rules['min_adverse_impact_ratio']:g}"
            )
    if "max_proxy_score" in rules:
        proxies = pd.read_parquet(local / "fairness_proxies.parquet")
        high = proxies[proxies["score"] >= rules["max_proxy_score"]]
        for r in high.itertuples():
            out.append(
                f"input {r.input} is a proxy for {r.attribute} (proxy score {r.score:.3f} >= "
                f"max_proxy_score {rules['max_proxy_score']:g}; {r.impact_share:.1%} of impact)"
            )
    return out


#: The metric each task's ``min_metric_gain`` judges (higher is better for both).
PRIMARY_METRIC = {"classification": "roc_auc", "regression": "r2"}


def comparison_reasons(client: Any, run_id: str, champion: str, rules: dict[str, Any]) -> list[str]:
    """The challenger rules on the comparison with version ``champion`` logged on this
    run (``shapgov-comparison/v<champion>``, its files checked against its manifest):
    ``max_impact_rank_change`` (no input of the champion's top k moved more ranks) and
    ``min_metric_gain`` (the primary metric, ROC AUC or R², gained at least this)."""
    import tempfile

    import pandas as pd

    from shapgov.mlflow.artifacts import sha256_file
    from shapgov.mlflow.comparing import COMPARISONS

    where = f"{COMPARISONS}/v{champion}"
    with tempfile.TemporaryDirectory(prefix="shapgov-against-") as tmp:
        try:
            local = Path(client.download_artifacts(run_id, where, tmp))
            manifest = json.loads((local / "manifest.json").read_text())
        except Exception:
            return [
                f"no comparison with the champion (version {champion}) is logged on this "
                "version's run, so the challenger rules cannot be judged; run 'shapgov compare "
                "NAME @champion VERSION --data ROWS' first"
            ]
        for file, digest in manifest.get("artifacts", {}).items():
            if not (local / file).exists() or sha256_file(local / file) != digest:
                return [f"the comparison's {file} does not match its manifest hash (tampered)"]
        comparison = read_json(local / "comparison.json") or {}
    out = []
    if rules.get("max_impact_rank_change") is not None:
        limit = int(rules["max_impact_rank_change"])
        impact = pd.DataFrame(comparison.get("impact", []))
        k = int(comparison.get("summary", {}).get("k", 5))
        top = impact[impact["rank_champion"] <= k] if len(impact) else impact
        moved = top[top["rank_change"].abs() > limit] if len(top) else top
        for r in moved.itertuples():
            out.append(
                f"input {r.input} moved from rank {r.rank_champion} to {r.rank_challenger} of "
                f"Feature Impact against the champion (max_impact_rank_change {limit})"
            )
    if rules.get("min_metric_gain") is not None:
        metrics = {m["metric"]: m for m in comparison.get("metrics", [])}
        name = next((m for m in PRIMARY_METRIC.values() if m in metrics), None)
        if name is None:
            out.append(
                "the comparison holds no metrics (it was run without outcomes), so "
                "min_metric_gain cannot be judged; compare with --target"
            )
        elif metrics[name]["gain"] < float(rules["min_metric_gain"]):
            m = metrics[name]
            out.append(
                f"{name} gain {m['gain']:+.4f} against the champion ({m['champion']:.4f} -> "
                f"{m['challenger']:.4f}; interval {m['low']:+.4f} .. {m['high']:+.4f}) is "
                f"below min_metric_gain {float(rules['min_metric_gain']):g}"
            )
    return out
