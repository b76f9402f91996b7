"""DeepLIFT with the rescale rule for feed-forward networks, vectorized over rows and
background rows (Shrikumar et al., 2017; per-reference averaging as in DeepSHAP,
Lundberg and Lee, 2017).

For a row x and a reference b every hidden unit gets the multiplier
``(a(x) - a(b)) / (z(x) - z(b))`` (its slope where the two pre-activations coincide);
the chain of multipliers from each input to the margin, times ``x_j - b_j``, sums exactly
to ``f(x) - f(b)`` for *any* elementwise activation, monotonic or not (SiLU, GELU, Mish),
because each multiplier reproduces its unit's difference exactly. Averaged over the
background, the values add up to ``f(x) - mean_b f(b)``. They approximate Shapley values
and equal them when the network is linear.
"""

from __future__ import annotations

import numpy as np

from shapgov.explainers.kernels.activations import activate, slope
from shapgov.explainers.network import Network

_EPS = 1e-12
_CHUNK_ELEMENTS = 1 << 22


def deeplift_values(
    network: Network,
    X: np.ndarray,
    background: np.ndarray,
    *,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-input DeepLIFT values of the margin, ``(n, m, K)``, and the base
    ``mean_b f(b)`` ``(K,)``; ``base + values.sum(1) == f(x)`` row by row to float64
    rounding. ``weights`` (summing to one) weight the background rows; default equal."""
    X = np.asarray(X, dtype=float)
    B = np.asarray(background, dtype=float)
    nb = B.shape[0]
    w = np.full(nb, 1.0 / nb) if weights is None else np.asarray(weights, dtype=float)
    pre_b, out_b = network.forward(B)
    act_b = [activate(z, a) for z, a in zip(pre_b, network.activations, strict=True)]
    k = network.n_outputs
    widest = max(W.shape[0] for W in network.coefs)
    if network.embeddings:  # the (row, reference, column, unit) differences
        first_b = network.first_contributions(B)
        widest = max(widest, X.shape[1] * network.coefs[0].shape[1])
    step = max(1, _CHUNK_ELEMENTS // (nb * widest * k))
    values = np.empty((X.shape[0], X.shape[1], k))
    for start in range(0, X.shape[0], step):
        rows = X[start : start + step]
        r = rows.shape[0]
        pre_x, _ = network.forward(rows)
        # G[r, b, k, h]: d(margin k)/d(unit h of the layer input) under the rescale rule
        G = np.broadcast_to(network.coefs[-1].T, (r, nb, k, network.coefs[-1].shape[0]))
        last = 0 if not network.embeddings else 1  # embeddings: stop at the first layer
        for layer in range(len(network.coefs) - 2, last - 1, -1):
            mult = _rescaled(network, layer, pre_x, pre_b, act_b)
            W = network.coefs[layer]
            scaled = (mult[:, :, None, :] * G).reshape(-1, W.shape[1])
            G = (scaled @ W.T).reshape(r, nb, k, W.shape[0])
        if network.embeddings:  # G at the first pre-activation; columns add c_j(x) - c_j(b)
            if len(network.coefs) > 1:
                G = _rescaled(network, 0, pre_x, pre_b, act_b)[:, :, None, :] * G
            else:  # no hidden layer: the first pre-activation is the margin
                G = np.broadcast_to(np.eye(k), (r, nb, k, k))
            delta = network.first_contributions(rows)[:, None] - first_b[None]
            values[start : start + r] = np.einsum("rbkh,rbjh,b->rjk", G, delta, w, optimize=True)
            continue
        diff = rows[:, None, :] - B[None, :, :]
        values[start : start + r] = np.einsum("rbi,rbki,b->rik", diff, G, w, optimize=True)
    return values, w @ out_b


def _rescaled(network: Network, layer: int, pre_x: list, pre_b: list, act_b: list) -> np.ndarray:
    """The rescale rule's multipliers of hidden layer ``layer``, ``(r, b, h)``:
    ``(a(z_x) - a(z_b)) / (z_x - z_b)``, the slope where the two coincide."""
    act = network.activations[layer]
    zx, zb = pre_x[layer][:, None, :], pre_b[layer][None, :, :]
    dz = zx - zb
    da = activate(pre_x[layer], act)[:, None, :] - act_b[layer][None, :, :]
    close = np.abs(dz) <= _EPS
    mult = da / np.where(close, 1.0, dz)
    if close.any():
        mult = np.where(close, slope(np.broadcast_to(zx, dz.shape), act), mult)
    return mult
