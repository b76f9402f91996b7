"""Built-in plugin: XGBoost models, parsed from their JSON into the flat tree representation.

Active only when xgboost is importable; nothing of xgboost is imported until a model
of one of its classes arrives. XGBoost routing, and how it maps onto
:mod:`shapgov.explainers.trees`:

* numerical: left iff ``float32(x) < split_condition`` — for float32 inputs that is
  ``x <= nextafter(split_condition, -inf)`` in float32;
* categorical: categories *in* the node's set go right, all others (unseen and invalid
  ones included) go left — the children are swapped so the set goes "left" here;
* missing (NaN): the node's default child.

``base_score`` is stored in prediction space for objectives with a link (mean of the
labels for ``binary:logistic``, mean count for ``count:poisson``) and becomes
``link(base_score)`` in the margin; multiclass models store per-class margins already.
An offset is XGBoost's ``base_margin``, which *replaces* ``base_score`` in
``predict(X, base_margin=...)`` (xgboost#6546): :func:`base_margin_offset` says so to the
additivity check (``shapgov_model_offset``).
Ranking objectives (``rank:*``) score with the raw margin itself: the identity link.
"""

from __future__ import annotations

import importlib.util
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Node
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.encoding import (
    Transform,
    as_float_matrix,
    category_codes,
    frame_codes,
)
from shapgov.decomposition.links import IDENTITY, LOG, LOGIT, SOFTMAX, Link
from shapgov.decomposition.offsets import ModelOffset
from shapgov.errors import InputError, UndecomposableModelError, UnsupportedModelError
from shapgov.explainers.trees import MISSING_DEFAULT, TreeEnsemble
from shapgov.planning.compatibility import class_path_set

if TYPE_CHECKING:
    from shapgov.registry import PluginCalls

AVAILABLE = importlib.util.find_spec("xgboost") is not None

#: objective -> link of the margin
OBJECTIVES: dict[str, Link] = {
    **dict.fromkeys(
        [
            "reg:squarederror",
            "reg:squaredlogerror",
            "reg:pseudohubererror",
            "reg:absoluteerror",
            "reg:quantileerror",
            # ranking scores are raw margins: the identity link is exact
            "rank:pairwise",
            "rank:ndcg",
            "rank:map",
        ],
        IDENTITY,
    ),
    **dict.fromkeys(["binary:logistic", "reg:logistic"], LOGIT),
    **dict.fromkeys(["count:poisson", "reg:gamma", "reg:tweedie"], LOG),
    **dict.fromkeys(["multi:softprob", "multi:softmax"], SOFTMAX),
}
#: objectives whose base_score is stored in the margin already
_MARGIN_BASE = {"binary:logitraw", "multi:softprob", "multi:softmax"}


def _is(model: Any, *paths: str) -> bool:
    found = class_path_set(model)
    return bool(found & set(paths))


def _booster(model: Any) -> Any:
    return model if _is(model, "xgboost.core.Booster") else model.get_booster()


def _learner(booster: Any) -> dict[str, Any]:
    return json.loads(bytes(booster.save_raw("json")))["learner"]


def objective_link(objective: str) -> Link:
    """The link of an XGBoost objective.

    :raises UndecomposableModelError: The objective has no known link (``binary:hinge``,
        a custom objective): the model can only be explained as a whole, through its
        outputs (``opaque=True``, or ``fallback="kernel"``, the default).
    """
    if objective == "binary:logitraw":
        return IDENTITY
    if objective not in OBJECTIVES:
        raise UndecomposableModelError(
            f"XGBoost objective {objective!r} has no known link, so its trees' margin "
            "cannot be tied to its predictions; explain the model as a whole with "
            "opaque=True (the Kernel explainer, exact up to 14 columns). Objectives with a "
            f"link: {sorted([*OBJECTIVES, 'binary:logitraw'])}"
        )
    return OBJECTIVES[objective]


def base_margin(learner: dict[str, Any]) -> np.ndarray:
    """The per-output margin every prediction starts from, from ``base_score``."""
    objective = learner["objective"]["name"]
    raw = str(learner["learner_model_param"]["base_score"]).strip("[]")
    score = np.array([float(s) for s in raw.split(",")], dtype=np.float32).astype(float)
    if objective in _MARGIN_BASE:
        return score
    link = objective_link(objective)
    if link is LOGIT:
        return np.log(score / (1.0 - score))
    if link is LOG:
        return np.log(score)
    return score


def _n_used_trees(model: Any, per_iteration: int, n_trees: int) -> int:
    """Trees the model's ``predict`` uses: the scikit-learn wrappers stop at the best
    iteration after early stopping; a Booster predicts with all trees."""
    if _is(model, "xgboost.core.Booster"):
        return n_trees
    try:
        best = model.best_iteration
    except AttributeError:  # no early stopping
        return n_trees
    return min(n_trees, (int(best) + 1) * per_iteration)


def parse_xgboost(model: Any) -> TreeEnsemble:
    """All trees an XGBoost model (``Booster`` or scikit-learn wrapper) predicts with."""
    learner = _learner(_booster(model))
    gbm = learner["gradient_booster"]
    weights = None
    if gbm.get("name") == "dart":
        # dart predicts with every tree, each scaled by its weight_drop (XGBoost's
        # Dart::PredictBatch outside training): the scaled trees are an ordinary ensemble
        weights = np.asarray(gbm["weight_drop"], dtype=np.float32)
        gbm = gbm["gbtree"]
    if gbm.get("name") != "gbtree":
        raise UnsupportedModelError(
            f"XGBoost booster {gbm.get('name')!r} is not supported by the tree explainer: "
            "gblinear has no trees; train with booster='gbtree' (or 'dart') or explain the "
            "model with the Kernel explainer"
        )
    trees_json = gbm["model"]["trees"]
    tree_info = gbm["model"]["tree_info"]
    base = base_margin(learner)
    n_outputs = max(base.shape[0], max(tree_info, default=0) + 1)
    base = np.broadcast_to(base, (n_outputs,)).copy()
    params = gbm["model"]["gbtree_model_param"]
    per_iteration = n_outputs * int(params.get("num_parallel_tree", 1))
    n_used = _n_used_trees(model, per_iteration, len(trees_json))
    parts = [_parse_tree(t) for t in trees_json[:n_used]]
    if weights is not None:
        for part, weight in zip(parts, weights[:n_used], strict=True):
            part["value"] = (part["value"].astype(np.float32) * weight).astype(float)
    if not parts:
        raise UnsupportedModelError("the XGBoost model has no trees; fit it first")
    offsets = np.cumsum([0] + [p["left"].shape[0] for p in parts[:-1]]).astype(np.int64)
    cat_offsets = np.cumsum([0] + [p["cat_values"].shape[0] for p in parts[:-1]])
    shifts = {"left": offsets, "right": offsets, "cat_start": cat_offsets, "cat_end": cat_offsets}
    joined = {
        k: np.concatenate(
            [np.where(p[k] >= 0, p[k] + s, p[k]) for p, s in zip(parts, shifts[k], strict=True)]
            if k in shifts
            else [p[k] for p in parts]
        )
        for k in parts[0]
    }
    return TreeEnsemble(
        **joined,
        missing=np.full(joined["left"].shape[0], MISSING_DEFAULT, dtype=np.int8),
        roots=offsets.astype(np.int64),
        tree_output=np.asarray(tree_info[:n_used], dtype=np.int64),
        base_offset=base,
        n_features=int(learner["learner_model_param"]["num_feature"]),
        n_outputs=n_outputs,
        float32_inputs=True,
    ).validate()


def _parse_tree(tree: dict[str, Any]) -> dict[str, np.ndarray]:
    size_leaf = int(tree["tree_param"].get("size_leaf_vector", "1"))
    if size_leaf > 1:
        raise UnsupportedModelError(
            "XGBoost multi-output trees (multi_strategy='multi_output_tree') are not "
            "supported by the tree explainer; train with one_output_per_tree"
        )
    left = np.asarray(tree["left_children"], dtype=np.int64)
    right = np.asarray(tree["right_children"], dtype=np.int64)
    leaf = left < 0
    cond = np.asarray(tree["split_conditions"], dtype=np.float32)
    below = np.nextafter(cond, np.float32(-np.inf)).astype(float)
    default_left = np.asarray(tree["default_left"], dtype=bool)
    kind = np.asarray(tree["split_type"], dtype=np.int64)
    n = left.shape[0]
    cat_start = np.zeros(n, dtype=np.int64)
    cat_end = np.zeros(n, dtype=np.int64)
    cat_values = np.asarray(tree["categories"], dtype=np.int64)
    for node, start, size in zip(
        tree["categories_nodes"],
        tree["categories_segments"],
        tree["categories_sizes"],
        strict=True,
    ):
        cat_start[node], cat_end[node] = start, start + size
    is_cat = (kind == 1) & ~leaf
    # XGBoost sends the listed categories right: swap so the set goes left here.
    left, right = np.where(is_cat, right, left), np.where(is_cat, left, right)
    default_left = np.where(is_cat, ~default_left, default_left)
    return {
        "left": left,
        "right": np.where(leaf, -1, right),
        "feature": np.where(leaf, -1, np.asarray(tree["split_indices"], dtype=np.int64)),
        "threshold": np.where(leaf | is_cat, 0.0, below),
        "default_left": default_left & ~leaf,
        "cat_start": np.where(is_cat, cat_start, 0),
        "cat_end": np.where(is_cat, cat_end, 0),
        "cat_values": cat_values,
        "cover": np.asarray(tree["sum_hessian"], dtype=float),
        "value": np.where(leaf, cond.astype(float), 0.0)[:, None],
    }


@hookimpl(trylast=True)
def shapgov_tree_ensemble(model: Any) -> TreeEnsemble | None:
    if not AVAILABLE or not _is(model, "xgboost.core.Booster", "xgboost.sklearn.XGBModel"):
        return None
    return parse_xgboost(model)


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    if not AVAILABLE:
        return None
    if _is(model, "xgboost.core.Booster"):
        raise UnsupportedModelError(
            "a bare xgboost.Booster predicts only on a DMatrix; explain its scikit-learn "
            "wrapper instead (e.g. model = xgboost.XGBRegressor(); model.load_model(path))"
        )
    if not _is(model, "xgboost.sklearn.XGBModel"):
        return None
    learner = _learner(model.get_booster())
    link = objective_link(learner["objective"]["name"])
    n_class = int(learner["learner_model_param"].get("num_class", "0"))
    k = max(n_class, 1) if link is SOFTMAX else 1
    if link is SOFTMAX and n_class < 2:
        raise UnsupportedModelError("XGBoost softmax model without num_class")
    prediction = "predict_proba" if hasattr(model, "classes_") else "predict"
    node = context.leaf(
        model, n_margins=k, link=link, prediction=prediction, margin_method=None, allow_nan=True
    )
    booster = model.get_booster()
    n = booster.num_features()
    marker = getattr(model, "missing", np.nan)
    if marker is not None and not np.isnan(marker):
        node = node.under(missing_marker(float(marker)), np.arange(n), f"missing={marker:g}")
    if "c" in (booster.feature_types or []):
        node = node.under(categorical_encoding(booster), np.arange(n), "categories")
    return node


@hookimpl(trylast=True)
def shapgov_model_offset(model: Any, plugins: PluginCalls) -> ModelOffset | None:
    if not AVAILABLE or not _is(model, "xgboost.sklearn.XGBModel"):
        return None
    return base_margin_offset(model)


def base_margin_offset(model: Any) -> ModelOffset:
    """An offset as XGBoost takes it: ``predict(X, base_margin=offset)``, which *replaces*
    ``base_score`` (xgboost#6546): the base value loses ``link(base_score)``.

    :raises InputError: The objective has no known link, so what the offset replaces in
        the explained margin is unknown.
    """
    learner = _learner(model.get_booster())
    objective = learner["objective"]["name"]
    try:
        replaced = base_margin(learner)
    except UnsupportedModelError as err:
        raise InputError(
            f"XGBoost objective {objective!r} has no known link: an offset (XGBoost's "
            "base_margin, which replaces base_score) cannot be added to its explained "
            "output; explain it without offset="
        ) from err
    method = "predict_proba" if hasattr(model, "classes_") else "predict"
    n_class = int(learner["learner_model_param"].get("num_class", "0"))
    k = max(n_class, 1) if objective_link(objective) is SOFTMAX else 1
    replaced = np.broadcast_to(replaced, (k,)).copy()

    def predict(X: Any, offset: np.ndarray) -> Any:
        margin = np.asarray(offset, dtype=float).reshape(len(offset), -1)
        margin = margin[:, 0] if k == 1 else np.broadcast_to(margin, (len(margin), k))
        return getattr(model, method)(X, base_margin=margin)

    return ModelOffset("XGBoost base_margin (replaces base_score)", replaced, predict)


def missing_marker(marker: float) -> Transform:
    """XGBoost's ``missing=`` value: inputs equal to it (in float32, as XGBoost compares)
    are missing, i.e. NaN for the trees."""

    def encode(Z: Any) -> np.ndarray:
        Z = as_float_matrix(Z).copy()
        Z[Z.astype(np.float32) == np.float32(marker)] = np.nan
        return Z

    return encode


@hookimpl(trylast=True)
def shapgov_stored_categories(model: Any, plugins: PluginCalls) -> dict[Any, list[Any]] | None:
    """XGBoost >= 3.1's stored training categories, by column name (older versions store
    none: the input's own codes are used)."""
    if not AVAILABLE or not _is(model, "xgboost.core.Booster", "xgboost.sklearn.XGBModel"):
        return None
    try:
        stored = _booster(model).get_categories(export_to_arrow=True).to_arrow()
    except (AttributeError, TypeError, ImportError):
        return None
    found = {name: arr.to_pylist() for name, arr in stored if arr is not None}
    return found or None


def categorical_encoding(booster: Any) -> Transform:
    """XGBoost's own encoding of 'category' columns: XGBoost >= 3.1 stores the training
    categories and re-codes the input by label (unseen labels are rejected); older
    versions use the input column's own codes."""
    try:
        stored = booster.get_categories(export_to_arrow=True).to_arrow()
    except (AttributeError, TypeError, ImportError):
        return frame_codes
    categories = [None if arr is None else arr.to_pylist() for _, arr in stored]
    return category_codes(categories, unseen="error", library="XGBoost")
