"""Ensembles as affine combinations of their members: voting (weighted means), stacking
with a linear final estimator (its coefficients), one regressor per output
(``MultiOutputRegressor``), and shapgov's frequency-severity and residual-boosting
composites (sums of log-link and identity parts)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from shapgov.composites import LinearTerm
from shapgov.decomposition.blueprint import Node, class_path, combine_nodes
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.links import IDENTITY, LOG
from shapgov.errors import UndecomposableModelError, UnsupportedModelError


def voting(model: Any, ctx: DecomposeContext) -> Node:
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
    return combine_nodes(
        parts,
        intercept=np.zeros(k),
        link=IDENTITY,
        prediction=method,
        margin_method=method,
        record=ctx.composite_record(model),
    )


def stacking(model: Any, ctx: DecomposeContext) -> Node:
    final = model.final_estimator_
    row = ctx.find_row(final)
    if row is None or row.id != "linear":
        raise UndecomposableModelError(
            f"{ctx.path}: final estimator {class_path(final)} is not linear; only a linear "
            "final estimator keeps stacking additive over its base estimators, so the "
            "compatibility matrix has no additive rule for it. Explain the model as a whole "
            "with the Kernel explainer (opaque=True)."
        )
    final_node = ctx.decompose(final, "final_estimator")
    if len(final_node.vertices) != 1 or final_node.vertices[0].estimator is not final:
        raise UndecomposableModelError(
            f"{ctx.path}: the final estimator must be a single linear model (a pipeline or "
            "ensemble there is not additive over the base estimators); explain the model as "
            "a whole with the Kernel explainer (opaque=True)."
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
        vertex = replace(passthrough.vertices[0], origins=np.arange(n_in))
        passthrough = replace(passthrough, vertices=(vertex,))
        parts.append((passthrough, np.eye(coef.shape[0])))
        col += n_in
    if col != coef.shape[1]:
        raise UnsupportedModelError(
            f"{ctx.path}: stacked features ({col}) do not match the final estimator's "
            f"{coef.shape[1]} coefficients"
        )
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=float))
    intercept = np.broadcast_to(intercept, (coef.shape[0],)).copy()
    return combine_nodes(
        parts,
        intercept=intercept,
        link=final_node.link,
        prediction=final_node.prediction,
        margin_method=final_node.margin_method,
        record=ctx.composite_record(model),
    )


def frequency_severity(model: Any, ctx: DecomposeContext) -> Node:
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
    return combine_nodes(
        parts,
        intercept=np.zeros(1),
        link=LOG,
        prediction="predict",
        record=ctx.composite_record(model),
    )


def residual_boosted(model: Any, ctx: DecomposeContext) -> Node:
    parts = []
    for i, est in enumerate(model.stages_):
        child = ctx.decompose(est, f"stage{i}").with_output("predict", owner=f"{ctx.path}/stage{i}")
        parts.append((child, np.eye(1)))
    return combine_nodes(
        parts,
        intercept=np.zeros(1),
        link=IDENTITY,
        prediction="predict",
        margin_method="predict",
        record=ctx.composite_record(model),
    )


def per_output(model: Any, ctx: DecomposeContext) -> Node:
    """``MultiOutputRegressor``: output k is ``estimators_[k]``'s prediction, so each fitted
    regressor is decomposed on its own (a vertex, or the vertices of a pipeline) and
    weighted onto output k alone; K outputs in prediction space.

    :raises UnsupportedModelError: A member predicts more than one output.
    """
    k = len(model.estimators_)
    parts = []
    for j, est in enumerate(model.estimators_):
        name = f"output{j}"
        child = ctx.decompose(est, name).with_output("predict", owner=f"{ctx.path}/{name}")
        if child.n_outputs != 1:
            raise UnsupportedModelError(
                f"{ctx.path}/{name}: {class_path(est)} predicts {child.n_outputs} outputs where "
                "MultiOutputRegressor expects one per estimator; fit it on one target column"
            )
        onto = np.zeros((k, 1))
        onto[j, 0] = 1.0
        parts.append((child, onto))
    return combine_nodes(
        parts,
        intercept=np.zeros(k),
        link=IDENTITY,
        prediction="predict",
        margin_method="predict",
        record=ctx.composite_record(model),
    )
