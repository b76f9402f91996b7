"""The explainer interface every plugin implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from shapgov.decomposition.blueprint import Vertex
from shapgov.errors import UnsupportedModelError


@dataclass(frozen=True)
class VertexValues:
    """SHAP values of one vertex over the original columns, in the space its parent consumes.

    ``values`` is ``(n, M, K)`` and ``base`` ``(K,)``, with
    ``base + values.sum(1) == vertex.output(margin)`` row by row.
    """

    values: np.ndarray
    base: np.ndarray
    #: Standard errors of sampled values, ``(n, M, K)``; ``None`` when exact.
    std_error: np.ndarray | None = None


class Explainer(ABC):
    """Explains one modeling vertex against a background.

    Subclasses set ``name`` (unique across plugins) and may accept keyword options.
    """

    name: ClassVar[str]
    #: Whether the explainer can explain a vertex whose parent consumes a response
    #: (probability, exp) rather than the margin.
    supports_response: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abstractmethod
    def explain(
        self, vertex: Vertex, Z: np.ndarray, Z_background: np.ndarray, *, n_features: int
    ) -> VertexValues:
        """Explain ``vertex`` on its inputs ``Z`` against ``Z_background``.

        :param vertex: The vertex, with ``origins`` mapping Z columns to original columns.
        :param Z: The vertex's preprocessed inputs, ``(n, m)``.
        :param Z_background: The preprocessed background, ``(b, m)``.
        :param n_features: M, the number of original columns to report.
        """

    def interactions(
        self, vertex: Vertex, Z: np.ndarray, Z_background: np.ndarray, *, n_features: int
    ) -> np.ndarray:
        """SHAP interaction values of ``vertex`` over the original columns, ``(n, M, M, K)``.

        Explainers that cannot compute them keep this default, which refuses.
        """
        raise UnsupportedModelError(
            f"{vertex.name}: the {self.name!r} explainer does not compute interaction values; "
            "they are available for tree vertices (path-dependent TreeSHAP)"
        )


def _onehot(origins: np.ndarray, n_features: int) -> np.ndarray:
    onehot = np.zeros((origins.shape[0], n_features))
    keep = np.flatnonzero(origins >= 0)
    onehot[keep, origins[keep]] = 1.0
    return onehot


def group_sum(contrib: np.ndarray, origins: np.ndarray, n_features: int) -> np.ndarray:
    """Sum ``contrib`` ``(n, m, K)`` over Z columns into original columns ``(n, M, K)``."""
    return np.einsum("nmk,mj->njk", contrib, _onehot(origins, n_features))


def group_sum_pairs(contrib: np.ndarray, origins: np.ndarray, n_features: int) -> np.ndarray:
    """Sum pair values ``(n, m, m, K)`` over Z columns into original columns ``(n, M, M, K)``;
    pairs within one original column land on its diagonal."""
    onehot = _onehot(origins, n_features)
    return np.einsum("nabk,aA,bB->nABk", contrib, onehot, onehot, optimize=True)
