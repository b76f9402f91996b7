"""Generated from the matrix: every supported cell runs end to end on a real fitted model."""

from __future__ import annotations

import numpy as np
import pytest
from cases import CASES, EXTRA_CASES
from oracles import brute_force_shapley

import shapgov
from shapgov.planning.compatibility import TASKS

MATRIX = shapgov.matrix()
SUPPORTED = [
    (row["id"], task) for _, row in MATRIX.iterrows() for task in TASKS if row[task] == "supported"
]


def test_the_matrix_has_supported_cells():
    assert len(SUPPORTED) >= 10


@pytest.mark.parametrize(("row_id", "task"), SUPPORTED, ids=[f"{r}-{t}" for r, t in SUPPORTED])
def test_supported_cell_matches_brute_force(row_id, task):
    assert (row_id, task) in CASES, f"matrix cell {row_id}/{task} is supported but untested"
    case = CASES[(row_id, task)]()
    _check(case, expected_task=task)
    e = shapgov.explain(case.model, case.X, background=case.background)
    used = {p.matrix_row for p in e.vertices} | {c["matrix_row"] for c in e.composites}
    assert row_id in used


@pytest.mark.parametrize("name", sorted(EXTRA_CASES))
def test_extra_blueprint_matches_brute_force(name):
    _check(EXTRA_CASES[name]())


def _check(case, expected_task=None):
    e = shapgov.explain(case.model, case.X, background=case.background)  # default options
    assert e.feature_perturbation == "interventional"  # one game: every vertex plays it
    if expected_task:
        assert e.task == expected_task
    if case.reference is None:
        ref, base = brute_force_shapley(case.explained, case.X, case.background)
    else:
        ref, base = case.reference()
    values = e.values if e.values.ndim == 3 else e.values[:, :, None]
    assert values.shape == ref.shape
    assert np.max(np.abs(values - ref)) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    # local accuracy in the explained space, against the model's own output
    out = np.asarray(case.explained(case.X), dtype=float).reshape(len(case.X), -1)
    assert np.max(np.abs(e.explained_output - out)) <= case.output_atol


TREE_ROWS = ("lightgbm", "xgboost", "random_forest", "sklearn_gbm", "sklearn_hist_gbm")
TREE_CELLS = [(r, t) for r, t in SUPPORTED if r in TREE_ROWS]


@pytest.mark.parametrize(("row_id", "task"), TREE_CELLS, ids=[f"{r}-{t}" for r, t in TREE_CELLS])
def test_tree_cell_without_background_plays_the_path_dependent_game(row_id, task):
    """A pure-tree blueprint explained without a background: tree_path_dependent, equal to
    the path-dependent value function by brute force (and to LightGBM's own pred_contrib)."""
    from cases import lightgbm_contrib
    from oracles import brute_force_path_dependent

    from shapgov_plugins.tree import tree_ensemble

    case = CASES[(row_id, task)]()
    e = shapgov.explain(case.model, case.X)
    assert e.feature_perturbation == "tree_path_dependent"
    assert e.game["n_background"] is None
    ref, base = brute_force_path_dependent(tree_ensemble(case.model), case.X.to_numpy(float))
    values = e.values if e.values.ndim == 3 else e.values[:, :, None]
    assert np.max(np.abs(values - ref)) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    if row_id == "lightgbm":
        native, _ = lightgbm_contrib(case.model, case.X)
        assert np.max(np.abs(values - native)) <= 1e-10
