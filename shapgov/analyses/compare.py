"""SHAP versus XEMP: where two explanation methods agree, and the rows where they do not.

Per row (and class): the overlap of the top-k features by |SHAP| and by |XEMP strength|,
the Spearman and Kendall rank correlations of |SHAP| and |strength| over the features XEMP
evaluated, and the share of SHAP's top-k features whose signs agree. A row is flagged
when the overlap is below ``min_overlap``, the Spearman correlation below
``min_rank_correlation``, or a top feature's sign disagrees; the reason says which.
SHAP is read in its explained space and XEMP in prediction space; a monotone link keeps
ranks and signs comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr

from shapgov.analyses.exemplars import XempExplanation
from shapgov.analyses.impact import FeatureImpact, json_records
from shapgov.combination.explanation import Explanation
from shapgov.errors import InputError


@dataclass(frozen=True)
class Comparison:
    rows: pd.DataFrame
    global_agreement: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> pd.DataFrame:
        return self.rows[self.rows["flagged"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "rows": json_records(self.rows),
            "global": json_records(self.global_agreement),
        }


def _corr(fn: Any, a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(fn(a, b).statistic)


def compare_shap_xemp(
    explanation: Explanation,
    xemp: XempExplanation,
    *,
    k: int = 3,
    min_overlap: float = 2 / 3,
    min_rank_correlation: float = 0.5,
    impacts: list[FeatureImpact] | None = None,
) -> Comparison:
    """Compare SHAP values and XEMP strengths of the same rows (see the module doc).

    :param impacts: Feature impacts (SHAP, permutation, ...) whose rankings join mean
        |XEMP strength| in the global agreement table.
    """
    if len(explanation) != xemp.strengths.shape[0]:
        raise InputError(
            f"the SHAP explanation has {len(explanation)} rows and XEMP "
            f"{xemp.strengths.shape[0]}; compare the same rows"
        )
    if explanation.n_outputs != xemp.strengths.shape[2]:
        raise InputError("the SHAP explanation and XEMP have different numbers of outputs")
    features = xemp.evaluated
    if not 1 <= k <= len(features):
        raise InputError(f"k must be between 1 and {len(features)} (features XEMP evaluated)")
    shap = _grouped_shap(explanation, xemp)  # (n, F, K) over XEMP's features
    idx = [xemp.features.index(f) for f in features]
    strengths = xemp.strengths[:, idx]
    lines = []
    for o in range(explanation.n_outputs):
        for i in range(len(explanation)):
            s, x = shap[i, :, o], strengths[i, :, o]
            top_s = np.argsort(-np.abs(s), kind="stable")[:k]
            top_x = np.argsort(-np.abs(x), kind="stable")[:k]
            overlap = len(set(top_s) & set(top_x)) / k
            rho = _corr(spearmanr, np.abs(s), np.abs(x))
            tau = _corr(kendalltau, np.abs(s), np.abs(x))
            signs = np.sign(s[top_s]) == np.sign(x[top_s])
            reasons = []
            if overlap < min_overlap:
                reasons.append(f"top-{k} overlap {overlap:.2f} < {min_overlap:.2f}")
            if not np.isnan(rho) and rho < min_rank_correlation:
                reasons.append(f"Spearman {rho:.2f} < {min_rank_correlation:.2f}")
            for j in top_s[~signs]:
                reasons.append(f"sign of {features[j]} differs")
            lines.append(
                {
                    "row": i,
                    "output": None if xemp.classes is None else xemp.classes[o],
                    "top_shap": [features[j] for j in top_s],
                    "top_xemp": [features[j] for j in top_x],
                    "overlap": overlap,
                    "spearman": rho,
                    "kendall": tau,
                    "sign_agreement": float(signs.mean()),
                    "flagged": bool(reasons),
                    "reason": "; ".join(reasons),
                }
            )
    rankings = {"xemp": pd.Series(np.nanmean(np.abs(strengths), axis=(0, 2)), index=features)}
    for imp in impacts or []:
        rankings[imp.method] = imp.frame.set_index("feature")["impact"].reindex(features)
    rankings.setdefault("shap", pd.Series(np.abs(shap).mean(axis=(0, 2)), index=features))
    table = []
    for a, b in combinations(sorted(rankings), 2):
        x, y = rankings[a].to_numpy(dtype=float), rankings[b].to_numpy(dtype=float)
        ok = ~(np.isnan(x) | np.isnan(y))
        table.append(
            {
                "first": a,
                "second": b,
                "spearman": _corr(spearmanr, x[ok], y[ok]),
                "kendall": _corr(kendalltau, x[ok], y[ok]),
            }
        )
    params = {"k": k, "min_overlap": min_overlap, "min_rank_correlation": min_rank_correlation}
    return Comparison(pd.DataFrame(lines), pd.DataFrame(table), params)


def _grouped_shap(explanation: Explanation, xemp: XempExplanation) -> np.ndarray:
    """SHAP values summed into XEMP's features (a group's columns add up)."""
    names = [str(c) for c in explanation.feature_names]  # XEMP names units by str(column)
    out = np.zeros((len(explanation), len(xemp.evaluated), explanation.n_outputs))
    groups = xemp.params.get("groups", {})
    for j, feature in enumerate(xemp.evaluated):
        cols = groups.get(feature, [feature])
        missing = [c for c in cols if str(c) not in names]
        if missing:
            raise InputError(f"XEMP feature {feature!r} has no SHAP column(s) {missing}")
        for c in cols:
            out[:, j] += explanation._raw[:, names.index(str(c))]
    return out
