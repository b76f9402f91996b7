"""The review ledger: a hash-chained, signed record of every review action.

Every entry (role grant, finding, answer, closing, sign-off, verdict, documentation of a
version: the hashes of its Word and PDF documents) is one finished run
in the ledger experiment (:func:`ledger_name`, ``shapgov-approval-ledger`` unless
``SHAPGOV_APPROVAL_LEDGER`` names another). Its canonical JSON (sequence number, kind,
model, version, actor, whether the tracking server authenticated the actor, time, body,
and ``prev``: the SHA-256 of the entry before it) is hashed with SHA-256 and the hash
signed with the approval key (HMAC-SHA256, :mod:`shapgov.mlflow.keys`); the key's id is
stored beside the signature, so entries keep verifying after a rotation while the old key
is held in ``SHAPGOV_APPROVAL_OLD_KEYS_FILE``.

Order comes from the store, not from clocks. One *index run* in the ledger experiment holds
one parameter per place in the chain (``e00000042`` = ``"<sha256> <run id>"``). MLflow
parameters cannot be changed once logged (the store refuses a second value in the same
transaction that inserts it), so claiming a place is an atomic compare-and-set: of two
actions that chain onto the same entry at once, exactly one claims the next place; the
other deletes its run and tries again on the new head (:func:`append`), re-checking the
rules it acts under against the state it now extends. The chain cannot fork.

:func:`read_chain` re-derives the chain and names every problem: an entry deleted (its
run in the trash or gone), altered (its hash or signature no longer matches), reordered
(its ``prev`` or number is not its place's), or inserted (a finished entry run that no
place in the index names). An entry run still ``RUNNING`` and unclaimed is an action
that did not finish: it is not in the chain and is ignored.

Sources: hash chains as in RFC 6962 (Certificate Transparency) logs; SR 11-7 and PRA
SS1/23 principle 4 (an audit trail of approvals, findings and their remediation); EU AI
Act Article 12 (record keeping).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shapgov.errors import InputError, LedgerConflictError
from shapgov.mlflow.failures import is_write_conflict, write_retrying
from shapgov.mlflow.keys import key_id, signing_key, verifying_keys

#: The experiment holding the ledger; ``SHAPGOV_APPROVAL_LEDGER`` names another.
LEDGER = "shapgov-approval-ledger"
#: The SHA-256 an entry's ``prev`` holds when it is the first.
GENESIS = "0" * 64
#: The kinds of entry (:mod:`shapgov.review.state` folds them into a review state).
KINDS = (
    "role_grant",
    "role_revoke",
    "finding",
    "answer",
    "close",
    "signoff",
    "verdict",
    "document",
)
#: Experiment tag naming the index run (set by whoever creates the ledger).
INDEX_TAG = "shapgov.ledger.index_run"
ROLE_TAG = "shapgov.ledger.role"  # "index" or "entry" on the ledger's runs
CHUNK = 5000  # characters of an entry's JSON per run tag (MLflow caps tag values)
#: How many times an action tries to claim the next place before giving up.
APPEND_ATTEMPTS = 12
#: Seconds an action waits for the creator of a new ledger to name its index run.
INDEX_WAIT = 30.0


def ledger_name() -> str:
    """The ledger experiment's name (``SHAPGOV_APPROVAL_LEDGER``, else :data:`LEDGER`)."""
    return os.environ.get("SHAPGOV_APPROVAL_LEDGER") or LEDGER


def subject_key(model: str | None, version: str | int | None) -> str:
    """A search key for one model's (or version's) entries: model names hold any
    character, so they are hashed (first 32 hex digits of SHA-256)."""
    text = f"{model or ''}\0{'' if version is None else version}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Entry:
    """One ledger entry: what was done (``kind``, ``body``), to what (``model``,
    ``version``; ``None`` for a global role grant), by whom (``actor``, ``authenticated``:
    whether the tracking server authenticated that user), when (``time``, ISO 8601 UTC),
    and where in the chain (``seq`` from 1, ``prev`` the SHA-256 of entry ``seq - 1``).
    ``sha256`` hashes :meth:`canonical`; ``signature`` is HMAC-SHA256 of that hex digest
    under key ``key_id``; ``run_id`` is the run that stores it."""

    seq: int
    kind: str
    model: str | None
    version: str | None
    actor: str
    authenticated: bool
    time: str
    body: dict[str, Any]
    prev: str
    sha256: str = ""
    signature: str = ""
    key_id: str = ""
    run_id: str = ""

    def canonical(self) -> bytes:
        """The bytes hashed: every field but the hash, signature, key id and run."""
        content = {
            "seq": self.seq,
            "kind": self.kind,
            "model": self.model,
            "version": self.version,
            "actor": self.actor,
            "authenticated": self.authenticated,
            "time": self.time,
            "body": self.body,
            "prev": self.prev,
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> str:
        """SHA-256 (hex) of :meth:`canonical`."""
        return hashlib.sha256(self.canonical()).hexdigest()


@dataclass(frozen=True)
class Chain:
    """The ledger as read: the ``entries`` in chain order (only those that verify up to
    the first problem are trusted by the rules) and the ``problems`` found, each naming
    an entry; ``unfinished`` lists runs of actions that never claimed a place."""

    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """Whether the chain verifies (no problem found)."""
        return not self.problems

    @property
    def head(self) -> tuple[int, str]:
        """(number, SHA-256) of the last entry; (0, :data:`GENESIS`) when empty."""
        return (self.entries[-1].seq, self.entries[-1].sha256) if self.entries else (0, GENESIS)


def _sign(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def _slot(seq: int) -> str:
    return f"e{seq:08d}"


def _experiment(client: Any, *, create: bool) -> tuple[str | None, bool]:
    """(the ledger experiment's id, whether this call created it); ``(None, False)``
    when there is none and ``create`` is false. Creating an experiment by name is atomic
    in every MLflow store, so exactly one of several concurrent callers gets ``True``."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(ledger_name())
    if found is not None or not create:
        return (None if found is None else found.experiment_id), False
    try:
        return client.create_experiment(ledger_name()), True
    except MlflowException as err:
        lost_race = getattr(err, "error_code", None) == "RESOURCE_ALREADY_EXISTS"
        if not (lost_race or is_write_conflict(err)):
            raise
        found = client.get_experiment_by_name(ledger_name())
        if found is None:
            raise
        return found.experiment_id, False


def _index_run(client: Any, experiment: str, *, created: bool = False) -> str | None:
    """The index run's id, named by the experiment's :data:`INDEX_TAG`.

    Only the caller that created the ledger experiment (``created``) creates the index
    and names it: experiment tags can be overwritten, so two callers that each created an
    index could each use their own for a while and fork the chain. Every other caller
    waits up to :data:`INDEX_WAIT` seconds for the creator's tag.

    :raises LedgerIntegrityError: The experiment still names no index run after the wait
        (it was made by hand, or its creator stopped in between).
    """
    from shapgov.errors import LedgerIntegrityError

    if created:
        run = client.create_run(experiment, tags={ROLE_TAG: "index"}, run_name="ledger index")
        client.set_terminated(run.info.run_id)
        write_retrying(lambda: client.set_experiment_tag(experiment, INDEX_TAG, run.info.run_id))
        return run.info.run_id
    found = client.get_experiment(experiment)
    made = (getattr(found, "creation_time", None) or 0) / 1000  # seconds since the epoch
    # a ledger made long ago will not be named now: no wait
    deadline = time.monotonic() + min(INDEX_WAIT, max(0.0, made + INDEX_WAIT - time.time()))
    pause = 0.02
    while True:
        named = (found.tags or {}).get(INDEX_TAG)
        if named or time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
        found = client.get_experiment(experiment)
    if not named:
        raise LedgerIntegrityError(
            f"the ledger experiment {ledger_name()!r} names no index run (tag {INDEX_TAG}): "
            "it was not created by shapgov, or its creator stopped before naming one. If it "
            "holds no entries, delete it ('mlflow experiments delete') and act again, or "
            "set SHAPGOV_APPROVAL_LEDGER to a new name"
        )
    return named


def _entry_tags(entry: Entry) -> dict[str, str]:
    text = entry.canonical().decode()
    tags = {
        ROLE_TAG: "entry",
        "shapgov.ledger.seq": str(entry.seq),
        "shapgov.ledger.kind": entry.kind,
        "shapgov.ledger.key": subject_key(entry.model, entry.version),
        "shapgov.ledger.model_key": subject_key(entry.model, None),
        "shapgov.ledger.sha256": entry.sha256,
        "shapgov.ledger.signature": entry.signature,
        "shapgov.ledger.key_id": entry.key_id,
        "shapgov.ledger.actor": entry.actor[:250],
    }
    for i in range(0, len(text), CHUNK):
        tags[f"shapgov.ledger.entry.{i // CHUNK}"] = text[i : i + CHUNK]
    return tags


def _entry_from_tags(tags: dict[str, str], run_id: str) -> Entry | None:
    chunks = []
    i = 0
    while f"shapgov.ledger.entry.{i}" in tags:
        chunks.append(tags[f"shapgov.ledger.entry.{i}"])
        i += 1
    try:
        content = json.loads("".join(chunks))
        return Entry(
            seq=int(content["seq"]),
            kind=str(content["kind"]),
            model=content["model"],
            version=content["version"],
            actor=str(content["actor"]),
            authenticated=bool(content["authenticated"]),
            time=str(content["time"]),
            body=dict(content["body"]),
            prev=str(content["prev"]),
            sha256=tags.get("shapgov.ledger.sha256", ""),
            signature=tags.get("shapgov.ledger.signature", ""),
            key_id=tags.get("shapgov.ledger.key_id", ""),
            run_id=run_id,
        )
    except (ValueError, KeyError, TypeError):
        return None


def _ledger_runs(client: Any, experiment: str) -> list[Any]:
    """Every run of the ledger experiment, deleted ones included (paged)."""
    from mlflow.entities import ViewType

    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment], run_view_type=ViewType.ALL, max_results=10_000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _run_or_none(client: Any, run_id: str) -> Any:
    """The run, or None when the store holds no such run (deleted permanently)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as err:
        if getattr(err, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None


def read_chain(client: Any) -> Chain:
    """Read and check the whole ledger (see the module for what is checked).

    :returns: :class:`Chain`; an empty one when there is no ledger yet.
    """
    experiment, _ = _experiment(client, create=False)
    if experiment is None:
        return Chain()
    index = (client.get_experiment(experiment).tags or {}).get(INDEX_TAG)
    if index is None:
        entry_runs = [r for r in _ledger_runs(client, experiment)
                      if r.data.tags.get(ROLE_TAG) == "entry"]  # fmt: skip
        if entry_runs:
            return Chain(problems=["the ledger's index run is not named: the chain is lost"])
        return Chain()
    # the index first: an entry's run is created before its place is claimed, so every run
    # the index names already exists when the runs are listed after it
    index_run = _run_or_none(client, index)
    runs = {r.info.run_id: r for r in _ledger_runs(client, experiment)}
    entry_runs = {i: r for i, r in runs.items() if r.data.tags.get(ROLE_TAG) == "entry"}
    if index_run is None or index_run.info.lifecycle_stage == "deleted":
        return Chain(
            problems=[f"the ledger's index run {index} was deleted: restore it with "
                      f"'mlflow runs restore --run-id {index}'"]
        )  # fmt: skip
    slots = {
        int(k[1:]): v
        for k, v in index_run.data.params.items()
        if k.startswith("e") and k[1:].isdigit()
    }
    keys = {key_id(k): k for k in verifying_keys()}
    entries: list[Entry] = []
    problems: list[str] = []
    claimed: set[str] = set()
    prev = GENESIS
    for seq in range(1, max(slots, default=0) + 1):
        if seq not in slots:
            problems.append(f"entry {seq} has no place in the index (the chain skips it)")
            continue
        digest, _, run_id = slots[seq].partition(" ")
        claimed.add(run_id)
        run = runs.get(run_id) or _run_or_none(client, run_id)
        if run is None:
            problems.append(f"entry {seq} is missing: its run {run_id} was deleted permanently")
            prev = digest
            continue
        if run.info.lifecycle_stage == "deleted":
            problems.append(
                f"entry {seq} was deleted (run {run_id} is in the trash; restore it with "
                f"'mlflow runs restore --run-id {run_id}')"
            )
            prev = digest
            continue
        entry = _entry_from_tags(run.data.tags, run_id)
        if entry is None:
            problems.append(f"entry {seq} (run {run_id}) is unreadable: altered")
            prev = digest
            continue
        label = f"entry {seq} ({entry.kind} by {entry.actor})"
        if entry.seq != seq:
            problems.append(f"{label} says it is entry {entry.seq}: reordered")
        if entry.digest() != digest or entry.sha256 != digest:
            problems.append(f"{label} does not match its hash: altered")
        elif entry.prev != prev:
            problems.append(f"{label} does not follow entry {seq - 1}: reordered or inserted")
        key = keys.get(entry.key_id)
        if key is None:
            problems.append(f"{label} was signed with key {entry.key_id!r}, which is not held")
        elif not hmac.compare_digest(_sign(key, digest), entry.signature):
            problems.append(f"{label}'s signature does not match: altered")
        entries.append(entry)
        prev = digest
    unfinished = []
    later: set[str] | None = None  # runs claimed after the index was read
    for run_id, run in sorted(entry_runs.items()):
        if run_id in claimed or run.info.lifecycle_stage == "deleted":
            continue
        if later is None:
            fresh = _run_or_none(client, index)
            later = {v.partition(" ")[2] for v in (fresh.data.params if fresh else {}).values()}
        if run_id in later:
            continue  # appended while this chain was read: beyond its head, not inserted
        if run.info.status == "RUNNING":
            unfinished.append(run_id)
        else:
            seq = run.data.tags.get("shapgov.ledger.seq", "?")
            problems.append(
                f"run {run_id} holds an entry (number {seq}) that no place in the chain "
                "names: inserted"
            )
    return Chain(entries, problems, unfinished)


def append(
    client: Any,
    *,
    kind: str,
    model: str | None,
    version: str | int | None,
    actor: str,
    authenticated: bool,
    body: dict[str, Any],
    check: Callable[[Chain], None] | None = None,
) -> Entry:
    """Append one signed entry at the head of the chain.

    ``check(chain)`` is called on the chain the entry will extend and may raise to refuse
    the action (the review rules); when a concurrent action claims the place first, the
    chain is read again and ``check`` runs again on it, so a rule is always judged on the
    very state the entry extends.

    :raises InputError: No approval key is configured (entries are always signed), or
        ``kind`` is unknown.
    :raises LedgerIntegrityError: The chain does not verify (nothing is appended to a
        ledger that was tampered with).
    :raises LedgerConflictError: Concurrent actions kept taking the place
        (:data:`APPEND_ATTEMPTS` tries); nothing was recorded.
    """
    from mlflow.exceptions import MlflowException

    from shapgov.errors import LedgerIntegrityError

    if kind not in KINDS:
        raise InputError(f"unknown ledger entry kind {kind!r}; one of {', '.join(KINDS)}")
    key = signing_key()
    if key is None:
        raise InputError(
            "review actions are signed entries of the ledger and need the approval key: "
            "create one with 'shapgov keys new --out approval.key' and set "
            "SHAPGOV_APPROVAL_KEY_FILE=approval.key (or SHAPGOV_APPROVAL_KEY)"
        )
    experiment, created = _experiment(client, create=True)
    index = _index_run(client, experiment, created=created)
    for attempt in range(APPEND_ATTEMPTS):
        chain = read_chain(client)
        if not chain.intact:
            raise LedgerIntegrityError(
                "the review ledger does not verify, so no action is recorded on it: "
                + "; ".join(chain.problems)
            )
        if check is not None:
            check(chain)
        seq, prev = chain.head
        entry = Entry(
            seq=seq + 1,
            kind=kind,
            model=model,
            version=None if version is None else str(version),
            actor=actor,
            authenticated=authenticated,
            time=datetime.now(UTC).isoformat(),
            body=body,
            prev=prev,
        )
        digest = entry.digest()
        entry = Entry(
            **{**entry.__dict__, "sha256": digest, "signature": _sign(key, digest),
               "key_id": key_id(key)}
        )  # fmt: skip
        run = client.create_run(experiment, tags=_entry_tags(entry), run_name=f"{entry.seq} {kind}")
        try:
            client.log_param(index, _slot(entry.seq), f"{digest} {run.info.run_id}")
        except MlflowException as err:
            taken = "Changing param values" in str(err) or is_write_conflict(err)
            client.delete_run(run.info.run_id)
            if not taken:
                raise
            time.sleep(random.uniform(0.02, 0.15) * (attempt + 1))
            continue
        except Exception as err:
            if not is_write_conflict(err):
                raise
            client.delete_run(run.info.run_id)
            time.sleep(random.uniform(0.02, 0.15) * (attempt + 1))
            continue
        client.set_terminated(run.info.run_id)
        return Entry(**{**entry.__dict__, "run_id": run.info.run_id})
    raise LedgerConflictError(
        f"concurrent review actions kept taking the next place in the ledger "
        f"({APPEND_ATTEMPTS} tries); nothing was recorded: run the action again"
    )
