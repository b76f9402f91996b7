"""Paired leverage-score sampling of coalitions and the constrained Kernel SHAP regression.

The design follows Musco and Witter (ICLR 2025, "Provably accurate Shapley value
estimation via leverage score sampling"): a coalition's leverage score in the Shapley
kernel regression is ``1 / C(P, s)``, so every coalition size carries the same share of
the budget and, within a size, every coalition is equally likely. Here the sizes are
strata (stratified sampling with deterministic counts), each coalition comes with its
complement (one *pair* is the sampling unit), pairs are drawn without replacement, and a
size is enumerated only when all its pairs fit in the size's fair share of the budget
(water-filling), never because they fit in what is left.

The regression holds efficiency exactly (KKT; Lundberg and Lee 2017; Covert and Lee,
AISTATS 2021). Standard errors are the design-based linearisation ("sandwich") of the
estimator for stratified sampling without replacement, pairs as units, with the finite
population correction (Särndal, Swensson and Wretman 1992, ch. 5 and 6): enumerated
sizes contribute nothing, as they carry no sampling error.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np

from shapgov.errors import InputError

#: Fewest sampled pairs per coalition size: a size's variance needs two (the middle size
#: of an even player count, with half the share, then makes the others hold four).
MIN_PAIRS_PER_SIZE = 2
#: Most players sampled (coalition counts stay finite floats; beyond, group columns).
MAX_SAMPLED_PLAYERS = 1000


@dataclass(frozen=True)
class CoalitionSample:
    """Paired coalitions for the Kernel SHAP regression (the empty and full coalitions
    are not in it: they are the constraint).

    :ivar masks: ``(N, P)`` 0/1 coalitions, each pair's two coalitions side by side.
    :ivar weights: ``(N,)`` regression weights: Shapley kernel weight times
        ``pairs in the size / pairs drawn`` (Horvitz-Thompson; exact for enumerated sizes).
    :ivar unit: ``(N,)`` the pair each coalition belongs to, ``0..n_units-1``.
    :ivar stratum: ``(n_units,)`` each pair's size stratum (its smaller coalition size).
    :ivar drawn: ``(n_strata,)`` pairs drawn per stratum; ``population`` (floats: they
        exceed int64 beyond 66 players) pairs there.
    """

    masks: np.ndarray
    weights: np.ndarray
    unit: np.ndarray
    stratum: np.ndarray
    drawn: np.ndarray
    population: np.ndarray

    @property
    def n_coalitions(self) -> int:
        """Coalitions in the sample (empty and full not counted)."""
        return int(self.masks.shape[0])

    @property
    def enumerated(self) -> np.ndarray:
        """``(n_strata,)`` whether the stratum is complete (no sampling error)."""
        return self.drawn >= self.population


def minimum_samples(n_players: int) -> int:
    """Fewest coalitions per row (empty and full included) for which every size gets
    :data:`MIN_PAIRS_PER_SIZE` pairs (or all of its pairs, if fewer)."""
    population, share = _strata(n_players)
    need = np.minimum(population, MIN_PAIRS_PER_SIZE * share / share.min())
    return 2 + 2 * int(np.ceil(need.sum()))


def _strata(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs per size stratum ``s = 1..P//2`` and each stratum's leverage share (a stratum
    holds sizes s and P - s: share 2, the self-complementary middle size share 1)."""
    sizes = np.arange(1, p // 2 + 1)
    population = np.array(
        [comb(p, int(s)) // 2 if 2 * s == p else comb(p, int(s)) for s in sizes], dtype=float
    )
    share = np.where(2 * sizes == p, 1.0, 2.0)
    return population, share


def allocate_pairs(population: np.ndarray, share: np.ndarray, pairs: int) -> np.ndarray:
    """Pairs per stratum: ``min(population, c * share)`` with ``c`` set so they total
    ``pairs`` (water-filling: a stratum is enumerated only if it fits its fair share),
    rounded by largest remainder. ``pairs`` at least the total population enumerates all.
    """
    if pairs >= population.sum():
        return population.astype(np.int64)  # every size enumerated (small P)
    lo, hi = 0.0, float(population.max() / share.min())
    for _ in range(200):  # bisection on c; the total is monotone in c
        mid = (lo + hi) / 2
        if np.minimum(population, mid * share).sum() > pairs:
            hi = mid
        else:
            lo = mid
    want = np.minimum(population, lo * share)
    drawn = np.floor(want).astype(np.int64)
    rest = pairs - int(drawn.sum())
    room = drawn < population
    order = np.argsort(-(want - drawn) + np.where(room, 0.0, np.inf), kind="stable")
    drawn[order[:rest]] += 1
    return drawn


def sample_coalitions(
    n_players: int, n_samples: int | None, random_state: int | None
) -> CoalitionSample:
    """Paired coalitions within a budget of ``n_samples`` coalitions per row.

    :param n_players: Players P (at least 2).
    :param n_samples: Coalitions per row, the empty and full ones included (default
        ``2 * P + 2048``); the sample holds ``2 * ((n_samples - 2) // 2)`` coalitions, or
        all ``2**P - 2`` when the budget covers them.
    :param random_state: Seed.
    :raises InputError: Fewer than two players, or a budget below
        :func:`minimum_samples`.
    """
    p = int(n_players)
    if p < 2:
        raise InputError("sampling needs at least two players; use mode='exact'")
    if p > MAX_SAMPLED_PLAYERS:
        raise InputError(
            f"sampling handles at most {MAX_SAMPLED_PLAYERS} players, got {p}; group columns "
            "into players (player=..., or players= in shapgov.explain)"
        )
    budget = int(n_samples) if n_samples is not None else 2 * p + 2048
    if budget < minimum_samples(p):
        raise InputError(
            f"n_samples={n_samples} is too small for {p} players: sampling needs at least "
            f"{minimum_samples(p)} coalitions per row (two or more pairs of every coalition "
            "size); "
            "raise n_samples or group columns into fewer players"
        )
    rng = np.random.default_rng(random_state)
    population, share = _strata(p)
    drawn = allocate_pairs(population, share, (budget - 2) // 2)
    masks: list[np.ndarray] = []
    weights: list[float] = []
    stratum: list[int] = []
    for h, (s, k) in enumerate(zip(range(1, p // 2 + 1), drawn, strict=True)):
        kernel = (p - 1) / (comb(p, s) * s * (p - s))
        expansion = population[h] / k
        for small in _draw_pairs(p, s, int(k), int(population[h]), rng):
            masks.extend((small, ~small))
            weights.extend((kernel * expansion, kernel * expansion))
            stratum.append(h)
    n_units = len(stratum)
    return CoalitionSample(
        masks=np.asarray(masks, dtype=float).reshape(-1, p),
        weights=np.asarray(weights, dtype=float),
        unit=np.repeat(np.arange(n_units), 2),
        stratum=np.asarray(stratum, dtype=np.int64),
        drawn=drawn,
        population=population,
    )


def _draw_pairs(p: int, s: int, k: int, population: int, rng: np.random.Generator):
    """``k`` distinct pairs of stratum ``s``, each as its size-``s`` coalition (for the
    middle size of an even P: the one holding player 0), uniformly without replacement."""
    middle = 2 * s == p
    if 2 * k > population:  # dense: list the stratum and choose
        every = list(_coalitions(p, s, middle))
        for i in np.sort(rng.choice(len(every), size=k, replace=False)):
            yield every[i]
        return
    seen: set[bytes] = set()
    while len(seen) < k:  # sparse: rejection, expected < 2k draws
        m = np.zeros(p, dtype=bool)
        if middle:
            m[0] = True
            m[1 + rng.choice(p - 1, size=s - 1, replace=False)] = True
        else:
            m[rng.choice(p, size=s, replace=False)] = True
        key = m.tobytes()
        if key not in seen:
            seen.add(key)
            yield m


def _coalitions(p: int, s: int, middle: bool):
    for idx in combinations(range(p), s):
        if middle and idx[0] != 0:
            break
        m = np.zeros(p, dtype=bool)
        m[list(idx)] = True
        yield m


def constrained_regression(
    sample: CoalitionSample, v: np.ndarray, v_empty: np.ndarray, v_full: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares of ``v(S) - v(∅)`` on the coalitions with ``sum(phi)``
    held at ``v(full) - v(∅)``, for every row and output at once.

    :param v: ``(n, N, K)`` values of the sampled coalitions.
    :param v_empty: ``(n, K)``; ``v_full``: ``(n, K)``.
    :returns: ``(values (n, P, K), std_error (n, P, K))``; the values sum to
        ``v_full - v_empty`` to rounding. Standard errors are the linearised variance of
        the estimator under the stratified without-replacement design (zero for a sample
        that enumerates every size).
    """
    y = v - v_empty[:, None, :]
    delta = v_full - v_empty
    Z, w = sample.masks, sample.weights
    A = Z.T @ (w[:, None] * Z)
    A_inv = np.linalg.pinv(A)
    a1 = A_inv.sum(axis=1)
    Q = A_inv - np.outer(a1, a1) / a1.sum()  # the constrained solution's sensitivity
    b = np.einsum("sp,s,nsk->npk", Z, w, y)
    phi = np.einsum("pq,nqk->npk", Q, b) + (a1 / a1.sum())[None, :, None] * delta[:, None, :]
    resid = y - np.einsum("sp,npk->nsk", Z, phi)
    return phi, _linearised_se(sample, Q, resid)


def _linearised_se(sample: CoalitionSample, Q: np.ndarray, resid: np.ndarray) -> np.ndarray:
    """Standard errors of ``phi = Q b`` from the residuals: each pair's influence
    ``g_u = Q sum_{S in u} w_S z_S e_S``, a stratified variance with the finite population
    correction, strata as drawn (Särndal et al. 1992, eq. 5.7.6 applied to ``g``)."""
    Z, w = sample.masks, sample.weights
    n, n_coal, k = resid.shape
    p = Z.shape[1]
    wz = (w[:, None] * Z).reshape(-1, 2, p)  # a pair's two coalitions side by side
    live = [
        (sample.stratum == h, int(sample.drawn[h]), int(sample.population[h]))
        for h in range(sample.drawn.shape[0])
        if 2 <= sample.drawn[h] < sample.population[h]
    ]
    var = np.zeros((n, p, k))
    step = max(1, (1 << 22) // max(1, n_coal * p * k))  # bounds the scratch to ~32 MiB
    for r0 in range(0, n, step):
        e = resid[r0 : r0 + step].reshape(-1, n_coal // 2, 2, k)
        t = np.einsum("ucp,nuck->nupk", wz, e)
        g = np.einsum("qp,nupk->nuqk", Q, t)
        for members, kh, nh in live:
            gh = g[:, members]
            dev = gh - gh.mean(axis=1, keepdims=True)
            var[r0 : r0 + step] += (1 - kh / nh) * kh / (kh - 1) * (dev**2).sum(axis=1)
    return np.sqrt(var)
