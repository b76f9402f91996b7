"""Exact interventional Shapley values of multilayer perceptrons (numba).

The first layer is linear, so for a row x, a background row b and a coalition S the
first pre-activation of the hybrid (x_S, b_rest) is ``h(b) + sum_{p in S} D_p`` with
``D_p = sum_{j in p} W1[j] (x_j - b_j)``. All ``2**P`` of them follow from one addition
each (S from S minus its lowest player), then the rest of the network runs on them: no
hybrid rows are built and the first layer is never recomputed.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from shapgov.errors import InputError

#: Activation codes shared with the wrappers.
ACTIVATIONS = {"identity": 0, "logistic": 1, "tanh": 2, "relu": 3}


@njit(cache=True, inline="always")
def _act(z, code):
    if code == 1:
        return 1.0 / (1.0 + np.exp(-z))
    if code == 2:
        return np.tanh(z)
    if code == 3:
        return z if z > 0.0 else 0.0
    return z


@njit(cache=True, parallel=True)
def _mlp_coalition_margins(X, B, player, n_players, W1, b1, Ws, bs, sizes, code):
    """Margins ``(n, nb, 2**P, K)`` of every hybrid; ``Ws``/``bs`` hold layers 2.. packed
    (flattened weights, and ``sizes`` = widths of every layer incl. input and output)."""
    n, m = X.shape
    nb = B.shape[0]
    n_coal = 1 << n_players
    h1 = W1.shape[1]
    n_layers = sizes.shape[0] - 1  # weight matrices
    k = sizes[n_layers]
    widest = 0
    for i in range(sizes.shape[0]):
        widest = max(widest, sizes[i])
    out = np.empty((n, nb, n_coal, k))
    for r in prange(n):
        delta = np.zeros((n_players, h1))
        pre = np.empty((n_coal, h1))
        a = np.empty(widest)
        z = np.empty(widest)
        for bi in range(nb):
            delta[:, :] = 0.0
            for j in range(m):
                p = player[j]
                if p < 0:
                    continue
                d = X[r, j] - B[bi, j]
                if d != 0.0:
                    for u in range(h1):
                        delta[p, u] += W1[j, u] * d
            for u in range(h1):
                s = b1[u]
                for j in range(m):
                    s += B[bi, j] * W1[j, u] if player[j] >= 0 else X[r, j] * W1[j, u]
                pre[0, u] = s
            for c in range(1, n_coal):
                low = c & -c
                p = 0
                while (1 << p) != low:
                    p += 1
                prev = c ^ low
                for u in range(h1):
                    pre[c, u] = pre[prev, u] + delta[p, u]
            for c in range(n_coal):
                width = h1
                for u in range(h1):
                    a[u] = _act(pre[c, u], code) if n_layers > 1 else pre[c, u]
                w_off = 0
                b_off = 0
                for layer in range(1, n_layers):
                    fan_in, fan_out = sizes[layer], sizes[layer + 1]
                    for v in range(fan_out):
                        s = bs[b_off + v]
                        for u in range(fan_in):
                            s += a[u] * Ws[w_off + u * fan_out + v]
                        z[v] = s
                    w_off += fan_in * fan_out
                    b_off += fan_out
                    last = layer == n_layers - 1
                    for v in range(fan_out):
                        a[v] = z[v] if last else _act(z[v], code)
                    width = fan_out
                for v in range(width):
                    out[r, bi, c, v] = a[v]
    return out


def mlp_coalition_margins(
    coefs: list[np.ndarray],
    intercepts: list[np.ndarray],
    activation: str,
    X: np.ndarray,
    background: np.ndarray,
    player: np.ndarray,
    n_players: int,
) -> np.ndarray:
    """Output-layer pre-activations (the margin) of every hybrid row, ``(n, b, 2**P, K)``.

    ``coefs``/``intercepts`` are the layers as scikit-learn stores them; hidden layers
    use ``activation``, the last layer is linear. ``player[j]`` is input j's player
    (-1: taken from the row in every coalition).
    """
    if activation not in ACTIVATIONS:
        raise InputError(f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}")
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
    W1 = np.ascontiguousarray(coefs[0], dtype=np.float64)
    b1 = np.ascontiguousarray(intercepts[0], dtype=np.float64)
    return _mlp_coalition_margins(
        X, B, player, n_players, W1, b1, Ws, bs, sizes, ACTIVATIONS[activation]
    )
