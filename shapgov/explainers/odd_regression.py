"""Odd-component Kernel SHAP regression on a surrogate-chosen support.

Paired sampling sees a game through its odd part: for a pair ``(S, S^c)``,
``y(S) = (v(S) - v(S^c)) / 2 = sum_{|T| odd} beta_T chi_T(S)`` with the Walsh functions
``chi_T(S) = prod_{j in T} (1 - 2 z_j(S))``, and Shapley values depend on the odd
coefficients alone: ``phi_i = -2 sum_{T odd, i in T} beta_T / |T|`` (Fumagalli, Butler,
Kang, Ramchandran and Witter, ICML 2026, "An odd estimator for Shapley values"). Kernel
SHAP regresses ``y`` on the singletons only; every odd interaction it leaves out is noise
in that regression. Here the regression also carries the strongest odd interactions of
orders three and five of a tree surrogate's game (:mod:`shapgov.explainers.surrogate`, its
exact spectrum from :mod:`shapgov.explainers.kernels.tree_fourier`), fitted on the model
rows the sample already evaluated. The Shapley kernel weights the pairs; the efficiency
constraint ``-2 sum beta = v(full) - v(∅)`` is held exactly (KKT). With any support that
holds the singletons, the population solution's values are the Shapley values (the
residual of a kernel-weighted projection onto a basis with the singletons has Shapley
value zero; Fumagalli, Witter and Musco, ICLR 2026, "PolySHAP"), so the support changes
the variance, never the target. The support is chosen from model rows of many explained
rows (the surrogate's), the row's own among them but for a held-out share of its pairs.

Standard errors: the estimator's linearisation over the sampled pairs (stratified,
without replacement, finite population correction, as in
:mod:`shapgov.explainers.coalition_sampling`), with each residual inflated by
``1 / sqrt(1 - h)`` for its leverage ``h`` in the fit (MacKinnon and White 1985, HC2).
A support chosen on the same pairs fits part of their noise, so the residuals understate
it; :mod:`shapgov.explainers.held_out` measures by how much on pairs kept from the
surrogate, and the sampling mode scales the variance to match.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.linalg.lapack import dpocon

from shapgov.explainers.coalition_sampling import CoalitionSample
from shapgov.explainers.kernels.background_treeshap import node_players
from shapgov.explainers.kernels.tree_fourier import decode, odd_spectrum
from shapgov.explainers.trees import TreeEnsemble

__all__ = [
    "interleaved",
    "n_support_terms",
    "odd_regression",
    "support",
]

#: Interaction terms in the regression per sampled pair (the rest of the pairs' degrees of
#: freedom stay for the fit).
TERMS_PER_PAIR = 0.25
#: Most interaction terms (the regression's cost grows with their cube; 600 is what 4,800
#: coalitions give).
MAX_TERMS = 600
#: Highest order of the support's interactions (orders 3 and 5 compete by ``|beta_T|``;
#: chosen on ``benchmarks/bench_estimation.py``).
SUPPORT_ORDER = 5
#: Background rows the surrogate's spectrum is ranked over, at most (an even subsample
#: beyond: the ranking needs the strong terms, not exact coefficients).
MAX_SPECTRUM_BACKGROUND = 20
#: Leverage above which a pair's residual inflation is capped.
MAX_LEVERAGE = 0.99
#: Normal matrices whose reciprocal condition number (LAPACK's ``dpocon`` estimate) is
#: below this take the pseudo-inverse (singular values cut off as ``numpy.linalg.pinv``
#: does) instead of the Cholesky inverse.
MIN_RCOND = 1e-10


def normal_inverse(A: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive semi-definite normal matrix ``(p, p)``: through
    its Cholesky factor where it is positive definite and well conditioned (an O(p**3 / 3)
    factorisation, about 7x faster than the SVD at p = 650), else ``numpy.linalg.pinv``
    (the minimum-norm solution where the design is rank deficient). On the first route
    the two agree to about 1e-14 relative."""
    if A.shape[0] == 0:  # every player null, no terms: nothing to regress
        return np.zeros((0, 0))
    try:
        factor, lower = cho_factor(A, lower=False, check_finite=False)
    except LinAlgError:
        return np.linalg.pinv(A)
    rcond, info = dpocon(factor, float(np.abs(A).sum(axis=0).max()), uplo="U")
    if info != 0 or not rcond >= MIN_RCOND:
        return np.linalg.pinv(A)
    return cho_solve((factor, lower), np.eye(A.shape[0]), check_finite=False)


def support(
    ens: TreeEnsemble,
    x: np.ndarray,
    background: np.ndarray,
    weights: np.ndarray,
    player: np.ndarray,
    n_terms: int,
) -> list[list[int]]:
    """The ``n_terms`` odd interactions (orders 3 to :data:`SUPPORT_ORDER`) of largest
    ``|beta_T|`` in the surrogate's interventional game at ``x`` (encoded row
    ``(columns,)``, background ``(b, columns)``), as lists of players. A column of player
    -1 takes the row's value in every hybrid."""
    if n_terms <= 0:
        return []
    n_players = int(player.max()) + 1
    B = np.array(background, dtype=float)
    fixed = player < 0
    B[:, fixed] = x[fixed]
    w = np.asarray(weights, dtype=float)
    if B.shape[0] > MAX_SPECTRUM_BACKGROUND:
        keep = np.linspace(0, B.shape[0] - 1, MAX_SPECTRUM_BACKGROUND).astype(int)
        B, w = B[keep], w[keep] / w[keep].sum()
    node_player, _ = node_players(ens, np.where(fixed, -1, player))
    keys, coef = odd_spectrum(ens, x, B, w, node_player, n_players, SUPPORT_ORDER)
    top = np.argsort(-np.abs(coef), kind="stable")[:n_terms]
    return [decode(k, n_players) for k, b in zip(keys[top], coef[top], strict=True) if b != 0.0]


def n_support_terms(sample: CoalitionSample) -> int:
    """Interaction terms the regression carries for this sample."""
    return min(MAX_TERMS, int(TERMS_PER_PAIR * sample.stratum.shape[0]))


def interleaved(lists: list[list[list[int]]], n_terms: int) -> list[list[int]]:
    """Round-robin over several outputs' supports, without repeats, up to ``n_terms``."""
    out: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for rank in range(max((len(x) for x in lists), default=0)):
        for terms in lists:
            if rank < len(terms) and tuple(terms[rank]) not in seen and len(out) < n_terms:
                seen.add(tuple(terms[rank]))
                out.append(terms[rank])
    return out


def odd_regression(
    sample: CoalitionSample,
    v: np.ndarray,
    v_empty: np.ndarray,
    v_full: np.ndarray,
    terms: list[list[int]],
    null: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shapley values of one row from the sampled pairs' odd parts, every output on the
    same design (so values that sum to a constant across outputs, like class
    probabilities, keep doing so).

    :param sample: The paired sample (pairs side by side in ``sample.masks``).
    :param v: ``(N, K)`` the sampled coalitions' values, in the sample's order.
    :param v_empty: ``(K,)``; ``v_full``: ``(K,)``.
    :param terms: Interactions (lists of players, odd sizes) beside the singletons.
    :param null: ``(P,)`` players that cannot change this row's hybrids (the row and every
        background row agree on them): value exactly 0, left out of the regression with
        every term that holds them.
    :returns: ``(values (P, K), std_error (P, K), scaled_residuals (pairs, K))``; the
        values sum to ``v_full - v_empty`` to rounding; the pairs' leverage-scaled
        weighted residuals are what the standard errors are made of.
    """
    Z = sample.masks[0::2]  # each pair's first coalition
    W = sample.weights[0::2] + sample.weights[1::2]
    y = (v[0::2] - v[1::2]) / 2.0  # (pairs, K)
    n_players = Z.shape[1]
    null = np.zeros(n_players, dtype=bool) if null is None else np.asarray(null, dtype=bool)
    active = np.flatnonzero(~null)
    terms = [t for t in terms if not null[t].any()]
    chi = 1.0 - 2.0 * Z
    D = np.empty((Z.shape[0], active.size + len(terms)))
    D[:, : active.size] = chi[:, active]
    share = np.zeros((n_players, D.shape[1]))  # values = share @ beta
    share[active, np.arange(active.size)] = -2.0
    for t, T in enumerate(terms):
        D[:, active.size + t] = np.prod(chi[:, T], axis=1)
        share[T, active.size + t] = -2.0 / len(T)
    c = share.sum(axis=0)  # sum of values = c @ beta
    A = D.T @ (W[:, None] * D)
    A_inv = normal_inverse(A)
    ac = A_inv @ c
    Q = A_inv - np.outer(ac, ac) / (c @ ac)
    beta = Q @ (D.T @ (W[:, None] * y)) + np.outer(ac, v_full - v_empty) / (c @ ac)
    resid = y - D @ beta  # (pairs, K)
    DQ = D @ Q  # Q is symmetric: shared by the leverages and the influences
    lever = np.clip(W * (DQ * D).sum(axis=1), 0.0, MAX_LEVERAGE)
    scaled = (W / np.sqrt(1.0 - lever))[:, None] * resid  # (pairs, K)
    influence = DQ @ share.T  # (pairs, P): a pair's pull on each value per unit
    var = np.zeros((n_players, y.shape[1]))
    for h in range(sample.drawn.shape[0]):
        kh, nh = int(sample.drawn[h]), float(sample.population[h])
        if kh >= nh or kh < 2:
            continue
        members = sample.stratum == h
        g = influence[members][:, :, None] * scaled[members][:, None, :]  # (k, P, K)
        var += (1 - kh / nh) * kh / (kh - 1) * ((g - g.mean(axis=0)) ** 2).sum(axis=0)
    return share @ beta, np.sqrt(var), scaled
