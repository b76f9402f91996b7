"""Champion and challenger: two models compared on the same rows, in one game.

:func:`compare_versions` explains both models on the same rows against the same
background (hashed once), in the same output space (their margin when both models share
a link, else their probability or prediction), so their values are comparable, and
reports:

* **Performance** with ``y``: the task's metrics with paired bootstrap intervals of the
  challenger-minus-champion difference; **calibration** (reliability bins, Brier / log
  loss for classifiers); the **score distributions'** PSI and KS
  (:mod:`shapgov.analyses.comparison_stats`).
* **Explanation agreement**: Feature Impact (mean ``|SHAP|``) of both, its Spearman rank
  correlation and top-``k`` overlap, each input's rank change and impact-share change
  (the inputs whose impact moved most first); per row, top-``k`` overlap and the sign
  agreement of the champion's top-``k`` values.
* **The difference per row**: ``phi_challenger - phi_champion`` per input; with the two
  base values' difference it sums exactly to the difference of the two outputs in the
  shared space (the game is the same, so the values add up on both sides). With a
  ``decision``, the rows whose decisions differ, each with the inputs that explain the
  difference most.

* **Over time** (``time`` and ``freq``): per window of the rows' time, the same figures
  without the bootstrap: rows, both models' mean scores, the scores' PSI and KS, the
  metrics of both and their difference, the Feature Impact rank correlation and top-k
  overlap (:attr:`VersionComparison.windows`).

A model that does not read an input of the rows gets exactly 0 for it (a player it never
reads is a dummy); an input a model needs that the rows lack raises
:class:`~shapgov.errors.ColumnMismatchError` unless ``columns`` maps it to one they hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from shapgov.analyses.comparison_stats import ks, paired_bootstrap, psi, reliability
from shapgov.analyses.tables import json_records
from shapgov.errors import ColumnMismatchError, InputError

#: Rows whose decisions differ listed with their explaining inputs (the rest counted).
MAX_LISTED_ROWS = 200


@dataclass(frozen=True, eq=False)
class VersionComparison:
    """The result of :func:`compare_versions`.

    :param impact: One row per input: ``impact_champion``, ``impact_challenger`` (mean
        ``|SHAP|``), their shares, ``rank_champion``, ``rank_challenger``, ``rank_change``
        (champion rank - challenger rank: positive = moved up), ``share_change``.
    :param metrics: One row per metric (with ``y``): both values, ``difference``, its
        bootstrap interval ``low``/``high``, ``gain`` (positive = the challenger better).
    :param rows: One row per explained row: ``score_champion``, ``score_challenger``,
        ``output_difference`` (in the shared space), ``top_k_overlap``, ``sign_agreement``,
        ``decision_champion``/``decision_challenger`` (with a decision), ``top_inputs``
        (the inputs with the largest ``|phi_challenger - phi_champion|``).
    :param difference: ``(n, M)`` ``phi_challenger - phi_champion`` per row and input.
    :param summary: Game, space, background SHA-256, rank correlation, top-k overlap,
        PSI, KS, decision changes, calibration tables, the settings.
    """

    impact: pd.DataFrame
    metrics: pd.DataFrame
    rows: pd.DataFrame
    difference: np.ndarray = field(repr=False)
    summary: dict[str, Any] = field(default_factory=dict)
    champion: Any = field(default=None, repr=False)
    challenger: Any = field(default=None, repr=False)
    #: One row per time window when ``time`` was given (see the module), else ``None``.
    windows: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary and tables (without the per-row difference matrix)."""
        out = {
            "summary": self.summary,
            "impact": json_records(self.impact),
            "metrics": json_records(self.metrics),
        }
        if self.windows is not None:
            out["windows"] = json_records(self.windows)
        return out


def _columns(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    if names is None and hasattr(model, "steps"):
        names = getattr(model.steps[0][1], "feature_names_in_", None)
    return None if names is None else [str(c) for c in names]


def _rows_for(model: Any, X: pd.DataFrame, columns: dict[str, str], which: str) -> pd.DataFrame:
    """The columns of ``X`` the model reads, renamed by ``columns`` (model name -> rows'
    name), in the model's order."""
    needed = _columns(model)
    if needed is None:
        return X
    # LightGBM stores a column's name with spaces and JSON's special characters as "_"
    sanitized = {re.sub(r"[\s\"',:\[\]{}]", "_", str(c)): str(c) for c in X.columns}
    source = {
        name: columns.get(name, name if name in X.columns else sanitized.get(name, name))
        for name in needed
    }
    missing = [m for m, s in source.items() if s not in X.columns]
    if missing:
        raise ColumnMismatchError(
            f"the {which} reads column(s) {missing} that the rows do not hold; pass "
            "columns={'<model column>': '<column of the rows>'} to map them"
        )
    frame = X[[source[m] for m in needed]]
    # a mapped column takes the model's name; a sanitized match keeps the rows' own (the
    # name the model was fitted on)
    return frame.set_axis([m if m in columns else source[m] for m in needed], axis=1)


def _explain(model: Any, frame: pd.DataFrame, background: pd.DataFrame, output: str) -> Any:
    import shapgov

    return shapgov.explain(
        model, frame, background=background, feature_perturbation="interventional", output=output
    )


def _on_rows(e: Any, X: pd.DataFrame, columns: dict[str, str]) -> np.ndarray:
    """The explanation's values ``(n, M)`` placed on the rows' columns (0 where unread)."""
    out = np.zeros((len(X), X.shape[1]))
    position = {str(c): j for j, c in enumerate(X.columns)}
    for j, name in enumerate(e.feature_names):
        out[:, position[columns.get(str(name), str(name))]] += e._raw[:, j, 0]
    return out


def compare_versions(
    champion: Any,
    challenger: Any,
    X: Any,
    *,
    y: Any = None,
    background: Any = None,
    decision: Any = None,
    columns: dict[str, str] | None = None,
    k: int = 5,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    random_state: int = 0,
    time: Any = None,
    freq: str = "M",
) -> VersionComparison:
    """Compare two fitted models on the rows ``X`` in one game (see the module).

    :param champion: The model in production (fitted).
    :param challenger: The model proposed to replace it (fitted).
    :param X: The rows ``(n, M)`` (DataFrame): the union of the columns both read.
    :param y: Outcomes ``(n,)`` for the metrics and calibration.
    :param background: The background rows (default: a seeded sample of 200 rows of ``X``);
        the same for both, hashed once.
    :param decision: A :class:`shapgov.Decision`: rows whose decisions differ are listed.
    :param columns: Model column name -> column of ``X`` where a model names an input
        otherwise.
    :param k: Top-k of the agreement figures.
    :param n_bootstrap: Paired bootstrap resamples of the metric differences.
    :param time: The rows' times ``(n,)`` (or the name of a column of ``X``, then not an
        input): the figures per window of ``freq`` (a pandas period alias, ``"M"``).
    :returns: :class:`VersionComparison`.
    :raises ColumnMismatchError: A model reads a column ``X`` lacks (and ``columns`` does not
        map).
    :raises InputError: Models of different tasks or output counts; bad ``k``, ``y``.
    """
    from shapgov.planning.game import frame_sha256

    if not isinstance(X, pd.DataFrame):
        raise InputError("X must be a DataFrame whose columns name the inputs both models read")
    if not isinstance(k, int) or k < 1:
        raise InputError(f"k must be a positive int, got {k!r}")
    columns = {str(a): str(b) for a, b in (columns or {}).items()}
    if isinstance(time, str):
        if time not in X.columns:
            raise InputError(f"time={time!r} is not a column of X")
        time, X = X[time], X.drop(columns=[time])
    if time is not None:
        time = pd.to_datetime(pd.Series(np.asarray(time)), errors="raise")
        if len(time) != len(X):
            raise InputError(f"time has {len(time)} values for {len(X)} rows")
    if background is None:
        background = X.sample(min(200, len(X)), random_state=random_state)
    frames = {
        name: (_rows_for(m, X, columns, name), _rows_for(m, background, columns, name))
        for name, m in (("champion", champion), ("challenger", challenger))
    }
    e_cp = _explain(champion, *frames["champion"], "margin")
    e_ch = _explain(challenger, *frames["challenger"], "margin")
    if e_cp.task != e_ch.task or e_cp.n_outputs != e_ch.n_outputs or e_cp.n_outputs != 1:
        raise InputError(
            "compare_versions compares two models of one task with one output each (binary "
            f"classifiers or regressors); got {e_cp.task}/{e_cp.n_outputs} and "
            f"{e_ch.task}/{e_ch.n_outputs}"
        )
    output = "margin"
    if e_cp.link.name != e_ch.link.name or e_cp.output_space != e_ch.output_space:
        output = "probability" if e_cp.task != "regression" else "prediction"
        e_cp = _explain(champion, *frames["champion"], output)
        e_ch = _explain(challenger, *frames["challenger"], output)
    phi_cp, phi_ch = _on_rows(e_cp, X, columns), _on_rows(e_ch, X, columns)
    difference = phi_ch - phi_cp
    out_cp, out_ch = e_cp.explained_output[:, 0], e_ch.explained_output[:, 0]
    base_difference = float(e_ch.expected_value[0] - e_cp.expected_value[0])
    impact = _impact(X, phi_cp, phi_ch)
    rows = _row_agreement(X, phi_cp, phi_ch, difference, k)
    rows.insert(0, "output_difference", out_ch - out_cp)
    scores = {
        "champion": _score(e_cp, decision),
        "challenger": _score(e_ch, decision),
    }
    rows.insert(0, "score_challenger", scores["challenger"])
    rows.insert(0, "score_champion", scores["champion"])
    rank = np.nan
    if len(impact) > 1:
        rank = float(spearmanr(impact["impact_champion"], impact["impact_challenger"]).statistic)
    statistic, p_value = ks(scores["champion"], scores["challenger"])
    rebuilt = difference.sum(axis=1) + base_difference
    summary: dict[str, Any] = {
        "space": output if output != "margin" else f"margin (link {e_cp.link.name})",
        "game": e_cp.game.get("description"),
        "background_sha256": frame_sha256(background),
        "rows": len(X),
        "rows_sha256": frame_sha256(X),
        "base_difference": base_difference,
        "k": k,
        "rank_correlation": rank,
        "top_k_overlap": _overlap(impact, k),
        "mean_row_top_k_overlap": float(rows["top_k_overlap"].mean()),
        "mean_sign_agreement": float(rows["sign_agreement"].mean()),
        "psi": psi(scores["champion"], scores["challenger"]),
        "ks": {"statistic": statistic, "p_value": p_value},
        "settings": {
            "n_bootstrap": n_bootstrap,
            "confidence": confidence,
            "random_state": random_state,
        },
        "max_decomposition_error": float(np.max(np.abs(rebuilt - (out_ch - out_cp)))),
    }
    metrics = pd.DataFrame()
    if y is not None:
        y = _outcomes(y, e_cp, len(X))
        task = "regression" if e_cp.task == "regression" else "classification"
        p_cp, p_ch = _prediction(e_cp), _prediction(e_ch)
        metrics = pd.DataFrame(
            paired_bootstrap(
                y, p_cp, p_ch, task,
                n_bootstrap=n_bootstrap, confidence=confidence, random_state=random_state,
            )
        )  # fmt: skip
        if task == "classification":
            summary["calibration"] = {
                "champion": reliability(y, p_cp),
                "challenger": reliability(y, p_ch),
            }
    if decision is not None:
        declined_cp = np.asarray(decision.declined(scores["champion"]), dtype=bool)
        declined_ch = np.asarray(decision.declined(scores["challenger"]), dtype=bool)
        rows["declined_champion"], rows["declined_challenger"] = declined_cp, declined_ch
        changed = declined_cp != declined_ch
        summary["decision"] = decision.to_dict()
        summary["decisions_changed"] = int(changed.sum())
        summary["newly_declined"] = int((declined_ch & ~declined_cp).sum())
        summary["newly_approved"] = int((declined_cp & ~declined_ch).sum())
    windows = None
    if time is not None:
        task = "regression" if e_cp.task == "regression" else "classification"
        windows = _windows(time, freq, phi_cp, phi_ch, scores, y, task, k,
                           _prediction(e_cp), _prediction(e_ch))  # fmt: skip
    return VersionComparison(impact, metrics, rows, difference, summary, e_cp, e_ch, windows)


def _windows(
    time: pd.Series, freq: str, phi_cp: np.ndarray, phi_ch: np.ndarray,
    scores: dict[str, np.ndarray], y: Any, task: str, k: int,
    p_cp: np.ndarray, p_ch: np.ndarray,
) -> pd.DataFrame:  # fmt: skip
    """The figures per window (no bootstrap)."""
    from shapgov.analyses.comparison_stats import METRICS

    labels = time.dt.to_period(freq).astype(str).to_numpy()
    rows = []
    for window in sorted(set(labels)):
        inside = labels == window
        a, b = np.abs(phi_cp[inside]).mean(axis=0), np.abs(phi_ch[inside]).mean(axis=0)
        top_a, top_b = set(np.argsort(-a)[:k]), set(np.argsort(-b)[:k])
        row = {
            "window": window, "rows": int(inside.sum()),
            "mean_score_champion": float(scores["champion"][inside].mean()),
            "mean_score_challenger": float(scores["challenger"][inside].mean()),
            "psi": psi(scores["champion"][inside], scores["challenger"][inside]),
            "ks": ks(scores["champion"][inside], scores["challenger"][inside])[0],
            "rank_correlation": float(spearmanr(a, b).statistic) if inside.sum() > 1 else np.nan,
            "top_k_overlap": len(top_a & top_b) / min(k, len(a)),
        }  # fmt: skip
        if y is not None:
            for name, (metric, _) in METRICS[task].items():
                cp, ch = metric(y[inside], p_cp[inside]), metric(y[inside], p_ch[inside])
                row[f"{name}_champion"], row[f"{name}_challenger"] = cp, ch
                row[f"{name}_difference"] = ch - cp
        rows.append(row)
    return pd.DataFrame(rows)


def _outcomes(y: Any, e: Any, n: int) -> np.ndarray:
    """``y`` as floats: a classifier's observed classes as 1 for its positive (last)
    class, 0 for the other; a regressor's values as they are.

    :raises InputError: Not one value per row, or a class the model does not have.
    """
    y = np.asarray(y)
    if y.shape != (n,):
        raise InputError(f"y has shape {y.shape}; pass one outcome per row of X")
    classes = list(e.classes or [])
    if classes:
        unknown = sorted(set(pd.unique(y).tolist()) - set(classes), key=str)
        if unknown:
            raise InputError(f"y holds {unknown[:5]}, not classes of the models {classes}")
        return (y == classes[-1]).astype(float)
    try:
        return y.astype(float)
    except (TypeError, ValueError) as err:
        raise InputError(f"a regressor's y must be numbers: {err}") from err


def _prediction(e: Any) -> np.ndarray:
    prediction = e.prediction
    if prediction is None:
        prediction = e.link.inverse(e.explained_output)
    return np.asarray(prediction, dtype=float)[:, 0]


def _score(e: Any, decision: Any) -> np.ndarray:
    if decision is not None and decision.score == "margin":
        return e.explained_output[:, 0]
    return _prediction(e)


def _impact(X: pd.DataFrame, phi_cp: np.ndarray, phi_ch: np.ndarray) -> pd.DataFrame:
    a, b = np.abs(phi_cp).mean(axis=0), np.abs(phi_ch).mean(axis=0)
    frame = pd.DataFrame(
        {"input": [str(c) for c in X.columns], "impact_champion": a, "impact_challenger": b}
    )
    frame["share_champion"] = a / a.sum() if a.sum() > 0 else 0.0
    frame["share_challenger"] = b / b.sum() if b.sum() > 0 else 0.0
    frame["rank_champion"] = (
        frame["impact_champion"].rank(ascending=False, method="min").astype(int)
    )
    frame["rank_challenger"] = (
        frame["impact_challenger"].rank(ascending=False, method="min").astype(int)
    )
    frame["rank_change"] = frame["rank_champion"] - frame["rank_challenger"]
    frame["share_change"] = frame["share_challenger"] - frame["share_champion"]
    order = np.argsort(-np.abs(frame["share_change"].to_numpy()), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def _overlap(impact: pd.DataFrame, k: int) -> float:
    top_a = set(impact.nsmallest(k, "rank_champion")["input"])
    top_b = set(impact.nsmallest(k, "rank_challenger")["input"])
    return len(top_a & top_b) / min(k, len(impact))


def _row_agreement(
    X: pd.DataFrame, phi_cp: np.ndarray, phi_ch: np.ndarray, difference: np.ndarray, k: int
) -> pd.DataFrame:
    kk = min(k, X.shape[1])
    top_cp = np.argsort(-np.abs(phi_cp), axis=1, kind="stable")[:, :kk]
    top_ch = np.argsort(-np.abs(phi_ch), axis=1, kind="stable")[:, :kk]
    overlap = np.array([len(set(a) & set(b)) / kk for a, b in zip(top_cp, top_ch, strict=True)])
    rows = np.arange(len(X))[:, None]
    signs = np.sign(phi_cp[rows, top_cp]) == np.sign(phi_ch[rows, top_cp])
    names = np.asarray([str(c) for c in X.columns], dtype=object)
    explaining = np.argsort(-np.abs(difference), axis=1, kind="stable")[:, :3]
    return pd.DataFrame(
        {
            "row": X.index,
            "top_k_overlap": overlap,
            "sign_agreement": signs.mean(axis=1),
            "top_inputs": [", ".join(names[i]) for i in explaining],
        }
    )
