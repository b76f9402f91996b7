"""Explanations over time windows (DataRobot's OTV column), with drift flagged.

:func:`over_time` explains every row once, in one game whose background is fixed across
windows (so base values and values are comparable), then aggregates by window: rows,
mean prediction, additivity, SHAP Feature Impact, optionally permutation impact. Each
window is compared with the reference window and with the previous one:

* rank agreement of the impact vectors (Spearman's rho; Kendall's tau-b, ties counted);
* ``impact_l1 = sum_j |share_wj - share_rj|`` with ``share_j = impact_j / sum impact``
  (in [0, 2]; ``shapgov approve --max-impact-drift`` judges it against the reference);
* per player, the Wasserstein distance and the two-sample Kolmogorov-Smirnov test of its
  SHAP values (:mod:`shapgov.analyses.drift`), Holm-adjusted over every test of the
  result;
* players whose share of impact moved by more than ``share_threshold``.

**The flag rule**: a window is flagged when some player's SHAP distribution differs
from the compared window's with Holm-adjusted p-value <= ``alpha`` *and* a Wasserstein
distance of at least ``min_effect`` times the reference window's total impact (a shift
that is both significant and material). Under stationarity the chance that any window
of a result is flagged is at most ``alpha`` (Holm controls the family-wise error rate);
the rules and thresholds are recorded in :attr:`OverTime.rules`. Explanation shift as a
monitoring signal: Mougan et al., "Explanation Shift", 2023.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shapgov.analyses.drift import holm, ks_pvalue, window_drift
from shapgov.analyses.impact import sample_rows
from shapgov.analyses.tables import json_records
from shapgov.analyses.windows import Windows, split_time, time_windows
from shapgov.errors import InputError

DEFAULT_BACKGROUND = 1000
COMPARISONS = ("reference", "previous")


@dataclass(frozen=True, eq=False)
class OverTime:
    """The result of :func:`over_time`.

    :param windows: One row per window: ``window`` (label), ``start``, ``end``, ``rows``,
        ``mean_prediction`` (the model's prediction as the additivity check saw it, e.g. a
        probability; first output), ``base_value`` (in the explained space, e.g. the
        margin; first output), ``additivity_status``, ``max_normalized_mismatch``,
        ``rows_over_pass_tolerance``, ``flagged``.
    :param impact: One row per (window, player): ``impact`` (mean ``|SHAP|``, the explained
        space's units), ``normalized`` (top = 100), ``share`` (of the window's total),
        ``rank``, ``mean_shap``; ``impact_member_sum`` for groups; ``permutation_impact``
        and ``permutation_normalized`` when ``y`` was given.
    :param drift: One row per (window, against) with ``against`` in
        ``("reference", "previous")``: ``spearman``, ``kendall``, ``impact_l1``,
        ``max_wasserstein``, ``min_p_adjusted``, ``flagged``, ``shifted`` (players flagged)
        and ``moved`` (players whose share moved more than the threshold).
    :param player_drift: One row per (window, against, player): ``wasserstein``,
        ``ks_statistic``, ``p_value``, ``p_adjusted``, ``share``, ``share_compared``,
        ``share_change``, ``shifted``.
    :param rules: The rules and thresholds, the reference window, the background and game.
    :param explanation: The :class:`~shapgov.Explanation` of all windowed rows (by
        column), in time order.
    :param grouped: The :class:`~shapgov.grouped.GroupedExplanation` when ``players``
        groups columns, else ``None``.
    :param positions: ``(N,)`` the position in the input of every explained row (rows of
        :attr:`explanation`), to align other per-row data with it.
    """

    windows: pd.DataFrame
    impact: pd.DataFrame
    drift: pd.DataFrame
    player_drift: pd.DataFrame
    rules: dict[str, Any] = field(default_factory=dict)
    explanation: Any = field(default=None, repr=False)
    grouped: Any = field(default=None, repr=False)
    positions: np.ndarray | None = field(default=None, repr=False)

    @property
    def flagged_windows(self) -> list[str]:
        """The labels of the flagged windows, in time order."""
        return self.windows.loc[self.windows["flagged"], "window"].tolist()

    def max_impact_drift(self) -> float:
        """The largest ``impact_l1`` of any window against the reference (0 for one window)."""
        against = self.drift[self.drift["against"] == "reference"]["impact_l1"]
        return float(against.max()) if len(against) else 0.0

    def to_frame(self) -> pd.DataFrame:
        """One row per (window, player): the window's figures, the player's impact and its
        drift against the reference window."""
        ref = self.player_drift[self.player_drift["against"] == "reference"]
        ref = ref.drop(columns=["against", "share"])
        out = self.windows.merge(self.impact, on="window", how="left")
        return out.merge(ref, on=["window", "player"], how="left")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every table as records, the rules and the flagged windows."""
        return {
            "rules": self.rules,
            "flagged_windows": self.flagged_windows,
            "max_impact_drift": self.max_impact_drift(),
            "windows": json_records(_texts(self.windows)),
            "impact": json_records(self.impact),
            "drift": json_records(self.drift),
            "player_drift": json_records(self.player_drift),
        }


def _texts(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in ("start", "end"):
        out[c] = out[c].map(_stamp_text)
    return out


def _stamp_text(t: Any) -> Any:
    if isinstance(t, pd.Timestamp | np.datetime64):
        return None if pd.isna(t) else pd.Timestamp(t).isoformat()
    return t


def over_time(
    model: Any,
    X: Any,
    *,
    time: Any,
    freq: str | None = None,
    windows: Sequence[Any] | None = None,
    background: Any = None,
    background_size: int = DEFAULT_BACKGROUND,
    reference: int | str | None = None,
    y: Any = None,
    players: Mapping[str, Sequence[Any]] | None = None,
    alpha: float = 0.05,
    min_effect: float = 0.01,
    share_threshold: float = 0.05,
    time_is_feature: bool | None = None,
    permutation_sample: int = 2500,
    random_state: int = 0,
    **explain_options: Any,
) -> OverTime:
    """Explain ``X`` once and aggregate the explanation by time window (module docstring).

    :param X: Rows ``(n, M)`` with their features (and the time column, when ``time``
        names one).
    :param time: A column label of ``X`` or ``n`` timestamps. The time column is not a
        feature unless the model uses it (it names it in ``feature_names_in_``; or pass
        ``time_is_feature=True``). Rows without a time, or outside ``windows``, are left
        out (counted in ``rules["rows_outside"]``).
    :param freq: A pandas period alias (``"M"`` months, ``"W"`` or ``"W-MON"``, ``"Q"``,
        ``"D"``, ``"h"``, ...) or an offset alias that stands for one (``"MS"``/``"ME"``
        months, ``"QS"``/``"QE-NOV"`` quarters, ``"YS"``/``"YE"`` years: the same windows;
        ``shapgov.analyses.windows.period_freq``), or else ``windows``: increasing
        edges, window ``i`` being ``[edges[i], edges[i+1])``. Empty windows are left out.
    :param background: The background, fixed across windows (e.g. the training rows);
        default: a seeded sample of ``background_size`` rows of the reference window.
    :param reference: The reference window (index or label); default: the first.
    :param y: Targets (a column label of ``X`` or ``n`` values): adds permutation
        impact per window (``permutation_sample`` rows each).
    :param players: Groups of columns explained as one player each
        (:func:`shapgov.explain_groups`); every table is then over players, with the sum
        of the members' values beside (``impact_member_sum``).
    :param alpha: Family-wise level of the drift tests.
    :param min_effect: Smallest Wasserstein distance that flags, as a share of the
        reference window's total impact.
    :param share_threshold: A player's share of impact moving more than this is listed.
    :param explain_options: Passed to :func:`shapgov.explain` (``output=``, ...).
    :returns: :class:`OverTime`.
    :raises InputError: No or bad time column, windows or options.
    :raises AdditivityError: The explanation failed the additivity policy.
    """
    _check_levels(alpha=alpha, min_effect=min_effect, share_threshold=share_threshold)
    if "background_weights" in explain_options and background is None:
        raise InputError("background_weights need background rows; pass background= too")
    if "interactions" in explain_options:
        raise InputError(
            "over_time aggregates SHAP values; interaction values are not aggregated (use "
            "shapgov.explain(..., interactions=True) on a window's rows)"
        )
    frame, stamps, target, column = split_time(
        model, X, time=time, y=y, time_is_feature=time_is_feature
    )
    win = time_windows(stamps, freq=freq, windows=windows, reference=reference)
    _warn_small(win)
    dated = isinstance(background, pd.DataFrame) and column in background.columns
    if dated and column not in frame.columns:  # the training rows with their time column
        background = background.drop(columns=[column])
    if np.array_equal(win.order, np.arange(len(frame))):
        rows = frame  # already in time order, every row windowed: no copy
    else:
        rows = frame.iloc[win.order].reset_index(drop=True)
    labels = None if target is None else np.asarray(target)[win.order]
    bg_source = "given"
    path_dependent = explain_options.get("feature_perturbation") == "tree_path_dependent"
    if path_dependent and background is None:
        bg_source = "none: the path-dependent game has no background"
    elif background is None:
        ref_rows = rows.iloc[win.starts[win.reference] : win.starts[win.reference + 1]]
        background = sample_rows(ref_rows, background_size, random_state, what="background")
        bg_source = f"{len(background)} rows sampled from the reference window"
    grouped = None
    if players:
        from shapgov.grouped import explain_groups

        grouped = explain_groups(
            model, rows, players=players, background=background, **explain_options
        )
        e = grouped.explanation
        names = list(grouped.names)
        values = grouped.values.reshape(len(rows), len(names), -1)
        member_sums = grouped.member_sums.reshape(values.shape)
    else:
        from shapgov.engine import explain

        e = explain(model, rows, background=background, **explain_options)
        names = [str(c) for c in e.feature_names]
        values = e._raw
        member_sums = None
    table = _window_table(win, e)
    impact = _impact_table(win, names, values, member_sums)
    if labels is not None:
        impact = _with_permutation(
            impact, model, rows, labels, win, grouped, permutation_sample, random_state
        )
    drift, player_drift = _drift_tables(
        win, names, values, impact, alpha=alpha, min_effect=min_effect, threshold=share_threshold
    )
    flagged = drift.groupby("window", sort=False)["flagged"].any()
    table["flagged"] = table["window"].map(flagged).astype(object).fillna(False).astype(bool)
    rules = {
        "windows": win.describe(),
        "reference_window": win.labels[win.reference],
        "rows": len(rows),
        "rows_outside": int(win.rows_outside),
        "empty_windows_left_out": win.empty,
        "background": {"source": bg_source, **_game_background(e)},
        "game": e.game,
        "players": None if grouped is None else grouped.players.to_dict()["players"],
        "impact": "mean |SHAP| per player and window, averaged over outputs",
        "share": "impact / sum of impacts of the window",
        "impact_l1": "sum over players of |share - share of the compared window|, in [0, 2]",
        "rank_agreement": "Spearman's rho and Kendall's tau-b of the impact vectors",
        "test": "two-sample Kolmogorov-Smirnov on each player's SHAP values, asymptotic "
        "p-value with Stephens' correction; Holm-adjusted over every test of the result",
        "alpha": alpha,
        "min_effect": min_effect,
        "min_effect_rule": "Wasserstein distance >= min_effect x the reference window's total "
        "impact",
        "share_threshold": share_threshold,
        "flag_rule": "a window is flagged when a player's SHAP distribution differs from the "
        "compared window's (reference or previous) with Holm-adjusted p <= alpha and a "
        "Wasserstein distance >= the min_effect rule",
    }
    return OverTime(table, impact, drift, player_drift, rules, e, grouped, win.order)


#: Windows with fewer rows get a :class:`~shapgov.errors.SmallWindowWarning`.
MIN_WINDOW_ROWS = 30


def _check_levels(*, alpha: Any, min_effect: Any, share_threshold: Any) -> None:
    for name, value, lo, hi in (
        ("alpha", alpha, 0.0, 1.0),
        ("min_effect", min_effect, 0.0, np.inf),
        ("share_threshold", share_threshold, 0.0, 2.0),
    ):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = np.nan
        if isinstance(value, str | bool) or not (lo <= number <= hi):
            raise InputError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
        if name == "alpha" and number in (0.0, 1.0):
            raise InputError(f"alpha must be strictly between 0 and 1, got {value!r}")


def _warn_small(win: Windows) -> None:
    import warnings

    from shapgov.errors import SmallWindowWarning

    sizes = np.diff(win.starts)
    small = [label for label, n in zip(win.labels, sizes, strict=True) if n < MIN_WINDOW_ROWS]
    if small:
        ref = " (the reference window among them)" if sizes[win.reference] < MIN_WINDOW_ROWS else ""
        warnings.warn(
            SmallWindowWarning(
                f"{len(small)} of {len(win.labels)} windows have fewer than {MIN_WINDOW_ROWS} "
                f"rows{ref}: {', '.join(small[:10])}{' ...' if len(small) > 10 else ''}; their "
                "impact and drift figures are noisy (use longer windows)"
            ),
            stacklevel=3,
        )


def _game_background(e: Any) -> dict[str, Any]:
    return {k: e.game.get(k) for k in ("n_background", "background_sha256")}


def _window_table(win: Windows, e: Any) -> pd.DataFrame:
    """Rows, mean prediction and additivity per window (rows in window order)."""
    mismatch = np.asarray(e.additivity.row_mismatch, dtype=float)
    prediction = e.prediction if e.prediction is not None else e.explained_output
    records = []
    policy = e.additivity
    for w, label in enumerate(win.labels):
        s, t = win.starts[w], win.starts[w + 1]
        m = mismatch[s:t] if mismatch.size else np.zeros(0)
        over_tol = int((m > policy.pass_tolerance).sum())
        records.append(
            {
                "window": label,
                "start": win.bounds[w][0],
                "end": win.bounds[w][1],
                "rows": int(t - s),
                "mean_prediction": float(prediction[s:t, 0].mean()),
                "base_value": float(e.expected_value[0]),
                "additivity_status": "warn" if over_tol else "pass",
                "max_normalized_mismatch": float(m.max(initial=0.0)),
                "rows_over_pass_tolerance": over_tol,
            }
        )
    return pd.DataFrame.from_records(records)


def _impact_table(
    win: Windows, names: list[str], values: np.ndarray, member_sums: np.ndarray | None
) -> pd.DataFrame:
    """Per window: mean |SHAP| per player (averaged over outputs, as
    :func:`~shapgov.analyses.impact.shap_impact` computes it), its share and rank."""
    frames = []
    for w, label in enumerate(win.labels):
        block = values[win.starts[w] : win.starts[w + 1]]
        impact = np.abs(block).mean(axis=0).mean(axis=1)
        frame = pd.DataFrame(
            {
                "window": label,
                "player": names,
                "impact": impact,
                "mean_shap": block.mean(axis=0).mean(axis=1),
            }
        )
        if member_sums is not None:
            sums = member_sums[win.starts[w] : win.starts[w + 1]]
            frame["impact_member_sum"] = np.abs(sums).mean(axis=0).mean(axis=1)
        top, total = impact.max(), impact.sum()
        frame["normalized"] = 100.0 * impact / top if top > 0 else 0.0
        frame["share"] = impact / total if total > 0 else 0.0
        frame["rank"] = frame["impact"].rank(ascending=False, method="first").astype(int)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _with_permutation(
    impact: pd.DataFrame,
    model: Any,
    rows: pd.DataFrame,
    labels: np.ndarray,
    win: Windows,
    grouped: Any,
    sample: int,
    random_state: int,
) -> pd.DataFrame:
    from shapgov.analyses.impact import permutation_impact

    groups = None
    if grouped is not None:
        groups = {n: list(m) for n, m in zip(grouped.names, grouped.players.members, strict=True)}
    frames = []
    for w, label in enumerate(win.labels):
        s, t = win.starts[w], win.starts[w + 1]
        p = permutation_impact(
            model,
            rows.iloc[s:t],
            labels[s:t],
            sample=sample,
            random_state=random_state,
            groups=groups,
        ).frame
        frames.append(
            pd.DataFrame(
                {
                    "window": label,
                    "player": p["feature"].map(str),
                    "permutation_impact": p["impact"],
                    "permutation_normalized": p["normalized"],
                }
            )
        )
    return impact.merge(pd.concat(frames), on=["window", "player"], how="left")


def _drift_tables(
    win: Windows,
    names: list[str],
    values: np.ndarray,
    impact: pd.DataFrame,
    *,
    alpha: float,
    min_effect: float,
    threshold: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every window against the reference and against the previous window."""

    n_win, n_players = len(win.labels), len(names)
    k = values.shape[2]
    pairs = [(w, win.reference, "reference") for w in range(n_win) if w != win.reference]
    pairs += [(w, w - 1, "previous") for w in range(1, n_win)]
    if not pairs:  # one window: nothing to compare
        return (
            pd.DataFrame(columns=DRIFT_COLUMNS).astype({"flagged": bool}),
            pd.DataFrame(columns=PLAYER_DRIFT_COLUMNS),
        )
    # a pair compared twice (the window after the reference, against both) is one test
    unique = sorted({(a, b) for a, b, _ in pairs})
    slot = {pair: i for i, pair in enumerate(unique)}
    index = np.array(unique, dtype=np.int64).reshape(-1, 2)
    stats = window_drift(values.reshape(len(values), -1), win.starts, index)
    stats = stats.reshape(len(unique), n_players, k, 2)
    sizes = np.diff(win.starts)
    d_all = stats[..., 0]
    p_all = ks_pvalue(d_all, sizes[index[:, 0]][:, None, None], sizes[index[:, 1]][:, None, None])
    take = np.array([slot[(a, b)] for a, b, _ in pairs])
    d = d_all[take]
    p = p_all.min(axis=2)[take]  # a player's smallest p over outputs; Holm counts every output
    p_adj = holm(p_all).min(axis=2)[take]
    w1 = stats[..., 1].max(axis=2)[take]
    shares = impact.pivot(index="window", columns="player", values="share")
    shares = shares.loc[win.labels, names].to_numpy()
    impacts = impact.pivot(index="window", columns="player", values="impact")
    impacts = impacts.loc[win.labels, names].to_numpy()
    floor = min_effect * impacts[win.reference].sum()
    shifted = (p_adj <= alpha) & (w1 >= floor)
    drift_rows, player_rows = [], []
    for q, (w, v, against) in enumerate(pairs):
        change = shares[w] - shares[v]
        moved = [names[j] for j in np.flatnonzero(np.abs(change) > threshold)]
        flagged_players = [names[j] for j in np.flatnonzero(shifted[q])]
        rho, tau = _rank_agreement(impacts[w], impacts[v])
        drift_rows.append(
            {
                "window": win.labels[w],
                "against": against,
                "compared_window": win.labels[v],
                "spearman": float(rho),
                "kendall": float(tau),
                "impact_l1": float(np.abs(change).sum()),
                "max_wasserstein": float(w1[q].max(initial=0.0)),
                "min_p_adjusted": float(np.nanmin(p_adj[q], initial=1.0)),
                "flagged": bool(flagged_players),
                "shifted": ", ".join(flagged_players),
                "moved": ", ".join(moved),
            }
        )
        for j, name in enumerate(names):
            player_rows.append(
                {
                    "window": win.labels[w],
                    "against": against,
                    "player": name,
                    "wasserstein": float(w1[q, j]),
                    "ks_statistic": float(d[q, j].max()),
                    "p_value": float(p[q, j]),
                    "p_adjusted": float(p_adj[q, j]),
                    "share": float(shares[w, j]),
                    "share_compared": float(shares[v, j]),
                    "share_change": float(change[j]),
                    "shifted": bool(shifted[q, j]),
                }
            )
    drift = pd.DataFrame.from_records(drift_rows, columns=DRIFT_COLUMNS)
    return drift, pd.DataFrame.from_records(player_rows, columns=PLAYER_DRIFT_COLUMNS)


DRIFT_COLUMNS = ["window", "against", "compared_window", "spearman", "kendall", "impact_l1"]
DRIFT_COLUMNS += ["max_wasserstein", "min_p_adjusted", "flagged", "shifted", "moved"]
PLAYER_DRIFT_COLUMNS = ["window", "against", "player", "wasserstein", "ks_statistic"]
PLAYER_DRIFT_COLUMNS += ["p_value", "p_adjusted", "share", "share_compared", "share_change"]
PLAYER_DRIFT_COLUMNS += ["shifted"]


def _rank_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Spearman's rho and Kendall's tau-b of two impact vectors; NaN where one is
    constant (no ranking to agree with) or there is one player."""
    import warnings

    from scipy.stats import kendalltau, spearmanr

    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan, np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic), float(kendalltau(a, b).statistic)
