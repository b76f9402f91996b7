"""scikit-learn Pipelines: preprocessing steps in front of a decomposed final estimator,
each transformed column traced to the original column it comes from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from shapgov.decomposition.blueprint import Node, as_float_matrix, class_path
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.offsets import ModelOffset
from shapgov.errors import UndecomposableModelError, UnsupportedModelError

if TYPE_CHECKING:
    from shapgov.registry import PluginCalls


def _dense(Z: Any) -> np.ndarray:
    return as_float_matrix(Z.toarray() if sp.issparse(Z) else Z)


def pipeline(model: Any, ctx: DecomposeContext) -> Node:
    *pre, (last_name, last) = model.steps
    if last is None or last == "passthrough":
        raise UnsupportedModelError(f"{ctx.path}: the pipeline has no final estimator to explain")
    node = ctx.decompose(last, last_name)
    for name, step in reversed(pre):
        if step is None or step == "passthrough":
            continue
        n_in = getattr(step, "n_features_in_", None)
        if n_in is None:
            raise UndecomposableModelError(
                f"{ctx.path}/{name}: {class_path(step)} does not record n_features_in_, so "
                "shapgov cannot trace its columns"
            )
        origins = ctx.column_origins(step, int(n_in), name)
        node = node.under(lambda X, step=step: _dense(step.transform(X)), origins, name)
    return node


def pipeline_offset(model: Any, plugins: PluginCalls) -> ModelOffset | None:
    """How a Pipeline takes an offset: as its final estimator does, behind the steps in
    front of it (``None`` when the final estimator takes none itself)."""
    *_, (_, last) = model.steps
    if last is None or last == "passthrough":
        return None
    taken = plugins.first("shapgov_model_offset", model=last, plugins=plugins)
    if taken is None:
        return None
    front = model[:-1]
    return taken.behind(front.transform)
