"""The compatibility matrix: data rows matched against models by dotted class path."""

from __future__ import annotations

import fnmatch
import tomllib
import weakref
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pandas as pd

from shapgov.errors import MatrixError

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
        """The row's status for ``task`` (``"regression"``, ``"binary"``, ``"multiclass"``)."""
        return self.status[task]

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> MatrixRow:
        """A row from a mapping with the keys of ``compat/matrix.toml`` (what the
        ``shapgov_matrix_rows`` hook returns).

        :raises MatrixError: A key is missing, or a status or kind is not a known one.
        """
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


_ROWS: weakref.WeakKeyDictionary[Any, tuple[frozenset[str], list[MatrixRow], dict[str, str]]]
_ROWS = weakref.WeakKeyDictionary()


def _read_rows(pm: Any) -> tuple[list[MatrixRow], dict[str, str]]:
    """Rows and the plugin that contributed each, read once per manager (again only
    after plugins are registered or unregistered)."""
    key = frozenset(name for name, _ in pm.list_name_plugin())
    cached = _ROWS.get(pm)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    out: list[MatrixRow] = []
    providers: dict[str, str] = {}
    for impl in reversed(pm.hook.shapgov_matrix_rows.get_hookimpls()):
        for data in impl.function() or ():
            row = MatrixRow.from_mapping(data)
            if row.id in providers:
                raise MatrixError(f"matrix row id {row.id!r} is contributed twice")
            providers[row.id] = impl.plugin_name
            out.append(row)
    _ROWS[pm] = (key, out, providers)
    return out, providers


def rows(plugin_manager: Any) -> list[MatrixRow]:
    """All matrix rows, plugin rows first (so they take precedence), ids unique.

    :param plugin_manager: The manager whose ``shapgov_matrix_rows`` hooks supply them.
    :raises MatrixError: A row is malformed or two plugins contribute the same id.
    """
    return list(_read_rows(plugin_manager)[0])


def row_provider(plugin_manager: Any, row_id: str) -> str:
    """The plugin that contributed matrix row ``row_id``."""
    return _read_rows(plugin_manager)[1][row_id]


def class_paths(cls: type) -> list[str]:
    """Dotted paths under which ``cls`` may be named: its module and every parent package.

    ``sklearn.linear_model._glm.glm.PoissonRegressor`` is also reachable as
    ``sklearn.linear_model.PoissonRegressor`` and ``sklearn.PoissonRegressor``; rows name
    the public one. Nothing is imported.
    """
    parts = cls.__module__.split(".")
    return [f"{'.'.join(parts[:i])}.{cls.__qualname__}" for i in range(len(parts), 0, -1)]


def class_path_set(obj: Any) -> set[str]:
    """Every dotted path of every class in ``obj``'s MRO (see :func:`class_paths`)."""
    return {p for cls in type(obj).__mro__ for p in class_paths(cls)}


def _matches(paths: list[str], patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(p, pat) for p in paths for pat in patterns)


def find_row(obj: Any, *, table: list[MatrixRow]) -> MatrixRow | None:
    """The row for ``obj``: the most specific class in its MRO that any row names."""
    for cls in type(obj).__mro__:
        paths = class_paths(cls)
        for row in table:
            if _matches(paths, row.classes):
                return row
    return None


def matrix(*, plugin_manager: Any = None) -> pd.DataFrame:
    """The compatibility matrix as a DataFrame, one row per model family.

    :param plugin_manager: Whose rows to show (default: the default manager, with every
        installed plugin).
    """
    from shapgov.registry import resolve_plugin_manager

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
        for r in rows(resolve_plugin_manager(plugin_manager))
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
