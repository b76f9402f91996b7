"""Composite estimators common in insurance and credit blueprints, scikit-learn compatible."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone


class FrequencySeverityRegressor(RegressorMixin, BaseEstimator):
    """Expected cost = frequency x severity.

    ``frequency`` is fitted on claim counts (per unit exposure), ``severity`` on the
    average claim amount of the rows with claims. With log links on both (Poisson and
    Gamma GLMs, for example) the product is additive in log space, so its SHAP values are
    the sum of the parts' values under a log link.
    """

    def __init__(self, frequency: Any, severity: Any) -> None:
        self.frequency = frequency
        self.severity = severity

    def fit(self, X: Any, y_frequency: Any, y_severity: Any) -> FrequencySeverityRegressor:
        """Fit both parts: severity on the rows with ``y_frequency > 0``."""
        y_frequency = np.asarray(y_frequency, dtype=float)
        y_severity = np.asarray(y_severity, dtype=float)
        has_claim = y_frequency > 0
        if not has_claim.any():
            raise ValueError("no row has a claim (y_frequency > 0); severity cannot be fitted")
        self.frequency_ = clone(self.frequency).fit(X, y_frequency)
        X_claims = X.loc[has_claim] if hasattr(X, "loc") else X[has_claim]
        self.severity_ = clone(self.severity).fit(X_claims, y_severity[has_claim])
        self.n_features_in_ = self.frequency_.n_features_in_
        if hasattr(self.frequency_, "feature_names_in_"):
            self.feature_names_in_ = self.frequency_.feature_names_in_
        return self

    @classmethod
    def from_fitted(
        cls, frequency: Any, severity: Any, *, feature_names_in: Any = None
    ) -> FrequencySeverityRegressor:
        """The composite of two parts fitted elsewhere (statsmodels GLMs fitted with their
        own API, glum regressors), as :meth:`fit` would leave it.

        :param frequency: A fitted model of claim counts per unit exposure (``predict``).
        :param severity: A fitted model of the average claim amount (``predict``).
        :param feature_names_in: The input columns, when the parts do not say
            (``feature_names_in_``); default: the frequency part's, else the severity's.
        :raises TypeError: A part has no ``predict``.
        """
        for name, part in (("frequency", frequency), ("severity", severity)):
            if not hasattr(part, "predict"):
                raise TypeError(f"{name} has no predict(); pass a fitted model")
        model = cls(frequency, severity)
        model.frequency_, model.severity_ = frequency, severity
        names = feature_names_in
        if names is None:
            names = getattr(frequency, "feature_names_in_", None)
        if names is None:
            names = getattr(severity, "feature_names_in_", None)
        if names is not None:
            model.feature_names_in_ = np.asarray(list(names), dtype=object)
            model.n_features_in_ = len(model.feature_names_in_)
        return model

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.frequency_.predict(X)) * np.asarray(self.severity_.predict(X))


class ResidualBoostedRegressor(RegressorMixin, BaseEstimator):
    """Stage-wise boosting of arbitrary regressors: each stage fits the residual so far.

    The prediction is the sum of the stages, so SHAP values add across stages.
    """

    def __init__(self, stages: list[Any]) -> None:
        self.stages = stages

    def fit(self, X: Any, y: Any) -> ResidualBoostedRegressor:
        residual = np.asarray(y, dtype=float).copy()
        self.stages_ = []
        for stage in self.stages:
            fitted = clone(stage).fit(X, residual)
            residual = residual - fitted.predict(X)
            self.stages_.append(fitted)
        self.n_features_in_ = self.stages_[0].n_features_in_
        if hasattr(self.stages_[0], "feature_names_in_"):
            self.feature_names_in_ = self.stages_[0].feature_names_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.sum([s.predict(X) for s in self.stages_], axis=0)


class LinearTerm:
    """A fixed linear function ``coef @ z`` inside a blueprint (e.g. stacking passthrough)."""

    def __init__(self, coef: np.ndarray, *, name: str = "linear_term") -> None:
        self.coef_ = np.atleast_2d(np.asarray(coef, dtype=float))
        self.intercept_ = np.zeros(self.coef_.shape[0])
        self.name = name

    def predict(self, Z: Any) -> np.ndarray:
        return np.asarray(Z, dtype=float) @ self.coef_.T
