"""Opaque models: a bare predict function, explained only through its outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shapgov.errors import InputError, UnsupportedModelError


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


class BlackBox:
    """A whole fitted model explained through its outputs only (the Kernel explainer).

    Regressors are explained on ``predict``; classifiers on ``predict_proba``, in
    probability space, or with ``link="logit"`` (binary) in log-odds: the game is then
    played on ``logit(p)`` and the additivity check maps the values back through the
    link. The model receives hybrid rows in the same form as ``X`` (a DataFrame keeps its
    column types).
    """

    def __init__(self, model: Any, *, link: str = "identity") -> None:
        if link not in ("identity", "logit"):
            raise InputError(f"link must be 'identity' or 'logit', got {link!r}")
        self.model = model
        self.link = link
        method = "predict_proba" if hasattr(model, "classes_") else "predict"
        if not hasattr(model, method):
            raise UnsupportedModelError(
                f"{type(model).__name__} has no {method}(); the Kernel explainer needs "
                "numeric predictions (probabilities for a classifier)"
            )
        self.method = method
        if link == "logit" and len(getattr(model, "classes_", [])) != 2:
            raise InputError("link='logit' needs a binary classifier")
        for attr in ("classes_", "feature_names_in_", "n_features_in_"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    def takes_frame(self, columns: Any) -> None:
        """Give the model DataFrames with these columns (as the user's X was)."""
        if not hasattr(self, "feature_names_in_"):
            self.feature_names_in_ = np.asarray(columns, dtype=object)

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(getattr(self.model, self.method)(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X))

    def __repr__(self) -> str:
        return f"BlackBox({type(self.model).__name__})"
