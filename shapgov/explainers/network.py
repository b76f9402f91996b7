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
    #: Entity embeddings: ``(column, table)`` pairs; the column holds integer codes and
    #: adds ``table[code]`` ``(h1,)`` (its embedding times its block of the first layer)
    #: to the first pre-activation; its row of ``coefs[0]`` is zero.
    embeddings: tuple[tuple[int, np.ndarray], ...] = ()

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

    def with_embeddings(self, layout: list[tuple[str, Any, Any]]) -> Network:
        """This network (whose input is the concatenation of numeric columns and
        embedding vectors) as a network of the original columns. ``layout`` has one entry
        per original column: ``("number", position, None)`` or ``("embedding", table,
        positions)`` with the embedding table ``(cardinality, d)`` and its ``d`` positions
        in the concatenated input."""
        W = self.coefs[0]
        first = np.zeros((len(layout), W.shape[1]))
        embeddings = []
        for j, (kind, what, where) in enumerate(layout):
            if kind == "number":
                first[j] = W[what]
            else:
                embeddings.append((j, np.asarray(what, dtype=float) @ W[list(where)]))
        return Network(
            (first, *self.coefs[1:]), self.intercepts, self.activations, tuple(embeddings)
        )

    def first_contributions(self, X: np.ndarray) -> np.ndarray:
        """Every column's contribution to the first pre-activation, ``(n, m, h1)``.

        :raises InputError: An embedding column holds a value that is not one of its codes.
        """
        X = np.asarray(X, dtype=float)
        out = X[:, :, None] * self.coefs[0][None, :, :]
        for j, table in self.embeddings:
            out[:, j, :] = table[_codes(X[:, j], len(table), j)]
        return out

    def forward(self, X: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Hidden pre-activations per layer and the margin ``(n, K)``."""
        pre = []
        a = np.asarray(X, dtype=float)
        for layer, act in enumerate(self.activations):
            z = self._affine(layer, a)
            pre.append(z)
            a = activate(z, act)
        return pre, self._affine(len(self.coefs) - 1, a)

    def _affine(self, layer: int, a: np.ndarray) -> np.ndarray:
        if layer == 0 and self.embeddings:
            return self.first_contributions(a).sum(axis=1) + self.intercepts[0]
        return a @ self.coefs[layer] + self.intercepts[layer]

    def margin(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X)[1]


def _codes(column: np.ndarray, cardinality: int, j: int) -> np.ndarray:
    from shapgov.errors import InputError

    codes = np.asarray(column)
    ok = np.isfinite(codes) & (codes == np.round(codes)) & (codes >= 0) & (codes < cardinality)
    if not ok.all():
        bad = codes[~ok][0]
        raise InputError(
            f"column {j} feeds an embedding of {cardinality} codes but holds {bad!r}; pass "
            "the integer codes the network was trained on (0 .. cardinality - 1)"
        )
    return codes.astype(np.int64)


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
    maps, activations and possibly :data:`SOFTMAX_HEAD` last), or ``(ops, n_inputs,
    layout)`` when embeddings feed the first layer (see :meth:`Network.with_embeddings`),
    and implement ``_forward``.
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
            ops, n_inputs, *layout = read()
            head = ops[-1] if ops else None
            if head == SOFTMAX_HEAD:
                self.out_activation_, ops = "softmax", ops[:-1]
            elif isinstance(head, Activation) and head.name == "logistic":
                self.out_activation_, ops = "logistic", ops[:-1]
            if SOFTMAX_HEAD in [op for op in ops if isinstance(op, str)]:
                raise UndecomposableModelError("a softmax is only read as the output head")
            self.network_ = Network.from_ops(ops, n_inputs)
            if layout:  # entity embeddings in front of the first layer
                self.network_ = self.network_.with_embeddings(layout[0])
            self.n_features_in_ = self.network_.n_inputs
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
