"""The demo: explain blueprints on data that ships with scikit-learn, and the original
request's MLP example both ways (Deep explainer on the MLP vertex, Kernel on the whole
pipeline)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _blueprints():
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import VotingRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression, PoissonRegressor, Ridge
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.copy()
    X["sex"] = np.where(X["sex"] > 0, "male", "female")
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.33, random_state=42)
    numeric = [c for c in X.columns if c != "sex"]

    def prep() -> ColumnTransformer:
        return ColumnTransformer(
            [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["sex"])]
        )

    classifier = make_pipeline(prep(), LogisticRegression(max_iter=1000))
    classifier.fit(X_train, y_train > y_train.median())
    blender = VotingRegressor(
        [
            ("ridge", make_pipeline(prep(), Ridge(alpha=1.0))),
            ("ols", make_pipeline(prep(), LinearRegression())),
            ("poisson", make_pipeline(prep(), PoissonRegressor(alpha=0.01))),
        ],
        weights=[2, 1, 1],
    ).fit(X_train, y_train)
    return [
        (
            "Pipeline(ColumnTransformer -> LogisticRegression): progression above median",
            classifier,
            X_test,
            X_train,
        ),
        (
            "VotingRegressor(Ridge, LinearRegression, PoissonRegressor): disease progression",
            blender,
            X_test,
            X_train,
        ),
    ]


def run(*, rows: int = 5, top: int = 3, echo: Callable[[str], None] = print) -> None:
    """Explain each blueprint on ``rows`` test rows and print its audit and top features."""
    import shapgov
    from shapgov.errors import AdditivityWarning

    for title, model, X_test, X_train in _blueprints():
        echo(f"\n== {title}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AdditivityWarning)
            e = shapgov.explain(model, X_test.iloc[:rows], background=X_train)
        for w in caught:
            echo(f"   warning: {w.message}")
        a = e.additivity
        echo(
            f"   vertices: {', '.join(f'{p.name} [{p.explainer}]' for p in e.vertices)}\n"
            f"   output space: {e.output_space}, link: {e.link.name}; "
            f"base value {e.expected_value[0]:.4g}\n"
            f"   additivity: {a.status} (max normalized mismatch {a.max_normalized_mismatch:.2e}, "
            f"threshold {a.threshold:g})"
        )
        predictions = e.link.inverse(e.explained_output)[:, 0]
        for i in range(len(e)):
            order = np.argsort(-np.abs(e.values[i]))[:top]
            parts = ", ".join(
                f"{e.feature_names[j]}={e.data.iloc[i, j]!s:.8} ({e.values[i, j]:+.3f})"
                for j in order
            )
            echo(f"   row {i}: prediction {predictions[i]:.4g} <- {parts}")
    _mlp_example(rows=rows, echo=echo)
    _mlflow_job(echo=echo)


def _mlp_example(*, rows: int, echo: Callable[[str], None]) -> None:
    """The KernelExplainer tutorial's model, explained exactly two ways."""
    import time

    from sklearn.datasets import load_diabetes
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import shapgov

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.33, random_state=42)
    mlp = MLPRegressor(
        hidden_layer_sizes=(5,),
        activation="logistic",
        max_iter=10000,
        learning_rate="invscaling",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make_pipeline(StandardScaler(), mlp).fit(X_train, y_train)
    echo(
        "\n== The tutorial's MLP (StandardScaler -> MLPRegressor(5, logistic)): "
        f"{len(X_test)} test rows against all {len(X_train)} training rows"
    )
    t0 = time.perf_counter()
    deep = shapgov.explain(model, X_test, background=X_train)
    t1 = time.perf_counter()
    quiet = {"kernel": {"progress": False}}
    kernel = shapgov.explain(
        model, X_test, background=X_train, opaque=True, explainer_options=quiet
    )
    t2 = time.perf_counter()
    echo(
        f"   Deep explainer on the MLP vertex (exact MLP mode): {t1 - t0:.2f}s "
        "(a first run includes compiling its numba kernel, cached afterwards), "
        f"additivity {deep.additivity.status}\n"
        f"   Kernel explainer on the whole pipeline (exact enumeration): {t2 - t1:.2f}s, "
        f"additivity {kernel.additivity.status}\n"
        f"   both exact: max |Deep - Kernel| = {np.abs(deep.values - kernel.values).max():.1e}"
    )
    importance = np.abs(deep.values).mean(axis=0)
    order = np.argsort(-importance)[:3]
    names = ", ".join(f"{deep.feature_names[j]} ({importance[j]:.2f})" for j in order)
    echo(f"   most important (mean |SHAP|): {names}")
    for i in range(min(rows, 2)):
        top = np.argsort(-np.abs(deep.values[i]))[:3]
        parts = ", ".join(f"{deep.feature_names[j]} ({deep.values[i, j]:+.2f})" for j in top)
        echo(f"   row {i}: prediction {deep.explained_output[i, 0]:.1f} <- {parts}")


def _mlflow_job(*, echo: Callable[[str], None]) -> None:
    """The governance loop on the embedded store: log, register, approve."""
    import mlflow
    from sklearn.datasets import load_diabetes
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import shapgov
    import shapgov.mlflow

    uri = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("shapgov-demo")
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.33, random_state=42)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(X_train, y_train)
    echo(f"\n== MLflow ({uri}): log the explanation set, register, approve")
    with mlflow.start_run(run_name="shapgov-demo") as run:
        e = shapgov.explain(model, X_test, background=X_train)
        perm = shapgov.permutation_impact(model, X_test, y_test, n_repeats=3)
        manifest = shapgov.mlflow.log_explanation(e, permutation=perm)
        info = mlflow.sklearn.log_model(model, name="model")
    mv = mlflow.register_model(info.model_uri, "shapgov-demo-diabetes")
    result = shapgov.approve("shapgov-demo-diabetes", mv.version, alias="champion")
    echo(
        f"   run {run.info.run_id}: {len(manifest['artifacts'])} artifacts + manifest, "
        f"status {manifest['status']}\n"
        f"   model shapgov-demo-diabetes v{mv.version}: {result.verdict}"
        + ("" if result.approved else f" ({'; '.join(result.reasons)})")
        + (", alias 'champion'" if result.approved else "")
        + f"\n   browse: mlflow ui --backend-store-uri {uri}"
    )
