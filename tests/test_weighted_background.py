"""Weighted backgrounds: ``background_weights`` changes the game of every vertex the same
way, so integer weights equal repeating background rows, through every explainer."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
from oracles import brute_force_shapley
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

import shapgov
from shapgov.errors import InputError


def _repeated(bg: pd.DataFrame, counts: np.ndarray) -> pd.DataFrame:
    return bg.iloc[np.repeat(np.arange(len(bg)), counts)]


@pytest.fixture(scope="module")
def blend():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5]
    model = VotingRegressor(
        [
            ("lgbm", lightgbm.LGBMRegressor(n_estimators=20, num_leaves=8, verbose=-1)),
            ("ridge", Ridge()),
            (
                "mlp",
                make_pipeline(
                    StandardScaler(),
                    MLPRegressor(hidden_layer_sizes=(6,), max_iter=3000, random_state=0),
                ),
            ),
            ("svr", make_pipeline(StandardScaler(), SVR(C=30))),
        ]
    ).fit(X, y)
    counts = np.random.default_rng(0).integers(1, 4, 12)
    return model, X, X.iloc[::37].iloc[:12], counts


def test_weights_equal_repeated_rows_in_every_vertex(blend):
    model, X, bg, counts = blend
    rows = X.iloc[:4]
    weighted = shapgov.explain(model, rows, background=bg, background_weights=counts)
    assert sorted(weighted.explainers.values()) == ["deep", "kernel", "linear", "tree"]
    repeated = shapgov.explain(model, rows, background=_repeated(bg, counts))
    assert np.max(np.abs(weighted.values - repeated.values)) <= 1e-10
    assert np.max(np.abs(weighted.expected_value - repeated.expected_value)) <= 1e-10
    ref, base = brute_force_shapley(model.predict, rows, _repeated(bg, counts))
    assert np.max(np.abs(weighted.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(weighted.expected_value - base)) <= 1e-10
    assert weighted.game["background_weighted"] is True
    assert "weighted background rows" in weighted.game["description"]
    plain = shapgov.explain(model, rows, background=bg)
    assert plain.game["background_sha256"] != weighted.game["background_sha256"]


def test_weights_in_probability_space_and_interactions():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5]
    vote = VotingClassifier(
        [
            ("lgbm", lightgbm.LGBMClassifier(n_estimators=15, num_leaves=6, verbose=-1)),
            ("lr", make_pipeline(StandardScaler(), LogisticRegression())),
        ],
        voting="soft",
    ).fit(X, y)
    rows, bg = X.iloc[:3], X.iloc[::50]
    counts = np.random.default_rng(1).integers(1, 5, len(bg))
    w = shapgov.explain(vote, rows, background=bg, background_weights=counts, interactions=True)
    r = shapgov.explain(vote, rows, background=_repeated(bg, counts), interactions=True)
    assert np.max(np.abs(w.values - r.values)) <= 1e-12
    assert np.max(np.abs(w.interaction_values - r.interaction_values)) <= 1e-12


def test_deeplift_and_kernel_sampling_honour_the_weights(blend):
    model, X, bg, counts = blend
    rows = X.iloc[:4]
    options = {
        "deep": {"method": "deeplift"},
        "kernel": {"mode": "sampling", "n_samples": 40, "random_state": 3},
    }
    w = shapgov.explain(
        model, rows, background=bg, background_weights=counts, explainer_options=options
    )
    r = shapgov.explain(model, rows, background=_repeated(bg, counts), explainer_options=options)
    assert np.max(np.abs(w.values - r.values)) <= 1e-9
    assert np.max(np.abs(w.std_error - r.std_error)) <= 1e-9


def test_bad_weights_are_typed_errors(blend):
    model, X, bg, _ = blend
    for weights in ([1.0, 2.0], -np.ones(len(bg)), np.zeros(len(bg)), ["a"] * len(bg)):
        with pytest.raises(InputError, match="background_weights must be 12"):
            shapgov.explain(model, X.iloc[:2], background=bg, background_weights=weights)
    with pytest.raises(InputError, match="pass background= too"):
        shapgov.explain(model, X.iloc[:2], background_weights=np.ones(2))


def test_kmeans_summary_weights_are_cluster_sizes():
    from sklearn.cluster import KMeans

    X, _ = load_diabetes(return_X_y=True, as_frame=True)
    rows, weights = shapgov.summarize_background(
        X, n=15, method="kmeans", random_state=2, return_weights=True
    )
    assert weights.shape == (len(rows),) and weights.sum() == len(X)
    scaled = X / X.std(axis=0)
    km = KMeans(n_clusters=15, n_init=4, random_state=2).fit(scaled.to_numpy())
    assert len(rows) == 15  # no two clusters share their nearest real row here
    assert sorted(weights.astype(int)) == sorted(np.bincount(km.labels_, minlength=15))
    sample, equal = shapgov.summarize_background(X, n=10, return_weights=True)
    assert len(sample) == 10 and np.all(equal == len(X) / 10)
