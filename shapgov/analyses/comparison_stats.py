"""The statistics of a champion-challenger comparison (:mod:`shapgov.analyses.versions`).

* **Metrics** of the task: classification: ROC AUC, log loss, Brier score; regression:
  RMSE, MAE, R². **Paired bootstrap** of the challenger-minus-champion difference: the
  same ``B`` resamples of row indices for both models (``numpy.random.default_rng(seed)
  .integers(0, n, size=(B, n))``), percentile interval (Efron and Tibshirani 1993, ch. 13).
* **Population stability index** of the challenger's scores against the champion's:
  ``sum_b (q_b - p_b) ln(q_b / p_b)`` over the champion's decile bins, empty bins floored
  at :data:`PSI_FLOOR` (Siddiqi 2006; Yurdakul 2018). **Kolmogorov-Smirnov**: the
  two-sample statistic and p-value (:func:`scipy.stats.ks_2samp`).
* **Reliability bins**: per quantile bin of a model's score, the mean score and the
  observed rate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import ks_2samp

#: Probability floor of an empty bin in the PSI.
PSI_FLOOR = 1e-4
#: Bins of the PSI and of the reliability table.
BINS = 10
#: Clip of probabilities in the log loss.
LOG_LOSS_EPS = 1e-15


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from scipy.stats import rankdata

    pos = y.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return np.nan
    ranks = rankdata(p)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    total = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - p) ** 2) / total) if total > 0 else np.nan


#: The metrics per task: name -> (function of (y, score), higher is better).
METRICS: dict[str, dict[str, tuple[Callable[[np.ndarray, np.ndarray], float], bool]]] = {
    "classification": {
        "roc_auc": (_auc, True),
        "log_loss": (_log_loss, False),
        "brier": (lambda y, p: float(np.mean((p - y) ** 2)), False),
    },
    "regression": {
        "rmse": (lambda y, p: float(np.sqrt(np.mean((y - p) ** 2))), False),
        "mae": (lambda y, p: float(np.mean(np.abs(y - p))), False),
        "r2": (_r2, True),
    },
}


def paired_bootstrap(
    y: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    task: str,
    *,
    n_bootstrap: int,
    confidence: float,
    random_state: int,
) -> list[dict[str, float | str | bool]]:
    """Each metric of both models, their difference (challenger - champion), its paired
    bootstrap percentile interval, and the gain (the difference signed so that positive is
    better)."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    draws = np.random.default_rng(random_state).integers(0, n, size=(n_bootstrap, n))
    low_q, high_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    rows = []
    for name, (metric, higher) in METRICS[task].items():
        a, b = metric(y, champion), metric(y, challenger)
        diffs = np.array([metric(y[i], challenger[i]) - metric(y[i], champion[i]) for i in draws])
        diffs = diffs[np.isfinite(diffs)]
        low, high = np.quantile(diffs, [low_q, high_q]) if diffs.size else (np.nan, np.nan)
        sign = 1.0 if higher else -1.0
        rows.append(
            {
                "metric": name, "champion": a, "challenger": b, "difference": b - a,
                "low": float(low), "high": float(high), "gain": sign * (b - a),
                "higher_is_better": higher,
            }
        )  # fmt: skip
    return rows


def psi(reference: np.ndarray, other: np.ndarray, bins: int = BINS) -> float:
    """The population stability index of ``other`` against ``reference`` (see the module)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if edges.size < 2:
        return 0.0 if np.allclose(other, reference[0]) else np.inf
    inner = edges[1:-1]
    p = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=inner.size + 1)
    q = np.bincount(np.searchsorted(inner, other, side="right"), minlength=inner.size + 1)
    p = np.maximum(p / p.sum(), PSI_FLOOR)
    q = np.maximum(q / q.sum(), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def ks(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov statistic and p-value."""
    result = ks_2samp(reference, other)
    return float(result.statistic), float(result.pvalue)


def reliability(y: np.ndarray, score: np.ndarray, bins: int = BINS) -> list[dict[str, float]]:
    """Per quantile bin of ``score``: rows, mean score, observed rate."""
    edges = np.unique(np.quantile(score, np.linspace(0, 1, bins + 1)))
    codes = np.searchsorted(edges[1:-1], score, side="right")
    out = []
    for b in range(edges.size - 1 if edges.size > 1 else 1):
        inside = codes == b
        if inside.any():
            out.append(
                {"bin": b + 1, "rows": int(inside.sum()), "mean_score": float(score[inside].mean()),
                 "observed": float(np.mean(y[inside]))}
            )  # fmt: skip
    return out
