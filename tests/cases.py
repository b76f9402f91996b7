"""One real, fitted model per supported compatibility-matrix cell, with its oracle.

``CASES[(row_id, task)]`` builds ``Case``: the model, rows to explain, a background and
the model's explained-space output as a function of original columns (the brute-force
oracle's value function). tests/test_matrix_cases.py fails for any supported cell
without an entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.linear_model import (
    GammaRegressor,
    LinearRegression,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
    SGDClassifier,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shapgov.composites import FrequencySeverityRegressor, ResidualBoostedRegressor


@dataclass
class Case:
    model: Any
    X: pd.DataFrame
    background: pd.DataFrame
    explained: Callable[[pd.DataFrame], np.ndarray]


@cache
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X[["age", "sex", "bmi", "bp", "s1", "s5"]].copy()
    X["sex"] = np.where(X["sex"] > 0, "male", "female")
    return X, y


@cache
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:, :5], y


@cache
def iris() -> tuple[pd.DataFrame, pd.Series]:
    return load_iris(return_X_y=True, as_frame=True)


def preprocess() -> ColumnTransformer:
    numeric = ["age", "bmi", "bp", "s1", "s5"]
    return ColumnTransformer(
        [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["sex"])]
    )


def scaled(est: Any) -> Any:
    return make_pipeline(StandardScaler(), est)


def _case(model: Any, data: tuple[pd.DataFrame, pd.Series], explained: Any, **fit: Any) -> Case:
    X, y = data
    model.fit(X, y, **fit)
    return Case(model, X.iloc[[0, 7, 42, 99, 123]], X.iloc[::23], explained(model))


def proba1(m: Any) -> Callable[[pd.DataFrame], np.ndarray]:
    return lambda d: m.predict_proba(d)[:, 1]


def logit1(m: Any) -> Callable[[pd.DataFrame], np.ndarray]:
    return lambda d: logit(m.predict_proba(d)[:, 1])


def _frequency_severity() -> Case:
    X, y = diabetes()
    counts = (y > 140).astype(int) + (y > 250).astype(int)
    model = FrequencySeverityRegressor(
        make_pipeline(preprocess(), PoissonRegressor()),
        make_pipeline(preprocess(), GammaRegressor()),
    ).fit(X, counts, y)
    return Case(
        model, X.iloc[[0, 7, 42, 99, 123]], X.iloc[::23], lambda d: np.log(model.predict(d))
    )


CASES: dict[tuple[str, str], Callable[[], Case]] = {
    ("linear", "regression"): lambda: _case(
        make_pipeline(preprocess(), Ridge(alpha=0.5)), diabetes(), lambda m: m.predict
    ),
    ("linear", "binary"): lambda: _case(
        scaled(LogisticRegression(C=0.3)), cancer(), lambda m: m.decision_function
    ),
    ("linear", "multiclass"): lambda: _case(
        scaled(LogisticRegression()), iris(), lambda m: m.decision_function
    ),
    ("frequency_severity", "regression"): _frequency_severity,
    ("stacked_boosted", "regression"): lambda: _case(
        StackingRegressor(
            [
                ("ridge", make_pipeline(preprocess(), Ridge())),
                ("poisson", make_pipeline(preprocess(), PoissonRegressor())),
            ],
            final_estimator=LinearRegression(),
        ),
        diabetes(),
        lambda m: m.predict,
    ),
    ("stacked_boosted", "binary"): lambda: _case(
        StackingClassifier(
            [
                ("lr", scaled(LogisticRegression())),
                ("svm", scaled(SGDClassifier(random_state=0))),
            ],
            final_estimator=LogisticRegression(max_iter=5000),
            passthrough=True,
        ),
        cancer(),
        lambda m: m.decision_function,
    ),
    ("stacked_boosted", "multiclass"): lambda: _case(
        StackingClassifier(
            [("lr", scaled(LogisticRegression())), ("lr2", scaled(LogisticRegression(C=0.05)))],
            final_estimator=LogisticRegression(),
        ),
        iris(),
        lambda m: m.decision_function,
    ),
    ("calibrated", "binary"): lambda: _case(
        CalibratedClassifierCV(scaled(LogisticRegression()), method="isotonic", cv=3),
        cancer(),
        proba1,
    ),
    ("calibrated", "multiclass"): lambda: _case(
        CalibratedClassifierCV(scaled(LogisticRegression()), method="sigmoid", cv=2),
        iris(),
        lambda m: m.predict_proba,
    ),
    ("blender", "regression"): lambda: _case(
        VotingRegressor(
            [
                ("ridge", make_pipeline(preprocess(), Ridge())),
                ("ols", make_pipeline(preprocess(), LinearRegression())),
                ("poisson", make_pipeline(preprocess(), PoissonRegressor())),
            ],
            weights=[1, 2, 3],
        ),
        diabetes(),
        lambda m: m.predict,
    ),
    ("blender", "binary"): lambda: _case(
        VotingClassifier(
            [("a", scaled(LogisticRegression())), ("b", scaled(LogisticRegression(C=0.01)))],
            voting="soft",
            weights=[2, 1],
        ),
        cancer(),
        proba1,
    ),
    ("blender", "multiclass"): lambda: _case(
        VotingClassifier(
            [("a", scaled(LogisticRegression())), ("b", scaled(LogisticRegression(C=0.05)))],
            voting="soft",
        ),
        iris(),
        lambda m: m.predict_proba,
    ),
}

# Further blueprints exercised beside the matrix cells (same oracle, same tolerance).
EXTRA_CASES: dict[str, Callable[[], Case]] = {
    "calibrated_sigmoid_single_fold": lambda: _case(
        CalibratedClassifierCV(scaled(LogisticRegression()), method="sigmoid", ensemble=False),
        cancer(),
        logit1,
    ),
    "residual_boosted": lambda: _case(
        ResidualBoostedRegressor(
            [
                make_pipeline(preprocess(), Ridge(alpha=30)),
                make_pipeline(preprocess(), LinearRegression()),
            ]
        ),
        diabetes(),
        lambda m: m.predict,
    ),
    "glm_poisson_log_link": lambda: _case(
        make_pipeline(preprocess(), PoissonRegressor()),
        diabetes(),
        lambda m: lambda d: np.log(m.predict(d)),
    ),
}
