"""The logit game link: ``v(S) = logit(mean_b f(x_S, b))`` (shap's Kernel ``link="logit"``).

Oracles: the Shapley formula over every coalition of that game, evaluated through the
model's own ``predict_proba`` (tests/oracles.py's coalition values, logit taken here);
shap's ``KernelExplainer(link="logit")`` where its budget enumerates every coalition; a
planted game whose values are known by hand (probabilities exactly 0 and 1).
"""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
import shap  # the test extra's oracle
from oracles import coalition_values, shapley_by_definition
from scipy.special import expit, logit
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import shapgov
from shapgov.errors import InputError, ModelOutputError
from shapgov.explainers.game_links import PROBABILITY_FLOOR
from shapgov.opaque import BlackBox
from shapgov.serving import ServedExplainer


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, RandomForestClassifier, LogisticRegression]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    logistic = LogisticRegression(max_iter=500).fit(X, y)
    return X, forest, logistic


def linked_brute_force(f, X, background):
    """Shapley values and base of ``logit(mean_b f(x_S, b))`` by the definition (the
    documented clip at 1e-15, shap's, applied)."""
    v = coalition_values(f, X, background)
    clip = PROBABILITY_FLOOR
    linked = {s: logit(np.clip(p, clip, 1 - clip)) for s, p in v.items()}
    return shapley_by_definition(linked, X.shape[1]), linked[frozenset()][0]


def test_the_linked_game_equals_the_shapley_formula_and_rebuilds_probabilities(iris):
    X, _, logistic = iris
    rows, background = X.iloc[::15], X.iloc[1::7]
    e = shapgov.explain(logistic.predict_proba, rows, background=background, game_link="logit")
    ref, base = linked_brute_force(logistic.predict_proba, rows, background)
    assert e.values.shape == (len(rows), 4, 3)
    assert np.max(np.abs(e.values - ref)) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    # the values are log-odds: the sigmoid of their sum is the model's probability
    rebuilt = expit(e.expected_value + e.values.sum(axis=1))
    assert np.max(np.abs(rebuilt - logistic.predict_proba(rows))) <= 1e-12
    assert e.additivity.status == "pass"
    assert e.link.name == "logit"
    assert e.game["link"] == "logit"
    assert "logit(mean_b f(x_S, b))" in e.game["description"]
    # and it is another game than shapgov's margin game of a logistic model
    margin = shapgov.explain(logistic, rows, background=background)
    assert np.max(np.abs(margin.values - e.values)) > 0.05


def test_shaps_kernel_logit_is_the_same_game_where_it_enumerates(iris):
    X, forest, _ = iris
    rows, background = X.iloc[5::30], X.iloc[2::9]
    ours = shapgov.explain(forest.predict_proba, rows, background=background, game_link="logit")
    theirs = shap.KernelExplainer(forest.predict_proba, background, link="logit")
    values = theirs.shap_values(rows, nsamples=2**4)  # 4 features: every coalition
    assert np.max(np.abs(np.asarray(values) - ours.values)) <= 1e-10
    assert np.max(np.abs(theirs.expected_value - ours.expected_value)) <= 1e-10


def test_probabilities_of_exactly_zero_and_one_are_clipped_as_documented():
    """A planted game: f = 1 if x0 > 0 else 0, every background row has x0 < 0. For a
    row with x0 > 0 only x0 matters: v(empty) = logit(eps), v({x0}) = logit(1 - eps) with
    shap's clip eps = 1e-15, so phi_0 = 2 log((1 - eps) / eps) = 69.08 and the other
    players get exactly 0. The policy judges the rebuild against the clipped
    probabilities and says so."""

    def f(table: pd.DataFrame) -> np.ndarray:
        p = (np.asarray(table, dtype=float)[:, 0] > 0).astype(float)  # x0; shap sends arrays
        return np.column_stack([1 - p, p])

    rng = np.random.default_rng(3)
    background = pd.DataFrame(rng.normal(size=(6, 3)), columns=["x0", "x1", "x2"])
    background["x0"] = -np.abs(background["x0"]) - 0.1
    rows = background.iloc[:2].copy()
    rows["x0"] = [0.5, 2.0]
    e = shapgov.explain(f, rows, background=background, game_link="logit")
    eps, top = 1e-15, 1 - 1e-15  # top: the float nearest 1 - 1e-15, as the clip holds it
    hand = np.log(top / (1 - top)) - np.log(eps / (1 - eps))
    assert np.allclose(e.values[:, 0, 1], hand, rtol=0, atol=1e-9)
    assert np.allclose(e.values[:, 0, 0], -hand, rtol=0, atol=1e-9)
    assert np.all(e.values[:, 1:, :] == 0)
    assert np.all(np.isfinite(e.values))
    assert np.allclose(e.expected_value, [np.log(top / (1 - top)), np.log(eps / (1 - eps))])
    assert 69.07 < hand < 69.08
    assert np.max(np.abs(expit(e.expected_value + e.values.sum(axis=1)) - f(rows))) <= 2 * eps
    assert e.additivity.status == "pass"
    assert e.additivity.applied["probability_clip"] == [eps, top]
    assert np.array_equal(e.prediction, np.clip(f(rows), eps, top))
    # shap plays the same clipped game
    theirs = shap.KernelExplainer(f, background, link="logit")
    assert np.max(np.abs(np.asarray(theirs.shap_values(rows)) - e.values)) <= 1e-9


def test_sampling_mode_estimates_the_linked_game_with_calibrated_errors():
    rng = np.random.default_rng(0)
    cols = [f"x{i}" for i in range(16)]
    X = pd.DataFrame(rng.normal(size=(300, 16)), columns=cols)
    w = rng.normal(size=16)

    def f(table: pd.DataFrame) -> np.ndarray:
        a = table.to_numpy()
        p = expit(a @ w + a[:, 0] * a[:, 1] - np.abs(a[:, 2]))
        return np.column_stack([1 - p, p])

    rows, background = X.iloc[:6], X.iloc[100:112]
    exact = shapgov.explain(
        f,
        rows,
        background=background,
        game_link="logit",
        explainer_options={"kernel": {"mode": "exact", "max_exact_players": 16}},
    )
    options = {"kernel": {"n_samples": 600, "random_state": 4}}
    sampled = shapgov.explain(
        f, rows, background=background, game_link="logit", explainer_options=options
    )
    again = shapgov.explain(
        f, rows, background=background, game_link="logit", explainer_options=options
    )
    assert np.array_equal(sampled.values, again.values)  # seeded
    assert np.max(np.abs(sampled.expected_value - exact.expected_value)) <= 1e-12
    # efficiency holds exactly; the estimates are within their standard errors
    assert sampled.additivity.status == "pass"
    z = np.abs(sampled.values - exact.values) / sampled.std_error
    assert np.mean(z < 1.96) >= 0.85
    assert np.max(np.abs(sampled.values - exact.values)) < 0.5 * np.max(np.abs(exact.values))


def test_a_binary_classifier_explained_as_a_whole_in_probability_space(iris):
    X, _, _ = iris
    y = (X["petal length (cm)"] > 4).astype(int)
    model = LogisticRegression(max_iter=500).fit(X, y)
    rows, background = X.iloc[::20], X.iloc[3::11]
    e = shapgov.explain(
        model, rows, background=background, opaque=True, output="probability", game_link="logit"
    )
    ref, base = linked_brute_force(lambda t: model.predict_proba(t)[:, 1:], rows, background)
    assert np.max(np.abs(e.values - ref[..., 0])) <= 1e-10
    served = ServedExplainer(
        model, background=background, opaque=True, output="probability", game_link="logit"
    )
    out = served.explain(rows)
    shap_cols = [c for c in out.columns if c.startswith("shap_")]
    assert np.max(np.abs(out[shap_cols].to_numpy() - e.values)) <= 1e-10
    assert np.allclose(out["base_value"], base[0])
    assert served.game_["link"] == "logit"


def test_a_game_link_is_refused_where_it_has_no_meaning(iris):
    X, _, logistic = iris
    y = (X["sepal length (cm)"] > 5.8).astype(int)
    booster = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    with pytest.raises(InputError, match="explained as a whole"):  # a tree vertex
        shapgov.explain(booster, X.iloc[:3], background=X.iloc[:10], game_link="logit")
    binary = LogisticRegression(max_iter=500).fit(X, y)
    in_log_odds = BlackBox(binary, link="logit")  # a whole model explained in its margin
    with pytest.raises(InputError, match="output='probability'"):
        shapgov.explain(in_log_odds, X.iloc[:3], background=X.iloc[:10], game_link="logit")
    with pytest.raises(InputError, match="path-dependent game has no background"):
        shapgov.explain(
            booster, X.iloc[:3], feature_perturbation="tree_path_dependent", game_link="logit"
        )
    with pytest.raises(InputError, match="game_link must be one of"):
        shapgov.explain(logistic.predict_proba, X.iloc[:3], game_link="probit")
    with pytest.raises(ModelOutputError, match="range over"):
        shapgov.explain(
            logistic.decision_function, X.iloc[:3], background=X.iloc[:10], game_link="logit"
        )


def test_a_logged_set_of_the_linked_game_reproduces_from_the_registry(store, iris):
    """The game link is recorded with the game and replayed: reproduce() re-explains the
    registered model from the registry alone and gets the approved values back."""
    import mlflow

    import shapgov.mlflow
    from shapgov.mlflow.reproduce import reproduce

    X, _, _ = iris
    y = (X["petal width (cm)"] > 1.2).astype(int)
    model = LogisticRegression(max_iter=500).fit(X, y)
    with mlflow.start_run():
        logged = shapgov.mlflow.explain_and_log(
            model,
            X.iloc[::6],
            background=X.iloc[1::10],
            opaque=True,
            output="probability",
            game_link="logit",
            analyses=False,
        )
        info = mlflow.sklearn.log_model(model, name="model", input_example=X.iloc[:3])
    assert logged.game["link"] == "logit"
    mv = mlflow.register_model(info.model_uri, "iris-linked")
    result = reproduce("iris-linked", mv.version)
    assert result.reproduced and result.max_abs_difference <= 1e-12, result
