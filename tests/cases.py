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
    #: Reference values ``(values (n, M, K), base (K,))`` when the oracle is not brute
    #: force through ``explained`` (a float32 model); ``None`` for brute force.
    reference: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    #: Local accuracy against the model's own output. Models that predict in float32
    #: (XGBoost) cannot match float64 sums closer than float32 rounding.
    output_atol: float = 1e-10


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


def lightgbm_contrib(model: Any, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """LightGBM's own TreeSHAP (pred_contrib) as ``(values (n, M, K), base (K,))``."""
    m = X.shape[1]
    c = np.asarray(model.predict(X, pred_contrib=True)).reshape(len(X), -1, m + 1)
    return np.transpose(c[:, :, :m], (0, 2, 1)), c[0, :, m]


def _lightgbm(task: str) -> Case:
    import lightgbm

    data = {"regression": diabetes_numeric, "binary": cancer, "multiclass": iris}[task]()
    cls = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    model = cls(n_estimators=40, num_leaves=12, min_child_samples=5, verbose=-1)
    return _case(model, data, lambda m: lambda d: m.predict(d, raw_score=True))


def _sklearn_trees(est: Any, data: tuple[pd.DataFrame, pd.Series], explained: Any) -> Case:
    """A tree model explained against a background: the interventional game, so the oracle
    is brute force through the model's own output."""
    return _case(est, data, explained)


@cache
def diabetes_numeric() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X[["age", "bmi", "bp", "s1", "s3", "s5"]], y


def _forest(task: str) -> Case:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestRegressor
    from sklearn.tree import DecisionTreeClassifier

    if task == "regression":
        est = RandomForestRegressor(n_estimators=8, max_depth=5, random_state=0)
        return _sklearn_trees(est, diabetes_numeric(), lambda m: m.predict)
    if task == "binary":
        est = DecisionTreeClassifier(max_depth=5, random_state=0)
        return _sklearn_trees(est, cancer(), proba1)
    est = ExtraTreesClassifier(n_estimators=8, max_depth=4, random_state=0)
    return _sklearn_trees(est, iris(), lambda m: m.predict_proba)


def _gbm(task: str) -> Case:
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    if task == "regression":
        est = GradientBoostingRegressor(n_estimators=15, max_depth=3, random_state=0)
        return _sklearn_trees(est, diabetes_numeric(), lambda m: m.predict)
    est = GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0)
    data = cancer() if task == "binary" else iris()
    return _sklearn_trees(est, data, lambda m: m.decision_function)


def _hist_gbm(task: str) -> Case:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if task == "regression":
        est = HistGradientBoostingRegressor(max_iter=10, max_leaf_nodes=8, random_state=0)
        return _sklearn_trees(est, diabetes_numeric(), lambda m: m.predict)
    est = HistGradientBoostingClassifier(max_iter=8, max_leaf_nodes=8, random_state=0)
    data = cancer() if task == "binary" else iris()
    return _sklearn_trees(est, data, lambda m: m.decision_function)


def _xgboost(task: str) -> Case:
    import xgboost
    from naive import predict_reference
    from oracles import brute_force_shapley

    from shapgov_plugins.tree import tree_ensemble

    data = {"regression": diabetes_numeric, "binary": cancer, "multiclass": iris}[task]()
    cls = xgboost.XGBRegressor if task == "regression" else xgboost.XGBClassifier
    model = cls(n_estimators=30, max_depth=4, learning_rate=0.3)
    case = _case(model, data, lambda m: lambda d: m.predict(d, output_margin=True))
    # XGBoost predicts in float32: the oracle walks its parsed trees in float64 (plain
    # Python, tests/naive.py), the same routing, so values compare at 1e-10
    case.reference = lambda: brute_force_shapley(
        lambda d: predict_reference(tree_ensemble(model), d.to_numpy(dtype=float)),
        case.X,
        case.background,
    )
    case.output_atol = 64 * float(np.finfo(np.float32).eps) * 30  # float32 margins
    return case


def _catboost(task: str) -> Case:
    """CatBoost on the matrix's tables; regression with a string column (one-hot splits)."""
    import catboost

    data = {"regression": diabetes, "binary": cancer, "multiclass": iris}[task]()
    common = {"iterations": 30, "depth": 4, "verbose": 0, "random_seed": 0}
    common.update(allow_writing_files=False, thread_count=1)
    if task == "regression":
        model = catboost.CatBoostRegressor(cat_features=["sex"], **common)
    else:
        model = catboost.CatBoostClassifier(**common)
    return _case(model, data, lambda m: lambda d: m.predict(d, prediction_type="RawFormulaVal"))


def _scoring_code(task: str) -> Case:
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC, SVR

    from shapgov.opaque import BlackBox, PredictFunction

    if task == "regression":  # a bare predict function on arrays
        X, y = diabetes_numeric()
        pipe = make_pipeline(StandardScaler(), SVR(C=30)).fit(X.to_numpy(), y)
        fn = PredictFunction(lambda a: pipe.predict(np.asarray(a, dtype=float)))
        return Case(fn, X.iloc[[0, 7, 42, 99, 123]], X.iloc[::23], fn.predict)
    if task == "binary":  # a whole pipeline with a categorical column, as a black box
        X, y = diabetes()
        label = (y > 140).astype(int)
        model = make_pipeline(preprocess(), KNeighborsClassifier(15)).fit(X, label)
        return Case(BlackBox(model), X.iloc[[0, 7, 42, 99, 123]], X.iloc[::23], proba1(model))
    X, y = iris()
    model = SVC(probability=True, random_state=0).fit(X, y)
    return Case(BlackBox(model), X.iloc[::31], X.iloc[::9], model.predict_proba)


def _neural_net(task: str) -> Case:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    if task == "regression":
        mlp = MLPRegressor(
            hidden_layer_sizes=(5,), activation="logistic", max_iter=3000, random_state=0
        )
        return _case(scaled(mlp), diabetes_numeric(), lambda m: m.predict)
    if task == "binary":
        mlp = MLPClassifier(
            hidden_layer_sizes=(6, 4), activation="tanh", max_iter=2000, random_state=0
        )
        return _case(make_pipeline(preprocess(), mlp), diabetes_binary(), logit1)
    mlp = MLPClassifier(hidden_layer_sizes=(8,), activation="relu", max_iter=3000, random_state=0)
    return _case(scaled(mlp), iris(), lambda m: lambda d: _log_proba_centered(m, d))


def diabetes_binary() -> tuple[pd.DataFrame, pd.Series]:
    X, y = diabetes()
    return X, (y > 140).astype(int)


def _log_proba_centered(model: Any, d: pd.DataFrame) -> np.ndarray:
    """Softmax margins, recovered from probabilities up to the per-row constant."""
    mlp = model[-1]
    Z = model[:-1].transform(d)
    a = Z
    for W, c in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1], strict=True):
        a = np.maximum(a @ W + c, 0.0)
    return a @ mlp.coefs_[-1] + mlp.intercepts_[-1]


for _task in ("regression", "binary", "multiclass"):
    CASES[("neural_net", _task)] = lambda t=_task: _neural_net(t)
    CASES[("scoring_code", _task)] = lambda t=_task: _scoring_code(t)
    CASES[("xgboost", _task)] = lambda t=_task: _xgboost(t)
    CASES[("catboost", _task)] = lambda t=_task: _catboost(t)
    CASES[("sklearn_hist_gbm", _task)] = lambda t=_task: _hist_gbm(t)
    CASES[("lightgbm", _task)] = lambda t=_task: _lightgbm(t)
    CASES[("random_forest", _task)] = lambda t=_task: _forest(t)
    CASES[("sklearn_gbm", _task)] = lambda t=_task: _gbm(t)


def _statsmodels_glm(task: str) -> Case:
    """A statsmodels formula GLM: a spline, a categorical coding and an interaction."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    from shapgov_plugins.statsmodels_glms import StatsmodelsResults

    X, y = diabetes() if task == "regression" else diabetes_binary()
    data = X.assign(target=y)
    if task == "regression":
        model = smf.glm(
            "target ~ bs(age, 3) + C(sex) + bmi:bp + s1 + s5",
            data=data,
            family=sm.families.Gamma(link=sm.families.links.Log()),
        ).fit()
    else:
        model = smf.logit("target ~ age + C(sex) + bmi:bp + s5", data=data).fit(disp=0)
    X = X[list(StatsmodelsResults(model).feature_names_in_)]
    return Case(
        model,
        X.iloc[[0, 7, 42, 99, 123]],
        X.iloc[::23],
        lambda d: np.asarray(model.predict(d, which="linear")),
    )


def _glum(formula: str | None) -> Case:
    """glum with a category column (Tweedie, log link), or a formula with an interaction."""
    import glum

    X, y = diabetes()
    X = X.assign(sex=pd.Categorical(X["sex"]))
    model = glum.GeneralizedLinearRegressor(family="tweedie", alpha=0.01, formula=formula)
    model.fit(X, y)
    if formula is not None:
        X = X[["age", "sex", "bmi", "bp"]]
    return Case(model, X.iloc[[0, 7, 42, 99, 123]], X.iloc[::23], model.linear_predictor)


CASES[("glm", "regression")] = lambda: _statsmodels_glm("regression")
CASES[("glm", "binary")] = lambda: _statsmodels_glm("binary")

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
    "glum_tweedie_categories": lambda: _glum(None),
    "glum_formula_interaction": lambda: _glum("age + C(sex) + bmi:bp"),
    "glm_poisson_log_link": lambda: _case(
        make_pipeline(preprocess(), PoissonRegressor()),
        diabetes(),
        lambda m: lambda d: np.log(m.predict(d)),
    ),
}
