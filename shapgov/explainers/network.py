"""Feed-forward networks as the Deep explainer reads them: affine layers with an
elementwise activation between them, and a linear output layer (the margin).

Readers (scikit-learn MLPs, PyTorch, Keras) hand :meth:`Network.from_ops` a list of
operations; affine operations that follow each other (a BatchNorm in eval mode is one,
as is a Linear layer) are folded into one matrix, dropout and identities vanish, so
``Linear -> BatchNorm -> SELU -> Dropout -> Linear`` becomes two affine layers and one
activation. The first layer is then linear in the inputs: that is what makes the exact
method exact (per-column first-layer contributions), whatever follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shapgov.explainers.kernels.activations import Activation, activate


@dataclass(frozen=True)
class Affine:
    """``z = x @ W + b``, ``W`` ``(in, out)``."""

    W: np.ndarray
    b: np.ndarray


@dataclass(frozen=True, eq=False)
class Network:
    """Hidden affine layers, each followed by its activation, then a linear output layer.

    :param coefs: Weight matrices ``(in, out)``, one per layer (the last: output layer).
    :param intercepts: Biases ``(out,)``, one per layer.
    :param activations: One :class:`Activation` per hidden layer (``len(coefs) - 1``).
    """

    coefs: tuple[np.ndarray, ...]
    intercepts: tuple[np.ndarray, ...]
    activations: tuple[Activation, ...]

    @property
    def n_inputs(self) -> int:
        return int(self.coefs[0].shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.coefs[-1].shape[1])

    @classmethod
    def from_ops(cls, ops: list[Affine | Activation], n_inputs: int) -> Network:
        """Fold a list of affine maps and activations into layers (see the module doc)."""
        coefs: list[np.ndarray] = []
        intercepts: list[np.ndarray] = []
        activations: list[Activation] = []
        W, b = np.eye(n_inputs), np.zeros(n_inputs)  # the pending affine map
        for op in ops:
            if isinstance(op, Affine):
                Wo = np.asarray(op.W, dtype=float)
                W, b = W @ Wo, b @ Wo + np.asarray(op.b, dtype=float)
            elif op.name == "identity":
                continue
            else:
                coefs.append(W)
                intercepts.append(b)
                activations.append(op)
                W, b = np.eye(W.shape[1]), np.zeros(W.shape[1])
        coefs.append(W)
        intercepts.append(b)
        return cls(tuple(coefs), tuple(intercepts), tuple(activations))

    @classmethod
    def from_sklearn(cls, estimator: Any) -> Network:
        """A fitted scikit-learn MLP (``coefs_``, ``intercepts_``, ``activation``)."""
        act = Activation(estimator.activation)
        coefs = tuple(np.asarray(c, dtype=float) for c in estimator.coefs_)
        intercepts = tuple(np.asarray(c, dtype=float) for c in estimator.intercepts_)
        return cls(coefs, intercepts, (act,) * (len(coefs) - 1))

    def forward(self, X: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Hidden pre-activations per layer and the margin ``(n, K)``."""
        pre = []
        a = np.asarray(X, dtype=float)
        for W, c, act in zip(self.coefs[:-1], self.intercepts[:-1], self.activations, strict=True):
            z = a @ W + c
            pre.append(z)
            a = activate(z, act)
        return pre, a @ self.coefs[-1] + self.intercepts[-1]

    def margin(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X)[1]


def batch_norm(
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
) -> Affine:
    """A batch normalization in inference mode as the affine map it is:
    ``(x - mean) / sqrt(var + eps) * gamma + beta``."""
    scale = 1.0 / np.sqrt(np.asarray(var, dtype=float) + eps)
    shift = -np.asarray(mean, dtype=float) * scale
    if gamma is not None:
        scale, shift = scale * gamma, shift * gamma
    if beta is not None:
        shift = shift + beta
    return Affine(np.diag(scale), shift)


#: the head operation of a classifier network: a final softmax
SOFTMAX_HEAD = "softmax"


class NetworkModel:
    """Base of the framework adapters (PyTorch, Keras): a fitted network with
    scikit-learn-like attributes (``predict``, ``predict_proba``, ``classes_``,
    ``n_features_in_``) and, when its layers could be read, its ``network_``.

    Subclasses call :meth:`_read` with a function returning ``(ops, n_inputs)`` (affine
    maps, activations and possibly :data:`SOFTMAX_HEAD` last) and implement ``_forward``.
    A final logistic activation or softmax is the output head (logit link or per-class
    margins); what cannot be read leaves ``network_`` ``None`` and the reason in
    ``reason_``.
    """

    network_: Network | None = None
    reason_: str | None = None
    out_activation_: str = "identity"

    def _read(self, read: Any) -> None:
        from shapgov.errors import UndecomposableModelError

        try:
            ops, n_inputs = read()
            head = ops[-1] if ops else None
            if head == SOFTMAX_HEAD:
                self.out_activation_, ops = "softmax", ops[:-1]
            elif isinstance(head, Activation) and head.name == "logistic":
                self.out_activation_, ops = "logistic", ops[:-1]
            if SOFTMAX_HEAD in [op for op in ops if isinstance(op, str)]:
                raise UndecomposableModelError("a softmax is only read as the output head")
            self.network_ = Network.from_ops(ops, n_inputs)
            self.n_features_in_ = n_inputs
        except UndecomposableModelError as err:
            self.reason_ = str(err)
            return
        k = self.network_.n_outputs
        if self.out_activation_ == "logistic" and k == 1:
            self.classes_ = np.array([0, 1])
        elif self.out_activation_ == "softmax":
            self.classes_ = np.arange(k)

    def _forward(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X: Any) -> np.ndarray:
        out = self._forward(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def predict_proba(self, X: Any) -> np.ndarray:
        out = self._forward(X)
        return np.column_stack([1 - out[:, 0], out[:, 0]]) if out.shape[1] == 1 else out
