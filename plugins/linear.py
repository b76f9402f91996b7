"""Built-in plugin: exact interventional SHAP for linear models and GLMs.

In margin space the interventional value function of ``f(z) = coef @ z + c`` gives
``phi_t = coef_t (z_t - E_b[z_t])`` per transformed column, summed back to the original
column it comes from (Lundberg and Lee 2017, linear SHAP with independent features). When
the parent consumes a response of the margin (probability, exp), values are exact in that
space through the exact-coalition engine: ``response(c + sum_g h_g(x_g))`` is a GAM
response, so each coalition's margin is assembled from per-column contributions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.errors import UnsupportedModelError
from shapgov.explainers.base import (
    Explainer,
    VertexRequest,
    VertexValues,
    group_sum,
    scatter_players,
)
from shapgov.explainers.coalitions import (
    DEFAULT_MAX_EXACT_PLAYERS,
    checked_max_players,
    coalition_masks,
    exact_shapley,
    players_of,
)


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
    """Exact interventional SHAP for linear vertices.

    :param max_exact_players: Most original columns enumerated when the parent consumes a
        response of the margin.
    """

    name = "linear"
    supports_response = True

    def __init__(self, *, max_exact_players: int = DEFAULT_MAX_EXACT_PLAYERS) -> None:
        self.max_exact_players = checked_max_players(max_exact_players)

    def explain(self, request: VertexRequest) -> VertexValues:
        vertex, Z, Zb = request.vertex, request.Z, request.Z_background
        coef, intercept = linear_coefficients(vertex.estimator)
        if coef.shape[1] != Z.shape[1]:
            raise UnsupportedModelError(
                f"{vertex.name}: model has {coef.shape[1]} coefficients but receives "
                f"{Z.shape[1]} columns"
            )
        if vertex.response is None:
            mean = request.game.average(Zb, axis=0)
            contrib = (Z - mean)[:, :, None] * coef.T[None]
            values = group_sum(contrib, request.origins, request.n_features)
            return VertexValues(values, mean @ coef.T + intercept)
        return self._response_values(request, coef, intercept, interactions=False)

    def _response_values(
        self, request: VertexRequest, coef: np.ndarray, intercept: np.ndarray, *, interactions: bool
    ) -> VertexValues | np.ndarray:
        """``response(intercept + sum_g h_g(x_g))``: each player's margin contribution on a
        row (``d``) or a background row (``e``); coalition S takes players in S from the
        row and the rest from the background row."""
        vertex, Z, Zb = request.vertex, request.Z, request.Z_background
        origins = request.origins
        const = origins < 0  # constant columns belong to the intercept
        intercept = intercept + Zb[0, const] @ coef[:, const].T
        active, player = players_of(origins)
        live = ~const
        d = group_sum(Z[:, live, None] * coef[:, live].T[None], player[live], active.size)
        e = group_sum(Zb[:, live, None] * coef[:, live].T[None], player[live], active.size)
        e_total = e.sum(axis=1) + intercept  # (B, K)
        masks = coalition_masks(active.size)  # (S, P)
        respond = vertex.response.fn
        game = request.game

        def values(rows: slice) -> np.ndarray:
            delta = d[rows, None, :, :] - e[None, :, :, :]  # (r, B, P, K)
            shifted = np.einsum("sp,rbpk->rsbk", masks, delta, optimize=True)
            return game.average(respond(shifted + e_total[None, None]), axis=2)  # (r,S,K)

        base = game.average(respond(e_total), axis=0)
        phi = exact_shapley(
            values,
            n_rows=Z.shape[0],
            n_players=active.size,
            elements_per_row=(1 << active.size) * Zb.shape[0] * max(d.shape[2], base.shape[0]),
            max_players=self.max_exact_players,
            what=f"{vertex.name} ({vertex.response.name})",
            interactions=interactions,
        )
        out = scatter_players(phi, active, request.n_features, pairs=interactions)
        return out if interactions else VertexValues(out, base)

    def interactions(self, request: VertexRequest) -> np.ndarray:
        """A margin-linear vertex has no interactions: its values sit on the diagonal. A
        response of the margin interacts; its values come from the exact-coalition engine."""
        if request.vertex.response is not None:
            coef, intercept = linear_coefficients(request.vertex.estimator)
            return self._response_values(request, coef, intercept, interactions=True)
        values = self.explain(request).values
        n_features = request.n_features
        out = np.zeros((values.shape[0], n_features, n_features, values.shape[2]))
        idx = np.arange(n_features)
        out[:, idx, idx] = values
        return out


@hookimpl(trylast=True)
def shapgov_explainers() -> list[type[Explainer]]:
    return [LinearExplainer]
