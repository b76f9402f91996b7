"""The additivity policy (DataRobot's rule) and its report.

The prediction is rebuilt from the explanation exactly as DataRobot's pseudocode does:
``pred = cap(link^-1(base + sum(phi) + offset) * exposure)``, and compared with what the
model outputs. The mismatch of row i (worst output k) is normalized to the predictions:

    normalized_i = max_k |rebuilt_ik - actual_ik| / max(|actual_ik|, scale_k, 1e-12)
    scale_k      = mean_i |actual_ik|

so a row is judged relative to its own prediction, but never relative to less than the
typical prediction magnitude: predictions near zero do not blow the ratio up.

``normalized <= pass_tolerance`` everywhere: status "pass". Up to ``threshold`` (1% by
default): "warn", values returned with the diagnostics. Above: "fail", and
:class:`shapgov.AdditivityError` is raised with the diagnostics only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from shapgov.errors import InputError

NORMALIZATION = "max_k |rebuilt - actual| / max(|actual|, mean_rows |actual|, 1e-12)"
_LISTED_ROWS = 1000


@dataclass(frozen=True)
class AdditivityPolicy:
    """Thresholds of the policy: warn above ``pass_tolerance``, fail above ``threshold``."""

    threshold: float = 0.01
    pass_tolerance: float = 1e-6

    def __post_init__(self) -> None:
        if not (0 <= self.pass_tolerance <= self.threshold):
            raise InputError(
                f"additivity policy needs 0 <= pass_tolerance <= threshold, got "
                f"pass_tolerance={self.pass_tolerance}, threshold={self.threshold}"
            )


@dataclass(frozen=True)
class AdditivityReport:
    """Diagnostics of one additivity check; holds no SHAP values."""

    status: str
    max_normalized_mismatch: float
    mean_normalized_mismatch: float
    max_abs_mismatch: float
    n_rows: int
    n_mismatched: int
    n_over_threshold: int
    mismatched_rows: tuple[int, ...]
    threshold: float
    pass_tolerance: float
    normalization: str = NORMALIZATION
    applied: dict[str, Any] = field(default_factory=dict)
    row_mismatch: tuple[float, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status in ("pass", "warn")

    def describe(self) -> str:
        rows = ", ".join(map(str, self.mismatched_rows[:20]))
        more = " ..." if self.n_mismatched > 20 else ""
        text = (
            f"additivity {self.status}: max normalized mismatch {self.max_normalized_mismatch:.3g}"
            f" (mean {self.mean_normalized_mismatch:.3g}, max abs {self.max_abs_mismatch:.3g}); "
            f"{self.n_mismatched} of {self.n_rows} rows above the pass tolerance "
            f"{self.pass_tolerance:g}, {self.n_over_threshold} above the threshold "
            f"{self.threshold:g}"
        )
        if self.n_mismatched:
            text += f"; rows: {rows}{more}"
        if self.status == "fail":
            text += (
                ". The SHAP values are withheld. Check that the declared link, offset, exposure "
                "and capping match how the model computes its predictions."
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["mismatched_rows"] = list(self.mismatched_rows)
        out["row_mismatch"] = list(self.row_mismatch)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdditivityReport:
        data = dict(data)
        data["mismatched_rows"] = tuple(data["mismatched_rows"])
        data["row_mismatch"] = tuple(data.get("row_mismatch", ()))
        return cls(**data)


def normalized_mismatch(rebuilt: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per-row normalized mismatch (see the module docstring), ``(n,)``."""
    rebuilt = np.asarray(rebuilt, dtype=float).reshape(len(rebuilt), -1)
    actual = np.asarray(actual, dtype=float).reshape(len(actual), -1)
    scale = np.maximum(np.abs(actual).mean(axis=0, keepdims=True), 1e-12)
    denom = np.maximum(np.abs(actual), scale)
    with np.errstate(invalid="ignore"):
        ratio = np.abs(rebuilt - actual) / denom
    ratio[~np.isfinite(ratio)] = np.inf
    return ratio.max(axis=1)


def evaluate(
    rebuilt: np.ndarray,
    actual: np.ndarray,
    policy: AdditivityPolicy,
    *,
    applied: dict[str, Any] | None = None,
) -> AdditivityReport:
    """Compare rebuilt and actual predictions under ``policy``."""
    norm = normalized_mismatch(rebuilt, actual)
    abs_mismatch = np.abs(
        np.asarray(rebuilt, float) - np.asarray(actual, float).reshape(rebuilt.shape)
    )
    over_tol = np.flatnonzero(norm > policy.pass_tolerance)
    over_thr = np.flatnonzero(norm > policy.threshold)
    if over_thr.size:
        status = "fail"
    elif over_tol.size:
        status = "warn"
    else:
        status = "pass"
    listed = over_thr if over_thr.size else over_tol
    return AdditivityReport(
        status=status,
        max_normalized_mismatch=float(norm.max(initial=0.0)),
        mean_normalized_mismatch=float(norm.mean()) if norm.size else 0.0,
        max_abs_mismatch=float(np.nanmax(abs_mismatch, initial=0.0)),
        n_rows=int(norm.size),
        n_mismatched=int(over_tol.size),
        n_over_threshold=int(over_thr.size),
        mismatched_rows=tuple(int(i) for i in listed[:_LISTED_ROWS]),
        threshold=policy.threshold,
        pass_tolerance=policy.pass_tolerance,
        applied=dict(applied or {}),
        row_mismatch=tuple(float(x) for x in norm),
    )
