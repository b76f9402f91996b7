"""Plot of explanations over time: the top players' impact per window, flagged windows
shaded. Object-oriented matplotlib only, like :mod:`shapgov.sinks.plots`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from shapgov.errors import InputError
from shapgov.sinks.plot_parts import CATEGORY_COLORS, _figure, _plain, _set_xticks, _short

#: Players drawn one line each; the rest are left out (the table lists them all).
TIME_TOP = 8


def impact_over_time(
    impact: pd.DataFrame,
    windows: Sequence[str],
    *,
    flagged: Sequence[str] = (),
    top: int = TIME_TOP,
    column: str = "normalized",
) -> Figure:
    """One line per top player (by mean impact over the windows): its impact per window.

    :param impact: :attr:`shapgov.analyses.over_time.OverTime.impact` (``window``,
        ``player`` and ``column``).
    :param windows: Window labels in time order (the x axis).
    :param flagged: Windows to shade (the drift flag rule fired).
    :param column: ``"normalized"`` (top = 100 per window), ``"impact"`` or ``"share"``.
    :raises InputError: The frame lacks the columns, or no window is given.
    """
    needed = {"window", "player", column}
    if not needed <= set(impact.columns) or not len(windows):
        raise InputError(f"impact_over_time needs windows and a frame with {sorted(needed)}")
    wide = impact.pivot(index="window", columns="player", values=column).reindex(list(windows))
    order = wide.mean(axis=0).sort_values(ascending=False, kind="stable").index[:top]
    fig = _figure(max(6.0, 0.45 * len(windows) + 3.0), 4.2)
    ax = fig.add_subplot()
    x = np.arange(len(windows))
    for i in x[np.isin(list(windows), list(flagged))]:
        ax.axvspan(i - 0.5, i + 0.5, color="#999999", alpha=0.18, lw=0)
    for k, player in enumerate(order):
        color = CATEGORY_COLORS[k % len(CATEGORY_COLORS)]
        style = "-" if k < len(CATEGORY_COLORS) else "--"
        values = wide[player].to_numpy()
        ax.plot(x, values, style, marker="o", ms=3, color=color, label=_short(player))
    _set_xticks(ax, x, [str(w) for w in windows])
    ax.set_xlim(-0.5, len(windows) - 0.5)
    label = {"normalized": "impact (top player = 100)", "share": "share of impact"}
    ax.set_ylabel(label.get(column, "mean |SHAP|"))
    ax.set_title("Feature Impact per window" + (" (shaded: drift flagged)" if flagged else ""))
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    for text in legend.get_texts():
        _plain(text)
    return fig


def air_over_time(windows: pd.DataFrame, *, threshold: float) -> Figure:
    """One line per compared group: its adverse impact ratio per window, with its interval
    as a band, the threshold as a dashed line and flagged windows marked.

    :param windows: :attr:`shapgov.analyses.fairness.Fairness.windows`.
    :raises InputError: The frame lacks the columns.
    """
    needed = {"window", "attribute", "group", "reference", "air", "air_low", "air_high", "flagged"}
    if not needed <= set(windows.columns):
        raise InputError(f"air_over_time needs a frame with {sorted(needed)}")
    labels = list(dict.fromkeys(windows["window"].astype(str)))
    compared = windows[windows["group"].astype(str) != windows["reference"].astype(str)]
    fig = _figure(max(6.0, 0.45 * len(labels) + 3.0), 4.2)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    lines = compared.groupby(["attribute", "group"], sort=False)
    for k, ((attribute, group), part) in enumerate(lines):
        color = CATEGORY_COLORS[k % len(CATEGORY_COLORS)]
        part = part.set_index(part["window"].astype(str)).reindex(labels)
        ax.fill_between(x, part["air_low"], part["air_high"], color=color, alpha=0.15, lw=0)
        ax.plot(
            x,
            part["air"],
            "-",
            marker="o",
            ms=3,
            color=color,
            label=_short(f"{attribute}: {group}"),
        )
        hit = part["flagged"].fillna(False).to_numpy(dtype=bool)
        ax.plot(x[hit], part["air"].to_numpy()[hit], "x", ms=9, mew=2, color="#b2182b")
    ax.axhline(threshold, ls="--", lw=1, color="#444444")
    ax.axhline(1.0, ls=":", lw=1, color="#888888")
    _set_xticks(ax, x, labels)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_ylabel("adverse impact ratio")
    ax.set_title(f"Adverse impact ratio per window (dashed: {threshold:g}; x: flagged)")
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    for text in legend.get_texts():
        _plain(text)
    return fig
