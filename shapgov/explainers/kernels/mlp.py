"""Exact interventional Shapley values of multilayer perceptrons (numba).

The first layer adds one contribution per column (``x_j W1[j]`` for a number, the
embedding row times its block of W1 for a category), so for a row x, a background row b
and a coalition S the first pre-activation of the hybrid (x_S, b_rest) is
``h(b) + sum_{p in S} D_p`` with ``D_p = sum_{j in p} c_j(x_j) - c_j(b_j)``. All ``2**P``
of them follow from one addition each (S from S minus its lowest player), then the rest
of the network runs on them: no hybrid rows are built and the first layer is never
recomputed.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from shapgov.errors import InputError
from shapgov.explainers.kernels.activations import activate_in_place
from shapgov.explainers.network import Network


@njit(cache=True, parallel=True)
def _mlp_coalition_margins(
    X, B, Cx, Cb, player, n_players, b1, Ws, bs, sizes, codes, p0s, p1s, mean
):
    """Margins ``(n, nb, 2**P, K)`` of every hybrid, or with ``mean`` their background
    mean ``(n, 1, 2**P, K)``; ``Ws``/``bs`` hold layers 2.. packed (flattened weights, and
    ``sizes`` = widths of every layer incl. input and output; ``codes``/``p0s``/``p1s``
    the hidden activations, one per hidden layer; ``Cx``/``Cb`` every column's
    first-layer contribution for the rows and the background rows). Each (row, background row)
    runs the network on the coalitions of the players it differs on, layer by layer, as
    dense blocks; the other coalitions share those values."""
    n, m = X.shape
    nb = B.shape[0]
    n_coal = 1 << n_players
    h1 = Cx.shape[2]
    n_layers = sizes.shape[0] - 1  # weight matrices
    k = sizes[n_layers]
    out = np.zeros((n, 1 if mean else nb, n_coal, k))
    share = 1.0 / nb
    lowest = np.zeros(n_coal, dtype=np.int64)  # the lowest player of every coalition
    for c in range(1, n_coal):
        p = 0
        while (c >> p) & 1 == 0:
            p += 1
        lowest[c] = p
    full = n_coal - 1
    for r in prange(n):
        delta = np.zeros((n_players, h1))
        free = np.empty(n_players, dtype=np.int64)
        spread = np.empty(n_coal, dtype=np.int64)  # compressed coalition -> coalition
        pre = np.empty((n_coal, h1))
        blocks = [pre]
        for layer in range(1, n_layers):
            blocks.append(np.empty((n_coal, sizes[layer + 1])))
        for bi in range(nb):
            delta[:, :] = 0.0
            for u in range(h1):
                pre[0, u] = b1[u]
            moved = 0  # players whose columns differ between the row and this reference
            for j in range(m):
                p = player[j]
                if p >= 0:
                    for u in range(h1):
                        pre[0, u] += Cb[bi, j, u]
                else:
                    for u in range(h1):
                        pre[0, u] += Cx[r, j, u]
                if p >= 0 and X[r, j] != B[bi, j]:
                    moved |= 1 << p
                    for u in range(h1):
                        delta[p, u] += Cx[r, j, u] - Cb[bi, j, u]
            # Only coalitions of the moved players give distinct hybrids: run those.
            q = 0
            for p in range(n_players):
                if (moved >> p) & 1:
                    free[q] = p
                    q += 1
            nq = 1 << q
            spread[0] = 0
            for c in range(1, nq):
                low = lowest[c]
                prev = c ^ (1 << low)
                p = free[low]
                spread[c] = spread[prev] | (1 << p)
                for u in range(h1):
                    pre[c, u] = pre[prev, u] + delta[p, u]
            a = pre
            w_off = 0
            b_off = 0
            for layer in range(1, n_layers):
                activate_in_place(a, nq, codes[layer - 1], p0s[layer - 1], p1s[layer - 1])
                fan_in, fan_out = sizes[layer], sizes[layer + 1]
                W = Ws[w_off : w_off + fan_in * fan_out].reshape((fan_in, fan_out))
                z = blocks[layer]
                z[:nq] = np.dot(np.ascontiguousarray(a[:nq]), W)  # BLAS on the block
                for c in range(nq):
                    for v in range(fan_out):
                        z[c, v] += bs[b_off + v]
                w_off += fan_in * fan_out
                b_off += fan_out
                a = z
            # every coalition takes the value of its moved part: add over the others
            rest = full & ~moved
            for c in range(nq):
                base = spread[c]
                t = rest
                while True:
                    dest = base | t
                    if mean:
                        for v in range(k):
                            out[r, 0, dest, v] += a[c, v] * share
                    else:
                        for v in range(k):
                            out[r, bi, dest, v] = a[c, v]
                    if t == 0:
                        break
                    t = (t - 1) & rest
    return out


def mlp_coalition_margins(
    network: Network,
    X: np.ndarray,
    background: np.ndarray,
    player: np.ndarray,
    n_players: int,
    *,
    mean: bool = False,
) -> np.ndarray:
    """Output-layer pre-activations (the margin) of every hybrid row, ``(n, b, 2**P, K)``;
    with ``mean=True`` averaged over the background in the kernel, ``(n, 1, 2**P, K)``.

    ``player[j]`` is input j's player (-1: taken from the row in every coalition).
    """
    coefs, intercepts = network.coefs, network.intercepts
    X = np.ascontiguousarray(X, dtype=np.float64)
    B = np.ascontiguousarray(background, dtype=np.float64)
    player = np.ascontiguousarray(player, dtype=np.int64)
    if X.shape[1] != coefs[0].shape[0] or B.shape[1] != X.shape[1]:
        raise InputError(
            f"the network takes {coefs[0].shape[0]} inputs, got {X.shape[1]} and "
            f"{B.shape[1]} columns"
        )
    if n_players > 30:
        raise InputError(f"{n_players} players are too many to enumerate coalitions")
    sizes = np.array([coefs[0].shape[0]] + [c.shape[1] for c in coefs], dtype=np.int64)
    Ws = np.concatenate([np.ravel(c) for c in coefs[1:]] or [np.zeros(0)]).astype(float)
    bs = np.concatenate([np.ravel(b) for b in intercepts[1:]] or [np.zeros(0)]).astype(float)
    Cx = np.ascontiguousarray(network.first_contributions(X))
    Cb = np.ascontiguousarray(network.first_contributions(B))
    b1 = np.ascontiguousarray(intercepts[0], dtype=np.float64)
    triples = [a.triple for a in network.activations] or [(0, 0.0, 0.0)]
    codes = np.array([t[0] for t in triples], dtype=np.int64)
    p0s = np.array([t[1] for t in triples], dtype=np.float64)
    p1s = np.array([t[2] for t in triples], dtype=np.float64)
    return _mlp_coalition_margins(
        X, B, Cx, Cb, player, n_players, b1, Ws, bs, sizes, codes, p0s, p1s, mean
    )
