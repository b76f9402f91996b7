"""Writing a verdict onto a model version: its tags (re-written until a signed verdict
reads back whole when concurrent approvals interleave), the alias it moves or withdraws,
and the checks that run before anything is written (EDIT permission, who approves).
:func:`shapgov.mlflow.approval.approve` decides; this module writes."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shapgov.errors import ApprovalConflictError, ApprovalPermissionError
from shapgov.mlflow import failures
from shapgov.review.identity import Identity

if TYPE_CHECKING:
    from shapgov.mlflow.approval import Approval


def refused_tags(name: str, version: str | int) -> ApprovalPermissionError:
    from shapgov.mlflow import signing

    return ApprovalPermissionError(
        f"the tracking server refused to record the verdict on {name} version {version} "
        f"for user {signing.tracking_user() or '(none)'!r}: approving needs EDIT (or MANAGE) "
        "permission on the registered model; ask its owner or an admin to grant it to the "
        "approval service's user. Nothing was recorded."
    )


def probe_edit(client: Any, name: str, version: str) -> None:
    """Write ``shapgov.approval.checked`` (when the last check ran) before the ledger
    entry: a user without EDIT on the model is refused here, before anything is recorded."""
    from mlflow.exceptions import MlflowException

    stamp = datetime.now(UTC).isoformat()
    try:
        failures.write_retrying(
            lambda: client.set_model_version_tag(name, version, "shapgov.approval.checked", stamp)
        )
    except MlflowException as err:
        if not failures.is_permission_denied(err):
            raise
        raise refused_tags(name, version) from err


def default_approver() -> Identity:
    """Who approves when no actor is passed (see :func:`approve`)."""
    import os

    from shapgov.errors import IdentityError
    from shapgov.mlflow import signing
    from shapgov.review.identity import current_identity

    try:
        return current_identity(os.environ.get("SHAPGOV_APPROVER"))
    except IdentityError:
        return Identity(signing.approver(), False, "operating-system user")


#: How often an approver rewrites its verdict when a concurrent approval of the same
#: version interleaved with it (read back, the tags did not verify).
RECORD_ATTEMPTS = 8


def record_tags(
    client: Any, name: str, version: str, tags: dict[str, str], *, signed: bool
) -> tuple[dict[str, str], int]:
    """Write the verdict tags (the verdict itself last); returns the tags as stored and
    how many times they were written.

    MLflow writes tags one by one (and two first writes of one tag at once can collide in
    the store: written again, :func:`~shapgov.mlflow.failures.write_retrying`), so two
    approvals of one version at once can leave a mix of both: a signature over one
    approval's time beside the other's. A signed verdict is therefore read back and
    verified; while it does not verify (an interleaving, not a forgery: both approvers
    hold the key) it is written again, after a random pause. The last approver to finish
    reads a verdict that verifies, so the version ends with one.
    """
    from shapgov.mlflow import signing

    tags = dict(tags)
    verdict = tags.pop("shapgov.approval")

    def write(key_name: str, value: str) -> None:
        failures.write_retrying(
            lambda: client.set_model_version_tag(name, version, key_name, value)
        )

    if not signed:  # an unsigned verdict leaves no earlier verdict's signature beside it
        held = dict(client.get_model_version(name, version).tags or {})
        for stale in (signing.SIGNATURE_TAG, signing.KEY_ID_TAG):
            if stale in held:
                failures.write_retrying(
                    lambda stale=stale: client.delete_model_version_tag(name, version, stale)
                )
    for attempt in range(RECORD_ATTEMPTS):
        for key_name, value in tags.items():
            write(key_name, value)
        write("shapgov.approval", verdict)  # last: whoever sees it sees its details set
        stored = dict(client.get_model_version(name, version).tags or {})
        if not signed or not signing.verify_tags(name, version, stored):
            return stored, attempt + 1
        time.sleep(random.uniform(0.05, 0.25) * (attempt + 1))
    raise ApprovalConflictError(
        f"{name} version {version}: concurrent approvals kept interleaving their verdict "
        f"tags ({RECORD_ATTEMPTS} attempts); approve again when the others are done"
    )


def move_alias(
    client: Any,
    name: str,
    version: str,
    alias: str | None,
    result: Approval,
    stored: dict[str, str],
) -> None:
    """Point ``alias`` at the version only on a verdict that stands as stored: approved,
    about the set just checked, and (with a key) verified. A rejection withdraws the
    alias when it points at this version: it must never name a version whose set fails."""
    if not alias:
        return
    from mlflow.exceptions import MlflowException

    from shapgov.mlflow import signing

    stands = (
        result.approved
        and stored.get("shapgov.approval") == "approved"
        and stored.get("shapgov.approval.manifest_sha256") == result.manifest_sha256
        and (signing.signing_key() is None or not signing.verify_tags(name, version, stored))
    )
    if stands:
        failures.write_retrying(lambda: client.set_registered_model_alias(name, alias, version))
        return
    try:
        current = client.get_model_version_by_alias(name, alias).version
    except MlflowException:
        return  # the alias names no version
    if str(current) == version and not result.approved:
        try:
            client.delete_registered_model_alias(name, alias)
        except MlflowException as err:
            if not failures.is_permission_denied(err):
                raise
            raise ApprovalPermissionError(
                f"the rejection of {name} version {version} is recorded (signed where a key "
                f"is held), but the alias {alias!r} still names this rejected version: the "
                "tracking server refused to withdraw it (deleting an alias needs MANAGE on "
                "the registered model). Grant MANAGE to the approval service's user, or "
                "point the alias elsewhere."
            ) from err
