"""PyTorch nn.Sequential MLPs through the optional plugin (skipped without torch)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oracles import brute_force_shapley
from sklearn.datasets import load_breast_cancer, load_diabetes

import shapgov
from shapgov.errors import UnsupportedModelError

# torch is no dependency of shapgov or its test extra (a 700 MB wheel): its plugin is tested
# where a user installed it.
torch = pytest.importorskip("torch")
nn = torch.nn


def _fit(module, X, y, loss, steps=300):
    opt = torch.optim.Adam(module.parameters(), lr=0.01)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        loss(module(Xt), yt).backward()
        opt.step()
    return module


def test_sequential_regressor_equals_brute_force():
    torch.manual_seed(0)
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:, :6] * 10, (y - y.mean()) / y.std()
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 1))
    net = _fit(net.double(), X, y[:, None], nn.MSELoss())
    rows, bg = X[:5], X[::30]
    e = shapgov.explain(net, rows, background=bg)
    assert e.explainers == {"torchmlp": "deep"}

    def f(d: pd.DataFrame) -> np.ndarray:
        return net(torch.as_tensor(d.to_numpy(dtype=float))).detach().numpy()

    ref, base = brute_force_shapley(f, pd.DataFrame(rows), pd.DataFrame(bg))
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


def test_sequential_classifier_float32_in_probability_space():
    torch.manual_seed(1)
    X, y = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0))[:, :5].astype(np.float32)
    net = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 1), nn.Sigmoid())
    net = _fit(net, X, y[:, None].astype(np.float32), nn.BCELoss())
    e = shapgov.explain(net, X[:6], background=X[::40])
    assert e.link.name == "logit"
    assert e.additivity.applied["model_output_dtype"] == "float32"
    p = shapgov.explain(net, X[:6], background=X[::40], output="probability")
    assert np.allclose(
        p.values.sum(1) + p.expected_value,
        net(torch.as_tensor(X[:6])).detach().numpy()[:, 0],
        atol=1e-6,
    )


def test_unsupported_layers_are_refused():
    net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.1), nn.Linear(4, 1))
    with pytest.raises(UnsupportedModelError, match="Dropout"):
        shapgov.explain(net, np.zeros((2, 3)), background=np.ones((3, 3)))
