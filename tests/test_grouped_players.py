"""Derived features as one player: the grouped game's exact Shapley values.

Oracles: brute force over every coalition of groups through the model's own predict
(interventional) and the trees' conditional expectations over coalitions of groups
(path-dependent), in tests/oracles.py.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from oracles import (
    brute_force_group_path_dependent,
    brute_force_group_shapley,
    brute_force_shapley,
)
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor, VotingRegressor
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import shapgov
from shapgov.errors import InputError
from shapgov.explainers.kernels.background_treeshap import background_shap
from shapgov.planning.players import Players
from shapgov_plugins.tree import tree_ensemble

GROUPS = {"sales": ["sales_lag_1", "sales_lag_7", "sales_roll_28"], "calendar": ["month", "dow"]}


def _sales(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Lags and a rolling mean of one series, calendar parts, two other drivers; the target
    has interactions inside the sales group and across groups."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=n)
    X = pd.DataFrame(
        {
            "price": rng.normal(size=n),
            "sales_lag_1": base + 0.3 * rng.normal(size=n),
            "month": rng.integers(1, 13, size=n).astype(float),
            "sales_lag_7": base + 0.5 * rng.normal(size=n),
            "promo": rng.integers(0, 2, size=n).astype(float),
            "sales_roll_28": base + 0.1 * rng.normal(size=n),
            "dow": rng.integers(0, 7, size=n).astype(float),
        }
    )
    y = (
        X.sales_lag_1 * X.sales_lag_7
        + 2 * X.promo * X.sales_roll_28
        + np.sin(X.month / 2) * X.price
        + 0.3 * X.dow
        + 0.1 * rng.normal(size=n)
    )
    return X, y.to_numpy()


def _positions(X: pd.DataFrame, players: Players) -> list[list[int]]:
    cols = list(X.columns)
    return [[cols.index(c) for c in members] for members in players.members]


def _check_against_brute_force(model, X, rows, bg, predict, *, tol=1e-10, **options):
    g = shapgov.explain_groups(model, rows, players=GROUPS, background=bg, **options)
    truth = brute_force_group_shapley(predict, rows, bg, _positions(X, g.players))[..., 0]
    assert g.values.shape == (len(rows), len(g.players))
    np.testing.assert_allclose(g.values, truth, rtol=0, atol=tol)
    # efficiency: base + sum of group values rebuilds the prediction
    np.testing.assert_allclose(g.base_value[0] + g.values.sum(axis=1), predict(rows), atol=tol)
    return g


def test_players_put_groups_first_by_column_and_check_their_members():
    X, _ = _sales(20)
    p = Players.resolve(X.columns, GROUPS)
    assert p.names == ("price", "sales", "calendar", "promo")
    assert p.members[1] == ("sales_lag_1", "sales_lag_7", "sales_roll_28")
    assert p.of_column.tolist() == [0, 1, 2, 1, 3, 1, 2]
    with pytest.raises(InputError, match="does not have"):
        Players.resolve(X.columns, {"g": ["nope"]})
    with pytest.raises(InputError, match="two player groups"):
        Players.resolve(X.columns, {"a": ["price"], "b": ["price", "promo"]})
    with pytest.raises(InputError, match="empty"):
        Players.resolve(X.columns, {"a": []})
    with pytest.raises(InputError, match="also a column"):
        Players.resolve(X.columns, {"promo": ["price"]})


def test_lightgbm_groups_equal_brute_force_over_groups():
    X, y = _sales()
    model = lgb.LGBMRegressor(n_estimators=60, num_leaves=15, verbose=-1).fit(X, y)
    rows, bg = X.iloc[:6], X.iloc[300:325]
    g = _check_against_brute_force(model, X, rows, bg, model.predict)
    # the groups interact inside and with the rest of the model: the member sums are
    # another game's values (and grouping changes the singletons' values too)
    assert {"sales", "calendar"} <= set(g.differing())
    by_column = shapgov.explain(model, rows, background=bg).values
    np.testing.assert_allclose(g.member_sums, g.players.sum_members(by_column[..., None])[..., 0])


def test_a_pipeline_with_one_hot_columns_plays_the_game_of_original_columns():
    """One original column encoded into several inputs is one player: its value is the
    grouped game's (this was a sum of per-input values before, off by ~1e-2 here)."""
    rng = np.random.default_rng(1)
    n = 400
    X = pd.DataFrame(
        {"c": rng.choice(list("abcd"), n), "x1": rng.normal(size=n), "x2": rng.normal(size=n)}
    )
    y = (X.c == "a") * X.x1 * 2 + (X.c == "b") * X.x2 + X.x1 * X.x2
    encode = ColumnTransformer(
        [("oh", OneHotEncoder(sparse_output=False), ["c"])], remainder="passthrough"
    )
    pipe = make_pipeline(encode, GradientBoostingRegressor(n_estimators=30, max_depth=4)).fit(X, y)
    rows, bg = X.iloc[:5], X.iloc[100:120]
    e = shapgov.explain(pipe, rows, background=bg)
    truth, _ = brute_force_shapley(pipe.predict, rows, bg)
    np.testing.assert_allclose(e.values, truth[..., 0], rtol=0, atol=1e-10)


def test_a_pipeline_groups_equal_brute_force_over_groups():
    X, y = _sales()
    pipe = make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=20, max_depth=6))
    pipe.fit(X, y)
    _check_against_brute_force(pipe, X, X.iloc[:5], X.iloc[200:220], pipe.predict)


def test_a_blender_groups_equal_brute_force_over_groups():
    """Trees, a linear model and an MLP (Kernel, exact over the 4 players) in one game."""
    X, y = _sales()
    blend = VotingRegressor(
        [
            ("gbm", lgb.LGBMRegressor(n_estimators=40, num_leaves=7, verbose=-1)),
            ("ridge", make_pipeline(StandardScaler(), Ridge())),
            (
                "mlp",
                make_pipeline(
                    StandardScaler(),
                    MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, random_state=0),
                ),
            ),
        ]
    ).fit(X, y)
    g = _check_against_brute_force(blend, X, X.iloc[:4], X.iloc[300:312], blend.predict)
    assert "sales" in g.differing()


def test_path_dependent_groups_equal_brute_force_over_groups():
    X, y = _sales(400)
    model = lgb.LGBMRegressor(n_estimators=25, num_leaves=8, verbose=-1).fit(X, y)
    g = shapgov.explain_groups(model, X.iloc[:5], players=GROUPS)
    assert g.game["feature_perturbation"] == "tree_path_dependent"
    ens = tree_ensemble(model)
    truth = brute_force_group_path_dependent(ens, X.iloc[:5].to_numpy(), _positions(X, g.players))
    np.testing.assert_allclose(g.values, truth[..., 0], rtol=0, atol=1e-10)


def test_symmetric_groups_of_a_predict_function_get_equal_values():
    """An opaque predict function (Kernel, exact over players): groups a and b play
    mirrored roles against the background, so their values are equal; z is a dummy."""

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return ((frame.a1 + frame.a2) * (frame.b1 + frame.b2)).to_numpy()

    row = pd.DataFrame({"a1": [1.0], "a2": [2.0], "b1": [2.0], "b2": [1.0], "z": [5.0]})
    bg = pd.DataFrame(
        {
            "a1": [0.0, -1.0],
            "a2": [-1.0, 0.0],
            "b1": [-1.0, 0.0],
            "b2": [0.0, -1.0],
            "z": [0.0, 1.0],
        }
    )
    g = shapgov.explain_groups(
        predict, row, players={"a": ["a1", "a2"], "b": ["b1", "b2"]}, background=bg
    )
    values = dict(zip(g.names, g.values[0], strict=True))
    assert values["a"] == pytest.approx(values["b"], abs=1e-12)
    assert values["a"] != pytest.approx(0.0)
    assert values["z"] == 0.0


def test_a_dummy_group_gets_exactly_zero():
    rng = np.random.default_rng(3)
    n = 300
    X = pd.DataFrame({c: rng.normal(size=n) for c in ["a1", "a2", "b1", "b2"]})
    X["z1"] = X["z2"] = 0.0  # constant in training: no tree splits on z, a dummy group
    y = (X.a1 + X.a2) * (X.b1 + X.b2)
    model = lgb.LGBMRegressor(n_estimators=50, num_leaves=15, verbose=-1).fit(X, y)
    row = pd.DataFrame(
        {"a1": [1.0], "a2": [1.0], "b1": [1.0], "b2": [1.0], "z1": [3.0], "z2": [-2.0]}
    )
    bg = pd.DataFrame(
        {"a1": [-1.0], "a2": [-1.0], "b1": [-1.0], "b2": [-1.0], "z1": [0.0], "z2": [0.0]}
    )
    g = shapgov.explain_groups(
        model, row, players={"a": ["a1", "a2"], "b": ["b1", "b2"], "z": ["z1", "z2"]}, background=bg
    )
    values = dict(zip(g.names, g.values[0], strict=True))
    assert values["z"] == 0.0
    # v({a}) and v({b}) are the model at mirrored points; the model is not exactly
    # symmetric, so compare with the brute-force values of the same model instead
    truth = brute_force_group_shapley(model.predict, row, bg, [[0, 1], [2, 3], [4, 5]])[0, :, 0]
    np.testing.assert_allclose(g.values[0], truth, atol=1e-12)


def test_background_kernel_with_players_equals_the_kernel_on_merged_columns():
    """Columns of one player that always agree (duplicated columns) are one column: the
    grouped kernel must give the plain kernel's value of the merged column."""
    X, y = _sales(300)
    model = lgb.LGBMRegressor(n_estimators=30, num_leaves=15, verbose=-1).fit(X, y)
    ens = tree_ensemble(model)
    rows, bg = X.to_numpy()[:10], X.to_numpy()[100:140]
    players = np.arange(X.shape[1])
    phi_grouped, base = background_shap(ens, rows, bg, players=players)
    phi, base2 = background_shap(ens, rows, bg)
    np.testing.assert_array_equal(phi_grouped, phi)
    np.testing.assert_array_equal(base, base2)
    with pytest.raises(InputError, match="one int"):
        background_shap(ens, rows, bg, players=np.zeros(3, dtype=int))
