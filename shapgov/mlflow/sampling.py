"""Seeded samples of rows with their targets, shared by autolog, the evaluator and the CLI."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shapgov.analyses.impact import sample_rows


def _take(data: Any, idx: np.ndarray) -> Any:
    if isinstance(data, pd.DataFrame | pd.Series):
        return data.iloc[idx]
    return np.asarray(data)[idx]


def sample_xy(X: Any, y: Any, n: int, random_state: int) -> tuple[Any, Any]:
    """At most ``n`` rows of ``X`` (seeded) and the matching entries of ``y`` (or None)."""
    idx = sample_rows(np.arange(len(X)), n, random_state)
    return _take(X, idx), None if y is None else _take(y, idx)
