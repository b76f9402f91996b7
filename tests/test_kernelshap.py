"""Kernel SHAP core: exact mode against brute force, sampling mode's convergence and
efficiency, closed forms, and bad model output."""

from __future__ import annotations

from itertools import combinations, pairwise

import numpy as np
import pytest
from oracles import brute_force_shapley, shapley_by_definition
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.svm import SVR

from shapgov.errors import ExactBudgetError, InputError, ModelOutputError
from shapgov.explainers.coalition_sampling import sample_coalitions
from shapgov.explainers.kernelshap import kernel_shap


def _diabetes(columns: int = 8):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:, :columns], y


MODELS = {
    "svr": lambda X, y: SVR(C=50).fit(X, y).predict,
    "knn": lambda X, y: KNeighborsRegressor(7).fit(X, y).predict,
    # two outputs: a nonlinear one and a product of columns
    "multi-output": lambda X, y: (
        lambda d: np.column_stack(
            [np.tanh(10 * np.asarray(d)[:, 0]) * 3, np.asarray(d)[:, 1] * np.asarray(d)[:, 2] * 50]
        )
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("dedupe", [True, False])
def test_exact_mode_equals_brute_force(name, dedupe):
    X, y = _diabetes()
    f = MODELS[name](X, y)
    rows, bg = X.iloc[:6], X.iloc[::25]
    got = kernel_shap(f, rows, bg, dedupe=dedupe, progress=False)
    ref, base = brute_force_shapley(f, rows, bg)
    assert got.exact and got.std_error is None
    assert np.max(np.abs(got.values - ref)) <= 1e-10
    assert np.max(np.abs(got.base - base)) <= 1e-10
    if dedupe:  # "sex" has two values: agreeing background rows need half the coalitions
        assert got.n_evaluations < len(rows) * 2**8 * len(bg)


def test_exact_mode_on_arrays_with_grouped_players_and_threads():
    X, y = _diabetes()
    f = SVR(C=50).fit(X.to_numpy(), y).predict
    rows, bg = X.to_numpy()[:5], X.to_numpy()[::30]
    player = np.array([0, 0, 1, 2, 3, 3, 4, -1])  # column 7 is never varied
    one = kernel_shap(f, rows, bg, player=player, n_jobs=1, progress=False)
    two = kernel_shap(f, rows, bg, player=player, n_jobs=2, batch_rows=500, progress=False)
    assert np.array_equal(one.values, two.values)
    # brute force over the 5 players; column 7 always comes from the row
    groups = [[0, 1], [2], [3], [4, 5], [6]]
    v = {}
    for size in range(6):
        for coalition in combinations(range(5), size):
            cols = [c for j in coalition for c in groups[j]] + [7]
            hybrid = np.repeat(bg[None], len(rows), axis=0)
            hybrid[:, :, cols] = rows[:, None, cols]
            v[frozenset(coalition)] = (
                f(hybrid.reshape(-1, 8)).reshape(len(rows), -1).mean(1)[:, None]
            )
    ref = shapley_by_definition(v, 5)
    assert np.max(np.abs(one.values - ref)) <= 1e-10


def test_linear_model_gets_the_closed_form():
    X, y = _diabetes(10)
    model = LinearRegression().fit(X, y)
    rows, bg = X.iloc[:7], X.iloc[100:160]
    got = kernel_shap(model.predict, rows, bg, progress=False)
    expected = (rows - bg.mean()).to_numpy() * model.coef_
    assert np.max(np.abs(got.values[:, :, 0] - expected)) <= 1e-10


@pytest.mark.parametrize(
    "budgets",
    [pytest.param((60, 240), id="60-240"), pytest.param((60, 240, 800), marks=pytest.mark.slow)],
)
def test_sampling_converges_and_keeps_efficiency_exactly(budgets):
    X, y = _diabetes(10)
    f = SVR(C=50).fit(X, y).predict
    rows, bg = X.iloc[:8], X.iloc[::40]
    exact = kernel_shap(f, rows, bg, progress=False).values
    total = exact.sum(axis=1)
    errors = []
    for budget in budgets:
        got = kernel_shap(
            f, rows, bg, mode="sampling", n_samples=budget, random_state=3, progress=False
        )
        assert not got.exact and got.std_error.shape == got.values.shape
        assert np.max(np.abs(got.values.sum(axis=1) - total)) <= 1e-10
        errors.append(np.abs(got.values - exact).mean())
    assert all(a > b for a, b in pairwise(errors))
    # reproducible with a seed
    again = kernel_shap(f, rows, bg, mode="sampling", n_samples=240, random_state=3)
    first = kernel_shap(f, rows, bg, mode="sampling", n_samples=240, random_state=3)
    assert np.array_equal(again.values, first.values)


@pytest.mark.parametrize(
    "n_rows", [pytest.param(8, id="8-rows"), pytest.param(20, marks=pytest.mark.slow)]
)
def test_standard_errors_track_the_actual_error(n_rows):
    X, y = _diabetes(10)
    f = SVR(C=50).fit(X, y).predict
    rows, bg = X.iloc[:n_rows], X.iloc[::40]
    exact = kernel_shap(f, rows, bg, progress=False).values
    got = kernel_shap(f, rows, bg, mode="sampling", n_samples=300, random_state=0)
    ratio = np.sqrt(np.mean((got.values - exact) ** 2)) / np.sqrt(np.mean(got.std_error**2))
    assert 0.5 < ratio < 2.0


def test_sample_weights_carry_each_sizes_kernel_mass_exactly():
    """Fixed pairs per size, weights kernel x (pairs in the size / pairs drawn): each size's
    weights sum to its Shapley kernel mass ``(p-1) / (s (p-s))`` for every seed."""
    for p in (9, 10):
        kernel = np.array([0.0] + [(p - 1) / (s * (p - s)) for s in range(1, p)] + [0.0])
        for seed in range(20):
            sample = sample_coalitions(p, 20 + 2 * p, seed)
            sizes = sample.masks.sum(axis=1).astype(int)
            total = np.zeros(p + 1)
            np.add.at(total, sizes, sample.weights)
            np.testing.assert_allclose(total[1:p], kernel[1:p], rtol=1e-12)
            assert sample.n_coalitions <= 20 + 2 * p - 2
            assert len({m.tobytes() for m in sample.masks.astype(bool)}) == sample.n_coalitions


def test_bad_model_output_and_budgets_are_typed_errors():
    X, _ = _diabetes(5)
    rows, bg = X.iloc[:3], X.iloc[:10]
    with pytest.raises(ModelOutputError, match="shape"):
        kernel_shap(lambda d: np.zeros(3), rows, bg)
    with pytest.raises(ModelOutputError, match="NaN or inf"):
        kernel_shap(lambda d: np.full(len(d), np.inf), rows, bg)
    with pytest.raises(ModelOutputError, match="not numeric"):
        kernel_shap(lambda d: np.array(["a"] * len(d)), rows, bg)
    with pytest.raises(ExactBudgetError, match="mode='sampling'"):
        kernel_shap(lambda d: np.zeros(len(d)), rows, bg, mode="exact", max_exact_players=3)
    with pytest.raises(InputError, match="background is empty"):
        kernel_shap(lambda d: np.zeros(len(d)), rows, bg.iloc[:0])
    with pytest.raises(InputError, match="mode"):
        kernel_shap(lambda d: np.zeros(len(d)), rows, bg, mode="fast")


def test_a_background_that_does_not_fit_x_is_a_typed_error_that_names_the_column():
    import pandas as pd

    from shapgov.errors import ColumnMismatchError

    X = pd.DataFrame(
        {"a": [1.0, 2.0], "b": pd.array([1, 2], dtype="Int64"), "c": pd.Categorical(["x", "y"])}
    )

    def f(d):
        return d["a"].to_numpy(float) + d["b"].astype(float).to_numpy()

    with pytest.raises(ColumnMismatchError, match=r"lacks X's columns \['b'\]"):
        kernel_shap(f, X, X.drop(columns="b"))
    with pytest.raises(ColumnMismatchError, match="background as a DataFrame"):
        kernel_shap(f, X, X.to_numpy())
    for bad in (["zz"], [1.5]):  # not an integer: no Int64 value holds it
        bg = pd.DataFrame({"a": [1.0], "b": bad, "c": ["x"]})
        with pytest.raises(InputError, match=r"background column 'b' .* X's dtype Int64"):
            kernel_shap(f, X, bg)
    with pytest.raises(ColumnMismatchError, match="X has 3 columns"):
        kernel_shap(lambda a: a.sum(axis=1), np.ones((2, 3)), np.ones((4, 2)))
    # a float background of whole numbers takes X's Int64 and explains as usual
    bg = pd.DataFrame({"a": [0.0], "b": [1.0], "c": ["x"]})
    got = kernel_shap(f, X, bg)
    assert np.allclose(got.values[:, :, 0].sum(axis=1), f(X) - f(bg.astype(X.dtypes)))
