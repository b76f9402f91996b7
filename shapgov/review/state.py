"""The review state of a model version, folded from the ledger's entries (no I/O).

Roles (granted per registered model, or globally with ``model=None``, and revoked by a
later entry), findings with their history, sign-offs and verdicts, as
:mod:`shapgov.review.ledger` recorded them. The review workflow is in force for a model
once the ledger holds any role grant for it or a global one: from then on every approval
of its versions needs the roles and the four eyes (:mod:`shapgov.review.actions`), and
that cannot be undone without a signed entry (a revocation) that stays in the chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shapgov.review.ledger import Entry

#: The roles of the review workflow (SR 11-7: development, validation, approval by
#: people independent of development).
ROLES = ("developer", "validator", "approver")
SEVERITIES = ("High", "Medium", "Low")
#: A version's states on the review page, in the order a version passes through them.
STATES = (
    "no set",
    "awaiting validation",
    "findings open",
    "ready",
    "approved",
    "rejected",
)


@dataclass(frozen=True)
class Finding:
    """A validator's finding on a version: ``id`` (``F`` + its entry's number),
    ``severity`` (High/Medium/Low), ``title``, ``text``, ``owner`` (who must answer),
    ``due`` (ISO date), ``status`` (open, answered, closed) and ``history`` (the entries
    that recorded, answered and closed it, oldest first)."""

    id: str
    model: str
    version: str
    severity: str
    title: str
    text: str
    owner: str
    due: str
    raised_by: str
    status: str = "open"
    history: tuple[Entry, ...] = ()

    @property
    def is_open(self) -> bool:
        """Whether the finding is still open (recorded or answered, not closed)."""
        return self.status != "closed"


@dataclass(frozen=True)
class ReviewState:
    """What the ledger says of one version: ``in_force`` (the workflow applies to its
    model), ``findings``, ``signoffs`` (sign-off entries, each on one manifest SHA-256),
    ``verdicts`` (verdict entries, oldest first) and every entry about the version
    (``entries``). Roles are answered by :meth:`has_role` over the whole ledger."""

    model: str
    version: str
    in_force: bool
    findings: tuple[Finding, ...] = ()
    signoffs: tuple[Entry, ...] = ()
    verdicts: tuple[Entry, ...] = ()
    entries: tuple[Entry, ...] = ()
    grants: tuple[Entry, ...] = field(default=(), repr=False)

    def has_role(self, user: str, role: str) -> bool:
        """Whether ``user`` holds ``role`` on this model (granted for it or globally, and
        not revoked since)."""
        held = False
        for e in self.grants:
            if e.body.get("user") == user and e.body.get("role") == role:
                held = e.kind == "role_grant"
        return held

    def roles_of(self, user: str) -> list[str]:
        """The roles ``user`` holds on this model, in :data:`ROLES` order."""
        return [r for r in ROLES if self.has_role(user, r)]

    def open_findings(self, severity: str | None = None) -> list[Finding]:
        """The findings not closed yet (of one ``severity`` when given)."""
        return [f for f in self.findings if f.is_open and severity in (None, f.severity)]

    def signed_off(self, manifest_sha256: str | None) -> list[Entry]:
        """Sign-offs of the set with this manifest (a sign-off is of one set)."""
        return [e for e in self.signoffs if e.body.get("manifest_sha256") == manifest_sha256]

    def standing(self, manifest_sha256: str | None) -> str:
        """The version's state (:data:`STATES`) for the set with this manifest."""
        if manifest_sha256 is None:
            return "no set"
        if self.verdicts:
            last = self.verdicts[-1].body
            if last.get("shapgov.approval.manifest_sha256") == manifest_sha256:
                return "approved" if last.get("shapgov.approval") == "approved" else "rejected"
        if self.open_findings():
            return "findings open"
        return "ready" if self.signed_off(manifest_sha256) else "awaiting validation"


def _scope_matches(entry: Entry, model: str) -> bool:
    return entry.model is None or entry.model == model


def fold(entries: Iterable[Entry], model: str, version: str | int) -> ReviewState:
    """The :class:`ReviewState` of ``model`` ``version`` from ledger entries in chain
    order."""
    version = str(version)
    entries = list(entries)
    grants = tuple(
        e for e in entries if e.kind in ("role_grant", "role_revoke") and _scope_matches(e, model)
    )
    mine = tuple(e for e in entries if e.model == model and e.version == version)
    findings: dict[str, dict[str, Any]] = {}
    for e in mine:
        if e.kind == "finding":
            findings[f"F{e.seq}"] = {
                "id": f"F{e.seq}",
                "model": model,
                "version": version,
                "severity": e.body.get("severity", ""),
                "title": e.body.get("title", ""),
                "text": e.body.get("text", ""),
                "owner": e.body.get("owner", ""),
                "due": e.body.get("due", ""),
                "raised_by": e.actor,
                "status": "open",
                "history": [e],
            }
        elif e.kind in ("answer", "close") and e.body.get("finding") in findings:
            found = findings[e.body["finding"]]
            found["history"].append(e)
            found["status"] = "answered" if e.kind == "answer" else "closed"
    return ReviewState(
        model=model,
        version=version,
        in_force=any(e.kind == "role_grant" for e in grants),
        findings=tuple(Finding(**{**f, "history": tuple(f["history"])}) for f in findings.values()),
        signoffs=tuple(e for e in mine if e.kind == "signoff"),
        verdicts=tuple(e for e in mine if e.kind == "verdict"),
        entries=mine,
        grants=grants,
    )
