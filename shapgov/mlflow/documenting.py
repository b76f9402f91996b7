"""``shapgov.document()`` / ``shapgov document``: the model documentation of a registered
version, as an editable Word file and a PDF, from its artifact set alone.

The set is downloaded from the version's source run and read with every file checked
against the manifest's SHA-256; when the version carries a verdict, the manifest and the
report must still be the ones the verdict names (their SHA-256 in the signed tags), else
the document is refused (:class:`~shapgov.errors.AlteredSetError`). Nothing is computed
again: the content is the compliance report's context of that set
(:mod:`shapgov.documents.content`).

With ``log`` the documents go beside the set, under
``shapgov-approval/v<version>/documents/<UTC time>/`` (never over the approved artifacts,
nor over an earlier documentation), with
``documents.json`` (each file's SHA-256, the manifest's, the template's and the
regulatory map's), and a ``document`` entry in the approval ledger records the same
hashes (signed with the approval key; without a key, the entry cannot be written and the
result says so).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shapgov.errors import AlteredSetError, InputError
from shapgov.mlflow.failures import tracking_errors

#: Formats :func:`document` writes.
FORMATS = ("docx", "pdf")
#: Where the documents of a version are logged in its source run.
DOCUMENTS = "documents"
RECORD = "documents.json"


@dataclass(frozen=True)
class Documents:
    """What :func:`document` wrote: ``paths`` by format, their SHA-256, the manifest's,
    where they were logged (or ``None``) and the ledger entry's number (or ``None`` with
    the reason in ``ledger_note``)."""

    paths: dict[str, Path]
    sha256: dict[str, str]
    manifest_sha256: str
    logged_to: str | None = None
    ledger_entry: int | None = None
    ledger_note: str = ""
    record: dict[str, Any] = field(default_factory=dict)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def document(
    name: str,
    version: str | int,
    *,
    formats: tuple[str, ...] = FORMATS,
    out_dir: str | Path = ".",
    template: str | Path | None = None,
    log: bool = True,
    actor: Any = None,
    client: Any = None,
) -> Documents:
    """Write the model documentation of ``name`` version ``version``.

    :param formats: Any of ``"docx"`` and ``"pdf"``.
    :param out_dir: Directory for ``<name>-v<version>-model-documentation.<format>``.
    :param template: A Word template (``.docx``) replacing the shipped one
        (:mod:`shapgov.documents.docx_writer` lists its placeholders).
    :param log: Log the documents to the version's source run and record them in the
        approval ledger.
    :param actor: Who records the documentation event (a
        :class:`~shapgov.review.identity.Identity`; default: the signed-in or declared
        user, else the operating-system user, as :func:`shapgov.approve` defaults).
    :raises AlteredSetError: A file of the set no longer matches the manifest, or the
        manifest or report is not the one the verdict signed.
    :raises DocumentTemplateError: The template is unreadable or has unknown placeholders.
    :raises DocumentRendererError: A PDF was asked for and Chromium cannot print it.
    :raises InputError: Unknown formats, or a version without a set.
    :raises LedgerIntegrityError: ``log`` with an approval ledger that does not verify
        (checked before anything is written).
    """
    from mlflow.tracking import MlflowClient

    from shapgov.documents import build_document, write_docx, write_pdf
    from shapgov.mlflow.reporting import (
        APPROVAL_REPORTS,
        approval_state,
        download_set,
        latest_comparison,
        resolve,
    )

    formats = tuple(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InputError(f"formats must be some of {FORMATS}, got {list(formats)}")
    if template is not None:
        template = Path(template)
        if not template.is_file():
            raise InputError(f"the template {template} is not a file")
    client = client or MlflowClient()
    run, mv = resolve(model=name, version=version, client=client)
    if log:
        _ledger_verifies(client)  # before anything is written: no documents without entry
    out_dir = Path(out_dir)
    stem = f"{_safe(mv.name)}-v{mv.version}-model-documentation"
    with (
        tempfile.TemporaryDirectory(prefix="shapgov-document-") as tmp,
        tracking_errors(f"documenting {name} version {version}", retry="document again"),
    ):
        local = download_set(run.info.run_id, Path(tmp) / "set", client=client)
        manifest_sha = check_signed_set(local, dict(mv.tags or {}))
        comparison = latest_comparison(run.info.run_id, Path(tmp) / "comparison", client=client)
        doc = build_document(
            local, run=run, model_version=mv, approval_state=approval_state(mv),
            comparison=comparison,
        )  # fmt: skip
        written: dict[str, bytes] = {}
        staging = Path(tmp) / "out"
        staging.mkdir()
        if "docx" in formats:
            written["docx"] = write_docx(
                doc, staging / f"{stem}.docx", template=template
            ).read_bytes()
        if "pdf" in formats:
            written["pdf"] = write_pdf(doc, staging / f"{stem}.pdf").read_bytes()
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {}
        for fmt, data in written.items():  # every file rendered before any is written out
            paths[fmt] = out_dir / f"{stem}.{fmt}"
            paths[fmt].write_bytes(data)
        from shapgov.documents.regulatory import load_map

        created = datetime.now(UTC)
        record = {
            "model": {"name": mv.name, "version": str(mv.version)},
            "files": {paths[f].name: _sha(d) for f, d in written.items()},
            "manifest_sha256": manifest_sha,
            "verdict": doc.fields["verdict"],
            "template_sha256": _sha(template.read_bytes()) if template else "shapgov default",
            "regulatory_map_sha256": load_map()[1],
            "created": created.isoformat(),
        }
        result = Documents(
            paths, {f: _sha(d) for f, d in written.items()}, manifest_sha, record=record
        )
        if not log:
            return result
        stamp = created.strftime("%Y%m%dT%H%M%S%fZ")
        where = f"{APPROVAL_REPORTS}/v{mv.version}/{DOCUMENTS}/{stamp}"
        for fmt in written:
            shutil.copyfile(paths[fmt], staging / paths[fmt].name)
        (staging / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True))
        client.log_artifacts(run.info.run_id, str(staging), where)
    entry, note = _record(client, mv, record, where, actor)
    return Documents(
        paths, result.sha256, manifest_sha, where, entry, note, record
    )  # fmt: skip


def _ledger_verifies(client: Any) -> None:
    """:raises LedgerIntegrityError: The approval ledger does not verify (where a key is
    configured to record the documentation in it)."""
    from shapgov.errors import LedgerIntegrityError
    from shapgov.mlflow.keys import signing_key
    from shapgov.review.ledger import read_chain

    try:
        if signing_key() is None:
            return
    except InputError:
        return  # said by the result's ledger note
    problems = read_chain(client).problems
    if problems:
        raise LedgerIntegrityError(
            "the approval ledger does not verify, so no documentation event can be recorded "
            f"in it: {'; '.join(problems)}; run 'shapgov ledger verify' and restore it first"
        )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def check_signed_set(local: Path, tags: dict[str, str]) -> str:
    """The manifest SHA-256 of the set in ``local``, checked: every file it lists matches
    (read through ``ArtifactSet``), and a verdict's signed
    manifest and report hashes are those of the set.

    :raises AlteredSetError: Either check fails.
    """
    from shapgov.mlflow.artifacts import MANIFEST, sha256_file
    from shapgov.sinks.artifact_set import ArtifactSet
    from shapgov.sinks.compliance import REPORT

    ArtifactSet.read(local)  # raises AlteredSetError on a changed or missing file
    manifest = sha256_file(local / MANIFEST)
    if "shapgov.approval" in tags:
        for file, tag in ((MANIFEST, "manifest_sha256"), (REPORT, "report_sha256")):
            digest = sha256_file(local / file) if (local / file).exists() else "none"
            if digest != tags.get(f"shapgov.approval.{tag}"):
                raise AlteredSetError(
                    f"the set's {file} is not the one the verdict signed (SHA-256 {digest}, "
                    f"signed {tags.get(f'shapgov.approval.{tag}')}): the set was altered after "
                    "the verdict; document a set that is judged as it stands (log a new set "
                    "and approve it)"
                )
    return manifest


def _record(
    client: Any, mv: Any, record: dict[str, Any], where: str, actor: Any
) -> tuple[int | None, str]:
    """The ledger entry of the documentation event, or why there is none."""
    from shapgov.mlflow.keys import signing_key
    from shapgov.review.actions import record_document

    try:
        if signing_key() is None:
            return None, "not recorded in the approval ledger: no approval key is configured"
    except InputError as err:
        return None, f"not recorded in the approval ledger: {err}"
    if actor is None:  # as approve: the signed-in or declared user, else the OS user
        from shapgov.mlflow.verdict_writes import default_approver

        actor = default_approver()
    body = {**record, "artifact_path": where, "run_id": mv.run_id}
    entry = record_document(client, mv.name, str(mv.version), body, actor)
    return entry.seq, f"recorded as approval ledger entry {entry.seq}"


def default_template_bytes() -> bytes:
    """The shipped Word template (to copy, edit and pass back with ``template=``)."""
    from shapgov.documents.docx_writer import default_template

    return io.BytesIO(default_template()).getvalue()
