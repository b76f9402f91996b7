"""Stage 1: :func:`decompose` turns a fitted model into a :class:`Blueprint`, once."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from shapgov.decomposition.blueprint import Node, Vertex, task_of
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.offsets import ModelOffset
from shapgov.errors import FallbackWarning, InputError, UndecomposableModelError
from shapgov.opaque import BlackBox, PredictFunction
from shapgov.planning.game import OUTPUTS
from shapgov.registry import PluginCalls, resolve_plugin_manager

FALLBACKS = ("kernel", None)
CALIBRATIONS = ("probability", "margin")


@dataclass(frozen=True, eq=False)
class Blueprint:
    """A decomposed model ready to plan: its root node and how to call it.

    :param model: The model as explained (a :class:`~shapgov.opaque.BlackBox` when it is
        explained as a whole).
    :param node: Vertices, combination rule and link.
    :param task: ``"regression"``, ``"binary"`` or ``"multiclass"``.
    :param output: The explained space (``"margin"``, ``"prediction"``, ``"probability"``).
    :param fallback_reason: Why the model is explained as a whole, when it fell back.
    """

    model: Any
    node: Node
    task: str
    output: str = "margin"
    fallback_reason: str | None = None

    @property
    def vertices(self) -> tuple[Vertex, ...]:
        """The modeling vertices of the whole model (those of its top node)."""
        return self.node.vertices

    def predict(
        self,
        X: Any,
        *,
        offset: np.ndarray | None = None,
        taken: ModelOffset | None = None,
        exposure: np.ndarray | None = None,
    ) -> np.ndarray:
        """The model's own output in prediction space, ``(n, K)``, in the model's float dtype.

        :param offset: A per-row offset ``(n, 1)`` that the model takes itself, through
            ``taken`` (a :class:`~shapgov.decomposition.offsets.ModelOffset`).
        :param exposure: A per-row exposure ``(n, 1)`` that the model takes itself
            (``taken.takes_exposure``: statsmodels' ``exposure=``).
        :raises InputError: An offset or exposure without ``taken``, or ``taken`` without
            either; an exposure given to a model that does not take one.
        """
        given = offset is not None or exposure is not None
        if given != (taken is not None):
            raise InputError(
                "an offset or exposure the model takes itself needs taken, and taken needs one"
            )
        if exposure is not None and not taken.takes_exposure:
            raise InputError(f"{taken.name} takes no exposure")
        if taken is None:
            out = np.asarray(getattr(self.model, self.node.prediction)(X))
        elif taken.takes_exposure:
            out = np.asarray(taken.predict(X, offset, exposure))
        else:
            out = np.asarray(taken.predict(X, offset))
        if out.dtype not in (np.float32, np.float64):
            out = out.astype(float)
        if out.ndim == 1:
            out = out[:, None]
        if self.node.prediction == "predict_proba" and out.shape[1] == 2 and self.task == "binary":
            out = out[:, 1:]
        return out


def decompose(
    model: Any,
    *,
    calibration: str = "probability",
    output: str = "margin",
    opaque: bool = False,
    fallback: str | None = None,
    plugin_manager: Any = None,
) -> Blueprint:
    """Decompose a fitted model into its blueprint (vertices, combination, link).

    :param output: ``"margin"`` explains the additive pre-link space (logit, log, ...);
        ``"prediction"`` the model's prediction space (probabilities, exp-predictions);
        ``"probability"`` is ``"prediction"`` for classifiers only.
    :param opaque: Explain the model as a whole through its outputs, without decomposing.
    :param calibration: How calibrated classifiers are explained: ``"probability"``
        (exact, in probability space) or ``"margin"`` (the mean base margin, with the
        calibrator as link; not additive for isotonic calibration, so the additivity policy
        judges it).
    :param fallback: ``"kernel"``: a model that no plugin can make additive is explained as
        a whole (with a :class:`~shapgov.errors.FallbackWarning`); ``None``: it raises.
    :param plugin_manager: The plugin manager (default: the default one).
    :raises UndecomposableModelError: No plugin can decompose it and ``fallback=None``.
    :raises InputError: An option is not one of its values.
    """
    plugins = PluginCalls(resolve_plugin_manager(plugin_manager))
    return decompose_with(
        model, plugins, calibration=calibration, output=output, opaque=opaque, fallback=fallback
    )


def decompose_with(
    model: Any,
    plugins: PluginCalls,
    *,
    calibration: str,
    output: str,
    opaque: bool,
    fallback: str | None,
) -> Blueprint:
    """:func:`decompose` through an explanation's :class:`~shapgov.registry.PluginCalls`."""
    if calibration not in CALIBRATIONS:
        raise InputError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
    if output not in OUTPUTS:
        raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")
    if fallback not in FALLBACKS:
        raise InputError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    prepared = model if isinstance(model, BlackBox) else _prepare(model, plugins)
    if opaque and not isinstance(prepared, BlackBox):
        prepared = BlackBox(prepared)
    if output == "probability" and task_of(prepared) == "regression":
        raise InputError(
            "output='probability' needs a classifier; use output='prediction' for the "
            "prediction space of a regressor"
        )
    ctx = DecomposeContext(plugins, options={"calibration": calibration})
    reason = None
    try:
        node = ctx.decompose(prepared, type(prepared).__name__.lower())
    except UndecomposableModelError as err:
        if fallback != "kernel" or isinstance(prepared, BlackBox) or not _has_outputs(prepared):
            raise
        reason = str(err)
        warnings.warn(
            FallbackWarning(
                f"{err} The model is explained as a whole by the Kernel explainer instead "
                "(pass opaque=True to ask for this, or fallback=None to refuse)."
            ),
            stacklevel=3,
        )
        prepared = BlackBox(prepared)
        node = ctx.decompose(prepared, type(prepared).__name__.lower())
    if output != "margin":
        node = node.with_output(node.prediction, owner=type(prepared).__name__.lower())
    return Blueprint(prepared, node, task_of(prepared), output, reason)


def _prepare(model: Any, plugins: PluginCalls) -> Any:
    prepared = plugins.first("shapgov_prepare_model", model=model)
    if prepared is not None:
        return prepared
    if callable(model) and not hasattr(model, "fit") and not hasattr(model, "predict"):
        return PredictFunction(model)
    return model


def _has_outputs(model: Any) -> bool:
    method = "predict_proba" if hasattr(model, "classes_") else "predict"
    return hasattr(model, method)
