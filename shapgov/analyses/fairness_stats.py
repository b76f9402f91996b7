"""The statistics of the fair-lending checks (:mod:`shapgov.analyses.fairness`).

* **Adverse impact ratio** ``AIR = p_g / p_r``, the approval rate of group ``g`` over the
  reference group's (EEOC Uniform Guidelines, 29 CFR 1607.4(D): the "four-fifths rule"
  screens ``AIR < 0.8``), with the **Katz log interval**
  ``exp(log AIR +- z sqrt(1/a_g - 1/n_g + 1/a_r - 1/n_r))`` (Katz et al. 1978; the method
  of :func:`scipy.stats.contingency.relative_risk`), and the one-sided p-value of
  ``H0: AIR >= 1`` on the same normal approximation. A count of 0 takes 0.5 in every
  cell of the comparison (Haldane's correction) so the interval stays finite.
* **Difference of two proportions** (error rates between groups) with **Newcombe's hybrid
  score interval** (Newcombe 1998, method 10), built from the groups' Wilson intervals.
* **Standardized mean difference** of the score, ``d = (m_g - m_r) / sqrt((s_g^2 +
  s_r^2) / 2)`` with its large-sample standard error ``sqrt((n_g + n_r) / (n_g n_r) +
  d^2 / (2 (n_g + n_r)))`` (Hedges and Olkin 1985).
* **Proxy score**: how well one column predicts membership of a group (one group against
  the rest), as the cross-validated AUC of the column's out-of-fold bin means: numbers in
  :data:`PROXY_BINS` quantile bins, categories one bin each, missing values a bin of their
  own; ``K`` folds, stratified, seeded; reported as ``max(AUC, 1 - AUC)`` (0.5: no
  information, 1: the column gives the group away).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

#: Quantile bins of a numeric column in the proxy score.
PROXY_BINS = 10
#: Folds of the proxy score's cross-validation.
PROXY_FOLDS = 5


def ratio_of_rates(
    a_g: int, n_g: int, a_r: int, n_r: int, confidence: float
) -> tuple[float, float, float, float]:
    """``(ratio, low, high, p)`` of ``(a_g / n_g) / (a_r / n_r)``: the Katz log interval at
    ``confidence`` and the one-sided p-value of ``H0: ratio >= 1`` (see the module).
    ``nan`` everywhere when a group is empty."""
    if n_g == 0 or n_r == 0:
        return (np.nan,) * 4
    if 0 in (a_g, a_r, n_g - a_g, n_r - a_r):
        a_g, n_g, a_r, n_r = a_g + 0.5, n_g + 1.0, a_r + 0.5, n_r + 1.0
    ratio = (a_g / n_g) / (a_r / n_r)
    se = np.sqrt(1 / a_g - 1 / n_g + 1 / a_r - 1 / n_r)
    z = ndtri(0.5 + confidence / 2)
    log = np.log(ratio)
    return (
        float(ratio),
        float(np.exp(log - z * se)),
        float(np.exp(log + z * se)),
        float(ndtr(log / se)),
    )


def wilson(count: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson's score interval of a proportion (Wilson 1927)."""
    if n == 0:
        return np.nan, np.nan
    z = ndtri(0.5 + confidence / 2)
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def difference_of_rates(
    c_g: int, n_g: int, c_r: int, n_r: int, confidence: float
) -> tuple[float, float, float]:
    """``(p_g - p_r, low, high)`` with Newcombe's hybrid score interval (method 10)."""
    if n_g == 0 or n_r == 0:
        return (np.nan,) * 3
    p_g, p_r = c_g / n_g, c_r / n_r
    l_g, u_g = wilson(c_g, n_g, confidence)
    l_r, u_r = wilson(c_r, n_r, confidence)
    d = p_g - p_r
    low = d - np.sqrt((p_g - l_g) ** 2 + (u_r - p_r) ** 2)
    high = d + np.sqrt((u_g - p_g) ** 2 + (p_r - l_r) ** 2)
    return float(d), float(low), float(high)


def standardized_difference(
    x_g: np.ndarray, x_r: np.ndarray, confidence: float
) -> tuple[float, float, float]:
    """``(d, low, high)``: the standardized mean difference and its normal interval."""
    n_g, n_r = len(x_g), len(x_r)
    if n_g < 2 or n_r < 2:
        return (np.nan,) * 3
    pooled = np.sqrt((np.var(x_g, ddof=1) + np.var(x_r, ddof=1)) / 2)
    if pooled == 0:
        return (0.0, 0.0, 0.0) if np.mean(x_g) == np.mean(x_r) else (np.nan,) * 3
    d = (np.mean(x_g) - np.mean(x_r)) / pooled
    se = np.sqrt((n_g + n_r) / (n_g * n_r) + d * d / (2 * (n_g + n_r)))
    z = ndtri(0.5 + confidence / 2)
    return float(d), float(d - z * se), float(d + z * se)


def _bins(column: pd.Series) -> np.ndarray:
    """Bin codes of a column: quantile bins of numbers, one per category, missing last."""
    missing = column.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=float, na_value=np.nan)
        edges = np.unique(np.nanquantile(values[~missing], np.linspace(0, 1, PROXY_BINS + 1)))
        codes = (
            np.searchsorted(edges[1:-1], values, side="right")
            if len(edges) > 2
            else np.zeros(len(values), int)
        )
    else:
        codes = pd.factorize(column.astype("object"), use_na_sentinel=True)[0]
    codes = np.asarray(codes, dtype=np.int64)
    codes[missing] = codes.max(initial=0) + 1
    return codes


def _auc(target: np.ndarray, score: np.ndarray) -> float:
    """The area under the ROC curve (Mann-Whitney), ties counted half."""
    pos = target.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return np.nan
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def proxy_score(column: pd.Series, member: np.ndarray, random_state: int) -> float:
    """The cross-validated AUC (as ``max(AUC, 1 - AUC)``) of ``column`` predicting
    ``member`` (bool, one group against the rest); see the module."""
    codes = _bins(column.reset_index(drop=True))
    member = np.asarray(member, dtype=bool)
    rng = np.random.default_rng(random_state)
    fold = np.empty(len(member), dtype=np.int64)
    for label in (True, False):  # stratified: each class spread over the folds
        idx = np.flatnonzero(member == label)
        fold[rng.permutation(idx)] = np.arange(idx.size) % PROXY_FOLDS
    prior = member.mean()
    predicted = np.empty(len(member))
    n_codes = int(codes.max(initial=0)) + 1
    for k in range(PROXY_FOLDS):
        train, test = fold != k, fold == k
        hits = np.bincount(codes[train], weights=member[train], minlength=n_codes)
        counts = np.bincount(codes[train], minlength=n_codes)
        means = np.where(counts > 0, hits / np.maximum(counts, 1), prior)
        predicted[test] = means[codes[test]]
    auc = _auc(member, predicted)
    return float(max(auc, 1 - auc)) if np.isfinite(auc) else np.nan
