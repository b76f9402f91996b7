"""``shapgov.shap.DeepExplainer``: shap's ``DeepExplainer`` interface for PyTorch modules
and Keras 3 models (any backend; PyTorch's in the test extra), on shapgov's engine.

shap's Deep explainer propagates DeepLIFT multipliers, which approximate the Shapley values
of the interventional game against the background (Lundberg and Lee 2017; Shrikumar et
al. 2017). shapgov plays that game itself: the network is a function of its flattened
inputs (every input element is a player), explained by :func:`shapgov.explain` against
the background tensors. The values are exact up to the Kernel explainer's player budget
and estimated by its unbiased sampler (a fixed seed: the same call gives the same values)
beyond it; in both cases ``expected_value + sum(values)`` equals the network's output row
by row (the additivity policy applies), whatever the layers (convolutions, pooling,
attention, residual connections).

Source of the API followed: shap 0.51 (``shap.DeepExplainer``: ``(model, data)``, the
``(model, layer)`` pair for a layer's input, lists of tensors for several inputs,
``shap_values(X, ranked_outputs=, output_rank_order=, check_additivity=)``, values
``(n, *input shape, K)``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from shapgov.errors import InputError, ShapOptionError, UnsupportedModelError
from shapgov.shap.common import governed
from shapgov.shap.explanation import make_explanation

#: rows per forward pass when the game evaluates the network on masked inputs
BATCH_ROWS = 4096
#: shap's orders of the outputs for ``ranked_outputs``
RANK_ORDERS = ("max", "min", "max_abs")


def _is_torch_module(model: Any) -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return isinstance(model, torch.nn.Module)


def _is_keras_model(model: Any) -> bool:
    return any(c.__module__.startswith("keras") for c in type(model).__mro__) and hasattr(
        model, "predict"
    )


def _numpy(t: Any) -> np.ndarray:
    if hasattr(t, "detach"):
        return t.detach().cpu().numpy()
    return np.asarray(t)


class _Inputs:
    """The shapes of a network's inputs and their flattening into one table of players."""

    def __init__(self, tensors: list[Any]) -> None:
        self.shapes = [tuple(np.shape(t)[1:]) for t in tensors]
        self.sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.bounds = np.cumsum([0, *self.sizes])

    def flatten(self, tensors: list[Any], *, what: str) -> np.ndarray:
        if len(tensors) != len(self.shapes):
            raise InputError(
                f"{what}: {len(tensors)} input(s), the background has {len(self.shapes)}: "
                "pass one tensor per network input, as for the background"
            )
        rows = {np.shape(t)[0] for t in tensors}
        if len(rows) != 1:
            raise InputError(f"{what}: the inputs have different row counts {sorted(rows)}")
        flat = []
        for t, shape in zip(tensors, self.shapes, strict=True):
            arr = _numpy(t)
            if tuple(arr.shape[1:]) != shape:
                raise InputError(
                    f"{what}: an input of shape {tuple(arr.shape[1:])} per row where the "
                    f"background has {shape}"
                )
            flat.append(arr.reshape(arr.shape[0], -1).astype(float))
        return np.hstack(flat)

    def split(self, table: np.ndarray) -> list[np.ndarray]:
        return [
            table[:, a:b].reshape(table.shape[0], *shape)
            for a, b, shape in zip(self.bounds[:-1], self.bounds[1:], self.shapes, strict=True)
        ]


class _TorchNetwork:
    """A PyTorch module (in eval mode, as shap sets it) as a function of flat tables; with
    a ``layer``, the network from that layer's input on."""

    def __init__(self, module: Any, layer: Any, background: list[Any]) -> None:
        import torch

        self.torch = torch
        self.module = module.eval()
        self.layer = layer
        first = background[0]
        self.dtype = first.dtype if isinstance(first, torch.Tensor) else torch.float32
        self.device = first.device if isinstance(first, torch.Tensor) else torch.device("cpu")
        self.model_inputs = [self._tensor(t) for t in background]

    def _tensor(self, a: Any) -> Any:
        t = a if isinstance(a, self.torch.Tensor) else self.torch.from_numpy(np.array(a))
        return t.to(device=self.device, dtype=self.dtype)

    def layer_inputs(self, tensors: list[Any]) -> list[np.ndarray]:
        """The inputs ``layer`` receives when the network runs on ``tensors``."""
        seen: list[Any] = []

        def hook(_module: Any, args: tuple[Any, ...]) -> None:
            seen.append(args)

        handle = self.layer.register_forward_pre_hook(hook)
        try:
            with self.torch.no_grad():
                self.module(*[self._tensor(t) for t in tensors])
        finally:
            handle.remove()
        if len(seen) != 1 or len(seen[0]) != 1:
            raise UnsupportedModelError(
                "the (model, layer) pair needs a layer called once per forward pass with one "
                f"tensor; {type(self.layer).__name__} was called {len(seen)} time(s): name "
                "the layer whose single input should be explained"
            )
        return [_numpy(seen[0][0])]

    def __call__(self, inputs: list[np.ndarray], *, model_inputs: list[Any] | None = None) -> Any:
        torch = self.torch
        with torch.no_grad():
            if self.layer is None:
                out = self.module(*[self._tensor(a) for a in inputs])
            else:
                replacement = self._tensor(inputs[0])
                n = replacement.shape[0]
                base = model_inputs if model_inputs is not None else self.model_inputs
                # any model input serves: the check in DeepExplainer proved the output
                # depends on it only through the layer
                feed = [t[:1].expand(n, *t.shape[1:]) for t in base]

                def swap(_module: Any, _args: tuple[Any, ...]) -> tuple[Any, ...]:
                    return (replacement,)

                handle = self.layer.register_forward_pre_hook(swap)
                try:
                    out = self.module(*feed)
                finally:
                    handle.remove()
        return _numpy(out).astype(float)


class _KerasNetwork:
    """A Keras 3 model as a function of flat tables (``model.predict``)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, inputs: list[np.ndarray]) -> np.ndarray:
        feed = inputs[0] if len(inputs) == 1 else list(inputs)
        out = self.model.predict(feed, verbose=0, batch_size=BATCH_ROWS)
        if isinstance(out, (list, tuple)):
            raise UnsupportedModelError(
                "a Keras model with several outputs: build one model per output to explain"
            )
        return np.asarray(out, dtype=float)


class DeepExplainer:
    """Shapley values of a deep network's output against background inputs, with shap's
    ``DeepExplainer`` interface (see the module for the game and its estimator).

    :param model: A ``torch.nn.Module``, a ``(module, layer)`` pair (values for the
        layer's input, as shap gives them), or a Keras 3 model.
    :param data: Background: a tensor or array ``(b, *input shape)``, or a list of them
        for a network with several inputs.
    :param session: TensorFlow 1 only; refused.
    :param learning_phase_flags: TensorFlow 1 only; refused.
    :raises UnsupportedModelError: Not a PyTorch module or Keras model; a layer that is
        not a cut of the network (the output also depends on the model's input another way).
    :raises ShapOptionError: ``session`` or ``learning_phase_flags``.
    :raises InputError: An empty background.

    Attributes: ``expected_value`` ``(K,)``, the weighted mean output over the background
    (the base value); ``last_explanation_``, the governed :class:`shapgov.Explanation` of
    the last call (its game and additivity report).
    """

    def __init__(
        self, model: Any, data: Any, session: Any = None, learning_phase_flags: Any = None
    ) -> None:
        if session is not None or learning_phase_flags is not None:
            raise ShapOptionError(
                "session= and learning_phase_flags= belong to TensorFlow 1 graphs; shapgov "
                "explains PyTorch modules and Keras 3 models: pass the model"
            )
        module, layer = model if isinstance(model, tuple) else (model, None)
        self.multi_input = isinstance(data, (list, tuple))
        tensors = list(data) if self.multi_input else [data]
        if not tensors or any(np.shape(t)[0] == 0 for t in tensors):
            raise InputError("DeepExplainer needs background rows: data is empty")
        self.model = model
        self.data = tensors
        self.framework = "pytorch" if _is_torch_module(module) else None
        if self.framework == "pytorch":
            self._network: Any = _TorchNetwork(module, layer, tensors)
        elif _is_keras_model(module) and layer is None:
            self.framework = "keras"
            self._network = _KerasNetwork(module)
        else:
            raise UnsupportedModelError(
                f"DeepExplainer explains a torch.nn.Module (or a (module, layer) pair) or a "
                f"Keras 3 model; got {type(module).__name__}: for any other function use "
                "shapgov.shap.KernelExplainer"
            )
        self.interim = layer is not None
        if self.interim:
            self._background_inputs = self._network.layer_inputs(tensors)
            self._check_cut(tensors)
        else:
            self._background_inputs = [_numpy(t) for t in tensors]
        self._inputs = _Inputs(self._background_inputs)
        self._background = self._inputs.flatten(self._background_inputs, what="data")
        outputs = self._outputs(self._background)
        self.expected_value = outputs.mean(axis=0)
        self.last_explanation_: Any = None

    # -- the explained function -------------------------------------------------------
    def _outputs(self, table: np.ndarray) -> np.ndarray:
        """Network outputs ``(r, K)`` of flat rows, in batches."""
        parts = [
            self._network(self._inputs.split(table[s : s + BATCH_ROWS]))
            for s in range(0, table.shape[0], BATCH_ROWS)
        ]
        out = np.concatenate(parts, axis=0)
        return out.reshape(out.shape[0], -1)

    def _check_cut(self, tensors: list[Any]) -> None:
        """A layer whose input carries everything the output needs: the output on the
        same layer input is the same whichever model input the network gets."""
        if np.shape(tensors[0])[0] < 2:
            return
        layer_in = self._background_inputs
        first = self._network(layer_in, model_inputs=[t[:1] for t in tensors])
        other = self._network(layer_in, model_inputs=[t[-1:] for t in tensors])
        if not np.allclose(first, other, rtol=1e-6, atol=1e-9):
            raise UnsupportedModelError(
                f"the network's output depends on its input other than through "
                f"{type(self._network.layer).__name__}'s input (a skip connection): values "
                "for that layer's input would not add up to the output; explain the model "
                "(no layer) or a layer every path goes through"
            )

    def _flat_rows(self, X: Any) -> np.ndarray:
        given = list(X) if isinstance(X, (list, tuple)) else [X]
        if self.multi_input != isinstance(X, (list, tuple)):
            raise InputError(
                "X must be a list of tensors exactly when the background is (one per input)"
            )
        if self.interim:
            given = self._network.layer_inputs(given)
        return self._inputs.flatten(given, what="X")

    # -- shap's API ---------------------------------------------------------------------
    def shap_values(
        self,
        X: Any,
        ranked_outputs: int | None = None,
        output_rank_order: str = "max",
        check_additivity: bool = True,
    ) -> Any:
        """SHAP values in shap's shapes: ``(n, *input shape, K)``, a list of those (one per
        input) for several inputs; with ``ranked_outputs=r``, ``(values, ranks)`` where the
        last axis holds each row's ``r`` top outputs by ``output_rank_order`` and ``ranks``
        ``(n, r)`` their indexes.

        ``check_additivity`` is accepted: shapgov's additivity policy always applies.

        :raises ShapOptionError: An unknown ``output_rank_order`` or a ``ranked_outputs``
            that is not a positive int.
        """
        if output_rank_order not in RANK_ORDERS:
            raise ShapOptionError(
                f"output_rank_order={output_rank_order!r}: one of {', '.join(RANK_ORDERS)}"
            )
        if ranked_outputs is not None and (
            not isinstance(ranked_outputs, (int, np.integer)) or ranked_outputs < 1
        ):
            raise ShapOptionError(f"ranked_outputs must be a positive int, got {ranked_outputs!r}")
        flat = self._flat_rows(X)
        values = self._explain(flat)  # (n, M, K)
        ranks = None
        if ranked_outputs is not None:
            out = self._outputs(flat)
            key = {"max": -out, "min": out, "max_abs": -np.abs(out)}[output_rank_order]
            ranks = np.argsort(key, axis=1, kind="stable")[:, :ranked_outputs]
            values = np.take_along_axis(values, ranks[:, None, :], axis=2)
        parts = [
            values[:, a:b].reshape(values.shape[0], *shape, values.shape[2])
            for a, b, shape in zip(
                self._inputs.bounds[:-1], self._inputs.bounds[1:], self._inputs.shapes, strict=True
            )
        ]
        shaped = parts if self.multi_input else parts[0]
        return shaped if ranks is None else (shaped, ranks)

    def _explain(self, flat: np.ndarray) -> np.ndarray:
        function: Callable[[Any], np.ndarray] = self._game_function
        result = governed(
            function, flat, background=self._background, feature_perturbation="interventional"
        )
        self.last_explanation_ = result
        values = np.asarray(result.values, dtype=float)
        if values.ndim == 2:
            values = values[:, :, None]
        self.expected_value = np.asarray(result.expected_value, dtype=float).reshape(-1)
        return values

    def _game_function(self, table: Any) -> np.ndarray:
        out = self._outputs(np.asarray(table, dtype=float))
        return out[:, 0] if out.shape[1] == 1 else out

    def __call__(self, X: Any) -> Any:
        """A ``shap.Explanation`` (shap installed) or :class:`shapgov.shap.Explanation`:
        values as :meth:`shap_values`, ``data`` the inputs as numpy arrays."""
        if self.multi_input:
            raise ShapOptionError(
                "an explanation object holds one input's values: call shap_values for a "
                "network with several inputs"
            )
        values = self.shap_values(X)
        n = values.shape[0]
        base = np.broadcast_to(self.expected_value, (n, self.expected_value.shape[0])).copy()
        return make_explanation(
            values,
            base,
            _numpy(X),
            None,
            feature_perturbation="interventional",
            governed=self.last_explanation_,
        )
