"""Model-registry approval: a version is approved only on a complete, untampered set.

Checks, on the artifact set of the version's source run:

1. the manifest exists, names this run, and every artifact it lists is present with the
   same SHA-256;
2. the required artifacts are there (values, vertices, additivity, Feature Impact);
3. the additivity status is ``pass`` (``warn`` only with ``allow_warn=True``);
4. every vertex was explained through a matrix row that supports its task;
5. the compliance report is there, matches its recorded hash, and was built from this
   very manifest;
6. with ``max_impact_drift``: the set holds explanations over time
   (``over_time.json``) and no window's impact L1 distance to the reference window
   (:mod:`shapgov.analyses.over_time`) exceeds it;
7. with ``min_reason_stability``: the set holds adverse-action reasons
   (``reasons.json``) with stability figures, and their mean share of a declined row's
   reasons kept across resamples of the reference population
   (:mod:`shapgov.adverse_action.stability`) is at least it;
8. a set with adverse-action reasons: no declined row's reasons were withheld by the
   additivity policy, and their game's status is ``pass`` (``warn`` with ``allow_warn``)
   (:mod:`shapgov.mlflow.set_rules`).

The verdict is written as model-version tags (``shapgov.approval`` = approved | rejected,
``shapgov.approval.reasons``, ``shapgov.approval.time``, ``shapgov.approval.version``,
``shapgov.approval.manifest_sha256``: which set the verdict is about, and
``shapgov.approval.rules``: the optional rules it applied, as JSON;
``shapgov.approval.report_sha256`` and ``shapgov.approval.approver``; and, with an
approval key configured, ``shapgov.approval.signature`` over all of them, see
:mod:`shapgov.mlflow.signing`). Re-running gives the same verdict (idempotent).

On a shared tracking server: the verdict is read back and, when signed, verified before
an alias moves (concurrent approvals of one version that interleave their tags are
written again until the stored verdict verifies); an alias is set only on a verdict that
stands as stored, and a rejection withdraws an alias that points at the version. A user
without EDIT on the model gets :class:`~shapgov.errors.ApprovalPermissionError` and
nothing is recorded; a server that does not answer gives
:class:`~shapgov.errors.TrackingUnavailableError` (retry), never a verdict.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shapgov.errors import (
    ApprovalConflictError,
    ApprovalPermissionError,
    InputError,
    UnsignedVerdictWarning,
)
from shapgov.mlflow import failures, set_rules
from shapgov.mlflow.artifacts import MANIFEST, REQUIRED, sha256_file
from shapgov.mlflow.verdict_writes import (
    default_approver,
    move_alias,
    probe_edit,
    record_tags,
    refused_tags,
)
from shapgov.review import actions as review
from shapgov.review.identity import Identity


@dataclass(frozen=True)
class Approval:
    """The verdict :func:`shapgov.approve` recorded on a model version: ``approved``, the
    ``reasons`` it was rejected for (none when approved), the source ``run_id``, and the
    SHA-256 of the manifest and compliance report it judged."""

    approved: bool
    reasons: list[str] = field(default_factory=list)
    run_id: str | None = None
    manifest_sha256: str | None = None  # of the set the verdict is about
    report_sha256: str | None = None  # of its compliance report
    #: How many times the verdict was written: more than 1 when a concurrent approval of
    #: the same version interleaved its tags (see
    #: ``shapgov.mlflow.verdict_writes.record_tags``).
    writes: int = 1

    @property
    def verdict(self) -> str:
        """``"approved"`` or ``"rejected"``, as the version's ``shapgov.approval`` tag."""
        return "approved" if self.approved else "rejected"


def check_run(
    run_id: str,
    *,
    allow_warn: bool = False,
    max_impact_drift: float | None = None,
    min_reason_stability: float | None = None,
    fairness_rules: dict[str, float] | None = None,
    client: Any = None,
) -> Approval:
    """Verify the shapgov artifact set of one run (no registry writes).

    :raises InputError: ``min_reason_stability`` is not a number in [0, 1].
    :raises TrackingUnavailableError: The tracking server did not answer.
    :raises TrackingPermissionError: The server refused this user the run's artifacts.
    """
    from mlflow.tracking import MlflowClient

    min_reason_stability = set_rules.stability_rule(min_reason_stability)
    client = client or MlflowClient()
    reasons: list[str] = []
    with tempfile.TemporaryDirectory(prefix="shapgov-approve-") as tmp:
        try:
            local = Path(client.download_artifacts(run_id, "shapgov", tmp))
        except Exception as err:
            # a server that is down, or refuses this user, decides nothing
            action = f"checking run {run_id}"
            error = failures.typed(err, action, retry="check again", writing=False)
            if error is not None:
                raise error from err
            return Approval(
                False,
                [
                    f"no shapgov artifact set in run {run_id}: log one into that run with "
                    f"shapgov.mlflow.explain_and_log(model, X, background=..., run_id="
                    f"{run_id!r}) or 'shapgov explain --model-uri models:/NAME/VERSION --data "
                    "ROWS.parquet' (it logs into the version's run), then approve again"
                ],
                run_id,
            )
        manifest_path = local / MANIFEST
        if not manifest_path.exists():
            return Approval(False, ["the artifact set has no manifest (incomplete upload)"], run_id)
        manifest_sha = sha256_file(manifest_path)
        manifest = set_rules.read_json(manifest_path)
        if not isinstance(manifest, dict):
            return Approval(False, [f"{MANIFEST} is not a valid manifest"], run_id, manifest_sha)
        if manifest.get("run_id") != run_id:
            reasons.append(
                f"the artifact set was logged for run {manifest.get('run_id')}, not this run "
                f"({run_id})"
            )
        for name, digest in sorted(manifest.get("artifacts", {}).items()):
            path = local / name
            if not path.exists():
                reasons.append(f"{name} is listed in the manifest but missing")
            elif sha256_file(path) != digest:
                reasons.append(f"{name} does not match its manifest hash (tampered)")
        missing = [n for n in REQUIRED if n not in manifest.get("artifacts", {})]
        if missing:
            reasons.append(f"required artifacts missing: {', '.join(missing)}")
        status = manifest.get("status")
        if status == "fail" or (status == "warn" and not allow_warn):
            reasons.append(f"additivity status is {status!r}")
        elif status not in ("pass", "warn"):
            reasons.append(f"unknown additivity status {status!r}")
        vertices_path = local / "vertices.json"
        if vertices_path.exists():
            # judged by the matrix row as it stood when the vertex was explained
            for vertex in set_rules.read_json(vertices_path) or []:
                if vertex.get("matrix_row") is None:
                    reasons.append(f"vertex {vertex['name']} has no compatibility-matrix row")
                elif vertex.get("matrix_status") != "supported":
                    reasons.append(
                        f"vertex {vertex['name']} is {vertex.get('matrix_status')!r} in "
                        f"row {vertex['matrix_row']!r}"
                    )
        reasons.extend(_report_reasons(local, run_id))
        report_path = local / "report.html"
        report_sha = sha256_file(report_path) if report_path.exists() else None
        if "spark.json" in manifest.get("artifacts", {}):
            reasons.extend(_table_reasons(local / "spark.json", allow_warn))
            reasons.extend(_uploaded_part_reasons(client, run_id, local / "spark.json", tmp))
        if max_impact_drift is not None:
            listed = "over_time.json" in manifest.get("artifacts", {})
            reasons.extend(set_rules.drift_reasons(local, max_impact_drift, listed))
        if min_reason_stability is not None:
            listed = "reasons.json" in manifest.get("artifacts", {})
            reasons.extend(set_rules.reason_stability_reasons(local, min_reason_stability, listed))
        if "reasons.json" in manifest.get("artifacts", {}):
            reasons.extend(set_rules.reasons_additivity_reasons(local, allow_warn))
        if fairness_rules:
            listed = "fairness.json" in manifest.get("artifacts", {})
            reasons.extend(set_rules.fairness_reasons(local, fairness_rules, listed))
    return Approval(not reasons, reasons, run_id, manifest_sha, report_sha)


def _table_reasons(document_path: Path, allow_warn: bool) -> list[str]:
    """A table explained on Spark: its verdict, and every published Parquet part present,
    unaltered and counted as listed, with no part the document does not list."""
    import pyarrow.parquet as pq

    document = set_rules.read_json(document_path)
    if not isinstance(document, dict) or not isinstance(document.get("parts"), list):
        return ["spark.json is not a valid table document"]
    reasons = []
    status = (document.get("additivity") or {}).get("status")
    if status == "fail" or (status == "warn" and not allow_warn) or status not in ("pass", "warn"):
        reasons.append(f"the table's additivity status is {status!r}")
    directory = Path(str(document.get("path")))
    if not directory.is_dir():
        return [*reasons, f"the published table {directory} is missing"]
    listed = {p.get("name"): p for p in document["parts"] if isinstance(p, dict)}
    for name, part in sorted(listed.items()):
        path = directory / str(name)
        if not path.exists():
            reasons.append(f"table part {name} is listed but missing")
        elif sha256_file(path) != part.get("sha256"):
            reasons.append(f"table part {name} does not match its hash (altered)")
        elif int(pq.read_metadata(path).num_rows) != part.get("rows"):
            reasons.append(f"table part {name} does not hold its {part.get('rows')} rows")
    allowed = set(listed) | {"_SUCCESS"}
    for path in sorted(directory.iterdir()):
        crc_of = (
            path.name[1:-4] if path.name.startswith(".") and path.name.endswith(".crc") else None
        )
        if path.name not in allowed and crc_of not in allowed:
            reasons.append(f"table file {path.name} is not listed (an extra part)")
    rows = sum(int(p.get("rows", 0)) for p in listed.values())
    if rows != document.get("rows"):
        reasons.append(f"the parts hold {rows} rows, the table {document.get('rows')}")
    return reasons


def _uploaded_part_reasons(client: Any, run_id: str, document_path: Path, tmp: str) -> list[str]:
    """Parts a small table uploaded to the run: each present and equal to its hash."""
    document = set_rules.read_json(document_path)
    parts = document.get("parts", []) if isinstance(document, dict) else []
    prefix = f"runs:/{run_id}/"
    uploaded = [p for p in parts if str(p.get("uri", "")).startswith(prefix)]
    if not uploaded:
        return []
    folder = str(uploaded[0]["uri"])[len(prefix) :].rsplit("/", 1)[0]
    try:
        local = Path(client.download_artifacts(run_id, folder, tmp))
    except Exception as err:
        return [f"the table's uploaded parts cannot be read ({err})"]
    reasons = []
    for part in uploaded:
        path = local / str(part["name"])
        if not path.exists():
            reasons.append(f"uploaded table part {part['name']} is missing from the run")
        elif sha256_file(path) != part.get("sha256"):
            reasons.append(f"uploaded table part {part['name']} does not match its hash")
    return reasons


def _report_reasons(local: Path, run_id: str) -> list[str]:
    from shapgov.sinks.compliance import REPORT, REPORT_RECORD

    record_path = local / REPORT_RECORD
    if not (local / REPORT).exists() or not record_path.exists():
        return ["no compliance report (run 'shapgov report --run-id RUN')"]
    record = set_rules.read_json(record_path)
    if not isinstance(record, dict):
        return [f"{REPORT_RECORD} is not valid JSON (tampered)"]
    reasons = []
    if record.get("run_id") != run_id:
        reasons.append(f"the compliance report was built for run {record.get('run_id')}")
    if sha256_file(local / REPORT) != record.get("report_sha256"):
        reasons.append(f"{REPORT} does not match its recorded hash (tampered)")
    if record.get("manifest_sha256") != sha256_file(local / MANIFEST):
        reasons.append("the compliance report was built from another artifact set")
    return reasons


def _task(local: Path) -> str | None:
    import pyarrow.parquet as pq

    path = local / "values.parquet"
    if not path.exists():
        return None
    meta = pq.read_schema(path).metadata or {}
    for value in meta.values():
        try:
            return json.loads(value).get("task")
        except (ValueError, AttributeError):
            continue
    return None


#: Model-version tag listing the explaining models logged for the version (JSON list of
#: ``{"model_uri", "manifest_sha256", "registered_model_name"}``).
EXPLAINING_MODELS_TAG = "shapgov.explaining_models"


def explaining_models(model_version: Any) -> list[dict[str, Any]]:
    """The explaining models recorded on a model version (see
    :func:`shapgov.mlflow.serving.log_explaining_model`)."""
    raw = dict(model_version.tags or {}).get(EXPLAINING_MODELS_TAG)
    try:
        listed = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [m for m in listed if isinstance(m, dict)]


def _judge(
    client: Any,
    mv: Any,
    allow_warn: bool,
    require_explaining_model: bool,
    max_impact_drift: float | None,
    min_reason_stability: float | None = None,
    fairness_rules: dict[str, float] | None = None,
) -> Approval:
    """The verdict on one model version (no writes)."""
    if not mv.run_id:
        result = Approval(False, ["the model version has no source run"], None)
    else:
        result = check_run(
            mv.run_id,
            allow_warn=allow_warn,
            max_impact_drift=max_impact_drift,
            min_reason_stability=min_reason_stability,
            fairness_rules=fairness_rules,
            client=client,
        )
    if require_explaining_model and result.approved:
        carried = {m.get("manifest_sha256") for m in explaining_models(mv)}
        if result.manifest_sha256 not in carried:
            result = Approval(
                False,
                [
                    "no explaining model carries this version's manifest hash; log one with "
                    "shapgov.mlflow.log_explaining_model and approve again"
                ],
                result.run_id,
                result.manifest_sha256,
                result.report_sha256,
            )
    return result


def approve(
    name: str,
    version: str | int,
    *,
    alias: str | None = None,
    allow_warn: bool = False,
    require_explaining_model: bool = False,
    max_impact_drift: float | None = None,
    min_reason_stability: float | None = None,
    min_adverse_impact_ratio: float | None = None,
    max_proxy_score: float | None = None,
    against: str | None = None,
    max_impact_rank_change: int | None = None,
    min_metric_gain: float | None = None,
    actor: Identity | None = None,
    reject_reason: str | None = None,
    client: Any = None,
) -> Approval:
    """Check a registered model version and record the verdict on it (see the module).

    Where the review workflow is in force for the model (:mod:`shapgov.review.actions`: a role was
    granted for it or globally), the verdict is also a ledger entry under its rules: the
    actor must be an approver who did not log the set, and an approval needs a
    validator's sign-off of this very set by another user and no open High finding
    (open Medium findings are listed in the verdict's reasons).

    :param actor: Who approves (:func:`shapgov.review.identity.current_identity` when omitted:
        the user the tracking server signs in, else ``SHAPGOV_USER`` or
        ``SHAPGOV_APPROVER``, else the operating-system user where the workflow is not in
        force).
    :param reject_reason: A reviewer rejects the version for this reason (recorded first
        among the verdict's reasons) whatever the checks found.
    :raises ReviewRefusedError: A review rule refused the verdict; nothing was recorded.

    :param max_impact_drift: Reject when a window's impact drift (L1 distance of impact
        shares to the reference window, in [0, 2]) exceeds it, or when the set holds no
        explanations over time.
    :param min_reason_stability: Reject when the set's adverse-action reasons keep, on
        average, less than this share of a declined row's reasons across the stability
        resamples of the reference population (``mean_share_kept`` in ``reasons.json``,
        in [0, 1]), or when the set holds no reasons or no stability figures.
    :param min_adverse_impact_ratio: Reject when a protected group's adverse impact ratio
        (``fairness_groups.parquet``) is below it, flagged or not, or when the set holds no
        fair-lending checks.
    :param max_proxy_score: Reject when an input's proxy score for a protected attribute
        (``fairness_proxies.parquet``, 0.5..1) reaches it, or when the set holds no
        fair-lending checks.
    :param against: An alias (``"champion"``) or version of the same model: the challenger
        rules judge the comparison with it logged on this version's run
        (:func:`shapgov.compare_versions` with ``log=True``).
    :param max_impact_rank_change: Reject when an input of the champion's top k moved more
        ranks than this in the challenger's Feature Impact (needs ``against``).
    :param min_metric_gain: Reject when the primary metric (ROC AUC, or R² for a regressor)
        gained less than this against the champion (needs ``against``).
    :raises InputError: ``min_reason_stability`` is not a number in [0, 1], a fairness
        rule is out of its range, or a challenger rule without ``against`` (nothing is
        checked or recorded).
    :param require_explaining_model: Also require an explaining model (logged with
        :func:`shapgov.mlflow.serving.log_explaining_model`) that carries the manifest
        SHA-256 of the set being approved: the version is served with this very game.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from shapgov._version import __version__
    from shapgov.mlflow import signing

    min_reason_stability = set_rules.stability_rule(min_reason_stability)
    fairness_rules = set_rules.fairness_rule(min_adverse_impact_ratio, max_proxy_score)
    challenger_rules = {
        k: v
        for k, v in (
            ("max_impact_rank_change", max_impact_rank_change),
            ("min_metric_gain", min_metric_gain),
        )
        if v is not None
    }
    if challenger_rules and against is None:
        raise InputError(
            "max_impact_rank_change and min_metric_gain judge a comparison with the champion: "
            "pass against='champion' (an alias or a version)"
        )
    client = client or MlflowClient()
    key = signing.signing_key()  # a malformed key fails before any work
    with failures.tracking_errors(
        f"checking {name} version {version}", retry="run the approval again", writing=False
    ):
        try:
            mv = client.get_model_version(name, str(version))
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise InputError(
                f"{name} version {version} is not a registered model version; register it "
                "first (mlflow.register_model)"
            ) from err
        result = _judge(
            client, mv, allow_warn, require_explaining_model, max_impact_drift,
            min_reason_stability, fairness_rules,
        )  # fmt: skip
        champion = None
        if against is not None:
            champion = str(against)
            if not champion.isdigit():
                champion = str(client.get_model_version_by_alias(name, against).version)
            if challenger_rules and mv.run_id:
                extra = set_rules.comparison_reasons(client, mv.run_id, champion, challenger_rules)
                if extra:
                    result = replace(result, approved=False, reasons=[*result.reasons, *extra])

    if reject_reason is not None:
        if not isinstance(reject_reason, str) or not reject_reason.strip():
            raise InputError("a rejection needs its reason (reject_reason is empty)")
        result = replace(
            result,
            approved=False,
            reasons=[f"rejected by the reviewer: {reject_reason.strip()[:2000]}", *result.reasons],
        )
    actor = actor or default_approver()
    with failures.tracking_errors(
        f"reading the review ledger for {name} version {version}", retry="approve again",
        writing=False,
    ):  # fmt: skip
        state, _ = review.review_state(name, version, client=client)
        author = review.set_of(client, name, str(version))[1] if state.in_force else None
    review.approval_check(state, actor, result.manifest_sha256, author, approving=result.approved)
    medium = [f"{f.id} {f.title}" for f in state.open_findings("Medium")] if state.in_force else []
    summary = "; ".join(result.reasons) or "all checks passed"
    if result.approved and medium:
        summary += "; open Medium findings: " + "; ".join(medium)
    tags = {
        "shapgov.approval": result.verdict,
        "shapgov.approval.reasons": summary,
        "shapgov.approval.time": datetime.now(UTC).isoformat(),
        "shapgov.approval.version": __version__,
        "shapgov.approval.manifest_sha256": result.manifest_sha256 or "none",
        "shapgov.approval.report_sha256": result.report_sha256 or "none",
        "shapgov.approval.approver": actor.name,
        "shapgov.approval.authenticated": "true" if actor.authenticated else "false",
        "shapgov.approval.rules": json.dumps(
            {
                "allow_warn": allow_warn,
                "require_explaining_model": require_explaining_model,
                "max_impact_drift": max_impact_drift,
                "min_reason_stability": min_reason_stability,
                "min_adverse_impact_ratio": min_adverse_impact_ratio,
                "max_proxy_score": max_proxy_score,
                "against": None if champion is None else f"{against} (version {champion})",
                "max_impact_rank_change": max_impact_rank_change,
                "min_metric_gain": min_metric_gain,
            },
            sort_keys=True,
        ),
    }
    if state.in_force:
        tags["shapgov.approval.review"] = json.dumps(
            {
                "signoffs": [
                    {"by": e.actor, "entry": e.seq}
                    for e in state.signed_off(result.manifest_sha256)
                ],
                "open_medium_findings": medium,
            },
            sort_keys=True,
        )
    tags = {k: v[:5000] for k, v in tags.items()}
    if key is not None:  # signed over the tags exactly as they are stored
        tags[signing.KEY_ID_TAG] = signing.key_id(key)
        tags[signing.SIGNATURE_TAG] = signing.sign(key, name, version, tags)
    with failures.tracking_errors(
        f"recording the verdict on {name} version {version}",
        retry="run the approval again (it re-checks the set and rewrites the verdict)",
    ):
        if key is not None:  # the ledger first: a verdict it refuses is not recorded at all
            probe_edit(client, name, str(version))
            try:
                review.record_verdict(
                    client, name, str(version), signing.verdict_body(tags), actor,
                    before=state, manifest=result.manifest_sha256, author=author,
                    approving=result.approved,
                )  # fmt: skip
            except MlflowException as err:
                if not failures.is_permission_denied(err):
                    raise
                raise ApprovalPermissionError(
                    f"the tracking server refused user {signing.tracking_user() or '(none)'!r} "
                    f"a record in the approval ledger (experiment {signing.ledger_name()!r}), "
                    f"so no verdict on {name} version {version} was recorded. The approval "
                    "service's user must be able to write there (it is, when it created the "
                    "ledger)."
                ) from err
        elif state.in_force:
            raise InputError(
                f"the review workflow is in force for {name}: its verdicts are signed ledger "
                "entries and need the approval key (SHAPGOV_APPROVAL_KEY_FILE or "
                "SHAPGOV_APPROVAL_KEY). Nothing was recorded."
            )
        try:
            stored, writes = record_tags(client, name, str(version), tags, signed=key is not None)
        except MlflowException as err:
            if not failures.is_permission_denied(err):
                raise
            raise refused_tags(name, version) from err
        decided = (result.verdict, tags["shapgov.approval.manifest_sha256"])
        standing = (stored.get("shapgov.approval"), stored.get("shapgov.approval.manifest_sha256"))
        if standing != decided:
            raise ApprovalConflictError(
                f"{name} version {version}: this approval decided {result.verdict!r}, but a "
                f"concurrent approval recorded {standing[0]!r} after it (on the set "
                f"{standing[1]}); no alias was moved. Approve again when the other is done."
            )
        move_alias(client, name, str(version), alias, result, stored)
    if key is None:
        warnings.warn(
            UnsignedVerdictWarning(
                f"the verdict on {name} version {version} is not signed (no approval key: "
                "SHAPGOV_APPROVAL_KEY or SHAPGOV_APPROVAL_KEY_FILE), so 'shapgov verify' and "
                "serving where a key is held do not accept it; create a key with 'shapgov "
                "keys new --out approval.key', set SHAPGOV_APPROVAL_KEY_FILE=approval.key and "
                "approve again"
            ),
            stacklevel=2,
        )
    return replace(result, writes=writes)
