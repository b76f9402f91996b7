"""Built-in plugin: CatBoost models (``CatBoostRegressor``, ``CatBoostClassifier``,
``CatBoostRanker``, a bare ``CatBoost``), read from their JSON export.

Active only when catboost is importable; nothing of catboost is imported until a model of
one of its classes arrives. The trees are read by :mod:`shapgov_plugins.catboost_json`
(routing rules there) and explained by the tree explainer in both games.

How the model sees a table, as its own ``predict`` does: numeric columns as float64
(NaN where missing), categorical columns (``cat_features``, by name or index, strings
or integers — integral floats of a numeric table read as the integers —, pandas
``category`` or ``object``) as their CatBoost hash, computed by
CatBoost itself (the ``cat_features_hash`` its JSON export lists for a pool of the
labels, :func:`catboost_hashes`); every label the model never
saw hashes to a key missing from its CTR tables and one-hot values, so all unseen labels
route alike. CatBoost refuses missing values and real numbers in categorical columns; so
does this plugin, with :class:`~shapgov.errors.InputError` naming the column.

Links (``loss_function``): ``Logloss``/``CrossEntropy`` logit (``predict_proba``),
``MultiClass`` softmax, ``Poisson``/``Tweedie`` log (``predict`` returns ``exp`` of the
raw formula), the regression and ranking losses identity; a bare ``CatBoost`` predicts
its raw formula (identity). ``MultiClassOneVsAll``, ``RMSEWithUncertainty`` and
multi-target losses have no single link and fall back to the Kernel explainer.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import tempfile
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Node
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.encoding import as_float_matrix
from shapgov.decomposition.links import IDENTITY, LOG, LOGIT, SOFTMAX, Link
from shapgov.errors import InputError, UndecomposableModelError, UnsupportedModelError
from shapgov.explainers.trees import TreeEnsemble
from shapgov.planning.compatibility import class_path_set
from shapgov_plugins.catboost_json import CatBoostTrees

AVAILABLE = importlib.util.find_spec("catboost") is not None
CLASS = "catboost.core.CatBoost"

#: loss_function (before ':') -> link of the raw formula, for CatBoostRegressor/Classifier
LOSSES: dict[str, Link] = {
    **dict.fromkeys(
        [
            "RMSE",
            "MAE",
            "Quantile",
            "Expectile",
            "MAPE",
            "Huber",
            "Lq",
            "LogCosh",
            "FairLoss",
            "SMAPE",
            "MSLE",
            "R2",
            "NumErrors",
            # rankers score with the raw formula itself
            "YetiRank",
            "YetiRankPairwise",
            "PairLogit",
            "PairLogitPairwise",
            "QueryRMSE",
            "QuerySoftMax",
            "QueryCrossEntropy",
            "StochasticFilter",
            "StochasticRank",
        ],
        IDENTITY,
    ),
    **dict.fromkeys(["Logloss", "CrossEntropy"], LOGIT),
    **dict.fromkeys(["Poisson", "Tweedie"], LOG),
    "MultiClass": SOFTMAX,
}


def is_catboost(model: Any) -> bool:
    """Whether ``model`` is a CatBoost model (any of its classes)."""
    return AVAILABLE and CLASS in class_path_set(model)


def model_json(model: Any) -> dict[str, Any]:
    """The model's JSON export (``save_model(format="json")``), parsed."""
    with tempfile.TemporaryDirectory(prefix="shapgov-catboost-") as tmp:
        path = os.path.join(tmp, "model.json")
        model.save_model(path, format="json")
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)


def loss_name(model: Any) -> str:
    """The model's ``loss_function`` without its parameters (``Tweedie:variance_power=1.5``
    gives ``Tweedie``)."""
    params = model.get_all_params()
    return str(params.get("loss_function", "RMSE")).split(":", 1)[0]


def loss_link(model: Any) -> Link:
    """The link between the raw formula and what ``predict``/``predict_proba`` return.

    :raises UndecomposableModelError: The loss has no single link (see the module doc);
        the model is explained as a whole (the Kernel explainer).
    """
    loss = loss_name(model)
    if loss not in LOSSES:
        raise UndecomposableModelError(
            f"CatBoost loss {loss!r} has no single known link between its raw formula and "
            "its predictions; explain the model as a whole with opaque=True (the Kernel "
            f"explainer). Losses with a link: {sorted(LOSSES)}"
        )
    return LOSSES[loss]


@functools.cache
def _hashing_model() -> Any:
    """A one-split CatBoost model over one categorical column: its JSON export with a
    pool lists the CatBoost hash of every label in the pool (``cat_features_hash``)."""
    from catboost import CatBoostRegressor

    model = CatBoostRegressor(
        iterations=1, depth=1, verbose=0, allow_writing_files=False, thread_count=1
    )
    return model.fit(pd.DataFrame({"c": ["a", "b"]}), [0.0, 1.0], cat_features=[0])


def catboost_hashes(texts: list[str]) -> list[int]:
    """CatBoost's own hash (32-bit, ``CalcCatFeatureHash``) of each label, as its
    ``predict`` computes it for a categorical feature (labels are strings, integers
    given as their decimal text)."""
    from catboost import Pool

    if not texts:
        return []
    pool = Pool(pd.DataFrame({"c": pd.Series(list(texts), dtype=object)}), cat_features=[0])
    with tempfile.TemporaryDirectory(prefix="shapgov-catboost-") as tmp:
        path = os.path.join(tmp, "hashes.json")
        _hashing_model().save_model(path, format="json", pool=pool)
        with open(path, encoding="utf-8") as fh:
            listed = json.load(fh)["features_info"]["cat_features_hash"]
    by_text = {entry["value"]: int(entry["hash"]) for entry in listed}
    return [by_text[t] for t in texts]


def raw_formula(model: Any, X: Any) -> np.ndarray:
    """The model's raw formula on ``X``: ``predict(prediction_type="RawFormulaVal")``; a
    ``CatBoostRanker``'s ``predict`` takes no prediction type and returns it already."""
    if "catboost.core.CatBoostRanker" in class_path_set(model):
        return np.asarray(model.predict(X))
    return np.asarray(model.predict(X, prediction_type="RawFormulaVal"))


def _trees(model: Any) -> CatBoostTrees:
    return CatBoostTrees(model_json(model))


def model_shape(model: Any) -> tuple[int, list[int], int]:
    """``(input columns, categorical columns, outputs K)`` from the model itself (no JSON
    export: the tree explainer reads that once, later).

    :raises UnsupportedModelError: The model has text or embedding features (its JSON
        export cannot hold them).
    """
    text = list(model.get_text_feature_indices() or [])
    embedding = list(model.get_embedding_feature_indices() or [])
    if text or embedding:
        raise UnsupportedModelError(
            "CatBoost text and embedding features cannot be read from the model's JSON "
            "export; explain the model as a whole (opaque=True, the Kernel explainer)"
        )
    bias = model.get_scale_and_bias()[1]
    k = max(1, len(bias)) if isinstance(bias, (list, tuple, np.ndarray)) else 1
    names = list(getattr(model, "feature_names_", None) or [])
    return len(names), sorted(int(i) for i in model.get_cat_feature_indices()), k


@hookimpl(trylast=True)
def shapgov_tree_ensemble(model: Any) -> TreeEnsemble | None:
    if not is_catboost(model):
        return None
    return _trees(model).ensemble()


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    if not is_catboost(model):
        return None
    paths = class_path_set(model)
    n_features, categorical, k = model_shape(model)
    if "catboost.core.CatBoostClassifier" in paths:
        link = loss_link(model)
        if link not in (LOGIT, SOFTMAX):
            raise UndecomposableModelError(
                f"CatBoostClassifier with loss {loss_name(model)!r}: its probabilities have "
                "no single link to the raw formula; explain it with opaque=True"
            )
        prediction = "predict_proba"
    elif "catboost.core.CatBoostRegressor" in paths or "catboost.core.CatBoostRanker" in paths:
        link, prediction = loss_link(model), "predict"
        if k != 1:
            raise UndecomposableModelError(
                f"CatBoost loss {loss_name(model)!r} predicts {k} values per row; explain it "
                "with opaque=True"
            )
    else:  # a bare CatBoost predicts its raw formula
        link, prediction = IDENTITY, "predict"
    encoding = CatBoostEncoding(model, n_features=n_features, categorical=categorical)
    node = context.leaf(
        model, n_margins=k, link=link, prediction=prediction, margin_method=None, allow_nan=True
    )
    vertex = replace(node.vertices[0], margin=encoding.margin)
    node = replace(node, vertices=(vertex,))
    return node.under(encoding, np.arange(n_features), "CatBoost hashes of categories")


class CatBoostEncoding:
    """The table as CatBoost's trees compare it (see the module doc), and back.

    Calling it encodes a DataFrame (or array) ``(n, M)`` into float64 ``(n, M)``;
    :meth:`margin` decodes such a matrix (any mix of encoded rows) and returns the model's
    raw formula ``(n, K)``. Hashes are remembered per column as they are met, so every
    code the explainers build hybrid rows from decodes to its label.
    """

    def __init__(self, model: Any, *, n_features: int, categorical: list[int]) -> None:
        self.model = model
        self.n_features = n_features
        self.categorical = list(categorical)
        names = list(getattr(model, "feature_names_", None) or range(self.n_features))
        self.names = names
        self.labels: dict[int, dict[int, str]] = {j: {} for j in self.categorical}

    @classmethod
    def of(cls, model: Any) -> CatBoostEncoding:
        """The encoding of a fitted CatBoost model (its shape read by :func:`model_shape`)."""
        n_features, categorical, _ = model_shape(model)
        return cls(model, n_features=n_features, categorical=categorical)

    def __call__(self, X: Any) -> np.ndarray:
        frame = self._frame(X)
        out = np.empty((len(frame), self.n_features))
        for j in range(self.n_features):
            col = frame.iloc[:, j]
            name = frame.columns[j]
            if j in self.labels:
                out[:, j] = self._hashes(col, name, j)
            else:
                out[:, j] = as_float_matrix(col.to_frame())[:, 0]
        return out

    def _frame(self, X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            frame = X
        else:
            arr = np.asarray(X)
            arr = arr.reshape(len(arr), -1)
            names = self.names if arr.shape[1] == len(self.names) else None
            frame = pd.DataFrame(arr, columns=names)
        if frame.shape[1] != self.n_features:
            raise InputError(
                f"the CatBoost model takes {self.n_features} columns ({self.names}); got "
                f"{frame.shape[1]}: pass the columns it was trained on"
            )
        return frame

    def _hashes(self, col: pd.Series, name: Any, j: int) -> np.ndarray:
        values = col.astype(object)
        if values.isna().any():
            raise InputError(
                f"column {name!r} is a CatBoost categorical feature and holds missing values; "
                "CatBoost refuses them too: fill them with a label of their own (e.g. "
                f"X[{name!r}] = X[{name!r}].astype(object).fillna('missing')), as at fit"
            )
        uniques = pd.unique(values)
        as_text = [self._label(v, name) for v in uniques]
        hashes = self._catboost_hashes(as_text)
        table = self.labels[j]
        for text, h in zip(as_text, hashes, strict=True):
            table.setdefault(h, text)
        lookup = dict(zip(uniques, hashes, strict=True))
        return np.fromiter((lookup[v] for v in values), dtype=np.float64, count=len(values))

    @staticmethod
    def _label(v: Any, name: Any) -> str:
        if isinstance(v, str):
            return v
        if isinstance(v, (bool, np.bool_)):
            raise InputError(
                f"column {name!r} (a CatBoost categorical feature) holds the boolean {v!r}; "
                "pass its labels as strings or integers, as at fit"
            )
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))  # an integer label in a numeric table (read as float)
        raise InputError(
            f"column {name!r} is a CatBoost categorical feature and holds {v!r} "
            f"({type(v).__name__}); CatBoost takes strings or integers there: convert "
            "the column as at fit"
        )

    @staticmethod
    def _catboost_hashes(texts: list[str]) -> list[int]:
        return catboost_hashes(texts)

    def decode(self, Z: np.ndarray) -> pd.DataFrame:
        """Encoded rows back to a table the model predicts on."""
        Z = np.asarray(Z, dtype=float).reshape(len(Z), -1)
        cols: dict[Any, Any] = {}
        for j, name in enumerate(self.names):
            if j in self.labels:
                table = self.labels[j]
                try:
                    cols[name] = [table[int(h)] for h in Z[:, j]]
                except KeyError as err:
                    raise InputError(
                        f"column {name!r}: hash {err.args[0]} was never encoded by this "
                        "model's encoding; encode rows before decoding them"
                    ) from err
            else:
                cols[name] = Z[:, j]
        return pd.DataFrame(cols)

    def margin(self, Z: Any) -> np.ndarray:
        """The raw formula ``(n, K)`` of encoded rows ``Z`` (CatBoost's
        ``prediction_type='RawFormulaVal'``)."""
        out = raw_formula(self.model, self.decode(Z))
        return out.astype(float).reshape(len(out), -1)
