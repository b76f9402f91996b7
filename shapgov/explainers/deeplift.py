"""DeepLIFT with the rescale rule for multilayer perceptrons, vectorized over rows and
background rows (Shrikumar et al., 2017; per-reference averaging as in shap's
DeepExplainer).

For a row x and a reference b every hidden unit gets the multiplier
``(a(x) - a(b)) / (z(x) - z(b))`` (its derivative where the two pre-activations
coincide); the chain of multipliers from each input to the margin, times ``x_j - b_j``,
sums exactly to ``f(x) - f(b)``. Averaged over the background, the values add up to
``f(x) - mean_b f(b)``. They approximate Shapley values; they equal them when the network
is linear (identity activations).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

_EPS = 1e-12
_CHUNK_ELEMENTS = 1 << 23


def _activate(z: np.ndarray, activation: str) -> np.ndarray:
    if activation == "logistic":
        return expit(z)
    if activation == "tanh":
        return np.tanh(z)
    if activation == "relu":
        return np.maximum(z, 0.0)
    return z


def _derivative(z: np.ndarray, activation: str) -> np.ndarray:
    if activation == "logistic":
        s = expit(z)
        return s * (1.0 - s)
    if activation == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if activation == "relu":
        return (z > 0).astype(float)
    return np.ones_like(z)


def forward(
    coefs: list[np.ndarray], intercepts: list[np.ndarray], activation: str, X: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """Hidden pre-activations per layer and the margin (last layer, linear)."""
    pre = []
    a = X
    for W, c in zip(coefs[:-1], intercepts[:-1], strict=True):
        z = a @ W + c
        pre.append(z)
        a = _activate(z, activation)
    return pre, a @ coefs[-1] + intercepts[-1]


def deeplift_values(
    coefs: list[np.ndarray],
    intercepts: list[np.ndarray],
    activation: str,
    X: np.ndarray,
    background: np.ndarray,
    *,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-input DeepLIFT values of the margin, ``(n, m, K)``, and the base
    ``mean_b f(b)`` ``(K,)``; ``base + values.sum(1) == f(x)`` row by row. ``weights``
    (summing to one) weight the background rows; default equal."""
    X = np.asarray(X, dtype=float)
    B = np.asarray(background, dtype=float)
    w = np.full(B.shape[0], 1.0 / B.shape[0]) if weights is None else np.asarray(weights)
    pre_b, out_b = forward(coefs, intercepts, activation, B)
    widest = max(W.shape[1] for W in coefs)
    step = max(1, _CHUNK_ELEMENTS // (B.shape[0] * widest * coefs[-1].shape[1]))
    values = np.empty((X.shape[0], X.shape[1], coefs[-1].shape[1]))
    for start in range(0, X.shape[0], step):
        rows = slice(start, start + step)
        pre_x, _ = forward(coefs, intercepts, activation, X[rows])
        # G: d(margin)/d(layer input) under the rescale rule, per (row, reference)
        G = np.broadcast_to(coefs[-1], (1, 1, *coefs[-1].shape))
        for layer in range(len(coefs) - 2, -1, -1):
            zx, zb = pre_x[layer][:, None, :], pre_b[layer][None, :, :]
            dz = zx - zb
            da = _activate(zx, activation) - _activate(zb, activation)
            close = np.abs(dz) <= _EPS
            mult = np.where(
                close, _derivative(zx + 0 * zb, activation), da / np.where(close, 1, dz)
            )
            G = np.einsum("ih,rbhk->rbik", coefs[layer], mult[..., None] * G, optimize=True)
        diff = X[rows][:, None, :] - B[None, :, :]
        values[rows] = np.einsum("rbi,rbik,b->rik", diff, G, w, optimize=True)
    return values, w @ out_b
