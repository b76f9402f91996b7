"""``explain()``: decompose, pick explainers, combine, and enforce the additivity policy."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from shapgov._version import __version__
from shapgov.combination.explanation import Explanation, VertexPart
from shapgov.combination.policy import AdditivityPolicy, AdditivityReport, evaluate
from shapgov.decomposition.blueprint import DecomposeContext, Node, Vertex, class_path, task_of
from shapgov.errors import (
    AdditivityError,
    AdditivityWarning,
    FallbackWarning,
    InputError,
    MissingValueError,
    UndecomposableModelError,
    UnsupportedModelError,
)
from shapgov.explainers.base import Explainer
from shapgov.opaque import BlackBox, PredictFunction
from shapgov.planning.compatibility import MatrixRow, find_row, rows
from shapgov.registry import explainer_classes, get_plugin_manager
from shapgov.validation import as_frame, per_row, same_columns

#: Pass tolerance for models whose predictions are float32 (XGBoost): 64 float32 ulps.
FLOAT32_PASS = 64 * float(np.finfo(np.float32).eps)


@dataclass
class Blueprint:
    """A decomposed model ready to explain: its root node and how to call it."""

    model: Any
    node: Node
    task: str

    @property
    def vertices(self) -> list[Vertex]:
        return self.node.vertices

    def predict(self, X: Any) -> np.ndarray:
        """The model's own output in prediction space, ``(n, K)``, in the model's float dtype."""
        out = np.asarray(getattr(self.model, self.node.prediction)(X))
        if out.dtype not in (np.float32, np.float64):
            out = out.astype(float)
        if out.ndim == 1:
            out = out[:, None]
        if self.node.prediction == "predict_proba" and out.shape[1] == 2 and self.task == "binary":
            out = out[:, 1:]
        return out


OUTPUTS = ("margin", "prediction", "probability")


def decompose(
    model: Any, *, calibration: str = "probability", output: str = "margin", opaque: bool = False
) -> Blueprint:
    """Decompose a fitted model into its blueprint (vertices, combination, link).

    :param output: ``"margin"`` explains the additive pre-link space (logit, log, ...);
        ``"prediction"`` the model's prediction space (probabilities, exp-predictions),
        exactly, for a model with a single vertex; ``"probability"`` is ``"prediction"``
        for classifiers only.
    :param opaque: Explain the model as a whole through its outputs (the Kernel
        explainer on the original columns), without decomposing it.

    :param calibration: How calibrated classifiers are explained: ``"probability"``
        (exact, in probability space) or ``"margin"`` (the mean base margin, with the
        calibrator as link; not additive for isotonic calibration, so the additivity policy
        judges it).
    """
    if calibration not in ("probability", "margin"):
        raise InputError(f"calibration must be 'probability' or 'margin', got {calibration!r}")
    if output not in OUTPUTS:
        raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")
    model = BlackBox(model) if opaque and not isinstance(model, BlackBox) else _wrap(model)
    ctx = DecomposeContext(options={"calibration": calibration})
    name = type(model).__name__.lower()
    node = ctx.decompose(model, name)
    task = task_of(model)
    if output == "probability" and task == "regression":
        raise InputError(
            "output='probability' needs a classifier; use output='prediction' for the "
            "prediction space of a regressor"
        )
    if output != "margin":
        node = node.with_output(node.prediction, owner=name)
    return Blueprint(model, node, task)


def _wrap(model: Any) -> Any:
    prepared = get_plugin_manager().hook.shapgov_prepare_model(model=model)
    if prepared is not None:
        return prepared
    if callable(model) and not hasattr(model, "fit") and not hasattr(model, "predict"):
        return PredictFunction(model)
    return model


def _has_outputs(model: Any) -> bool:
    method = "predict_proba" if hasattr(model, "classes_") else "predict"
    return hasattr(model, method) and not isinstance(model, BlackBox)


def _model_input(frame: pd.DataFrame, model: Any) -> Any:
    return frame if hasattr(model, "feature_names_in_") else frame.to_numpy()


def plan(
    blueprint: Blueprint, *, fallback: str | None = "kernel"
) -> list[tuple[Vertex, type[Explainer]]]:
    """Match every vertex and composite to its matrix row and pick its explainer."""
    pm = get_plugin_manager()
    table = rows()
    explainers = explainer_classes(pm)
    for record in blueprint.node.composites:
        row = next((r for r in table if r.id == record.matrix_row), None)
        if row is not None and row.status_for(blueprint.task) != "supported":
            raise UnsupportedModelError(
                f"{record.name}: {record.estimator_class} for {blueprint.task} is "
                f"{row.status_for(blueprint.task)!r} in the compatibility matrix ({row.family})."
            )
    planned = []
    for vertex in blueprint.vertices:
        row = find_row(vertex.estimator, table=table)
        name = pm.hook.shapgov_select_explainer(vertex=vertex, row=row, explainers=explainers)
        if name is None and fallback in explainers:
            name = fallback
        if name is None:
            raise UnsupportedModelError(_no_explainer(vertex, row, fallback))
        cls = explainers.get(name)
        if cls is None:
            raise UnsupportedModelError(f"{vertex.name}: explainer {name!r} is not registered")
        if vertex.response is not None and not cls.supports_response:
            raise UnsupportedModelError(
                f"{vertex.name}: its parent consumes {vertex.response.name}, which explainer "
                f"{name!r} cannot explain exactly; explain the model as a whole instead."
            )
        vertex.explainer = name
        vertex.matrix_row = row.id if row else None
        planned.append((vertex, cls))
    return planned


def _no_explainer(vertex: Vertex, row: MatrixRow | None, fallback: str | None) -> str:
    what = f"{vertex.name}: {class_path(vertex.estimator)} ({vertex.task})"
    tail = (
        f" No fallback explainer {fallback!r} is installed."
        if fallback
        else " No fallback was allowed (fallback=None)."
    )
    if row is None:
        return f"{what} has no row in the compatibility matrix.{tail}"
    status = row.status_for(vertex.task)
    return (
        f"{what} is {status!r} in the compatibility matrix row {row.family!r} "
        f"(explainer {row.explainer!r}): {row.notes}{tail}"
    )


def explain(
    model: Any,
    X: Any,
    *,
    background: Any = None,
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
    explainer_options: dict[str, dict[str, Any]] | None = None,
) -> Explanation:
    """Explain ``model`` on ``X`` in its original input columns.

    :param model: A fitted blueprint (pipeline, ensemble, linear model, ...) or a callable.
    :param X: Rows to explain (DataFrame or 2-D array).
    :param background: Rows that define "feature absent" (default: ``X`` itself).
    :param offset: Added to the margin before the inverse link (scalar or per row).
    :param exposure: Multiplies the prediction after the inverse link.
    :param capping: ``(lower, upper)`` bounds applied last; ``None`` for no bound.
    :param additivity_threshold: Normalized mismatch above which values are withheld.
    :param pass_tolerance: Normalized mismatch up to which the check passes silently.
    :param fallback: Explainer for vertices without a supported matrix row.
    :param calibration: ``"probability"`` or ``"margin"``; see :func:`decompose`.
    :param output: ``"margin"`` (default), ``"prediction"`` or ``"probability"``; see
        :func:`decompose`.
    :param interactions: Also compute SHAP interaction values ``(n, M, M[, K])`` (tree
        vertices, path-dependent TreeSHAP, margin output); each row of a matrix sums to the
        row's SHAP values.
    :param opaque: Explain the model as a whole with the Kernel explainer. A model that no
        plugin can decompose is explained this way anyway when ``fallback="kernel"``, with
        a :class:`~shapgov.errors.FallbackWarning` that says why.
    :param explainer_options: Options per explainer name.
    :raises AdditivityError: The values failed the policy; only diagnostics are attached.
    """
    policy = AdditivityPolicy(threshold=additivity_threshold, pass_tolerance=pass_tolerance)
    if offset is not None and output != "margin":
        raise InputError(
            "an offset is added to the margin; explain with output='margin' to apply it"
        )
    try:
        blueprint = decompose(model, calibration=calibration, output=output, opaque=opaque)
    except UndecomposableModelError as err:
        if fallback != "kernel" or opaque or not _has_outputs(model):
            raise
        warnings.warn(
            FallbackWarning(
                f"{err} The model is explained as a whole by the Kernel explainer instead "
                "(pass opaque=True to ask for this, or fallback=None to refuse)."
            ),
            stacklevel=2,
        )
        blueprint = decompose(model, calibration=calibration, output=output, opaque=True)
    if isinstance(blueprint.model, BlackBox) and isinstance(X, pd.DataFrame):
        blueprint.model.takes_frame(X.columns)  # the black box gets rows as the user gave them
    frame = as_frame(X, blueprint.model)
    if background is None and len(frame) < 2:
        raise InputError(
            "explaining a single row against itself gives all-zero values; pass background= "
            "(for example a sample of the training rows)"
        )
    bg = frame if background is None else as_frame(background, blueprint.model, what="background")
    same_columns(bg, frame)
    planned = plan(blueprint, fallback=fallback)
    outcome = _compute(
        blueprint,
        planned,
        frame,
        bg,
        policy,
        offset=per_row(offset, len(frame), "offset"),
        exposure=per_row(exposure, len(frame), "exposure"),
        capping=capping,
        explainer_options=explainer_options or {},
        interactions=interactions,
    )
    if isinstance(outcome, AdditivityReport):
        raise AdditivityError(outcome) from None
    if outcome.additivity.status == "warn":
        warnings.warn(AdditivityWarning(outcome.additivity.describe()), stacklevel=2)
    return outcome


def _compute(
    blueprint: Blueprint,
    planned: list[tuple[Vertex, type[Explainer]]],
    frame: pd.DataFrame,
    bg: pd.DataFrame,
    policy: AdditivityPolicy,
    *,
    offset: np.ndarray | None,
    exposure: np.ndarray | None,
    capping: tuple[float | None, float | None] | None,
    explainer_options: dict[str, dict[str, Any]],
    interactions: bool = False,
) -> Explanation | AdditivityReport:
    """Values and their check; returns only the report when the check fails."""
    node = blueprint.node
    n, m = frame.shape
    X_in, bg_in = _model_input(frame, blueprint.model), _model_input(bg, blueprint.model)
    total = np.zeros((n, m, node.n_outputs))
    pairs = np.zeros((n, m, m, node.n_outputs)) if interactions else None
    variance = None  # of sampled values, vertices taken as independent
    expected = node.intercept.astype(float).copy()
    parts = []
    for vertex, explainer_cls in planned:
        Z, Zb = _vertex_inputs(vertex, X_in, frame), _vertex_inputs(vertex, bg_in, bg)
        origins = vertex.origins if vertex.origins is not None else np.arange(Z.shape[1])
        vertex.origins = origins
        explainer = explainer_cls(**explainer_options.get(vertex.explainer, {}))
        vv = explainer.explain(vertex, Z, Zb, n_features=m)
        weight = vertex.weight if vertex.weight is not None else np.eye(vertex.n_outputs)
        values = np.einsum("nmj,kj->nmk", vv.values, weight)
        base = weight @ vv.base
        if vv.std_error is not None:
            var = np.einsum("nmj,kj->nmk", vv.std_error**2, weight**2)
            variance = var if variance is None else variance + var
        if pairs is not None:
            inter = explainer.interactions(vertex, Z, Zb, n_features=m)
            pairs += np.einsum("nabj,kj->nabk", inter, weight)
        total += values
        expected += base
        parts.append(
            VertexPart(
                name=vertex.name,
                estimator_class=class_path(vertex.estimator),
                explainer=vertex.explainer,
                matrix_row=vertex.matrix_row,
                response=vertex.response.name if vertex.response else None,
                values=values,
                base=base,
            )
        )
    explained = expected + total.sum(axis=1)
    actual = blueprint.predict(X_in)
    rebuilt = _govern(node, explained, offset, exposure, capping, margin=True)
    governed_actual = _govern(node, actual.astype(float), offset, exposure, capping, margin=False)
    applied = {
        "link": node.link.name,
        "offset": offset is not None,
        "exposure": exposure is not None,
        "capping": list(capping) if capping else None,
        "prediction": node.prediction,
    }
    if actual.dtype == np.float32:
        # The check cannot resolve more than the model's own float32 output does.
        applied["model_output_dtype"] = "float32"
        policy = replace(
            policy,
            pass_tolerance=min(policy.threshold, max(policy.pass_tolerance, FLOAT32_PASS)),
        )
    report = evaluate(rebuilt, governed_actual, policy, applied=applied)
    if report.status == "fail":
        return report
    if pairs is not None:  # the diagonal takes what the pairs leave of each value
        idx = np.arange(m)
        pairs[:, idx, idx] = 0.0
        pairs[:, idx, idx] = total - pairs.sum(axis=2)
    return Explanation(
        raw_values=total,
        expected_value=expected,
        data=frame,
        output_space=_output_space(node),
        link=node.link,
        task=blueprint.task,
        classes=_classes(blueprint.model),
        vertices=parts,
        additivity=report,
        model_class=class_path(blueprint.model),
        composites=[r.__dict__ for r in node.composites],
        shapgov_version=__version__,
        raw_interactions=pairs,
        raw_std_error=None if variance is None else np.sqrt(variance),
        raw_prediction=np.asarray(governed_actual, dtype=float).reshape(n, -1),
    )


def _vertex_inputs(vertex: Vertex, X_in: Any, frame: pd.DataFrame) -> np.ndarray:
    try:
        Z = vertex.transform(X_in)
    except ValueError as err:
        raise InputError(f"{vertex.name}: preprocessing failed on the data: {err}") from err
    if not vertex.allow_nan:
        bad = ~np.isfinite(Z).all(axis=0)
        if bad.any():
            origins = vertex.origins if vertex.origins is not None else np.arange(Z.shape[1])
            cols = sorted({str(frame.columns[o]) for o in origins[bad] if o >= 0})
            raise MissingValueError(
                f"{vertex.name}: {class_path(vertex.estimator)} cannot take missing values, "
                f"but NaN/inf reach it from column(s) {cols}; impute them (e.g. a SimpleImputer "
                "step in the pipeline) or drop those rows."
            )
    return Z


def _govern(
    node: Node,
    values: np.ndarray,
    offset: np.ndarray | None,
    exposure: np.ndarray | None,
    capping: tuple[float | None, float | None] | None,
    *,
    margin: bool,
) -> np.ndarray:
    """DataRobot's rule: cap(link^-1(margin + offset) * exposure).

    For the model's own predictions (``margin=False``) the link is undone first, so both
    sides carry the same offset, exposure and capping.
    """
    if not margin and offset is None and exposure is None and capping is None:
        return values
    out = values if margin else node.link.forward(values)
    if offset is not None:
        out = out + offset
    out = node.link.inverse(out)
    if exposure is not None:
        out = out * exposure
    if capping is not None:
        lo, hi = capping
        out = np.clip(out, lo, hi)
    return out


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
