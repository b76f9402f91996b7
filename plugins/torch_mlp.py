"""Built-in plugin: PyTorch ``nn.Sequential`` multilayer perceptrons, for the Deep explainer.

Active only when torch is importable (it is not a dependency). A ``Sequential`` of
``Linear`` layers with one elementwise activation kind between them (``ReLU``, ``Tanh``,
``Sigmoid`` or ``Identity``), optionally ending in ``Sigmoid`` (binary: logit link) or
``Softmax`` (multiclass), is read into the same layer arrays as a scikit-learn MLP. The
module itself stays the model of record: predictions come from its forward pass.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Node
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.links import IDENTITY, LOGIT, SOFTMAX
from shapgov.errors import UnsupportedModelError
from shapgov.planning.compatibility import class_path_set

AVAILABLE = importlib.util.find_spec("torch") is not None

_ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "logistic", "Identity": "identity"}


class TorchMLP:
    """A ``torch.nn.Sequential`` MLP with scikit-learn-like attributes: ``coefs_``,
    ``intercepts_``, ``activation``, ``out_activation_`` and ``predict``/``predict_proba``."""

    def __init__(self, module: Any) -> None:
        layers = list(module)
        out = "identity"
        if layers and type(layers[-1]).__name__ in ("Sigmoid", "Softmax"):
            out = "logistic" if type(layers[-1]).__name__ == "Sigmoid" else "softmax"
            layers = layers[:-1]
        coefs, intercepts, kinds = [], [], set()
        for layer in layers:
            name = type(layer).__name__
            if name == "Linear":
                coefs.append(layer.weight.detach().cpu().double().numpy().T.copy())
                bias = layer.bias
                width = layer.weight.shape[0]
                intercepts.append(
                    np.zeros(width) if bias is None else bias.detach().cpu().double().numpy()
                )
            elif name in _ACTIVATIONS:
                kinds.add(_ACTIVATIONS[name])
            else:
                raise UnsupportedModelError(
                    f"the Deep explainer reads Sequential stacks of Linear layers and "
                    f"elementwise activations ({sorted(_ACTIVATIONS)}); found {name}"
                )
        if not coefs or type(layers[-1]).__name__ != "Linear" or len(kinds) > 1:
            raise UnsupportedModelError(
                "the Sequential must end in a Linear layer (optionally followed by Sigmoid or "
                "Softmax) and use one activation kind between its Linear layers"
            )
        self.module = module
        self.coefs_ = coefs
        self.intercepts_ = intercepts
        self.activation = kinds.pop() if kinds else "identity"
        self.out_activation_ = out
        k = coefs[-1].shape[1]
        self.n_features_in_ = coefs[0].shape[0]
        if out == "logistic" and k == 1:
            self.classes_ = np.array([0, 1])
        elif out == "softmax":
            self.classes_ = np.arange(k)

    def _forward(self, X: Any) -> np.ndarray:
        import torch

        param = next(self.module.parameters())
        with torch.no_grad():
            t = torch.as_tensor(np.asarray(X, dtype=float), dtype=param.dtype)
            return self.module(t).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        out = self._forward(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def predict_proba(self, X: Any) -> np.ndarray:
        out = self._forward(X)
        return np.column_stack([1 - out[:, 0], out[:, 0]]) if out.shape[1] == 1 else out


def _is_sequential(model: Any) -> bool:
    paths = class_path_set(model)
    return "torch.nn.Sequential" in paths or "torch.nn.modules.container.Sequential" in paths


@hookimpl(trylast=True)
def shapgov_prepare_model(model: Any) -> Any | None:
    if AVAILABLE and _is_sequential(model):
        return TorchMLP(model)
    return None


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    if not isinstance(model, TorchMLP):
        return None
    k = model.coefs_[-1].shape[1]
    if model.out_activation_ == "identity":
        return context.leaf(
            model, n_margins=k, link=IDENTITY, prediction="predict", margin_method=None
        )
    link = LOGIT if model.out_activation_ == "logistic" else SOFTMAX
    if link is LOGIT and k != 1:
        raise UnsupportedModelError("a Sigmoid output with several units (multilabel) is refused")
    return context.leaf(
        model, n_margins=k, link=link, prediction="predict_proba", margin_method=None
    )
