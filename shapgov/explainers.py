"""The explainer interface every plugin implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from shapgov.blueprint import Vertex


@dataclass(frozen=True)
class VertexValues:
    """SHAP values of one vertex over the original columns, in the space its parent consumes.

    ``values`` is ``(n, M, K)`` and ``base`` ``(K,)``, with
    ``base + values.sum(1) == vertex.output(margin)`` row by row.
    """

    values: np.ndarray
    base: np.ndarray


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


def group_sum(contrib: np.ndarray, origins: np.ndarray, n_features: int) -> np.ndarray:
    """Sum ``contrib`` ``(n, m, K)`` over Z columns into original columns ``(n, M, K)``."""
    onehot = np.zeros((origins.shape[0], n_features))
    keep = np.flatnonzero(origins >= 0)
    onehot[keep, origins[keep]] = 1.0
    return np.einsum("nmk,mj->njk", contrib, onehot)
