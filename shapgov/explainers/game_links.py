"""Linked games: the link applied to the background average, ``v(S) = g(sum_b w_b f(x_S, b))``.

shapgov's interventional game averages the explained output over the background rows,
``v(S) = sum_b w_b f(x_S, b)``; a model explained in its margin (a logistic model's
log-odds) averages margins. shap's ``KernelExplainer(f, data, link="logit")`` plays
another game: the probabilities ``f`` are averaged first and the logit taken of the
average, ``v(S) = logit(sum_b w_b f(x_S, b))`` (Lundberg and Lee 2017, section 4.1, "the
model output ... mapped through a link"; shap 0.51, ``shap/explainers/_kernel.py``). Its
Shapley values add up to ``logit(f(x)) - logit(E_b f(b))``, so that
``sigmoid(base + sum phi) = f(x)``. Each output is linked on its own (shap's per-class
logit, not a softmax).

A probability of exactly 0 or 1 (a random forest's vote share, say) has infinite
log-odds, and Shapley values of a game with infinite values are infinite or undefined
or undefined). shapgov clips the averaged probability to ``[eps, 1 - eps]`` with
``eps = 1e-15`` before the logit, as shap does (``LogitLink.f``, ``shap/utils/_legacy.py``,
the fix of shap issue 3912), so the game is shap's to the last bit: every value is finite
(at most ``logit(1 - eps) = 34.54`` log-odds from the centre), and
``sigmoid(base + sum phi)`` equals the model's probability clipped the same way. The
additivity policy compares the rebuilt probability with the model's probability under
that clip, on both sides, as it does with capping, and records it
(``applied["probability_clip"]``; ``shapgov.combination.policy.check``).

The linked game is not an average of per-background-row games, so the sampling mode
cannot estimate one game per background row (``shapgov.explainers.sampled_kernel``):
:func:`linked_sampled_values` evaluates every sampled coalition against every background
row and regresses the linked values (the paired leverage-score regression,
``shapgov.explainers.coalition_sampling``): ``n_samples * n_background`` model rows
per explained row, as shap spends.
"""

from __future__ import annotations

__all__ = ["GAME_LINKS", "check_game_link", "link_game_values", "linked_sampled_values"]

from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from shapgov.errors import InputError, ModelOutputError
from shapgov.explainers.coalition_sampling import sample_coalitions
from shapgov.explainers.hybrids import Hybrids
from shapgov.explainers.sampled_kernel import (
    MAX_BLOCK_MODEL_ROWS,
    Game,
    game_columns,
    game_model_rows,
    plain_values,
)
from shapgov.planning.game import GAME_LINKS, check_game_link

#: The averaged probability is clipped to ``[PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]``
#: (shap's ``LogitLink`` clip).
PROBABILITY_FLOOR = 1e-15
#: How far outside ``[0, 1]`` an averaged output may lie (rounding) before it is refused.
PROBABILITY_SLACK = 1e-9


def link_game_values(link: str, v: np.ndarray) -> np.ndarray:
    """The linked game's values from the background averages ``v`` (any shape).

    :raises ModelOutputError: ``link="logit"`` on averages outside ``[0, 1]`` (the model's
        outputs are not probabilities).
    """
    if link == "identity":
        return v
    low, high = float(np.min(v)), float(np.max(v))
    if low < -PROBABILITY_SLACK or high > 1 + PROBABILITY_SLACK:
        raise ModelOutputError(
            f"game_link='logit' takes the log-odds of probabilities, but the model's "
            f"background-averaged outputs range over [{low:.6g}, {high:.6g}]; explain a "
            "function returning probabilities (predict_proba), or use game_link='identity'"
        )
    p = np.clip(v, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    return np.log(p) - np.log1p(-p)


def linked_sampled_values(
    f: Callable[[Any], np.ndarray],
    hybrids: Hybrids,
    n_rows: int,
    n_players: int,
    link: str,
    *,
    n_samples: int | None,
    random_state: int | None,
    batch_rows: int,
    n_jobs: int,
    progress: tqdm | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Sampled Shapley values of the linked game for every row.

    One paired sample of ``n_samples`` coalitions (empty and full included; seeded from
    ``random_state`` through ``numpy.random.SeedSequence``) is shared by the rows; every
    coalition is evaluated against every background row of positive weight.

    :returns: ``(values (n, P, K), base (K,), std_error (n, P, K), n_coalitions)``; the
        values of a row sum to its linked full-coalition value minus ``base``; a player
        on which the row agrees with every background row gets exactly 0.
    :raises InputError: Fewer than two players or a budget below two pairs per size.
    """
    w = np.asarray(hybrids.weights, dtype=float)
    live = np.flatnonzero(w > 0)
    (seed,) = np.random.SeedSequence(random_state).generate_state(1, dtype=np.uint32)
    sample = sample_coalitions(n_players, n_samples, int(seed))
    game = Game(live, w[live] / w[live].sum(), 1.0, sample)
    cols = game_columns(hybrids, game)
    step = max(1, MAX_BLOCK_MODEL_ROWS // ((sample.n_coalitions + 2) * live.size))
    values, errors = [], []
    base = None
    for r0 in range(0, n_rows, step):
        rows = np.arange(r0, min(n_rows, r0 + step))
        kept = game_model_rows(
            f, hybrids, rows, game, cols, batch_rows=batch_rows, n_jobs=n_jobs, progress=progress
        )
        v = link_game_values(link, np.einsum("rsbk,b->rsk", kept, game.weights))
        if base is None:
            base = v[0, 0]
        null = np.stack([hybrids.agreement(r)[live].all(axis=0) for r in rows])
        vals, se = plain_values(sample, v, null)
        values.append(vals)
        errors.append(se)
    if base is None:
        raise InputError("there are no rows to explain")
    return np.concatenate(values), base, np.concatenate(errors), sample.n_coalitions + 2
