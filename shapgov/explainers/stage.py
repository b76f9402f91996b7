"""Stage 3: :func:`explain_vertices` explains every planned vertex in the plan's game."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shapgov.decomposition.blueprint import Vertex, class_path
from shapgov.errors import InputError, MissingValueError
from shapgov.explainers.base import VertexRequest, VertexValues
from shapgov.planning.plan import Plan, PlannedVertex
from shapgov.registry import PluginCalls


@dataclass(frozen=True, eq=False)
class VertexResult:
    """One vertex's values (and interaction values, when asked) as its explainer gave them:
    in the vertex's own output space, not yet weighted into the blueprint's."""

    planned: PlannedVertex
    values: VertexValues
    interactions: np.ndarray | None = None


def model_input(frame: pd.DataFrame, model: Any) -> Any:
    """What the model takes: the frame when it was fitted on named columns (scikit-learn's
    ``feature_names_in_``, CatBoost's ``feature_names_``: a numeric array would turn its
    integer categories into floats, which CatBoost refuses) or when its columns are more
    than plain numpy numbers (nullable, category, object: the model's own predict gets them
    so), else an array."""
    if hasattr(model, "feature_names_in_") or hasattr(model, "feature_names_"):
        return frame
    if any(
        getattr(t, "kind", "O") not in "biuf" or not isinstance(t, np.dtype) for t in frame.dtypes
    ):
        return frame
    return frame.to_numpy()


def explain_vertices(
    plan: Plan, frame: pd.DataFrame, *, plugins: PluginCalls, interactions: bool = False
) -> tuple[VertexResult, ...]:
    """Run each planned vertex's explainer on ``frame`` ``(n, M)`` in ``plan.game``.

    :raises MissingValueError: NaN/inf reach a vertex that cannot take them.
    :raises InputError: A preprocessing step fails on the data.
    """
    model = plan.blueprint.model
    game = plan.game
    X_in = model_input(frame, model)
    bg_in = None if game.background is None else model_input(game.background, model)
    results = []
    for planned in plan.vertices:
        vertex = planned.vertex
        Z = vertex_inputs(vertex, X_in, plan.players.names)
        Zb = None if bg_in is None else vertex_inputs(vertex, bg_in, plan.players.names)
        request = VertexRequest(vertex, Z, Zb, len(plan.players), game, plugins)
        explainer = planned.make_explainer()
        values = explainer.explain(request)
        pairs = explainer.interactions(request) if interactions else None
        results.append(VertexResult(planned, values, pairs))
    return tuple(results)


def vertex_inputs(vertex: Vertex, X_in: Any, players: Sequence[str]) -> Any:
    """The vertex's preprocessed input ``Z`` ``(n, m)``, checked for missing values
    (``players`` name what the vertex's ``origins`` point at)."""
    try:
        Z = vertex.transform(X_in)
    except ValueError as err:
        raise InputError(f"{vertex.name}: preprocessing failed on the data: {err}") from err
    if not vertex.allow_nan:
        bad = ~np.isfinite(Z).all(axis=0)
        if bad.any():
            cols = sorted({players[o] for o in vertex.origins[bad] if o >= 0})
            raise MissingValueError(
                f"{vertex.name}: {class_path(vertex.estimator)} cannot take missing values, "
                f"but NaN/inf reach it from column(s) {cols}; impute them (e.g. a SimpleImputer "
                "step in the pipeline) or drop those rows."
            )
    return Z
