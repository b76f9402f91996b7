"""The per-row governance analyses as they were before issue 16, kept as the reference
the vectorized versions are checked against value by value (like ``tests/naive.py``:
slow and obvious, sharing no code with what they check beyond the exemplar choice).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr

from shapgov.analyses.exemplars import cut_points, exemplars


def symbols(q: np.ndarray, n_features: int) -> np.ndarray:
    c = cut_points(n_features)
    out = np.full(q.shape, "trivial", dtype=object)
    out[q >= c["trivial"]] = "+"
    out[q > c["medium"]] = "++"
    out[q > c["strong"]] = "+++"
    out[q <= -c["trivial"]] = "-"
    out[q < -c["medium"]] = "--"
    out[q < -c["strong"]] = "---"
    out[np.isnan(q)] = ""
    return out


def xemp_strengths(
    model: Any,
    frame: pd.DataFrame,
    training: pd.DataFrame,
    units: dict,
    evaluated: list[str],
    n_exemplars: int,
    predict: Any,
) -> np.ndarray:
    """Strengths ``(n, F, K)`` by predicting every (row, exemplar) grid of a feature."""
    names = list(units)
    base = predict(frame)
    n, k = base.shape
    strengths = np.full((n, len(names), k), np.nan)
    for name in evaluated:
        cols = units[name]
        values, weights = exemplars(training[cols], n_exemplars)
        e = len(values)
        for i in range(n):
            grid = frame.iloc[[i] * e].reset_index(drop=True)
            for c in cols:
                grid[c] = values[c].to_numpy()
                grid[c] = grid[c].astype(frame[c].dtype, errors="ignore")
            pred = predict(grid)
            strengths[i, names.index(name)] = -((pred - base[i]) * weights[:, None]).sum(axis=0)
    return strengths


def xemp_frame(x: Any) -> pd.DataFrame:
    """XEMP's long table, one Python dict per (row, feature)."""
    lines = []
    n_eval = len(x.evaluated)
    for o in range(x.strengths.shape[2]):
        sym = symbols(x.q[:, :, o], n_eval)
        for i in range(x.strengths.shape[0]):
            for j, name in enumerate(x.features):
                if name not in x.evaluated:
                    continue
                lines.append(
                    {
                        "row": i,
                        "output": None if x.classes is None else x.classes[o],
                        "feature": name,
                        "strength": float(x.strengths[i, j, o]),
                        "q": float(x.q[i, j, o]),
                        "symbol": sym[i, j],
                    }
                )
    return pd.DataFrame(lines)


def _corr(fn: Any, a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(fn(a, b).statistic)


def compare_rows(
    shap: np.ndarray,
    strengths: np.ndarray,
    features: list[str],
    classes: Any,
    *,
    k: int,
    min_overlap: float,
    min_rank_correlation: float,
) -> pd.DataFrame:
    """Per-row comparison with one scipy call per row, from SHAP and strengths ``(n, F, K)``
    over the same features."""
    lines = []
    for o in range(shap.shape[2]):
        for i in range(shap.shape[0]):
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
                    "output": None if classes is None else classes[o],
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
    return pd.DataFrame(lines)


def global_agreement(rankings: dict[str, pd.Series]) -> pd.DataFrame:
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
    return pd.DataFrame(table)


def permutation_drops(
    score: Any,
    frame: pd.DataFrame,
    units: dict,
    n_repeats: int,
    random_state: int | None,
    greater_is_better: bool,
) -> dict[str, list]:
    """Metric drops per feature, one predict call per (feature, shuffle)."""
    actual = score(frame)
    rng = np.random.default_rng(random_state)
    out = {}
    for name, cols in units.items():
        drops = []
        for _ in range(n_repeats):
            shuffled = frame.copy()
            order = rng.permutation(len(frame))
            for c in cols:
                shuffled[c] = frame[c].iloc[order].reset_index(drop=True)
            permuted = score(shuffled)
            drops.append(actual - permuted if greater_is_better else permuted - actual)
        out[name] = drops
    return out


def prediction_explanations(explanation: Any, k: int) -> pd.DataFrame:
    """The top-k lines of every row, one tuple per (row, rank); rows named by their key."""
    raw = explanation._raw
    prediction = explanation.link.inverse(explanation.explained_output)
    labels = explanation.classes if explanation.n_outputs > 1 else None
    lines = []
    for o in range(explanation.n_outputs):
        values = raw[:, :, o]
        order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
        for i in range(len(values)):
            top = order[i]
            others = float(values[i].sum() - values[i, top].sum())
            for rank, j in enumerate(top, start=1):
                lines.append(
                    (
                        explanation.data.index[i],  # the row's key (X's index label)
                        None if labels is None else labels[o],
                        float(prediction[i, o]),
                        rank,
                        explanation.feature_names[j],
                        float(values[i, j]),
                        others,
                    )
                )
    return pd.DataFrame(
        lines, columns=["row", "output", "prediction", "rank", "feature", "shap", "others"]
    )


def redundant_with(
    frame: pd.DataFrame,
    X: pd.DataFrame,
    correlation: float = 0.9,
    noise: float = 2.0,
    floor: float = 0.01,
) -> list:
    """``redundant_with`` of a permutation impact frame, from pandas' pairwise Spearman."""
    single = frame[frame["columns"].map(len) == 1]
    codes = {}
    for name, cols in zip(single["feature"], single["columns"], strict=True):
        col = X[cols[0]]
        if not pd.api.types.is_numeric_dtype(col):
            col = col.astype("category").cat.codes.replace(-1, np.nan)
        codes[name] = col.astype(float)
    corr = pd.DataFrame(codes).rank().corr().abs()
    top = float(frame["impact"].max())
    out = []
    for pos, row in frame.iterrows():
        j, found = row["feature"], None
        if j in corr.index and row["impact"] <= max(noise * row["impact_std"], floor * top):
            for i in frame["feature"].iloc[:pos]:
                if i in corr.index and corr.loc[i, j] >= correlation:
                    found = i
                    break
        out.append(found)
    return out
