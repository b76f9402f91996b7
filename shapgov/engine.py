"""``explain()``: the five stages, each a call that hands an immutable object to the next.

    decompose  -> Blueprint      (shapgov.decomposition.decompose)
    plan       -> Plan + Game    (shapgov.planning.plan)
    explain    -> VertexResults  (shapgov.explainers.stage)
    combine    -> Combined       (shapgov.combination.combine)
    govern     -> Explanation    (shapgov.combination.govern)

The plugin manager is passed through every stage (``plugin_manager=``), never fetched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shapgov.combination.combine import Combined, combine_values
from shapgov.combination.explanation import Explanation
from shapgov.combination.govern import govern
from shapgov.combination.policy import AdditivityPolicy
from shapgov.decomposition.decompose import Blueprint, decompose, decompose_with
from shapgov.decomposition.outputs import with_model_outputs
from shapgov.errors import InputError
from shapgov.explainers.stage import explain_vertices, model_input
from shapgov.opaque import BlackBox, PredictFunction
from shapgov.planning.game import checked_weights
from shapgov.planning.plan import Plan, plan
from shapgov.planning.players import Players
from shapgov.registry import PluginCalls, resolve_plugin_manager
from shapgov.validation import as_frame, per_row, same_columns, with_row_keys

__all__ = ["Blueprint", "Stages", "decompose", "explain", "run_stages"]


def explain(
    model: Any,
    X: Any,
    *,
    background: Any = None,
    background_weights: Any = None,
    feature_perturbation: str = "auto",
    game_link: str = "identity",
    offset: Any = None,
    exposure: Any = None,
    capping: tuple[float | None, float | None] | None = None,
    additivity_threshold: float = 0.01,
    pass_tolerance: float = 1e-6,
    fallback: str | None = "kernel",
    calibration: str = "probability",
    output: str = "margin",
    interactions: bool = False,
    opaque: bool = False,
    explainer_options: Mapping[str, Mapping[str, Any]] | None = None,
    plugin_manager: Any = None,
) -> Explanation:
    """Explain ``model`` on ``X`` in its original input columns, in one game.

    :param model: A fitted blueprint (pipeline, ensemble, linear model, ...) or a callable.
    :param X: Rows to explain, ``(n, M)`` (DataFrame or 2-D array).
    :param background: Rows that define "feature absent" in the interventional game,
        ``(b, M)`` (default: ``X`` itself).
    :param background_weights: One non-negative weight per background row (e.g. the
        cluster sizes of ``summarize_background(..., method="kmeans",
        return_weights=True)``): the game becomes ``v(S) = sum_b w_b f(x_S, z_b) /
        sum_b w_b``, in every vertex.
    :param feature_perturbation: The game every vertex plays: ``"interventional"``
        (against the background), ``"tree_path_dependent"`` (the trees' training cover; tree
        vertices in their margin only, no background), or ``"auto"``: path-dependent only
        for a pure-tree blueprint explained without a background. See
        :mod:`shapgov.planning.game`.
    :param game_link: ``"identity"`` (default) or ``"logit"``: the interventional game
        ``v(S) = logit(sum_b w_b f(x_S, b))``, the log-odds of the background-averaged
        probability (shap's ``KernelExplainer(link="logit")``), for a model explained as a
        whole by the Kernel explainer in its probabilities (a ``predict_proba`` callable,
        or ``opaque=True, output="probability"``). The values add up to ``logit(f(x))``;
        probabilities of exactly 0 or 1 are clipped to ``[1e-15, 1 - 1e-15]`` first, as shap
        does
        (:mod:`shapgov.explainers.game_links`).
    :param offset: Added to the margin before the inverse link (scalar or per row).
    :param exposure: Multiplies the prediction after the inverse link.
    :param capping: ``(lower, upper)`` bounds applied last; ``None`` for no bound.
    :param additivity_threshold: Normalized mismatch above which values are withheld.
    :param pass_tolerance: Normalized mismatch up to which the check passes silently.
    :param fallback: ``"kernel"``: vertices without a supported matrix row, and models no
        plugin can make additive, are explained by the Kernel explainer (a whole model
        with a :class:`~shapgov.errors.FallbackWarning`); ``None``: they raise.
    :param calibration: ``"probability"`` or ``"margin"``; see :func:`decompose`.
    :param output: ``"margin"`` (default), ``"prediction"`` or ``"probability"``.
    :param interactions: Also compute SHAP interaction values ``(n, M, M[, K])`` in the
        same game; each row of a matrix sums to the row's SHAP values.
    :param opaque: Explain the model as a whole with the Kernel explainer.
    :param explainer_options: Keyword options per explainer name, e.g.
        ``{"kernel": {"n_samples": 4096}}``; unknown names or options raise.
    :param plugin_manager: The pluggy manager whose plugins decompose and explain
        (default: :func:`shapgov.registry.get_plugin_manager`).
    :returns: The governed :class:`~shapgov.combination.explanation.Explanation`, values
        ``(n, M)`` or ``(n, M, K)`` in the explained space's units.
    :raises AdditivityError: The values failed the policy; only diagnostics are attached.
    :raises InputError: Bad data or options (subclasses name the problem).
    :raises UnsupportedModelError: No plugin or explainer covers the model.
    """
    run = run_stages(
        model,
        X,
        background=background,
        background_weights=background_weights,
        feature_perturbation=feature_perturbation,
        game_link=game_link,
        offset=offset,
        exposure=exposure,
        additivity_threshold=additivity_threshold,
        pass_tolerance=pass_tolerance,
        fallback=fallback,
        calibration=calibration,
        output=output,
        interactions=interactions,
        opaque=opaque,
        explainer_options=explainer_options,
        plugin_manager=plugin_manager,
    )
    return govern(
        run.plan,
        run.combined,
        with_row_keys(run.frame, X),
        run.policy,
        plugins=run.plugins,
        offset=run.offset,
        exposure=run.exposure,
        capping=capping,
    )


@dataclass(frozen=True, eq=False)
class Stages:
    """What the first four stages hand the governance stage: the plan, the combined values
    and the checked inputs (rows ``(n, M)``, per-row offset and exposure, the policy)."""

    plan: Plan
    combined: Combined
    frame: pd.DataFrame
    policy: AdditivityPolicy
    plugins: PluginCalls
    offset: np.ndarray | None
    exposure: np.ndarray | None


def run_stages(
    model: Any,
    X: Any,
    *,
    background: Any,
    background_weights: Any,
    feature_perturbation: str,
    offset: Any,
    exposure: Any,
    additivity_threshold: float,
    pass_tolerance: float,
    fallback: str | None,
    calibration: str,
    output: str,
    interactions: bool,
    opaque: bool,
    explainer_options: Mapping[str, Mapping[str, Any]] | None,
    plugin_manager: Any,
    players: Mapping[str, Any] | None = None,
    game_link: str = "identity",
) -> Stages:
    """Decompose, plan, explain and combine (see :func:`explain` for the parameters);
    ``players`` groups original columns into players (:mod:`shapgov.planning.players`)."""
    policy = AdditivityPolicy(threshold=additivity_threshold, pass_tolerance=pass_tolerance)
    if offset is not None and output != "margin":
        raise InputError(
            "an offset is added to the margin; explain with output='margin' to apply it"
        )
    plugins = PluginCalls(resolve_plugin_manager(plugin_manager))
    blueprint = decompose_with(
        model, plugins, calibration=calibration, output=output, opaque=opaque, fallback=fallback
    )
    if isinstance(blueprint.model, BlackBox | PredictFunction) and isinstance(X, pd.DataFrame):
        blueprint.model.takes_frame(X.columns)  # the black box gets rows as the user gave them
    frame = as_frame(X, blueprint.model)
    conform = getattr(blueprint.model, "conform", None)  # a logged model's signature
    if conform is not None:
        frame = conform(frame)
    # an opaque regressor's outputs are counted on the first row (several targets: K)
    blueprint = with_model_outputs(blueprint, model_input(frame.iloc[:1], blueprint.model), plugins)
    offset = per_row(offset, len(frame), "offset")
    exposure = per_row(exposure, len(frame), "exposure")
    bg = None
    if background is not None:
        bg = as_frame(background, blueprint.model, what="background")
        if conform is not None:
            bg = conform(bg, what="background")
        same_columns(bg, frame)
    if background_weights is not None:
        checked_weights(background_weights, bg)
    planned = plan(
        blueprint,
        plugins=plugins,
        data=frame,
        background=bg,
        feature_perturbation=feature_perturbation,
        explainer_options=explainer_options,
        fallback=fallback,
        background_weights=background_weights,
        players=Players.resolve(frame.columns, players),
        game_link=game_link,
    )
    if planned.game.background_source == "explained rows" and len(frame) < 2:
        raise InputError(
            "explaining a single row against itself gives all-zero values; pass background= "
            "(for example a sample of the training rows)"
        )
    results = explain_vertices(planned, frame, plugins=plugins, interactions=interactions)
    combined = combine_values(planned, results)
    return Stages(planned, combined, frame, policy, plugins, offset, exposure)
