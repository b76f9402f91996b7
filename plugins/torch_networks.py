"""Built-in plugin: PyTorch networks, read into :class:`~shapgov.explainers.network.Network`
for the Deep explainer.

Active only when torch is importable (it is not a dependency). An ``nn.Sequential`` (nested
ones flattened), or any module whose ``forward`` ``torch.fx`` traces into a chain, is read
op by op:

* ``Linear`` -> affine; ``BatchNorm1d`` (eval statistics) -> affine, folded into its
  neighbours; ``Dropout``/``AlphaDropout``/``Identity``/``Flatten`` -> nothing (eval mode);
* elementwise activations, as modules or functions: ReLU, LeakyReLU, ELU, SELU, CELU,
  SiLU (Swish), GELU (exact or tanh), Mish, Softplus, Hardswish, Sigmoid, Tanh;
* a final ``Sigmoid`` (binary: logit link) or ``Softmax`` (multiclass: per-class margins).

Anything else (an Embedding, a residual connection, a ReLU6) makes the network
undecomposable: it is explained as a whole by the Kernel explainer with a
``FallbackWarning``, as every unsupported vertex is. skorch's ``NeuralNetRegressor`` inside a
scikit-learn pipeline is read through its fitted ``module_``. The module stays the model of
record:
predictions come from its own forward pass.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Node
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.links import IDENTITY, LOGIT, SOFTMAX
from shapgov.errors import InputError, UndecomposableModelError
from shapgov.explainers.kernels.activations import Activation
from shapgov.explainers.network import SOFTMAX_HEAD, Affine, NetworkModel, batch_norm
from shapgov.planning.compatibility import class_path_set

AVAILABLE = importlib.util.find_spec("torch") is not None

#: activation module (or function) name -> (activation, its parameter attributes)
_MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ReLU": ("relu", ()),
    "LeakyReLU": ("leaky_relu", ("negative_slope",)),
    "ELU": ("elu", ("alpha",)),
    "SELU": ("selu", ()),
    "CELU": ("celu", ("alpha",)),
    "SiLU": ("silu", ()),
    "Mish": ("mish", ()),
    "Softplus": ("softplus", ("beta", "threshold")),
    "Hardswish": ("hardswish", ()),
    "Sigmoid": ("logistic", ()),
    "Tanh": ("tanh", ()),
    "Identity": ("identity", ()),
}
_FUNCTIONS = {
    "relu": "relu",
    "selu": "selu",
    "silu": "silu",
    "mish": "mish",
    "hardswish": "hardswish",
    "sigmoid": "logistic",
    "tanh": "tanh",
}
_SKIPPED = {"Dropout", "AlphaDropout", "Identity", "Flatten"}


class TorchNetwork(NetworkModel):
    """A PyTorch module with scikit-learn-like attributes and, when it could be read, its
    ``network_`` (see :class:`~shapgov.explainers.network.NetworkModel`)."""

    def __init__(self, module: Any, *, eval_mode: bool = False) -> None:
        self.module = module
        #: put the module in eval mode before each forward (what skorch's predict does)
        self.eval_mode = eval_mode
        self._read(lambda: _ops(_chain(module)))

    def _forward(self, X: Any) -> np.ndarray:
        import torch

        if self.eval_mode:
            self.module.eval()
        if self.module.training:
            raise InputError(
                "the PyTorch module is in training mode (dropout and batch statistics make "
                "its outputs random); call module.eval() before explaining it"
            )
        param = next(self.module.parameters())
        with torch.no_grad():
            t = torch.as_tensor(np.asarray(X, dtype=float), dtype=param.dtype)
            return self.module(t).cpu().numpy()


def _name(step: Any) -> str:
    return step if isinstance(step, str) else type(step).__name__


def _chain(module: Any) -> list[Any]:
    """The module as a flat chain of submodules and function names."""
    import torch

    if isinstance(module, torch.nn.Sequential):
        out: list[Any] = []
        for child in module:
            out.extend(_chain(child) if isinstance(child, torch.nn.Sequential) else [child])
        return out
    if not list(module.children()):
        return [module]
    try:
        graph = torch.fx.symbolic_trace(module).graph
    except Exception as err:  # torch.fx refuses data-dependent control flow and more
        raise UndecomposableModelError(
            f"{type(module).__name__}.forward could not be traced by torch.fx ({err})"
        ) from err
    steps: list[Any] = []
    previous = None
    for node in graph.nodes:
        if node.op == "placeholder":
            previous = node
            continue
        if node.op == "output":
            break
        inputs = [a for a in node.args if hasattr(a, "op")]
        if inputs != [previous]:
            raise UndecomposableModelError(
                f"{type(module).__name__}.forward is not a chain of layers (node {node.name} "
                "takes other inputs); the Deep explainer reads chains"
            )
        if node.op == "call_module":
            steps.extend(_chain(module.get_submodule(node.target)))
        elif node.op in ("call_function", "call_method"):
            steps.append(getattr(node.target, "__name__", str(node.target)))
        previous = node
    return steps


def _ops(steps: list[Any]) -> tuple[list[Any], int]:
    """Affine maps and activations of a chain, and its input width."""
    ops: list[Any] = []
    n_inputs = None
    for step in steps:
        name = _name(step)
        if name == "Linear":
            W = step.weight.detach().cpu().double().numpy().T
            bias = step.bias
            b = np.zeros(W.shape[1]) if bias is None else bias.detach().cpu().double().numpy()
            ops.append(Affine(W, b))
            n_inputs = W.shape[0] if n_inputs is None else n_inputs
        elif name == "BatchNorm1d":
            ops.append(_batch_norm(step))
            n_inputs = step.num_features if n_inputs is None else n_inputs
        elif name in _SKIPPED:
            continue
        elif name in ("Softmax", "softmax"):
            ops.append(SOFTMAX_HEAD)
        elif name in _MODULES:
            act, params = _MODULES[name]
            ops.append(Activation(act, *(float(getattr(step, p)) for p in params)))
        elif name == "GELU":
            ops.append(Activation("gelu_tanh" if step.approximate == "tanh" else "gelu"))
        elif isinstance(step, str) and step in _FUNCTIONS:
            ops.append(Activation(_FUNCTIONS[step]))
        else:
            raise UndecomposableModelError(
                f"the Deep explainer reads Linear, BatchNorm1d, Dropout and elementwise "
                f"activations ({sorted(_MODULES)} and GELU); found {name}"
            )
    if n_inputs is None:
        raise UndecomposableModelError("the network has no Linear layer")
    return ops, n_inputs


def _batch_norm(bn: Any) -> Affine:
    if bn.running_mean is None:
        raise UndecomposableModelError("a BatchNorm1d without running statistics")

    def values(t: Any) -> np.ndarray:
        return t.detach().cpu().double().numpy()

    affine = (values(bn.weight), values(bn.bias)) if bn.affine else (None, None)
    return batch_norm(values(bn.running_mean), values(bn.running_var), bn.eps, *affine)


def _is_module(model: Any) -> bool:
    return "torch.nn.modules.module.Module" in class_path_set(model)


@hookimpl(trylast=True)
def shapgov_prepare_model(model: Any) -> Any | None:
    if AVAILABLE and _is_module(model):
        return TorchNetwork(model)
    return None


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    if isinstance(model, TorchNetwork):
        return network_leaf(model, context)
    if AVAILABLE and "skorch.regressor.NeuralNetRegressor" in class_path_set(model):
        return network_leaf(TorchNetwork(model.module_, eval_mode=True), context)
    return None


def network_leaf(model: Any, context: DecomposeContext) -> Node:
    """The vertex of a read network (PyTorch or Keras): margin = the output layer's
    pre-activation; a logistic output gives the logit link, softmax per-class margins."""
    if model.network_ is None:
        raise UndecomposableModelError(f"{context.path}: {model.reason_}")
    k = model.network_.n_outputs
    if model.out_activation_ == "identity":
        return context.leaf(
            model, n_margins=k, link=IDENTITY, prediction="predict", margin_method=None
        )
    if model.out_activation_ == "logistic" and k != 1:
        raise UndecomposableModelError(
            f"{context.path}: a Sigmoid output with several units (multilabel) has no link"
        )
    link = LOGIT if model.out_activation_ == "logistic" else SOFTMAX
    return context.leaf(
        model, n_margins=k, link=link, prediction="predict_proba", margin_method=None
    )
