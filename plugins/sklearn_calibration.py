"""CalibratedClassifierCV: sigmoid calibration of one fold as an affine map under a logit
link; several folds or isotonic maps as exact responses in probability space, or (with
``calibration="margin"``) the fold-mean margin under an isotonic link."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shapgov.decomposition.blueprint import CompositeRecord, Node, combine_nodes
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.links import IDENTITY, LOGIT, Link
from shapgov.errors import UnsupportedModelError


def calibrated(model: Any, ctx: DecomposeContext) -> Node:
    folds = model.calibrated_classifiers_
    n_classes = len(model.classes_)
    record = ctx.composite_record(model)
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
        return combine_nodes(
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
    return combine_nodes(
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
    return combine_nodes(
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
