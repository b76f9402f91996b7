"""Stage 4: :func:`combine_values` weights each vertex's values into the blueprint's
explained space and adds them over the original columns.

Shapley values are linear in the game, so for ``explained(x) = intercept +
sum_v W_v @ out_v(x)`` the blueprint's values are ``sum_v W_v @ phi_v`` and its base
value ``intercept + sum_v W_v @ base_v`` — provided every ``phi_v`` comes from the same
game, which the plan guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shapgov.combination.explanation import VertexPart
from shapgov.decomposition.blueprint import class_path
from shapgov.decomposition.terms import TermModel
from shapgov.explainers.stage import VertexResult
from shapgov.planning.plan import Plan


@dataclass(frozen=True, eq=False)
class Combined:
    """The blueprint's values before the additivity check.

    ``values`` ``(n, M, K)``, ``base`` ``(K,)``, per-vertex ``parts``; ``interactions``
    ``(n, M, M, K)`` when asked; ``std_error`` ``(n, M, K)`` when some vertex was sampled
    (vertices taken as independent).
    """

    values: np.ndarray
    base: np.ndarray
    parts: tuple[VertexPart, ...]
    interactions: np.ndarray | None
    std_error: np.ndarray | None

    @property
    def explained(self) -> np.ndarray:
        """``base + sum(values)``, ``(n, K)``: the blueprint's explained output."""
        return self.base + self.values.sum(axis=1)


def combine_values(plan: Plan, results: tuple[VertexResult, ...]) -> Combined:
    """Weight and add the vertex results of ``plan`` (see the module docstring)."""
    node = plan.blueprint.node
    task = plan.blueprint.task
    total: np.ndarray | None = None
    pairs: np.ndarray | None = None
    variance: np.ndarray | None = None
    base = node.intercept.astype(float).copy()
    parts = []
    for result in results:
        planned, vv = result.planned, result.values
        vertex = planned.vertex
        weight = vertex.weight if vertex.weight is not None else np.eye(vertex.n_outputs)
        values = np.einsum("nmj,kj->nmk", vv.values, weight)
        vbase = weight @ vv.base
        total = values if total is None else total + values
        base = base + vbase
        if vv.std_error is not None:
            var = np.einsum("nmj,kj->nmk", vv.std_error**2, weight**2)
            variance = var if variance is None else variance + var
        if result.interactions is not None:
            inter = np.einsum("nabj,kj->nabk", result.interactions, weight)
            pairs = inter if pairs is None else pairs + inter
        row = planned.matrix_row
        parts.append(
            VertexPart(
                name=vertex.name,
                estimator_class=class_path(_fitted_object(vertex.estimator)),
                explainer=planned.explainer,
                matrix_row=row.id if row else None,
                response=vertex.response.name if vertex.response else None,
                values=values,
                base=vbase,
                matrix_family=row.family if row else None,
                matrix_status=row.status_for(vertex.task or task) if row else None,
                method=vv.method,
            )
        )
    if total is None:
        raise ValueError("a blueprint without vertices cannot be combined")
    if pairs is not None:  # the diagonal takes what the pairs leave of each value
        m = total.shape[1]
        idx = np.arange(m)
        pairs[:, idx, idx] = 0.0
        pairs[:, idx, idx] = total - pairs.sum(axis=2)
    return Combined(
        values=total,
        base=base,
        parts=tuple(parts),
        interactions=pairs,
        std_error=None if variance is None else np.sqrt(variance),
    )


def _fitted_object(estimator: Any) -> Any:
    """What the audit names for a vertex: a GLM read into terms is named by the library's
    fitted object (statsmodels results, a glum regressor), so its library's version is
    recorded too."""
    if isinstance(estimator, TermModel) and estimator.source is not None:
        return estimator.source
    return estimator
