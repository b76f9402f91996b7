"""Built-in plugin: opaque predict functions and black-box models become a single vertex
(Scoring Code row), explained by the Kernel explainer on the original columns.

A regressor's vertex has one output per target: as many as the wrapped scikit-learn
model stores (:func:`~shapgov.decomposition.blueprint.regression_outputs`), or as the
model returned on its first row (``n_outputs_``, set by
:func:`~shapgov.decomposition.outputs.with_model_outputs`)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Node, regression_outputs
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.links import IDENTITY, LOGIT
from shapgov.decomposition.offsets import ModelOffset
from shapgov.opaque import BlackBox, PredictFunction
from shapgov.planning.compatibility import class_path_set

if TYPE_CHECKING:
    from shapgov.registry import PluginCalls


def _as_given(X: Any) -> Any:
    """The model's input untouched (a DataFrame keeps its column types)."""
    return X


#: Loaded models whose flavor shapgov cannot see into: explained as black boxes.
_OPAQUE_CLASSES = {"mlflow.pyfunc.PyFuncModel"}


@hookimpl(trylast=True)
def shapgov_prepare_model(model: Any) -> Any | None:
    paths = class_path_set(model)
    if paths & _OPAQUE_CLASSES:
        return BlackBox(model)
    return None


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    if isinstance(model, BlackBox):
        n_out = 1
        prediction = model.method
        if hasattr(model, "classes_") and len(model.classes_) > 2:
            n_out = len(model.classes_)
        elif not hasattr(model, "classes_"):
            n_out = getattr(model, "n_outputs_", None) or regression_outputs(model.model)
        logit = model.link == "logit"
        node = context.leaf(
            model.model,
            n_margins=n_out,
            link=LOGIT if logit else IDENTITY,
            prediction=prediction,
            margin_method=None if logit else prediction,
            allow_nan=True,
        )
        vertex = replace(node.vertices[0], transform=_as_given, estimator=model)
        return replace(node, vertices=(vertex,))
    if not isinstance(model, PredictFunction):
        return None
    node = context.leaf(
        model,
        n_margins=getattr(model, "n_outputs_", 1),
        link=IDENTITY,
        prediction="predict",
        margin_method="predict",
        allow_nan=True,
    )
    vertex = replace(node.vertices[0], transform=_as_given)  # hybrids keep X's dtypes
    return replace(node, vertices=(vertex,))


@hookimpl(trylast=True)
def shapgov_model_offset(model: Any, plugins: PluginCalls) -> ModelOffset | None:
    """A whole model explained through its outputs takes an offset as the model inside
    does: the check then judges the values against that model's own output, so an
    explained space the offset cannot enter (a log-link model explained on its
    predictions) fails the check instead of passing on a rebuilt prediction."""
    if not isinstance(model, BlackBox):
        return None
    return plugins.first("shapgov_model_offset", model=model.model, plugins=plugins)
