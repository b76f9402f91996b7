"""Built-in plugin: Keras 3 networks (any backend; PyTorch's needs no TensorFlow), read into
:class:`~shapgov.explainers.network.Network` for the Deep explainer.

Active only when keras is importable. A ``keras.Sequential``, or a functional model that
is a chain of layers, of ``Dense`` layers (with any activation the Deep explainer reads),
``BatchNormalization`` (moving statistics, folded), ``Dropout``, ``Activation``,
``ReLU``/``LeakyReLU``/``ELU`` layers and a final sigmoid or softmax is read op by op;
scikeras' ``KerasRegressor`` inside a scikit-learn pipeline is read through its fitted
``model_``. Anything else is explained as a whole by the Kernel explainer with a
``FallbackWarning``. The model stays the model of record: predictions
come from its own forward pass (``training=False``).

Keras activation names map onto the shared table: ``linear`` -> identity, ``swish`` ->
silu, ``hard_silu``/``hard_swish`` -> hardswish, ``gelu`` (exact erf), ``leaky_relu``
(negative slope 0.2 as a function, the layer's own value as a layer), ``softplus`` (on the
PyTorch backend with PyTorch's threshold 20, as Keras calls it there).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Node
from shapgov.decomposition.context import DecomposeContext
from shapgov.errors import UndecomposableModelError
from shapgov.explainers.kernels.activations import Activation
from shapgov.explainers.network import SOFTMAX_HEAD, Affine, NetworkModel, batch_norm
from shapgov.planning.compatibility import class_path_set
from shapgov_plugins.torch_networks import network_leaf

AVAILABLE = importlib.util.find_spec("keras") is not None

_NAMES = {
    "linear": ("identity", ()),
    "relu": ("relu", ()),
    "sigmoid": ("logistic", ()),
    "tanh": ("tanh", ()),
    "selu": ("selu", ()),
    "elu": ("elu", (1.0,)),
    "celu": ("celu", (1.0,)),
    "silu": ("silu", ()),
    "swish": ("silu", ()),
    "gelu": ("gelu", ()),
    "leaky_relu": ("leaky_relu", (0.2,)),
    "mish": ("mish", ()),
    "hard_silu": ("hardswish", ()),
    "hard_swish": ("hardswish", ()),
}
_SKIPPED = {"Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "InputLayer"}


def _numpy(value: Any) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(value), dtype=float)


def _activation(fn: Any) -> Activation | str:
    """A Keras activation function as an :class:`Activation` (softmax: the head)."""
    name = getattr(fn, "__name__", str(fn))
    if name == "softmax":
        return SOFTMAX_HEAD
    if name == "softplus":
        import keras

        threshold = 20.0 if keras.backend.backend() == "torch" else np.inf
        return Activation("softplus", 1.0, threshold)
    if name not in _NAMES:
        raise UndecomposableModelError(f"Keras activation {name!r} is not elementwise-known")
    act, params = _NAMES[name]
    return Activation(act, *params)


class KerasNetwork(NetworkModel):
    """A Keras model with scikit-learn-like attributes and, when it could be read, its
    ``network_`` (see :class:`~shapgov.explainers.network.NetworkModel`)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._read(lambda: _ops(model))

    def _forward(self, X: Any) -> np.ndarray:
        import keras

        dtype = keras.backend.standardize_dtype(self.model.inputs[0].dtype)
        out = self.model(np.asarray(X, dtype=dtype), training=False)
        return np.asarray(keras.ops.convert_to_numpy(out))


def _chain(model: Any) -> list[Any]:
    """The model's layers, if they form a chain: a Sequential, or a functional model with
    one input and one output whose every layer takes exactly the previous one's output."""
    paths = class_path_set(model)
    if "keras.src.models.sequential.Sequential" in paths:
        return list(model.layers)
    if "keras.src.models.functional.Functional" in paths and len(model.inputs) == 1:
        layers = list(model.layers)
        previous = None
        for layer in layers:
            nodes = getattr(layer, "_inbound_nodes", [])
            sources = [t._keras_history.operation for t in nodes[0].input_tensors] if nodes else []
            if len(nodes) != 1 or sources != ([previous] if previous is not None else []):
                break
            previous = layer
        else:
            if len(model.outputs) == 1:
                return layers
    raise UndecomposableModelError(
        f"{type(model).__name__}: the Deep explainer reads keras.Sequential models and "
        "functional models that are a chain of layers (one input, one output, no branches)"
    )


def _ops(model: Any) -> tuple[list[Any], int]:
    ops: list[Any] = []
    n_inputs = None
    for layer in _chain(model):
        name = type(layer).__name__
        if name == "Dense":
            W = _numpy(layer.kernel)
            b = _numpy(layer.bias) if layer.use_bias else np.zeros(W.shape[1])
            ops.append(Affine(W, b))
            n_inputs = W.shape[0] if n_inputs is None else n_inputs
            ops.append(_activation(layer.activation))
        elif name == "BatchNormalization":
            ops.append(_batch_norm(layer))
        elif name == "Activation":
            ops.append(_activation(layer.activation))
        elif name == "ReLU" and not (layer.max_value or layer.negative_slope or layer.threshold):
            ops.append(Activation("relu"))
        elif name == "LeakyReLU":
            ops.append(Activation("leaky_relu", float(layer.negative_slope)))
        elif name == "ELU":
            ops.append(Activation("elu", float(layer.alpha)))
        elif name == "Softmax":
            ops.append(SOFTMAX_HEAD)
        elif name in _SKIPPED:
            continue
        else:
            raise UndecomposableModelError(
                f"the Deep explainer reads Dense, BatchNormalization, Dropout and activation "
                f"layers of a keras.Sequential; found {name}"
            )
    if n_inputs is None:
        raise UndecomposableModelError("the Keras model has no Dense layer")
    return ops, n_inputs


def _batch_norm(layer: Any) -> Affine:
    if layer.axis not in (-1, 1):
        raise UndecomposableModelError("a BatchNormalization over another axis than features")
    gamma = _numpy(layer.gamma) if layer.scale else None
    beta = _numpy(layer.beta) if layer.center else None
    mean, var = _numpy(layer.moving_mean), _numpy(layer.moving_variance)
    return batch_norm(mean, var, layer.epsilon, gamma, beta)


def _is_keras_model(model: Any) -> bool:
    return "keras.src.models.model.Model" in class_path_set(model)


@hookimpl(trylast=True)
def shapgov_prepare_model(model: Any) -> Any | None:
    if AVAILABLE and _is_keras_model(model):
        return KerasNetwork(model)
    return None


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    if isinstance(model, KerasNetwork):
        return network_leaf(model, context)
    if AVAILABLE and "scikeras.wrappers.KerasRegressor" in class_path_set(model):
        return network_leaf(KerasNetwork(model.model_), context)
    return None
