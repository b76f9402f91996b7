"""Elementwise activations of neural networks, defined once for every deep kernel.

Each activation is a code plus two float parameters, evaluated in float64 by the same
formulas PyTorch and Keras use (``expm1``/``log1p`` where they do), so exact Shapley
values and DeepLIFT reproduce the networks' own outputs to float64 rounding.

========== ===================================================== ==================
name       formula                                               parameters
========== ===================================================== ==================
identity   z
logistic   1 / (1 + exp(-z))                       (sigmoid)
tanh       tanh z
relu       max(z, 0)
leaky_relu z if z > 0 else slope z                               slope
elu        z if z > 0 else alpha expm1(z)                        alpha
selu       scale (z if z > 0 else alpha expm1(z))                (fixed constants)
celu       max(z, 0) + min(0, alpha expm1(z / alpha))            alpha
silu       z / (1 + exp(-z))                       (swish)
gelu       z Phi(z) = z (1 + erf(z / sqrt 2)) / 2
gelu_tanh  z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z^3))) / 2
mish       z tanh(log1p(exp z))
softplus   z if beta z > threshold else log1p(exp(beta z)) / beta beta, threshold
hardswish  z min(max(z + 3, 0), 6) / 6                          (hard_silu)
========== ===================================================== ==================
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from shapgov.errors import UnsupportedModelError

#: name -> code, the one routing table of the deep kernels.
ACTIVATIONS = {
    "identity": 0,
    "logistic": 1,
    "tanh": 2,
    "relu": 3,
    "leaky_relu": 4,
    "elu": 5,
    "selu": 6,
    "celu": 7,
    "silu": 8,
    "gelu": 9,
    "gelu_tanh": 10,
    "mish": 11,
    "softplus": 12,
    "hardswish": 13,
}
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@njit(cache=True, inline="always")
def _sigmoid(z):
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@njit(cache=True)
def activate_scalar(z, code, p0, p1):
    """One activation value (see the module table for codes and parameters)."""
    if code == 0:
        return z
    if code == 1:
        return _sigmoid(z)
    if code == 2:
        return math.tanh(z)
    if code == 3:
        return z if z > 0.0 else 0.0
    if code == 4:
        return z if z > 0.0 else p0 * z
    if code == 5:
        return z if z > 0.0 else p0 * math.expm1(z)
    if code == 6:
        return _SELU_SCALE * (z if z > 0.0 else _SELU_ALPHA * math.expm1(z))
    if code == 7:
        return max(z, 0.0) + min(0.0, p0 * math.expm1(z / p0))
    if code == 8:
        return z * _sigmoid(z)
    if code == 9:
        return 0.5 * z * (1.0 + math.erf(z / math.sqrt(2.0)))
    if code == 10:
        return 0.5 * z * (1.0 + math.tanh(_SQRT_2_OVER_PI * (z + 0.044715 * z * z * z)))
    if code == 11:
        return z * math.tanh(math.log1p(math.exp(z)) if z < 20.0 else z)
    if code == 12:
        return z if p0 * z > p1 else math.log1p(math.exp(p0 * z)) / p0
    return z * min(max(z + 3.0, 0.0), 6.0) / 6.0


@njit(cache=True)
def activate_in_place(z, rows, code, p0, p1):
    """Apply an activation in place over the first ``rows`` rows of a C-ordered block."""
    flat = z.reshape(-1)[: rows * z.shape[1]]
    if code == 0:
        return
    for i in range(flat.shape[0]):
        flat[i] = activate_scalar(flat[i], code, p0, p1)


@njit(cache=True)
def _activate_array(z, code, p0, p1):
    out = np.empty_like(z)
    src, dst = z.reshape(-1), out.reshape(-1)
    for i in range(src.shape[0]):
        dst[i] = activate_scalar(src[i], code, p0, p1)
    return out


@njit(cache=True)
def _slope_array(z, code, p0, p1):
    """Central-difference slope (used only where two pre-activations coincide)."""
    out = np.empty_like(z)
    src, dst = z.reshape(-1), out.reshape(-1)
    for i in range(src.shape[0]):
        h = 1e-6 * max(1.0, abs(src[i]))
        up = activate_scalar(src[i] + h, code, p0, p1)
        down = activate_scalar(src[i] - h, code, p0, p1)
        dst[i] = (up - down) / (2.0 * h)
    return out


def activate(z: np.ndarray, activation: Activation) -> np.ndarray:
    """``activation`` applied to every element of ``z`` (float64, any shape)."""
    code, p0, p1 = activation.triple
    if code == 0:
        return np.asarray(z, dtype=float)
    return _activate_array(np.ascontiguousarray(z, dtype=np.float64), code, p0, p1)


def slope(z: np.ndarray, activation: Activation) -> np.ndarray:
    """The activation's slope at ``z`` (central differences)."""
    code, p0, p1 = activation.triple
    if code == 0:
        return np.ones_like(z, dtype=float)
    return _slope_array(np.ascontiguousarray(z, dtype=np.float64), code, p0, p1)


class Activation:
    """An elementwise activation: a name from :data:`ACTIVATIONS` and its parameters.

    :param name: e.g. ``"selu"``, ``"leaky_relu"``.
    :param p0: First parameter (slope, alpha or beta), where the activation has one.
    :param p1: Second parameter (softplus threshold).
    :raises UnsupportedModelError: The name is not in the table.
    """

    __slots__ = ("name", "p0", "p1")

    def __init__(self, name: str, p0: float = 0.0, p1: float = 0.0) -> None:
        if name not in ACTIVATIONS:
            raise UnsupportedModelError(
                f"activation {name!r} is not one of {sorted(ACTIVATIONS)}; the model is "
                "explained through its outputs instead (Kernel)"
            )
        self.name, self.p0, self.p1 = name, float(p0), float(p1)

    @property
    def triple(self) -> tuple[int, float, float]:
        return ACTIVATIONS[self.name], self.p0, self.p1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and self.triple == other.triple

    def __hash__(self) -> int:
        return hash(self.triple)

    def __repr__(self) -> str:
        params = f", {self.p0:g}, {self.p1:g}" if self.p0 or self.p1 else ""
        return f"Activation({self.name!r}{params})"
