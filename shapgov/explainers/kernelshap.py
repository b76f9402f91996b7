"""Model-agnostic interventional SHAP (Kernel SHAP) for any predict function.

The game is the interventional one every shapgov explainer plays:
``v(S) = mean_b f(x_S, b_rest)`` over the background rows b, with players the original
columns (several input columns can belong to one player). Two modes:

* **exact**: all ``2**P`` coalitions are evaluated and the Shapley formula applied
  (:func:`shapgov.explainers.coalitions.shapley_from_values`): equal to brute force.
* **sampling**: one game ``v_b(S) = f(x_S, b_rest)`` per background row, each on its
  own paired coalitions, stratified by size with leverage-score shares and drawn without
  replacement (:mod:`shapgov.explainers.coalition_sampling`; Musco and Witter, ICLR 2025),
  ``n_samples`` coalitions per row and background row (empty and full included); the
  values are the games' weighted average (:mod:`shapgov.explainers.sampled_kernel`). The
  default estimator (``"odd"``) regresses each pair's odd part on the singletons and the
  strongest odd interactions of a LightGBM surrogate fitted on the model rows already
  evaluated (:mod:`shapgov.explainers.odd_regression`); ``"leverage"`` on the singletons
  alone. The efficiency constraint is held exactly; standard errors are the estimator's
  linearisation over the sampled pairs, for the odd estimator scaled up by how much the
  surrogate's choice of terms shrank the residuals (measured on pairs it never saw); no
  further model calls.

With ``link="logit"`` the game is shap's linked one, ``v(S) = logit(mean_b f(x_S, b))``
(:mod:`shapgov.explainers.game_links`): exact mode links the enumerated averages, sampling
mode evaluates every coalition against every background row.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from shapgov.errors import InputError
from shapgov.explainers.coalition_sampling import sample_coalitions
from shapgov.explainers.coalitions import (
    DEFAULT_MAX_EXACT_PLAYERS,
    check_budget,
    coalition_masks,
    interactions_from_values,
    shapley_from_values,
)
from shapgov.explainers.game_links import (
    check_game_link,
    link_game_values,
    linked_sampled_values,
)
from shapgov.explainers.hybrids import Hybrids, check_width, checked_output, run_tasks
from shapgov.explainers.sampled_kernel import plan_games, sampled_values

Predict = Callable[[Any], np.ndarray]
DEFAULT_BATCH_ROWS = 1 << 16  # hybrid rows per model call (cache-sized)
#: Sampling-mode estimators (see :func:`kernel_shap`).
ESTIMATORS = ("odd", "leverage")


@dataclass(frozen=True)
class KernelValues:
    """Kernel SHAP values ``(n, P, K)`` over the players, base ``(K,)`` and, for the
    sampling mode, standard errors ``(n, P, K)`` (the estimator's linearisation over the
    sampled pairs)."""

    values: np.ndarray
    base: np.ndarray
    std_error: np.ndarray | None
    n_coalitions: int
    n_evaluations: int
    exact: bool
    #: Exact interaction values ``(n, P, P, K)``, when asked (exact mode only).
    interactions: np.ndarray | None = None
    #: Sampling mode, ``estimator="odd"``: per output, the share of blocks of rows whose
    #: values come from the odd regression (the rest from the plain one).
    surrogate_share: np.ndarray | None = None


def exact_values(
    f: Predict,
    hybrids: Hybrids,
    n_rows: int,
    n_players: int,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    n_jobs: int = 1,
    progress: tqdm | None = None,
) -> tuple[np.ndarray, int]:
    """``v(S)`` for every row and all ``2**P`` coalitions, ``(n, 2**P, K)``, and the
    number of model evaluations spent.

    A player whose columns hold the same values in the row and in background row b
    cannot change b's hybrids, so for each row the background is grouped by the players
    it agrees on and only coalitions of the other players are evaluated: with
    categorical or binary columns (or the row itself in the background) far fewer
    evaluations than ``2**P * b``, with identical results.
    """
    ids = np.arange(1 << n_players)
    pieces: list[tuple[int, int, np.ndarray, np.ndarray]] = []  # row, group, cols, members
    plans: list[list[np.ndarray]] = []
    for i in range(n_rows):
        same = hybrids.agreement(i)
        patterns, group = np.unique(same, axis=0, return_inverse=True)
        plan = []
        for g, pattern in enumerate(patterns):
            members = np.flatnonzero(group.ravel() == g)
            free = np.flatnonzero(~pattern)  # players that change these rows' hybrids
            sub = np.zeros((1 << free.size, n_players))
            sub[:, free] = coalition_masks(free.size)
            # position of S & free among the sub-coalitions, for every coalition S
            plan.append(((ids[:, None] >> free[None, :]) & 1) @ (1 << np.arange(free.size)))
            cols = hybrids.column_masks(sub)
            step = max(1, batch_rows // members.size)
            for a in range(0, cols.shape[0], step):
                pieces.append((i, g, cols[a : a + step], members))
        plans.append(plan)
    tasks = _pack(pieces, batch_rows)

    def run(task: list[tuple[int, int, np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        tables = [hybrids.build_one(i, cols, members) for i, _, cols, members in task]
        n_eval = sum(len(t) for t in tables)
        table = pd.concat(tables, ignore_index=True) if hybrids.frame else np.vstack(tables)
        pred = checked_output(f(table), n_eval)
        if progress is not None:
            progress.update(n_eval)
        out, start = [], 0
        for _, _, cols, members in task:
            size = cols.shape[0] * members.size
            block = pred[start : start + size]
            block = block.reshape(cols.shape[0], members.size, -1)
            out.append(np.einsum("smk,m->sk", block, hybrids.weights[members]))
            start += size
        return out

    results = [r for batch in run_tasks(run, tasks, n_jobs) for r in batch]
    k = results[0].shape[1]
    sums: dict[tuple[int, int], list[np.ndarray]] = {}
    for (i, g, _, _), res in zip(pieces, results, strict=True):
        check_width(res.shape[1], k)
        sums.setdefault((i, g), []).append(res)
    v = np.zeros((n_rows, ids.size, k))
    for i, plan in enumerate(plans):
        for g, index in enumerate(plan):
            v[i] += np.concatenate(sums[(i, g)])[index]
    return v, sum(p[2].shape[0] * p[3].size for p in pieces)


def _pack(pieces: list[Any], batch_rows: int) -> list[list[Any]]:
    """Consecutive pieces grouped into model calls of about ``batch_rows`` rows."""
    tasks: list[list[Any]] = []
    size = batch_rows
    for piece in pieces:
        n = piece[2].shape[0] * piece[3].size
        if size + n > batch_rows:
            tasks.append([])
            size = 0
        tasks[-1].append(piece)
        size += n
    return tasks


def kernel_shap(
    f: Predict,
    X: Any,
    background: Any,
    *,
    player: np.ndarray | None = None,
    mode: str = "auto",
    max_exact_players: int = DEFAULT_MAX_EXACT_PLAYERS,
    n_samples: int | None = None,
    random_state: int | None = 0,
    estimator: str = "odd",
    batch_rows: int = DEFAULT_BATCH_ROWS,
    n_jobs: int | None = None,
    dedupe: bool = True,
    progress: bool | None = None,
    interactions: bool = False,
    background_weights: np.ndarray | None = None,
    link: str = "identity",
) -> KernelValues:
    """Interventional SHAP values of ``f`` on ``X`` against ``background``.

    :param f: Predict function: a 2-D table (array or DataFrame like ``X``) → ``(n, K)``.
    :param player: Player of each column (default: one per column); -1 = never varied.
    :param mode: ``"exact"``, ``"sampling"`` or ``"auto"`` (exact up to
        ``max_exact_players`` players).
    :param n_samples: Coalitions per row and background row in sampling mode, the empty
        and full ones included (default ``2 * P + 2048``): a row costs ``n_samples`` model
        rows per background row, never more. Below two pairs per coalition size:
        ``InputError``.
    :param random_state: Seed of the coalition samplers and the surrogates (sampling mode).
    :param estimator: Sampling mode's estimator: ``"odd"`` (default: the paired odd
        regression on the singletons and the strongest odd interactions of a tree
        surrogate fitted on the evaluated model rows, see
        :mod:`shapgov.explainers.odd_regression`; per block of rows, the plain regression
        instead where its estimated variance is smaller) or ``"leverage"`` (the paired
        leverage-score regression on the singletons alone).
    :param batch_rows: Most hybrid rows per model call (bounds memory).
    :param n_jobs: Threads calling ``f`` side by side (default: the CPU count, at most 4);
        pass 1 for a predict function that is not thread-safe.
    :param dedupe: Use that the row and a background row agree on a player: exact mode
        skips the hybrids that equal others (same values, fewer model calls); sampling
        mode gives such a player exactly 0 in that background row's game.
    :param progress: Show a progress bar (default: when the work exceeds 10**7 rows).
    :param interactions: Also return exact interaction values (exact mode only).
    :param background_weights: Background row weights summing to one (default equal).
    :param link: ``"identity"`` or ``"logit"``: the game ``v(S) = logit(sum_b w_b
        f(x_S, b))`` on probabilities (shap's ``link="logit"``; see
        :mod:`shapgov.explainers.game_links`), in log-odds; sampling mode then evaluates
        each coalition against every background row and uses the leverage regression.
    :returns: :class:`KernelValues`: values ``(n, P, K)`` in the units of ``f``'s output
        (log-odds with ``link="logit"``), base ``(K,)``; base + values summed over players
        = ``f(x)`` (``logit(f(x))``) to rounding.
    :raises InputError: Bad mode, estimator, players, budget or an empty background.
    :raises ExactBudgetError: ``mode="exact"`` beyond ``max_exact_players``.
    :raises ModelOutputError: ``f`` returned the wrong shape, non-numbers, NaN or inf;
        with ``link="logit"``, not probabilities.
    """
    check_game_link(link)
    if mode not in ("auto", "exact", "sampling"):
        raise InputError(f"mode must be 'auto', 'exact' or 'sampling', got {mode!r}")
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if n_samples is not None and (
        not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool)
    ):
        raise InputError(f"n_samples must be an int (coalitions per row), got {n_samples!r}")
    if random_state is not None and (
        not isinstance(random_state, (int, np.integer))
        or isinstance(random_state, bool)
        or random_state < 0
    ):
        raise InputError(f"random_state must be None or an int >= 0, got {random_state!r}")
    n_rows, n_cols = X.shape
    if n_rows == 0:
        raise InputError("there are no rows to explain")
    if len(background) == 0:
        raise InputError("the background is empty; pass at least one background row")
    if player is None:
        player = np.arange(n_cols)
    player = np.asarray(player, dtype=np.int64)
    if player.shape != (n_cols,):
        raise InputError(f"player must give one entry per column ({n_cols}), got {player.shape}")
    n_players = int(player.max(initial=-1)) + 1
    exact = mode == "exact" or (mode == "auto" and n_players <= max_exact_players)
    if mode == "exact":
        check_budget(
            n_players, max_exact_players, what="Kernel SHAP", instead="use mode='sampling'"
        )
    if interactions and not exact:
        raise InputError(
            "interaction values come from exact Kernel SHAP only; keep the columns within "
            "max_exact_players or explain without interactions"
        )
    if background_weights is not None:
        w = np.asarray(background_weights, dtype=float) if np.ndim(background_weights) else None
        if (
            w is None
            or w.shape != (len(background),)
            or not np.isfinite(w).all()
            or ((w < 0).any() or w.sum() <= 0)
        ):
            raise InputError(
                f"background_weights must be {len(background)} finite non-negative numbers "
                "(one per background row) with a positive sum"
            )
        background_weights = w / w.sum()
    hybrids = Hybrids(X, background, player, dedupe=dedupe, weights=background_weights)
    jobs = min(os.cpu_count() or 1, 4) if n_jobs is None else int(n_jobs)
    linked = link != "identity"
    if exact:
        n_coalitions = 1 << n_players
    elif linked:
        n_coalitions = sample_coalitions(n_players, n_samples, 0).n_coalitions + 2
    else:
        games = plan_games(n_players, n_samples, random_state, hybrids.weights)
        n_coalitions = games[0].sample.n_coalitions + 2
    n_used = hybrids.n_background if exact else int((hybrids.weights > 0).sum())
    total = n_rows * n_coalitions * n_used
    show = total > 10**7 if progress is None else progress
    with tqdm(total=total, disable=not show, unit="row", desc="Kernel SHAP") as bar:
        if exact:
            v, spent = exact_values(
                f, hybrids, n_rows, n_players, batch_rows=batch_rows, n_jobs=jobs, progress=bar
            )
            v = link_game_values(link, v)
            values = shapley_from_values(v)
            pairs = interactions_from_values(v) if interactions else None
            return KernelValues(values, v[0, 0], None, n_coalitions, spent, True, pairs)
        if linked:
            values, base, se, _ = linked_sampled_values(
                f,
                hybrids,
                n_rows,
                n_players,
                link,
                n_samples=n_samples,
                random_state=random_state,
                batch_rows=batch_rows,
                n_jobs=jobs,
                progress=bar,
            )
            return KernelValues(values, base, se, n_coalitions, total, False)
        values, base, se, share = sampled_values(
            f,
            hybrids,
            X,
            background,
            games,
            estimator,
            random_state,
            batch_rows=batch_rows,
            n_jobs=jobs,
            progress=bar,
        )
        return KernelValues(values, base, se, n_coalitions, total, False, surrogate_share=share)
