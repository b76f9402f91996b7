"""What the ``shapgov.shap`` explainers share: one call into shapgov's engine, shap's
output conventions, and shap's additivity error type.

Every explainer runs :func:`shapgov.explain` (one game, the additivity policy applied) and
reshapes its values to what shap returns for the same call: ``(n, M)`` for a model with one
output, ``(n, M, K)`` for K outputs (shap >= 0.45), ``expected_value`` a float or a
``(K,)`` array.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import AdditivityError, ShapOptionError
from shapgov.shap.explanation import make_explanation, shap_installed

#: scikit-learn tree classifiers whose leaves hold class probabilities: shap's raw output
#: is one probability per class, two for a binary model (shapgov explains the second).
PROBABILITY_TREES = (
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
)


def class_path(model: Any) -> str:
    """``module.Class`` of a model's type."""
    return f"{type(model).__module__}.{type(model).__qualname__}"


@cache
def additivity_error_type() -> type[AdditivityError]:
    """shapgov's :class:`~shapgov.errors.AdditivityError`, also shap's ``ExplainerError``
    when shap is installed (what shap raises when its additivity check fails), so code
    written against shap catches it."""
    if not shap_installed():
        return AdditivityError
    from shap.utils._exceptions import ExplainerError

    # made once per process: one class that ``except`` clauses and pickles can name
    return type("ShapAdditivityError", (AdditivityError, ExplainerError), {})


def as_rows(X: Any) -> Any:
    """Rows as shapgov takes them: a DataFrame or a 2-D array (one row of a Series or a
    1-D array becomes a table of one row)."""
    if isinstance(X, pd.Series):
        return X.to_frame().T
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X)
    return arr.reshape(1, -1) if arr.ndim == 1 else arr


def governed(model: Any, X: Any, **options: Any) -> Any:
    """:func:`shapgov.explain`, its additivity failure raised as shap's error type too."""
    import shapgov

    try:
        return shapgov.explain(model, X, **options)
    except AdditivityError as err:
        raise additivity_error_type()(err.report) from err


def check_no_saabas(approximate: Any) -> None:
    """:raises ShapOptionError: ``approximate=True`` (Saabas values)."""
    if approximate is True:
        raise ShapOptionError(
            "approximate=True asks for Saabas values (the path attribution of one ordering "
            "of the features), which are not Shapley values; shapgov computes exact TreeSHAP "
            "in linear time: drop approximate=True"
        )


def shap_shaped(
    values: np.ndarray, base: np.ndarray, *, two_classes: bool
) -> tuple[np.ndarray, Any]:
    """Values and expected value in shap's conventions: ``(n, M)`` and a float for one
    output, ``(n, M, K)`` and ``(K,)`` for K; ``two_classes``: one probability output
    shap reports as two (class 0 and class 1)."""
    base = np.asarray(base, dtype=float).ravel()
    if two_classes and values.ndim == 2:
        values = np.stack([-values, values], axis=-1)
        base = np.array([1.0 - base[0], base[0]])
    if values.ndim == 2:
        return values, float(base[0])
    return values, base


def explanation_of(
    values: np.ndarray,
    expected: Any,
    X: Any,
    result: Any,
    *,
    feature_names: list[Any] | None,
) -> Any:
    """The object ``__call__`` returns (see :mod:`shapgov.shap.explanation`)."""
    n = values.shape[0]
    base = np.broadcast_to(np.asarray(expected, dtype=float), (n, *np.shape(expected))).copy()
    data = X.to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X)
    names = feature_names or ([str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None)
    return make_explanation(
        values,
        base,
        data,
        names,
        feature_perturbation=result.feature_perturbation,
        governed=result,
    )
