"""A third-party plugin, as a user would write one, loaded through the entry-point group.

It teaches shapgov two model types that shapgov's own code knows nothing about:

* ``SquaresModel``: f(x) = sum_j a_j x_j**2, explained by its own exact explainer
  ``additive-squares`` (for an additive model, phi_j = g_j(x_j) - E_b[g_j(b_j)]);
* ``ClippedRegressor``: a regressor whose predictions are clipped, which this plugin
  deliberately decomposes as its inner regressor *without* declaring the capping, so the
  additivity policy has a non-additive case to judge.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Node
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.links import IDENTITY
from shapgov.explainers.base import Explainer, VertexRequest, VertexValues, group_sum


class SquaresModel(RegressorMixin, BaseEstimator):
    def fit(self, X: Any, y: Any) -> SquaresModel:
        X = np.asarray(X, dtype=float)
        self.coef_ = np.linalg.lstsq(X**2, np.asarray(y, dtype=float), rcond=None)[0]
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        return (np.asarray(X, dtype=float) ** 2) @ self.coef_


class ClippedRegressor(RegressorMixin, BaseEstimator):
    def __init__(self, regressor: Any = None, upper: float = np.inf) -> None:
        self.regressor = regressor
        self.upper = upper

    def fit(self, X: Any, y: Any) -> ClippedRegressor:
        self.regressor_ = clone(self.regressor).fit(X, y)
        self.n_features_in_ = self.regressor_.n_features_in_
        if hasattr(self.regressor_, "feature_names_in_"):
            self.feature_names_in_ = self.regressor_.feature_names_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.minimum(self.regressor_.predict(X), self.upper)


class AdditiveSquaresExplainer(Explainer):
    name = "additive-squares"

    def explain(self, request: VertexRequest) -> VertexValues:
        Z, Zb = request.Z, request.Z_background
        coef = request.vertex.estimator.coef_
        contrib = coef * Z**2 - (coef * Zb**2).mean(axis=0)
        values = group_sum(contrib[:, :, None], request.origins, request.n_features)
        return VertexValues(values, np.array([(Zb**2 @ coef).mean()]))


MATRIX_ROW = {
    "id": "test_squares",
    "family": "Sum of squares (test plugin)",
    "kind": "vertex",
    "explainer": "additive-squares",
    "classes": ["shapgov_testplugin.SquaresModel"],
    "regression": "supported",
    "binary": "n/a",
    "multiclass": "n/a",
    "notes": "Registered by tests/shapgov_testplugin.py.",
}


@hookimpl
def shapgov_explainers() -> list[type[Explainer]]:
    return [AdditiveSquaresExplainer]


@hookimpl
def shapgov_matrix_rows() -> list[dict[str, Any]]:
    return [MATRIX_ROW]


@hookimpl
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    if isinstance(model, SquaresModel):
        return context.leaf(
            model, n_margins=1, link=IDENTITY, prediction="predict", margin_method="predict"
        )
    if isinstance(model, ClippedRegressor):
        # Deliberately forgets the clipping: the policy must catch the mismatch.
        return context.decompose(model.regressor_, "regressor")
    return None
