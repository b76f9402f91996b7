"""Matplotlib plots of an :class:`~shapgov.combination.explanation.Explanation` and of
Feature Impact.

Every function builds a new :class:`matplotlib.figure.Figure` through the object-oriented
API only (no ``pyplot``: no global figure registry, no backend selection), so plots are
safe to build from several threads and never touch the caller's figures. Inputs are never
modified.

Conventions shared by all plots:

* colours are colorblind-safe: the Okabe–Ito palette for categories (positive SHAP
  vermillion, negative SHAP blue) and ``cividis`` for feature values;
* only the top features are drawn one by one; the rest are grouped into one
  ``"other (N features)"`` row, and figure height grows with the number of rows;
* feature names are plain text (``$`` never starts mathtext) and are shortened to
  :data:`MAX_LABEL` characters in labels;
* the same input gives the same PNG bytes from :func:`to_png` (jitter is seeded).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine

from shapgov.analyses.impact import FeatureImpact
from shapgov.combination.explanation import Explanation
from shapgov.errors import InputError
from shapgov.sinks.plot_parts import (  # noqa: F401 (re-exported for callers)
    _ROW_HEIGHT,
    CATEGORY_COLORS,
    MAX_LABEL,
    NEGATIVE_COLOR,
    NEUTRAL_COLOR,
    OKABE_ITO,
    PERMUTATION_COLOR,
    POSITIVE_COLOR,
    SHAP_COLOR,
    _by_feature,
    _categories,
    _check_explanation,
    _check_int,
    _check_max_display,
    _check_row,
    _class_title,
    _cmap,
    _feature_index,
    _figure,
    _format_value,
    _impact_frame,
    _interaction_partner,
    _is_categorical,
    _jitter,
    _name_value,
    _order_by_mean_abs,
    _other_label,
    _output_values,
    _plain,
    _quantiles,
    _row_parts,
    _set_xticks,
    _set_yticks,
    _short,
    _space_label,
    _split,
    link_units,
)

__all__ = [
    "dependence",
    "force_bar",
    "impact_bar",
    "mismatch_histogram",
    "summary",
    "to_png",
    "top_features",
    "waterfall",
]

#: Scatter plots with more points than this are rasterized inside vector output (SVG,
#: PDF), so their size and drawing time stay flat.
RASTER_POINTS = 1000

# ----------------------------------------------------------------------------- public


def top_features(explanation: Explanation, n: int, *, output: int = 0) -> list[str]:
    """The ``n`` features with the largest mean |SHAP| for ``output`` (all of them when
    there are fewer), most important first; ties keep the column order."""
    _check_explanation(explanation, rows=True)
    n = _check_int(n, "n")
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}; ask for one feature or more")
    values = _output_values(explanation, output)
    order = _order_by_mean_abs(values)
    names = explanation.feature_names
    return [names[j] for j in order[:n]]


def summary(
    explanation: Explanation,
    *,
    max_display: int = 12,
    output: int = 0,
    random_state: int = 0,
) -> Figure:
    """Beeswarm: one row of points per feature, x = SHAP value, colour = feature value.

    Rows are the ``max_display - 1`` features with the largest mean |SHAP| plus an
    ``"other (N features)"`` row holding each row's sum over the rest (when there are
    more than ``max_display`` features). Colours are the value's quantile within its
    column (``cividis``, low to high); non-numeric and missing values are grey. Points
    are spread vertically by a seeded jitter that scales with the local density.
    """
    _check_explanation(explanation, rows=True)
    max_display = _check_max_display(max_display)
    values = _output_values(explanation, output)
    names = explanation.feature_names
    shown, rest = _split(_order_by_mean_abs(values), max_display)

    rows: list[tuple[str, str, np.ndarray, np.ndarray]] = []  # key, label, x, rgba
    cmap = _cmap()
    neutral = np.tile(to_rgba(NEUTRAL_COLOR), (len(explanation), 1))
    for j in shown:
        q = _quantiles(explanation.data.iloc[:, j])
        colors = cmap(np.nan_to_num(q, nan=0.0))
        colors[np.isnan(q)] = to_rgba(NEUTRAL_COLOR)
        rows.append((names[j], _short(names[j]), values[:, j].copy(), colors))
    if len(rest):
        label = _other_label(len(rest))
        rows.append((label, label, values[:, rest].sum(axis=1), neutral))

    fig = _figure(8.0, 1.3 + _ROW_HEIGHT * len(rows))
    ax = fig.subplots()
    rng = np.random.default_rng(random_state)
    n_rows = len(rows)
    for i, (key, _, x, colors) in enumerate(rows):
        y = (n_rows - 1 - i) + _jitter(x, rng)
        ax.scatter(
            x,
            y,
            c=colors,
            s=14,
            linewidths=0,
            alpha=0.85,
            label=key,
            gid=f"shapgov-row-{i}",
            rasterized=len(x) > RASTER_POINTS,
        )
    ax.axvline(0.0, color="#555555", linewidth=0.8, zorder=0)
    _set_yticks(ax, np.arange(n_rows - 1, -1, -1), [r[1] for r in rows])
    ax.set_ylim(-0.6, n_rows - 0.4)
    ax.set_xlabel(_space_label(explanation, "SHAP value"))
    _class_title(ax, explanation, output, "SHAP summary")
    cbar = fig.colorbar(
        ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap), ax=ax, ticks=[0.0, 1.0], aspect=40
    )
    cbar.ax.set_yticklabels(["low", "high"])
    cbar.set_label("feature value")
    cbar.outline.set_visible(False)
    return fig


def impact_bar(
    shap_impact: FeatureImpact | pd.DataFrame,
    permutation: FeatureImpact | pd.DataFrame | None = None,
    *,
    max_display: int = 15,
) -> Figure:
    """Horizontal bars of ``normalized`` Feature Impact (top feature = 100).

    With ``permutation``, each feature gets a SHAP bar and a permutation bar (matched by
    feature name); permutation bars carry ``impact_std`` error bars scaled like
    ``normalized``, and features with a ``redundant_with`` entry are marked
    ``"(redundant)"``. Features are ordered by SHAP impact (permutation-only features
    follow); past ``max_display - 1`` features the rest are summed into one
    ``"other (N features)"`` bar (no error bar).
    """
    max_display = _check_max_display(max_display)
    shap_frame = _impact_frame(shap_impact, "shap_impact")
    perm_frame = None if permutation is None else _impact_frame(permutation, "permutation")

    shap_norm = _by_feature(shap_frame, "normalized")
    features = list(shap_norm.sort_values(ascending=False, kind="stable").index)
    perm_norm = perm_std = None
    redundant: set[str] = set()
    if perm_frame is not None:
        perm_norm = _by_feature(perm_frame, "normalized")
        extra = perm_norm.drop(index=features, errors="ignore")
        features += list(extra.sort_values(ascending=False, kind="stable").index)
        if "impact_std" in perm_frame and "impact" in perm_frame:
            top = float(pd.to_numeric(perm_frame["impact"], errors="coerce").max())
            scale = 100.0 / top if top > 0 else 0.0
            perm_std = _by_feature(perm_frame, "impact_std") * scale
        if "redundant_with" in perm_frame:
            marks = perm_frame["redundant_with"].notna().to_numpy()
            redundant = {str(f) for f in perm_frame["feature"].to_numpy()[marks]}
    if not features:
        raise InputError("the impact frame has no features; compute impact on a model first")

    shown, rest = _split(np.arange(len(features)), max_display)
    labels = [
        _short(features[i]) + (" (redundant)" if features[i] in redundant else "") for i in shown
    ]
    rest_names = [features[i] for i in rest]

    def column(series: pd.Series | None) -> np.ndarray:
        if series is None:
            return np.zeros(0)
        picked = series.reindex([features[i] for i in shown]).to_numpy(dtype=float)
        if len(rest):
            picked = np.append(picked, series.reindex(rest_names).sum(skipna=True))
        return np.nan_to_num(picked, nan=0.0)

    if len(rest):
        labels.append(_other_label(len(rest)))
    n_rows = len(labels)
    y = np.arange(n_rows - 1, -1, -1, dtype=float)
    per_row = 0.55 if perm_norm is not None else _ROW_HEIGHT
    fig = _figure(8.0, 1.3 + per_row * n_rows)
    ax = fig.subplots()
    if perm_norm is None:
        ax.barh(y, column(shap_norm), height=0.7, color=SHAP_COLOR, label="SHAP", gid="shap")
    else:
        ax.barh(y + 0.2, column(shap_norm), height=0.4, color=SHAP_COLOR, label="SHAP", gid="shap")
        xerr = None
        if perm_std is not None:
            xerr = column(perm_std)
            if len(rest):
                xerr[-1] = np.nan  # no spread for a sum of features
        ax.barh(
            y - 0.2,
            column(perm_norm),
            height=0.4,
            color=PERMUTATION_COLOR,
            xerr=xerr,
            error_kw={"ecolor": "#333333", "elinewidth": 1.0, "capsize": 2.0},
            label="permutation",
            gid="permutation",
        )
        ax.legend(loc="lower right", frameon=False)
    ax.axvline(0.0, color="#555555", linewidth=0.8)
    _set_yticks(ax, y, labels)
    ax.set_ylim(-0.6, n_rows - 0.4)
    ax.set_xlabel("normalized impact (%, top feature = 100)")
    ax.set_title("Feature Impact")
    return fig


def waterfall(
    explanation: Explanation,
    row: int,
    *,
    max_display: int = 10,
    output: int = 0,
) -> Figure:
    """Waterfall of one row: from the base value E[f(X)] to f(x) in the explained space.

    One bar per top feature by |SHAP| (labelled ``"name = value"``), largest at the top,
    plus one ``"other (N features)"`` bar for the rest; bars start where the previous
    one ended, so the top bar ends at the explained output f(x). The title names the row
    by its index label and adds up ``base + Σ SHAP = f(x)``; behind a link it names the
    unit (log-odds behind a logit) and what the link makes of f(x) ("= probability
    0.0889"), and the x axis says which space the bars are drawn in.
    """
    _check_explanation(explanation, rows=False)
    max_display = _check_max_display(max_display)
    row = _check_row(explanation, row)
    contrib, base, fx, shown, rest = _row_parts(explanation, row, output, max_display)
    names = explanation.feature_names
    # drawn bottom to top: other first (starts at the base), the largest feature last
    widths = [float(contrib[j]) for j in reversed(shown)]
    labels = [_name_value(names[j], explanation.data.iloc[row, j]) for j in reversed(shown)]
    if len(rest):
        widths.insert(0, float(contrib[rest].sum()))
        labels.insert(0, _other_label(len(rest)))
    lefts = base + np.concatenate([[0.0], np.cumsum(widths)[:-1]])
    n_rows = len(widths)
    y = np.arange(n_rows, dtype=float)

    fig = _figure(8.0, 1.8 + _ROW_HEIGHT * (n_rows + 1))
    ax = fig.subplots()
    colors = [POSITIVE_COLOR if w > 0 else NEGATIVE_COLOR for w in widths]
    ax.barh(y, widths, left=lefts, height=0.6, color=colors, gid="contributions")
    span = max(abs(fx - base), *(abs(w) for w in widths), 1e-12)
    for yi, left, w in zip(y, lefts, widths, strict=True):
        end = left + w
        ax.text(
            end + (0.01 if w >= 0 else -0.01) * span,
            yi,
            f"{w:+.4g}",
            ha="left" if w >= 0 else "right",
            va="center",
            fontsize=8,
        )
    for yi in range(n_rows - 1):  # connectors between consecutive bars
        ax.plot([lefts[yi + 1]] * 2, [yi + 0.3, yi + 0.7], color="#777777", linewidth=0.6)
    ax.axvline(base, color="#555555", linewidth=0.8, linestyle="--", gid="shapgov-base")
    ax.axvline(fx, color="#222222", linewidth=0.8, gid="shapgov-output")
    ax.text(base, -0.95, f"E[f(X)] = {base:.4g}", ha="center", va="bottom", fontsize=9)
    ax.text(
        fx,
        n_rows - 0.25,
        f"f(x) = {fx:.4g}",
        ha="center",
        va="bottom",
        fontsize=9,
        fontweight="bold",
    )
    _set_yticks(ax, y, labels)
    ax.set_ylim(-1.0, n_rows + 0.3)
    ax.use_sticky_edges = False  # let the margin hold the value labels
    ax.margins(x=0.18)
    units = link_units(explanation)
    total = f"base {base:.4g} + Σ SHAP {float(contrib.sum()):+.4g} = {fx:.4g}"
    if units is None:
        ax.set_xlabel(_space_label(explanation, "explained output"))
    else:
        unit, prediction, space = units
        ax.set_xlabel(f"{unit}: {space}")
        linked = explanation.link.inverse(explanation.explained_output[row : row + 1])
        total += f" {unit} = {prediction} {float(linked[0, output]):.4g}"
    key = _short(_format_value(explanation.data.index[row]), 24)
    _class_title(ax, explanation, output, f"row {key}")
    title = ax.get_title()
    _plain(ax.set_title(f"{title}\n{total}", fontsize=10))
    return fig


def force_bar(
    explanation: Explanation,
    row: int,
    *,
    max_display: int = 10,
    output: int = 0,
) -> Figure:
    """Force-style bar of one row: a single horizontal stacked bar meeting at f(x).

    Positive contributions (vermillion) are stacked left of f(x), pushing the output
    right; negative ones (blue) right of it, pushing left. The base value lies where the
    two sums balance: ``f(x) = base + sum(positive) + sum(negative)``. The largest
    contributions sit next to f(x); the features past ``max_display - 1`` are grouped
    into one ``"other"`` segment per sign.
    """
    _check_explanation(explanation, rows=False)
    max_display = _check_max_display(max_display)
    row = _check_row(explanation, row)
    contrib, base, fx, shown, rest = _row_parts(explanation, row, output, max_display)
    names = explanation.feature_names

    def segments(sign: int) -> tuple[list[float], list[str]]:
        picked = [j for j in shown if sign * contrib[j] > 0]  # already largest first
        widths = [abs(float(contrib[j])) for j in picked]
        labels = [_name_value(names[j], explanation.data.iloc[row, j]) for j in picked]
        grouped = [j for j in rest if sign * contrib[j] > 0]
        if grouped:
            widths.append(abs(float(contrib[grouped].sum())))
            labels.append(_other_label(len(grouped)))
        return widths, labels

    pos_w, pos_l = segments(1)
    neg_w, neg_l = segments(-1)
    pos_left = fx - np.cumsum(pos_w)  # the first (largest) segment ends at f(x)
    neg_left = fx + np.concatenate([[0.0], np.cumsum(neg_w)[:-1]]) if neg_w else np.zeros(0)

    fig = _figure(10.0, 4.2)
    ax = fig.subplots()
    ax.barh(
        np.zeros(len(pos_w)),
        pos_w,
        left=pos_left,
        height=0.5,
        color=POSITIVE_COLOR,
        edgecolor="white",
        linewidth=0.8,
        label="increases output",
        gid="positive",
    )
    ax.barh(
        np.zeros(len(neg_w)),
        neg_w,
        left=neg_left,
        height=0.5,
        color=NEGATIVE_COLOR,
        edgecolor="white",
        linewidth=0.8,
        label="decreases output",
        gid="negative",
    )
    labelled = sorted(
        [
            *zip(
                pos_left + np.asarray(pos_w) / 2, pos_l, [POSITIVE_COLOR] * len(pos_w), strict=True
            ),
            *zip(
                neg_left + np.asarray(neg_w) / 2, neg_l, [NEGATIVE_COLOR] * len(neg_w), strict=True
            ),
        ],
        key=lambda item: item[0],
    )
    # labels hang below the axes (fixed in axes coordinates, so the layout settles in
    # one pass); labels of narrow segments are spread apart, a leader line joins each
    # label to its segment
    gap = 0.045 * max(float(np.sum(pos_w) + np.sum(neg_w)), 1e-12)
    previous = -np.inf
    for center, label, color in labelled:
        at = max(float(center), previous + gap)
        previous = at
        # the axes' lower edge is y = -0.4 in data units
        ax.plot([center, at], [-0.25, -0.4], color=color, linewidth=0.6, clip_on=False)
        text = ax.text(
            at,
            -0.03,
            label,
            transform=ax.get_xaxis_transform(),
            ha="right",
            va="top",
            rotation=35,
            rotation_mode="anchor",
            fontsize=8,
            color=color,
        )
        _plain(text)
    ax.axvline(base, ymin=0.1, ymax=0.55, color="#555555", linestyle="--", gid="shapgov-base")
    ax.axvline(fx, ymin=0.05, ymax=0.7, color="#222222", gid="shapgov-output")
    ax.text(base, 0.45, f"base value = {base:.4g}", ha="center", va="bottom", fontsize=9)
    ax.text(fx, 0.72, f"f(x) = {fx:.4g}", ha="center", va="bottom", fontsize=10, fontweight="bold")
    ax.set_ylim(-0.4, 1.3)
    ax.set_yticks([])
    ax.use_sticky_edges = False
    ax.margins(x=0.05)
    for side in ("left", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel(_space_label(explanation, "explained output"))
    ax.legend(loc="upper right", frameon=False, fontsize=8, ncols=2)
    _class_title(ax, explanation, output, f"row {row}")
    return fig


def dependence(
    explanation: Explanation,
    feature: str,
    *,
    output: int = 0,
    color_by: str | None = "auto",
) -> Figure:
    """Scatter of a feature's values against its SHAP values.

    Non-numeric (and boolean) columns are drawn as categories on the x axis with a
    seeded jitter; missing numeric values are left out (counted in the title).

    :param color_by: ``"auto"`` colours by the feature with the strongest interaction
        proxy: ``feature``'s SHAP values minus their mean within its value bins (ten
        quantile bins, or one per category) leave a residual; the other feature with the
        largest absolute Spearman correlation to that residual is chosen (categories by
        their sorted codes; no colour when none correlates). A feature name colours by
        that feature (``"auto"`` always means the heuristic); ``None`` draws one colour.
    """
    _check_explanation(explanation, rows=True)
    names = explanation.feature_names
    j = _feature_index(names, feature, "feature")
    values = _output_values(explanation, output)
    shap_j = values[:, j].copy()
    col = explanation.data.iloc[:, j]
    categorical = _is_categorical(col)

    if color_by is None:
        k = None
    elif color_by == "auto":
        k = _interaction_partner(explanation.data, shap_j, j)
    else:
        k = _feature_index(names, color_by, "color_by")

    rng = np.random.default_rng(0)
    if categorical:
        cats, codes = _categories(col)
        x = codes + rng.uniform(-0.3, 0.3, size=len(codes))
        keep = np.ones(len(x), dtype=bool)
    else:
        x = col.to_numpy(dtype=float, na_value=np.nan)
        keep = ~np.isnan(x)

    fig = _figure(7.5, 4.8)
    ax = fig.subplots()
    many = int(keep.sum()) > RASTER_POINTS
    title = f"dependence of {_short(feature)}"
    if k is None:
        ax.scatter(
            x[keep],
            shap_j[keep],
            s=14,
            color=SHAP_COLOR,
            linewidths=0,
            gid="points",
            rasterized=many,
        )
    else:
        other = explanation.data.iloc[:, k]
        title += f", coloured by {_short(names[k])}"
        if _is_categorical(other):
            ocats, ocodes = _categories(other)
            counts = np.bincount(ocodes, minlength=len(ocats))
            # the most frequent categories get their own colour, the rest share grey
            ranked = np.argsort(-counts, kind="stable")[: len(CATEGORY_COLORS) - 1]
            palette = {int(c): CATEGORY_COLORS[i] for i, c in enumerate(ranked)}
            if len(ocats) <= len(CATEGORY_COLORS):
                palette = {c: CATEGORY_COLORS[c] for c in range(len(ocats))}
            colors = [palette.get(int(c), NEUTRAL_COLOR) for c in ocodes]
            ax.scatter(
                x[keep],
                shap_j[keep],
                s=14,
                c=np.array([to_rgba(c) for c in colors])[keep],
                linewidths=0,
                gid="points",
                rasterized=many,
            )
            handles = [
                ax.scatter([], [], s=14, color=palette[c], label=_short(ocats[c]))
                for c in sorted(palette)
            ]
            if len(palette) < len(ocats):
                handles.append(ax.scatter([], [], s=14, color=NEUTRAL_COLOR, label="other"))
            legend = ax.legend(
                handles=handles, title=_short(names[k]), fontsize=8, frameon=False, loc="best"
            )
            for text in [*legend.get_texts(), legend.get_title()]:
                _plain(text)
        else:
            q = _quantiles(other)
            cmap = _cmap()
            rgba = cmap(np.nan_to_num(q, nan=0.0))
            rgba[np.isnan(q)] = to_rgba(NEUTRAL_COLOR)
            ax.scatter(
                x[keep],
                shap_j[keep],
                s=14,
                c=rgba[keep],
                linewidths=0,
                gid="points",
                rasterized=many,
            )
            numeric = other.to_numpy(dtype=float, na_value=np.nan)
            cbar = fig.colorbar(
                ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap),
                ax=ax,
                ticks=[0.0, 0.5, 1.0],
                aspect=40,
            )
            if np.isfinite(numeric).any():
                marks = np.nanquantile(numeric, [0.0, 0.5, 1.0])
                cbar.ax.set_yticklabels([f"{v:.3g}" for v in marks])
            cbar.set_label(_short(names[k]) + " (quantile)", parse_math=False, usetex=False)
            cbar.outline.set_visible(False)
    ax.axhline(0.0, color="#555555", linewidth=0.8, zorder=0)
    if categorical:
        _set_xticks(ax, np.arange(len(cats)), [_short(c) for c in cats])
    missing = int((~keep).sum())
    if missing:
        title += f" ({missing} missing not shown)"
    ax.set_xlabel(_short(feature, 80), parse_math=False, usetex=False)
    ax.set_ylabel(_space_label(explanation, "SHAP value"))
    _class_title(ax, explanation, output, title)
    return fig


def mismatch_histogram(
    mismatch: Sequence[float] | np.ndarray, *, pass_tolerance: float, threshold: float
) -> Figure:
    """Distribution of the per-row normalized additivity mismatch on a log axis, with the
    policy's pass tolerance and fail threshold; exact zeros are counted at the left edge
    (``<= 1e-18``)."""
    values = np.asarray(mismatch, dtype=float).ravel()
    if values.size == 0:
        raise InputError("no mismatch values to plot; pass the report's row_mismatch")
    floor = 1e-18
    logs = np.log10(np.clip(np.where(np.isfinite(values), values, 1e300), floor, None))
    low = min(float(logs.min()), np.log10(max(pass_tolerance, floor))) - 0.5
    high = max(float(logs.max()), np.log10(max(threshold, floor))) + 0.5
    fig = _figure(7.0, 3.0)
    ax = fig.subplots()
    ax.hist(logs, bins=np.linspace(low, high, 41), color=SHAP_COLOR, edgecolor="white")
    for value, colour, label in (
        (pass_tolerance, OKABE_ITO["bluish_green"], f"pass tolerance {pass_tolerance:g}"),
        (threshold, OKABE_ITO["vermillion"], f"fail threshold {threshold:g}"),
    ):
        if value > 0:
            ax.axvline(np.log10(value), color=colour, linestyle="--", label=label)
    ax.set_xlabel("log10 normalized mismatch per row")
    ax.set_ylabel("rows")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # clear of bars
    return fig


def to_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes, identical for identical figures (no timestamp or
    software metadata). The figure stays open and unchanged."""
    if not isinstance(fig, Figure):
        raise InputError(f"to_png needs a matplotlib Figure, got {type(fig).__name__}")
    dpi = _check_int(dpi, "dpi")
    if dpi < 1:
        raise InputError(f"dpi must be at least 1, got {dpi}")
    # constrained layout refines the positions on every draw: keep the layout of the
    # first save, so that saving the same figure again gives the same bytes
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    if not isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine | type(None)):
        fig.set_layout_engine("none")
    return buffer.getvalue()
