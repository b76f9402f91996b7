"""Small table helpers the analyses share (so that none imports another for them)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["cast_like", "json_records"]


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: numpy scalars as Python values, missing values as None."""
    out = []
    for rec in frame.to_dict(orient="records"):
        out.append({k: _json_value(v) for k, v in rec.items()})
    return out


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def cast_like(column: pd.Series, reference: pd.Series) -> pd.Series:
    """Replacing values (an object column) in the explained column's dtype when they fit
    it (category, nullable, numbers), else as pandas infers them."""
    try:
        return column.astype(reference.dtype)
    except (ValueError, TypeError):
        return column.infer_objects()
