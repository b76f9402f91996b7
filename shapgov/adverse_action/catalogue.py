"""The reason catalogue: approved adverse-action statements and the model inputs each covers.

A lender that declines an applicant owes them a *statement of specific reasons* (US ECOA,
Regulation B, 12 CFR 1002.9(b)(2)); the reasons must describe the factors the model
actually scored (CFPB circulars 2022-03 and 2023-03), and more than four are not likely to
help (Regulation B, Official Interpretation 9(b)(2)-1). The catalogue is the reviewed
mapping from model inputs to those statements: each entry is one player of the game the
reasons are derived in (:func:`shapgov.reasons`), so a reason's value is the exact
Shapley value of its group of inputs, never a sum of per-column values.

File format (TOML; a CSV with the same fields is read too)::

    [catalogue]
    name = "consumer-credit"          # required
    version = "2026.1"                # required

    [[reason]]
    code = "R01"                      # unique
    statement = "Proportion of balances to credit limits is too high"
    inputs = ["revolving_utilization"]   # one or several model inputs, each in one entry
    adverse = "high"                  # high | low | either: which values of the inputs
                                      # the statement describes as adverse

    [[never_a_reason]]                # an input no statement may name, and why
    input = "application_channel"
    justification = "How the application arrived is not a credit factor; it is scored
        only to calibrate the channel's base rate."

CSV columns (UTF-8, with or without a byte-order mark, as spreadsheets save it):
``code, statement, inputs, adverse, justification``, and optionally ``catalogue_name``
and ``catalogue_version`` (the same on every row that fills them); ``inputs`` lists inputs
separated by ``;``; a row without a code declares its inputs never a reason, with its
justification. The ``name`` and ``version`` arguments of :func:`load_catalogue` (the
command line's ``--catalogue-name`` and ``--catalogue-version``) give them where the file
does not; without a name the file's stem is its name; a version is always needed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapgov.errors import CatalogueError, ProtectedAttributeError

#: Values of a reason's ``adverse`` field.
ADVERSE_DIRECTIONS = ("high", "low", "either")
#: The shortest written justification accepted for an input that is never a reason.
MIN_JUSTIFICATION = 20


@dataclass(frozen=True)
class Reason:
    """One approved reason statement.

    :param code: The reason's code (unique in the catalogue), e.g. ``"R01"``.
    :param statement: The text the applicant is given.
    :param inputs: The model inputs the statement covers (one player in the game).
    :param adverse: ``"high"``, ``"low"`` or ``"either"``: the inputs' values the statement
        calls adverse.
    """

    code: str
    statement: str
    inputs: tuple[str, ...]
    adverse: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "code": self.code,
            "statement": self.statement,
            "inputs": list(self.inputs),
            "adverse": self.adverse,
        }


@dataclass(frozen=True)
class ReasonCatalogue:
    """An immutable, versioned reason catalogue (see the module docstring for its file).

    :param name: The catalogue's name.
    :param version: Its version, as the bank numbers them.
    :param reasons: The entries, in file order.
    :param never: Input -> the written justification for never giving it as a reason.
    :param sha256: SHA-256 of the canonical JSON of the catalogue (name, version, entries,
        exclusions): the same catalogue gives the same hash whatever file it came from.
    :param source: The file it was read from (``None`` when built in Python).
    """

    name: str
    version: str
    reasons: tuple[Reason, ...]
    never: Mapping[str, str] = field(default_factory=dict)
    sha256: str = ""
    source: str | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        """The reason codes ``(R,)``, in catalogue order."""
        return tuple(r.code for r in self.reasons)

    def reason(self, code: str) -> Reason:
        """The entry with ``code``.

        :raises CatalogueError: No entry has that code.
        """
        for r in self.reasons:
            if r.code == code:
                return r
        raise CatalogueError(f"the catalogue {self.name!r} has no reason code {code!r}")

    def groups(self) -> dict[str, list[str]]:
        """Code -> inputs: the players of the reasons' game."""
        return {r.code: list(r.inputs) for r in self.reasons}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready catalogue, with its SHA-256."""
        return {
            **_canonical(self.name, self.version, self.reasons, self.never),
            "sha256": self.sha256,
        }

    def check_inputs(self, columns: Sequence[Any], *, protected: Sequence[str] = ()) -> None:
        """Check the catalogue against the model's input columns and the protected
        attributes before anything is explained.

        :param columns: The model's original input columns ``(M,)``.
        :param protected: Names of protected attributes (e.g. age, sex, race, marital
            status): none may be a model input or be named by the catalogue. Names match
            whatever their case and surrounding spaces (``"Age "`` is ``age``).
        :raises ProtectedAttributeError: A protected attribute is a model input, or the
            catalogue names one.
        :raises CatalogueError: An input of the catalogue is not a model input, or a model
            input is covered by no entry and not declared never a reason.
        """
        labels = [str(c) for c in columns]
        wanted = protected_names(protected)
        used = sorted(c for c in labels if _folded(c) in wanted)
        if used:
            raise ProtectedAttributeError(
                f"the model takes the protected attribute(s) {used} as input(s): adverse-action "
                "reasons cannot be derived from a model that scores a protected attribute "
                "(ECOA, Regulation B 12 CFR 1002.6); refit the model without them"
            )
        mentioned = {i for r in self.reasons for i in r.inputs} | set(self.never)
        named = sorted(i for i in mentioned if _folded(i) in wanted)
        if named:
            raise ProtectedAttributeError(
                f"the catalogue {self.name!r} names the protected attribute(s) {named}: a "
                "reason may not refer to one; remove them from the catalogue"
            )
        known = set(labels)
        unknown = sorted({i for r in self.reasons for i in r.inputs} - known)
        unknown_never = sorted(set(self.never) - known)
        if unknown or unknown_never:
            raise CatalogueError(
                f"the catalogue {self.name!r} names input(s) the model does not take: "
                f"{unknown + unknown_never}; the model's inputs are {labels}"
            )
        covered = {i for r in self.reasons for i in r.inputs} | set(self.never)
        uncovered = [c for c in labels if c not in covered]
        if uncovered:
            raise CatalogueError(
                f"the catalogue {self.name!r} covers no entry for the model input(s) "
                f"{uncovered}: add each to a reason, or declare it under [[never_a_reason]] "
                "with a written justification"
            )


def _folded(name: Any) -> str:
    return " ".join(str(name).split()).casefold()


def protected_names(protected: Any) -> frozenset[str]:
    """The declared protected attributes, case-folded and trimmed for matching.

    :param protected: A sequence of names (one name as a string is one attribute).
    :raises InputError: ``protected`` is not a string or a sequence of strings.
    """
    from shapgov.errors import InputError

    if protected is None:
        return frozenset()
    if isinstance(protected, str):
        protected = [protected]
    try:
        names = list(protected)
    except TypeError:
        raise InputError(
            f"protected must be a list of attribute names, e.g. ['age', 'sex'], not {protected!r}"
        ) from None
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise InputError(f"protected must name attributes as non-empty text, not {names!r}")
    return frozenset(_folded(n) for n in names)


def _canonical(
    name: str, version: str, reasons: Sequence[Reason], never: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "reasons": [r.to_dict() for r in reasons],
        "never_a_reason": [{"input": k, "justification": never[k]} for k in sorted(never)],
    }


def make_catalogue(
    *,
    name: str,
    version: str,
    reasons: Sequence[Mapping[str, Any]],
    never_a_reason: Sequence[Mapping[str, Any]] = (),
    source: str | None = None,
) -> ReasonCatalogue:
    """A :class:`ReasonCatalogue` from plain entries (as the file's tables hold them).

    :param name: The catalogue's name.
    :param version: Its version.
    :param reasons: Mappings with ``code``, ``statement``, ``inputs`` (a list, or one
        label) and ``adverse``.
    :param never_a_reason: Mappings with ``input`` and ``justification``.
    :param source: Where the entries came from, for messages.
    :returns: The validated catalogue with its SHA-256.
    :raises CatalogueError: A missing name or version, an entry without a code, a
        duplicate code, an empty statement, an entry without inputs, an input in two
        entries, an unknown ``adverse`` value, a field the schema does not have, or an
        input declared never a reason without a justification of at least 20 characters.
    """
    where = f" in {source}" if source else ""
    if not str(name or "").strip() or not str(version or "").strip():
        raise CatalogueError(f"a reason catalogue needs a name and a version{where}")
    built: list[Reason] = []
    owner: dict[str, str] = {}
    for i, entry in enumerate(reasons):
        if not isinstance(entry, Mapping):
            raise CatalogueError(
                f"reason entry {i + 1}{where} is {entry!r}, not a table of code, statement, "
                "inputs and adverse"
            )
        extra = sorted(set(entry) - {"code", "statement", "inputs", "adverse"})
        if extra:
            raise CatalogueError(
                f"reason entry {i + 1}{where} has unknown field(s) {extra}; the fields are "
                "code, statement, inputs, adverse"
            )
        code = str(entry.get("code") or "").strip()
        if not code:
            raise CatalogueError(f"reason entry {i + 1}{where} has no code")
        if code in {r.code for r in built}:
            raise CatalogueError(f"the reason code {code!r} appears twice{where}")
        statement = entry.get("statement")
        if isinstance(statement, str):
            statement = statement.strip()
        if not statement:
            raise CatalogueError(f"reason {code!r}{where} has an empty statement")
        inputs = entry.get("inputs")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list | tuple) or not all(isinstance(x, str) for x in inputs):
            raise CatalogueError(
                f"reason {code!r}{where} has inputs={entry.get('inputs')!r}; inputs are the "
                'names of model inputs, one or a list: inputs = ["income"]'
            )
        inputs = [x.strip() for x in inputs if x.strip()]
        if not inputs:
            raise CatalogueError(f"reason {code!r}{where} covers no model input")
        for label in inputs:
            if label in owner:
                raise CatalogueError(
                    f"the input {label!r} is in reasons {owner[label]!r} and {code!r}{where}: "
                    "each input belongs to one entry"
                )
            owner[label] = code
        if not isinstance(entry.get("statement"), str):
            raise CatalogueError(f"reason {code!r}{where} has a statement that is not text")
        adverse = str(entry.get("adverse") or "").strip()
        if adverse not in ADVERSE_DIRECTIONS:
            raise CatalogueError(
                f"reason {code!r}{where} has adverse={adverse!r}; it must be one of "
                f"{list(ADVERSE_DIRECTIONS)}"
            )
        built.append(Reason(code, statement, tuple(inputs), adverse))
    if not built:
        raise CatalogueError(f"the reason catalogue{where} has no reasons")
    never: dict[str, str] = {}
    for entry in never_a_reason:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("input", ""), str):
            raise CatalogueError(
                f"a [[never_a_reason]] entry{where} is {entry!r}; it is a table with one "
                "input (its name, as text) and a justification"
            )
        extra = sorted(set(entry) - {"input", "justification"})
        if extra:
            raise CatalogueError(
                f"the [[never_a_reason]] entry for {entry.get('input')!r}{where} has unknown "
                f"field(s) {extra}; the fields are input and justification"
            )
        label = str(entry.get("input") or "").strip()
        why = " ".join(str(entry.get("justification") or "").split())
        if not label:
            raise CatalogueError(f"a [[never_a_reason]] entry{where} names no input")
        if label in owner:
            raise CatalogueError(
                f"the input {label!r} is in reason {owner[label]!r} and declared never a "
                f"reason{where}"
            )
        if label in never:
            raise CatalogueError(f"the input {label!r} is declared never a reason twice{where}")
        if len(why) < MIN_JUSTIFICATION:
            raise CatalogueError(
                f"the input {label!r} is declared never a reason{where} without a written "
                f"justification (at least {MIN_JUSTIFICATION} characters): say why no "
                "applicant may be told about it"
            )
        never[label] = why
    codes = {r.code for r in built}
    clash = sorted(codes & set(never))
    if clash:
        raise CatalogueError(
            f"the reason code(s) {clash}{where} are also the names of inputs declared never a "
            "reason: each is a player of the reasons' game, so codes and those inputs need "
            "distinct names; rename the codes"
        )
    canonical = _canonical(str(name), str(version), built, never)
    digest = hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return ReasonCatalogue(
        name=str(name),
        version=str(version),
        reasons=tuple(built),
        never=dict(never),
        sha256=digest,
        source=source,
    )


def load_catalogue(
    path: str | Path, *, name: str | None = None, version: str | None = None
) -> ReasonCatalogue:
    """Read a reason catalogue from a TOML or CSV file (schema: the module docstring).

    :param path: The ``.toml`` or ``.csv`` file (UTF-8).
    :param name: The catalogue's name (CSV only, where it has no ``catalogue_name``
        column; default: the file's stem).
    :param version: Its version (CSV only, where it has no ``catalogue_version`` column).
    :returns: The validated, immutable catalogue.
    :raises CatalogueError: The file is missing, unreadable, not UTF-8 or invalid (see
        :func:`make_catalogue`), or a CSV has no version.
    """
    path = Path(path)
    if path.suffix.lower() not in (".toml", ".csv"):
        raise CatalogueError(f"a reason catalogue is a .toml or .csv file, not {path.name!r}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise CatalogueError(
            f"the reason catalogue {path} is not UTF-8 text ({err.reason} at byte "
            f"{err.start}); save it as UTF-8 (in a spreadsheet: CSV UTF-8)"
        ) from None
    except OSError as err:
        raise CatalogueError(f"cannot read the reason catalogue {path}: {err}") from None
    if path.suffix.lower() == ".toml":
        if name is not None or version is not None:
            raise CatalogueError(
                f"the reason catalogue {path} is TOML: its [catalogue] table gives its name "
                "and version (name= and version= are for CSV files)"
            )
        return _from_toml(text, path)
    return _from_csv(text, path, name=name, version=version)


def _from_toml(text: str, path: Path) -> ReasonCatalogue:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise CatalogueError(f"the reason catalogue {path} is not valid TOML: {err}") from None
    extra = sorted(set(data) - {"catalogue", "reason", "never_a_reason"})
    if extra:
        raise CatalogueError(
            f"the reason catalogue {path} has unknown table(s) {extra}; the tables are "
            "[catalogue], [[reason]], [[never_a_reason]]"
        )
    head = data.get("catalogue", {})
    if isinstance(head, dict):
        extra = sorted(set(head) - {"name", "version"})
        if extra:
            raise CatalogueError(
                f"the [catalogue] table of {path} has unknown key(s) {extra}; it holds name and "
                "version"
            )
        loose = [k for k in ("name", "version") if k in head and not isinstance(head[k], str)]
        if loose:
            raise CatalogueError(
                f'the [catalogue] {loose} of {path} must be quoted text (version = "2026.10", '
                "not 2026.10, which TOML reads as the number 2026.1)"
            )
    shapes = {
        "[catalogue]": isinstance(head, dict),
        "[[reason]]": isinstance(data.get("reason", []), list),
        "[[never_a_reason]]": isinstance(data.get("never_a_reason", []), list),
    }
    wrong = [table for table, right in shapes.items() if not right]
    if wrong:
        raise CatalogueError(
            f"the reason catalogue {path} writes {wrong} as a plain value; [catalogue] is a "
            "table (name, version), [[reason]] and [[never_a_reason]] are arrays of tables"
        )
    return make_catalogue(
        name=head.get("name", ""),
        version=head.get("version", ""),
        reasons=data.get("reason", []),
        never_a_reason=data.get("never_a_reason", []),
        source=str(path),
    )


#: The columns of a CSV catalogue.
CSV_COLUMNS = ("code", "statement", "inputs", "adverse", "justification")
#: Optional CSV columns naming the catalogue.
CSV_HEAD_COLUMNS = ("catalogue_name", "catalogue_version")


def _from_csv(text: str, path: Path, *, name: str | None, version: str | None) -> ReasonCatalogue:
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        lines = [line for line in reader if any(cell.strip() for cell in line)]
    except csv.Error as err:
        raise CatalogueError(f"the reason catalogue {path} is not valid CSV: {err}") from None
    if not lines:
        raise CatalogueError(f"the reason catalogue {path} is empty")
    header = [h.strip() for h in lines[0]]
    if len(header) == 1 and header[0].count(";") >= 2:
        raise CatalogueError(
            f"the reason catalogue {path} is separated by semicolons (a spreadsheet's export in "
            "some locales); save it as comma-separated CSV (inputs are separated by ';' inside "
            "their cell)"
        )
    while header and not header[-1] and all(not line[-1].strip() for line in lines[1:]):
        header = header[:-1]  # a spreadsheet's trailing empty column
        lines = [header, *(line[:-1] for line in lines[1:])]
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise CatalogueError(f"the reason catalogue {path} has the column(s) {twice} twice")
    unknown = sorted(set(header) - set(CSV_COLUMNS) - set(CSV_HEAD_COLUMNS))
    if unknown:
        raise CatalogueError(
            f"the reason catalogue {path} has unknown column(s) {unknown}; the columns are "
            f"{list(CSV_COLUMNS)}, and optionally {list(CSV_HEAD_COLUMNS)}"
        )
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise CatalogueError(
                f"line {number} of the reason catalogue {path} has {len(line)} cells but the "
                f"header has {len(header)}; quote a cell that holds a comma"
            )
        rows.append(dict(zip(header, line, strict=True)))
    for column, given in zip(CSV_HEAD_COLUMNS, (name, version), strict=True):
        found = {r[column].strip() for r in rows if r.get(column, "").strip()}
        if len(found) > 1:
            raise CatalogueError(
                f"the reason catalogue {path} gives several values of {column}: {sorted(found)}"
            )
        if found and given is not None and found != {str(given).strip()}:
            raise CatalogueError(
                f"the reason catalogue {path} says {column} = {found.pop()!r} but "
                f"{given!r} was given"
            )
        if found:
            if column == "catalogue_name":
                name = found.pop()
            else:
                version = found.pop()
    if not str(version or "").strip():
        raise CatalogueError(
            f"the reason catalogue {path} has no version: add a catalogue_version column, or "
            "give it (load_catalogue(path, version=...); shapgov reasons --catalogue-version)"
        )
    reasons, never = [], []
    for number, row in enumerate(rows, start=2):
        inputs = [s.strip() for s in (row.get("inputs") or "").split(";") if s.strip()]
        coded = bool((row.get("code") or "").strip())
        if coded and (row.get("justification") or "").strip():
            raise CatalogueError(
                f"line {number} of {path} is reason {row['code'].strip()!r} and has a "
                "justification: a justification is for a row without a code, which declares "
                "its inputs never a reason"
            )
        if not coded and any((row.get(k) or "").strip() for k in ("statement", "adverse")):
            raise CatalogueError(
                f"line {number} of {path} has a statement or an adverse direction but no code: "
                "give the reason a code (a row without one declares its inputs never a reason)"
            )
        if coded:
            reasons.append(
                {
                    "code": row["code"],
                    "statement": row.get("statement", ""),
                    "inputs": inputs,
                    "adverse": row.get("adverse", ""),
                }
            )
        else:
            if not inputs:
                raise CatalogueError(f"a row of {path} has neither a code nor inputs")
            never += [{"input": i, "justification": row.get("justification", "")} for i in inputs]
    return make_catalogue(
        name=name or path.stem,
        version=str(version),
        reasons=reasons,
        never_a_reason=never,
        source=str(path),
    )
