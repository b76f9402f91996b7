"""Built-in plugin: choose each vertex's explainer from its compatibility-matrix row."""

from __future__ import annotations

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Vertex
from shapgov.explainers.base import Explainer
from shapgov.planning.compatibility import MatrixRow


@hookimpl(trylast=True)
def shapgov_select_explainer(
    vertex: Vertex, row: MatrixRow | None, explainers: dict[str, type[Explainer]]
) -> str | None:
    if row is None or row.status_for(vertex.task) != "supported":
        return None
    return row.explainer if row.explainer in explainers else None
