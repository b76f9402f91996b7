"""The review workflow's actions, each checked against its rules and recorded whole in the
ledger, or refused with a typed error and nothing recorded.

Rules (SR 11-7 "effective challenge" by people independent of development; PRA SS1/23
principle 4):

- roles are granted and revoked by an administrator (the auth app's admin on a shared
  server; on a store without authentication the grant is declared like every action);
- only a validator records, and closes, a finding; only its owner answers it;
- only a validator signs off a set, never the user who logged it, and not while a High
  finding is open;
- only an approver records a verdict; an approval needs a validator's sign-off of the very
  set approved, by another user (four eyes), no open High finding, and an approver who
  did not log the set (:func:`approval_check`).

Every rule is judged on the chain the entry extends (:func:`shapgov.review.ledger.append`
re-checks after losing a race), so two actions at once cannot both pass a rule that only
one of them may pass.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from shapgov.errors import InputError, ReviewRefusedError
from shapgov.review import ledger
from shapgov.review.identity import Identity, current_identity, set_author
from shapgov.review.state import ROLES, SEVERITIES, Finding, ReviewState, fold

MAX_TITLE = 200
MAX_TEXT = 4000


def _client(client: Any) -> Any:
    if client is not None:
        return client
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def _text(value: Any, what: str, limit: int, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be text, not {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise InputError(f"{what} is empty; say what it is")
    if len(value) > limit:
        raise InputError(f"{what} is {len(value)} characters; at most {limit}")
    return value


def set_of(client: Any, model: str, version: str) -> tuple[str | None, Identity | None]:
    """(manifest SHA-256, author) of the set logged in the version's source run."""
    import json
    import tempfile
    from pathlib import Path

    from mlflow.exceptions import MlflowException

    from shapgov.mlflow.artifacts import MANIFEST, sha256_file

    try:
        mv = client.get_model_version(model, version)
    except MlflowException as err:
        if getattr(err, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise InputError(f"{model} version {version} is not a registered model version") from err
    if not mv.run_id:
        return None, None
    with tempfile.TemporaryDirectory(prefix="shapgov-review-") as tmp:
        try:
            local = Path(client.download_artifacts(mv.run_id, f"shapgov/{MANIFEST}", tmp))
        except Exception as err:
            from shapgov.mlflow.failures import typed

            error = typed(err, f"reading the set of {model} v{version}", retry="try again",
                          writing=False)  # fmt: skip
            if error is not None:
                raise error from err
            return None, None
        try:
            manifest = json.loads(local.read_text())
        except ValueError:
            manifest = {}
        return sha256_file(local), set_author(manifest, client.get_run(mv.run_id))


def _state(chain: ledger.Chain, model: str, version: str) -> ReviewState:
    return fold(chain.entries, model, version)


def _require_role(state: ReviewState, actor: Identity, role: str, action: str) -> None:
    if not state.has_role(actor.name, role):
        held = ", ".join(state.roles_of(actor.name)) or "no role"
        raise ReviewRefusedError(
            f"{actor.name} cannot {action} on {state.model}: that needs the {role} role "
            f"({actor.name} holds {held}); an administrator grants it with 'shapgov roles "
            f"grant --user {actor.name} --role {role} --model {state.model}'. Nothing was "
            "recorded."
        )


def _finding(state: ReviewState, finding_id: str) -> Finding:
    for found in state.findings:
        if found.id == finding_id:
            return found
    known = ", ".join(f.id for f in state.findings) or "none"
    raise InputError(
        f"{state.model} version {state.version} has no finding {finding_id!r} (its findings: "
        f"{known})"
    )


def _actor(actor: Identity | None) -> Identity:
    return actor if actor is not None else current_identity()


def _append(client: Any, kind: str, model: str | None, version: str | None, actor: Identity,
            body: dict[str, Any], check: Any) -> ledger.Entry:  # fmt: skip
    from shapgov.mlflow.failures import tracking_errors

    with tracking_errors(f"recording a {kind} in the review ledger", retry="run it again"):
        return ledger.append(
            client, kind=kind, model=model, version=version, actor=actor.name,
            authenticated=actor.authenticated, body=body, check=check,
        )  # fmt: skip


def grant_role(
    user: str,
    role: str,
    *,
    model: str | None = None,
    revoke: bool = False,
    actor: Identity | None = None,
    client: Any = None,
) -> ledger.Entry:
    """Grant (or with ``revoke`` take back) ``role`` to ``user`` on registered model
    ``model`` (every model when ``None``), as a signed ledger entry.

    :raises InputError: ``role`` is not one of :data:`~shapgov.review.state.ROLES`, or
        ``user`` is empty.
    :raises ReviewRefusedError: On a server with authentication, the actor is not an
        administrator of the auth app.
    """
    actor = _actor(actor)
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    user = _text(user, "the user", 250)
    if actor.authenticated and not actor.is_admin:
        raise ReviewRefusedError(
            f"{actor.name} is not an administrator of the tracking server: only an "
            "administrator grants or revokes review roles. Nothing was recorded."
        )
    return _append(
        _client(client), "role_revoke" if revoke else "role_grant", model, None, actor,
        {"user": user, "role": role, "scope": model or "*"}, None,
    )  # fmt: skip


def add_finding(
    model: str,
    version: str | int,
    *,
    severity: str,
    title: str,
    text: str,
    owner: str,
    due: str,
    actor: Identity | None = None,
    client: Any = None,
) -> Finding:
    """Record a validator's finding on ``model`` ``version``.

    :param severity: ``High`` (blocks approval while open), ``Medium`` (listed in the
        verdict while open) or ``Low``.
    :param due: ISO date (YYYY-MM-DD) by which ``owner`` should answer.
    :returns: The :class:`~shapgov.review.state.Finding` as recorded (id ``F<entry>``).
    :raises InputError: A field is missing, too long or malformed; the version does not
        exist.
    :raises ReviewRefusedError: The actor is not a validator of the model.
    """
    actor = _actor(actor)
    client = _client(client)
    version = str(version)
    if severity not in SEVERITIES:
        raise InputError(f"unknown severity {severity!r}; one of {', '.join(SEVERITIES)}")
    body = {
        "severity": severity,
        "title": _text(title, "the finding's title", MAX_TITLE),
        "text": _text(text, "the finding's text", MAX_TEXT),
        "owner": _text(owner, "the finding's owner", 250),
        "due": _due(due),
    }
    set_of(client, model, version)  # the version exists

    def check(chain: ledger.Chain) -> None:
        _require_role(_state(chain, model, version), actor, "validator", "record a finding")

    entry = _append(client, "finding", model, version, actor, body, check)
    return _finding(fold([entry], model, version), f"F{entry.seq}")


def _due(due: Any) -> str:
    try:
        return date.fromisoformat(str(due)).isoformat()
    except ValueError as err:
        raise InputError(f"the due date {due!r} is not an ISO date (YYYY-MM-DD)") from err


def answer_finding(
    model: str,
    version: str | int,
    finding: str,
    *,
    text: str,
    actor: Identity | None = None,
    client: Any = None,
) -> ledger.Entry:
    """The finding's owner answers it (a remediation, or why none is needed).

    :raises InputError: No such finding on the version, or an empty answer.
    :raises ReviewRefusedError: The actor is not the finding's owner, or it is closed.
    """
    actor = _actor(actor)
    version = str(version)
    body = {"finding": finding, "text": _text(text, "the answer", MAX_TEXT)}

    def check(chain: ledger.Chain) -> None:
        found = _finding(_state(chain, model, version), finding)
        if found.owner != actor.name:
            raise ReviewRefusedError(
                f"{actor.name} cannot answer finding {finding}: its owner is {found.owner}. "
                "Nothing was recorded."
            )
        if not found.is_open:
            raise ReviewRefusedError(f"finding {finding} is closed; nothing was recorded")

    return _append(_client(client), "answer", model, version, actor, body, check)


def close_finding(
    model: str,
    version: str | int,
    finding: str,
    *,
    text: str = "",
    actor: Identity | None = None,
    client: Any = None,
) -> ledger.Entry:
    """A validator closes a finding (with a closing note).

    :raises InputError: No such finding on the version.
    :raises ReviewRefusedError: The actor is not a validator, or it is already closed.
    """
    actor = _actor(actor)
    version = str(version)
    body = {"finding": finding, "text": _text(text, "the closing note", MAX_TEXT, required=False)}

    def check(chain: ledger.Chain) -> None:
        state = _state(chain, model, version)
        found = _finding(state, finding)
        _require_role(state, actor, "validator", "close a finding")
        if not found.is_open:
            raise ReviewRefusedError(f"finding {finding} is already closed; nothing was recorded")

    return _append(_client(client), "close", model, version, actor, body, check)


def sign_off(
    model: str,
    version: str | int,
    *,
    text: str = "",
    actor: Identity | None = None,
    client: Any = None,
) -> ledger.Entry:
    """A validator signs off the set logged for ``model`` ``version`` (its manifest
    SHA-256 is recorded: a sign-off is of that set only).

    :raises InputError: The version does not exist or has no artifact set.
    :raises ReviewRefusedError: The actor is not a validator, logged the set, or a High
        finding is open.
    """
    actor = _actor(actor)
    client = _client(client)
    version = str(version)
    manifest, author = set_of(client, model, version)
    if manifest is None:
        raise InputError(
            f"{model} version {version} has no shapgov artifact set to sign off; log one first"
        )
    body = {
        "manifest_sha256": manifest,
        "text": _text(text, "the sign-off note", MAX_TEXT, required=False),
        "developer": None if author is None else author.name,
    }

    def check(chain: ledger.Chain) -> None:
        state = _state(chain, model, version)
        _require_role(state, actor, "validator", "sign off a set")
        if author is not None and author.name == actor.name:
            raise ReviewRefusedError(
                f"{actor.name} logged the set of {model} version {version} and cannot also "
                "validate it (separation of duties). Nothing was recorded."
            )
        high = state.open_findings("High")
        if high:
            raise ReviewRefusedError(
                f"{model} version {version} has open High findings "
                f"({', '.join(f.id for f in high)}); close them before signing off. "
                "Nothing was recorded."
            )

    return _append(client, "signoff", model, version, actor, body, check)


def approval_check(
    state: ReviewState, actor: Identity, manifest: str | None, author: Identity | None,
    *, approving: bool,
) -> None:  # fmt: skip
    """Refuse a verdict the review rules do not allow (see the module); a no-op where
    the workflow is not in force for the model.

    :raises ReviewRefusedError: Naming the rule.
    """
    if not state.in_force:
        return
    _require_role(state, actor, "approver", "record a verdict")
    if not approving:
        return
    where = f"{state.model} version {state.version}"
    if author is not None and author.name == actor.name:
        raise ReviewRefusedError(
            f"{actor.name} logged the set of {where} and cannot approve it (separation of "
            "duties). Nothing was recorded."
        )
    others = [e for e in state.signed_off(manifest) if e.actor != actor.name]
    if not others:
        raise ReviewRefusedError(
            f"{where} has no validator's sign-off of this set by a user other than "
            f"{actor.name} (four eyes): a validator runs 'shapgov signoff {state.model} "
            f"{state.version}'. Nothing was recorded."
        )
    high = state.open_findings("High")
    if high:
        raise ReviewRefusedError(
            f"{where} has open High findings ({', '.join(f'{f.id} {f.title!r}' for f in high)}); "
            "an approval waits until a validator closes them. Nothing was recorded."
        )


def record_verdict(
    client: Any,
    model: str,
    version: str,
    body: dict[str, Any],
    actor: Identity,
    *,
    before: ReviewState,
    manifest: str | None,
    author: Identity | None,
    approving: bool,
) -> ledger.Entry:
    """Append a verdict (``body``: its signed tags) under :func:`approval_check`, judged
    again on the chain it extends; the review state the verdict's tags summarise
    (``before``: sign-offs, open Medium findings) must still hold there.

    :raises ReviewRefusedError: A rule refuses the verdict on the chain as it now stands.
    :raises LedgerConflictError: The state changed since ``before`` (a sign-off or finding
        recorded meanwhile); approve again.
    """
    from shapgov.errors import LedgerConflictError

    def summary(state: ReviewState) -> tuple[Any, ...]:
        return (
            state.in_force,
            tuple(e.seq for e in state.signed_off(manifest)),
            tuple(f.id for f in state.open_findings("Medium")),
        )

    def check(chain: ledger.Chain) -> None:
        now = _state(chain, model, version)
        approval_check(now, actor, manifest, author, approving=approving)
        if summary(now) != summary(before):
            raise LedgerConflictError(
                f"the review of {model} version {version} changed while it was being approved "
                "(a sign-off or finding was recorded meanwhile); approve again"
            )

    return ledger.append(
        client, kind="verdict", model=model, version=version, actor=actor.name,
        authenticated=actor.authenticated, body=body, check=check,
    )  # fmt: skip


def record_document(
    client: Any, model: str, version: str, body: dict[str, Any], actor: Identity | None = None
) -> ledger.Entry:
    """Append a documentation event: the documents written for a version from its set
    (``body``: their SHA-256, the manifest's, where they were logged;
    :mod:`shapgov.mlflow.documenting`). Anyone who may read the set may document it; the
    entry says who did, and whether the tracking server authenticated them.

    :raises InputError: No approval key is configured (entries are always signed).
    :raises LedgerIntegrityError: The ledger does not verify.
    """
    return _append(_client(client), "document", model, version, _actor(actor), body, None)


def review_state(
    model: str, version: str | int, *, client: Any = None
) -> tuple[ReviewState, ledger.Chain]:
    """The :class:`~shapgov.review.state.ReviewState` of a version and the chain it was
    read from (its ``problems`` say whether the ledger verifies)."""
    chain = ledger.read_chain(_client(client))
    return fold(chain.entries, model, str(version)), chain
