"""The Kernel explainer inside blueprints: fallback vertices, black boxes, sampling."""

from __future__ import annotations

import warnings

import lightgbm
import numpy as np
import pandas as pd
import pytest
from oracles import brute_force_shapley
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_diabetes
from sklearn.ensemble import VotingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

import shapgov
from shapgov.errors import FallbackWarning, PerformanceWarning


def _data(columns: int = 6) -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:, :columns], y


class Squash(TransformerMixin, BaseEstimator):
    """A transformer shapgov cannot trace (no get_feature_names_out)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.tanh(np.asarray(X, dtype=float) * 10)


def test_blend_of_trees_and_a_kernel_vertex_equals_brute_force():
    X, y = _data()
    vote = VotingRegressor(
        [
            ("lgbm", lightgbm.LGBMRegressor(n_estimators=20, num_leaves=8, verbose=-1)),
            ("svr", make_pipeline(StandardScaler(), SVR(C=30))),
        ]
    ).fit(X, y)
    rows, bg = X.iloc[:5], X.iloc[::30]
    e = shapgov.explain(vote, rows, background=bg)
    assert sorted(e.explainers.values()) == ["kernel", "tree"]
    ref, base = brute_force_shapley(vote.predict, rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - base)) <= 1e-10
    assert e.std_error is None


def test_untraceable_pipeline_falls_back_to_a_black_box_with_a_warning():
    X, y = _data()
    model = make_pipeline(Squash(), Ridge()).fit(X, y)
    rows, bg = X.iloc[:4], X.iloc[::25]
    with pytest.warns(FallbackWarning, match="cannot trace"):
        e = shapgov.explain(model, rows, background=bg)
    assert e.explainers == {"blackbox": "kernel"}
    assert e.vertices[0].matrix_row == "scoring_code"
    ref, _ = brute_force_shapley(model.predict, rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    with pytest.raises(shapgov.errors.UndecomposableModelError):
        shapgov.explain(model, rows, background=bg, fallback=None)


def test_opaque_kernel_equals_the_exact_linear_explainer():
    X, y = _data()
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    rows, bg = X.iloc[:6], X.iloc[::15]
    linear = shapgov.explain(model, rows, background=bg)
    kernel = shapgov.explain(model, rows, background=bg, opaque=True)
    assert linear.explainers != kernel.explainers
    assert np.max(np.abs(linear.values - kernel.values)) <= 1e-10


def test_sampling_mode_reports_standard_errors_and_stays_additive(tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)  # 10 columns
    model = make_pipeline(StandardScaler(), SVR(C=30)).fit(X, y)
    rows, bg = X.iloc[:10], X.iloc[::40]
    options = {"kernel": {"mode": "sampling", "n_samples": 200, "random_state": 1}}
    e = shapgov.explain(model, rows, background=bg, explainer_options=options)
    exact = shapgov.explain(model, rows, background=bg)
    assert e.std_error.shape == e.values.shape and exact.std_error is None
    assert np.max(np.abs(e.values.sum(1) - exact.values.sum(1))) <= 1e-10
    assert 0 < np.abs(e.values - exact.values).mean() < 3 * e.std_error.mean()
    # the standard errors travel with the values (values.parquet, the MLflow artifact)
    back = type(e).read_parquet(e.to_parquet(tmp_path / "values.parquet"))
    assert np.array_equal(back.std_error, e.std_error) and np.array_equal(back.values, e.values)
    exact_back = type(exact).read_parquet(exact.to_parquet(tmp_path / "exact.parquet"))
    assert exact_back.std_error is None


def test_large_work_warns_with_advice():
    X, y = _data(2)
    model = make_pipeline(StandardScaler(), SVR()).fit(X, y)
    big = pd.concat([X, X], ignore_index=True)  # 884 background rows
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shapgov.explain(model, X.iloc[:2], background=big)
    messages = [str(w.message) for w in caught if issubclass(w.category, PerformanceWarning)]
    assert any("summarize_background" in m for m in messages)


def test_background_summaries_keep_real_rows():
    X, _ = _data()
    sample = shapgov.summarize_background(X, n=20)
    assert len(sample) == 20 and sample.index.isin(X.index).all()
    kmeans = shapgov.summarize_background(X, n=15, method="kmeans")
    # the real row nearest each of the 15 centres: two centres may share one, so at most 15
    assert 1 <= len(kmeans) <= 15 and kmeans.index.isin(X.index).all()
    # ... and each kept row carries its clusters' sizes: the weights count every row once
    rows, weights = shapgov.summarize_background(X, n=15, method="kmeans", return_weights=True)
    assert rows.index.equals(kmeans.index) and not rows.index.duplicated().any()
    assert weights.shape == (len(rows),) and (weights > 0).all() and weights.sum() == len(X)
    assert shapgov.summarize_background(X.to_numpy(), n=10).shape == (10, 6)
    mixed = X.assign(sex=np.where(X["sex"] > 0, "m", "f"))
    with pytest.raises(shapgov.errors.InputError, match="method='sample'"):
        shapgov.summarize_background(mixed, n=5, method="kmeans")


def test_mlflow_pyfunc_model_is_explained_as_a_black_box(tmp_path, monkeypatch):
    """A model logged to a real sqlite tracking store and loaded back as a pyfunc."""
    import mlflow

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("kernel-pyfunc")
    X, y = _data(5)
    model = make_pipeline(StandardScaler(), SVR(C=30)).fit(X, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=X.iloc[:3], pip_requirements=["scikit-learn"]
        )
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    rows, bg = X.iloc[:4], X.iloc[::40]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)  # a supported class: no fallback
        e = shapgov.explain(loaded, rows, background=bg)
    assert e.explainers == {"blackbox": "kernel"}
    assert e.vertices[0].matrix_row == "scoring_code"
    ref, _ = brute_force_shapley(model.predict, rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10


def test_black_box_classifier_in_log_odds():
    from scipy.special import logit
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.05)).fit(X, y)
    rows, bg = X.iloc[[3, 50, 77]], X.iloc[::50]
    e = shapgov.explain(shapgov.BlackBox(clf, link="logit"), rows, background=bg)
    assert e.explainers == {"blackbox": "kernel"}
    assert e.link.name == "logit"
    ref, _ = brute_force_shapley(lambda d: logit(clf.predict_proba(d)[:, 1]), rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    linear = shapgov.explain(clf, rows, background=bg)  # the linear explainer's closed form
    assert np.max(np.abs(e.values - linear.values)) <= 1e-10
    with pytest.raises(shapgov.errors.InputError, match="binary"):
        shapgov.BlackBox(SVR(), link="logit")
