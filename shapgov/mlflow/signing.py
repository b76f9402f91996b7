"""Signed verdicts: an approval is a verdict only when its signature verifies.

Anyone with EDIT permission on a model can set a tag ``shapgov.approval = approved`` by
hand; nothing in the tag tells it from a real verdict. ``shapgov approve`` therefore signs
what it decided, with a key only the approval service holds: HMAC-SHA256 over the
canonical JSON of (model name, version, verdict, reasons, manifest SHA-256, report
SHA-256, time, approver, rules), written as ``shapgov.approval.signature`` beside the key's
id (``shapgov.approval.key_id``). :func:`verify_version` recomputes it and checks that the
artifact set is still the one approved; a hand-set tag, a verdict copied from another
version and a set changed after approval all fail.

The key: ``SHAPGOV_APPROVAL_KEY`` (the secret itself) or ``SHAPGOV_APPROVAL_KEY_FILE``
(a file holding it). Rotation: sign with the new key, keep the old ones for verifying in
``SHAPGOV_APPROVAL_OLD_KEYS_FILE`` (one key per line) until the versions they signed are
approved again.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapgov.errors import InputError
from shapgov.mlflow.failures import is_write_conflict, tracking_user

#: The tags the signature covers, beside name and version (read back from the version).
SIGNED_TAGS = (
    "shapgov.approval",
    "shapgov.approval.reasons",
    "shapgov.approval.manifest_sha256",
    "shapgov.approval.report_sha256",
    "shapgov.approval.time",
    "shapgov.approval.approver",
    "shapgov.approval.rules",
)
SIGNATURE_TAG = "shapgov.approval.signature"
KEY_ID_TAG = "shapgov.approval.key_id"


def _read_key(text: str, where: str) -> bytes:
    key = text.strip().encode()
    if len(key) < 16:
        raise InputError(
            f"the approval key in {where} is shorter than 16 bytes; use a long random secret"
        )
    return key


def signing_key() -> bytes | None:
    """The approval service's key, or ``None`` when none is configured.

    :raises InputError: The key file is missing or the key too short.
    """
    if os.environ.get("SHAPGOV_APPROVAL_KEY"):
        return _read_key(os.environ["SHAPGOV_APPROVAL_KEY"], "SHAPGOV_APPROVAL_KEY")
    path = os.environ.get("SHAPGOV_APPROVAL_KEY_FILE")
    if path:
        try:
            return _read_key(Path(path).read_text(), path)
        except OSError as err:
            raise InputError(f"cannot read SHAPGOV_APPROVAL_KEY_FILE {path}: {err}") from err
    return None


def verifying_keys() -> list[bytes]:
    """The current key and the old ones kept for verifying (rotation)."""
    keys = [k for k in [signing_key()] if k is not None]
    old = os.environ.get("SHAPGOV_APPROVAL_OLD_KEYS_FILE")
    if old:
        try:
            lines = Path(old).read_text().splitlines()
        except OSError as err:
            raise InputError(f"cannot read SHAPGOV_APPROVAL_OLD_KEYS_FILE {old}: {err}") from err
        keys += [_read_key(line, old) for line in lines if line.strip()]
    return keys


def new_key_file(path: str | Path) -> str:
    """Create a new approval key (64 random URL-safe characters, :mod:`secrets`) in a new
    file readable by its owner only (mode 0600), written whole or not at all; returns the
    key's id (:func:`key_id`).

    :raises FileExistsError: ``path`` exists (a key is never overwritten: rotate instead,
        keeping the old key in ``SHAPGOV_APPROVAL_OLD_KEYS_FILE``).
    :raises InputError: ``path``'s folder cannot be written.
    """
    import secrets
    import tempfile

    path = Path(path)
    key = secrets.token_urlsafe(48)
    if path.exists():
        raise FileExistsError(
            f"{path} exists; an approval key is never overwritten (to rotate, create the new "
            "key elsewhere and keep the old one in SHAPGOV_APPROVAL_OLD_KEYS_FILE)"
        )
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=".shapgov-key-")
        try:
            os.write(fd, f"{key}\n".encode())
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        os.link(tmp, path)  # fails if path appeared meanwhile: never overwritten
        os.unlink(tmp)
    except FileExistsError:
        os.unlink(tmp)
        raise FileExistsError(f"{path} exists; an approval key is never overwritten") from None
    except OSError as err:
        raise InputError(f"cannot write the approval key to {path}: {err}") from err
    return key_id(key.encode())


def key_id(key: bytes) -> str:
    """A key's public id: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


def approver() -> str:
    """Who approves: ``SHAPGOV_APPROVER``, else MLflow's tracking user, else the OS user."""
    return os.environ.get("SHAPGOV_APPROVER") or tracking_user() or getpass.getuser()


def payload(name: str, version: str | int, tags: dict[str, str]) -> bytes:
    """The canonical bytes signed: name, version and the :data:`SIGNED_TAGS`."""
    body = {"name": name, "version": str(version)}
    body.update({t: tags.get(t) for t in SIGNED_TAGS})
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(key: bytes, name: str, version: str | int, tags: dict[str, str]) -> str:
    """HMAC-SHA256 of :func:`payload`, hex."""
    return hmac.new(key, payload(name, version, tags), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_version`: ``verified`` and the reasons it is not."""

    verified: bool
    reasons: list[str] = field(default_factory=list)
    verdict: str | None = None
    approver: str | None = None


def verify_tags(name: str, version: str | int, tags: dict[str, str]) -> list[str]:
    """Reasons the verdict tags of ``name`` ``version`` do not verify (none: they do)."""
    if "shapgov.approval" not in tags:
        return ["the version carries no verdict"]
    signature = tags.get(SIGNATURE_TAG)
    if not signature:
        return ["the verdict is not signed (set by hand, or approved without a key)"]
    keys = {key_id(k): k for k in verifying_keys()}
    if not keys:
        return [
            "no approval key is configured to verify with: create one with 'shapgov keys new "
            "--out approval.key' and set SHAPGOV_APPROVAL_KEY_FILE=approval.key (or "
            "SHAPGOV_APPROVAL_KEY) for approve and verify"
        ]
    key = keys.get(tags.get(KEY_ID_TAG, ""))
    if key is None:
        return [f"the verdict was signed with key {tags.get(KEY_ID_TAG)!r}, which is not held"]
    if not hmac.compare_digest(sign(key, name, version, tags), signature):
        return [
            "the signature does not match the verdict (tags changed by hand, or copied from "
            "another version)"
        ]
    return []


#: The experiment holding the approval ledger: one run per signed verdict (see
#: :func:`record_in_ledger`); ``SHAPGOV_APPROVAL_LEDGER`` names another.
LEDGER = "shapgov-approval-ledger"


def ledger_name() -> str:
    return os.environ.get("SHAPGOV_APPROVAL_LEDGER") or LEDGER


def _ledger_key(name: str, version: str | int) -> str:
    """One tag to find a version's entries by (model names may hold any character)."""
    return hashlib.sha256(f"{name}\0{version}".encode()).hexdigest()[:32]


def _ledger_experiment(client: Any) -> str:
    """The ledger experiment's id, created when there is none. Two approvals that find no
    ledger at once both create it; the store lets one in and refuses the other (already
    exists, or the row's unique name in the database): the one refused reads it back."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(ledger_name())
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(ledger_name())
    except MlflowException as err:
        lost_race = getattr(err, "error_code", None) == "RESOURCE_ALREADY_EXISTS"
        if not (lost_race or is_write_conflict(err)):
            raise
        found = client.get_experiment_by_name(ledger_name())
        if found is None:
            raise
        return found.experiment_id


def record_in_ledger(client: Any, name: str, version: str | int, tags: dict[str, str]) -> None:
    """Append a signed verdict to the approval ledger (a finished run of its own in the
    :func:`ledger_name` experiment, created on first use).

    The version's tags hold only the newest verdict, and anyone with EDIT on the model can
    write them back to an older signed one (an approval over a later rejection). The ledger
    keeps every verdict; :func:`verify_version` rejects a stored verdict when the ledger
    holds a later one that decided otherwise. Only the approval service should be able to
    write to the ledger experiment (MLflow's auth app: its creator gets MANAGE, everybody
    else the default permission, which must be READ).
    """
    experiment = _ledger_experiment(client)
    entry = {
        "shapgov.ledger.key": _ledger_key(name, version),
        "shapgov.ledger.model": name[:5000],
        "shapgov.ledger.version": str(version),
        "shapgov.ledger.signature": tags[SIGNATURE_TAG],
        "shapgov.ledger.key_id": tags[KEY_ID_TAG],
        **{f"shapgov.ledger.{t.removeprefix('shapgov.')}": tags.get(t, "") for t in SIGNED_TAGS},
    }
    run = client.create_run(experiment, tags=entry, run_name=f"{name[:80]} v{version}")
    client.set_terminated(run.info.run_id)


def ledger_reasons(client: Any, name: str, version: str | int, tags: dict[str, str]) -> list[str]:
    """Reasons the stored verdict is not the standing one by the ledger (none: it is)."""
    found = client.get_experiment_by_name(ledger_name())
    if found is None:
        return [f"no approval ledger (experiment {ledger_name()!r}) records this verdict"]
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`shapgov.ledger.key` = '{_ledger_key(name, version)}'",
        max_results=10_000,
    )
    entries = [r.data.tags for r in runs]
    signature = tags.get(SIGNATURE_TAG)
    if not any(e.get("shapgov.ledger.signature") == signature for e in entries):
        return ["the approval ledger holds no record of this verdict (not written by approve)"]

    def decision(t: dict[str, str], prefix: str) -> tuple[str | None, ...]:
        return tuple(t.get(f"{prefix}{n}") for n in ("approval", "approval.manifest_sha256"))

    stored_time = tags.get("shapgov.approval.time", "")
    later = [
        e
        for e in entries
        if e.get("shapgov.ledger.approval.time", "") > stored_time
        and decision(e, "shapgov.ledger.") != decision(tags, "shapgov.")
    ]
    if later:
        newest = max(later, key=lambda e: e.get("shapgov.ledger.approval.time", ""))
        return [
            f"a later verdict ({newest.get('shapgov.ledger.approval')} at "
            f"{newest.get('shapgov.ledger.approval.time')}) was replaced by this older one"
        ]
    return []


def verify_version(name: str, version: str | int, *, client: Any = None) -> Verification:
    """Verify registered model ``name`` ``version``: its verdict is ``approved``, signed by
    a held key, the standing one in the approval ledger, and its source run's set is still
    the one approved (the manifest and report hashes signed, and every file the manifest
    lists present with its hash).

    :returns: :class:`Verification`; ``verified`` is False with the reasons otherwise.
    :raises TrackingUnavailableError: The tracking server did not answer.
    :raises TrackingPermissionError: The server refused to let this user read the version.
    :raises InputError: The approval key is malformed or its file unreadable.
    """
    import tempfile

    from mlflow.tracking import MlflowClient

    from shapgov.mlflow.artifacts import MANIFEST, sha256_file
    from shapgov.mlflow.failures import is_unavailable, tracking_errors, unavailable
    from shapgov.sinks.compliance import REPORT

    client = client or MlflowClient()
    action = f"verifying {name} version {version}"
    with tracking_errors(action, retry="verify again", writing=False):
        mv = client.get_model_version(name, str(version))
        tags = dict(mv.tags or {})
        reasons = verify_tags(name, version, tags)
        if not reasons:
            reasons = ledger_reasons(client, name, version, tags)
    if not reasons and tags.get("shapgov.approval") != "approved":
        reasons = [f"the verdict is {tags.get('shapgov.approval')!r}, not approved"]
    if not reasons and mv.run_id:
        with tempfile.TemporaryDirectory(prefix="shapgov-verify-") as tmp:
            try:
                local = Path(client.download_artifacts(mv.run_id, "shapgov", tmp))
            except Exception as err:
                if is_unavailable(err):  # a server that is down verifies nothing
                    raise unavailable(err, action, "verify again", writing=False) from err
                local = Path(tmp) / "absent"
            for file, tag in ((MANIFEST, "manifest_sha256"), (REPORT, "report_sha256")):
                digest = sha256_file(local / file) if (local / file).exists() else "none"
                if digest != tags.get(f"shapgov.approval.{tag}"):
                    reasons.append(f"the set's {file} changed after the verdict was signed")
            if not reasons:
                reasons += file_reasons(local)
    return Verification(
        not reasons, reasons, tags.get("shapgov.approval"), tags.get("shapgov.approval.approver")
    )


def file_reasons(local: Path) -> list[str]:
    """Reasons the set in ``local`` differs from its manifest: a listed file missing or
    with another SHA-256."""
    from shapgov.mlflow.artifacts import MANIFEST, sha256_file

    try:
        listed = json.loads((local / MANIFEST).read_text()).get("artifacts", {})
    except (OSError, ValueError, AttributeError):
        return [f"{MANIFEST} is missing or unreadable"]
    reasons = []
    for file, digest in sorted(listed.items()):
        if not (local / file).exists():
            reasons.append(f"{file} is listed in the manifest but missing")
        elif sha256_file(local / file) != digest:
            reasons.append(f"{file} does not match its manifest hash (changed)")
    return reasons
