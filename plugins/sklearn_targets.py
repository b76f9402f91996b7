"""TransformedTargetRegressor: no transform (identity) or ``np.log``/``np.exp`` (a log link
over the inner regressor's prediction)."""

from __future__ import annotations

from typing import Any

import numpy as np

from shapgov.decomposition.blueprint import Node, combine_nodes
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.links import IDENTITY, LOG
from shapgov.errors import UndecomposableModelError


def target_transform(model: Any, ctx: DecomposeContext) -> Node:
    if model.transformer is not None:
        raise UndecomposableModelError(
            f"{ctx.path}: TransformedTargetRegressor with a transformer= is not supported; "
            "use func=np.log, inverse_func=np.exp (log link) or no transform, or explain the "
            "model as a whole (opaque=True)."
        )
    if model.func is None and model.inverse_func is None:
        link = IDENTITY
    elif model.func is np.log and model.inverse_func is np.exp:
        link = LOG
    else:
        raise UndecomposableModelError(
            f"{ctx.path}: target transform {model.func!r}/{model.inverse_func!r} has no known "
            "link; supported: none, or func=np.log with inverse_func=np.exp; or explain the "
            "model as a whole (opaque=True)."
        )
    child = ctx.decompose(model.regressor_, "regressor").with_output("predict", owner=ctx.path)
    return combine_nodes(
        [(child, np.eye(child.n_outputs))],
        intercept=np.zeros(child.n_outputs),
        link=link,
        prediction="predict",
        margin_method="predict" if link is IDENTITY else None,
        record=ctx.composite_record(model),
    )
