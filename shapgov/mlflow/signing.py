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

from shapgov.mlflow.failures import tracking_user
from shapgov.mlflow.keys import key_id, new_key_file, signing_key, verifying_keys
from shapgov.review import ledger as review_ledger

__all__ = ["key_id", "new_key_file", "signing_key", "verifying_keys"]

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


def approver() -> str:
    """Who approves: ``SHAPGOV_APPROVER``, else MLflow's tracking user, else the OS user."""
    return os.environ.get("SHAPGOV_APPROVER") or tracking_user() or getpass.getuser()


def payload(name: str, version: str | int, tags: dict[str, str]) -> bytes:
    """The canonical bytes signed: name, version and the :data:`SIGNED_TAGS`."""
    body = {"name": name, "version": str(version)}
    body.update({t: tags.get(t) for t in SIGNED_TAGS})
    body.update({t: tags[t] for t in REVIEW_TAGS if t in tags})
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


#: The experiment holding the approval ledger (:mod:`shapgov.review.ledger`); every signed
#: verdict is an entry of its hash chain beside the review actions.
LEDGER = review_ledger.LEDGER
ledger_name = review_ledger.ledger_name
#: Tags a verdict carries beside :data:`SIGNED_TAGS` where the review workflow recorded
#: them (signed when present: a verdict made before they existed still verifies).
REVIEW_TAGS = ("shapgov.approval.authenticated", "shapgov.approval.review")


def verdict_body(tags: dict[str, str]) -> dict[str, str | None]:
    """What a verdict's ledger entry records: the signed tags, signature and key id."""
    names = (*SIGNED_TAGS, *REVIEW_TAGS, SIGNATURE_TAG, KEY_ID_TAG)
    return {t: tags[t] for t in names if t in tags}


def ledger_reasons(client: Any, name: str, version: str | int, tags: dict[str, str]) -> list[str]:
    """Reasons the stored verdict is not the standing one by the ledger (none: it is): the
    ledger's chain does not verify, holds no entry with this verdict's signature, or a
    later entry for the version decided otherwise."""
    chain = review_ledger.read_chain(client)
    if chain.problems:
        return ["the approval ledger does not verify: " + "; ".join(chain.problems)]
    verdicts = [
        e for e in chain.entries
        if e.kind == "verdict" and e.model == name and e.version == str(version)
    ]  # fmt: skip
    signature = tags.get(SIGNATURE_TAG)
    matching = [i for i, e in enumerate(verdicts) if e.body.get(SIGNATURE_TAG) == signature]
    if not matching:
        if not chain.entries:
            return [f"no approval ledger (experiment {ledger_name()!r}) records this verdict"]
        return ["the approval ledger holds no record of this verdict (not written by approve)"]

    def decision(body: dict[str, Any]) -> tuple[Any, Any]:
        return body.get("shapgov.approval"), body.get("shapgov.approval.manifest_sha256")

    later = [e for e in verdicts[matching[-1] + 1 :] if decision(e.body) != decision(tags)]
    if later:
        newest = later[-1]
        return [
            f"a later verdict ({newest.body.get('shapgov.approval')} at "
            f"{newest.body.get('shapgov.approval.time')}, ledger entry {newest.seq}) was "
            "replaced by this older one"
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
