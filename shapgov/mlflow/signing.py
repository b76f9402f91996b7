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


def key_id(key: bytes) -> str:
    """A key's public id: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


def approver() -> str:
    """Who approves: ``SHAPGOV_APPROVER``, else MLflow's tracking user, else the OS user."""
    return (
        os.environ.get("SHAPGOV_APPROVER")
        or os.environ.get("MLFLOW_TRACKING_USERNAME")
        or getpass.getuser()
    )


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
        return ["no approval key is configured to verify with (SHAPGOV_APPROVAL_KEY)"]
    key = keys.get(tags.get(KEY_ID_TAG, ""))
    if key is None:
        return [f"the verdict was signed with key {tags.get(KEY_ID_TAG)!r}, which is not held"]
    if not hmac.compare_digest(sign(key, name, version, tags), signature):
        return [
            "the signature does not match the verdict (tags changed by hand, or copied from "
            "another version)"
        ]
    return []


def verify_version(name: str, version: str | int, *, client: Any = None) -> Verification:
    """Verify the signed verdict of registered model ``name`` ``version``, and that its
    source run's set is still the one approved (manifest and report hashes)."""
    import tempfile

    from mlflow.tracking import MlflowClient

    from shapgov.mlflow.artifacts import MANIFEST, sha256_file
    from shapgov.mlflow.failures import is_unavailable, tracking_errors, unavailable
    from shapgov.sinks.compliance import REPORT

    client = client or MlflowClient()
    with tracking_errors(f"verifying {name} version {version}", retry="verify again"):
        mv = client.get_model_version(name, str(version))
    tags = dict(mv.tags or {})
    reasons = verify_tags(name, version, tags)
    if not reasons and mv.run_id:
        with tempfile.TemporaryDirectory(prefix="shapgov-verify-") as tmp:
            for file, tag in ((MANIFEST, "manifest_sha256"), (REPORT, "report_sha256")):
                try:
                    local = client.download_artifacts(mv.run_id, f"shapgov/{file}", tmp)
                    digest = sha256_file(Path(local))
                except Exception as err:
                    if is_unavailable(err):  # a server that is down verifies nothing
                        raise unavailable(err, f"verifying {name}", "verify again") from err
                    digest = "none"
                if digest != tags.get(f"shapgov.approval.{tag}"):
                    reasons.append(f"the set's {file} changed after the verdict was signed")
    return Verification(
        not reasons, reasons, tags.get("shapgov.approval"), tags.get("shapgov.approval.approver")
    )
