"""How much choosing the odd regression's support on the data shrank its residuals.

The odd estimator's support (:mod:`shapgov.explainers.odd_regression`) is chosen by a
surrogate fitted on the row's own coalitions. Chosen that way, it fits part of their
noise (the odd interactions left out, aliased on the sample), and the residuals the
standard errors are made of come out too small where a game has many weak interactions
(a network's, unlike a tree ensemble's few strong ones). So each game's surrogate is
fitted without a random share :data:`HELD_OUT` of the pairs of every sampled size; the
regression still uses every pair. Over pairs the surrogate never saw, the residuals are
those of a support chosen elsewhere; the ratio ``R`` of their mean square to that of the
pairs it saw measures the shrinkage (the idea of refitted cross-validation: residuals on
data the selection never saw; Fan, Guo and Hao, JRSS-B 2012).

``R`` is pooled over a block's rows and games (each game by its squared weight, as it
enters the variance), shrunk towards 1 by the non-negative garrote with its jackknife
standard error over (row, game) units (Breiman, Technometrics 1995:
``1 + (R - 1) * max(0, 1 - se_R^2 / (R - 1)^2)``), so noise alone moves it little either
way; and since the held-out pairs are already at their own scale in the variance, the
variance is scaled by ``R / (1 - h + h R)``, ``h`` the held-out share.
"""

from __future__ import annotations

import numpy as np

from shapgov.explainers.coalition_sampling import CoalitionSample

__all__ = ["HELD_OUT", "held_out_pairs", "residual_sums", "selection_inflation"]

#: Share of each sampled size's pairs kept from the surrogate.
HELD_OUT = 0.2


def held_out_pairs(sample: CoalitionSample, rng: np.random.Generator) -> np.ndarray:
    """``(pairs,)`` bool: ``round(HELD_OUT * k)`` random pairs of each sampled (not
    enumerated) size stratum of ``k`` drawn pairs."""
    out = np.zeros(sample.stratum.shape[0], dtype=bool)
    for h in np.flatnonzero(~sample.enumerated):
        members = np.flatnonzero(sample.stratum == h)
        out[rng.choice(members, round(HELD_OUT * members.size), replace=False)] = True
    return out


def residual_sums(scaled: np.ndarray, held: np.ndarray, sample: CoalitionSample) -> np.ndarray:
    """``(4, K)`` of one (row, game): the squared scaled residuals ``scaled (pairs, K)``
    summed over the held-out pairs, their count, the same over the other pairs of sampled
    sizes (enumerated sizes have no sampling error and count in neither)."""
    sampled = ~sample.enumerated[sample.stratum]
    k = scaled.shape[1]
    fit = sampled & ~held
    return np.stack(
        [
            (scaled[held] ** 2).sum(axis=0),
            np.full(k, held.sum(), dtype=float),
            (scaled[fit] ** 2).sum(axis=0),
            np.full(k, fit.sum(), dtype=float),
        ]
    )


def _ratio(total: np.ndarray) -> np.ndarray:
    """Held-out over fitted mean square of ``(..., 4, K)`` sums: ``(..., K)``."""
    tiny = np.finfo(float).tiny
    held = total[..., 0, :] / np.maximum(total[..., 1, :], tiny)
    return held / np.maximum(total[..., 2, :] / total[..., 3, :], tiny)


def selection_inflation(units: np.ndarray) -> np.ndarray:
    """Variance inflation ``(K,)`` of the odd estimator from ``units (U, 4, K)``, one
    :func:`residual_sums` per (row, game), each weighted by its game's squared weight.
    1 where no pair was held out or fewer than two units carry any."""
    units = np.asarray(units, dtype=float)
    n_outputs = units.shape[2]
    live = units[:, 1, 0] > 0
    if live.sum() < 2 or not np.all(units[:, 3].sum(axis=0) > 0):
        return np.ones(n_outputs)
    units = units[live]
    total = units.sum(axis=0)
    ratio = _ratio(total)
    n = units.shape[0]
    leave_one_out = _ratio(total - units)  # (U, K)
    se2 = (n - 1) / n * ((leave_one_out - leave_one_out.mean(axis=0)) ** 2).sum(axis=0)
    excess = ratio - 1.0
    keep = np.where(excess != 0, np.maximum(0.0, 1.0 - se2 / np.maximum(excess**2, 1e-300)), 0.0)
    shrunk = 1.0 + excess * keep
    h = total[1] / (total[1] + total[3])
    return shrunk / (1.0 - h + h * shrunk)
