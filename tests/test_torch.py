"""PyTorch networks through the optional plugin: every elementwise activation, BatchNorm,
Dropout, traced custom modules, and the Kernel fallback for what cannot be read."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import shap
import torch  # torch, keras, skorch, scikeras and shap come with the test extra
from oracles import brute_force_shapley
from sklearn.datasets import load_breast_cancer, load_diabetes

import shapgov
from shapgov.errors import FallbackWarning, InputError

nn = torch.nn

#: every activation the Deep explainer reads, as PyTorch modules
ACTIVATIONS = {
    "ReLU": nn.ReLU,
    "LeakyReLU": lambda: nn.LeakyReLU(0.07),
    "ELU": lambda: nn.ELU(0.8),
    "SELU": nn.SELU,
    "CELU": lambda: nn.CELU(1.3),
    "SiLU": nn.SiLU,
    "GELU": nn.GELU,
    "GELU-tanh": lambda: nn.GELU(approximate="tanh"),
    "Mish": nn.Mish,
    "Softplus": lambda: nn.Softplus(beta=2.0, threshold=3.0),
    "Hardswish": nn.Hardswish,
    "Sigmoid": nn.Sigmoid,
    "Tanh": nn.Tanh,
}


def _fit(module, X, y, loss, steps=200):
    opt = torch.optim.Adam(module.parameters(), lr=0.01)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    module.train()
    for _ in range(steps):
        opt.zero_grad()
        loss(module(Xt), yt).backward()
        opt.step()
    return module.eval()


def _diabetes(m=6):
    X, y = load_diabetes(return_X_y=True)
    return X[:, :m] * 10, (y - y.mean()) / y.std()


def _own(net):
    def f(d: pd.DataFrame) -> np.ndarray:
        with torch.no_grad():
            return net(torch.as_tensor(d.to_numpy(dtype=float))).numpy()

    return f


def _net(act, m=6, batch_norm=True, dropout=True):
    layers = [nn.Linear(m, 16)]
    layers += [nn.BatchNorm1d(16)] if batch_norm else []
    layers += [act(), nn.Dropout(0.1)] if dropout else [act()]
    layers += [nn.Linear(16, 16), act(), nn.Linear(16, 1)]
    return nn.Sequential(*layers).double()


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_exact_against_brute_force_with_batch_norm_and_dropout(name):
    torch.manual_seed(0)
    X, y = _diabetes()
    net = _fit(_net(ACTIVATIONS[name]), X, y[:, None], nn.MSELoss())
    rows, bg = X[:5], X[::25]
    e = shapgov.explain(net, rows, background=bg)
    assert e.explainers == {"torchnetwork": "deep"} and e.additivity.status == "pass"
    ref, base = brute_force_shapley(_own(net), pd.DataFrame(rows), pd.DataFrame(bg))
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_deeplift_is_locally_accurate_for_every_activation(name):
    torch.manual_seed(1)
    X, y = _diabetes(8)
    net = _fit(_net(ACTIVATIONS[name], m=8), X, y[:, None], nn.MSELoss())
    options = {"deep": {"method": "deeplift"}}
    rows, bg = X[:30], X[::20]
    e = shapgov.explain(net, rows, background=bg, explainer_options=options)
    assert e.vertices[0].method == "approximate" and e.additivity.status == "pass"
    out = _own(net)(pd.DataFrame(rows))[:, 0]
    assert np.max(np.abs(e.values.sum(1) + e.expected_value - out)) <= 1e-10


def test_a_traced_custom_module_is_read_like_a_sequential():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.hidden, self.out = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 1)

        def forward(self, x):
            x = nn.functional.silu(self.inp(x))
            return self.out(torch.selu(self.hidden(x)))

    torch.manual_seed(2)
    X, y = _diabetes()
    net = _fit(Net().double(), X, y[:, None], nn.MSELoss())
    rows, bg = X[:4], X[::30]
    e = shapgov.explain(net, rows, background=bg)
    assert e.explainers == {"torchnetwork": "deep"}
    ref, _ = brute_force_shapley(_own(net), pd.DataFrame(rows), pd.DataFrame(bg))
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10


def test_unreadable_networks_fall_back_to_kernel_with_a_warning():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 1)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)) + x)

    X = np.random.default_rng(3).normal(size=(40, 4))
    for net in (nn.Sequential(nn.Linear(4, 5), nn.ReLU6(), nn.Linear(5, 1)), Residual()):
        net = net.double().eval()
        with pytest.warns(FallbackWarning):
            e = shapgov.explain(net, X[:3], background=X[10:20])
        ref, _ = brute_force_shapley(_own(net), pd.DataFrame(X[:3]), pd.DataFrame(X[10:20]))
        assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10


def test_a_module_in_training_mode_is_refused():
    net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 1)).double()
    with pytest.raises(InputError, match=r"layer '1' \(Dropout\).*module\.eval\(\)"):
        shapgov.explain(net.train(), np.zeros((2, 3)), background=np.ones((3, 3)))


class _Noisy(nn.Module):
    """A custom layer whose forward branches on the mode, as dropout does."""

    def forward(self, x):
        return x + 1.0 if self.training else x


@pytest.mark.parametrize(
    ("layer", "name"),
    [(lambda: nn.BatchNorm1d(4), "BatchNorm1d"), (_Noisy, "_Noisy"), (nn.RReLU, "RReLU")],
)
def test_any_layer_that_behaves_differently_in_training_is_refused_by_name(layer, name):
    inner = nn.Sequential(nn.Linear(3, 4), layer())
    net = nn.Sequential(inner, nn.Linear(4, 1)).double()
    X = np.random.default_rng(6).normal(size=(8, 3))
    with pytest.raises(InputError, match=rf"layer '0\.1' \({name}\).*module\.eval\(\)"):
        shapgov.explain(net, X[:2], background=X[2:])
    e = shapgov.explain(net.eval(), X[:2], background=X[2:])
    assert e.additivity.status == "pass"


def test_a_layer_in_training_mode_whose_source_cannot_be_read_is_refused():
    hidden = type("Hidden", (nn.Module,), {"forward": lambda self, x: x})  # no source
    net = nn.Sequential(nn.Linear(3, 1), hidden()).double()
    X = np.random.default_rng(8).normal(size=(6, 3))
    with pytest.raises(InputError, match=r"'1' \(Hidden\) may behave .*module\.eval\(\)"):
        shapgov.explain(net, X[:2], background=X[2:])


class _Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.out = nn.Linear(4, 5), nn.Linear(5, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.inp(x)))


@pytest.mark.parametrize(
    "build",
    [
        lambda: nn.Sequential(
            nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.SiLU(), nn.Linear(6, 1)
        ),
        lambda: nn.Sequential(nn.Linear(4, 5), nn.ReLU6(), nn.Linear(5, 1)),  # Kernel
        _Plain,
    ],
)
def test_a_fresh_module_in_training_mode_without_dropout_or_batch_norm_is_explained(build):
    """Issue 30, item 11: a freshly built network is in training mode; without a layer that
    behaves differently there, it is explained exactly, mode untouched."""
    torch.manual_seed(7)
    net = build().double()
    assert net.training
    X = np.random.default_rng(7).normal(size=(30, 4))
    rows, bg = X[:5], X[5:17]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        e = shapgov.explain(net, rows, background=bg)
    assert net.training and e.additivity.status == "pass"
    ref, base = brute_force_shapley(_own(net), pd.DataFrame(rows), pd.DataFrame(bg))
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


def test_sequential_classifier_float32_in_probability_space():
    torch.manual_seed(1)
    X, y = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0))[:, :5].astype(np.float32)
    net = nn.Sequential(nn.Linear(5, 6), nn.GELU(), nn.Linear(6, 1), nn.Sigmoid())
    net = _fit(net, X, y[:, None].astype(np.float32), nn.BCELoss())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = shapgov.explain(net, X[:6], background=X[::40])
        p = shapgov.explain(net, X[:6], background=X[::40], output="probability")
    assert e.link.name == "logit"
    assert e.additivity.applied["model_output_dtype"] == "float32"
    assert np.allclose(
        p.values.sum(1) + p.expected_value,
        net(torch.as_tensor(X[:6])).detach().numpy()[:, 0],
        atol=1e-6,
    )


def test_softmax_head_gives_per_class_margins():
    torch.manual_seed(4)
    X, _ = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0))[:, :5]
    labels = np.digitize(X[:, 0], [-0.5, 0.5])
    net = nn.Sequential(nn.Linear(5, 8), nn.ELU(), nn.Linear(8, 3), nn.Softmax(dim=1)).double()
    net = _fit(net, X, torch.as_tensor(labels), lambda p, t: nn.functional.nll_loss(p.log(), t))
    e = shapgov.explain(net, X[:4], background=X[::50])
    assert e.link.name == "softmax" and e.values.shape == (4, 5, 3)
    inner = nn.Sequential(*list(net)[:-1])
    ref, _ = brute_force_shapley(_own(inner), pd.DataFrame(X[:4]), pd.DataFrame(X[::50]))
    assert np.max(np.abs(e.values - ref)) <= 1e-10


@pytest.mark.parametrize("act", [nn.SELU, nn.SiLU])
def test_the_seeds_selu_and_swish_networks_pass_where_shaps_deep_explainer_misses(act):
    """The seed's SHAP reference: Keras/DeepExplainer values on SELU and Swish networks
    fail additivity. shapgov's DeepLIFT (20 columns: beyond the exact budget) keeps
    summation-to-delta for every activation; shap's DeepExplainer (test-only oracle)
    misses on the same float32 network when it does not know the activation."""
    torch.manual_seed(5)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 20)).astype(np.float32)
    y = (np.tanh(X[:, :4].sum(1)) + X[:, 4] * X[:, 5]).astype(np.float32)
    net = nn.Sequential(nn.Linear(20, 32), act(), nn.Linear(32, 32), act(), nn.Linear(32, 1))
    net = _fit(net, X, y[:, None], nn.MSELoss())
    rows, bg = X[:20], X[200:300]
    e = shapgov.explain(net, rows, background=bg)
    assert e.vertices[0].method == "approximate"  # DeepLIFT, 20 columns
    assert e.additivity.status == "pass"
    with torch.no_grad():
        out = net(torch.as_tensor(rows)).numpy()[:, 0]
    theirs = shap.DeepExplainer(net, torch.as_tensor(bg))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = np.asarray(theirs.shap_values(torch.as_tensor(rows), check_additivity=False))
    gap = np.abs(values.reshape(len(rows), -1).sum(1) + np.ravel(theirs.expected_value)[0] - out)
    ours = np.abs(e.values.sum(1) + e.expected_value - out)
    assert ours.max() <= 1e-5  # the network computes in float32
    print(f"{act.__name__}: shap DeepExplainer gap {gap.max():.3g}, shapgov {ours.max():.2g}")
    if act is nn.SiLU:
        assert gap.max() > 100 * ours.max()  # the seed's failure, reproduced


def test_a_multi_output_regression_head_is_explained_per_output():
    torch.manual_seed(6)
    X, y = _diabetes()
    target = np.column_stack([y, y**2])
    net = nn.Sequential(nn.Linear(6, 8), nn.SiLU(), nn.Linear(8, 2)).double()
    net = _fit(net, X, target, nn.MSELoss())
    rows, bg = X[:4], X[::30]
    e = shapgov.explain(net, rows, background=bg)
    assert e.values.shape == (4, 6, 2) and e.additivity.status == "pass"
    ref, base = brute_force_shapley(_own(net), pd.DataFrame(rows), pd.DataFrame(bg))
    assert np.max(np.abs(e.values - ref)) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


class _EntityEmbeddingNet(nn.Module):
    """Columns 1 and 3 hold category codes, looked up in embeddings; 0, 2, 4 are numbers."""

    def __init__(self, activation):
        super().__init__()
        self.region = nn.Embedding(4, 3)
        self.product = nn.Embedding(5, 2)
        self.body = nn.Sequential(nn.Linear(8, 16), activation(), nn.Linear(16, 1))

    def forward(self, x):
        parts = [x[:, [0, 2, 4]], self.region(x[:, 1].long()), self.product(x[:, 3].long())]
        return self.body(torch.cat(parts, dim=1))


def _coded(n=600, seed=7):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 1] = rng.integers(0, 4, n)
    X[:, 3] = rng.integers(0, 5, n)
    y = X[:, 0] + np.sin(X[:, 1]) + X[:, 2] * (X[:, 3] > 2) + rng.normal(scale=0.1, size=n)
    return X, y


@pytest.mark.parametrize("act", [nn.ReLU, nn.SELU, nn.SiLU])
def test_entity_embeddings_exact_per_original_column_and_deeplift_additive(act):
    torch.manual_seed(7)
    X, y = _coded()
    net = _fit(_EntityEmbeddingNet(act).double(), X, y[:, None], nn.MSELoss())
    rows, bg = X[:5], X[300:330]
    e = shapgov.explain(net, rows, background=bg)
    assert e.explainers == {"torchnetwork": "deep"} and e.values.shape == (5, 5)
    ref, base = brute_force_shapley(_own(net), pd.DataFrame(rows), pd.DataFrame(bg))
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    d = shapgov.explain(
        net, X[:40], background=bg, explainer_options={"deep": {"method": "deeplift"}}
    )
    out = _own(net)(pd.DataFrame(X[:40]))[:, 0]
    assert np.max(np.abs(d.values.sum(1) + d.expected_value - out)) <= 1e-10
    bad = rows.copy()
    bad[0, 1] = 9  # not a code of the region embedding
    with pytest.raises(InputError, match="embedding of 4 codes"):
        shapgov.explain(net, bad, background=bg)
