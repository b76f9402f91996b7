"""Keras 3 networks (PyTorch backend) and wrapped networks inside scikit-learn pipelines:
exact against brute force through the models' own predict."""

from __future__ import annotations

import keras  # keras, scikeras, skorch and torch come with the test extra
import numpy as np
import pandas as pd
import pytest
import scikeras.wrappers
import skorch
import torch
from oracles import brute_force_shapley
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import shapgov
from shapgov.errors import FallbackWarning

#: Keras 3.15 on the PyTorch backend computes Dense layers in float32 even under a float64
#: policy: ``keras.src.backend.common.dtypes.result_type(torch.float64, torch.float64)``
#: returns "float32", so ``ops.matmul`` casts both operands down (3.4e-6 off X @ W on
#: |x| ~ 10). Its own predict, the oracle here, is exact to float32 rounding only; shapgov's
#: float64 kernels are held to 1e-10 against float64 PyTorch networks in test_torch.py.
KERAS_TOL = 64 * float(np.finfo(np.float32).eps)

ACTIVATIONS = [
    "relu",
    "selu",
    "silu",
    "gelu",
    "elu",
    "leaky_relu",
    "mish",
    "softplus",
    "hard_silu",
    "sigmoid",
    "tanh",
]


@pytest.fixture(autouse=True)
def _float64():
    before = keras.config.floatx()
    keras.config.set_floatx("float64")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_floatx(before)


def _diabetes(m=6):
    X, y = load_diabetes(return_X_y=True)
    return X[:, :m] * 10, (y - y.mean()) / y.std()


def _sequential(activation, m=6, head=None):
    layers = [
        keras.Input((m,)),
        keras.layers.Dense(12, activation=activation),
        keras.layers.BatchNormalization(),
        keras.layers.Dropout(0.1),
        keras.layers.Dense(12),
        keras.layers.Activation(activation),
        keras.layers.Dense(1, activation=head),
    ]
    return keras.Sequential(layers)


def _fit(model, X, y, loss="mse"):
    model.compile(optimizer="adam", loss=loss)
    model.fit(X, y, epochs=3, batch_size=64, verbose=0)
    return model


def _own(model):
    return lambda d: np.asarray(model.predict(d.to_numpy(dtype=float), verbose=0))


#: the default run's twin of the activation test: one piecewise-linear, one smooth
#: non-monotonic and one saturating activation; the other eight run with ``-m slow``
DEFAULT_ACTIVATIONS = ("relu", "gelu", "tanh")


@pytest.mark.parametrize(
    "activation",
    [
        a if a in DEFAULT_ACTIVATIONS else pytest.param(a, marks=pytest.mark.slow)
        for a in ACTIVATIONS
    ],
)
def test_every_keras_activation_exact_against_brute_force(activation):
    X, y = _diabetes()
    model = _fit(_sequential(activation), X, y)
    rows, bg = X[:4], X[::30]
    e = shapgov.explain(model, rows, background=bg)
    assert e.explainers == {"kerasnetwork": "deep"} and e.additivity.status == "pass"
    ref, base = brute_force_shapley(_own(model), pd.DataFrame(rows), pd.DataFrame(bg))
    scale = max(1.0, np.abs(_own(model)(pd.DataFrame(bg))).max())
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= KERAS_TOL * scale
    assert np.max(np.abs(e.expected_value - base)) <= KERAS_TOL * scale


def test_keras_sigmoid_head_is_the_logit_link_and_deeplift_is_additive():
    X, y = _diabetes(8)
    model = _fit(_sequential("selu", m=8, head="sigmoid"), X, (y > 0).astype(float), "bce")
    e = shapgov.explain(model, X[:5], background=X[::40])
    assert e.link.name == "logit"
    logit = lambda d: np.log(_own(model)(d) / (1 - _own(model)(d)))  # noqa: E731
    ref, _ = brute_force_shapley(logit, pd.DataFrame(X[:5]), pd.DataFrame(X[::40]))
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= KERAS_TOL * max(1.0, np.abs(ref).max())
    d = shapgov.explain(
        model, X[:20], background=X[::40], explainer_options={"deep": {"method": "deeplift"}}
    )
    assert d.additivity.status == "pass"


def test_a_functional_chain_is_read_like_a_sequential():
    X, y = _diabetes()
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="swish")(inputs)
    hidden = keras.layers.BatchNormalization()(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(8, "gelu")(hidden)))
    model = _fit(model, X, y)
    e = shapgov.explain(model, X[:4], background=X[::30])
    assert e.explainers == {"kerasnetwork": "deep"}
    ref, _ = brute_force_shapley(_own(model), pd.DataFrame(X[:4]), pd.DataFrame(X[::30]))
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= KERAS_TOL * max(1.0, np.abs(ref).max())


def test_an_unreadable_keras_model_falls_back_to_kernel():
    X, y = _diabetes(4)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(5, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Concatenate()([hidden, inputs])))
    model = _fit(model, X, y)
    with pytest.warns(FallbackWarning):
        e = shapgov.explain(model, X[:3], background=X[::50])
    ref, _ = brute_force_shapley(_own(model), pd.DataFrame(X[:3]), pd.DataFrame(X[::50]))
    # Kernel evaluates the hybrids in other batches than the oracle: float32 Dense layers
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= KERAS_TOL * max(1.0, np.abs(ref).max())


def _frame():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5].copy()
    X["band"] = np.where(X["age"] > 0, "old", "young")
    return X, (y - y.mean()) / y.std()


def _columns():
    return ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "sex", "bmi", "bp", "s1"]),
            ("cat", OneHotEncoder(sparse_output=False), ["band"]),
        ]
    )


def test_a_scikeras_network_behind_a_column_transformer_explains_original_columns():
    X, y = _frame()

    def build():
        return keras.Sequential(
            [keras.Input((7,)), keras.layers.Dense(8, activation="silu"), keras.layers.Dense(1)]
        )

    reg = scikeras.wrappers.KerasRegressor(model=build, loss="mse", epochs=3, verbose=0)
    pipe = make_pipeline(_columns(), reg).fit(X, y.to_numpy())
    rows, bg = X[:4], X[100:130]
    e = shapgov.explain(pipe, rows, background=bg)
    assert e.feature_names == list(X.columns) and e.explainers == {
        "pipeline/kerasregressor": "deep"
    }
    ref, _ = brute_force_shapley(pipe.predict, rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= KERAS_TOL * max(1.0, np.abs(ref).max())


def test_a_skorch_network_behind_a_column_transformer_explains_original_columns():
    X, y = _frame()
    module = torch.nn.Sequential(
        torch.nn.Linear(7, 8), torch.nn.GELU(), torch.nn.Linear(8, 1)
    ).double()
    net = skorch.NeuralNetRegressor(module, max_epochs=3, verbose=0, train_split=None)
    pipe = make_pipeline(_columns(), net)
    pipe.fit(X, y.to_numpy()[:, None])
    rows, bg = X[:4], X[100:130]
    e = shapgov.explain(pipe, rows, background=bg)
    assert e.explainers == {"pipeline/neuralnetregressor": "deep"}
    ref, _ = brute_force_shapley(pipe.predict, rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
