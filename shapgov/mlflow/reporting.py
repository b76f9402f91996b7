"""``shapgov.report()`` / ``shapgov report``: the compliance report of a logged run or of a
registered model version, written to a file and logged back to the run."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from shapgov.errors import InputError, ShapgovError
from shapgov.mlflow.failures import tracking_errors, typed

#: Where the reports of registered model versions are logged in the source run.
APPROVAL_REPORTS = "shapgov-approval"


def resolve(
    *,
    run_id: str | None = None,
    model: str | None = None,
    version: str | int | None = None,
    client: Any = None,
) -> tuple[Any, Any]:
    """``(run, model_version)`` for a run id, or for a registered model version (whose
    source run holds the set); ``model_version`` is None for a bare run."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    if (run_id is None) == (model is None):
        raise InputError("name either a run (run_id=) or a registered model (model=, version=)")
    mv = None
    try:
        if model is not None:
            if version is None:
                raise InputError(f"pass the version of registered model {model!r} (version=)")
            mv = client.get_model_version(model, str(version))
            if not mv.run_id:
                raise InputError(
                    f"{model} version {version} has no source run, so no shapgov artifact set; "
                    "register a model logged in a run that holds one"
                )
            run_id = mv.run_id
        run = client.get_run(run_id)
    except MlflowException as err:
        error = typed(err, "reading the run", retry="report again", writing=False)
        raise error or InputError(f"MLflow could not find it: {err.message}") from err
    return run, mv


def download_set(run_id: str, directory: Path, *, client: Any = None) -> Path:
    """Download the run's ``shapgov/`` artifact set into ``directory``."""
    from mlflow.tracking import MlflowClient

    from shapgov.mlflow import ARTIFACT_PATH

    client = client or MlflowClient()
    names = {Path(f.path).name for f in client.list_artifacts(run_id, ARTIFACT_PATH)}
    if "manifest.json" not in names:
        raise InputError(
            f"run {run_id} has no complete shapgov artifact set; log one with "
            "shapgov.mlflow.log_explanation or 'shapgov explain'"
        )
    return Path(client.download_artifacts(run_id, ARTIFACT_PATH, str(directory)))


def report(
    *,
    run_id: str | None = None,
    model: str | None = None,
    version: str | int | None = None,
    out: str | Path = "report.html",
    log: bool = True,
    client: Any = None,
    **options: Any,
) -> Path:
    """Write the compliance report of a run, or of a registered model version (with its
    approval status), to ``out``; with ``log`` also log it to the run: a run's report
    replaces the set's ``shapgov/report.html`` and ``report.json``; a version's goes to
    ``shapgov-approval/v<version>/`` beside the set, leaving the approved report as it
    was signed.

    :param options: Passed to ``shapgov.sinks.compliance.build_context`` (``rows``,
        ``top_k``, ``top``, ``n_dependence``, ``random_state``).
    :returns: The path of the written file.
    :raises TrackingPermissionError: ``log`` without EDIT on the run (the file is written).
    """
    from mlflow.tracking import MlflowClient

    from shapgov.errors import TrackingPermissionError
    from shapgov.mlflow import ARTIFACT_PATH
    from shapgov.mlflow.failures import is_permission_denied
    from shapgov.sinks.compliance import REPORT, REPORT_RECORD, write_report

    client = client or MlflowClient()
    run, mv = resolve(run_id=run_id, model=model, version=version, client=client)
    out = Path(out)
    with (
        tempfile.TemporaryDirectory(prefix="shapgov-report-") as tmp,
        tracking_errors(f"reporting run {run.info.run_id}", retry="report again"),
    ):
        local = download_set(run.info.run_id, Path(tmp), client=client)
        state = None if mv is None else approval_state(mv)
        comparison = latest_comparison(run.info.run_id, Path(tmp) / "comparison", client=client)
        write_report(
            local, run=run, model_version=mv, approval_state=state, comparison=comparison,
            **options,
        )  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local / REPORT, out)
        if log:
            # a version's report goes beside the set: the set's own report is the one a
            # signed verdict names (its SHA-256), and replacing it would void the verdict
            where = ARTIFACT_PATH if mv is None else f"{APPROVAL_REPORTS}/v{mv.version}"
            try:
                for name in (REPORT, REPORT_RECORD):
                    client.log_artifact(run.info.run_id, str(local / name), where)
            except Exception as err:
                if not is_permission_denied(err):
                    raise
                raise TrackingPermissionError(
                    f"the report is written to {out}, but the tracking server refused to log "
                    f"it to run {run.info.run_id}: that needs EDIT on the run's experiment. "
                    "Ask for it, or pass log=False (shapgov report --no-log)."
                ) from err
    return out


def latest_comparison(run_id: str, directory: Path, *, client: Any) -> Path | None:
    """The run's comparison with a champion (the highest champion version compared),
    downloaded into ``directory``; ``None`` when none is logged."""
    from shapgov.mlflow.comparing import COMPARISONS

    try:
        found = [f.path for f in client.list_artifacts(run_id, COMPARISONS) if f.is_dir]
    except Exception:
        return None
    if not found:
        return None
    newest = max(
        found, key=lambda p: int(p.rsplit("/v", 1)[-1]) if p.rsplit("/v", 1)[-1].isdigit() else -1
    )
    return Path(client.download_artifacts(run_id, newest, str(directory)))


def approval_state(model_version: Any) -> dict[str, Any]:
    """What the report's approval section cannot check itself (the sink imports nothing
    of the MLflow layer): whether the version's verdict verifies with the keys held here,
    and the explaining models logged for it."""
    return {
        "signature": signature_status(
            model_version.name, model_version.version, dict(model_version.tags or {})
        ),
        "explaining_models": explaining_model_rows(model_version),
        "review": review_rows(model_version),
    }


def review_rows(model_version: Any) -> dict[str, Any]:
    """The version's review as the ledger records it (:mod:`shapgov.review`): whether the
    workflow is in force, its findings with their history, its sign-offs, who logged the
    set, whether every actor was authenticated, and the ledger's problems."""
    from mlflow.tracking import MlflowClient

    from shapgov.review.actions import review_state, set_of

    client = MlflowClient()
    state, chain = review_state(model_version.name, model_version.version, client=client)
    manifest, author = set_of(client, model_version.name, str(model_version.version))
    signoffs = state.signed_off(manifest)
    return {
        "in_force": state.in_force,
        "authenticated": all(e.authenticated for e in state.entries),
        "developer": None if author is None else author.describe(),
        "signoffs": [f"{e.actor} at {e.time[:19]} (entry {e.seq})" for e in signoffs],
        "findings": [
            {
                "id": f.id,
                "severity": f.severity,
                "title": f.title,
                "owner": f.owner,
                "due": f.due,
                "status": f.status,
                "history": [
                    {
                        "time": e.time[:19],
                        "kind": e.kind,
                        "actor": e.actor,
                        "text": e.body.get("text", ""),
                    }
                    for e in f.history
                ],
            }
            for f in state.findings
        ],
        "problems": chain.problems,
    }


def signature_status(name: str, version: str, tags: dict[str, str]) -> dict[str, Any]:
    """Whether the verdict verifies here, with the keys this process holds: signed, the
    standing one in the approval ledger, approved, and the set still the one approved
    (:func:`shapgov.mlflow.signing.verify_version`)."""
    from shapgov.mlflow import signing

    if "shapgov.approval" not in tags:
        return {"status": "unchecked", "text": "no verdict"}
    key = tags.get(signing.KEY_ID_TAG)
    if not tags.get(signing.SIGNATURE_TAG):
        return {"status": "not verified", "text": "not signed: set by hand or without a key"}
    try:
        if not signing.verifying_keys():
            return {
                "status": "unchecked",
                "text": f"signed with key {key}; no key here to check it",
            }
        result = signing.verify_version(name, version)
    except ShapgovError as err:
        return {"status": "unchecked", "text": f"key {key}: not checked ({err})"}
    if not result.verified:
        return {"status": "not verified", "text": "; ".join(result.reasons)}
    return {
        "status": "verified",
        "text": f"HMAC-SHA256 with key {key}; the standing verdict in the approval ledger; "
        "every file of the set as approved",
    }


def explaining_model_rows(model_version: Any) -> list[dict[str, Any]]:
    """The explaining models logged for the version, each with whether it serves the
    approved set (its manifest SHA-256 is the approved one)."""
    from shapgov.mlflow.approval import explaining_models

    approved = dict(model_version.tags or {}).get("shapgov.approval.manifest_sha256")
    return [
        {
            "uri": str(m.get("model_uri", "")),
            "manifest": str(m.get("manifest_sha256", "")),
            "current": m.get("manifest_sha256") == approved,
        }
        for m in explaining_models(model_version)
    ]
