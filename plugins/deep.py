"""Built-in plugin: the Deep explainer for neural networks (the matrix's Keras row).

scikit-learn MLPs are explained in their margin (the output layer's pre-activation;
logistic and softmax outputs become logit and softmax links). Two methods:

* ``"exact"`` (default up to ``max_exact_players`` original columns, 14): exact
  interventional Shapley values, from :mod:`shapgov.explainers.kernels.mlp` — every
  coalition's first layer assembled from per-column contributions, no hybrid rows.
* ``"deeplift"``: DeepLIFT with the rescale rule (:mod:`shapgov.explainers.deeplift`),
  averaged over the background. An approximation of Shapley values: locally accurate, exact for linear
  networks, measured against exact values in ``benchmarks/bench_kernel.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Vertex
from shapgov.errors import ExactBudgetError, InputError, UnsupportedModelError
from shapgov.explainers.base import Explainer, VertexValues, group_sum
from shapgov.explainers.coalitions import DEFAULT_MAX_EXACT_PLAYERS, shapley_from_values
from shapgov.explainers.deeplift import deeplift_values
from shapgov.explainers.kernels.mlp import ACTIVATIONS, mlp_coalition_margins

_CHUNK_ELEMENTS = 1 << 22


def mlp_layers(estimator: Any) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """``(coefs, intercepts, hidden activation)`` of a fitted MLP: a scikit-learn MLP or
    any object with the same ``coefs_``, ``intercepts_`` and ``activation`` (e.g. the
    PyTorch plugin's adapter)."""
    if not all(hasattr(estimator, a) for a in ("coefs_", "intercepts_", "activation")):
        raise UnsupportedModelError(
            f"the Deep explainer reads MLP layers (coefs_, intercepts_, activation); "
            f"{type(estimator).__name__} has none"
        )
    if estimator.activation not in ACTIVATIONS:
        raise UnsupportedModelError(f"MLP activation {estimator.activation!r} is not supported")
    coefs = [np.asarray(c, dtype=float) for c in estimator.coefs_]
    intercepts = [np.asarray(c, dtype=float) for c in estimator.intercepts_]
    return coefs, intercepts, estimator.activation


class DeepExplainer(Explainer):
    """Exact for few columns, DeepLIFT (rescale) beyond. Options: ``method``
    (``"auto"``, ``"exact"``, ``"deeplift"``), ``max_exact_players``."""

    name = "deep"
    supports_response = True

    def explain(
        self, vertex: Vertex, Z: np.ndarray, Z_background: np.ndarray, *, n_features: int
    ) -> VertexValues:
        coefs, intercepts, activation = mlp_layers(vertex.estimator)
        if coefs[-1].shape[1] != vertex.n_margins:
            raise UnsupportedModelError(
                f"{vertex.name}: the network has {coefs[-1].shape[1]} outputs, the vertex "
                f"{vertex.n_margins} margins"
            )
        origins = np.asarray(vertex.origins)
        active = np.unique(origins[origins >= 0])
        budget = self.options.get("max_exact_players", DEFAULT_MAX_EXACT_PLAYERS)
        method = self.options.get("method", "auto")
        if method not in ("auto", "exact", "deeplift"):
            raise InputError(f"method must be 'auto', 'exact' or 'deeplift', got {method!r}")
        if method == "exact" and active.size > budget:
            raise ExactBudgetError(
                f"{vertex.name}: exact values over {active.size} columns need "
                f"2**{active.size} coalitions, above max_exact_players={budget}; raise it "
                "(cost doubles per column) or use method='deeplift'"
            )
        if method == "exact" or (method == "auto" and active.size <= budget):
            player = np.where(origins >= 0, np.searchsorted(active, origins), -1)
            respond = vertex.output
            base = respond(_margin(coefs, intercepts, activation, Z_background)).mean(axis=0)
            linear = vertex.response is None  # the mean of margins is taken in the kernel
            per_row = (1 if linear else len(Z_background)) << active.size
            per_row *= coefs[-1].shape[1]
            step = max(1, _CHUNK_ELEMENTS // per_row)
            values = np.zeros((len(Z), n_features, base.shape[0]))
            for start in range(0, len(Z), step):
                rows = slice(start, start + step)
                margins = mlp_coalition_margins(
                    coefs,
                    intercepts,
                    activation,
                    Z[rows],
                    Z_background,
                    player,
                    active.size,
                    mean=linear,
                )
                v = respond(margins).mean(axis=1)  # (r, 2**P, K_out)
                values[rows, active] = shapley_from_values(v)
            return VertexValues(values, base)
        if vertex.response is not None:
            raise UnsupportedModelError(
                f"{vertex.name}: DeepLIFT explains the margin only; its parent consumes "
                f"{vertex.response.name}. Use method='exact' (few columns) or the Kernel "
                "explainer."
            )
        phi, base = deeplift_values(coefs, intercepts, activation, Z, Z_background)
        return VertexValues(group_sum(phi, origins, n_features), base)


def _margin(coefs, intercepts, activation, X):
    from shapgov.explainers.deeplift import forward

    return forward(coefs, intercepts, activation, np.asarray(X, dtype=float))[1]


@hookimpl(trylast=True)
def shapgov_explainers() -> list[type[Explainer]]:
    return [DeepExplainer]
