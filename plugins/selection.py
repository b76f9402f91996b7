"""Built-in plugin: choose each vertex's explainer from its compatibility-matrix row."""

from __future__ import annotations

from shapgov import hookimpl
from shapgov.blueprint import Vertex
from shapgov.compatibility import MatrixRow
from shapgov.explainers import Explainer


@hookimpl(trylast=True)
def shapgov_select_explainer(
    vertex: Vertex, row: MatrixRow | None, explainers: dict[str, type[Explainer]]
) -> str | None:
    if row is None or row.status_for(vertex.task) != "supported":
        return None
    return row.explainer if row.explainer in explainers else None
