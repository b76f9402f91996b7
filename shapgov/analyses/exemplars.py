"""XEMP-style exemplar explanations (after DataRobot's XEMP).

For a row x and a feature j, the strength is how far the row's prediction sits from the
average of its ICE curve over exemplar values of j:

    strength_j(x) = f(x) - sum_e w_e f(x with x_j := e)

Exemplars come from the training data: every distinct value of j with its frequency as
weight when there are at most ``n_exemplars`` of them, else the medians of
``n_exemplars`` equal-frequency bins with equal weights (missing values, if any, are one
more exemplar weighted by their share). A group of columns (e.g. one-hot columns of one
feature) is replaced together, by its most frequent joint values.

Qualitative symbols use ``q = strength / (sum of the 10 largest |strengths| of the row)``
and cut points scaled to the number of evaluated features m (capped to 2..10):
``strong = 0.75 * 2 / m`` and ``medium = 0.25 * 2 / m``; ``|q| < 0.001`` is trivial.
For m = 2 these are DataRobot's published cut points; :func:`cut_points` prints the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import InputError

TRIVIAL = 0.001
DEFAULT_EXEMPLARS = 20
DEFAULT_MAX_FEATURES = 50
_BATCH_ROWS = 1 << 16


def cut_points(n_features: int) -> dict[str, float]:
    """The symbol thresholds used for a row with ``n_features`` evaluated features."""
    m = min(max(n_features, 2), 10)
    return {"strong": 0.75 * 2 / m, "medium": 0.25 * 2 / m, "trivial": TRIVIAL}


def symbols(q: np.ndarray, n_features: int) -> np.ndarray:
    """``+++ ++ + trivial - -- ---`` for normalized strengths ``q``."""
    c = cut_points(n_features)
    out = np.full(q.shape, "trivial", dtype=object)
    out[q >= c["trivial"]] = "+"
    out[q > c["medium"]] = "++"
    out[q > c["strong"]] = "+++"
    out[q <= -c["trivial"]] = "-"
    out[q < -c["medium"]] = "--"
    out[q < -c["strong"]] = "---"
    out[np.isnan(q)] = ""
    return out


@dataclass(frozen=True)
class XempExplanation:
    """Strengths ``(n, F, K)`` for the evaluated features (others NaN), in prediction space."""

    strengths: np.ndarray
    q: np.ndarray
    features: list[str]
    evaluated: list[str]
    data: pd.DataFrame
    prediction: np.ndarray
    classes: list[Any] | None
    params: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Long format: row, output, feature, value, strength, q, symbol (evaluated only)."""
        lines = []
        n_eval = len(self.evaluated)
        for o in range(self.strengths.shape[2]):
            sym = symbols(self.q[:, :, o], n_eval)
            for i in range(self.strengths.shape[0]):
                for j, name in enumerate(self.features):
                    if name not in self.evaluated:
                        continue
                    lines.append(
                        {
                            "row": i,
                            "output": None if self.classes is None else self.classes[o],
                            "feature": name,
                            "value": _plain(self.data.iloc[i][name])
                            if name in self.data.columns
                            else None,
                            "strength": float(self.strengths[i, j, o]),
                            "q": float(self.q[i, j, o]),
                            "symbol": sym[i, j],
                        }
                    )
        return pd.DataFrame(lines)

    def to_dict(self) -> dict[str, Any]:
        from shapgov.analyses.impact import json_records

        return {
            "params": self.params,
            "cut_points": cut_points(len(self.evaluated)),
            "rows": json_records(self.to_frame()),
        }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def exemplars(column: pd.DataFrame, n_exemplars: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Exemplar values of one feature (one or several columns) and their weights."""
    if n_exemplars < 1:
        raise InputError(f"n_exemplars must be at least 1, got {n_exemplars}")
    if len(column) == 0:
        raise InputError("the training data is empty; exemplars need training rows")
    counts = column.value_counts(dropna=False, normalize=True, sort=True)
    numeric = column.shape[1] == 1 and pd.api.types.is_numeric_dtype(column.iloc[:, 0])
    if len(counts) <= n_exemplars or not numeric:
        top = counts.iloc[:n_exemplars]
        values = pd.DataFrame(list(top.index), columns=column.columns)
        return values, (top / top.sum()).to_numpy()
    col = column.iloc[:, 0]
    present = col.dropna().sort_values().to_numpy()
    bins = np.array_split(present, n_exemplars)
    vals = [float(np.median(b)) for b in bins if len(b)]
    weights = [len(b) / len(col) for b in bins if len(b)]
    missing = col.isna().mean()
    if missing > 0:
        vals.append(np.nan)
        weights.append(missing)
    w = np.asarray(weights)
    return pd.DataFrame({column.columns[0]: vals}), w / w.sum()


def xemp(
    model: Any,
    X: pd.DataFrame,
    *,
    training: pd.DataFrame,
    n_exemplars: int = DEFAULT_EXEMPLARS,
    max_features: int = DEFAULT_MAX_FEATURES,
    impact: Any = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    plugin_manager: Any = None,
) -> XempExplanation:
    """XEMP strengths of every row of ``X`` for the top ``max_features`` features.

    :param training: Rows the exemplar values come from.
    :param impact: A :class:`shapgov.analyses.impact.FeatureImpact` that ranks the
        features; needed only when there are more than ``max_features`` of them.
    :param groups: Columns replaced together under one feature name.
    :param plugin_manager: The plugin manager that decomposes the model.
    """
    from shapgov.engine import decompose
    from shapgov.validation import as_frame, same_columns

    blueprint = decompose(model, plugin_manager=plugin_manager)
    frame = as_frame(X, blueprint.model)
    train = as_frame(training, blueprint.model, what="training")
    same_columns(train, frame)
    if len(frame) == 0:
        raise InputError("X is empty; pass at least one row to explain")
    groups = {name: list(cols) for name, cols in (groups or {}).items()}
    grouped = {c for cols in groups.values() for c in cols}
    unknown = grouped - set(frame.columns)
    if unknown:
        raise InputError(f"groups name columns that X does not have: {sorted(unknown)}")
    units = dict(groups)
    units.update({str(c): [c] for c in frame.columns if c not in grouped})
    names = list(units)
    if len(names) > max_features:
        if impact is None:
            raise InputError(
                f"{len(names)} features exceed max_features={max_features}; pass impact= "
                "(e.g. shapgov.feature_impact(...)) to choose the top ones, or raise "
                "max_features"
            )
        ranked = [f for f in impact.frame["feature"] if f in units]
        evaluated = ranked[:max_features]
    else:
        evaluated = names

    def predict(data: pd.DataFrame) -> np.ndarray:
        inp = data if hasattr(blueprint.model, "feature_names_in_") else data.to_numpy()
        return blueprint.predict(inp)

    base = predict(frame)  # (n, K)
    n, k = base.shape
    strengths = np.full((n, len(names), k), np.nan)
    for name in evaluated:
        cols = units[name]
        values, weights = exemplars(train[cols], n_exemplars)
        e = len(values)
        step = max(1, _BATCH_ROWS // e)
        for start in range(0, n, step):
            rows = frame.iloc[start : start + step]
            grid = rows.loc[rows.index.repeat(e)].reset_index(drop=True)
            for c in cols:
                grid[c] = np.tile(values[c].to_numpy(), len(rows))
                grid[c] = grid[c].astype(frame[c].dtype, errors="ignore")
            pred = predict(grid).reshape(len(rows), e, k)
            own = base[start : start + len(rows)]
            # f(x) - sum_e w_e f_e, summed as differences: exactly 0 for a dummy feature
            strengths[start : start + len(rows), names.index(name)] = -np.einsum(
                "rek,e->rk", pred - own[:, None, :], weights
            )
    top10 = np.sort(np.nan_to_num(np.abs(strengths)), axis=1)[:, ::-1][:, :10].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(top10[:, None, :] > 0, strengths / top10[:, None, :], 0.0)
    q[np.isnan(strengths)] = np.nan
    classes = getattr(blueprint.model, "classes_", None)
    return XempExplanation(
        strengths=strengths,
        q=q,
        features=names,
        evaluated=evaluated,
        data=frame.reset_index(drop=True),
        prediction=base,
        classes=None if classes is None or k == 1 else list(classes),
        params={
            "n_exemplars": n_exemplars,
            "max_features": max_features,
            "rows": n,
            "groups": {name: [str(c) for c in cols] for name, cols in groups.items()},
        },
    )
