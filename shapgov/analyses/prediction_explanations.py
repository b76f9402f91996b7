"""Prediction Explanations: per row, the features that moved its prediction most."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shapgov.combination.explanation import Explanation
from shapgov.errors import InputError

COLUMNS = ["row", "output", "prediction", "rank", "feature", "value", "dtype", "shap", "others"]


def prediction_explanations(
    explanation: Explanation,
    *,
    k: int = 3,
    low: float | None = None,
    high: float | None = None,
) -> pd.DataFrame:
    """The top ``k`` features by ``|SHAP|`` of every row (and class), one line per feature.

    Columns: ``row`` (the row's key: ``X``'s index label, or its position for an array),
    ``output`` (class label for multiclass, the output's position 0..K-1 for a regressor
    of K targets, else None), ``prediction`` (in the model's prediction space), ``rank``
    (1 = largest ``|SHAP|``), ``feature``, ``value`` (the row's feature value; missing: NaN,
    ``None`` or ``pd.NA`` as the column holds it), ``dtype`` (the column's pandas dtype),
    ``shap`` (in the explained space) and ``others`` (the summed SHAP of the features
    outside the top k).

    :param low: Only rows whose prediction is below ``low`` ...
    :param high: ... or above ``high`` are explained (DataRobot's thresholds); with neither,
        every row is.
    """
    n_features = len(explanation.feature_names)
    if not 1 <= k <= n_features:
        raise InputError(f"k must be between 1 and the number of features ({n_features}), got {k}")
    if low is not None and high is not None and low > high:
        raise InputError(f"low ({low}) must not exceed high ({high})")
    raw = explanation._raw
    prediction = explanation.link.inverse(explanation.explained_output)
    labels = None  # several outputs: the class labels, else (multi-output regression) 0..K-1
    if explanation.n_outputs > 1:
        labels = explanation.classes or list(range(explanation.n_outputs))
    names = np.empty(n_features, dtype=object)
    names[:] = list(explanation.feature_names)
    dtypes = np.array([str(t) for t in explanation.data.dtypes], dtype=object)
    parts = []
    for o in range(explanation.n_outputs):
        values = raw[:, :, o]
        order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
        pred = prediction[:, o]
        keep = np.ones(len(pred), dtype=bool)
        if low is not None or high is not None:
            keep = np.zeros(len(pred), dtype=bool)
            if low is not None:
                keep |= pred < low
            if high is not None:
                keep |= pred > high
        rows = np.flatnonzero(keep)
        top = order[rows]  # (r, k)
        shap = np.take_along_axis(values[rows], top, axis=1)
        others = values[rows].sum(axis=1) - shap.sum(axis=1)
        features = top.ravel()
        row = np.repeat(rows, k)
        parts.append(
            pd.DataFrame(
                {
                    "row": explanation.data.index.to_numpy()[row],
                    "output": np.full(row.size, None if labels is None else labels[o], object),
                    "prediction": np.repeat(pred[rows], k),
                    "rank": np.tile(np.arange(1, k + 1), rows.size),
                    "feature": names[features],
                    "value": _cells(explanation.data, row, features),
                    "dtype": dtypes[features],
                    "shap": shap.ravel(),
                    "others": np.repeat(others, k),
                },
                columns=COLUMNS,
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def _cells(data: pd.DataFrame, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``data.iloc[rows[i], columns[i]]`` for every i, as Python values (missing values as
    the column holds them), gathered column by column."""
    out = np.empty(rows.size, dtype=object)
    for j in np.unique(columns):
        pick = columns == j
        out[pick] = data.iloc[:, j].to_numpy(dtype=object)[rows[pick]]
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per explained row (and output) with its top features; write it with
    :func:`shapgov.sinks.strict_json.dumps` (missing values become ``null``, their
    column's ``dtype`` beside them)."""
    out = []
    for (row, output), group in frame.groupby(["row", "output"], dropna=False, sort=True):
        out.append(
            {
                "row": _plain(row),
                "output": None if pd.isna(output) else _plain(output),
                "prediction": float(group["prediction"].iloc[0]),
                "others": float(group["others"].iloc[0]),
                "features": [
                    {"feature": f, "value": _plain(v), "dtype": t, "shap": float(s)}
                    for f, v, t, s in zip(
                        group["feature"], group["value"], group["dtype"], group["shap"], strict=True
                    )
                ],
            }
        )
    return out
