"""Sampling-mode Kernel SHAP: one game per background row, each on its own coalitions.

The interventional game is an average, ``v(S) = sum_b w_b v_b(S)`` with
``v_b(S) = f(x_S, b_rest)``, and Shapley values are linear in the game, so
``phi = sum_b w_b phi_b``. Evaluating every sampled coalition against every background
row (``v(S)`` itself) spends ``n_background`` model rows to learn one coalition's value.
Here each background row instead gets its own independent sample of ``n_samples``
coalitions and its game ``v_b`` is estimated on them: the same model rows
(``n_samples * n_background`` per explained row) see ``n_background`` times as many
distinct coalitions, and the estimates' errors, independent across background rows,
average out. Each ``v_b`` holds efficiency exactly (``sum_i phi_b,i = f(x) - f(b)``), so
their average does too; players on which the row and ``b`` agree are dummies of ``v_b``
and get exactly 0 in it. Beyond :data:`MAX_GAMES` background rows, the rows are split
into that many groups and each group's game (its weighted average) is one game: the
regressions per row stay bounded, and each group still gets its own coalitions.

Estimators per game (:func:`shapgov.explainers.kernelshap.kernel_shap`'s ``estimator``):
``"leverage"``, the paired leverage-score regression on the singletons
(:mod:`shapgov.explainers.coalition_sampling`), and ``"odd"``, the odd-component regression
on the singletons and a tree surrogate's strongest odd interactions
(:mod:`shapgov.explainers.odd_regression`); per game and block of rows, the surrogate is
fitted on the model rows the game evaluated for the block's rows. Standard errors: the
games are independent, so ``se^2 = sum_g W_g^2 se_g^2`` (``W_g`` the game's weight).

Selection: the odd estimator's support is chosen on the row's own coalitions, which
makes its residuals too small; its variance is scaled by what pairs kept from the
surrogate show (:mod:`shapgov.explainers.held_out`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from shapgov.explainers.coalition_sampling import (
    CoalitionSample,
    constrained_regression,
    sample_coalitions,
)
from shapgov.explainers.held_out import held_out_pairs, residual_sums, selection_inflation
from shapgov.explainers.hybrids import Hybrids, check_width, checked_output, run_tasks
from shapgov.explainers.odd_regression import (
    interleaved,
    n_support_terms,
    odd_regression,
    support,
)
from shapgov.explainers.surrogate import EncodedColumns, fit_surrogate

Predict = Callable[[Any], np.ndarray]
#: Most model rows held at once for one block of rows (~32 MiB per output).
MAX_BLOCK_MODEL_ROWS = 1 << 22
#: Most games per explained row: up to this many background rows, one game each; beyond,
#: groups of background rows (each one game, on its own coalitions).
MAX_GAMES = 10


@dataclass(frozen=True)
class Game:
    """One game of the sampling mode: background rows ``members`` (weights ``weights``
    summing to one within the game; the game's share of the whole is ``weight``) and
    its own coalition sample."""

    members: np.ndarray
    weights: np.ndarray
    weight: float
    sample: CoalitionSample


def plan_games(
    n_players: int,
    n_samples: int | None,
    random_state: int | None,
    background_weights: np.ndarray,
) -> list[Game]:
    """The background rows of positive weight in at most :data:`MAX_GAMES` games (one per
    row when they are that few), each with an independent paired sample of ``n_samples``
    coalitions (empty and full included), seeded from ``random_state``
    (``numpy.random.SeedSequence``)."""
    w = np.asarray(background_weights, dtype=float)
    live = np.flatnonzero(w > 0)
    groups = np.array_split(live, min(MAX_GAMES, live.size))
    seeds = np.random.SeedSequence(random_state).generate_state(len(groups), dtype=np.uint32)
    games = []
    for members, seed in zip(groups, seeds, strict=True):
        weight = float(w[members].sum())
        sample = sample_coalitions(n_players, n_samples, int(seed))
        games.append(Game(members, w[members] / weight, weight, sample))
    return games


def game_columns(hybrids: Hybrids, game: Game) -> np.ndarray:
    """The game's coalitions as per-column "from the row" masks ``(S, columns)``: empty,
    full, then the sample's."""
    n_players = game.sample.masks.shape[1]
    ends = np.vstack([np.zeros(n_players), np.ones(n_players)])
    return hybrids.column_masks(np.vstack([ends, game.sample.masks]))


def game_model_rows(
    f: Predict,
    hybrids: Hybrids,
    rows: np.ndarray,
    game: Game,
    cols: np.ndarray,
    *,
    batch_rows: int,
    n_jobs: int,
    progress: tqdm | None,
) -> np.ndarray:
    """The model's outputs on the game's hybrids: ``(len(rows), S, members, K)`` for the
    empty, full and sampled coalitions (in that order) of every row; several rows per
    model call, about ``batch_rows`` model rows each. ``cols``: the game's
    :func:`game_columns`."""
    nb, s = game.members.size, cols.shape[0]
    s_step = max(1, min(s, batch_rows // nb))
    r_step = max(1, batch_rows // (s_step * nb))
    tasks = [(r0, s0) for r0 in range(0, rows.size, r_step) for s0 in range(0, s, s_step)]

    def run(task: tuple[int, int]) -> np.ndarray:
        r0, s0 = task
        part, rr = cols[s0 : s0 + s_step], rows[r0 : r0 + r_step]
        tables = [hybrids.build_one(r, part, game.members) for r in rr]
        table = pd.concat(tables, ignore_index=True) if hybrids.frame else np.vstack(tables)
        n_eval = rr.size * part.shape[0] * nb
        pred = checked_output(f(table), n_eval)
        if progress is not None:
            progress.update(n_eval)
        return pred.reshape(rr.size, part.shape[0], nb, -1)

    results = run_tasks(run, tasks, n_jobs)
    k = results[0].shape[-1]
    out = np.empty((rows.size, s, nb, k))
    for (r0, s0), res in zip(tasks, results, strict=True):
        check_width(res.shape[-1], k)
        out[r0 : r0 + res.shape[0], s0 : s0 + res.shape[1]] = res
    return out


def plain_values(
    sample: CoalitionSample, v: np.ndarray, null: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The paired leverage-score regression of one game for several rows: ``v (r, S, K)``
    (empty, full, then the sample's coalitions), ``null (r, P)`` the game's dummies
    (exactly 0). ``(values, std_error)``, ``(r, P, K)`` each."""
    values, se = constrained_regression(sample, v[:, 2:], v[:, 0], v[:, 1])
    for i in np.flatnonzero(null.any(axis=1)):
        values[i], se[i], _ = odd_regression(sample, v[i, 2:], v[i, 0], v[i, 1], [], null[i])
    return values, se


def sampled_values(
    f: Predict,
    hybrids: Hybrids,
    X: Any,
    background: Any,
    games: list[Game],
    estimator: str,
    random_state: int | None,
    *,
    batch_rows: int,
    n_jobs: int,
    progress: tqdm | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Sampling-mode values of every row of ``X``, in blocks of rows (each block's model
    rows of a game pooled for its surrogate, at most :data:`MAX_BLOCK_MODEL_ROWS` in all).

    :param games: From :func:`plan_games`.
    :returns: ``(values (n, P, K), base (K,), std_error (n, P, K), surrogate_share (K,)
        or None)``: ``surrogate_share`` is the share of blocks whose values come from the
        odd regression (``estimator="odd"``).
    """
    n_rows = len(X)
    odd = estimator == "odd"
    encoded = EncodedColumns(X, background) if odd else None
    rng = np.random.default_rng(None if random_state is None else random_state + 1)
    per_row = max((g.sample.n_coalitions + 2) * g.members.size for g in games)
    step = max(1, MAX_BLOCK_MODEL_ROWS // per_row)  # one game's model rows held at a time
    width = None
    columns = [game_columns(hybrids, game) for game in games]
    values, se, used = [], [], []
    base = 0.0
    for r0 in range(0, n_rows, step):
        rows = np.arange(r0, min(n_rows, r0 + step))
        agree = np.stack([hybrids.agreement(r) for r in rows])  # (r, b, P)
        plain = odd_est = plain_var = odd_var = 0.0
        units = []  # the odd regressions' residual sums per (row, game)
        for game, cols in zip(games, columns, strict=True):
            kept = game_model_rows(
                f,
                hybrids,
                rows,
                game,
                cols,
                batch_rows=batch_rows,
                n_jobs=n_jobs,
                progress=progress,
            )
            width = kept.shape[3] if width is None else width
            check_width(kept.shape[3], width)
            v = np.einsum("rsbk,b->rsk", kept, game.weights)
            null = agree[:, game.members].all(axis=1)  # (r, P): the game's dummies
            if r0 == 0:  # v(empty): the background mean when every column is a player
                base = base + game.weight * v[0, 0]
            vals, s_e = plain_values(game.sample, v, null)
            plain, plain_var = plain + game.weight * vals, plain_var + (game.weight * s_e) ** 2
            if odd:
                if not game.sample.enumerated.all():  # else the plain regression is exact
                    vals, s_e, sums = _odd_game(
                        encoded, hybrids, rows, game, cols, kept, v, null, rng, n_jobs
                    )
                    units.append(game.weight**2 * sums)
                odd_est, odd_var = odd_est + game.weight * vals, odd_var + (game.weight * s_e) ** 2
        if units:  # none when every coalition was enumerated: nothing chosen on noise
            odd_var = odd_var * selection_inflation(np.concatenate(units))
        pick = odd and np.sum(odd_var) <= np.sum(plain_var)  # the smaller estimated variance
        values.append(odd_est if pick else plain)
        se.append(np.sqrt(odd_var if pick else plain_var))
        used.append(pick)
    share = np.full(values[0].shape[2], float(np.mean(used))) if odd else None
    return np.concatenate(values), base, np.concatenate(se), share


def _odd_game(
    encoded: EncodedColumns,
    hybrids: Hybrids,
    rows: np.ndarray,
    game: Game,
    cols: np.ndarray,
    kept: np.ndarray,
    v: np.ndarray,
    null: np.ndarray,
    rng: np.random.Generator,
    n_jobs: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The odd regression of one game for a block of rows, one surrogate per output fitted
    on the game's model rows ``kept (r, S, members, K)`` of the block (coalitions ``cols``,
    :func:`game_columns`) but those of its held-out pairs
    (:func:`shapgov.explainers.held_out.held_out_pairs`). A surrogate of one game's
    neighbourhood (one background row, or a few) ranks that game's interactions best.

    :returns: ``(values (r, P, K), std_error (r, P, K), residual_sums (r, 4, K))``, the
        last per row for :func:`shapgov.explainers.held_out.selection_inflation`.
    """
    n_players = game.sample.masks.shape[1]
    held_out = held_out_pairs(game.sample, rng)
    fit_on = np.ones(cols.shape[0], dtype=bool)
    fit_on[2:] = ~np.repeat(held_out, 2)  # after the empty and full coalitions
    surrogates = [
        fit_surrogate(
            encoded,
            rows,
            game.members,
            cols[fit_on],
            kept[..., k][:, fit_on].transpose(0, 2, 1),
            rng,
            n_jobs,
        )
        for k in range(kept.shape[3])
    ]
    sums = np.zeros((rows.size, 4, kept.shape[3]))
    n_terms = n_support_terms(game.sample)
    B = encoded.B[game.members]
    est = np.zeros((rows.size, n_players, kept.shape[3]))
    se = np.zeros_like(est)
    for i, row in enumerate(rows):
        x_row = encoded.X[row]
        per_output = [
            support(ens, x_row, B, game.weights, hybrids.player, n_terms) for ens in surrogates
        ]
        terms = interleaved(per_output, n_terms)
        est[i], se[i], scaled = odd_regression(
            game.sample, v[i, 2:], v[i, 0], v[i, 1], terms, null[i]
        )
        sums[i] = residual_sums(scaled, held_out, game.sample)
    return est, se, sums
