"""The content of a model document, independent of its format.

A :class:`ModelDocument` is sections of blocks (headings, paragraphs, bullet lists, tables
and figures); the Word writer (:mod:`shapgov.documents.docx_writer`) and the PDF writer
(:mod:`shapgov.documents.pdf_writer`) render the same blocks, so the two files say the same
thing. Every table and figure carries the :class:`Source` it was read from: an artifact of
the set and its SHA-256 from the manifest (or the registry's signed verdict), which the
document prints in its caption.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """Where a table or figure came from: a file of the set and its SHA-256 (from the
    manifest), or another record (``sha256`` then ``None`` and ``what`` says which)."""

    artifact: str
    sha256: str | None
    what: str = ""

    def describe(self) -> str:
        """``"Source: feature_impact.json, SHA-256 ab12...".``"""
        text = f"Source: {self.artifact}"
        if self.what:
            text += f" ({self.what})"
        if self.sha256:
            text += f", SHA-256 {self.sha256}"
        return text + "."


@dataclass(frozen=True)
class Link:
    """Text that links to a section of the document (its ``anchor``)."""

    text: str
    anchor: str


@dataclass(frozen=True)
class Paragraph:
    """Running text: strings and :class:`Link` parts; ``kind`` is ``"body"``, ``"note"``
    (smaller, for explanations), ``"warning"`` (a problem the reader must see) or
    ``"code"`` (a preformatted block, such as a sample notice)."""

    parts: tuple[str | Link, ...]
    kind: str = "body"

    @property
    def text(self) -> str:
        """The paragraph as plain text."""
        return "".join(p if isinstance(p, str) else p.text for p in self.parts)


@dataclass(frozen=True)
class Bullets:
    """A bulleted list of paragraphs."""

    items: tuple[Paragraph, ...]


@dataclass(frozen=True)
class Table:
    """A table with a caption and its source; ``header`` ``(c,)``, ``rows`` ``(r, c)`` of
    text. ``key_value``: a two-column table of names (first column) and values."""

    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    source: Source
    key_value: bool = False


@dataclass(frozen=True)
class Figure:
    """A PNG figure with a caption and its source."""

    caption: str
    png: bytes = field(repr=False)
    source: Source
    alt: str = ""


@dataclass(frozen=True)
class Heading:
    """A heading inside a section (level 2 or 3; sections are level 1)."""

    text: str
    level: int = 2


Block = Heading | Paragraph | Bullets | Table | Figure


@dataclass(frozen=True)
class Section:
    """One section: ``id`` (its anchor and placeholder ``section_<id>``), title, blocks."""

    id: str
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class ModelDocument:
    """A whole document: the values its placeholders take (``fields``: title, model name
    and version, verdict, signer, manifest hash, ...), the executive summary and the
    sections in their default order (the regulatory section map last)."""

    fields: dict[str, str]
    summary: Section
    sections: tuple[Section, ...]

    def section(self, section_id: str) -> Section | None:
        """The section with this id (the summary's id is ``"executive"``), or ``None``."""
        for s in (self.summary, *self.sections):
            if s.id == section_id:
                return s
        return None

    def numbered(self) -> dict[int, str]:
        """Each table and figure's number, by ``id()`` of the block: tables and figures are
        numbered separately, in document order (the summary first)."""
        numbers: dict[int, str] = {}
        counts = {"Table": 0, "Figure": 0}
        for s in (self.summary, *self.sections):
            for b in s.blocks:
                kind = (
                    "Table" if isinstance(b, Table) else "Figure" if isinstance(b, Figure) else None
                )
                if kind:
                    counts[kind] += 1
                    numbers[id(b)] = f"{kind} {counts[kind]}"
        return numbers
