"""Time windows of a table: which rows fall in which window, in time order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import InputError


@dataclass(frozen=True, eq=False)
class Windows:
    """Non-empty windows in time order.

    :param labels: One label per window (``"2024-03"`` for a monthly period).
    :param bounds: ``(start, end)`` timestamps per window (periods: both inclusive;
        edges: ``[start, end)``).
    :param order: ``(N,)`` positions of the windowed rows in the input, window by window
        (stable: input order inside a window).
    :param starts: ``(W + 1,)`` offsets into ``order``: window ``w`` is
        ``order[starts[w]:starts[w+1]]``.
    :param reference: Index of the reference window.
    :param rows_outside: Input rows in no window (no time, or outside the edges).
    :param empty: Labels of windows left out because no row falls in them.
    :param freq: The period alias (an offset alias given becomes its period's,
        :func:`period_freq`), or ``None`` for edges.
    """

    labels: list[str]
    bounds: list[tuple[pd.Timestamp, pd.Timestamp]]
    order: np.ndarray
    starts: np.ndarray
    reference: int
    rows_outside: int
    empty: list[str]
    freq: str | None

    def describe(self) -> str:
        how = f"periods of frequency {self.freq!r}" if self.freq else "the given edges"
        return f"{len(self.labels)} windows by {how}"


def split_time(
    model: Any, X: Any, *, time: Any, y: Any, time_is_feature: bool | None
) -> tuple[pd.DataFrame, pd.Series, Any, str | None]:
    """``(features, timestamps, targets, time column)``: the time (and a target named by
    label) taken out of ``X`` unless the model uses the column. Time-zone-aware times are
    windowed in their own zone's wall-clock time (a month is the local month); strings
    with mixed UTC offsets (a daylight-saving zone written as text) are read in UTC;
    pandas periods stand for their start.

    :raises InputError: ``X`` is not a table, the time or target does not fit, or the
        target has missing values.
    """
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(np.asarray(X))
    frame = X
    column = None
    if isinstance(time, str) or np.ndim(time) == 0:
        if time not in X.columns:
            raise InputError(
                f"time names column {time!r}, which the data does not have; pass a column "
                "label or one timestamp per row"
            )
        column = time
        stamps = X[time]
        if time_is_feature is None:
            names = getattr(model, "feature_names_in_", None)
            time_is_feature = names is not None and time in list(names)
        if not time_is_feature:
            frame = frame.drop(columns=[time])
    else:
        stamps = pd.Series(np.asarray(time))
        if len(stamps) != len(X):
            raise InputError(f"time has {len(stamps)} values for {len(X)} rows")
    if isinstance(y, str) or (y is not None and np.ndim(y) == 0):
        if y == column:
            raise InputError(f"y and time name the same column {y!r}; pass the target column")
        if y not in X.columns:
            raise InputError(f"y names column {y!r}, which the data does not have")
        y, frame = X[y].to_numpy(), frame.drop(columns=[y], errors="ignore")
    elif y is not None:
        if len(y) != len(X):
            raise InputError(f"y has {len(y)} values for {len(X)} rows")
        y = np.asarray(y)
    if y is not None and pd.isna(y).any():
        raise InputError(
            f"y has {int(pd.isna(y).sum())} missing values; drop those rows (or leave y out: "
            "it only adds permutation impact)"
        )
    return frame.reset_index(drop=True), _timestamps(stamps), y, column


def _timestamps(stamps: Any) -> pd.Series:
    """Naive wall-clock timestamps, or numbers (a period index) as they are."""
    stamps = pd.Series(stamps).reset_index(drop=True)
    if isinstance(stamps.dtype, pd.PeriodDtype):
        return stamps.dt.to_timestamp()
    if pd.api.types.is_numeric_dtype(stamps) and not pd.api.types.is_bool_dtype(stamps):
        return stamps
    try:
        parsed = pd.to_datetime(stamps)
    except (ValueError, TypeError) as first:
        try:  # mixed UTC offsets: one instant each, read in UTC
            parsed = pd.to_datetime(stamps, utc=True)
        except (ValueError, TypeError):
            raise InputError(f"the time values are not timestamps: {first}") from first
    if not pd.api.types.is_datetime64_any_dtype(parsed):
        raise InputError("the time values are not timestamps of one kind; pass datetimes")
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_localize(None)  # the zone's wall-clock time
    return parsed


def time_windows(
    stamps: pd.Series,
    *,
    freq: str | None,
    windows: Sequence[Any] | None,
    reference: int | str | None,
) -> Windows:
    """The non-empty windows of ``stamps`` by ``freq`` or by edges ``windows``.

    :raises InputError: Neither or both of ``freq`` and ``windows``, a ``freq`` that maps
        to no single period (:func:`period_freq`), edges that do not increase, no row in
        any window, or an unknown reference.
    """
    if (freq is None) == (windows is None):
        raise InputError("give either freq= (e.g. 'M' for months) or windows= (edges), not both")
    known = stamps.notna().to_numpy()
    numeric = pd.api.types.is_numeric_dtype(stamps)
    if freq is not None:
        if numeric:
            raise InputError("freq= needs timestamps; numeric times take windows= (edges)")
        freq = period_freq(freq)
        periods = stamps.dt.to_period(freq)
        codes_all, uniques = pd.factorize(periods, sort=True)
        codes = np.where(known, codes_all, -1)
        labels = [str(u) for u in uniques]
        bounds = [(u.start_time, u.end_time) for u in uniques]
    else:
        edges = _edges(windows, numeric)
        e = edges.to_numpy()
        codes = np.searchsorted(e, stamps.to_numpy(), side="right") - 1
        codes = np.where(known & (codes >= 0) & (codes < len(e) - 1), codes, -1)
        text = [str(v) if numeric else f"{v:%Y-%m-%d %H:%M:%S}" for v in edges]
        labels = [f"[{text[i]}, {text[i + 1]})" for i in range(len(e) - 1)]
        bounds = [(edges[i], edges[i + 1]) for i in range(len(e) - 1)]
    counts = np.bincount(codes[codes >= 0], minlength=len(labels))
    keep = np.flatnonzero(counts > 0)
    if keep.size == 0:
        raise InputError("no row falls in any window; check the time column and the windows")
    empty = [labels[i] for i in np.flatnonzero(counts == 0)]
    remap = np.full(len(labels), -1, dtype=np.int64)
    remap[keep] = np.arange(keep.size)
    codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    inside = codes >= 0
    if bool((np.diff(codes[inside]) >= 0).all()):  # already in time order: no sort
        order = np.flatnonzero(inside)
    else:
        order = np.flatnonzero(inside)[np.argsort(codes[inside], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64)
    labels = [labels[i] for i in keep]
    bounds = [bounds[i] for i in keep]
    return Windows(
        labels=labels,
        bounds=bounds,
        order=order,
        starts=starts,
        reference=_reference(reference, labels),
        rows_outside=int((~inside).sum()),
        empty=empty,
        freq=freq,
    )


#: accepted frequencies, named in the refusal
ACCEPTED_FREQ = (
    "a pandas period alias ('D', 'W' or 'W-MON', 'M', 'Q' or 'Q-NOV', 'Y' or 'Y-JUN', "
    "'h', 'min', 's'), or an offset alias of whole calendar months, quarters or years "
    "('MS', 'ME', 'QS', 'QS-FEB', 'QE', 'YS', 'YE-JUN'), which stands for its period"
)


def period_freq(freq: Any) -> str:
    """The pandas period frequency whose periods are the windows of ``freq``.

    ``freq`` is a period alias (``"M"``, ``"W-MON"``, ``"Q-NOV"``, ``"D"``, ``"h"``: kept as
    given), or an offset alias anchored on calendar months, quarters or years, mapped by
    pandas' own ``get_period_alias``: ``"MS"`` and ``"ME"`` -> ``"M"``, ``"QS-FEB"`` (quarters
    starting in February) -> ``"Q-JAN"`` (quarters ending in January), ``"YS-JUL"`` ->
    ``"Y-JUN"``. Business and semi-month offsets (``"BMS"``, ``"SMS"``) map to no period:
    pandas' nearest one would move their edges.

    :raises InputError: ``freq`` maps to no period (the message names the accepted forms),
        or is a multiple (``"2M"``, ``"2MS"``): periods of it would overlap.
    """
    from pandas.tseries import offsets
    from pandas.tseries.frequencies import get_period_alias, to_offset

    anchors = (
        offsets.MonthBegin,
        offsets.MonthEnd,
        offsets.QuarterBegin,
        offsets.QuarterEnd,
        offsets.YearBegin,
        offsets.YearEnd,
    )
    try:
        native = pd.Period("2024-01-01", freq=freq)
        n, period = native.freq.n, freq if isinstance(freq, str) else native.freqstr
    except (ValueError, TypeError, AttributeError):
        try:
            offset = to_offset(freq)
        except (ValueError, TypeError) as err:
            raise InputError(f"freq {freq!r} is not {ACCEPTED_FREQ}: {err}") from err
        period = get_period_alias(offset.rule_code) if type(offset) in anchors else None
        if period is None:
            raise InputError(
                f"freq {freq!r} ({type(offset).__name__}) maps to no pandas period; give "
                f"{ACCEPTED_FREQ}, or windows= edges"
            ) from None
        n = offset.n
    if n != 1:
        raise InputError(
            f"freq {freq!r} is a multiple of a period; give windows= edges for windows of "
            "several periods"
        )
    return period


def _edges(windows: Sequence[Any], numeric: bool) -> pd.Series:
    """Window edges as timestamps (or numbers, for numeric times), checked; zoned edges
    become their zone's wall-clock time, as the times do."""
    if isinstance(windows, str):
        raise InputError("windows must be a list of edges, not one string")
    try:
        edges = pd.Series(list(windows))
        edges = pd.to_numeric(edges) if numeric else _timestamps(edges)
    except (ValueError, TypeError, InputError) as err:
        kind = "numbers" if numeric else "timestamps"
        raise InputError(f"windows must be {kind}, as the time values are: {err}") from err
    if len(edges) < 2 or not edges.is_monotonic_increasing or edges.duplicated().any():
        raise InputError("windows must be at least two strictly increasing edges")
    return edges


def _reference(reference: int | str | None, labels: list[str]) -> int:
    if reference is None:
        return 0
    if isinstance(reference, str):
        if reference not in labels:
            raise InputError(f"reference window {reference!r} is not one of {labels}")
        return labels.index(reference)
    if isinstance(reference, bool) or not isinstance(reference, int | np.integer):
        raise InputError(f"reference must be a window index or label, got {reference!r}")
    if not -len(labels) <= reference < len(labels):
        raise InputError(f"reference window {reference} is out of range ({len(labels)} windows)")
    return int(reference) % len(labels)
