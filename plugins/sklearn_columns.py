"""Built-in plugin: trace scikit-learn transformer outputs back to their input columns.

Known per-column transformers are traced by naming their inputs with unique tokens and
reading ``get_feature_names_out``; ColumnTransformer and Pipeline compose their parts.
Anything else is refused, so SHAP values are never attributed to the wrong column.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.decomposition.context import DecomposeContext
from shapgov.planning.compatibility import class_path_set

_PER_COLUMN = {
    "sklearn.preprocessing.StandardScaler",
    "sklearn.preprocessing.MinMaxScaler",
    "sklearn.preprocessing.MaxAbsScaler",
    "sklearn.preprocessing.RobustScaler",
    "sklearn.preprocessing.PowerTransformer",
    "sklearn.preprocessing.QuantileTransformer",
    "sklearn.preprocessing.OneHotEncoder",
    "sklearn.preprocessing.OrdinalEncoder",
    "sklearn.preprocessing.KBinsDiscretizer",
    "sklearn.preprocessing.SplineTransformer",
    "sklearn.impute.SimpleImputer",
    "sklearn.impute.MissingIndicator",
}
_TOKEN = re.compile(r"__sgcol(\d+)__")


def _origins_by_names(transformer: Any, n_features_in: int) -> np.ndarray | None:
    """Trace outputs to inputs by naming input columns with unique tokens."""
    tokens = np.array([f"__sgcol{i}__" for i in range(n_features_in)], dtype=object)
    probe = copy.copy(transformer)  # a shallow copy: the user's object is not touched
    if hasattr(probe, "feature_names_in_"):
        probe.feature_names_in_ = tokens
    try:
        names = probe.get_feature_names_out(tokens)
    except (AttributeError, ValueError, TypeError):
        return None
    origins = []
    for name in names:
        found = set(_TOKEN.findall(str(name)))
        if len(found) != 1:
            return None
        origins.append(int(found.pop()))
    return np.asarray(origins, dtype=np.int64)


def _column_transformer_origins(
    ct: Any, n_features_in: int, ctx: DecomposeContext
) -> np.ndarray | None:
    total = max((s.stop for s in ct.output_indices_.values()), default=0)
    out = np.full(total, -1, dtype=np.int64)
    for name, trans, _ in ct.transformers_:
        sl = ct.output_indices_[name]
        if trans == "drop" or sl.stop == sl.start:
            continue
        idx = np.asarray(ct._transformer_to_input_indices[name], dtype=np.int64)
        sub = ctx.trace_columns(trans, len(idx))
        if sub is None or len(sub) != sl.stop - sl.start:
            return None
        out[sl] = np.where(sub >= 0, idx[np.maximum(sub, 0)], -1)
    return out


def _pipeline_origins(pipe: Any, n_features_in: int, ctx: DecomposeContext) -> np.ndarray | None:
    origins = np.arange(n_features_in)
    n = n_features_in
    for _, step in pipe.steps:
        sub = ctx.trace_columns(step, n)
        if sub is None:
            return None
        origins = np.where(sub >= 0, origins[np.maximum(sub, 0)], -1)
        n = len(sub)
    return origins


@hookimpl(trylast=True)
def shapgov_column_origins(
    transformer: Any, n_features_in: int, context: DecomposeContext
) -> np.ndarray | None:
    paths = class_path_set(transformer)
    if "sklearn.compose.ColumnTransformer" in paths:
        return _column_transformer_origins(transformer, n_features_in, context)
    if "sklearn.pipeline.Pipeline" in paths:
        return _pipeline_origins(transformer, n_features_in, context)
    if "sklearn.preprocessing.FunctionTransformer" in paths:
        func = transformer.func
        return np.arange(n_features_in) if func is None or isinstance(func, np.ufunc) else None
    if paths & _PER_COLUMN:
        return _origins_by_names(transformer, n_features_in)
    return None
