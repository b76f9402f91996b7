"""scikit-learn leaves: linear models, trees and forests, MLPs and any other predictor,
each a single modeling vertex with the link of its output (used by ``sklearn_blueprints``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from shapgov.decomposition.blueprint import Node, regression_outputs
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.links import IDENTITY, LOG, LOGIT, OVR, SOFTMAX
from shapgov.errors import UnsupportedModelError
from shapgov.planning.compatibility import class_path_set


def linear_leaf(model: Any, ctx: DecomposeContext) -> Node:
    coef = np.atleast_2d(model.coef_)
    k = coef.shape[0]
    if hasattr(model, "classes_"):
        n_classes = len(model.classes_)
        proba = hasattr(model, "predict_proba") and getattr(model, "loss", "log_loss") == "log_loss"
        if not proba:
            link, prediction = IDENTITY, "decision_function"
        elif n_classes == 2:
            link, prediction = LOGIT, "predict_proba"
        elif "sklearn.linear_model.SGDClassifier" in class_path_set(model):
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


def tree_leaf(model: Any, ctx: DecomposeContext) -> Node:
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
        outputs = regression_outputs(model)  # K targets: forests and trees fitted on 2-D y
        loss = getattr(model, "_loss", None)  # HistGradientBoosting: poisson/gamma use log
        if loss is not None and type(loss.link).__name__ == "LogLink":
            return ctx.leaf(
                model,
                n_margins=outputs,
                link=LOG,
                prediction="predict",
                margin_method=None,
                allow_nan=nan_ok,
            )
        return ctx.leaf(
            model,
            n_margins=outputs,
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


def affine_leaf(model: Any, ctx: DecomposeContext) -> Node:
    return ctx.leaf(
        model,
        n_margins=model.coef_.shape[0],
        link=IDENTITY,
        prediction="predict",
        margin_method="predict",
    )


def mlp_leaf(model: Any, ctx: DecomposeContext) -> Node:
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


def predictor_leaf(model: Any, ctx: DecomposeContext) -> Node | None:
    """Any other fitted scikit-learn predictor, explained through its own outputs (the
    Kernel explainer unless a plugin claims it): regressors on ``predict`` (one output
    per target, see :func:`~shapgov.decomposition.blueprint.regression_outputs`),
    classifiers on ``predict_proba`` in probability space."""
    from sklearn.base import BaseEstimator

    if not isinstance(model, BaseEstimator):
        return None
    if hasattr(model, "classes_") and hasattr(model, "predict_proba"):
        k = 1 if len(model.classes_) == 2 else len(model.classes_)
        method = "predict_proba"
    elif not hasattr(model, "classes_") and hasattr(model, "predict"):
        k, method = regression_outputs(model), "predict"
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
