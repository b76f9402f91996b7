"""Deep explainer: exact MLP mode against brute force and a numpy reference; DeepLIFT's
local accuracy and its exactness on linear networks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oracles import brute_force_shapley
from scipy.special import logit
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shapgov
from shapgov.errors import ExactBudgetError, ModelOutputError, UnsupportedModelError
from shapgov.explainers.coalitions import coalition_masks
from shapgov.explainers.deeplift import deeplift_values
from shapgov.explainers.kernels.mlp import mlp_coalition_margins
from shapgov.explainers.network import Network


def _diabetes(columns: int = 7):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:, :columns], y


def _mlp(activation: str, hidden=(6, 5)):
    X, y = _diabetes()
    mlp = MLPRegressor(
        hidden_layer_sizes=hidden, activation=activation, max_iter=500, random_state=0
    )
    return make_pipeline(StandardScaler(), mlp).fit(X, y), X


def naive_margins(mlp, X, B, player, n_players):
    """Reference: build every hybrid row and run the network forward."""
    masks = coalition_masks(n_players)
    out = np.empty((len(X), len(B), masks.shape[0], mlp.coefs_[-1].shape[1]))
    for s, mask in enumerate(masks):
        take = np.where(player >= 0, mask[np.maximum(player, 0)] > 0, True)
        for i, x in enumerate(X):
            hybrid = np.where(take, x, B)
            out[i, :, s] = mlp.predict(hybrid).reshape(len(hybrid), -1)  # its own forward
    return out


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_coalition_margin_kernel_matches_the_numpy_reference(activation):
    model, X = _mlp(activation)
    mlp, Z = model[-1], model[0].transform(X)
    player = np.array([0, 1, 1, 2, 3, -1, 4])
    ours = mlp_coalition_margins(Network.from_sklearn(mlp), Z[:3], Z[50:60], player, 5)
    ref = naive_margins(mlp, Z[:3], Z[50:60], player, 5)
    assert np.max(np.abs(ours - ref)) <= 1e-12 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_exact_mode_equals_brute_force(activation):
    model, X = _mlp(activation)
    rows, bg = X.iloc[:5], X.iloc[::20]
    e = shapgov.explain(model, rows, background=bg)
    assert e.explainers == {"pipeline/mlpregressor": "deep"}
    ref, base = brute_force_shapley(model.predict, rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10


def test_exact_probability_output_of_a_classifier():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6]
    clf = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(7,), max_iter=800, random_state=0)
    ).fit(X, y)
    rows, bg = X.iloc[::90], X.iloc[::45]
    e = shapgov.explain(clf, rows, background=bg, output="probability")
    ref, _ = brute_force_shapley(lambda d: clf.predict_proba(d)[:, 1], rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    margin = shapgov.explain(clf, rows, background=bg)
    assert margin.link.name == "logit"
    ref, _ = brute_force_shapley(lambda d: logit(clf.predict_proba(d)[:, 1]), rows, bg)
    assert np.max(np.abs(margin.values - ref[:, :, 0])) <= 1e-10


@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
def test_deeplift_is_locally_accurate_against_the_background_mean(activation):
    model, X = _mlp(activation, hidden=(16, 8))
    mlp, Z = model[-1], model[0].transform(X)
    network = Network.from_sklearn(mlp)
    phi, base = deeplift_values(network, Z[:40], Z[::10])
    f = mlp.predict(Z[:40])[:, None]  # the model's own output
    assert np.max(np.abs(base + phi.sum(axis=1) - f)) <= 1e-10
    assert np.allclose(base, mlp.predict(Z[::10]).mean())


def test_deeplift_is_exact_on_a_linear_network_and_through_explain():
    model, X = _mlp("identity")
    rows, bg = X.iloc[:6], X.iloc[::15]
    options = {"deep": {"method": "deeplift"}}
    e = shapgov.explain(model, rows, background=bg, explainer_options=options)
    ref, _ = brute_force_shapley(model.predict, rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    nonlinear, X = _mlp("tanh")
    e = shapgov.explain(nonlinear, rows, background=bg, explainer_options=options)
    # approximate values, exact sum: base + sum(values) is the network's own output
    assert np.max(np.abs(e.explained_output[:, 0] - nonlinear.predict(rows))) <= 1e-10


def test_deep_refusals():
    model, X = _mlp("relu")
    with pytest.raises(ExactBudgetError, match="max_exact_players=4"):
        shapgov.explain(
            model,
            X.iloc[:3],
            background=X.iloc[:20],
            explainer_options={"deep": {"method": "exact", "max_exact_players": 4}},
        )
    X2, y2 = load_breast_cancer(return_X_y=True, as_frame=True)
    clf = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(4,), max_iter=300, random_state=0)
    ).fit(X2, y2)
    with pytest.raises(UnsupportedModelError, match="margin only"):
        shapgov.explain(clf, X2.iloc[:3], background=X2.iloc[:20], output="probability")


def test_the_tutorial_example_two_exact_ways():
    """The original request: diabetes, StandardScaler + MLPRegressor(5, logistic), X_test
    explained against the whole X_train; Deep (MLP vertex) and Kernel (whole pipeline)."""
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.33, random_state=42)
    mlp = MLPRegressor(
        hidden_layer_sizes=(5,),
        activation="logistic",
        max_iter=10000,
        learning_rate="invscaling",
        random_state=0,
    )
    model = make_pipeline(StandardScaler(), mlp).fit(X_train, y_train)
    deep = shapgov.explain(model, X_test, background=X_train)
    kernel = shapgov.explain(
        model,
        X_test,
        background=X_train,
        opaque=True,
        explainer_options={"kernel": {"progress": False}},
    )
    assert deep.explainers == {"pipeline/mlpregressor": "deep"}
    assert kernel.explainers == {"blackbox": "kernel"}
    assert np.max(np.abs(deep.values - kernel.values)) <= 1e-10
    ref, _ = brute_force_shapley(model.predict, pd.DataFrame(X_test[:3]), pd.DataFrame(X_train))
    assert np.max(np.abs(deep.values[:3] - ref[:, :, 0])) <= 1e-10


def test_bad_predict_functions_through_explain():
    X, _ = _diabetes(4)
    with pytest.raises(ModelOutputError, match="shape"):
        shapgov.explain(lambda a: np.zeros((len(a), 2, 2)), X.iloc[:3], background=X.iloc[:9])
    with pytest.raises(ModelOutputError, match="NaN"):
        shapgov.explain(
            lambda a: np.log(a.to_numpy()[:, 0] * 0 - 1), X.iloc[:3], background=X.iloc[:9]
        )
    with pytest.raises(ModelOutputError, match=r"failed on .* rows: .*Error"):  # X is a frame
        shapgov.explain(lambda a: a[:, 0], X.iloc[:3], background=X.iloc[:9])
