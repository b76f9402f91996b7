"""Model documentation a bank can file: an editable Word document and a PDF of the same
content, from a set's hashed artifacts alone (issue 36).

* :func:`build_document`: the :class:`~shapgov.documents.blocks.ModelDocument` of a set
  (read through ``ArtifactSet``, every file checked
  against its SHA-256), with the executive summary first and the regulatory section map
  last (:mod:`shapgov.documents.regulatory`);
* :func:`write_docx` (through a replaceable template, :mod:`shapgov.documents.docx_writer`)
  and :func:`write_pdf` (Chromium's print, :mod:`shapgov.documents.pdf_writer`);
* :func:`shapgov.mlflow.documenting.document`: both for a registered version, logged
  beside its set and recorded in the approval ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shapgov._version import __version__
from shapgov.documents.blocks import ModelDocument
from shapgov.documents.docx_writer import BLOCKS, INLINE, write_docx
from shapgov.documents.pdf_writer import write_pdf

__all__ = ["BLOCKS", "INLINE", "ModelDocument", "build_document", "write_docx", "write_pdf"]


def build_document(
    directory: str | Path,
    *,
    run: Any = None,
    model_version: Any = None,
    approval_state: dict[str, Any] | None = None,
    comparison: str | Path | None = None,
) -> ModelDocument:
    """The document of the set in ``directory`` (a downloaded ``shapgov/`` folder).

    :param model_version: The registered version (its verdict tags fill the cover and the
        approval section); ``None`` documents a run's set, unjudged.
    :param approval_state: What only the MLflow layer checks (signature, review, explaining
        models), as ``shapgov.mlflow.reporting.approval_state`` gives it.
    :param comparison: A downloaded comparison with the champion (``shapgov-comparison/``),
        for the section "Challenger comparison".
    :raises AlteredSetError: A file of the set does not match its manifest.
    """
    from shapgov.documents.content import model_document
    from shapgov.mlflow.artifacts import MANIFEST, sha256_file
    from shapgov.sinks.artifact_set import ArtifactSet
    from shapgov.sinks.compliance import build_context

    directory = Path(directory)
    aset = ArtifactSet.read(directory)
    context = build_context(
        aset, run=run, model_version=model_version, approval_state=approval_state,
        comparison=comparison,
    )  # fmt: skip
    manifest_sha = sha256_file(directory / MANIFEST)
    tags = dict(getattr(model_version, "tags", None) or {})
    approval = context.get("approval") or {}
    signature = approval.get("signature") or {}
    report = directory / "report.html"
    fields = {
        "title": context["title"],
        "model_name": getattr(model_version, "name", "") or "(a run's set, not registered)",
        "model_version": str(getattr(model_version, "version", "") or "–"),
        "verdict": tags.get("shapgov.approval", "not judged"),
        "verdict_time": tags.get("shapgov.approval.time", "–"),
        "signed_by": tags.get("shapgov.approval.approver", "–"),
        "signature": f"{signature.get('status', 'unchecked')}: {signature.get('text', '')}".rstrip(
            ": "
        ),
        "manifest_sha256": manifest_sha,
        "report_sha256": tags.get("shapgov.approval.report_sha256")
        or (sha256_file(report) if report.exists() else "–"),
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "shapgov_version": __version__,
    }
    return model_document(context, aset.manifest, manifest_sha, fields)
