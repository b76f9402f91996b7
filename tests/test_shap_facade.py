"""``shapgov.shap``: shap's TreeExplainer API on shapgov's engine, against shap itself
(shapes, ``expected_value`` conventions, values where shap is exact) and against brute
force (the interventional game, where shap's values carry float32 rounding or worse)."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
import shap  # the test extra's oracle: a broken install fails here
from oracles import brute_force_shapley
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import shapgov.shap as gshap
from shapgov.errors import (
    AdditivityError,
    InputError,
    ModelOutputError,
    ShapOptionError,
    UnsupportedModelError,
)
from shapgov.shap.common import additivity_error_type
from shapgov.shap.explanation import Explanation, make_explanation


def _tables():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    Xb, yb = load_breast_cancer(return_X_y=True, as_frame=True)
    Xi, yi = load_iris(return_X_y=True, as_frame=True)
    return (X, y), (Xb.iloc[:, :8], yb), (Xi, yi)


def _cases():
    (X, y), (Xb, yb), (Xi, yi) = _tables()
    quiet = {"n_estimators": 6, "verbose": -1}
    return {
        "lightgbm-regression": (lightgbm.LGBMRegressor(**quiet).fit(X, y), X),
        "lightgbm-binary": (lightgbm.LGBMClassifier(**quiet).fit(Xb, yb), Xb),
        "lightgbm-multiclass": (lightgbm.LGBMClassifier(**quiet).fit(Xi, yi), Xi),
        "forest-binary": (
            RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(Xb, yb),
            Xb,
        ),
        "extra-trees-multiclass": (
            ExtraTreesClassifier(n_estimators=3, max_depth=4, random_state=0).fit(Xi, yi),
            Xi,
        ),
        "tree-binary": (DecisionTreeClassifier(max_depth=4, random_state=0).fit(Xb, yb), Xb),
        "gbm-binary": (GradientBoostingClassifier(n_estimators=5).fit(Xb, yb), Xb),
        "forest-regression": (
            RandomForestRegressor(n_estimators=3, max_depth=5, random_state=0).fit(X, y),
            X,
        ),
        "hist-gbm-regression": (HistGradientBoostingRegressor(max_iter=5).fit(X, y), X),
    }


CASES = _cases()


def _raw(model):
    """The output shap's TreeExplainer explains by default (its 'raw' output)."""
    if isinstance(model, lightgbm.LGBMModel):
        return lambda d: np.asarray(model.predict(d, raw_score=True))
    if isinstance(model, (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier)):
        return lambda d: model.predict_proba(d)
    if hasattr(model, "decision_function"):
        return lambda d: model.decision_function(d)
    return lambda d: model.predict(d)


@pytest.mark.parametrize("name", sorted(CASES))
def test_path_dependent_shapes_and_values_are_shaps(name):
    """shap computes the path-dependent game natively in float64 on these models: the
    facade returns its shapes, its expected_value convention and its values."""
    model, X = CASES[name]
    rows = X.iloc[::37][:5]  # rows of every class (iris is sorted by class)
    theirs, ours = shap.TreeExplainer(model), gshap.TreeExplainer(model)
    a, b = theirs.shap_values(rows), ours.shap_values(rows)
    assert np.shape(a) == np.shape(b)
    assert np.shape(theirs.expected_value) == np.shape(ours.expected_value)
    assert type(np.asarray(theirs.expected_value).ravel()[0]) is type(
        np.asarray(ours.expected_value).ravel()[0]
    )
    assert np.max(np.abs(np.asarray(a) - b)) <= 1e-10
    assert np.max(np.abs(np.asarray(theirs.expected_value) - ours.expected_value)) <= 1e-10


# one case per output convention (one margin, K margins, two-class probability trees,
# K probability trees, a scikit-learn boosting margin); regression forests are covered by
# the forest test below, the regression boosters by the path-dependent grid
INTERVENTIONAL = [
    "lightgbm-binary",
    "lightgbm-multiclass",
    "forest-binary",
    "extra-trees-multiclass",
    "gbm-binary",
]


@pytest.mark.parametrize("name", INTERVENTIONAL)
def test_interventional_values_are_exact_and_shaped_as_shaps(name):
    model, X = CASES[name]
    rows, data = X.iloc[::50][:3], X.iloc[5::7][:20]
    theirs, ours = shap.TreeExplainer(model, data), gshap.TreeExplainer(model, data)
    a, b = theirs.shap_values(rows), ours.shap_values(rows)
    assert np.shape(a) == np.shape(b)
    assert np.shape(theirs.expected_value) == np.shape(ours.expected_value)
    ref, base = brute_force_shapley(_raw(model), rows, data)
    ref = ref[..., 0] if np.ndim(b) == 2 else ref
    assert np.max(np.abs(b - ref)) <= 1e-10
    assert np.max(np.abs(np.ravel(ours.expected_value) - np.ravel(base))) <= 1e-10


def test_shaps_interventional_forest_values_are_off_brute_force():
    """A measured difference: shap 0.51's interventional TreeExplainer on a
    RandomForestRegressor adds up yet is far from the Shapley values (brute force)."""
    model, X = CASES["forest-regression"]
    rows, data = X.iloc[:3], X.iloc[100:120]
    ref, _ = brute_force_shapley(model.predict, rows, data)
    theirs = shap.TreeExplainer(model, data).shap_values(rows)
    ours = gshap.TreeExplainer(model, data).shap_values(rows)
    assert np.max(np.abs(ours - ref[..., 0])) <= 1e-10
    print(
        "shap's interventional forest values off brute force by", np.abs(theirs - ref[..., 0]).max()
    )


def test_interaction_values_and_the_explanation_object():
    model, X = CASES["lightgbm-binary"]
    rows = X.iloc[:4]
    ours = gshap.TreeExplainer(model)
    inter = ours.shap_interaction_values(rows)
    theirs = shap.TreeExplainer(model).shap_interaction_values(rows)
    assert inter.shape == np.shape(theirs)
    assert np.max(np.abs(inter - theirs)) <= 1e-10
    e = ours(rows)
    assert isinstance(e, shap.Explanation)  # shap's plots take it
    assert e.feature_perturbation == "tree_path_dependent"
    assert e.values.shape == (4, X.shape[1]) and e.base_values.shape == (4,)
    assert list(e.feature_names) == list(X.columns)
    assert np.allclose(e.values.sum(axis=1) + e.base_values, model.predict(rows, raw_score=True))
    assert e[0, "mean radius"].values == e.values[0, 0]


def test_without_shap_the_explanation_has_shaps_attributes(monkeypatch):
    import shapgov.shap.explanation as explanation

    monkeypatch.setattr(explanation, "shap_installed", lambda: False)
    values = np.arange(12.0).reshape(2, 3, 2)
    e = make_explanation(values, np.zeros((2, 2)), np.ones((2, 3)), ["a", "b", "c"],
                         feature_perturbation="interventional")  # fmt: skip
    assert isinstance(e, Explanation) and e.shape == (2, 3, 2) and len(e) == 2
    assert e[1, "b"].values.tolist() == [8.0, 9.0] and e[1, "b"].feature_names == "b"
    assert e[:, ["a", "c"], 1].values.tolist() == [[1.0, 5.0], [7.0, 11.0]]
    assert e[:, 1].data.tolist() == [1.0, 1.0] and e[0].values.shape == (3, 2)
    with pytest.raises(InputError, match="no feature named"):
        e[:, "d"]


def test_beyond_shap_a_pipeline_is_explained_exactly():
    """shap's TreeExplainer refuses a Pipeline; the facade explains it in one game."""
    (X, y), _, _ = _tables()
    forest = RandomForestRegressor(n_estimators=3, max_depth=4, random_state=0)
    model = make_pipeline(StandardScaler(), forest).fit(X, y)
    rows, data = X.iloc[:3], X.iloc[100:130]
    with pytest.raises(Exception):  # noqa: B017 - shap's own refusal, whatever its type
        shap.TreeExplainer(model, data)
    e = gshap.TreeExplainer(model, data)
    ref, base = brute_force_shapley(model.predict, rows, data)
    assert np.max(np.abs(e.shap_values(rows) - ref[..., 0])) <= 1e-10
    assert abs(e.expected_value - base[0]) <= 1e-10


def test_arguments_without_a_shapgov_meaning_are_typed_errors():
    model, X = CASES["lightgbm-binary"]
    with pytest.raises(ShapOptionError, match="Saabas"):
        gshap.TreeExplainer(model).shap_values(X.iloc[:2], approximate=True)
    with pytest.raises(ShapOptionError, match="Saabas"):
        gshap.TreeExplainer(model, approximate=True)
    with pytest.raises(ModelOutputError, match="log loss"):
        gshap.TreeExplainer(model, X.iloc[:20], model_output="log_loss")
    # y= is unused outside a loss explanation, in shap and here
    explainer = gshap.TreeExplainer(model)
    np.testing.assert_array_equal(
        explainer.shap_values(X.iloc[:2], y=np.zeros(2)), explainer.shap_values(X.iloc[:2])
    )
    with pytest.raises(ShapOptionError, match="LightGBM's num_iteration"):
        explainer.shap_values(X.iloc[:2], tree_limit=3)
    with pytest.raises(ShapOptionError, match="interventional game only"):
        gshap.TreeExplainer(model, model_output="probability")
    assert issubclass(ShapOptionError, ValueError)


def test_a_withheld_explanation_raises_shaps_own_error_type():
    from shap.utils._exceptions import ExplainerError

    kind = additivity_error_type()
    assert issubclass(kind, AdditivityError) and issubclass(kind, ExplainerError)
    assert additivity_error_type() is kind  # one class per process


def test_probability_output_equals_brute_force_through_predict_proba():
    model, X = CASES["lightgbm-binary"]
    rows, data = X.iloc[:3], X.iloc[100:130]
    e = gshap.TreeExplainer(model, data, model_output="probability")
    ref, base = brute_force_shapley(lambda d: model.predict_proba(d)[:, 1], rows, data)
    assert np.max(np.abs(e.shap_values(rows) - ref[..., 0])) <= 1e-10
    assert abs(e.expected_value - base[0]) <= 1e-10
    theirs = shap.TreeExplainer(model, data, model_output="probability").shap_values(rows)
    assert np.shape(theirs) == (3, X.shape[1])
    assert isinstance(pd.DataFrame(rows), pd.DataFrame)


def test_linear_explainer_is_shaps_with_its_masker_sampling():
    """Raw data is an Independent masker of at most 100 rows, drawn as shap draws them:
    the facade's values and expected value equal shap's exactly (binary, multiclass)."""
    from sklearn.linear_model import LogisticRegression, Ridge

    (X, y), (Xb, yb), (Xi, yi) = _tables()
    for model, data in (
        (Ridge().fit(X, y), X),
        (LogisticRegression(max_iter=2000).fit(Xb, yb), Xb),
        (LogisticRegression(max_iter=500).fit(Xi, yi), Xi),
    ):
        theirs, ours = shap.LinearExplainer(model, data), gshap.LinearExplainer(model, data)
        a, b = theirs.shap_values(data.iloc[:4]), ours.shap_values(data.iloc[:4])
        assert np.shape(a) == np.shape(b)
        assert np.shape(theirs.expected_value) == np.shape(ours.expected_value)
        assert np.max(np.abs(a - b)) <= 1e-10
        assert np.max(np.abs(np.asarray(theirs.expected_value) - ours.expected_value)) <= 1e-10
    with pytest.raises(ShapOptionError, match="correlation"):
        gshap.LinearExplainer(model, data, feature_perturbation="correlation_dependent")
    with pytest.raises(ShapOptionError, match="Gaussian"):
        gshap.LinearExplainer(model, (data.mean().to_numpy(), np.cov(data.T.to_numpy())))


def test_kernel_explainer_is_exact_where_shaps_enumerates_and_takes_kmeans():
    from sklearn.neural_network import MLPRegressor

    (X, y), _, _ = _tables()
    X = X.iloc[:, :6]  # 2**6 coalitions: brute force stays cheap
    mlp = MLPRegressor(hidden_layer_sizes=(5,), max_iter=300, random_state=0).fit(X, y)
    rows = X.iloc[:2]
    for data in (X.iloc[:20], shap.kmeans(X, 5)):
        ours = gshap.KernelExplainer(mlp.predict, data)
        b = ours.shap_values(rows)
        # 2**6 coalitions: shap enumerates them all with nsamples=2048, so it is exact too
        a = shap.KernelExplainer(mlp.predict, data).shap_values(rows, nsamples=2048)
        assert np.max(np.abs(a - b)) <= 1e-10
        if isinstance(data, pd.DataFrame):
            ref, base = brute_force_shapley(mlp.predict, rows, data)
        else:  # Shapley values are linear in the game: weigh one game per centre
            centres = pd.DataFrame(data.data, columns=X.columns)
            w = np.asarray(data.weights) / np.sum(data.weights)
            parts = [brute_force_shapley(mlp.predict, rows, centres.iloc[[b]]) for b in range(5)]
            ref = sum(wb * p[0] for wb, p in zip(w, parts, strict=True))
            base = sum(wb * p[1] for wb, p in zip(w, parts, strict=True))
        assert np.max(np.abs(b - ref[..., 0])) <= 1e-10
        assert abs(ours.expected_value - base[0]) <= 1e-10
    with pytest.raises(ShapOptionError, match="identity' and 'logit"):
        gshap.KernelExplainer(mlp.predict, X.iloc[:5], link="probit")
    with pytest.raises(UnsupportedModelError, match="predict"):
        gshap.KernelExplainer(object(), X.iloc[:5])


def test_the_dispatching_explainer_agrees_with_shaps_on_trees_linear_models_and_functions():
    """shap.Explainer(model, masker)(X) picks tree, linear or exact; the facade plays one
    game: equal to shap's linear values, to shap's tree values up to their float32
    rounding, and to brute force. A function is compared with brute force only: shap's
    exact explainer takes 5 s on it here (KernelExplainer's test compares with shap)."""
    from sklearn.linear_model import Ridge
    from sklearn.neural_network import MLPRegressor

    (X, y), _, _ = _tables()
    ridge = Ridge().fit(X, y)
    small = X.iloc[:, :6]  # the function's game: 2**6 coalitions for brute force
    mlp = MLPRegressor(hidden_layer_sizes=(5,), max_iter=300, random_state=0).fit(small, y)
    trees = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(small, y)
    for model, masker, f in (
        (trees, small.iloc[:20], lambda d: trees.predict(d, raw_score=True)),
        (ridge, X, ridge.predict),
        (mlp.predict, small.iloc[:10], mlp.predict),
    ):
        rows = X.iloc[:3][list(masker.columns)]
        ours = gshap.Explainer(model, masker)(rows)
        assert ours.feature_perturbation == "interventional"
        assert ours.values.shape == (3, masker.shape[1])
        if model is not mlp.predict:
            theirs = shap.Explainer(model, masker)(rows)
            assert ours.values.shape == theirs.values.shape
            assert np.max(np.abs(ours.values - theirs.values)) <= 1e-5  # shap's trees: float32
        if model is ridge:
            assert np.max(np.abs(ours.values - theirs.values)) <= 1e-10
        bg = masker if len(masker) <= 100 else None
        if bg is not None:
            ref, base = brute_force_shapley(f, rows, bg)
            assert np.max(np.abs(ours.values - ref[..., 0])) <= 1e-10
            assert np.max(np.abs(ours.base_values - base[0])) <= 1e-10
    with pytest.raises(ShapOptionError, match="algorithm"):
        gshap.Explainer(trees, X, algorithm="deep-magic")


def test_shaps_other_names_pass_through_so_one_import_is_the_whole_switch():
    assert gshap.plots is shap.plots and gshap.kmeans is shap.kmeans
    assert gshap.maskers.Independent is shap.maskers.Independent
    with pytest.raises(AttributeError, match="no 'not_a_shap_name'"):
        gshap.not_a_shap_name  # noqa: B018


def test_sparse_and_masker_backgrounds_are_their_rows():
    import scipy.sparse

    model, X = CASES["lightgbm-regression"]
    rows, bg = X.iloc[:3].to_numpy(), X.iloc[100:120].to_numpy()
    dense = gshap.TreeExplainer(model, bg).shap_values(rows)
    sparse = gshap.TreeExplainer(model, scipy.sparse.csr_matrix(bg))
    np.testing.assert_array_equal(sparse.shap_values(scipy.sparse.csr_matrix(rows)), dense)
    masked = gshap.TreeExplainer(model, shap.maskers.Independent(bg))
    np.testing.assert_array_equal(masked.shap_values(rows), dense)


def test_kernel_and_dispatching_explainers_play_shaps_logit_link():
    """link="logit" (a name or shap.links.logit) is shap's game logit(mean_b f): equal to
    shap's KernelExplainer where it enumerates every coalition (4 columns), log-odds that
    rebuild the probabilities through the sigmoid; a sparse or unnamed table is matched
    to a DataFrame background by position, as shap does."""
    import scipy.sparse
    from scipy.special import expit
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True, as_frame=True)
    svm = SVC(probability=True, random_state=0).fit(X, y)
    background, rows = X.iloc[::10], X.iloc[3::25]
    theirs = shap.KernelExplainer(svm.predict_proba, background, link="logit")
    expected = np.asarray(theirs.shap_values(rows, nsamples=100))
    for link in ("logit", shap.links.logit):
        ours = gshap.KernelExplainer(svm.predict_proba, background, link=link, nsamples=100)
        values = ours.shap_values(rows)
        assert np.max(np.abs(values - expected)) <= 1e-10
        assert np.max(np.abs(ours.expected_value - theirs.expected_value)) <= 1e-10
        rebuilt = expit(values.sum(axis=1) + ours.expected_value)
        assert np.max(np.abs(rebuilt - svm.predict_proba(rows))) <= 1e-12
        assert ours.last_explanation_.game["link"] == "logit"
    called = gshap.KernelExplainer(svm.predict_proba, background, link="logit")(rows)
    assert np.max(np.abs(called.values - expected)) <= 1e-10
    sparse = ours.shap_values(scipy.sparse.csr_matrix(rows.to_numpy()))
    assert np.max(np.abs(sparse - expected)) <= 1e-10
    dispatched = gshap.Explainer(svm.predict_proba, background, link=shap.links.logit)(rows)
    assert np.max(np.abs(dispatched.values - expected)) <= 1e-10
