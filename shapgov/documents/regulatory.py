"""The regulatory section map: SR 11-7's documentation expectations and the EU AI Act's
Annex IV, item by item, against the sections of a model document.

The map is data, ``reports/regulatory_map.toml`` (installed as ``shapgov.reports``): each
item names the document sections that fill it from the set. An item is "filled from the
set" when the document holds one of them, else "to be written by the model owner".

Sources: Board of Governors of the Federal Reserve System, SR 11-7 (2011), "Supervisory
Guidance on Model Risk Management", sections III, V and VI; Regulation (EU) 2024/1689
(Artificial Intelligence Act), Annex IV and Articles 9, 12, 14 and 72.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from shapgov.documents.blocks import Paragraph, Section, Source, Table
from shapgov.errors import InputError
from shapgov.sinks.compliance import SECTIONS

#: The map shipped with shapgov.
MAP_FILE = "regulatory_map.toml"
FILLED = "filled from the set"
OWNER = "to be written by the model owner"


@dataclass(frozen=True)
class MapItem:
    """One documentation expectation: framework, item, reference, the sections that fill
    it and a note on what the owner still writes."""

    framework: str
    item: str
    reference: str
    sections: tuple[str, ...]
    note: str


def load_map(path: str | Path | None = None) -> tuple[list[MapItem], str]:
    """The map's items and its SHA-256 (the shipped map, or the TOML file at ``path``).

    :raises InputError: The file is not TOML of the documented shape, or an item names a
        section the documents do not have.
    """
    import hashlib

    if path is None:
        data = resources.files("shapgov.reports").joinpath(MAP_FILE).read_bytes()
    else:
        data = Path(path).read_bytes()
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
        known = {s for s, _ in SECTIONS}
        items = []
        for framework in parsed["framework"]:
            for it in framework["item"]:
                unknown = sorted(set(it["sections"]) - known)
                if unknown:
                    raise InputError(
                        f"regulatory map item {it['item']!r} names unknown sections {unknown}; "
                        f"sections: {sorted(known)}"
                    )
                items.append(
                    MapItem(
                        framework["name"],
                        it["item"],
                        it["reference"],
                        tuple(it["sections"]),
                        it.get("note", ""),
                    )
                )
    except (KeyError, TypeError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise InputError(
            f"the regulatory map is not of the documented shape ([[framework]] with name and "
            f"[[framework.item]] entries: item, reference, sections, note): {err}"
        ) from err
    return items, hashlib.sha256(data).hexdigest()


def regulatory_section(present: set[str], titles: dict[str, str]) -> Section:
    """The document's last section: the map as a table, each item marked filled (with the
    sections that fill it) or left to the model owner.

    :param present: The ids of the sections the document holds.
    :param titles: Section titles by id.
    """
    items, digest = load_map()
    rows = []
    for it in items:
        filling = [titles[s] for s in it.sections if s in present]
        status = FILLED if filling else OWNER
        rows.append(
            (it.framework, it.item, it.reference, status, "; ".join(filling) or "–", it.note)
        )
    filled = sum(r[3] == FILLED for r in rows)
    table = Table(
        "Regulatory section map",
        ("Framework", "Expectation", "Reference", "Status", "Filled by sections", "Note"),
        tuple(rows),
        Source(f"shapgov's {MAP_FILE}", digest, "the map shipped with shapgov"),
    )
    intro = Paragraph(
        (
            f"{filled} of {len(rows)} documentation expectations are filled from the approved "
            "set; the others are to be written by the model owner in this document.",
        )
    )
    return Section("regulatory_map", "Regulatory section map", (intro, table))
