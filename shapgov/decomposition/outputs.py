"""How many outputs an opaque model has: counted on its first row.

A scikit-learn regressor fitted on a 2-D ``y`` of K targets says so in what it stores
(:func:`~shapgov.decomposition.blueprint.regression_outputs`), and decomposes into K
outputs at once. A predict function or a black box (``opaque=True``, a loaded pyfunc
model) says it only when it is called, so :func:`with_model_outputs` calls it on one row
of the explained data before the plan and, where it returns K columns, decomposes it
again with K outputs (output 0..K-1, explained per output like multiclass margins).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.decompose import Blueprint
from shapgov.opaque import BlackBox, PredictFunction
from shapgov.registry import PluginCalls


def with_model_outputs(blueprint: Blueprint, rows: Any, plugins: PluginCalls) -> Blueprint:
    """``blueprint`` with as many outputs as its opaque regression model returns.

    :param blueprint: A decomposed model; only a regression explained as a whole (a
        :class:`~shapgov.opaque.BlackBox` or :class:`~shapgov.opaque.PredictFunction`)
        is called; every other blueprint comes back as it is, without a call.
    :param rows: Rows as the model takes them (the first row of the explained data is
        enough); an empty table is not called.
    :param plugins: The explanation's plugin calls (the opaque plugin decomposes again).
    :returns: The blueprint whose node has K outputs, where the model returned K
        columns ``(1, K)`` and the blueprint expected another number; the wrapper keeps
        ``n_outputs_ = K``.
    :raises ModelOutputError: The model fails on ``rows`` (its message's cause is kept,
        never the rows) or returns no numbers.
    """
    model = blueprint.model
    if not isinstance(model, BlackBox | PredictFunction) or blueprint.task != "regression":
        return blueprint
    if len(rows) == 0:
        return blueprint
    k = int(blueprint.predict(rows).shape[1])
    if k == blueprint.node.n_outputs:
        return blueprint
    model.n_outputs_ = k  # read by the opaque plugin: the vertex gets K margins
    name = type(model).__name__.lower()
    node = DecomposeContext(plugins).decompose(model, name)
    if blueprint.output != "margin":
        node = node.with_output(node.prediction, owner=name)
    return replace(blueprint, node=node)
