"""How the default Word template (``reports/model_documentation.docx``) is made.

``python -m shapgov.documents.default_template`` writes it again; the file is committed as
package data so that a bank can copy it (``shapgov document --write-template FILE``), edit
it in Word (its cover, styles, logo, own sections) and pass it back with ``--template``.
``tests/test_documents.py`` checks that the committed file holds what this builds.
"""

from __future__ import annotations

import io
from pathlib import Path

#: The cover's lines (placeholders in Jinja), in order, after the title.
COVER = (
    "Registered model {{ model_name }}, version {{ model_version }}",
    "Verdict: {{ verdict }}, by {{ signed_by }} at {{ verdict_time }}",
    "Signature: {{ signature }}",
    "Manifest SHA-256: {{ manifest_sha256 }}",
    "Report SHA-256: {{ report_sha256 }}",
    "Generated {{ generated }} by shapgov {{ shapgov_version }} from the approved artifact "
    "set alone: every number and figure is read from the set's hashed files, each cited "
    "with its SHA-256.",
)


def build_default_template() -> bytes:
    """The default template's bytes: the cover and the executive summary on the first
    page, then the contents and every section."""
    from docx import Document
    from docx.enum.text import WD_BREAK
    from docx.shared import Cm, Pt

    doc = Document()
    section = doc.sections[0]
    section.page_height, section.page_width = Cm(29.7), Cm(21.0)  # A4
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Cm(2.0))
    normal = doc.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(10)
    doc.add_paragraph("Model documentation: {{ title }}", style="Title")
    for line in COVER:
        doc.add_paragraph(line)
    doc.add_paragraph("{{p executive_summary }}")  # read first: on the first page
    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    doc.add_paragraph("Contents", style="TOC Heading" if "TOC Heading" in doc.styles else None)
    doc.add_paragraph("{{p table_of_contents }}")
    doc.add_paragraph("{{p all_sections }}")
    footer = section.footer.paragraphs[0]
    footer.text = "{{ title }} · manifest SHA-256 {{ manifest_sha256 }} · page "
    _page_field(footer)
    for run in footer.runs:
        run.font.size = Pt(7.5)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def _page_field(paragraph: object) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)  # type: ignore[attr-defined]


if __name__ == "__main__":  # pragma: no cover
    target = Path(__file__).resolve().parents[2] / "reports" / "model_documentation.docx"
    target.write_bytes(build_default_template())
    print(f"wrote {target}")
