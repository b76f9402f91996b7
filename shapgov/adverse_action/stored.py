"""Adverse-action reasons as files of the artifact set, all hashed in its manifest::

    reasons.parquet            one row per explained row: its key (``row``), score,
                               decision, status, reason_1..k, statement_1..k, value_1..k,
                               game_sha256
    reasons.json               the summary: decision rule, reference population, catalogue
                               name/version/SHA-256, game and its hash, how often each
                               code is given, additivity, stability (no per-row data)
    reason_catalogue.json      the catalogue itself (entries, exclusions and why), so the
                               set alone says what every code meant when it was approved
    reason_reference.parquet   the reference population the values were measured against
                               (the game's background; dtypes and categories round-trip)
    reason_values.parquet      every player's value for the declined rows (``row`` + one
                               column per player), in the explained margin
    reason_stability.parquet   per declined row with reasons, the share of its reasons kept
                               across the resamples (when stability was measured)

:func:`write_reasons` writes them, :func:`read_reasons` reads them back (checking the
catalogue against its hash), :func:`reasons_like_the_set` gives new rows their reasons.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shapgov.adverse_action.catalogue import ReasonCatalogue, make_catalogue
from shapgov.adverse_action.decision import Decision
from shapgov.adverse_action.derive import AdverseActionReasons, applicant_rows, reasons_against
from shapgov.planning.stored_background import read_background, write_background
from shapgov.sinks import strict_json

FILES = (
    "reasons.parquet",
    "reasons.json",
    "reason_catalogue.json",
    "reason_reference.parquet",
    "reason_values.parquet",
)
STABILITY_FILE = "reason_stability.parquet"


def _parquet(path: Path, frame: pd.DataFrame) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def _keys(index: pd.Index) -> pd.Series:
    """Row keys as parquet stores one column of them: as they are when they are one
    type of number or text, else as text."""
    values = index.to_series(index=None)
    if values.map(type).nunique() > 1:
        values = values.map(str)
    return values.reset_index(drop=True)


def write_reasons(directory: Path, result: AdverseActionReasons) -> list[str]:
    """Write the reasons' files (see the module docstring) into ``directory``.

    :param directory: The artifact set's directory (the manifest is written after).
    :param result: The reasons of the set's explained rows.
    :returns: The names of the files written.
    """
    frame = result.to_frame()
    frame.insert(0, "row", _keys(result.index).to_numpy())
    _parquet(directory / "reasons.parquet", frame.reset_index(drop=True))
    summary = result.summary()
    stability = dict(summary.get("stability") or {})
    per_row = stability.pop("per_row", None)
    summary["stability"] = stability or None
    (directory / "reasons.json").write_text(strict_json.dumps(summary, indent=2, sort_keys=True))
    (directory / "reason_catalogue.json").write_text(
        strict_json.dumps(result.catalogue.to_dict(), indent=2, sort_keys=True)
    )
    write_background(directory / "reason_reference.parquet", result.reference_rows)
    values = pd.DataFrame(result.group_values, columns=list(result.players))
    values.insert(0, "row", _keys(result.index[result.declined]).to_numpy()[: len(values)])
    _parquet(directory / "reason_values.parquet", values)
    written = list(FILES)
    if per_row is not None:
        stability = pd.DataFrame(
            {"row": list(per_row), "share_kept": np.asarray(list(per_row.values()), dtype=float)}
        )
        _parquet(directory / STABILITY_FILE, stability)
        written.append(STABILITY_FILE)
    return written


def read_catalogue(path: Path) -> ReasonCatalogue:
    """The catalogue a set stored (``reason_catalogue.json``), checked against its hash.

    :raises CatalogueError: The file does not rebuild a catalogue with the recorded hash.
    """
    import json

    from shapgov.errors import CatalogueError

    data = json.loads(Path(path).read_text())
    catalogue = make_catalogue(
        name=data["name"],
        version=data["version"],
        reasons=data["reasons"],
        never_a_reason=data["never_a_reason"],
        source=str(path),
    )
    if catalogue.sha256 != data.get("sha256"):
        raise CatalogueError(
            f"{path} rebuilds a catalogue with SHA-256 {catalogue.sha256[:12]}..., not the "
            f"recorded {str(data.get('sha256'))[:12]}...: the file was altered"
        )
    return catalogue


def read_reasons(directory: Path) -> dict[str, Any]:
    """The reasons a set holds: ``frame`` (reasons.parquet), ``summary`` (reasons.json),
    ``catalogue``, ``reference`` rows and ``values`` (reason_values.parquet); empty when
    the set has none."""
    import json

    directory = Path(directory)
    if not (directory / "reasons.json").exists():
        return {}
    reference, _ = read_background(directory / "reason_reference.parquet")
    return {
        "frame": pd.read_parquet(directory / "reasons.parquet"),
        "summary": json.loads((directory / "reasons.json").read_text()),
        "catalogue": read_catalogue(directory / "reason_catalogue.json"),
        "reference": reference,
        "values": pd.read_parquet(directory / "reason_values.parquet"),
    }


def stored_decision(summary: dict[str, Any]) -> Decision:
    """The decision rule a set's ``reasons.json`` recorded."""
    rule = summary["decision"]
    positive = rule.get("positive_class")
    return Decision(
        cutoff=float(rule["cutoff"]),
        declines=rule["declines"],
        score=rule["score"],
        positive_class=positive,
    )


def reasons_like_the_set(
    model: Any, X: pd.DataFrame, stored: dict[str, Any], *, options: dict[str, Any] | None = None
) -> AdverseActionReasons:
    """Reasons for new rows derived exactly as a set's were: its catalogue, decision rule,
    reference population, ``max_reasons`` and ``min_share`` (serving, Spark and the
    command line call this, so their reasons are the approved set's).

    :param model: The set's model.
    :param X: New rows ``(n, M)``.
    :param stored: :func:`read_reasons` of the set.
    :param options: More options of :func:`shapgov.explain_groups` (policy, plugins);
        the additivity threshold and pass tolerance default to those the set recorded.
    :returns: The :class:`~shapgov.adverse_action.derive.AdverseActionReasons`.
    :raises CatalogueError: The stored catalogue does not cover ``X``'s columns.
    :raises ColumnMismatchError: ``X``'s columns are not the model's inputs.
    :raises InputError: ``X``'s keys do not name one row each.
    """
    summary = stored["summary"]
    catalogue = stored["catalogue"]
    recorded = summary.get("additivity") or {}
    policy = {
        option: float(recorded[name])
        for option, name in (
            ("additivity_threshold", "threshold"),
            ("pass_tolerance", "pass_tolerance"),
        )
        if recorded.get(name) is not None
    }
    X = applicant_rows(X, model)  # the model's inputs, one key per row
    catalogue.check_inputs(list(X.columns))
    return reasons_against(
        model,
        X,
        catalogue=catalogue,
        decision=stored_decision(summary),
        reference_rows=stored["reference"],
        reference=summary["reference"],
        max_reasons=int(summary["max_reasons"]),
        min_share=float(summary["min_share"]),
        options={**policy, **(options or {})},
    )
