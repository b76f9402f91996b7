"""The plugin registry: entry points, third-party plugins, duplicates, lazy loading."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from oracles import brute_force_shapley

import shapgov
from shapgov import hookimpl
from shapgov.errors import DuplicateExplainerError, MatrixError
from shapgov.explainers.base import Explainer
from shapgov.registry import explainer_classes, get_plugin_manager, make_plugin_manager


def test_builtins_register_through_entry_points():
    pm = make_plugin_manager()
    names = {name for name, _ in pm.list_name_plugin()}
    assert {"linear", "sklearn_blueprints", "lightgbm_blueprints", "matrix", "selection"} <= names
    assert make_plugin_manager(load_entry_points=False).get_plugins() == set()
    assert "linear" in explainer_classes(pm)


def test_third_party_plugin_adds_explainer_and_model_type(test_plugin):
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    y = X["a"] ** 2 - 2 * X["c"] ** 2 + rng.normal(scale=0.1, size=300)
    model = test_plugin.SquaresModel().fit(X, y)
    e = shapgov.explain(model, X.iloc[:5], background=X.iloc[100:130])
    assert e.explainers == {"squaresmodel": "additive-squares"}
    assert e.vertices[0].matrix_row == "test_squares"
    ref, _ = brute_force_shapley(model.predict, X.iloc[:5], X.iloc[100:130])
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert "test_squares" in set(shapgov.matrix()["id"])


def test_third_party_plugin_wins_over_builtin_selection(test_plugin):
    from sklearn.linear_model import Ridge

    class Chooser:
        @hookimpl
        def shapgov_select_explainer(self, vertex, row, explainers):
            return "additive-squares" if type(vertex.estimator).__name__ == "SquaresModel" else None

    get_plugin_manager().register(Chooser(), name="chooser")
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=list("abc"))
    e = shapgov.explain(Ridge().fit(X, X["a"]), X)  # built-in selection still answers for Ridge
    assert e.explainers == {"ridge": "linear"}


def test_duplicate_explainer_names_fail_loudly():
    class Impostor(Explainer):
        name = "linear"

        def explain(self, vertex, Z, Z_background, *, n_features):
            raise NotImplementedError

    class Plugin:
        @hookimpl
        def shapgov_explainers(self):
            return [Impostor]

    pm = make_plugin_manager()
    pm.register(Plugin(), name="impostor")
    with pytest.raises(DuplicateExplainerError, match="'linear' is registered twice"):
        explainer_classes(pm)


def test_duplicate_matrix_rows_fail_loudly():
    class Plugin:
        @hookimpl
        def shapgov_matrix_rows(self):
            return [
                {
                    "id": "linear",
                    "family": "x",
                    "kind": "vertex",
                    "explainer": "linear",
                    "classes": [],
                    "regression": "supported",
                    "binary": "n/a",
                    "multiclass": "n/a",
                }
            ]

    pm = get_plugin_manager()
    pm.register(Plugin(), name="dup-rows")
    try:
        with pytest.raises(MatrixError, match="contributed twice"):
            shapgov.matrix()
    finally:
        pm.unregister(name="dup-rows")


def test_import_is_lazy():
    code = (
        "import sys, shapgov; "
        "heavy = ('sklearn', 'pandas', 'shapgov_plugins', 'mlflow'); "
        "heavy = [m for m in heavy if m in sys.modules]; "
        "from shapgov.registry import get_plugin_manager; "
        "print(heavy, get_plugin_manager.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] 0"


def test_lightgbm_objectives_map_to_links():
    import lightgbm

    from shapgov.engine import decompose

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=list("abc"))
    cases = {
        "regression": (lightgbm.LGBMRegressor, X["a"], "identity", 1),
        "poisson": (lightgbm.LGBMRegressor, np.exp(X["a"]).round(), "log", 1),
        "binary": (lightgbm.LGBMClassifier, X["a"] > 0, "logit", 1),
        "multiclass": (lightgbm.LGBMClassifier, pd.cut(X["a"], 3, labels=False), "softmax", 3),
    }
    for objective, (cls, y, link, k) in cases.items():
        model = cls(objective=objective, n_estimators=3, verbose=-1).fit(X, y)
        for m in (model, model.booster_):
            bp = decompose(m)
            assert bp.node.link.name == link, objective
            assert bp.node.n_outputs == k
