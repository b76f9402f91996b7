"""Built-in plugin: statsmodels GLMs and linear models, from arrays or formulas.

Active only when statsmodels is importable; nothing of it is imported until a model of it
is met. Fitted results of ``GLM`` (every family with a link of
:mod:`shapgov.decomposition.links`: identity, log, logit, probit, cloglog, loglog, cauchy,
power, inverse power, inverse squared, sqrt), ``Logit``, ``Probit``, the count models
(``Poisson``, ``NegativeBinomial``, ``GeneralizedPoisson``: log link) and ``OLS``/``WLS``/
``GLS`` become one :class:`~shapgov.decomposition.terms.TermModel` vertex, explained by the
``terms`` explainer:

* from arrays: one term per column of ``exog`` (the constant column, ``add_constant``'s
  ``const``, joins the intercept);
* from formulas (``statsmodels.formula.api``): the formula's terms traced to the data
  columns they read (:mod:`shapgov_plugins.patsy_terms`, :mod:`shapgov_plugins.formulaic_terms`).

Offsets and exposure are taken as statsmodels takes them at predict time
(``results.predict(X, offset=o, exposure=e)``: ``mu = g^-1(eta + o + log(e))``), and the
additivity policy rebuilds ``g^-1(base + sum(phi) + o) * e`` (DataRobot's rule) against it.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shapgov import hookimpl
from shapgov.composites import FrequencySeverityRegressor
from shapgov.decomposition.blueprint import Node, Vertex
from shapgov.decomposition.context import DecomposeContext
from shapgov.decomposition.encoding import as_float_matrix
from shapgov.decomposition.links import IDENTITY, LOG, LOGIT, PROBIT, Link
from shapgov.decomposition.offsets import ModelOffset
from shapgov.decomposition.terms import Factor, Term, TermModel
from shapgov.errors import (
    InputError,
    NotFittedModelError,
    UndecomposableModelError,
)
from shapgov_plugins.formulaic_terms import formulaic_columns, is_formulaic_spec, read_formulaic
from shapgov_plugins.patsy_terms import design_columns, is_patsy_design, read_terms

if TYPE_CHECKING:
    from shapgov.registry import PluginCalls

AVAILABLE = importlib.util.find_spec("statsmodels") is not None

#: statsmodels link classes (``statsmodels.genmod.families.links``) -> shapgov link names.
LINKS = {
    "Identity": "identity",
    "Log": "log",
    "Logit": "logit",
    "Probit": "probit",
    "CLogLog": "cloglog",
    "LogLog": "loglog",
    "Cauchy": "cauchy",
    "InversePower": "inverse_power",
    "InverseSquared": "inverse_squared",
    "Sqrt": "sqrt",
}


def is_results(obj: Any) -> bool:
    """A fitted statsmodels results object (or its wrapper)."""
    return (
        type(obj).__module__.startswith("statsmodels.")
        and hasattr(obj, "params")
        and hasattr(obj, "model")
        and hasattr(obj, "predict")
    )


def _is_unfitted(obj: Any) -> bool:
    """A statsmodels model (``smf.glm(...)`` before ``.fit()``)."""
    return (
        type(obj).__module__.startswith("statsmodels.")
        and hasattr(obj, "fit")
        and hasattr(obj, "endog")
        and not hasattr(obj, "params")
    )


def _model_kind(model: Any) -> str | None:
    """``"glm"``, ``"binary"``, ``"count"``, ``"regression"`` or ``None`` (not covered)."""
    names = {c.__name__ for c in type(model).__mro__}
    if "GLM" in names:
        return "glm"
    if "BinaryModel" in names and ("Logit" in names or "Probit" in names):
        return "binary"
    if "CountModel" in names and not any(
        k in n for n in names for k in ("ZeroInflated", "Hurdle", "Truncated")
    ):
        return "count"
    if "RegressionModel" in names:
        return "regression"
    return None


def model_link(model: Any) -> Link:
    """The link of a statsmodels model (its family's for a GLM).

    :raises UndecomposableModelError: A link shapgov has no inverse for (``CDFLink`` of
        another distribution, ``NegativeBinomial``, ``LogC``).
    """
    kind = _model_kind(model)
    if kind == "binary":
        return LOGIT if "Logit" in {c.__name__ for c in type(model).__mro__} else PROBIT
    if kind == "count":
        return LOG  # Poisson, NegativeBinomial, GeneralizedPoisson: mean exp(x b)
    if kind == "regression":
        return IDENTITY
    link = model.family.link
    name = type(link).__name__
    if name in LINKS:
        return Link(LINKS[name])
    if name == "Power":
        return Link("power", {"power": float(link.power)})
    raise UndecomposableModelError(
        f"statsmodels link {name} has no inverse in shapgov; the margin cannot be tied to "
        "the predictions: explain the model as a whole with opaque=True"
    )


class StatsmodelsResults:
    """A fitted statsmodels results object as shapgov calls it (scikit-learn's names).

    :param results: The fitted results (``model.fit()``'s return value).
    :param columns: The input columns the rows must hold (default: the columns the formula
        reads, in the training data's order; ``exog_names`` for a model from arrays).

    Attributes: ``results``, ``feature_names_in_`` ``(M,)``, ``n_features_in_``,
    ``link_`` (:class:`~shapgov.decomposition.links.Link`), ``classes_`` ``[0, 1]`` for a
    binary model (Logit, Probit, a Binomial GLM).

    :raises NotFittedModelError: A statsmodels model, not its fitted results.
    :raises UndecomposableModelError: A model kind this plugin does not cover.
    """

    def __init__(self, results: Any, *, columns: Any = None) -> None:
        if not is_results(results):
            raise NotFittedModelError(
                f"{type(results).__name__} is not a fitted statsmodels results object; pass "
                "model.fit()'s return value"
            )
        self.results = results
        self.kind_ = _model_kind(results.model)
        if self.kind_ is None:
            raise UndecomposableModelError(
                f"statsmodels {type(results.model).__name__} is not a GLM, Logit, Probit, "
                "count or linear regression model; explain it as a whole with opaque=True"
            )
        self.link_ = model_link(results.model)
        self.spec_ = _formula_spec(results.model)
        names = _input_columns(results.model, self.spec_) if columns is None else list(columns)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        binary = self.kind_ == "binary" or (
            self.kind_ == "glm" and type(results.model.family).__name__ == "Binomial"
        )
        if binary:
            self.classes_ = np.array([0, 1])

    @property
    def takes_exposure(self) -> bool:
        """Whether the model takes an exposure at predict time (GLMs and count models with
        a log link: statsmodels adds ``log(exposure)`` to the linear predictor)."""
        return self.kind_ in ("glm", "count") and self.link_.name == "log"

    def _exog(self, X: Any) -> Any:
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(np.asarray(X), columns=list(self.feature_names_in_))
        if self.spec_ is not None:
            return X
        # a model from arrays multiplies its exog: numbers (booleans of get_dummies too)
        return pd.DataFrame(
            as_float_matrix(X[list(self.feature_names_in_)]),
            columns=list(self.feature_names_in_),
            index=X.index,
        )

    def _predict(self, X: Any, which: str, offset: Any, exposure: Any) -> np.ndarray:
        extra: dict[str, Any] = {}
        if offset is not None:
            if self.kind_ == "regression":
                raise InputError(f"statsmodels {type(self.results.model).__name__} takes no offset")
            extra["offset"] = np.asarray(offset, dtype=float).reshape(-1)
        if exposure is not None:
            if not self.takes_exposure:
                raise InputError(
                    f"statsmodels {type(self.results.model).__name__} with a "
                    f"{self.link_.name} link takes no exposure; exposure is for GLMs and "
                    "count models with a log link"
                )
            extra["exposure"] = np.asarray(exposure, dtype=float).reshape(-1)
        if self.kind_ != "regression":
            extra["which"] = which
        out = self.results.predict(self._exog(X), **extra)
        return np.asarray(out, dtype=float).reshape(-1)

    def linear_predictor(self, X: Any, *, offset: Any = None, exposure: Any = None) -> np.ndarray:
        """``eta = X beta (+ offset + log(exposure))``, ``(n,)``: the explained margin."""
        return self._predict(X, "linear", offset, exposure)

    def predict(self, X: Any, *, offset: Any = None, exposure: Any = None) -> np.ndarray:
        """The mean ``g^-1(eta)`` ``(n,)``; a binary model's class (0/1) at probability 0.5."""
        mean = self._predict(X, "mean", offset, exposure)
        if hasattr(self, "classes_"):
            return (mean > 0.5).astype(int)
        return mean

    def predict_proba(self, X: Any, *, offset: Any = None, exposure: Any = None) -> np.ndarray:
        """``(n, 2)`` class probabilities of a binary model."""
        if not hasattr(self, "classes_"):
            raise AttributeError("predict_proba is for binary models (Logit, Probit, Binomial)")
        p = self._predict(X, "mean", offset, exposure)
        return np.column_stack([1.0 - p, p])

    def term_model(self) -> TermModel:
        """The model's linear predictor as terms over ``feature_names_in_``."""
        columns = [str(c) for c in self.feature_names_in_]
        # the linear predictor's coefficients: count models append theirs (NB's alpha)
        params = np.asarray(self.results.params, dtype=float).reshape(-1)
        params = params[: _n_exog(self.results.model)]
        if self.spec_ is None:
            terms, intercept = _array_terms(self.results.model, params, columns)
            kind = f"statsmodels {type(self.results.model).__name__}"
        elif is_patsy_design(self.spec_):
            known = _training_columns(self.results.model)
            terms, intercept = read_terms(self.spec_, params, columns, known)
            kind = f"statsmodels {type(self.results.model).__name__} (patsy formula)"
        else:
            terms, intercept = read_formulaic(self.spec_, params, columns)
            kind = f"statsmodels {type(self.results.model).__name__} (formulaic formula)"
        return TermModel(
            tuple(columns),
            tuple(terms),
            intercept,
            source=self.results,
            kind=kind,
            check=lambda frame: self.linear_predictor(frame)[:, None],
        )


def _formula_spec(model: Any) -> Any:
    data = getattr(model, "data", None)
    spec = getattr(data, "model_spec", None) or getattr(data, "design_info", None)
    if getattr(model, "formula", None) is not None and spec is None:
        raise InputError(
            f"this statsmodels {type(model).__name__} was fitted from a formula, but its "
            "results no longer hold the formula's design (model.data.model_spec), which "
            "predicting new rows needs; refit it with statsmodels.formula.api and keep the "
            "results whole"
        )
    return spec


def _training_columns(model: Any) -> list[str] | None:
    frame = getattr(getattr(model, "data", None), "frame", None)
    return [str(c) for c in frame.columns] if isinstance(frame, pd.DataFrame) else None


def _n_exog(model: Any) -> int:
    """The number of exog columns (count models list extra parameters, NB's ``alpha``,
    among their ``exog_names``)."""
    exog = getattr(model, "exog", None)
    if exog is not None:
        return int(np.shape(exog)[1])
    return len(model.exog_names) - int(getattr(model, "k_extra", 0))


def _input_columns(model: Any, spec: Any) -> list[str]:
    if spec is None:
        names = getattr(model, "exog_names", None)
        if not names:
            raise InputError(
                f"this statsmodels {type(model).__name__} holds no exog_names; fit it on a "
                "DataFrame or an array so its columns are known"
            )
        return [str(n) for n in names[: _n_exog(model)]]
    if is_patsy_design(spec):
        return design_columns(spec, _training_columns(model))
    if is_formulaic_spec(spec):
        return formulaic_columns(spec, _training_columns(model))
    raise UndecomposableModelError(
        f"statsmodels formula design {type(spec).__name__} is neither patsy's nor "
        "formulaic's; explain the model as a whole with opaque=True"
    )


def _array_terms(
    model: Any, params: np.ndarray, columns: list[str]
) -> tuple[list[Term], np.ndarray]:
    """One term per exog column; the constant column joins the intercept."""
    const = getattr(model.data, "const_idx", None)
    const_cols = set() if const is None else {int(c) for c in np.atleast_1d(const)}
    terms, intercept = [], 0.0
    for j, name in enumerate(columns):
        if j in const_cols:
            intercept += float(params[j])
            continue
        factor = Factor(name, (j,), 1, _column(name))
        terms.append(
            Term(name, (factor,), np.zeros((1, 1), dtype=np.int64), params[j : j + 1, None])
        )
    return terms, np.array([intercept])


def _column(name: str) -> Any:
    from shapgov.decomposition.terms import checked_codes

    def encode(frame: pd.DataFrame) -> np.ndarray:
        values = as_float_matrix(frame[[name]])
        return checked_codes(values, ~np.isfinite(values[:, 0]), name)

    return encode


def decompose_statsmodels(model: StatsmodelsResults, ctx: DecomposeContext) -> Node:
    """One TermModel vertex with the model's link; binary models predict probabilities."""
    terms = model.term_model()
    vertex = Vertex(
        name=ctx.path,
        estimator=terms,
        task="binary" if hasattr(model, "classes_") else "regression",
        n_margins=1,
        transform=terms.frame,
        allow_nan=True,  # the terms refuse missing values themselves, naming the factor
        margin=terms.margin,
    )
    prediction = "predict_proba" if hasattr(model, "classes_") else "predict"
    return Node((vertex,), np.zeros(1), model.link_, prediction, "linear_predictor")


def _with_statsmodels_parts(model: Any) -> Any | None:
    """A frequency x severity composite of statsmodels results, its parts wrapped."""
    parts = [getattr(model, "frequency_", None), getattr(model, "severity_", None)]
    if not any(is_results(p) for p in parts):
        return None
    wrapped = [StatsmodelsResults(p) if is_results(p) else p for p in parts]
    names: list[str] = []
    for p in wrapped:
        names.extend(str(c) for c in getattr(p, "feature_names_in_", []))
    names = list(dict.fromkeys(names))
    wrapped = [
        StatsmodelsResults(p.results, columns=names) if isinstance(p, StatsmodelsResults) else p
        for p in wrapped
    ]
    return FrequencySeverityRegressor.from_fitted(wrapped[0], wrapped[1], feature_names_in=names)


@hookimpl(trylast=True)
def shapgov_prepare_model(model: Any) -> Any | None:
    if not AVAILABLE:
        return None
    if is_results(model):
        return StatsmodelsResults(model)
    if _is_unfitted(model):
        raise NotFittedModelError(
            f"statsmodels {type(model).__name__} is a model, not its fitted results; explain "
            "model.fit()'s return value"
        )
    if isinstance(model, FrequencySeverityRegressor):
        return _with_statsmodels_parts(model)
    return None


@hookimpl(trylast=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    if not AVAILABLE:
        return None
    if is_results(model):
        model = StatsmodelsResults(model)
    if isinstance(model, StatsmodelsResults):
        return decompose_statsmodels(model, context)
    return None


@hookimpl(trylast=True)
def shapgov_model_offset(model: Any, plugins: PluginCalls) -> ModelOffset | None:
    if not isinstance(model, StatsmodelsResults) or model.kind_ == "regression":
        return None
    method = model.predict_proba if hasattr(model, "classes_") else model.predict

    def predict(X: Any, offset: np.ndarray | None, exposure: np.ndarray | None = None) -> Any:
        return method(
            X,
            offset=None if offset is None else offset[:, 0],
            exposure=None if exposure is None else exposure[:, 0],
        )

    return ModelOffset(
        "statsmodels offset and exposure (results.predict(X, offset=, exposure=))",
        np.zeros(1),
        predict,
        takes_exposure=model.takes_exposure,
    )
