"""Built-in plugin: scikit-learn trees, forests and gradient boosting as flat tree ensembles."""

from __future__ import annotations

from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.errors import UnsupportedModelError
from shapgov.explainers.trees import MISSING_DEFAULT, TreeEnsemble, concatenate
from shapgov.planning.compatibility import class_path_set


def parse_tree(
    tree: Any,
    *,
    scale: float = 1.0,
    columns: slice | None = None,
    output: int = 0,
    n_outputs: int = 1,
) -> TreeEnsemble:
    """One fitted ``sklearn.tree`` estimator; leaves carry ``scale * value[:, 0, columns]``
    (class fractions or the one target's mean), or, for a regression tree fitted on a
    2-D ``y`` of K targets, ``scale * value[:, :, 0]``: one value per target, written to
    outputs ``output`` .. ``output + K - 1``.

    :raises UnsupportedModelError: A multi-output classifier (several class sets).
    """
    t = tree.tree_
    if t.n_outputs != 1 and hasattr(tree, "classes_"):
        raise UnsupportedModelError(
            f"{type(tree).__name__} was fitted on {t.n_outputs} label columns "
            "(multi-output classification), which the tree explainer does not explain; fit "
            "one classifier per label column and explain each"
        )
    n = t.node_count
    if t.n_outputs != 1:  # regression on K targets: value is (nodes, K, 1)
        value = np.asarray(t.value[:, :, 0], dtype=float)
    else:
        value = np.asarray(t.value[:, 0, :], dtype=float)
    if hasattr(tree, "classes_"):  # class fractions per node (normalized defensively)
        value = value / value.sum(axis=1, keepdims=True)
    value = scale * value[:, columns if columns is not None else slice(None)]
    left = np.asarray(t.children_left, dtype=np.int64)
    leaf = left < 0
    missing_left = getattr(t, "missing_go_to_left", np.zeros(n, dtype=np.uint8))
    return TreeEnsemble(
        left=left,
        right=np.asarray(t.children_right, dtype=np.int64),
        feature=np.where(leaf, -1, t.feature).astype(np.int64),
        threshold=np.where(leaf, 0.0, t.threshold).astype(float),
        default_left=np.asarray(missing_left, dtype=bool),
        missing=np.full(n, MISSING_DEFAULT, dtype=np.int8),
        cat_start=np.zeros(n, dtype=np.int64),
        cat_end=np.zeros(n, dtype=np.int64),
        cat_values=np.zeros(0, dtype=np.int64),
        cover=np.asarray(t.weighted_n_node_samples, dtype=float),
        value=value,
        roots=np.zeros(1, dtype=np.int64),
        tree_output=np.array([output], dtype=np.int64),
        base_offset=np.zeros(n_outputs),
        n_features=int(tree.n_features_in_),
        n_outputs=n_outputs,
        float32_inputs=True,
    )


def _class_columns(model: Any) -> tuple[slice, int]:
    k = len(model.classes_)
    return (slice(1, 2), 1) if k == 2 else (slice(None), k)


def parse_forest(model: Any) -> TreeEnsemble:
    """Decision trees, random forests and extra trees: the mean of the trees' outputs
    (``K`` outputs for a regressor fitted on ``K`` targets)."""
    trees = getattr(model, "estimators_", [model])
    if hasattr(model, "classes_"):
        columns, k = _class_columns(model)
    else:
        columns, k = None, int(getattr(model, "n_outputs_", 1))
    parts = [parse_tree(t, scale=1.0 / len(trees), columns=columns, n_outputs=k) for t in trees]
    return concatenate(parts, base_offset=np.zeros(k), n_outputs=k)


def parse_gradient_boosting(model: Any) -> TreeEnsemble:
    """GradientBoosting*: constant init plus learning_rate times each stage's trees."""
    init = model.init_
    if not (init == "zero" or type(init).__name__ in ("DummyRegressor", "DummyClassifier")):
        raise UnsupportedModelError(
            "GradientBoosting with a custom init estimator has an input-dependent offset; "
            "use init=None or 'zero' to explain it with the tree explainer"
        )
    if getattr(model, "loss", "") == "exponential":
        raise UnsupportedModelError(
            "GradientBoostingClassifier(loss='exponential') has no logit link; use log_loss"
        )
    base = np.asarray(model._raw_predict_init(np.zeros((1, model.n_features_in_)))[0], float)
    k = model.estimators_.shape[1]
    parts = [
        parse_tree(tree, scale=model.learning_rate, output=j, n_outputs=k)
        for stage in model.estimators_
        for j, tree in enumerate(stage)
    ]
    return concatenate(parts, base_offset=base, n_outputs=k)


def parse_hist_gradient_boosting(model: Any) -> TreeEnsemble:
    """HistGradientBoosting*: baseline plus the (already shrunk) leaf values of every tree.

    With categorical features the trees read the model's own encoding of X (its
    ``_preprocessor``: category codes, categorical columns first); the blueprint puts that
    encoding in front of the vertex. Numerical splits go left when ``x <= num_threshold``.
    A categorical split sends NaN, negative codes and categories unseen in training the
    missing-value way, listed left categories left and the other known ones right.
    """
    known, f_idx_map = (None, None)
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
    predictors = model._predictors
    k = len(predictors[0])
    parts = []
    for iteration in predictors:
        for j, pred in enumerate(iteration):
            parts.append(_hist_tree(model, pred, j, k, known, f_idx_map))
    base = np.ravel(np.asarray(model._baseline_prediction, dtype=float))
    return concatenate(parts, base_offset=np.broadcast_to(base, (k,)).copy(), n_outputs=k)


def _bits(words: np.ndarray) -> set[int]:
    return {w * 32 + b for w, word in enumerate(words) for b in range(32) if int(word) >> b & 1}


def _hist_tree(
    model: Any,
    pred: Any,
    output: int,
    n_outputs: int,
    known: np.ndarray | None,
    f_idx_map: np.ndarray | None,
) -> TreeEnsemble:
    nodes = pred.nodes
    n = len(nodes)
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    default_left = nodes["missing_go_to_left"].astype(bool)
    cat_values: list[int] = []
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    for i in np.flatnonzero(nodes["is_categorical"].astype(bool) & ~leaf):
        to_left = _bits(pred.raw_left_cat_bitsets[nodes["bitset_idx"][i]])
        if default_left[i]:
            # Unseen categories go left with the missing values: list the known categories
            # that go right instead, and swap the children.
            seen = _bits(known[f_idx_map[nodes["feature_idx"][i]]])
            listed = sorted(seen - to_left)
            left[i], right[i] = right[i], left[i]
            default_left[i] = False
        else:
            listed = sorted(to_left)
        start[i] = len(cat_values)
        # -1 matches no category: a split that sends only missing values one way
        cat_values.extend(listed or [-1])
        end[i] = len(cat_values)
    return TreeEnsemble(
        left=left,
        right=right,
        feature=np.where(leaf, -1, nodes["feature_idx"].astype(np.int64)),
        threshold=np.where(leaf, 0.0, nodes["num_threshold"]).astype(float),
        default_left=default_left,
        missing=np.full(n, MISSING_DEFAULT, dtype=np.int8),
        cat_start=start,
        cat_end=end,
        cat_values=np.asarray(cat_values, dtype=np.int64),
        cover=nodes["count"].astype(float),
        value=np.where(leaf, nodes["value"], 0.0).astype(float)[:, None],
        roots=np.zeros(1, dtype=np.int64),
        tree_output=np.array([output], dtype=np.int64),
        base_offset=np.zeros(n_outputs),
        n_features=int(model.n_features_in_),
        n_outputs=n_outputs,
    )


_PARSERS = {
    "sklearn.ensemble.HistGradientBoostingRegressor": parse_hist_gradient_boosting,
    "sklearn.ensemble.HistGradientBoostingClassifier": parse_hist_gradient_boosting,
    "sklearn.ensemble.GradientBoostingRegressor": parse_gradient_boosting,
    "sklearn.ensemble.GradientBoostingClassifier": parse_gradient_boosting,
    "sklearn.ensemble.RandomForestRegressor": parse_forest,
    "sklearn.ensemble.RandomForestClassifier": parse_forest,
    "sklearn.ensemble.ExtraTreesRegressor": parse_forest,
    "sklearn.ensemble.ExtraTreesClassifier": parse_forest,
    "sklearn.tree.BaseDecisionTree": parse_forest,
}


@hookimpl(trylast=True)
def shapgov_tree_ensemble(model: Any) -> TreeEnsemble | None:
    paths = class_path_set(model)
    for path, parse in _PARSERS.items():
        if path in paths:
            return parse(model)
    return None
