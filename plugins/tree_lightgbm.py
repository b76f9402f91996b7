"""Built-in plugin: LightGBM boosters parsed into the flat tree representation."""

from __future__ import annotations

from typing import Any

from shapgov import hookimpl
from shapgov.explainers.lightgbm_trees import parse_booster
from shapgov.explainers.trees import TreeEnsemble
from shapgov.planning.compatibility import class_path_set


@hookimpl(trylast=True)
def shapgov_tree_ensemble(model: Any) -> TreeEnsemble | None:
    paths = class_path_set(model)
    if "lightgbm.basic.Booster" in paths:
        return parse_booster(model)
    if "lightgbm.sklearn.LGBMModel" in paths:
        return parse_booster(model.booster_)
    return None
