"""The model document as an editable Word file, through a template the bank can replace.

A template is a ``.docx`` file with Jinja placeholders, filled by docxtpl
(python-docx-template): inline ones (``{{ title }}``, ``{{ manifest_sha256 }}``, ... see
:data:`INLINE`) anywhere, in the body, headers and footers; block ones, each alone in its
paragraph as ``{{p name }}`` (:data:`BLOCKS`: the table of contents, the executive summary,
every section, or all sections in their default order). Everything else in the template
(the bank's cover page, its own sections, styles, headers, footers and logo) is kept as
written. The default template ships as package data (``reports/model_documentation.docx``;
``shapgov document --write-template FILE`` copies it for editing).

Sections are Heading 1 paragraphs carrying a bookmark (``sec_<id>``) that the executive
summary's links point to; tables are real Word tables under a caption (style "Caption",
``SEQ Table`` field) that cites the artifact and SHA-256 they were read from; figures are
inline pictures with a ``SEQ Figure`` caption; the table of contents is a ``TOC`` field that
Word fills when the document is opened (``w:updateFields``).
"""

from __future__ import annotations

import contextlib
import io
from importlib import resources
from pathlib import Path
from typing import Any

from shapgov.documents.blocks import (
    Bullets,
    Figure,
    Heading,
    Link,
    ModelDocument,
    Paragraph,
    Section,
    Table,
)
from shapgov.errors import DocumentTemplateError
from shapgov.sinks.compliance import SECTIONS

#: The default template (package data of ``shapgov.reports``).
TEMPLATE = "model_documentation.docx"
#: Inline placeholders: their text.
INLINE = (
    "title",
    "model_name",
    "model_version",
    "verdict",
    "verdict_time",
    "signed_by",
    "signature",
    "manifest_sha256",
    "report_sha256",
    "generated",
    "shapgov_version",
)
#: Block placeholders (``{{p name }}`` alone in a paragraph).
BLOCKS = (
    "table_of_contents",
    "executive_summary",
    "all_sections",
    *(f"section_{s}" for s, _ in SECTIONS),
    "section_regulatory_map",
)
#: Width of figures in the page, inches.
FIGURE_WIDTH = 6.0


def default_template() -> bytes:
    """The bytes of the default template."""
    return resources.files("shapgov.reports").joinpath(TEMPLATE).read_bytes()


def template_placeholders(template: Any) -> set[str]:
    """The placeholders a template uses.

    :raises DocumentTemplateError: The file is not a Word document, or its Jinja does not
        parse.
    """
    return set(_open(template).get_undeclared_template_variables())


def _open(template: Any) -> Any:
    from docxtpl import DocxTemplate

    source = io.BytesIO(default_template()) if template is None else template
    try:
        tpl = DocxTemplate(source)
        tpl.init_docx()
        return tpl
    except Exception as err:  # python-docx and zipfile raise several kinds
        raise DocumentTemplateError(
            f"the template {template} is not a readable Word (.docx) document: {err}"
        ) from err


def write_docx(document: ModelDocument, out: str | Path, *, template: Any = None) -> Path:
    """Write ``document`` to ``out`` through ``template`` (a path or file object of a
    ``.docx``; default: the shipped one).

    :raises DocumentTemplateError: The template is unreadable, or uses a placeholder that
        is not one of :data:`INLINE` and :data:`BLOCKS` (the message lists them).
    """
    tpl = _open(template)
    try:
        used = set(tpl.get_undeclared_template_variables())
    except Exception as err:
        raise DocumentTemplateError(f"the template's placeholders do not parse: {err}") from err
    unknown = sorted(used - set(INLINE) - set(BLOCKS))
    if unknown:
        raise DocumentTemplateError(
            f"the template uses unknown placeholder(s) {unknown}; inline placeholders: "
            f"{', '.join(INLINE)}; block placeholders ({{{{p name }}}} alone in a paragraph): "
            f"{', '.join(BLOCKS)}"
        )
    writer = _Writer(tpl, document)
    values: dict[str, Any] = {k: document.fields.get(k, "") for k in INLINE}
    for name in sorted(used & set(BLOCKS)):
        values[name] = writer.block(name)
    try:
        tpl.render(values, autoescape=True)
    except Exception as err:
        raise DocumentTemplateError(f"the template could not be filled: {err}") from err
    _update_fields_on_open(tpl.docx)
    out = Path(out)
    buffer = io.BytesIO()
    tpl.save(buffer)
    out.write_bytes(buffer.getvalue())  # whole or not at all: written once, at the end
    return out


class _Writer:
    """Builds the subdocuments of one document (numbers and bookmark ids shared)."""

    def __init__(self, tpl: Any, document: ModelDocument) -> None:
        self.tpl = tpl
        self.document = document
        self.numbers = document.numbered()
        self.bookmark = 0

    def block(self, name: str) -> Any:
        sub = self.tpl.new_subdoc()
        if name == "table_of_contents":
            _toc(sub)
        elif name == "executive_summary":
            self.section(sub, self.document.summary)
        elif name == "all_sections":
            for section in self.document.sections:
                self.section(sub, section)
        else:
            section = self.document.section(name.removeprefix("section_"))
            if section is None:
                sub.add_paragraph("This set holds no such section.")
            else:
                self.section(sub, section)
        return sub

    def section(self, sub: Any, section: Section) -> None:
        heading = sub.add_heading(section.title, 1)
        self.bookmark += 1
        _bookmark(heading, f"sec_{section.id}", self.bookmark)
        for block in section.blocks:
            if isinstance(block, Heading):
                sub.add_heading(block.text, block.level)
            elif isinstance(block, Paragraph):
                _paragraph(sub, block)
            elif isinstance(block, Bullets):
                for item in block.items:
                    _paragraph(sub, item, style="List Bullet")
            elif isinstance(block, Table):
                self.table(sub, block)
            elif isinstance(block, Figure):
                self.figure(sub, block)

    def table(self, sub: Any, t: Table) -> None:
        _caption(sub, self.numbers[id(t)], t.caption, t.source.describe())
        table = sub.add_table(rows=0 if t.key_value else 1, cols=len(t.header))
        _style(sub, table, "Table Grid")
        if not t.key_value:
            for cell, text in zip(table.rows[0].cells, t.header, strict=True):
                cell.text = ""
                cell.paragraphs[0].add_run(text).bold = True
            _repeat_header(table.rows[0])
        for row in t.rows:
            cells = table.add_row().cells
            for j, (cell, text) in enumerate(zip(cells, row, strict=True)):
                cell.text = text
                if t.key_value and j == 0:
                    cell.paragraphs[0].runs[0].bold = True
        sub.add_paragraph()

    def figure(self, sub: Any, f: Figure) -> None:
        from docx.shared import Inches

        sub.add_picture(io.BytesIO(f.png), width=Inches(FIGURE_WIDTH))
        _caption(sub, self.numbers[id(f)], f.caption, f.source.describe())


def _style(sub: Any, target: Any, name: str) -> None:
    """Apply a style the document has (a bank's template may lack it)."""
    with contextlib.suppress(KeyError):
        target.style = name


def _paragraph(sub: Any, block: Paragraph, style: str | None = None) -> None:
    from docx.shared import Pt, RGBColor

    p = sub.add_paragraph()
    if style:
        _style(sub, p, style)
    for part in block.parts:
        if isinstance(part, Link):
            _link(p, part)
            continue
        if block.kind == "code":  # the notice's lines kept, in a fixed-width font
            for i, line in enumerate(part.split("\n")):
                if i:
                    p.add_run().add_break()
                run = p.add_run(line)
                run.font.name = "Courier New"
                run.font.size = Pt(8.5)
            continue
        run = p.add_run(part)
        if block.kind == "note":
            run.italic = True
            run.font.size = Pt(9)
        elif block.kind == "warning":
            run.bold = True
            run.font.color.rgb = RGBColor(0xA3, 0x33, 0x1A)


def _caption(sub: Any, number: str, caption: str, source: str) -> None:
    kind, n = number.split(" ")
    p = sub.add_paragraph()
    _style(sub, p, "Caption")
    p.add_run(f"{kind} ")
    _simple_field(p, f"SEQ {kind} \\* ARABIC", n)
    p.add_run(f": {caption}. {source}")
    p.paragraph_format.keep_with_next = True


def _simple_field(paragraph: Any, instruction: str, cached: str) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), instruction)
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = cached
    run.append(text)
    field.append(run)
    paragraph._p.append(field)


def _toc(sub: Any) -> None:
    """A ``TOC`` field (levels 1-2, hyperlinked) that Word fills when it opens the file."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    p = sub.add_paragraph()
    parts = [("begin", None), ("instr", 'TOC \\o "1-2" \\h \\z \\u'), ("separate", None)]
    for kind, text in parts:
        run = OxmlElement("w:r")
        if kind == "instr":
            node = OxmlElement("w:instrText")
            node.set(qn("xml:space"), "preserve")
            node.text = text
        else:
            node = OxmlElement("w:fldChar")
            node.set(qn("w:fldCharType"), kind)
        run.append(node)
        p._p.append(run)
    p.add_run("The table of contents is filled when the document is opened in Word (or: "
              "right-click, Update Field).")  # fmt: skip
    end = OxmlElement("w:r")
    char = OxmlElement("w:fldChar")
    char.set(qn("w:fldCharType"), "end")
    end.append(char)
    p._p.append(end)


def _bookmark(paragraph: Any, name: str, number: int) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    start = OxmlElement("w:bookmarkStart")
    start.set(qn("w:id"), str(number))
    start.set(qn("w:name"), name)
    end = OxmlElement("w:bookmarkEnd")
    end.set(qn("w:id"), str(number))
    paragraph._p.insert(1 if paragraph._p.pPr is not None else 0, start)
    paragraph._p.append(end)


def _link(paragraph: Any, link: Link) -> None:
    """An internal hyperlink to the section's bookmark."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    hyperlink = OxmlElement("w:hyperlink")
    hyperlink.set(qn("w:anchor"), f"sec_{link.anchor}")
    run = OxmlElement("w:r")
    props = OxmlElement("w:rPr")
    color = OxmlElement("w:color")
    color.set(qn("w:val"), "1F5FA8")
    underline = OxmlElement("w:u")
    underline.set(qn("w:val"), "single")
    props.extend([color, underline])
    text = OxmlElement("w:t")
    text.set(qn("xml:space"), "preserve")
    text.text = link.text
    run.extend([props, text])
    hyperlink.append(run)
    paragraph._p.append(hyperlink)


def _repeat_header(row: Any) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    props = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    props.append(header)


def _update_fields_on_open(docx: Any) -> None:
    """Ask Word to update the fields (table of contents, page numbers) on opening."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    settings = docx.settings.element
    for old in settings.findall(qn("w:updateFields")):
        settings.remove(old)
    update = OxmlElement("w:updateFields")
    update.set(qn("w:val"), "true")
    settings.append(update)
