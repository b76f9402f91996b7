"""Built-in plugin: decompose scikit-learn models and shapgov composites into blueprints.

Leaves (linear models) become single vertices with their link; composites
(Pipeline, ColumnTransformer, voting, stacking, target transforms, calibration,
frequency-severity, residual boosting) become affine combinations of their parts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from shapgov import hookimpl
from shapgov.composites import LinearTerm
from shapgov.decomposition.blueprint import (
    CompositeRecord,
    DecomposeContext,
    Node,
    as_float_matrix,
    class_path,
    combine,
)
from shapgov.decomposition.links import IDENTITY, LOG, LOGIT, OVR, SOFTMAX, Link
from shapgov.errors import UndecomposableModelError, UnsupportedModelError
from shapgov.planning.compatibility import class_paths, find_row


def _dense(Z: Any) -> np.ndarray:
    return as_float_matrix(Z.toarray() if sp.issparse(Z) else Z)


def _paths(obj: Any) -> set[str]:
    return {p for cls in type(obj).__mro__ for p in class_paths(cls)}


def _record(model: Any, ctx: DecomposeContext) -> CompositeRecord:
    row = find_row(model)
    return CompositeRecord(ctx.path, class_path(model), row.id if row else None)


# --------------------------------------------------------------------- leaves


def _linear_leaf(model: Any, ctx: DecomposeContext) -> Node:
    coef = np.atleast_2d(model.coef_)
    k = coef.shape[0]
    if hasattr(model, "classes_"):
        n_classes = len(model.classes_)
        proba = hasattr(model, "predict_proba") and getattr(model, "loss", "log_loss") == "log_loss"
        if not proba:
            link, prediction = IDENTITY, "decision_function"
        elif n_classes == 2:
            link, prediction = LOGIT, "predict_proba"
        elif "sklearn.linear_model.SGDClassifier" in _paths(model):
            link, prediction = OVR, "predict_proba"
        else:
            link, prediction = SOFTMAX, "predict_proba"
        return ctx.leaf(
            model, n_margins=k, link=link, prediction=prediction, margin_method="decision_function"
        )
    base_loss = getattr(model, "_base_loss", None)
    if base_loss is not None and type(base_loss.link).__name__ == "LogLink":
        return ctx.leaf(model, n_margins=k, link=LOG, prediction="predict", margin_method=None)
    return ctx.leaf(
        model, n_margins=k, link=IDENTITY, prediction="predict", margin_method="predict"
    )


def _tree_leaf(model: Any, ctx: DecomposeContext) -> Node:
    """scikit-learn trees, forests and gradient boosting, behind the model's own category
    encoding where it has one (HistGradientBoosting with categorical features)."""
    node = _tree_node(model, ctx)
    encoder = getattr(model, "_preprocessor", None)
    if encoder is None:
        return node
    # Its parts map columns one to one: category codes first, then the other columns.
    origins = np.full(model.n_features_in_, -1, dtype=np.int64)
    for name, out in encoder.output_indices_.items():
        origins[out] = encoder._transformer_to_input_indices[name]
    return node.under(encoder.transform, origins, "categories")


def _tree_node(model: Any, ctx: DecomposeContext) -> Node:
    """scikit-learn trees, forests and gradient boosting, with the link of their output."""
    k = 1 if len(getattr(model, "classes_", [0, 1])) == 2 else len(model.classes_)
    nan_ok = not hasattr(model, "init_")  # GradientBoosting* rejects NaN; trees route it
    if not hasattr(model, "classes_"):
        loss = getattr(model, "_loss", None)  # HistGradientBoosting: poisson/gamma use log
        if loss is not None and type(loss.link).__name__ == "LogLink":
            return ctx.leaf(
                model,
                n_margins=1,
                link=LOG,
                prediction="predict",
                margin_method=None,
                allow_nan=nan_ok,
            )
        return ctx.leaf(
            model,
            n_margins=1,
            link=IDENTITY,
            prediction="predict",
            margin_method="predict",
            allow_nan=nan_ok,
        )
    if hasattr(model, "decision_function"):  # gradient boosting: margins in log-odds
        link = LOGIT if k == 1 else SOFTMAX
        return ctx.leaf(
            model,
            n_margins=k,
            link=link,
            prediction="predict_proba",
            margin_method="decision_function",
            allow_nan=nan_ok,
        )
    return ctx.leaf(  # forests and trees average class fractions: probability space
        model,
        n_margins=k,
        link=IDENTITY,
        prediction="predict_proba",
        margin_method="predict_proba",
        allow_nan=True,
    )


def _affine_leaf(model: Any, ctx: DecomposeContext) -> Node:
    return ctx.leaf(
        model,
        n_margins=model.coef_.shape[0],
        link=IDENTITY,
        prediction="predict",
        margin_method="predict",
    )


# ------------------------------------------------------------------ pipelines


def _pipeline(model: Any, ctx: DecomposeContext) -> Node:
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


# ---------------------------------------------------------------- ensembles


def _voting(model: Any, ctx: DecomposeContext) -> Node:
    names = [n for n, e in model.estimators if e != "drop"]
    weights = np.asarray(
        model._weights_not_none if model.weights is not None else [1.0] * len(names), dtype=float
    )
    weights = weights / weights.sum()
    if hasattr(model, "classes_"):
        if model.voting != "soft":
            raise UnsupportedModelError(
                f"{ctx.path}: hard voting (a majority of labels) is not additive in any space; "
                "use VotingClassifier(voting='soft') to explain it."
            )
        method = "predict_proba"
    else:
        method = "predict"
    parts = []
    for name, est, w in zip(names, model.estimators_, weights, strict=True):
        child = ctx.decompose(est, name).with_output(method, owner=f"{ctx.path}/{name}")
        parts.append((child, w * np.eye(child.n_outputs)))
    k = parts[0][0].n_outputs
    return combine(
        parts,
        intercept=np.zeros(k),
        link=IDENTITY,
        prediction=method,
        margin_method=method,
        record=_record(model, ctx),
    )


def _stacking(model: Any, ctx: DecomposeContext) -> Node:
    final = model.final_estimator_
    final_node = ctx.decompose(final, "final_estimator")
    if len(final_node.vertices) != 1 or final_node.vertices[0].estimator is not final:
        raise UnsupportedModelError(
            f"{ctx.path}: the final estimator must be a linear model (a pipeline or ensemble "
            "there is not additive over the base estimators)"
        )
    row = find_row(final)
    if row is None or row.id != "linear":
        raise UnsupportedModelError(
            f"{ctx.path}: final estimator {class_path(final)} is not linear; only a linear "
            "final estimator keeps stacking additive."
        )
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=float))
    methods = [m for m in model.stack_method_ if m != "drop"]
    names = [n for n, e in model.estimators if e != "drop"]
    parts, col = [], 0
    for name, est, method in zip(names, model.estimators_, methods, strict=True):
        child = ctx.decompose(est, name).with_output(method, owner=f"{ctx.path}/{name}")
        width = child.n_outputs
        parts.append((child, coef[:, col : col + width]))
        col += width
    if model.passthrough:
        n_in = coef.shape[1] - col
        term = LinearTerm(coef[:, col:], name="passthrough")
        passthrough = ctx.child("passthrough").leaf(
            term,
            n_margins=coef.shape[0],
            link=IDENTITY,
            prediction="predict",
            margin_method="predict",
        )
        passthrough.vertices[0].origins = np.arange(n_in)
        parts.append((passthrough, np.eye(coef.shape[0])))
        col += n_in
    if col != coef.shape[1]:
        raise UnsupportedModelError(
            f"{ctx.path}: stacked features ({col}) do not match the final estimator's "
            f"{coef.shape[1]} coefficients"
        )
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=float))
    intercept = np.broadcast_to(intercept, (coef.shape[0],)).copy()
    return combine(
        parts,
        intercept=intercept,
        link=final_node.link,
        prediction=final_node.prediction,
        margin_method=final_node.margin_method,
        record=_record(model, ctx),
    )


def _target_transform(model: Any, ctx: DecomposeContext) -> Node:
    if model.transformer is not None:
        raise UnsupportedModelError(
            f"{ctx.path}: TransformedTargetRegressor with a transformer= is not supported; "
            "use func=np.log, inverse_func=np.exp (log link) or no transform."
        )
    if model.func is None and model.inverse_func is None:
        link = IDENTITY
    elif model.func is np.log and model.inverse_func is np.exp:
        link = LOG
    else:
        raise UnsupportedModelError(
            f"{ctx.path}: target transform {model.func!r}/{model.inverse_func!r} has no known "
            "link; supported: none, or func=np.log with inverse_func=np.exp."
        )
    child = ctx.decompose(model.regressor_, "regressor").with_output("predict", owner=ctx.path)
    return combine(
        [(child, np.eye(child.n_outputs))],
        intercept=np.zeros(child.n_outputs),
        link=link,
        prediction="predict",
        margin_method="predict" if link is IDENTITY else None,
        record=_record(model, ctx),
    )


def _calibrated(model: Any, ctx: DecomposeContext) -> Node:
    folds = model.calibrated_classifiers_
    n_classes = len(model.classes_)
    record = _record(model, ctx)
    method = folds[0].method
    if method not in ("sigmoid", "isotonic"):
        raise UnsupportedModelError(
            f"{ctx.path}: calibration method {method!r} is not supported; use sigmoid or isotonic"
        )
    bases = []
    for i, fold in enumerate(folds):
        base = fold.estimator
        base_method = "decision_function" if hasattr(base, "decision_function") else "predict_proba"
        node = ctx.decompose(base, f"fold{i}").with_output(base_method, owner=f"{ctx.path}/fold{i}")
        bases.append(node)
    if method == "isotonic" and ctx.options.get("calibration") == "margin":
        return _isotonic_over_margin(model, ctx, bases, record)
    if method == "sigmoid" and n_classes == 2 and len(folds) == 1:
        cal = folds[0].calibrators[0]
        # sklearn: p = expit(-(a f + b)), so the logit margin is -a f - b.
        return combine(
            [(bases[0], np.array([[-cal.a_]]))],
            intercept=np.array([-cal.b_]),
            link=LOGIT,
            prediction="predict_proba",
            margin_method=None,
            record=record,
        )
    parts = []
    for node, fold in zip(bases, folds, strict=True):
        calibrate = _fold_calibration(fold, n_classes)
        parts.append((node.respond(calibrate, method, owner=ctx.path), 1.0 / len(folds)))
    k = 1 if n_classes == 2 else n_classes
    return combine(
        [(n, w * np.eye(k)) for n, w in parts],
        intercept=np.zeros(k),
        link=IDENTITY,
        prediction="predict_proba",
        margin_method="predict_proba",
        record=record,
    )


def _isotonic_over_margin(
    model: Any, ctx: DecomposeContext, bases: list[Node], record: CompositeRecord
) -> Node:
    """Explain the fold-mean base margin; the isotonic maps act as a (non-additive) link.

    With one fold this is exact. With several, mean_k iso_k(f_k) differs from
    mean_k iso_k(mean_k f_k), and the additivity policy measures by how much.
    """
    if len(model.classes_) != 2:
        raise UnsupportedModelError(
            f"{ctx.path}: calibration='margin' is defined for binary classifiers only; use "
            "calibration='probability' for multiclass."
        )
    folds = [
        [fold.calibrators[0].X_thresholds_.tolist(), fold.calibrators[0].y_thresholds_.tolist()]
        for fold in model.calibrated_classifiers_
    ]
    return combine(
        [(node, np.eye(1) / len(bases)) for node in bases],
        intercept=np.zeros(1),
        link=Link("isotonic", {"folds": folds}),
        prediction="predict_proba",
        margin_method=None,
        record=record,
    )


def _fold_calibration(fold: Any, n_classes: int) -> Callable[[np.ndarray], np.ndarray]:
    """The fold's calibrated probabilities as a function of its base outputs (..., K)."""
    calibrators = list(fold.calibrators)

    def one(cal: Any, f: np.ndarray) -> np.ndarray:
        if hasattr(cal, "a_"):
            return 1.0 / (1.0 + np.exp(cal.a_ * f + cal.b_))
        return np.interp(f, cal.X_thresholds_, cal.y_thresholds_)

    def calibrate(f: np.ndarray) -> np.ndarray:
        if n_classes == 2:
            return one(calibrators[0], f[..., 0])[..., None]
        p = np.stack([one(c, f[..., j]) for j, c in enumerate(calibrators)], axis=-1)
        total = p.sum(axis=-1, keepdims=True)
        uniform = np.full_like(p, 1.0 / n_classes)
        return np.divide(p, total, out=uniform, where=total != 0)

    return calibrate


# ------------------------------------------------------------- shapgov composites


def _frequency_severity(model: Any, ctx: DecomposeContext) -> Node:
    parts = []
    for name, est in (("frequency", model.frequency_), ("severity", model.severity_)):
        child = ctx.decompose(est, name)
        if child.link.name != "log":
            raise UnsupportedModelError(
                f"{ctx.path}/{name}: {class_path(est)} does not have a log link, so "
                "frequency x severity is not additive in log space; use Poisson/Gamma/Tweedie "
                "GLMs or log-link boosting models."
            )
        parts.append((child, np.eye(1)))
    return combine(
        parts, intercept=np.zeros(1), link=LOG, prediction="predict", record=_record(model, ctx)
    )


def _residual_boosted(model: Any, ctx: DecomposeContext) -> Node:
    parts = []
    for i, est in enumerate(model.stages_):
        child = ctx.decompose(est, f"stage{i}").with_output("predict", owner=f"{ctx.path}/stage{i}")
        parts.append((child, np.eye(1)))
    return combine(
        parts,
        intercept=np.zeros(1),
        link=IDENTITY,
        prediction="predict",
        margin_method="predict",
        record=_record(model, ctx),
    )


_COMPOSITES: dict[str, Callable[[Any, DecomposeContext], Node]] = {
    "sklearn.pipeline.Pipeline": _pipeline,
    "sklearn.ensemble.VotingRegressor": _voting,
    "sklearn.ensemble.VotingClassifier": _voting,
    "sklearn.ensemble.StackingRegressor": _stacking,
    "sklearn.ensemble.StackingClassifier": _stacking,
    "sklearn.compose.TransformedTargetRegressor": _target_transform,
    "sklearn.calibration.CalibratedClassifierCV": _calibrated,
    "shapgov.composites.FrequencySeverityRegressor": _frequency_severity,
    "shapgov.composites.ResidualBoostedRegressor": _residual_boosted,
    "shapgov.composites.LinearTerm": _affine_leaf,
}


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    paths = _paths(model)
    for path, decompose in _COMPOSITES.items():
        if path in paths:
            return decompose(model, context)
    row = find_row(model)
    if row is not None and row.id == "linear" and hasattr(model, "coef_"):
        return _linear_leaf(model, context)
    if row is not None and row.id in ("random_forest", "sklearn_gbm", "sklearn_hist_gbm"):
        return _tree_leaf(model, context)
    if row is not None and row.id == "neural_net" and hasattr(model, "coefs_"):
        return _mlp_leaf(model, context)
    if row is not None:  # a row of its own: the plugin that serves that row decomposes it
        return None
    return _predictor_leaf(model, context)


def _mlp_leaf(model: Any, ctx: DecomposeContext) -> Node:
    """scikit-learn MLPs: the margin is the output layer's pre-activation."""
    out = model.out_activation_
    k = model.coefs_[-1].shape[1]
    if out == "identity":
        return ctx.leaf(model, n_margins=k, link=IDENTITY, prediction="predict", margin_method=None)
    if out == "logistic" and k == 1:
        link = LOGIT
    elif out == "softmax":
        link = SOFTMAX
    else:
        raise UnsupportedModelError(
            f"{ctx.path}: multilabel MLPs (out_activation_={out!r} with {k} outputs) are not "
            "supported"
        )
    return ctx.leaf(model, n_margins=k, link=link, prediction="predict_proba", margin_method=None)


def _predictor_leaf(model: Any, ctx: DecomposeContext) -> Node | None:
    """Any other fitted scikit-learn predictor, explained through its own outputs (the
    Kernel explainer unless a plugin claims it): regressors on ``predict``, classifiers
    on ``predict_proba`` in probability space."""
    from sklearn.base import BaseEstimator

    if not isinstance(model, BaseEstimator):
        return None
    if hasattr(model, "classes_") and hasattr(model, "predict_proba"):
        k = 1 if len(model.classes_) == 2 else len(model.classes_)
        method = "predict_proba"
    elif not hasattr(model, "classes_") and hasattr(model, "predict"):
        k, method = 1, "predict"
    else:
        return None
    try:
        allow_nan = bool(model.__sklearn_tags__().input_tags.allow_nan)
    except AttributeError:
        allow_nan = False
    return ctx.leaf(
        model,
        n_margins=k,
        link=IDENTITY,
        prediction=method,
        margin_method=method,
        allow_nan=allow_nan,
    )
