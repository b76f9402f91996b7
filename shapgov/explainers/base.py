"""The explainer interface every plugin implements, and what the explain stage hands it."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from shapgov.errors import UnsupportedModelError
from shapgov.planning.game import INTERVENTIONAL, Game

if TYPE_CHECKING:
    from shapgov.decomposition.blueprint import Vertex
    from shapgov.registry import PluginCalls


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
    #: ``"exact"`` (the game's Shapley values), ``"sampled"`` (an unbiased estimate with
    #: ``std_error``) or ``"approximate"`` (e.g. DeepLIFT: locally accurate, not exact).
    method: str = "exact"


@dataclass(frozen=True, eq=False)
class VertexRequest:
    """One vertex to explain in the explanation's game.

    :param vertex: The vertex; ``origins`` maps each column of ``Z`` to an original column
        (-1: constant).
    :param Z: The vertex's preprocessed rows, ``(n, m)``.
    :param Z_background: The preprocessed background ``(b, m)`` in the interventional
        game; ``None`` in the path-dependent one.
    :param n_features: M, the number of original columns to report.
    :param game: The game every vertex of the explanation plays.
    :param plugins: The explanation's plugin calls (e.g. ``shapgov_tree_ensemble``).
    """

    vertex: Vertex
    Z: Any
    Z_background: Any
    n_features: int
    game: Game
    plugins: PluginCalls

    @property
    def origins(self) -> np.ndarray:
        """``(m,)`` the original column of each column of ``Z`` (-1: constant)."""
        return np.asarray(self.vertex.origins)


class Explainer(ABC):
    """Explains one modeling vertex in the explanation's game.

    Subclasses set ``name`` (unique across plugins) and take their options as
    keyword-only constructor parameters with defaults; :meth:`option_names` lists them and
    unknown ones are refused before any work starts.
    """

    name: ClassVar[str]
    #: Whether the explainer can explain a vertex whose parent consumes a response
    #: (probability, exp) rather than the margin.
    supports_response: ClassVar[bool] = False
    #: The games (``feature_perturbation`` values) this explainer plays exactly.
    feature_perturbations: ClassVar[tuple[str, ...]] = (INTERVENTIONAL,)
    #: The game links (:data:`shapgov.explainers.game_links.GAME_LINKS`) this explainer
    #: plays: a link applied to the background average, ``v(S) = g(mean_b f(x_S, b))``,
    #: reads ``request.game.link``.
    game_links: ClassVar[tuple[str, ...]] = ("identity",)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The keyword options the constructor takes."""
        params = inspect.signature(cls.__init__).parameters.values()
        return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)

    @abstractmethod
    def explain(self, request: VertexRequest) -> VertexValues:
        """SHAP values of ``request.vertex`` in ``request.game``, summed to original columns."""

    def interactions(self, request: VertexRequest) -> np.ndarray:
        """SHAP interaction values of the vertex over the original columns, ``(n, M, M, K)``.

        Explainers that cannot compute them keep this default, which refuses.
        """
        raise UnsupportedModelError(
            f"{request.vertex.name}: the {self.name!r} explainer does not compute interaction "
            "values; the tree, linear, deep (exact mode) and kernel (exact mode) explainers do"
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


def scatter_players(
    values: np.ndarray, active: np.ndarray, n_features: int, *, pairs: bool = False
) -> np.ndarray:
    """Values over players ``(n, P, K)`` (``(n, P, P, K)`` with ``pairs``) placed at their
    original columns ``active`` among ``n_features``; other columns get 0."""
    n, k = values.shape[0], values.shape[-1]
    if pairs:
        out = np.zeros((n, n_features, n_features, k))
        out[:, active[:, None], active[None, :]] = values
    else:
        out = np.zeros((n, n_features, k))
        out[:, active] = values
    return out
