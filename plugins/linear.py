"""Built-in plugin: exact interventional SHAP for linear models and GLMs.

In margin space the interventional value function of ``f(z) = coef @ z + c`` gives
``phi_t = coef_t (z_t - E_b[z_t])`` per transformed column, summed back to the original
column it comes from. When the parent consumes a response of the margin (probability,
exp), values are exact in that space by enumerating coalitions of original columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Vertex
from shapgov.errors import UnsupportedModelError
from shapgov.explainers.base import Explainer, VertexValues, group_sum
from shapgov.explainers.coalitions import DEFAULT_MAX_EXACT_PLAYERS, gam_response_shapley


def linear_coefficients(estimator: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(coef (K, m), intercept (K,))`` of a fitted linear model."""
    coef = getattr(estimator, "coef_", None)
    if coef is None:
        raise UnsupportedModelError(
            f"{type(estimator).__name__} has no coef_; the linear explainer needs a fitted "
            "linear model."
        )
    coef = np.atleast_2d(np.asarray(coef, dtype=float))
    intercept = np.atleast_1d(np.asarray(getattr(estimator, "intercept_", 0.0), dtype=float))
    intercept = np.broadcast_to(intercept, (coef.shape[0],)).copy()
    return coef, intercept


class LinearExplainer(Explainer):
    """Exact interventional SHAP for linear vertices (options: ``max_exact_players``)."""

    name = "linear"
    supports_response = True

    def explain(
        self, vertex: Vertex, Z: np.ndarray, Z_background: np.ndarray, *, n_features: int
    ) -> VertexValues:
        coef, intercept = linear_coefficients(vertex.estimator)
        origins = vertex.origins
        if origins is None:
            origins = np.arange(Z.shape[1])
        if coef.shape[1] != Z.shape[1]:
            raise UnsupportedModelError(
                f"{vertex.name}: model has {coef.shape[1]} coefficients but receives "
                f"{Z.shape[1]} columns"
            )
        if vertex.response is None:
            mean = Z_background.mean(axis=0)
            contrib = (Z - mean)[:, :, None] * coef.T[None]
            values = group_sum(contrib, origins, n_features)
            return VertexValues(values, mean @ coef.T + intercept)
        # Constant columns (origin -1) belong to the intercept.
        const = origins < 0
        intercept = intercept + Z_background[0, const] @ coef[:, const].T
        active = np.unique(origins[~const])
        local = np.searchsorted(active, origins[~const])
        d = group_sum(Z[:, ~const, None] * coef[:, ~const].T[None], local, active.size)
        e = group_sum(Z_background[:, ~const, None] * coef[:, ~const].T[None], local, active.size)
        vals, base = gam_response_shapley(
            d,
            e,
            intercept,
            vertex.response.fn,
            max_players=self.options.get("max_exact_players", DEFAULT_MAX_EXACT_PLAYERS),
        )
        values = np.zeros((Z.shape[0], n_features, vals.shape[2]))
        values[:, active] = vals
        return VertexValues(values, base)

    def interactions(
        self, vertex: Vertex, Z: np.ndarray, Z_background: np.ndarray, *, n_features: int
    ) -> np.ndarray:
        """A margin-linear vertex has no interactions: its values sit on the diagonal."""
        if vertex.response is not None:
            return super().interactions(vertex, Z, Z_background, n_features=n_features)
        values = self.explain(vertex, Z, Z_background, n_features=n_features).values
        out = np.zeros((values.shape[0], n_features, n_features, values.shape[2]))
        idx = np.arange(n_features)
        out[:, idx, idx] = values
        return out


@hookimpl(trylast=True)
def shapgov_explainers() -> list[type[Explainer]]:
    return [LinearExplainer]
