"""Built-in plugin: LightGBM models as vertices, with the link their objective implies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Node
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.encoding import Transform, as_float_matrix, category_codes
from shapgov.decomposition.links import IDENTITY, LOG, LOGIT, SOFTMAX, Link
from shapgov.decomposition.offsets import ModelOffset
from shapgov.errors import InputError, UndecomposableModelError, UnsupportedModelError
from shapgov.planning.compatibility import class_path_set

if TYPE_CHECKING:
    from shapgov.registry import PluginCalls

# objective (LightGBM's canonical names and aliases) -> link
OBJECTIVE_LINKS: dict[str, Link] = {
    **dict.fromkeys(
        [
            "regression",
            "regression_l2",
            "l2",
            "mse",
            "mean_squared_error",
            "rmse",
            "regression_l1",
            "l1",
            "mae",
            "huber",
            "fair",
            "quantile",
            "mape",
        ],
        IDENTITY,
    ),
    **dict.fromkeys(["poisson", "gamma", "tweedie"], LOG),
    **dict.fromkeys(["binary", "cross_entropy", "xentropy"], LOGIT),
    **dict.fromkeys(["multiclass", "softmax"], SOFTMAX),
    # ranking scores are raw margins: the identity link is exact
    **dict.fromkeys(
        ["lambdarank", "rank_xendcg", "xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart"],
        IDENTITY,
    ),
}


def objective_link(objective: str) -> Link:
    """The link of a LightGBM objective.

    :raises UndecomposableModelError: The objective has no known link
        (``cross_entropy_lambda``, a custom objective): the model can only be explained as
        a whole, through its outputs (``opaque=True``, or ``fallback="kernel"``, the
        default).
    """
    name = objective.split()[0]
    if name not in OBJECTIVE_LINKS:
        raise UndecomposableModelError(
            f"LightGBM objective {objective!r} has no known link, so its trees' margin "
            "cannot be tied to its predictions; explain the model as a whole with "
            "opaque=True (the Kernel explainer, exact up to 14 columns). Objectives with a "
            f"link: {sorted(set(OBJECTIVE_LINKS))}"
        )
    return OBJECTIVE_LINKS[name]


def booster_objective(booster: Any) -> tuple[str, int]:
    """(objective, number of classes) of a fitted ``lightgbm.Booster`` (from the dump's
    header: only the first iteration's trees are dumped with it)."""
    dump = booster.dump_model(num_iteration=1)
    params = dump.get("objective", "regression")
    return str(params), int(dump.get("num_class", 1))


def _is_lightgbm(model: Any) -> bool:
    paths = class_path_set(model)
    return bool(paths & {"lightgbm.basic.Booster", "lightgbm.sklearn.LGBMModel"})


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    if not _is_lightgbm(model):
        return None
    booster = model if hasattr(model, "dump_model") else model.booster_
    objective, n_class = booster_objective(booster)
    link = objective_link(objective)
    k = n_class if link is SOFTMAX else 1
    prediction = "predict_proba" if hasattr(model, "classes_") else "predict"
    # LightGBM >= 4.7 classifiers output their raw margin as decision_function (which
    # scikit-learn's calibration then consumes)
    raw = "decision_function" if hasattr(model, "classes_") else None
    node = context.leaf(
        model,
        n_margins=k,
        link=link,
        prediction=prediction,
        margin_method=raw if raw and hasattr(model, raw) else None,
        allow_nan=True,
    )
    stored = getattr(booster, "pandas_categorical", None)
    if not stored:
        return node
    n = booster.num_feature()
    return node.under(pandas_categorical_codes(stored), np.arange(n), "categories")


@hookimpl(trylast=True)
def shapgov_model_offset(model: Any, plugins: PluginCalls) -> ModelOffset | None:
    if not _is_lightgbm(model):
        return None
    return init_score_offset(model)


def init_score_offset(model: Any) -> ModelOffset:
    """An offset as LightGBM takes an ``init_score``: a model boosted from one predicts
    without it, and LightGBM's documentation adds it to the raw score,
    ``link^-1(predict(X, raw_score=True) + init_score)``. It adds to the whole margin
    (nothing is replaced: LightGBM boosts from no average when given an init_score).

    :raises InputError: The objective has no known link, so the raw score and the offset
        cannot be carried to the model's prediction.
    """
    booster = model if hasattr(model, "dump_model") else model.booster_
    objective, _ = booster_objective(booster)
    try:
        link = objective_link(objective)
    except UnsupportedModelError as err:
        raise InputError(
            f"LightGBM objective {objective!r} has no known link: an offset (init_score, "
            "added to the raw score) cannot be carried to its predictions; explain it "
            "without offset="
        ) from err
    method = "predict_proba" if hasattr(model, "classes_") else "predict"
    k = int(booster.num_model_per_iteration())

    def predict(X: Any, offset: np.ndarray) -> np.ndarray:
        raw = np.asarray(getattr(model, method)(X, raw_score=True), dtype=float)
        margin = raw.reshape(len(raw), -1) + np.asarray(offset, dtype=float).reshape(-1, 1)
        return link.inverse(margin)

    return ModelOffset("LightGBM init_score (added to the raw score)", np.zeros(k), predict)


@hookimpl(trylast=True)
def shapgov_stored_categories(model: Any, plugins: PluginCalls) -> dict[Any, list[Any]] | None:
    """LightGBM's category columns: those whose feature infos list category values, in
    order, with the categories of ``pandas_categorical``."""
    if not _is_lightgbm(model):
        return None
    booster = model if hasattr(model, "dump_model") else model.booster_
    stored = getattr(booster, "pandas_categorical", None)
    if not stored:
        return None
    infos = booster.dump_model().get("feature_infos", {})
    columns = [name for name, info in infos.items() if info.get("values")]
    if len(columns) != len(stored):  # integer-coded categories: nothing to recode
        return None
    names = list(getattr(model, "feature_names_in_", columns))
    by_dump = dict(zip(infos, names, strict=False)) if len(names) == len(infos) else {}
    return {by_dump.get(c, c): list(cats) for c, cats in zip(columns, stored, strict=True)}


def pandas_categorical_codes(stored: list[list[Any]]) -> Transform:
    """LightGBM's own encoding of a DataFrame: its 'category' columns, in order, take the
    codes of the categories stored at fit (``pandas_categorical``); unseen labels and
    missing values become NaN (LightGBM's ``_data_from_pandas``)."""

    def encode(X: Any) -> np.ndarray:
        if not isinstance(X, pd.DataFrame):
            return as_float_matrix(X)
        cat_cols = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        if len(cat_cols) != len(stored):
            raise InputError(
                f"the LightGBM model was fitted with {len(stored)} pandas 'category' "
                f"column(s) but X has {len(cat_cols)} ({cat_cols}); give X the dtypes it "
                "had at fit (X[col] = X[col].astype('category'))"
            )
        per_column = dict(zip(cat_cols, stored, strict=True))
        categories = [per_column.get(c) for c in X.columns]
        return category_codes(categories, unseen="missing", library="LightGBM")(X)

    return encode
