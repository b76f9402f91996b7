"""Links: maps from the explained (additive) space to the prediction space.

DataRobot's rule: SHAP values add up in the model's pre-link *margin* space;
``link.inverse`` turns a margin back into the prediction the model outputs.
Arrays are ``(n, K)`` with K outputs (K = 1 for regression and binary).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit, logit, ndtr, ndtri, softmax

from shapgov.errors import UnsupportedModelError


@dataclass(frozen=True)
class Link:
    """A named link ``g``: margin = g(prediction), prediction = g^-1(margin)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def inverse(self, margin: np.ndarray) -> np.ndarray:
        """Map margins ``(n, K)`` to predictions."""
        return _INVERSE[self.name](np.asarray(margin, dtype=float), self.params)

    def forward(self, prediction: np.ndarray) -> np.ndarray:
        """Map predictions back to margins (every link but ``ovr`` and ``isotonic``)."""
        if self.name not in _FORWARD and self.name != "power":
            raise UnsupportedModelError(
                f"link {self.name!r} is not invertible, so an offset or exposure cannot be "
                "applied to it; explain without offset/exposure."
            )
        if self.name == "power":
            return _power_forward(np.asarray(prediction, dtype=float), self.params)
        return _FORWARD[self.name](np.asarray(prediction, dtype=float))

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., "params": {...}}``, as artifacts record the link."""
        return {"name": self.name, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Link:
        """The link :meth:`to_dict` recorded."""
        return cls(data["name"], dict(data.get("params", {})))


def _log_softmax(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p)


_INVERSE: dict[str, Callable[[np.ndarray, dict[str, Any]], np.ndarray]] = {
    "identity": lambda m, _: m,
    "logit": lambda m, _: expit(m),
    "log": lambda m, _: np.exp(m),
    "softmax": lambda m, _: softmax(m, axis=-1),
}

_FORWARD: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda p: p,
    "logit": logit,
    "log": np.log,
    "softmax": _log_softmax,
}

IDENTITY = Link("identity")
LOGIT = Link("logit")
LOG = Link("log")
SOFTMAX = Link("softmax")


def _ovr(m: np.ndarray, _: dict[str, Any]) -> np.ndarray:
    """One-vs-rest probabilities: sigmoid per class, normalized to sum to one."""
    p = expit(m)
    return p / p.sum(axis=-1, keepdims=True)


def _mean_of_piecewise(m: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Mean over calibration folds of monotone piecewise-linear maps (isotonic calibrators)."""
    return np.mean([np.interp(m, xs, ys) for xs, ys in params["folds"]], axis=0)


_INVERSE["ovr"] = _ovr
_INVERSE["isotonic"] = _mean_of_piecewise
OVR = Link("ovr")


# GLM links as statsmodels (``statsmodels.genmod.families.links``) and glum name them; the
# inverse is the mean function ``mu = g^-1(eta)`` computed as those libraries compute it,
# so a rebuilt prediction agrees with the model's own to rounding (McCullagh and Nelder,
# *Generalized Linear Models*, 2nd ed., 1989, table 2.1).
def _power(m: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """``mu = eta ** (1 / p)`` (statsmodels ``Power(p)``; glum's Tweedie link ``p != 0``)."""
    return np.power(m, 1.0 / float(params["power"]))


def _power_forward(p: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    return np.power(p, float(params["power"]))


_INVERSE.update(
    {
        "probit": lambda m, _: ndtr(m),
        "cloglog": lambda m, _: 1.0 - np.exp(-np.exp(m)),
        "loglog": lambda m, _: np.exp(-np.exp(-m)),
        "cauchy": lambda m, _: 0.5 + np.arctan(m) / np.pi,
        "inverse_power": lambda m, _: 1.0 / m,
        "inverse_squared": lambda m, _: 1.0 / np.sqrt(m),
        "sqrt": lambda m, _: m**2,
        "power": _power,
    }
)
_FORWARD.update(
    {
        "probit": ndtri,
        "cloglog": lambda p: np.log(-np.log1p(-p)),
        "loglog": lambda p: -np.log(-np.log(p)),
        "cauchy": lambda p: np.tan(np.pi * (p - 0.5)),
        "inverse_power": lambda p: 1.0 / p,
        "inverse_squared": lambda p: 1.0 / p**2,
        "sqrt": np.sqrt,
    }
)
PROBIT = Link("probit")
CLOGLOG = Link("cloglog")
