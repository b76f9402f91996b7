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


@cache
def shap_error_type(shap_name: str, base: type[Exception]) -> type[Exception]:
    """``base``, also shap's ``shap.utils._exceptions.<shap_name>`` when shap is installed
    (so code written against shap catches it); made once per process."""
    if not shap_installed():
        return base
    import shap.utils._exceptions as shap_errors

    return type(f"Shap{shap_name}", (base, getattr(shap_errors, shap_name)), {})


def is_one_row(X: Any) -> bool:
    """A single row given as a Series or a 1-D array (shap then returns 1-D values)."""
    return isinstance(X, pd.Series) or (
        not isinstance(X, pd.DataFrame) and not _is_sparse(X) and np.ndim(X) == 1
    )


def _is_sparse(X: Any) -> bool:
    return hasattr(X, "tocsr") and hasattr(X, "toarray")


def _dmatrix_rows(X: Any) -> np.ndarray:
    """A DMatrix's rows, its missing entries NaN (a DMatrix stores present values only)."""
    stored = X.get_data().tocsr()
    dense = np.full(stored.shape, np.nan)
    rows = np.repeat(np.arange(stored.shape[0]), np.diff(stored.indptr))
    dense[rows, stored.indices] = stored.data
    return dense


def as_rows(X: Any) -> Any:
    """Rows as shapgov takes them: a DataFrame or a 2-D array. One row of a Series or a
    1-D array becomes a table of one row; a scipy sparse matrix becomes dense; an XGBoost
    ``DMatrix`` becomes its values with missing entries NaN."""
    if isinstance(X, pd.Series):
        return X.to_frame().T.infer_objects()
    if isinstance(X, pd.DataFrame):
        return X
    if class_path(X) == "xgboost.core.DMatrix":
        return _dmatrix_rows(X)
    if _is_sparse(X):
        return X.toarray()
    arr = np.asarray(X)
    return arr.reshape(1, -1) if arr.ndim == 1 else arr


def first_row(values: np.ndarray, base: Any, *, one_row: bool) -> tuple[np.ndarray, Any]:
    """Values and base values of a one-row call as shap returns them (row axis dropped)."""
    if not one_row:
        return values, base
    return values[0], (np.asarray(base)[0] if np.ndim(base) else base)


class Serializable:
    """shap's ``save``/``load`` of an explainer (``explainer.save(file)``,
    ``Type.load(file)``): the explainer pickled whole, model and background included.
    Loading unpickles: load only files you made or trust (shap's own caveat)."""

    def save(self, out_file: Any, model_saver: Any = ".save", masker_saver: Any = ".save") -> None:
        """Write the explainer to a binary file object."""
        import pickle

        pickle.dump(self, out_file)

    @classmethod
    def load(
        cls,
        in_file: Any,
        model_loader: Any = None,
        masker_loader: Any = None,
        instantiate: bool = True,
    ) -> Any:
        """Read an explainer written by :meth:`save`.

        :raises ShapOptionError: The file holds another type of explainer.
        """
        import pickle

        out = pickle.load(in_file)  # shap's contract: the user's own file
        if not isinstance(out, cls):
            raise ShapOptionError(f"the file holds a {type(out).__name__}, not a {cls.__name__}")
        return out


def governed(model: Any, X: Any, **options: Any) -> Any:
    """:func:`shapgov.explain`, its additivity failure raised as shap's error type too."""
    import shapgov

    try:
        return shapgov.explain(model, X, **options)
    except AdditivityError as err:
        raise additivity_error_type()(err.report) from err


def game_link_of(link: Any) -> str:
    """shap's ``link`` (``"identity"``, ``"logit"``, ``shap.links.identity`` or
    ``shap.links.logit``; ``None``: identity) as shapgov's ``game_link``: shap links the
    background-averaged output, ``v(S) = link(mean_b f(x_S, b))``, and so does shapgov's
    game link (:mod:`shapgov.explainers.game_links`).

    :raises ShapOptionError: Another link.
    """
    if link is None:
        return "identity"
    name = link if isinstance(link, str) else getattr(link, "__name__", None)
    if name not in ("identity", "logit"):
        raise ShapOptionError(
            f"link={link!r}: shapgov plays shap's 'identity' and 'logit' links only; explain "
            "a function returning the linked output itself instead"
        )
    return str(name)


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
