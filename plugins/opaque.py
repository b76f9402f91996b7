"""Built-in plugin: opaque predict functions become a single vertex (Scoring Code row)."""

from __future__ import annotations

from typing import Any

from shapgov import hookimpl
from shapgov.blueprint import DecomposeContext, Node
from shapgov.links import IDENTITY
from shapgov.opaque import PredictFunction


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    if not isinstance(model, PredictFunction):
        return None
    return context.leaf(
        model,
        n_margins=1,
        link=IDENTITY,
        prediction="predict",
        margin_method="predict",
        allow_nan=True,
    )
