"""``shapgov.shap.DeepExplainer``: shap's Deep interface for PyTorch modules and Keras 3
models, its values the interventional game's Shapley values, checked by brute force over
every coalition through the network's own forward pass.

The exact comparisons use float64 networks: a float32 network's output for a row changes
in its last bits with the batch it is computed in (BLAS blocking), so two correct
evaluations of the same game differ by float32 rounding (seen: 4e-9); float32 networks
are checked by additivity against their own output instead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
import torch
from oracles import brute_force_shapley
from torch import nn

import shapgov.shap as gshap
from shapgov.errors import InputError, ShapOptionError, UnsupportedModelError


def _forward(module, shapes):
    """The module as a function of a flat table, for the oracle."""

    def f(table: pd.DataFrame) -> np.ndarray:
        a = table.to_numpy(dtype=np.float64)
        parts, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            parts.append(torch.from_numpy(a[:, start : start + size].reshape(-1, *shape)))
            parts[-1] = parts[-1].to(next(module.parameters()).dtype)
            start += size
        with torch.no_grad():
            return module(*parts).numpy().astype(float).reshape(len(a), -1)

    return f


def _flat(*tensors):
    return pd.DataFrame(np.hstack([t.reshape(len(t), -1).numpy() for t in tensors]).astype(float))


def test_a_softmax_network_is_explained_exactly_in_shaps_shapes():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(5, 8), nn.BatchNorm1d(8), nn.GELU(), nn.Linear(8, 3), nn.Softmax(dim=1)
    ).double()
    net.train()  # as shap's tests leave it: the facade puts it in eval mode, as shap does
    background, X = torch.randn(12, 5).double(), torch.randn(4, 5).double()
    explainer = gshap.DeepExplainer(net, background)
    values = explainer.shap_values(X)
    assert not net.training
    assert values.shape == (4, 5, 3) and explainer.expected_value.shape == (3,)
    phi, base = brute_force_shapley(_forward(net, [(5,)]), _flat(X), _flat(background))
    np.testing.assert_allclose(values, phi, rtol=0, atol=1e-10)
    np.testing.assert_allclose(explainer.expected_value, base, rtol=0, atol=1e-12)
    with torch.no_grad():
        out = net(X).numpy()
    np.testing.assert_allclose(values.sum(1) + explainer.expected_value, out, atol=1e-6)
    explanation = explainer(X)
    assert isinstance(explanation, shap.Explanation)
    np.testing.assert_array_equal(explanation.values, values)
    assert explanation.base_values.shape == (4, 3)
    assert explainer.last_explanation_.feature_perturbation == "interventional"
    # ranked outputs: each row's top two outputs, their values and indexes
    ranked, ranks = explainer.shap_values(X, ranked_outputs=2)
    np.testing.assert_array_equal(ranks, np.argsort(-out, axis=1, kind="stable")[:, :2])
    np.testing.assert_allclose(ranked, np.take_along_axis(values, ranks[:, None, :], 2))


def test_several_inputs_give_a_list_and_one_output_keeps_its_axis():
    torch.manual_seed(1)

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 4), nn.Linear(3, 4)
            self.out = nn.Linear(4, 1)

        def forward(self, x1, x2):
            return self.out(torch.tanh(self.a(x1) * self.b(x2)))  # an interaction

    net = TwoInputs().double()
    bg = [torch.randn(6, 2).double(), torch.randn(6, 3).double()]
    X = [torch.randn(3, 2).double(), torch.randn(3, 3).double()]
    explainer = gshap.DeepExplainer(net, bg)
    v1, v2 = explainer.shap_values(X)
    assert v1.shape == (3, 2, 1) and v2.shape == (3, 3, 1)
    phi, _ = brute_force_shapley(_forward(net, [(2,), (3,)]), _flat(*X), _flat(*bg))
    np.testing.assert_allclose(np.concatenate([v1, v2], axis=1), phi, rtol=0, atol=1e-10)
    with pytest.raises(InputError, match="one tensor per network input"):
        explainer.shap_values([X[0]])
    with pytest.raises(ShapOptionError, match="call shap_values"):
        explainer(X)


def test_a_layer_gives_values_for_its_input_and_a_skip_connection_is_refused():
    torch.manual_seed(2)
    head = nn.Linear(4, 2).double()
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), head).double()
    bg, X = torch.randn(5, 3).double(), torch.randn(2, 3).double()
    explainer = gshap.DeepExplainer((net, head), bg)
    values = explainer.shap_values(X)
    with torch.no_grad():
        hidden_bg, hidden_x = net[1](net[0](bg)), net[1](net[0](X))
        out = net(X).numpy()
    assert values.shape == (2, 4, 2)  # the layer's input: 4 hidden units
    phi, _ = brute_force_shapley(_forward(head, [(4,)]), _flat(hidden_x), _flat(hidden_bg))
    np.testing.assert_allclose(values, phi, rtol=0, atol=1e-10)
    np.testing.assert_allclose(values.sum(1) + explainer.expected_value, out, atol=1e-6)

    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.last = nn.Linear(3, 3), nn.Linear(3, 1)

        def forward(self, x):
            return self.last(torch.relu(self.inner(x))) + x.sum(1, keepdim=True)

    skip = Skip().double()
    with pytest.raises(UnsupportedModelError, match="skip connection"):
        gshap.DeepExplainer((skip, skip.last), bg)


def test_a_keras_model_on_the_torch_backend():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((4,), dtype="float64"),
            keras.layers.Dense(6, activation="relu", dtype="float64"),
            keras.layers.Dense(2, dtype="float64"),
        ]
    )
    rng = np.random.default_rng(3)
    bg, X = rng.normal(size=(8, 4)), rng.normal(size=(3, 4))
    explainer = gshap.DeepExplainer(model, bg)
    values = explainer.shap_values(X)
    assert values.shape == (3, 4, 2)

    def f(table: pd.DataFrame) -> np.ndarray:
        return np.asarray(model.predict(table.to_numpy(), verbose=0), dtype=float)

    phi, base = brute_force_shapley(f, pd.DataFrame(X), pd.DataFrame(bg))
    # Keras 3 on PyTorch computes Dense layers in float32 even for float64 weights (see
    # tests/test_keras.py): its predict, the oracle, is exact to float32 rounding only
    tol = 64 * float(np.finfo(np.float32).eps) * max(1.0, np.abs(f(pd.DataFrame(bg))).max())
    np.testing.assert_allclose(values, phi, rtol=0, atol=tol)
    np.testing.assert_allclose(explainer.expected_value, base, rtol=0, atol=tol)


def test_tensorflow_arguments_and_other_models_are_typed_errors():
    bg = torch.randn(4, 3)
    with pytest.raises(ShapOptionError, match="TensorFlow 1"):
        gshap.DeepExplainer(nn.Linear(3, 1), bg, session=object())
    with pytest.raises(UnsupportedModelError, match="KernelExplainer"):
        gshap.DeepExplainer(lambda x: x, bg)
    with pytest.raises(InputError, match="background rows"):
        gshap.DeepExplainer(nn.Linear(3, 1), bg[:0])
    with pytest.raises(ShapOptionError, match="output_rank_order"):
        gshap.DeepExplainer(nn.Linear(3, 1), bg).shap_values(bg, output_rank_order="top")
