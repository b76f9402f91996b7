"""Opaque models: a bare predict function, explained only through its outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class PredictFunction:
    """Wraps a callable ``f(X) -> predictions`` so it can take a matrix row (Scoring Code)."""

    def __init__(self, fn: Callable[[Any], Any], *, n_features: int | None = None) -> None:
        self.fn = fn
        if n_features is not None:
            self.n_features_in_ = n_features

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.fn(X))

    def __repr__(self) -> str:
        return f"PredictFunction({getattr(self.fn, '__name__', self.fn)!r})"
