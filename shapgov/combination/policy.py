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

The rebuild rule (:func:`rebuild`) and the check of one explanation (:func:`check`) live
here, beside the policy they serve (DataRobot, "SHAP reference: additivity").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from shapgov.decomposition.links import Link
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
        """``True`` when the status is ``"pass"`` or ``"warn"`` (the values are returned)."""
        return self.status in ("pass", "warn")

    def __repr__(self) -> str:  # one line at the prompt, not one number per row
        return (
            f"<AdditivityReport {self.status}: max normalized mismatch "
            f"{self.max_normalized_mismatch:.3g}, {self.n_mismatched} of {self.n_rows} rows "
            f"above {self.pass_tolerance:g}, {self.n_over_threshold} above {self.threshold:g}>"
        )

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """The check in words: status, mismatches and thresholds, the first 20 mismatched
        rows, and for a failure what to check (the message of
        :class:`~shapgov.errors.AdditivityError`)."""
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

    def to_dict(self, *, rows: bool = True) -> dict[str, Any]:
        """JSON-ready; ``rows=False`` leaves out ``row_mismatch`` (one number per row), so
        the size is bounded whatever the row count (artifact sets keep the per-row
        mismatch in parquet)."""
        out = asdict(replace(self, row_mismatch=()))  # asdict copies element by element
        out["mismatched_rows"] = list(self.mismatched_rows)
        if rows:
            out["row_mismatch"] = list(self.row_mismatch)
        else:
            del out["row_mismatch"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, row_mismatch: Any = None) -> AdditivityReport:
        """The report of :meth:`to_dict`; ``row_mismatch`` supplies the per-row mismatch
        when the dict was written without it."""
        data = dict(data)
        data["mismatched_rows"] = tuple(data["mismatched_rows"])
        if row_mismatch is not None:
            data["row_mismatch"] = tuple(np.asarray(row_mismatch, dtype=float).tolist())
        else:
            data["row_mismatch"] = tuple(data.get("row_mismatch", ()))
        return cls(**data)


def normalized_mismatch(
    rebuilt: np.ndarray, actual: np.ndarray, *, scale: np.ndarray | None = None
) -> np.ndarray:
    """Per-row normalized mismatch (see the module docstring), ``(n,)``.

    :param scale: ``mean_rows |actual|`` per output ``(K,)`` when the rows are a part of
        the judged table (a Spark batch): the table's, not the part's.
    """
    rebuilt = np.asarray(rebuilt, dtype=float).reshape(len(rebuilt), -1)
    actual = np.asarray(actual, dtype=float).reshape(len(actual), -1)
    if scale is None:
        scale = np.abs(actual).mean(axis=0, keepdims=True)
    scale = np.maximum(np.asarray(scale, dtype=float).reshape(1, -1), 1e-12)
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
    scale: np.ndarray | None = None,
) -> AdditivityReport:
    """Compare rebuilt and actual predictions under ``policy`` (``scale``: see
    :func:`normalized_mismatch`)."""
    norm = normalized_mismatch(rebuilt, actual, scale=scale)
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
        row_mismatch=tuple(norm.tolist()),
    )


# ------------------------------------------------------------------ the rebuild rule

#: Pass tolerance for models whose predictions are float32 (XGBoost): 64 float32 ulps.
FLOAT32_PASS = 64 * float(np.finfo(np.float32).eps)


def rebuild(
    link: Link,
    values: np.ndarray,
    offset: np.ndarray | None,
    exposure: np.ndarray | None,
    capping: tuple[float | None, float | None] | None,
    *,
    margin: bool,
) -> np.ndarray:
    """DataRobot's rule: ``cap(link^-1(margin + offset) * exposure)``, ``(n, K)``.

    For the model's own predictions (``margin=False``) the link is undone first where an
    offset is to be added, so both sides of the check carry the same offset, exposure and
    capping; without an offset the prediction is used as the model gave it.
    """
    if not margin and offset is None and exposure is None and capping is None:
        return values
    out = values
    if margin or offset is not None:
        out = values if margin else link.forward(values)
        if offset is not None:
            out = out + offset
        out = link.inverse(out)
    if exposure is not None:
        out = out * exposure
    if capping is not None:
        lo, hi = capping
        out = np.clip(out, lo, hi)
    return out


def clipped(link: Link, actual: np.ndarray) -> np.ndarray:
    """The model's outputs ``(n, K)`` as floats, clipped to ``[c, 1 - c]`` where the link
    clips probabilities (``link.params["clip"] = c``); unchanged otherwise."""
    out = np.asarray(actual).astype(float)
    clip = link.params.get("clip")
    return out if clip is None else np.clip(out, clip, 1.0 - clip)


def check(
    link: Link,
    prediction: str,
    explained: np.ndarray,
    actual: np.ndarray,
    policy: AdditivityPolicy,
    *,
    offset: np.ndarray | None,
    exposure: np.ndarray | None,
    capping: tuple[float | None, float | None] | None,
    scale: np.ndarray | None = None,
    offset_taken_by: str | None = None,
    exposure_taken_by: str | None = None,
) -> tuple[AdditivityReport, np.ndarray]:
    """Rebuild the prediction from ``explained`` (base + sum of values, ``(n, K)``) and
    judge it against the model's ``actual`` output; returns the report and the governed
    actual prediction (after offset, exposure and capping).

    :param offset_taken_by: ``actual`` already holds ``offset``, taken by the model itself
        in its own way (this names how, e.g. XGBoost's ``base_margin``): the offset is
        then added to the rebuilt margin only, and the check compares the rebuild with the
        model's own output. ``None``: the model takes no offset, and DataRobot's rule adds
        it to the margin of both sides.
    :param exposure_taken_by: ``actual`` already holds ``exposure``, taken by the model
        itself (statsmodels' ``exposure=``, ``log(exposure)`` added to its margin): the
        exposure then multiplies the rebuilt prediction only.

    A game link that clips probabilities (``link.params["clip"]``, the logit game link of
    :mod:`shapgov.explainers.game_links`) clips the model's own probabilities the same way
    before they are compared, as capping does, and the report records it
    (``applied["probability_clip"]``).

    A model that predicts in float32 cannot be resolved closer than float32 does: its
    pass tolerance is raised to :data:`FLOAT32_PASS` (never above the threshold), and the
    report says so (``applied["model_output_dtype"]``).
    """
    if offset_taken_by is not None and offset is None:
        raise InputError("offset_taken_by names how the model took an offset: give the offset")
    rebuilt = rebuild(link, explained, offset, exposure, capping, margin=True)
    if exposure_taken_by is not None and exposure is None:
        raise InputError("exposure_taken_by names how the model took an exposure: give it")
    own = None if offset_taken_by else offset
    own_exposure = None if exposure_taken_by else exposure
    governed = rebuild(link, clipped(link, actual), own, own_exposure, capping, margin=False)
    applied: dict[str, Any] = {
        "link": link.name,
        "offset": offset is not None,
        "exposure": exposure is not None,
        "capping": list(capping) if capping else None,
        "prediction": prediction,
    }
    if offset_taken_by is not None:
        applied["offset_taken_by"] = offset_taken_by
    if exposure_taken_by is not None:
        applied["exposure_taken_by"] = exposure_taken_by
    if link.params.get("clip") is not None:
        applied["probability_clip"] = [link.params["clip"], 1.0 - link.params["clip"]]
    if actual.dtype == np.float32:
        applied["model_output_dtype"] = "float32"
        policy = replace(
            policy,
            pass_tolerance=min(policy.threshold, max(policy.pass_tolerance, FLOAT32_PASS)),
        )
    return evaluate(rebuilt, governed, policy, applied=applied, scale=scale), governed
