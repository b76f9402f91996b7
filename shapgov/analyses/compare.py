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
from shapgov.analyses.impact import FeatureImpact
from shapgov.analyses.row_ranks import row_kendall, row_spearman, top_k
from shapgov.analyses.tables import json_records
from shapgov.combination.explanation import Explanation
from shapgov.errors import InputError


@dataclass(frozen=True)
class Comparison:
    """``rows``: one line per (output, row); ``global_agreement``: rank agreement of the
    global rankings, pair by pair."""

    rows: pd.DataFrame
    global_agreement: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> pd.DataFrame:
        """The rows to review: those of ``rows`` that are flagged, with their reasons."""
        return self.rows[self.rows["flagged"]]

    def summary(self) -> dict[str, Any]:
        """Counts and means over the rows, bounded whatever the row count."""
        rows = self.rows
        reasons = rows["reason"][rows["flagged"]]
        return {
            "n_rows": len(rows),
            "n_flagged": int(rows["flagged"].sum()),
            "mean_overlap": _mean(rows["overlap"]),
            "mean_spearman": _mean(rows["spearman"]),
            "mean_kendall": _mean(rows["kendall"]),
            "mean_sign_agreement": _mean(rows["sign_agreement"]),
            "flagged_by": {
                "overlap": int(reasons.str.contains("overlap", regex=False).sum()),
                "spearman": int(reasons.str.contains("Spearman", regex=False).sum()),
                "sign": int(reasons.str.contains("sign of", regex=False).sum()),
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the per-row lines go to parquet: :attr:`rows`)."""
        return {
            "params": self.params,
            "summary": self.summary(),
            "global": json_records(self.global_agreement),
        }


def _mean(column: pd.Series) -> float | None:
    values = column.to_numpy(dtype=float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


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

    Every per-row figure is computed for all rows at once
    (``shapgov.analyses.row_ranks``).

    :param impacts: Feature impacts (SHAP, permutation, ...) whose rankings join mean
        ``|XEMP strength|`` in the global agreement table.
    :returns: A :class:`Comparison` with one line per (output, row).
    :raises InputError: The explanation and XEMP cover different rows or outputs, or
        ``k`` is out of range.
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
    names = np.array([str(f) for f in features], dtype=object)
    n = len(explanation)
    parts = []
    for o in range(explanation.n_outputs):
        s, x = shap[:, :, o], strengths[:, :, o]
        a, b = np.abs(s), np.abs(x)
        top_s, top_x = top_k(a, k), top_k(b, k)
        overlap = (top_s[:, :, None] == top_x[:, None, :]).any(axis=2).sum(axis=1) / k
        rho = row_spearman(a, b)
        tau = row_kendall(a, b)
        signs = np.sign(np.take_along_axis(s, top_s, 1)) == np.sign(np.take_along_axis(x, top_s, 1))
        reason = _reasons(
            overlap,
            rho,
            signs,
            names[top_s],
            k=k,
            min_overlap=min_overlap,
            min_rank_correlation=min_rank_correlation,
        )
        output = None if xemp.classes is None else xemp.classes[o]
        parts.append(
            pd.DataFrame(
                {
                    "row": np.arange(n),
                    "output": np.full(n, output, dtype=object),
                    "top_shap": names[top_s].tolist(),
                    "top_xemp": names[top_x].tolist(),
                    "overlap": overlap,
                    "spearman": rho,
                    "kendall": tau,
                    "sign_agreement": signs.mean(axis=1),
                    "flagged": reason != "",
                    "reason": reason,
                }
            )
        )
    rankings = {"xemp": pd.Series(np.nanmean(np.abs(strengths), axis=(0, 2)), index=features)}
    for imp in impacts or []:
        rankings[imp.method] = imp.frame.set_index("feature")["impact"].reindex(features)
    rankings.setdefault("shap", pd.Series(np.abs(shap).mean(axis=(0, 2)), index=features))
    table = []
    for first, second in combinations(sorted(rankings), 2):
        u, v = rankings[first].to_numpy(dtype=float), rankings[second].to_numpy(dtype=float)
        ok = ~(np.isnan(u) | np.isnan(v))
        table.append(
            {
                "first": first,
                "second": second,
                "spearman": _corr(spearmanr, u[ok], v[ok]),
                "kendall": _corr(kendalltau, u[ok], v[ok]),
            }
        )
    params = {"k": k, "min_overlap": min_overlap, "min_rank_correlation": min_rank_correlation}
    rows = pd.concat(parts, ignore_index=True)
    return Comparison(rows, pd.DataFrame(table), params)


def _reasons(
    overlap: np.ndarray,
    rho: np.ndarray,
    signs: np.ndarray,
    top_names: np.ndarray,
    *,
    k: int,
    min_overlap: float,
    min_rank_correlation: float,
) -> np.ndarray:
    """Why each row is flagged (``""`` when it is not), as ``"; "``-joined clauses, built
    column by column with numpy's string operations."""
    n = overlap.shape[0]
    by_overlap = overlap < min_overlap
    by_rank = ~np.isnan(rho) & (rho < min_rank_correlation)
    flagged = np.flatnonzero(by_overlap | by_rank | ~signs.all(axis=1))
    out = np.full(n, "", dtype=object)
    if not flagged.size:
        return out
    overlap, rho, signs, top_names = (
        overlap[flagged],
        rho[flagged],
        signs[flagged],
        top_names[flagged],
    )
    clauses = [
        np.where(
            by_overlap[flagged],
            np.char.add(np.char.mod(f"top-{k} overlap %.2f", overlap), f" < {min_overlap:.2f}"),
            "",
        ),
        np.where(
            by_rank[flagged],
            np.char.add(np.char.mod("Spearman %.2f", rho), f" < {min_rank_correlation:.2f}"),
            "",
        ),
    ]
    for p in range(signs.shape[1]):
        named = np.char.add(np.char.add("sign of ", top_names[:, p].astype(str)), " differs")
        clauses.append(np.where(~signs[:, p], named, ""))
    reasons = clauses[0]
    for clause in clauses[1:]:
        joined = np.char.add(np.char.add(reasons, "; "), clause)
        reasons = np.where(reasons == "", clause, np.where(clause == "", reasons, joined))
    out[flagged] = reasons.astype(object)
    return out


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
