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
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from shapgov.analyses.tables import cast_like, json_records
from shapgov.errors import InputError, UnsupportedModelError
from shapgov.registry import sharing_parses

TRIVIAL = 0.001
DEFAULT_EXEMPLARS = 20
DEFAULT_MAX_FEATURES = 50
_BATCH_ROWS = 1 << 16


def cut_points(n_features: int) -> dict[str, float]:
    """The symbol thresholds used for a row with ``n_features`` evaluated features."""
    m = min(max(n_features, 2), 10)
    return {"strong": 0.75 * 2 / m, "medium": 0.25 * 2 / m, "trivial": TRIVIAL}


#: Symbols by code (:func:`symbol_codes`): ``""`` marks a feature XEMP did not evaluate.
SYMBOL_TEXT = ("", "+++", "++", "+", "trivial", "-", "--", "---")


def symbol_codes(q: np.ndarray, n_features: int) -> np.ndarray:
    """Indexes into :data:`SYMBOL_TEXT` for normalized strengths ``q`` (0 where NaN)."""
    c = cut_points(n_features)
    with np.errstate(invalid="ignore"):
        conditions = [
            np.isnan(q),
            q > c["strong"],
            q > c["medium"],
            q >= c["trivial"],
            q < -c["strong"],
            q < -c["medium"],
            q <= -c["trivial"],
        ]
    return np.select(conditions, [0, 1, 2, 3, 7, 6, 5], default=4).astype(np.int8)


def symbols(q: np.ndarray, n_features: int) -> np.ndarray:
    """``+++ ++ + trivial - -- ---`` for normalized strengths ``q`` (``""`` where NaN)."""
    return np.asarray(SYMBOL_TEXT, dtype=object)[symbol_codes(q, n_features)]


@dataclass(frozen=True)
class XempExplanation:
    """Strengths ``(n, F, K)`` for the evaluated features (others NaN), in prediction space.

    ``params["method"]`` says how the ICE values were computed: ``"trees"`` (walking the
    trees, no predict calls) or ``"predict"`` (the model's predict on exemplar grids).
    """

    strengths: np.ndarray
    q: np.ndarray
    features: list[str]
    evaluated: list[str]
    data: pd.DataFrame
    prediction: np.ndarray
    classes: list[Any] | None
    params: dict[str, Any] = field(default_factory=dict)

    def to_frame(self, *, values: bool = True) -> pd.DataFrame:
        """Long format, one line per (output, row, evaluated feature) in that order: row,
        output, feature, value (the row's value; left out with ``values=False``),
        strength, q, symbol."""
        n, _, k = self.strengths.shape
        cols = [self.features.index(f) for f in self.features if f in self.evaluated]
        names = np.array([self.features[j] for j in cols], dtype=object)
        m = len(cols)
        sym = symbols(self.q[:, cols, :], len(self.evaluated))  # (n, m, K)
        rows = np.tile(np.repeat(np.arange(n), m), k)
        out: dict[str, Any] = {"row": rows}
        if self.classes is None:
            out["output"] = np.full(n * m * k, None, dtype=object)
        else:
            out["output"] = np.repeat(np.asarray(self.classes, dtype=object), n * m)
        out["feature"] = np.tile(names, n * k)
        if values:
            cells = np.full((n, m), None, dtype=object)
            for pos, j in enumerate(cols):
                name = self.features[j]
                if name in self.data.columns:
                    cells[:, pos] = self.data[name].to_numpy(dtype=object)
            out["value"] = np.tile(cells.ravel(), k)
        out["strength"] = self.strengths[:, cols, :].transpose(2, 0, 1).ravel()
        out["q"] = self.q[:, cols, :].transpose(2, 0, 1).ravel()
        out["symbol"] = sym.transpose(2, 0, 1).ravel()
        return pd.DataFrame(out)

    @cached_property
    def _codes(self) -> np.ndarray:
        """Symbol codes ``(n, F, K)`` of every feature (0, no symbol, where not evaluated)."""
        return symbol_codes(self.q, len(self.evaluated))

    def stored_frame(self) -> pd.DataFrame:
        """:meth:`to_frame` without values, as parquet stores it: ``output``, ``feature``
        and ``symbol`` are categorical (built from codes: no Python object per line)."""
        n, _, k = self.strengths.shape
        cols = [self.features.index(f) for f in self.features if f in self.evaluated]
        m = len(cols)
        q = self.q[:, cols, :].transpose(2, 0, 1).ravel()
        codes = self._codes[:, cols, :].transpose(2, 0, 1).ravel()
        if self.classes is None:
            output = pd.Categorical.from_codes(np.full(n * m * k, -1), categories=["None"])
        else:
            labels = [str(c) for c in self.classes]
            output = pd.Categorical.from_codes(np.repeat(np.arange(k), n * m), categories=labels)
        names = [str(self.features[j]) for j in cols]
        return pd.DataFrame(
            {
                "row": np.tile(np.repeat(np.arange(n), m), k),
                "output": output,
                "feature": pd.Categorical.from_codes(np.tile(np.arange(m), n * k), names),
                "strength": self.strengths[:, cols, :].transpose(2, 0, 1).ravel(),
                "q": q,
                "symbol": pd.Categorical.from_codes(codes, list(SYMBOL_TEXT)),
            }
        )

    def summary(self) -> pd.DataFrame:
        """Per evaluated feature (and output): mean ``|strength|`` and the share of rows per
        symbol; bounded by the number of features whatever the row count."""
        cols = [self.features.index(f) for f in self.evaluated]
        n, _, k = self.strengths.shape
        codes = self._codes[:, cols, :]  # (n, m, K) in evaluated order
        m = len(cols)
        # counts[o, j, c]: rows of output o whose feature j has symbol code c
        flat = (np.arange(k)[None, None, :] * m + np.arange(m)[None, :, None]) * 8 + codes
        counts = np.bincount(flat.ravel(), minlength=k * m * 8).reshape(k, m, 8) / n
        with np.errstate(invalid="ignore"):
            mean_abs = np.nanmean(np.abs(self.strengths[:, cols, :]), axis=0)  # (m, K)
        frame = pd.DataFrame(
            {
                "output": np.repeat(
                    np.asarray([None] if self.classes is None else self.classes, dtype=object),
                    m,
                ),
                "feature": np.tile(np.asarray([self.features[j] for j in cols], object), k),
                "mean_abs_strength": mean_abs.T.ravel(),
            }
        )
        for code, text in enumerate(SYMBOL_TEXT):
            if text:
                frame[f"share_{text}"] = counts[:, :, code].ravel()
        return frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (per-row strengths go to parquet: :meth:`to_frame`)."""

        return {
            "params": self.params,
            "cut_points": cut_points(len(self.evaluated)),
            "evaluated": list(self.evaluated),
            "features": json_records(self.summary()),
        }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def exemplars(column: pd.DataFrame, n_exemplars: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Exemplar values of one feature (one or several columns) and their weights."""
    if n_exemplars < 1:
        raise InputError(f"n_exemplars must be at least 1, got {n_exemplars}")
    if len(column) == 0:
        raise InputError("the training data is empty; exemplars need training rows")
    numeric = column.shape[1] == 1 and pd.api.types.is_numeric_dtype(column.iloc[:, 0])
    if numeric and not pd.api.types.is_bool_dtype(column.iloc[:, 0]):
        col = column.iloc[:, 0]
        values = col.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(values)
        present = np.sort(values[~missing])
        distinct = int(present.size > 0) + int((present[1:] != present[:-1]).sum())
        if distinct + int(missing.any()) > n_exemplars:  # medians of equal-frequency bins
            bins = np.array_split(present, n_exemplars)
            vals = [_median_sorted(b) for b in bins if len(b)]
            weights = [len(b) / len(col) for b in bins if len(b)]
            if missing.any():
                vals.append(np.nan)
                weights.append(missing.mean())
            w = np.asarray(weights)
            return pd.DataFrame({column.columns[0]: vals}), w / w.sum()
    # every distinct value (the most frequent n_exemplars) weighted by its frequency
    counts = column.value_counts(dropna=False, normalize=True, sort=True)
    top = counts.iloc[:n_exemplars]
    values = pd.DataFrame(list(top.index), columns=column.columns)
    return values, (top / top.sum()).to_numpy()


def _median_sorted(b: np.ndarray) -> float:
    """``np.median`` of a sorted array: the middle value, or the mean of the middle two."""
    m = len(b)
    return float(b[m // 2]) if m % 2 else float((b[m // 2 - 1] + b[m // 2]) / 2)


@sharing_parses
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
    method: str = "auto",
) -> XempExplanation:
    """XEMP strengths of every row of ``X`` for the top ``max_features`` features.

    Cost: for a model made of trees shapgov parses, the ICE values come from walking the
    trees (``shapgov.analyses.tree_walks``; about one prediction pass or less per
    feature, no predict calls beyond one of ``X``); otherwise one predict call per feature
    and block of rows, on every (row, exemplar) pair of the block.

    :param training: Rows the exemplar values come from.
    :param impact: A :class:`shapgov.analyses.impact.FeatureImpact` that ranks the
        features; needed only when there are more than ``max_features`` of them.
    :param groups: Columns replaced together under one feature name.
    :param plugin_manager: The plugin manager that decomposes the model.
    :param method: ``"auto"`` (walk the trees when the model is made of trees and the
        walk reproduces its predictions, else predict), ``"trees"`` (raise
        :class:`UnsupportedModelError` when the trees cannot be walked) or ``"predict"``.
    :returns: The strengths ``(n, F, K)``, in the model's prediction space.
    :raises InputError: Bad data, groups or options.
    """
    if method not in ("auto", "trees", "predict"):
        raise InputError(f"method must be 'auto', 'trees' or 'predict', got {method!r}")
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
    chosen = {name: units[name] for name in evaluated}
    tables = [exemplars(train[cols], n_exemplars) for cols in chosen.values()]
    strengths = np.full((n, len(names), k), np.nan)
    positions = [names.index(name) for name in chosen]
    used, reason = "predict", None
    if method in ("auto", "trees") and chosen:
        from shapgov.analyses.tree_walks import exemplar_route
        from shapgov.registry import PluginCalls, resolve_plugin_manager

        plugins = PluginCalls(resolve_plugin_manager(plugin_manager))
        routed = exemplar_route(blueprint, frame, chosen, tables, plugins, base)
        if isinstance(routed, str):
            if method == "trees":
                raise UnsupportedModelError(f"XEMP cannot walk the trees: {routed}")
            reason = routed
        else:
            base, strengths[:, positions] = routed
            used = "trees"
    if used == "predict":
        for pos, cols, (values, weights) in zip(positions, chosen.values(), tables, strict=True):
            strengths[:, pos] = _predicted_strengths(predict, frame, base, cols, values, weights)
    top10 = np.sort(np.nan_to_num(np.abs(strengths)), axis=1)[:, ::-1][:, :10].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(top10[:, None, :] > 0, strengths / top10[:, None, :], 0.0)
    q[np.isnan(strengths)] = np.nan
    classes = getattr(blueprint.model, "classes_", None)
    if k > 1 and classes is None:  # a regressor of K targets: outputs 0..K-1
        classes = list(range(k))
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
            "method": used,
            **({"fallback_reason": reason} if reason else {}),
        },
    )


def _predicted_strengths(
    predict: Any,
    frame: pd.DataFrame,
    base: np.ndarray,
    cols: Sequence[Any],
    values: pd.DataFrame,
    weights: np.ndarray,
) -> np.ndarray:
    """Strengths ``(n, K)`` of one feature from the model's predictions of every
    (row, exemplar) pair, one call per block of rows."""
    n, k = base.shape
    e = len(values)
    out = np.empty((n, k))
    step = max(1, _BATCH_ROWS // e)
    for start in range(0, n, step):
        rows = frame.iloc[start : start + step]
        grid = rows.iloc[np.repeat(np.arange(len(rows)), e)].reset_index(drop=True)
        for c in cols:
            column = pd.Series(np.tile(values[c].to_numpy(dtype=object), len(rows)))
            grid[c] = cast_like(column, frame[c])
        pred = predict(grid).reshape(len(rows), e, k)
        own = base[start : start + len(rows)]
        # f(x) - sum_e w_e f_e, summed as differences: exactly 0 for a dummy feature
        out[start : start + len(rows)] = -np.einsum("rek,e->rk", pred - own[:, None, :], weights)
    return out
