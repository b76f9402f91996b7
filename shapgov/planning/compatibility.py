"""The compatibility matrix: data rows matched against models by dotted class path."""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pandas as pd

from shapgov.errors import MatrixError
from shapgov.registry import get_plugin_manager

TASKS = ("regression", "binary", "multiclass")
STATUSES = ("supported", "planned", "unsupported", "n/a")
KINDS = ("vertex", "composite")


@dataclass(frozen=True)
class MatrixRow:
    """One model family and, per task, whether and how shapgov explains it."""

    id: str
    family: str
    kind: str
    explainer: str
    classes: tuple[str, ...]
    status: dict[str, str] = field(hash=False)
    notes: str = ""
    datarobot_row: str = ""

    def status_for(self, task: str) -> str:
        return self.status[task]

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> MatrixRow:
        missing = {"id", "family", "kind", "explainer", "classes", *TASKS} - set(data)
        if missing:
            raise MatrixError(f"matrix row {data.get('id', data)!r} lacks keys {sorted(missing)}")
        status = {task: data[task] for task in TASKS}
        bad = {t: s for t, s in status.items() if s not in STATUSES}
        if bad or data["kind"] not in KINDS:
            raise MatrixError(
                f"matrix row {data['id']!r}: statuses must be one of {STATUSES} and kind one of "
                f"{KINDS}; got {bad or data['kind']!r}"
            )
        return cls(
            id=data["id"],
            family=data["family"],
            kind=data["kind"],
            explainer=data["explainer"],
            classes=tuple(data["classes"]),
            status=status,
            notes=" ".join(str(data.get("notes", "")).split()),
            datarobot_row=data.get("datarobot_row", ""),
        )


def load_builtin_rows() -> list[dict[str, Any]]:
    """Rows of the packaged ``compat/matrix.toml``."""
    text = resources.files("shapgov.compat").joinpath("matrix.toml").read_text("utf-8")
    return list(tomllib.loads(text)["rows"])


def rows() -> list[MatrixRow]:
    """All matrix rows, plugin rows first (so they take precedence), ids unique."""
    out: list[MatrixRow] = []
    seen: set[str] = set()
    for contributed in get_plugin_manager().hook.shapgov_matrix_rows():
        for data in contributed:
            row = MatrixRow.from_mapping(data)
            if row.id in seen:
                raise MatrixError(f"matrix row id {row.id!r} is contributed twice")
            seen.add(row.id)
            out.append(row)
    return out


def class_paths(cls: type) -> list[str]:
    """Dotted paths under which ``cls`` may be named: its module and every parent package.

    ``sklearn.linear_model._glm.glm.PoissonRegressor`` is also reachable as
    ``sklearn.linear_model.PoissonRegressor`` and ``sklearn.PoissonRegressor``; rows name
    the public one. Nothing is imported.
    """
    parts = cls.__module__.split(".")
    return [f"{'.'.join(parts[:i])}.{cls.__qualname__}" for i in range(len(parts), 0, -1)]


def _matches(paths: list[str], patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(p, pat) for p in paths for pat in patterns)


def find_row(obj: Any, *, table: list[MatrixRow] | None = None) -> MatrixRow | None:
    """The row for ``obj``: the most specific class in its MRO that any row names."""
    table = rows() if table is None else table
    for cls in type(obj).__mro__:
        paths = class_paths(cls)
        for row in table:
            if _matches(paths, row.classes):
                return row
    return None


def matrix() -> pd.DataFrame:
    """The compatibility matrix as a DataFrame, one row per model family."""
    records = [
        {
            "id": r.id,
            "family": r.family,
            "datarobot_row": r.datarobot_row,
            "kind": r.kind,
            "explainer": r.explainer,
            **r.status,
            "classes": ", ".join(r.classes),
            "notes": r.notes,
        }
        for r in rows()
    ]
    return pd.DataFrame.from_records(records)


def to_markdown(frame: pd.DataFrame | None = None) -> str:
    """The matrix as a GitHub markdown table (family, explainer, task cells, notes)."""
    frame = matrix() if frame is None else frame
    cols = ["family", "explainer", *TASKS, "notes"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in frame.iterrows():
        cells = [str(r[c]).replace("|", "\\|") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
