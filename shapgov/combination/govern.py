"""Stage 5: :func:`govern` checks the combined values against the model's own predictions
and builds the :class:`~shapgov.combination.explanation.Explanation`, or withholds it."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from shapgov._version import __version__
from shapgov.combination.combine import Combined
from shapgov.combination.explanation import Explanation
from shapgov.combination.policy import AdditivityPolicy, AdditivityReport, check
from shapgov.decomposition.blueprint import Node, class_path
from shapgov.errors import AdditivityError, AdditivityWarning
from shapgov.explainers.stage import model_input
from shapgov.planning.plan import Plan
from shapgov.registry import PluginCalls


def govern(
    plan: Plan,
    combined: Combined,
    frame: pd.DataFrame,
    policy: AdditivityPolicy,
    *,
    plugins: PluginCalls,
    offset: np.ndarray | None = None,
    exposure: np.ndarray | None = None,
    capping: tuple[float | None, float | None] | None = None,
) -> Explanation:
    """The additivity policy on ``combined``: an :class:`Explanation` when it passes (with
    an :class:`~shapgov.errors.AdditivityWarning` in the warn band).

    :raises AdditivityError: The mismatch is above the threshold; it carries the report
        only, never the values.
    """
    report, governed, combined = judge(
        plan,
        combined,
        frame,
        policy,
        plugins=plugins,
        offset=offset,
        exposure=exposure,
        capping=capping,
    )
    blueprint = plan.blueprint
    node = blueprint.node
    return Explanation(
        raw_values=combined.values,
        expected_value=combined.base,
        data=frame,
        output_space=_output_space(node),
        link=node.link,
        task=blueprint.task,
        classes=_classes(blueprint.model),
        vertices=list(combined.parts),
        additivity=report,
        model_class=class_path(blueprint.model),
        composites=[r.__dict__ for r in node.composites],
        shapgov_version=__version__,
        raw_interactions=combined.interactions,
        raw_std_error=combined.std_error,
        raw_prediction=governed,
        game={**plan.game.to_dict(), **replay(plan)},
        plugins=plugins.participants(),
        background=plan.game.background,
        background_weights=plan.game.background_weights,
    )


def replay(plan: Plan) -> dict[str, Any]:
    """What a re-derivation or a server needs beyond the game to explain as this
    explanation did: why the model fell back to Kernel (if it did), whether it was
    explained as a whole (``opaque``), and the explainers' options (``n_samples``,
    ``random_state``, ...) as JSON-ready values."""
    from shapgov.opaque import BlackBox, PredictFunction
    from shapgov.sinks.strict_json import json_ready

    blueprint = plan.blueprint
    options = {v.explainer: dict(v.options) for v in plan.vertices if v.options}
    return {
        "fallback_reason": blueprint.fallback_reason,
        "opaque": isinstance(blueprint.model, BlackBox | PredictFunction)
        and blueprint.fallback_reason is None,
        "explainer_options": json_ready(options),
    }


def judge(
    plan: Plan,
    combined: Combined,
    frame: pd.DataFrame,
    policy: AdditivityPolicy,
    *,
    plugins: PluginCalls,
    offset: np.ndarray | None,
    exposure: np.ndarray | None,
    capping: tuple[float | None, float | None] | None,
) -> tuple[AdditivityReport, np.ndarray, Combined]:
    """The additivity check of ``combined`` against the model's own predictions of
    ``frame``: the report, the governed prediction ``(n, K)`` and the values as judged;
    warns in the warn band.

    With an ``offset`` ``(n, 1)`` the model's own prediction is computed with it the
    model's own way where a plugin says how (``shapgov_model_offset``: XGBoost's
    ``base_margin``, LightGBM's ``init_score``, statsmodels' ``offset=``), and the base
    value loses what the offset replaces (XGBoost's ``base_score``); other models take
    DataRobot's rule. An exposure is taken the model's own way where the plugin says the
    model takes one (statsmodels' ``exposure=``), else multiplied into the prediction.

    :raises AdditivityError: Above the threshold (the report only, never the values).
    :raises InputError: The model takes its offset itself in a way the explanation cannot
        express (the plugin's message says what to do).
    """
    blueprint = plan.blueprint
    node = blueprint.node
    taken = None
    if offset is not None or exposure is not None:
        taken = plugins.first("shapgov_model_offset", model=blueprint.model, plugins=plugins)
        if taken is not None and offset is None and not taken.takes_exposure:
            taken = None  # an exposure alone, which the model does not take: DataRobot's rule
    exposure_taken = taken is not None and taken.takes_exposure and exposure is not None
    offset_taken = taken is not None and offset is not None
    if offset_taken:
        shift = np.asarray(taken.replaces, dtype=float).reshape(-1)
        # the one vertex that takes the offset loses it too, so the parts still add up
        parts = combined.parts
        if len(parts) == 1:
            parts = (replace(parts[0], base=parts[0].base - shift),)
        combined = replace(combined, base=combined.base - shift, parts=parts)
    X = model_input(frame, blueprint.model)
    if taken is None:
        actual = blueprint.predict(X)
    else:
        actual = blueprint.predict(
            X,
            offset=offset,
            taken=taken,
            exposure=exposure if exposure_taken else None,
        )
    report, governed = check(
        node.link,
        node.prediction,
        combined.explained,
        actual,
        policy,
        offset=offset,
        exposure=exposure,
        capping=capping,
        offset_taken_by=taken.name if offset_taken else None,
        exposure_taken_by=taken.name if exposure_taken else None,
    )
    if report.status == "fail":
        raise AdditivityError(report) from None
    if report.status == "warn":
        warnings.warn(AdditivityWarning(report.describe()), stacklevel=4)
    return report, np.asarray(governed, dtype=float).reshape(len(frame), -1), combined


def _output_space(node: Node) -> str:
    if node.link.name != "identity":
        return "margin"
    return {
        "predict_proba": "probability",
        "decision_function": "decision_function",
    }.get(node.prediction, "raw")


def _classes(model: Any) -> list[Any] | None:
    classes = getattr(model, "classes_", None)
    return None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]
