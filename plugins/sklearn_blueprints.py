"""Built-in plugin: decompose scikit-learn models and shapgov composites into blueprints.

The dispatcher: composites (Pipeline, voting, stacking, target transforms, calibration,
one regressor per output, frequency-severity, residual boosting) go to the module of
their kind, leaves (linear models, trees, MLPs, other predictors) to
:mod:`shapgov_plugins.sklearn_leaves`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Node
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.offsets import ModelOffset
from shapgov.planning.compatibility import class_path_set
from shapgov_plugins.sklearn_calibration import calibrated
from shapgov_plugins.sklearn_ensembles import (
    frequency_severity,
    per_output,
    residual_boosted,
    stacking,
    voting,
)
from shapgov_plugins.sklearn_leaves import (
    affine_leaf,
    linear_leaf,
    mlp_leaf,
    predictor_leaf,
    tree_leaf,
)
from shapgov_plugins.sklearn_pipelines import pipeline, pipeline_offset
from shapgov_plugins.sklearn_targets import target_transform

if TYPE_CHECKING:
    from shapgov.registry import PluginCalls

COMPOSITES: dict[str, Callable[[Any, DecomposeContext], Node]] = {
    "sklearn.pipeline.Pipeline": pipeline,
    "sklearn.ensemble.VotingRegressor": voting,
    "sklearn.ensemble.VotingClassifier": voting,
    "sklearn.ensemble.StackingRegressor": stacking,
    "sklearn.ensemble.StackingClassifier": stacking,
    "sklearn.compose.TransformedTargetRegressor": target_transform,
    "sklearn.calibration.CalibratedClassifierCV": calibrated,
    "sklearn.multioutput.MultiOutputRegressor": per_output,
    "shapgov.composites.FrequencySeverityRegressor": frequency_severity,
    "shapgov.composites.ResidualBoostedRegressor": residual_boosted,
    "shapgov.composites.LinearTerm": affine_leaf,
}
TREE_ROWS = ("random_forest", "sklearn_gbm", "sklearn_hist_gbm")


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    paths = class_path_set(model)
    for path, decompose in COMPOSITES.items():
        if path in paths:
            return decompose(model, context)
    row = context.find_row(model)
    if row is not None and row.id == "linear" and hasattr(model, "coef_"):
        return linear_leaf(model, context)
    if row is not None and row.id in TREE_ROWS:
        return tree_leaf(model, context)
    if row is not None and row.id == "neural_net" and hasattr(model, "coefs_"):
        return mlp_leaf(model, context)
    if row is not None:  # a row of its own: the plugin that serves that row decomposes it
        return None
    return predictor_leaf(model, context)


@hookimpl(trylast=True)
def shapgov_model_offset(model: Any, plugins: PluginCalls) -> ModelOffset | None:
    if "sklearn.pipeline.Pipeline" in class_path_set(model):
        return pipeline_offset(model, plugins)
    return None
