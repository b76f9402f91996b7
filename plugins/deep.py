"""Built-in plugin: the Deep explainer for neural networks (the matrix's Keras row).

Networks (scikit-learn MLPs, and the :class:`~shapgov.explainers.network.Network` that the
PyTorch and Keras readers build) are explained in their margin (the output layer's
pre-activation; logistic and softmax outputs become logit and softmax links). Two
methods, both for the interventional game:

* ``"exact"`` (default up to ``max_exact_players`` original columns, 14): exact
  interventional Shapley values, from :mod:`shapgov.explainers.kernels.mlp` — every
  coalition's first layer assembled from per-column contributions, no hybrid rows — and
  the exact-coalition engine (:mod:`shapgov.explainers.coalitions`).
* ``"deeplift"``: DeepLIFT with the rescale rule (:mod:`shapgov.explainers.deeplift`;
  Shrikumar et al. 2017), averaged over the background: an approximation of the same
  game's Shapley values (DeepSHAP, Lundberg and Lee 2017), locally accurate, exact for
  linear networks, measured against exact values per activation in
  ``benchmarks/bench_deep.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.errors import InputError, UnsupportedModelError
from shapgov.explainers.base import (
    Explainer,
    VertexRequest,
    VertexValues,
    group_sum,
    scatter_players,
)
from shapgov.explainers.coalitions import (
    DEFAULT_MAX_EXACT_PLAYERS,
    check_budget,
    checked_max_players,
    exact_shapley,
    players_of,
)
from shapgov.explainers.deeplift import deeplift_values
from shapgov.explainers.kernels.mlp import mlp_coalition_margins
from shapgov.explainers.network import Network

METHODS = ("auto", "exact", "deeplift")


def network_of(estimator: Any) -> Network:
    """The :class:`~shapgov.explainers.network.Network` of a fitted network vertex: its
    ``network_`` (the PyTorch and Keras readers set one), or a scikit-learn MLP's layers."""
    network = getattr(estimator, "network_", None)
    if isinstance(network, Network):
        return network
    if not all(hasattr(estimator, a) for a in ("coefs_", "intercepts_", "activation")):
        raise UnsupportedModelError(
            f"the Deep explainer reads network layers (a network_, or coefs_, intercepts_ and "
            f"activation); {type(estimator).__name__} has none"
        )
    return Network.from_sklearn(estimator)


class DeepExplainer(Explainer):
    """Exact for few columns, DeepLIFT (rescale) beyond.

    :param method: ``"auto"`` (exact up to ``max_exact_players`` columns, DeepLIFT
        beyond), ``"exact"`` or ``"deeplift"``.
    :param max_exact_players: Most original columns enumerated exactly.
    """

    name = "deep"
    supports_response = True

    def __init__(
        self, *, method: str = "auto", max_exact_players: int = DEFAULT_MAX_EXACT_PLAYERS
    ) -> None:
        if method not in METHODS:
            raise InputError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        self.max_exact_players = checked_max_players(max_exact_players)

    def explain(self, request: VertexRequest) -> VertexValues:
        vertex = request.vertex
        network = self._network(request)
        active, _ = players_of(request.origins)
        if self.method == "exact":
            check_budget(
                active.size,
                self.max_exact_players,
                what=vertex.name,
                instead="use method='deeplift'",
            )
        if self.method == "exact" or (
            self.method == "auto" and active.size <= self.max_exact_players
        ):
            return self._exact(request, network, interactions=False)
        if vertex.response is not None:
            raise UnsupportedModelError(
                f"{vertex.name}: DeepLIFT explains the margin only; its parent consumes "
                f"{vertex.response.name}. Use method='exact' (few columns) or the Kernel "
                "explainer."
            )
        phi, base = deeplift_values(
            network, request.Z, request.Z_background, weights=request.game.background_weights
        )
        values = group_sum(phi, request.origins, request.n_features)
        return VertexValues(values, base, method="approximate")

    def interactions(self, request: VertexRequest) -> np.ndarray:
        """Exact interaction values ``(n, M, M, K)`` (exact method only)."""
        if self.method == "deeplift":
            return super().interactions(request)
        return self._exact(request, self._network(request), interactions=True)

    def _network(self, request: VertexRequest) -> Network:
        network = network_of(request.vertex.estimator)
        if network.n_outputs != request.vertex.n_margins:
            raise UnsupportedModelError(
                f"{request.vertex.name}: the network has {network.n_outputs} outputs, the "
                f"vertex {request.vertex.n_margins} margins"
            )
        return network

    def _exact(
        self, request: VertexRequest, network: Network, *, interactions: bool
    ) -> VertexValues | np.ndarray:
        vertex, Z, Zb = request.vertex, request.Z, request.Z_background
        active, player = players_of(request.origins)
        respond = vertex.output
        game = request.game
        # the plain mean of margins is taken in the kernel; a response or weights need
        # every background row's margin
        linear = vertex.response is None and game.background_weights is None

        def values(rows: slice) -> np.ndarray:
            margins = mlp_coalition_margins(network, Z[rows], Zb, player, active.size, mean=linear)
            return game.average(respond(margins), axis=1)  # (r, 2**P, K_out)

        phi = exact_shapley(
            values,
            n_rows=len(Z),
            n_players=active.size,
            elements_per_row=((1 if linear else len(Zb)) << active.size) * network.n_outputs,
            max_players=self.max_exact_players,
            what=vertex.name,
            interactions=interactions,
        )
        out = scatter_players(phi, active, request.n_features, pairs=interactions)
        if interactions:
            return out
        base = respond(network.margin(np.asarray(Zb, float)))
        return VertexValues(out, game.average(base, axis=0))


@hookimpl(trylast=True)
def shapgov_explainers() -> list[type[Explainer]]:
    return [DeepExplainer]
