"""Shared parts of :mod:`shapgov.sinks.plots`: the colour palette, label and tick
helpers, input checks and the small computations the plots share."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.text import Text

from shapgov.analyses.impact import FeatureImpact
from shapgov.combination.explanation import Explanation
from shapgov.errors import InputError

# Okabe & Ito (2008), "Color Universal Design": distinguishable under common colour
# vision deficiencies.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
POSITIVE_COLOR = OKABE_ITO["vermillion"]  # SHAP value > 0: pushes the output up
NEGATIVE_COLOR = OKABE_ITO["blue"]  # SHAP value < 0: pushes the output down
SHAP_COLOR = OKABE_ITO["blue"]
PERMUTATION_COLOR = OKABE_ITO["orange"]
NEUTRAL_COLOR = "#BBBBBB"  # non-numeric or missing feature values, grouped rows
CATEGORY_COLORS: tuple[str, ...] = (
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["yellow"],
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["black"],
)
FEATURE_CMAP = "cividis"  # perceptually uniform and colorblind-safe
MAX_LABEL = 40  # characters of a feature name shown in tick labels
MAX_VALUE_LABEL = 20  # characters of a feature value shown in "name = value" labels
_ELLIPSIS = "…"
_ROW_HEIGHT = 0.38  # inches per displayed row


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, max(2.6, height)), layout="constrained")


def _cmap() -> Any:
    from matplotlib import colormaps

    return colormaps[FEATURE_CMAP]


def _check_explanation(explanation: Any, *, rows: bool) -> None:
    if not isinstance(explanation, Explanation):
        raise InputError(
            f"expected a shapgov Explanation, got {type(explanation).__name__}; "
            "build one with shapgov.explain(model, X)"
        )
    if rows and len(explanation) == 0:
        raise InputError("the explanation has no rows; explain a non-empty sample")


def _check_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise InputError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise InputError(f"{what} must be an integer, got {value!r}") from None


def _check_max_display(max_display: Any) -> int:
    max_display = _check_int(max_display, "max_display")
    if max_display < 2:
        raise InputError(
            f"max_display must be at least 2 (one feature plus the 'other' group), "
            f"got {max_display}"
        )
    return max_display


def _check_output(explanation: Explanation, output: Any) -> int:
    output = _check_int(output, "output")
    k = explanation.n_outputs
    if not 0 <= output < k:
        classes = f" (classes {list(explanation.classes)})" if explanation.classes else ""
        raise InputError(
            f"output {output} is out of range: the explanation has {k} output(s){classes}; "
            f"pass output= between 0 and {k - 1}"
        )
    return output


def _check_row(explanation: Explanation, row: Any) -> int:
    row = _check_int(row, "row")
    n = len(explanation)
    if not -n <= row < n:
        raise InputError(
            f"row {row} is out of range for an explanation of {n} rows; "
            f"pass a row between 0 and {n - 1} (or a negative index from the end)"
        )
    return row % n


def _output_values(explanation: Explanation, output: int) -> np.ndarray:
    """SHAP values of one output as a new ``(n, M)`` float array."""
    output = _check_output(explanation, output)
    values = np.asarray(explanation.values)
    if values.ndim == 3:
        values = values[:, :, output]
    return np.array(values, dtype=float, copy=True)


def _order_by_mean_abs(values: np.ndarray) -> np.ndarray:
    return np.argsort(-np.abs(values).mean(axis=0), kind="stable")


def _split(order: np.ndarray, max_display: int) -> tuple[np.ndarray, np.ndarray]:
    """Shown and grouped indices: everything fits, or ``max_display - 1`` plus 'other'."""
    order = np.asarray(order, dtype=int)
    if len(order) <= max_display:
        return order, order[:0]
    return order[: max_display - 1], order[max_display - 1 :]


def _row_parts(
    explanation: Explanation, row: int, output: int, max_display: int
) -> tuple[np.ndarray, float, float, np.ndarray, np.ndarray]:
    values = _output_values(explanation, output)
    output = _check_output(explanation, output)
    contrib = values[row]
    base = float(explanation.expected_value[output])
    fx = float(explanation.explained_output[row, output])
    order = np.argsort(-np.abs(contrib), kind="stable")
    shown, rest = _split(order, max_display)
    return contrib, base, fx, shown, rest


def _other_label(count: int) -> str:
    return f"other ({count} feature{'s' if count != 1 else ''})"


def _short(text: Any, limit: int = MAX_LABEL) -> str:
    """One line of at most ``limit`` characters, ending in an ellipsis when cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def _format_value(value: Any) -> str:
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return "missing"
    if value is pd.NA or value is pd.NaT:
        return "missing"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return _short(value, MAX_VALUE_LABEL)


def _name_value(name: str, value: Any) -> str:
    return f"{_short(name)} = {_format_value(value)}"


def _plain(text: Text) -> Text:
    """Draw ``text`` literally: no mathtext for ``$``, no LaTeX."""
    text.set_parse_math(False)
    text.set_usetex(False)
    return text


def _set_yticks(ax: Any, positions: Sequence[float], labels: Sequence[str]) -> None:
    ax.set_yticks(list(positions), labels=list(labels))
    for text in ax.get_yticklabels():
        _plain(text)


def _set_xticks(ax: Any, positions: Sequence[float], labels: Sequence[str]) -> None:
    rotate = len(labels) > 6 or max((len(s) for s in labels), default=0) > 12
    ax.set_xticks(list(positions), labels=list(labels))
    for text in ax.get_xticklabels():
        _plain(text)
        if rotate:
            text.set_rotation(35)
            text.set_horizontalalignment("right")
            text.set_rotation_mode("anchor")


def _space_label(explanation: Explanation, what: str) -> str:
    space = explanation.output_space
    link = explanation.link.name
    if link == "identity":
        return f"{what} ({space} space)"
    return f"{what} ({space} space; prediction = {link}⁻¹ of it)"


#: For each link: what the explained values are measured in, what the link's inverse
#: gives, and what the explained space is, in words.
LINK_UNITS: dict[str, tuple[str, str, str]] = {
    "logit": ("log-odds", "probability", "the margin before the logit link"),
    "log": ("log units", "prediction", "the margin before the log link"),
    "softmax": ("class scores", "probability", "the margin before the softmax over the classes"),
    "ovr": ("log-odds", "probability", "the margin before the one-vs-rest sigmoids"),
    "isotonic": ("margin units", "calibrated probability", "the margin before the calibration"),
}


def link_units(explanation: Explanation) -> tuple[str, str, str] | None:
    """``(unit, prediction, space)``: the unit of the explained values, what the link's
    inverse turns them into and the explained space in words; ``None`` for the identity
    link (the values are in the prediction's own units)."""
    name = explanation.link.name
    if name == "identity":
        return None
    return LINK_UNITS.get(
        name, ("margin units", "prediction", f"the margin before the {name} link")
    )


def _class_title(ax: Any, explanation: Explanation, output: int, title: str) -> None:
    if explanation.n_outputs > 1:
        labels = explanation.classes or list(range(explanation.n_outputs))
        title = f"{title} — class {_short(labels[output])}"
    _plain(ax.set_title(title))


def _is_categorical(col: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)


def _quantiles(col: pd.Series) -> np.ndarray:
    """Each value's rank within the column scaled to 0..1 (ties share the mean rank);
    NaN for non-numeric columns and missing values."""
    if _is_categorical(col) and not pd.api.types.is_bool_dtype(col):
        return np.full(len(col), np.nan)
    numeric = pd.Series(col.to_numpy(dtype=float, na_value=np.nan))
    ranks = numeric.rank(method="average").to_numpy()
    valid = int(np.isfinite(ranks).sum())
    if valid <= 1:
        return np.where(np.isfinite(ranks), 0.5, np.nan)
    return (ranks - 1.0) / (valid - 1.0)


def _categories(col: pd.Series) -> tuple[list[str], np.ndarray]:
    """Category labels and each row's code: categorical dtype order, else sorted text;
    missing values form a last ``"missing"`` category."""
    missing = col.isna().to_numpy()
    if isinstance(col.dtype, pd.CategoricalDtype):
        labels = [str(c) for c in col.cat.categories]
        codes = col.cat.codes.to_numpy().astype(int)
    else:
        text = np.array([str(v) for v in col.to_numpy()], dtype=object)
        labels = sorted({t for t, m in zip(text, missing, strict=True) if not m})
        lookup = {t: i for i, t in enumerate(labels)}
        codes = np.array([lookup.get(t, -1) for t in text], dtype=int)
    if missing.any():
        codes = np.where(missing, len(labels), codes)
        labels = [*labels, "missing"]
    return labels, codes


def _jitter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vertical offsets in (-0.4, 0.4), wider where points are dense (a seeded beeswarm)."""
    n = len(x)
    if n == 0:
        return np.zeros(0)
    counts, edges = np.histogram(x, bins=max(1, min(50, n // 4)))
    where = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(counts) - 1)
    density = np.sqrt(counts[where] / counts.max())
    return rng.uniform(-0.4, 0.4, size=n) * density


def _impact_frame(impact: Any, what: str) -> pd.DataFrame:
    frame = impact.frame if isinstance(impact, FeatureImpact) else impact
    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            f"{what} must be a FeatureImpact or a DataFrame, got {type(impact).__name__}; "
            "use shapgov.analyses.impact.shap_impact(explanation) or permutation_impact(...)"
        )
    missing = {"feature", "normalized"} - set(frame.columns)
    if missing:
        raise InputError(
            f"{what} lacks the column(s) {sorted(missing)}; pass the frame of a "
            "FeatureImpact (feature, impact, normalized, rank)"
        )
    if frame["feature"].astype(str).duplicated().any():
        raise InputError(f"{what} names a feature twice; pass one row per feature")
    return frame


def _by_feature(frame: pd.DataFrame, column: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    index = pd.Index([str(f) for f in frame["feature"]], dtype=object)
    return pd.Series(values, index=index)


def _feature_index(names: list[Any], feature: Any, what: str) -> int:
    """Position of ``feature``, given as the column label or as its text."""
    keys = [str(n) for n in names]
    if feature in names and not isinstance(feature, bool):
        return names.index(feature)
    if not isinstance(feature, str) or feature not in keys:
        shown = ", ".join(repr(n) for n in names[:10]) + (", ..." if len(names) > 10 else "")
        raise InputError(
            f"unknown {what} {feature!r}; pass one of the explanation's features: {shown}"
        )
    return keys.index(feature)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return 0.0
    ra = pd.Series(a[ok]).rank().to_numpy()
    rb = pd.Series(b[ok]).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(abs(np.corrcoef(ra, rb)[0, 1]))


def _interaction_partner(data: pd.DataFrame, shap_j: np.ndarray, j: int) -> int | None:
    """The column whose values best explain what ``j``'s own value does not (see
    :func:`dependence`); ``None`` when no other column correlates with that residual."""
    col = data.iloc[:, j]
    if _is_categorical(col):
        groups = _categories(col)[1]
    else:
        q = _quantiles(col)
        groups = np.where(np.isnan(q), 10, np.minimum((np.nan_to_num(q) * 10).astype(int), 9))
    means = pd.Series(shap_j).groupby(groups).transform("mean").to_numpy()
    residual = shap_j - means
    best, best_score = None, 1e-12
    for k in range(data.shape[1]):
        if k == j:
            continue
        other = data.iloc[:, k]
        if _is_categorical(other):
            codes = _categories(other)[1].astype(float)
        else:
            codes = other.to_numpy(dtype=float, na_value=np.nan)
        score = _spearman(codes, residual)
        if score > best_score:
            best, best_score = k, score
    return best
