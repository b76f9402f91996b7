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
from shapgov.errors import DuplicateExplainerError, MatrixError, PluginError
from shapgov.explainers.base import Explainer
from shapgov.registry import explainer_classes, make_plugin_manager


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


def test_third_party_selection_wins_over_the_builtin_one():
    """The built-in selection (trylast) would answer "linear" for Ridge; a third party
    answering the same hook must win, on the manager passed to explain()."""
    from sklearn.linear_model import Ridge

    class Chooser:
        @hookimpl
        def shapgov_select_explainer(self, vertex, row, explainers):
            return "kernel" if type(vertex.estimator).__name__ == "Ridge" else None

    X = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=list("abc"))
    model = Ridge().fit(X, X["a"] + X["b"])
    assert shapgov.explain(model, X).explainers == {"ridge": "linear"}
    pm = make_plugin_manager()
    pm.register(Chooser(), name="chooser")
    e = shapgov.explain(model, X, plugin_manager=pm)
    assert e.explainers == {"ridge": "kernel"}
    chooser = next(p for p in e.plugins if p["name"] == "chooser")
    assert chooser["hooks"] == ["shapgov_select_explainer"]
    assert "selection" not in {p["name"] for p in e.plugins}  # the built-in was not taken
    # the default manager never saw the plugin: nothing is fetched from a global
    assert shapgov.explain(model, X).explainers == {"ridge": "linear"}


def test_explanation_records_the_plugins_that_took_part():
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = pd.DataFrame(np.random.default_rng(1).normal(size=(40, 3)), columns=list("abc"))
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, X["a"])
    e = shapgov.explain(model, X)
    hooks = {p["name"]: p["hooks"] for p in e.plugins}
    assert hooks["sklearn_blueprints"] == ["shapgov_decompose"]
    assert hooks["sklearn_columns"] == ["shapgov_column_origins"]
    assert hooks["linear"] == ["shapgov_explainers"]
    assert hooks["matrix"] == ["shapgov_matrix_rows"]
    assert all(p["distribution"] == "shapgov" for p in e.plugins)
    assert "tree" not in hooks and "kernel" not in hooks  # registered, but took no part


def test_matrix_rows_are_read_once_per_manager():
    from sklearn.linear_model import Ridge

    calls = []

    class Rows:
        @hookimpl
        def shapgov_matrix_rows(self):
            calls.append(1)
            return []

    pm = make_plugin_manager()
    pm.register(Rows(), name="rows")
    X = pd.DataFrame(np.random.default_rng(4).normal(size=(20, 2)), columns=list("ab"))
    model = Ridge().fit(X, X["a"])
    for _ in range(3):
        shapgov.explain(model, X, plugin_manager=pm)
    shapgov.matrix(plugin_manager=pm)
    assert calls == [1]
    pm.register(Rows(), name="more-rows")  # the plugins changed: read again
    shapgov.explain(model, X, plugin_manager=pm)
    assert calls == [1, 1, 1]


def test_a_misspelled_hook_is_refused():
    class Typo:
        @hookimpl
        def shapgov_decompse(self, model, context):
            return None

    pm = make_plugin_manager()
    pm.register(Typo(), name="typo")
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(PluginError, match=r"shapgov_decompse.*shapgov_decompose"):
        shapgov.explain(lambda d: np.asarray(d)[:, 0], X, plugin_manager=pm)
    with pytest.raises(PluginError, match=r"plugin_manager must be a pluggy\.PluginManager"):
        shapgov.explain(lambda d: np.asarray(d)[:, 0], X, plugin_manager=object())


class Squash:
    """An elementwise transformer shapgov's own plugins cannot trace."""

    n_features_in_ = 3

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.tanh(np.asarray(X, dtype=float))


def test_third_party_column_origins_make_a_pipeline_additive():
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    class Tracer:
        @hookimpl
        def shapgov_column_origins(self, transformer, n_features_in, context):
            return np.arange(n_features_in) if isinstance(transformer, Squash) else None

    X = pd.DataFrame(np.random.default_rng(2).normal(size=(60, 3)), columns=list("abc"))
    model = make_pipeline(Squash(), Ridge()).fit(X, X["a"] * X["b"])
    pm = make_plugin_manager()
    pm.register(Tracer(), name="tracer")
    e = shapgov.explain(model, X.iloc[:5], background=X.iloc[10:30], plugin_manager=pm)
    assert e.explainers == {"pipeline/ridge": "linear"}  # decomposed, no fallback
    assert {"name": "tracer", "hooks": ["shapgov_column_origins"]}.items() <= {
        k: v for p in e.plugins if p["name"] == "tracer" for k, v in p.items()
    }.items()
    ref, _ = brute_force_shapley(model.predict, X.iloc[:5], X.iloc[10:30])
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10


def test_third_party_tree_parser_and_model_preparation_are_used():
    from sklearn.ensemble import RandomForestRegressor

    from shapgov.opaque import PredictFunction
    from shapgov_plugins.tree_sklearn import shapgov_tree_ensemble as builtin_parse

    X = pd.DataFrame(np.random.default_rng(3).normal(size=(80, 3)), columns=list("abc"))
    forest = RandomForestRegressor(5, max_depth=3, random_state=0).fit(X, X["a"])
    parsed = []

    class Parser:
        @hookimpl
        def shapgov_tree_ensemble(self, model):
            parsed.append(type(model).__name__)
            return builtin_parse(model)

    class Preparer:
        @hookimpl
        def shapgov_prepare_model(self, model):
            if isinstance(model, dict) and "weights" in model:
                w = np.asarray(model["weights"], dtype=float)
                return PredictFunction(lambda a: np.asarray(a, dtype=float) @ w)
            return None

    pm = make_plugin_manager()
    pm.register(Parser(), name="parser")
    pm.register(Preparer(), name="preparer")
    e = shapgov.explain(forest, X.iloc[:4], background=X.iloc[20:40], plugin_manager=pm)
    assert parsed == ["RandomForestRegressor"]
    assert "shapgov_tree_ensemble" in next(p for p in e.plugins if p["name"] == "parser")["hooks"]
    ref, _ = brute_force_shapley(forest.predict, X.iloc[:4], X.iloc[20:40])
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    spec = {"weights": [1.0, -2.0, 0.5]}
    lin = shapgov.explain(spec, X.iloc[:4], background=X.iloc[20:40], plugin_manager=pm)
    expected = (X.iloc[:4] - X.iloc[20:40].mean()).to_numpy() * np.array([1.0, -2.0, 0.5])
    assert np.max(np.abs(lin.values - expected)) <= 1e-10


def test_every_hook_is_documented_and_tested():
    """After datasette's test_plugin_hooks_are_documented: every hook has :param: lines
    for its arguments and a :returns:, is named on the documentation's Plugins page, and
    some test implements it as a third party would."""
    import inspect
    from pathlib import Path

    from shapgov import hookspecs
    from shapgov.registry import hook_names

    root = Path(__file__).parent.parent
    page = (root / "docs" / "plugins.md").read_text()
    tests = "\n".join(f.read_text() for f in Path(__file__).parent.glob("*.py"))
    names = hook_names()
    assert len(names) == 9
    for name in names:
        spec = getattr(hookspecs, name)
        doc = inspect.getdoc(spec) or ""
        for arg in inspect.signature(spec).parameters:
            assert f":param {arg}:" in doc, f"{name} does not document {arg}"
        assert ":returns:" in doc, f"{name} does not document what it returns"
        assert f"`{name}`" in page, f"{name} is not in docs/plugins.md"
        assert f"def {name}(" in tests, f"no test implements {name}"


def test_duplicate_explainer_names_fail_loudly():
    class Impostor(Explainer):
        name = "linear"

        def explain(self, request):
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

    pm = make_plugin_manager()
    pm.register(Plugin(), name="dup-rows")
    with pytest.raises(MatrixError, match="contributed twice"):
        shapgov.matrix(plugin_manager=pm)
    assert "linear" in set(shapgov.matrix()["id"])  # the default manager is untouched


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
