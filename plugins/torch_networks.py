"""Built-in plugin: PyTorch networks, read into :class:`~shapgov.explainers.network.Network`
for the Deep explainer.

Active only when torch is importable (it is not a dependency). An ``nn.Sequential`` (nested
ones flattened), or any module whose ``forward`` ``torch.fx`` traces into a chain, is read
op by op:

* ``Linear`` -> affine; ``BatchNorm1d`` (eval statistics) -> affine, folded into its
  neighbours; ``Dropout``/``AlphaDropout``/``Identity``/``Flatten`` -> nothing (eval mode);
* elementwise activations, as modules or functions: ReLU, LeakyReLU, ELU, SELU, CELU,
  SiLU (Swish), GELU (exact or tanh), Mish, Softplus, Hardswish, Sigmoid, Tanh;
* a final ``Sigmoid`` (binary: logit link) or ``Softmax`` (multiclass: per-class margins);
* entity embeddings: a ``forward`` that concatenates numeric columns ``x[:, idx]`` and
  ``Embedding(x[:, j].long())`` lookups of code columns, then runs a chain. Each code
  column's first-layer contribution is its embedding row times its block of the first
  layer, so exact values stay exact and are reported per original column.

Anything else (a residual connection, a ReLU6, an EmbeddingBag) makes the network
undecomposable: it is explained as a whole by the Kernel explainer with a
``FallbackWarning``, as every unsupported vertex is. skorch's ``NeuralNetRegressor`` inside a
scikit-learn pipeline is read through its fitted ``module_``. The module stays the model of
record: predictions come from its own forward pass. A module in training mode (as
``nn.Sequential(...)`` is when built) is explained as it is unless a layer in training
mode behaves differently there (its code reads ``.training``: Dropout, BatchNorm, a custom
``forward`` that branches on the mode); that is an ``InputError`` naming the layer and
``module.eval()``.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import textwrap
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
    ``network_`` (see :class:`~shapgov.explainers.network.NetworkModel`).

    Raises:
        InputError: the module is in training mode and a layer behaves differently there
            (see :func:`_check_training_mode`); checked on construction and every forward.
    """

    def __init__(self, module: Any, *, eval_mode: bool = False) -> None:
        self.module = module
        #: put the module in eval mode before each forward (what skorch's predict does)
        self.eval_mode = eval_mode
        if not eval_mode:  # refused before anything is read or run, not inside a fallback
            _check_training_mode(module)
        self._read(lambda: _read_module(module))

    def _forward(self, X: Any) -> np.ndarray:
        import torch

        if self.eval_mode:
            self.module.eval()
        _check_training_mode(self.module)
        param = next(self.module.parameters())
        with torch.no_grad():
            t = torch.as_tensor(np.asarray(X, dtype=float), dtype=param.dtype)
            return self.module(t).cpu().numpy()


def _check_training_mode(module: Any) -> None:
    """Refuse a module whose output in its current mode is not its inference output.

    A submodule in training mode matters only when its code reads ``.training`` (its own
    class or one it inherits from below ``torch.nn.Module``): Dropout, BatchNorm,
    InstanceNorm, RReLU, recurrent and attention layers, and any custom ``forward`` that
    branches on the mode. A freshly built chain of Linear layers and activations computes
    the same in both modes and is explained as it is.

    Raises:
        InputError: a submodule in training mode reads ``.training``, or its source cannot
            be read to tell; the message names it and says to call ``module.eval()``.
    """
    for path, sub in module.named_modules():
        if not sub.training:
            continue
        reads = _reads_training(type(sub))
        if reads is False:
            continue
        where = f"its layer {path!r} ({type(sub).__name__})" if path else "it"
        why = (
            "behaves differently in training: its code reads .training (dropout is random, "
            "batch norm uses the batch's statistics)"
            if reads
            else "may behave differently in training: its source cannot be read to tell"
        )
        raise InputError(
            f"the PyTorch module is in training mode and {where} {why}; call module.eval() "
            "before explaining it"
        )


@functools.cache
def _reads_training(cls: type) -> bool | None:
    """Whether ``cls`` or a class it inherits from below ``torch.nn.Module`` reads an
    attribute ``training`` (``self.training``, ``training=self.training``); ``None`` when
    a source cannot be read."""
    import torch

    for klass in cls.__mro__:
        if klass is torch.nn.Module or klass is object:
            break
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            return None
        if any(isinstance(n, ast.Attribute) and n.attr == "training" for n in ast.walk(tree)):
            return True
    return False


def _read_module(module: Any) -> tuple[Any, ...]:
    """``(ops, n_inputs)`` of a chain, or ``(ops, n_inputs, layout)`` of entity
    embeddings concatenated with numeric columns in front of a chain."""
    try:
        return _ops(_chain(module))
    except UndecomposableModelError as chain_error:
        try:
            layout, rest = _embedded_chain(module)
        except UndecomposableModelError:
            raise chain_error from None
        width = sum(1 if kind == "number" else len(where) for kind, _, where in layout)
        ops, _ = _ops(rest, n_inputs=width)
        return ops, width, layout


def _embedded_chain(module: Any) -> tuple[list[tuple[str, Any, Any]], list[Any]]:
    """Entity embeddings: ``forward`` concatenates numeric columns ``x[:, idx]`` and
    ``Embedding(x[:, j].long())`` lookups, then runs a chain. Returns the layout of the
    concatenated input per original column (see ``Network.with_embeddings``) and the
    chain's steps."""
    import torch

    try:
        nodes = list(torch.fx.symbolic_trace(module).graph.nodes)
    except Exception as err:
        raise UndecomposableModelError(f"not traceable ({err})") from err
    cats = [n for n in nodes if n.op == "call_function" and n.target in (torch.cat, torch.concat)]
    if len(cats) != 1 or nodes[0].op != "placeholder":
        raise UndecomposableModelError("no single concatenation of embeddings and columns")
    x, cat = nodes[0], cats[0]
    dim = cat.args[1] if len(cat.args) > 1 else cat.kwargs.get("dim", 0)
    if dim not in (1, -1):
        raise UndecomposableModelError("the concatenation is not along the features")
    columns: dict[int, tuple[str, Any, Any]] = {}
    position = 0
    for part in cat.args[0]:
        source, embedding = part, None
        if part.op == "call_module":
            embedding = module.get_submodule(part.target)
            if type(embedding).__name__ != "Embedding" or embedding.max_norm is not None:
                raise UndecomposableModelError("only plain Embedding lookups are read")
            source = part.args[0]
            while source.op == "call_method" and source.target in ("long", "int", "to"):
                source = source.args[0]
        picked = _picked_columns(source, x)
        if embedding is not None:
            if len(picked) != 1:
                raise UndecomposableModelError("an Embedding must look up one column")
            table = embedding.weight.detach().cpu().double().numpy()
            width = table.shape[1]
            columns[picked[0]] = ("embedding", table, list(range(position, position + width)))
            position += width
        else:
            for j in picked:
                columns[j] = ("number", position, None)
                position += 1
    m = max(columns) + 1
    layout = [columns.get(j, ("number", None, None)) for j in range(m)]
    if any(kind == "number" and where is None for kind, where, _ in layout):
        raise UndecomposableModelError("a column between the used ones is never read")
    after = nodes[nodes.index(cat) + 1 :]
    steps: list[Any] = []
    previous = cat
    for node in after:
        if node.op == "output":
            break
        if [a for a in node.args if hasattr(a, "op")] != [previous]:
            raise UndecomposableModelError("after the concatenation the layers are not a chain")
        if node.op == "call_module":
            steps.extend(_chain(module.get_submodule(node.target)))
        else:
            steps.append(getattr(node.target, "__name__", str(node.target)))
        previous = node
    return layout, steps


def _picked_columns(node: Any, x: Any) -> list[int]:
    """The columns of ``x`` a ``x[:, idx]`` node selects."""
    import operator

    if node.op != "call_function" or node.target is not operator.getitem or node.args[0] is not x:
        raise UndecomposableModelError("a part of the concatenation is not x[:, columns]")
    index = node.args[1]
    if not (isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None)):
        raise UndecomposableModelError("a part of the concatenation is not x[:, columns]")
    cols = index[1]
    if isinstance(cols, int):
        return [cols]
    if isinstance(cols, slice) and cols.stop is not None:
        return list(range(cols.start or 0, cols.stop, cols.step or 1))
    if isinstance(cols, list | tuple) and all(isinstance(c, int) for c in cols):
        return list(cols)
    raise UndecomposableModelError("a part of the concatenation selects columns dynamically")


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


def _ops(steps: list[Any], n_inputs: int | None = None) -> tuple[list[Any], int]:
    """Affine maps and activations of a chain, and its input width."""
    ops: list[Any] = []
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
