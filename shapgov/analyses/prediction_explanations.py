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
    """The top ``k`` features by |SHAP| of every row (and class), one line per feature.

    Columns: ``row`` (position in the explanation), ``output`` (class label for multiclass,
    else None), ``prediction`` (in the model's prediction space), ``rank`` (1 = largest
    |SHAP|), ``feature``, ``value`` (the row's feature value; missing: NaN, ``None`` or ``pd.NA`` as
    the column holds it), ``dtype`` (the column's pandas dtype), ``shap`` (in the explained
    space) and ``others`` (the summed SHAP of the features outside the top k).

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
    labels = explanation.classes if explanation.n_outputs > 1 else None
    dtypes = [str(t) for t in explanation.data.dtypes]
    lines = []
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
        for i in np.flatnonzero(keep):
            top = order[i]
            others = float(values[i].sum() - values[i, top].sum())
            for rank, j in enumerate(top, start=1):
                lines.append(
                    (
                        int(i),
                        None if labels is None else labels[o],
                        float(pred[i]),
                        rank,
                        explanation.feature_names[j],
                        _plain(explanation.data.iloc[i, j]),
                        dtypes[j],
                        float(values[i, j]),
                        others,
                    )
                )
    return pd.DataFrame(lines, columns=COLUMNS)


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
                "row": int(row),
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
