"""Built-in plugin: the Kernel explainer, model-agnostic interventional SHAP.

Explains any vertex through its margin function (the vertex's own predictions), so it
serves opaque predict functions, whole black-box models and every vertex without a
dedicated explainer. Exact by enumeration up to ``max_exact_players`` original columns
(14), sampled beyond: one game per background row on its own paired leverage-score
sample (Musco and Witter 2025) and an odd regression on a tree surrogate's strongest
interactions (after Fumagalli et al. 2026), with standard errors. See
:mod:`shapgov.explainers.kernelshap` for the algorithms.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.errors import InputError, ModelOutputError, PerformanceWarning, UnsupportedModelError
from shapgov.explainers.base import Explainer, VertexRequest, VertexValues, scatter_players
from shapgov.explainers.coalitions import DEFAULT_MAX_EXACT_PLAYERS, players_of
from shapgov.explainers.kernelshap import (
    DEFAULT_BATCH_ROWS,
    ESTIMATORS,
    KernelValues,
    kernel_shap,
)

#: Background size above which the explainer warns (the work grows with it linearly).
LARGE_BACKGROUND = 500
#: Model evaluations above which the explainer warns that the work will be slow.
LARGE_WORK = 10**8
MODES = ("auto", "exact", "sampling")


class KernelExplainer(Explainer):
    """Model-agnostic interventional SHAP (exact up to 14 columns, sampled beyond).

    :param mode: ``"auto"`` (exact up to ``max_exact_players`` columns), ``"exact"`` or
        ``"sampling"``.
    :param max_exact_players: Most original columns enumerated exactly.
    :param n_samples: Coalitions per row and background row in sampling mode, the empty
        and full ones included (default ``2 * P + 2048``); never exceeded. Below two pairs
        per coalition size: ``InputError``.
    :param random_state: Seed of the coalition sampler.
    :param estimator: Sampling mode's estimator: ``"odd"`` (the paired odd regression on
        the singletons and a tree surrogate's strongest odd interactions) or
        ``"leverage"`` (paired leverage-score Kernel SHAP); see
        :func:`shapgov.explainers.kernelshap.kernel_shap`.
    :param batch_rows: Most hybrid rows per model call.
    :param n_jobs: Threads calling the model (default: CPU count, at most 4).
    :param dedupe: Skip hybrids equal to others (exact mode; same values, fewer calls).
    :param progress: Progress bar (default: above 10**7 model evaluations).
    """

    name = "kernel"
    supports_response = True
    game_links = ("identity", "logit")

    def __init__(
        self,
        *,
        mode: str = "auto",
        max_exact_players: int = DEFAULT_MAX_EXACT_PLAYERS,
        n_samples: int | None = None,
        random_state: int | None = 0,
        estimator: str = "odd",
        batch_rows: int = DEFAULT_BATCH_ROWS,
        n_jobs: int | None = None,
        dedupe: bool = True,
        progress: bool | None = None,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {mode!r}")
        if estimator not in ESTIMATORS:
            raise InputError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if n_samples is not None and (
            not isinstance(n_samples, int) or isinstance(n_samples, bool)
        ):
            raise InputError(f"n_samples must be an int (coalitions per row), got {n_samples!r}")
        for what, value in (("max_exact_players", max_exact_players), ("batch_rows", batch_rows)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{what} must be a positive int, got {value!r}")
        self.settings = {
            "mode": mode,
            "max_exact_players": max_exact_players,
            "n_samples": n_samples,
            "random_state": random_state,
            "estimator": estimator,
            "batch_rows": batch_rows,
            "n_jobs": n_jobs,
            "dedupe": dedupe,
            "progress": progress,
        }

    def explain(self, request: VertexRequest) -> VertexValues:
        result, active = self._run(request, interactions=False)
        values = scatter_players(result.values, active, request.n_features)
        std_error = None
        if result.std_error is not None:
            std_error = scatter_players(result.std_error, active, request.n_features)
        method = "exact" if result.exact else "sampled"
        return VertexValues(values, result.base, std_error=std_error, method=method)

    def interactions(self, request: VertexRequest) -> np.ndarray:
        """Exact interaction values ``(n, M, M, K)`` (exact mode only)."""
        result, active = self._run(request, interactions=True)
        return scatter_players(result.interactions, active, request.n_features, pairs=True)

    def _run(self, request: VertexRequest, *, interactions: bool) -> tuple[KernelValues, Any]:
        vertex, Z, Zb = request.vertex, request.Z, request.Z_background
        if vertex.margin is None:
            raise UnsupportedModelError(
                f"{vertex.name}: the vertex has no margin function to call; its plugin must "
                "build it with DecomposeContext.leaf"
            )
        active, player = players_of(request.origins)
        self._warn_if_large(vertex.name, len(Z), len(Zb), active.size)

        def f(table: Any) -> np.ndarray:
            return vertex.output(vertex.margin(table))

        result = kernel_shap(
            f,
            Z,
            Zb,
            player=player,
            interactions=interactions,
            background_weights=request.game.background_weights,
            link=request.game.link,
            **self.settings,
        )
        k = result.values.shape[2]
        if k != vertex.n_outputs:
            raise ModelOutputError(
                f"{vertex.name}: the model returned {k} outputs per row where {vertex.n_outputs} "
                "were expected from what it stores (classes_, n_outputs_, coef_); explain it "
                "as a whole with opaque=True, which counts its outputs on the first row, or "
                "return one prediction per row (or one per class)"
            )
        return result, active

    def _warn_if_large(self, name: str, n_rows: int, n_background: int, n_players: int) -> None:
        if n_background > LARGE_BACKGROUND:
            warnings.warn(
                PerformanceWarning(
                    f"{name}: {n_background} background rows make Kernel SHAP work "
                    f"{n_background}x per coalition; summarize them first, e.g. "
                    "background=shapgov.summarize_background(X, n=100)"
                ),
                stacklevel=6,
            )
        mode = self.settings["mode"]
        exact = mode == "exact" or (
            mode == "auto" and n_players <= self.settings["max_exact_players"]
        )
        per_row = 2**n_players if exact else self.settings["n_samples"] or 2 * n_players + 2048
        work = n_rows * per_row * n_background
        if work > LARGE_WORK:
            warnings.warn(
                PerformanceWarning(
                    f"{name}: Kernel SHAP needs up to {work:.2g} model evaluations "
                    f"({n_rows} rows x {per_row} coalitions x {n_background} background "
                    "rows); summarize the background (shapgov.summarize_background) or "
                    "explain fewer rows"
                ),
                stacklevel=6,
            )


@hookimpl(trylast=True)
def shapgov_explainers() -> list[type[Explainer]]:
    return [KernelExplainer]
