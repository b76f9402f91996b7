"""Built-in plugin: glum's ``GeneralizedLinearRegressor`` (and its CV variant).

Active only when glum is importable (QuantCo's GLM library for insurance pricing); nothing
of it is imported until a model of it is met. The model's linear predictor becomes one
:class:`~shapgov.decomposition.terms.TermModel` vertex for the ``terms`` explainer:

* fitted on a table: one term per input column; a pandas ``category`` column is coded as
  glum codes it (one indicator per level it kept, ``drop_first`` dropping the first;
  ``cat_missing_method="zero"`` codes a missing label as no level, ``"convert"`` as the
  level ``cat_missing_name``; an unseen label is refused as glum refuses it);
* fitted with ``formula=``: the formulaic spec's terms traced to the columns they read
  (:mod:`shapgov_plugins.formulaic_terms`).

The link is the family's (glum's ``TweedieLink(p)``: ``mu = eta ** (1 / (1 - p))``); an
offset is taken as glum takes it (``predict(X, offset=o)``: ``mu = g^-1(eta + o)``). glum
takes no exposure: DataRobot's rule multiplies it in.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shapgov import hookimpl
from shapgov.decomposition.blueprint import Node, Vertex
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.encoding import as_float_matrix
from shapgov.decomposition.links import Link
from shapgov.decomposition.offsets import ModelOffset
from shapgov.decomposition.terms import Factor, Term, TermModel, checked_codes
from shapgov.errors import InputError, NotFittedModelError, UndecomposableModelError
from shapgov.planning.compatibility import class_path_set
from shapgov_plugins.formulaic_terms import formulaic_columns, read_formulaic

if TYPE_CHECKING:
    from shapgov.registry import PluginCalls

AVAILABLE = importlib.util.find_spec("glum") is not None

GLUM_CLASSES = {
    "glum.GeneralizedLinearRegressor",
    "glum.GeneralizedLinearRegressorCV",
}

#: glum link classes -> shapgov link names.
LINKS = {
    "IdentityLink": "identity",
    "LogLink": "log",
    "LogitLink": "logit",
    "CloglogLink": "cloglog",
}


def is_glum(model: Any) -> bool:
    """A glum regressor (matched by class path; glum is not imported)."""
    if not AVAILABLE:
        return False
    if class_path_set(model) & GLUM_CLASSES:
        return True
    return type(model).__module__.startswith("glum.") and hasattr(model, "coef_")


def glum_link(model: Any) -> Link:
    """The fitted model's link.

    :raises UndecomposableModelError: A link shapgov has no inverse for.
    """
    link = getattr(model, "_link_instance", None)
    name = type(link).__name__
    if name in LINKS:
        return Link(LINKS[name])
    if name == "TweedieLink":
        power = float(link.power)
        if power == 0:
            return Link("identity")
        if power == 1:
            return Link("log")
        return Link("power", {"power": 1.0 - power})
    raise UndecomposableModelError(
        f"glum link {name} has no inverse in shapgov; explain the model as a whole with opaque=True"
    )


def input_columns(model: Any) -> list[str]:
    """The columns the regressor was fitted on, in order."""
    dtypes = getattr(model, "_feature_dtypes_", None)
    spec = getattr(model, "X_model_spec_", None)
    if spec is not None:
        return formulaic_columns(spec, list(dtypes) if dtypes else None)
    if dtypes:
        return [str(c) for c in dtypes]
    return [str(c) for c in model.feature_names_]


def _categorical(model: Any, column: str, names: list[str], where: list[int]) -> tuple[Any, int]:
    """The coding of one category column: an indicator per coefficient's level."""
    fmt = getattr(model, "categorical_format", "{name}[{category}]")
    method = getattr(model, "cat_missing_method", "fail")
    missing_name = getattr(model, "cat_missing_name", "(MISSING)")
    levels = [str(v) for v in model._categorical_levels_[column]]
    if method == "convert":
        levels.append(str(missing_name))
    level_of = {}
    for k, j in enumerate(where):
        for level in levels:
            if fmt.format(name=column, category=level) == names[j]:
                level_of[level] = k
    width = len(where)

    def encode(frame: pd.DataFrame) -> np.ndarray:
        col = frame[column]
        labels = col.astype(object)
        missing = labels.isna().to_numpy()
        if missing.any() and method == "fail":
            checked_codes(np.zeros(0), missing, f"category column {column!r}")
        texts = labels.where(~missing, missing_name if method == "convert" else None)
        out = np.zeros((len(frame), width))
        known = set(levels)
        for i, text in enumerate(texts.to_numpy()):
            if text is None or (method == "zero" and missing[i]):
                continue
            if str(text) not in known:
                raise InputError(
                    f"column {column!r} holds the label {text!r}, which the glum model never "
                    f"saw at fit (levels {list(model._categorical_levels_[column])}); glum "
                    "refuses it too: map it to a known level"
                )
            k = level_of.get(str(text))
            if k is not None:
                out[i, k] = 1.0
        return out

    return encode, width


def _numeric(column: str) -> Any:
    def encode(frame: pd.DataFrame) -> np.ndarray:
        values = as_float_matrix(frame[[column]])
        return checked_codes(values, ~np.isfinite(values[:, 0]), f"column {column!r}")

    return encode


def _table_terms(model: Any, columns: list[str]) -> list[Term]:
    """One term per input column (glum without a formula)."""
    names = [str(n) for n in model.feature_names_]
    owners = [str(t) for t in getattr(model, "term_names_", names)]
    coef = np.asarray(model.coef_, dtype=float).reshape(-1)
    levels = getattr(model, "_categorical_levels_", None) or {}
    terms = []
    for j, column in enumerate(columns):
        where = [i for i, owner in enumerate(owners) if owner == column]
        if not where:
            continue
        if column in levels:
            encode, width = _categorical(model, column, names, where)
        else:
            if len(where) != 1:
                raise UndecomposableModelError(
                    f"glum column {column!r} has {len(where)} coefficients but is not "
                    "categorical; explain the model as a whole with opaque=True"
                )
            encode, width = _numeric(column), 1
        factor = Factor(column, (j,), width, encode)
        index = np.arange(width, dtype=np.int64)[:, None]
        terms.append(Term(column, (factor,), index, coef[where][:, None]))
    return terms


def term_model(model: Any) -> TermModel:
    """The regressor's linear predictor as terms over its input columns."""
    columns = input_columns(model)
    spec = getattr(model, "X_model_spec_", None)
    if spec is not None:
        terms, intercept = read_formulaic(spec, model.coef_, columns)
        kind = "glum GeneralizedLinearRegressor (formula)"
    else:
        terms, intercept = _table_terms(model, columns), np.zeros(1)
        kind = "glum GeneralizedLinearRegressor"
    intercept = intercept + float(np.asarray(getattr(model, "intercept_", 0.0)).reshape(-1)[0])
    on_frame = spec is not None or getattr(model, "_feature_dtypes_", None) is not None

    def own_margin(frame: pd.DataFrame) -> np.ndarray:
        rows = frame if on_frame else frame.to_numpy()
        return np.asarray(model.linear_predictor(rows), dtype=float).reshape(-1, 1)

    return TermModel(
        tuple(columns), tuple(terms), intercept, source=model, kind=kind, check=own_margin
    )


class GlumModel:
    """A fitted glum regressor as shapgov calls it at the top of an explanation: its input
    columns (``feature_names_in_``, ``n_features_in_``: glum's own ``n_features_in_``
    counts the expanded design columns) and its methods.

    :param regressor: The fitted ``GeneralizedLinearRegressor(CV)``.
    """

    def __init__(self, regressor: Any) -> None:
        if not hasattr(regressor, "coef_"):
            raise NotFittedModelError(
                f"{type(regressor).__name__} is not fitted; call fit(X, y) before explaining it"
            )
        self.regressor = regressor
        self.feature_names_in_ = np.asarray(input_columns(regressor), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)

    def predict(self, X: Any, *, offset: Any = None) -> np.ndarray:
        """The mean ``g^-1(eta + offset)``, ``(n,)``."""
        return np.asarray(self.regressor.predict(X, offset=offset), dtype=float)

    def linear_predictor(self, X: Any, *, offset: Any = None) -> np.ndarray:
        """``eta (+ offset)``, ``(n,)``: the explained margin."""
        return np.asarray(self.regressor.linear_predictor(X, offset=offset), dtype=float)


def _regressor(model: Any) -> Any | None:
    """The glum regressor behind ``model`` (itself, or a :class:`GlumModel`'s), else None."""
    if isinstance(model, GlumModel):
        return model.regressor
    return model if is_glum(model) else None


@hookimpl(trylast=True)
def shapgov_prepare_model(model: Any) -> Any | None:
    return GlumModel(model) if is_glum(model) else None


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    model = _regressor(model)
    if model is None:
        return None
    terms = term_model(model)
    vertex = Vertex(
        name=context.path,
        estimator=terms,
        task="regression",
        n_margins=1,
        transform=terms.frame,
        allow_nan=True,  # the terms refuse missing values as glum does, naming the column
        margin=terms.margin,
    )
    return Node((vertex,), np.zeros(1), glum_link(model), "predict", "linear_predictor")


@hookimpl(trylast=True)
def shapgov_model_offset(model: Any, plugins: PluginCalls) -> ModelOffset | None:
    model = _regressor(model)
    if model is None:
        return None
    return ModelOffset(
        "glum offset (predict(X, offset=))",
        np.zeros(1),
        lambda X, offset: model.predict(X, offset=offset[:, 0]),
    )
