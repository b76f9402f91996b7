"""``shapgov.shap.LinearExplainer`` and ``shapgov.shap.KernelExplainer``: shap's
interfaces on shapgov's linear and Kernel explainers (one game, interventional).

Source of the API followed: shap 0.51 (``shap.LinearExplainer``, ``shap.KernelExplainer``).
Background rows follow shap's maskers: raw data given to ``LinearExplainer`` is an
``Independent`` masker, which keeps at most 100 rows (drawn as shap draws them:
scikit-learn's ``resample`` without replacement, ``random_state=0``); a shap masker or
``shap.kmeans`` summary passes its own rows (and weights).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import ShapOptionError, UnsupportedModelError
from shapgov.shap.common import (
    Serializable,
    as_rows,
    explanation_of,
    first_row,
    game_link_of,
    governed,
    is_one_row,
    shap_shaped,
)

#: Rows an Independent masker keeps (shap's ``max_samples`` default).
MASKER_ROWS = 100


def masker_rows(masker: Any, *, limit: int | None) -> tuple[Any, np.ndarray | None]:
    """``(background rows, weights or None)`` of a masker, shap's way (see the module).

    An ``Independent`` masker built from ``{"mean", "cov"}`` is the row of means (the
    interventional game of a linear model needs the mean only).

    :raises ShapOptionError: A (mean, covariance) tuple or an ``Impute`` masker (the
        correlation-dependent game); a masker with no rows (also ``NotImplementedError``).
    """
    kind = type(masker).__name__
    if isinstance(masker, tuple) or kind == "Impute":
        raise ShapOptionError(
            "a (mean, covariance) or Impute masker asks for the correlation-dependent game "
            "of a Gaussian model, which shapgov does not play; pass background rows or an "
            "Independent masker (the interventional game)"
        )
    if type(masker).__module__.startswith("shap.maskers") and getattr(masker, "data", None) is None:
        raise UnsupportedMaskerError(
            f"a {kind} masker holds no background rows; pass rows, shap.kmeans(...) or an "
            "Independent masker"
        )
    weights = getattr(masker, "weights", None)
    sparse = hasattr(masker, "tocsr")  # a scipy matrix's .data is its stored entries
    rows = masker if sparse else getattr(masker, "data", masker)
    rows = as_rows(rows)
    if weights is not None:
        return rows, np.asarray(weights, dtype=float)
    if limit is not None and len(rows) > limit:
        from sklearn.utils import resample

        rows = resample(rows, n_samples=limit, random_state=0, replace=False)
    return rows, None


class UnsupportedMaskerError(ShapOptionError, NotImplementedError):
    """A shap masker without background rows (``Fixed``, text and image maskers)."""


def linear_model(model: Any) -> Any:
    """shap's ``(coef, intercept)`` pair as a fitted scikit-learn ``LinearRegression``
    (the same margin); any other model unchanged."""
    if not isinstance(model, tuple):
        return model
    from sklearn.linear_model import LinearRegression

    coef, intercept = (np.asarray(part, dtype=float) for part in model)
    out = LinearRegression()
    out.coef_ = coef
    out.intercept_ = intercept if intercept.ndim else float(intercept)
    out.n_features_in_ = coef.shape[-1]
    return out


def positional(rows: Any, background: Any) -> tuple[Any, Any]:
    """Rows and background rows with the same columns where one is a DataFrame and the
    other a plain (or sparse-made-dense) array of as many columns: shap matches them by
    position, so the array takes the DataFrame's column names."""
    frames = isinstance(rows, pd.DataFrame), isinstance(background, pd.DataFrame)
    if frames[0] == frames[1] or background is None:
        return rows, background
    if frames[1] and np.ndim(rows) == 2 and rows.shape[1] == background.shape[1]:
        return pd.DataFrame(rows, columns=background.columns), background
    if frames[0] and np.ndim(background) == 2 and background.shape[1] == rows.shape[1]:
        return rows, pd.DataFrame(background, columns=rows.columns)
    return rows, background


class _Interventional(Serializable):
    """An explainer of ``model`` against background rows, in shap's shapes."""

    #: The game's link of the background average (shapgov's ``game_link``).
    game_link = "identity"

    def __init__(self, model: Any, rows: Any, weights: np.ndarray | None, names: Any) -> None:
        self.model = model
        self.data = rows
        self.weights = weights
        self.feature_names = names
        self._expected: Any = None
        self.last_explanation_: Any = None

    def _run(self, X: Any, **options: Any) -> tuple[Any, Any, np.ndarray]:
        """Rows, the governed explanation, and shap-shaped values (1-D row: row axis
        dropped)."""
        rows, data = positional(as_rows(X), self.data)
        result = governed(
            self.model,
            rows,
            background=data,
            background_weights=self.weights,
            feature_perturbation="interventional",
            game_link=self.game_link,
            **options,
        )
        self.last_explanation_ = result
        values, self._expected = shap_shaped(
            result.values, result.expected_value, two_classes=False
        )
        return rows, result, values

    def _output(self, X: Any, rows: Any, result: Any, values: np.ndarray) -> Any:
        out = explanation_of(values, self._expected, rows, result, feature_names=self.feature_names)
        return out[0] if is_one_row(X) else out

    @property
    def expected_value(self) -> Any:
        """The weighted background mean of the explained output: a float, or ``(K,)``."""
        if self._expected is None:
            first = self.data.iloc[:1] if isinstance(self.data, pd.DataFrame) else self.data[:1]
            self._run(first)
        return self._expected


class LinearExplainer(_Interventional):
    """SHAP values of a linear model's margin against background rows (exact:
    ``coef * (x - weighted background mean)``).

    :param model: A fitted linear model (or a pipeline ending in one), or shap's
        ``(coef, intercept)`` pair.
    :param masker: Background rows, a shap masker with ``.data`` (an ``Independent``
        masker of ``{"mean", "cov"}``: its mean), or ``shap.kmeans``.
    :param link: Accepted as shap's identity only.
    :param nsamples: Accepted (shap's sampling size for the correlation-dependent game).
    :param feature_perturbation: ``None`` or ``"interventional"``.
    :raises ShapOptionError: ``"correlation_dependent"``, a (mean, covariance) masker or
        another link.
    """

    def __init__(
        self,
        model: Any,
        masker: Any,
        link: Any = None,
        nsamples: int = 1000,
        feature_perturbation: str | None = None,
    ) -> None:
        if feature_perturbation not in (None, "interventional"):
            raise ShapOptionError(
                f"feature_perturbation={feature_perturbation!r}: shapgov plays the "
                "interventional game (the correlation-dependent one needs a Gaussian model "
                "of the features)"
            )
        if link is not None and getattr(link, "__name__", "") != "identity":
            raise ShapOptionError("link=: a linear model is explained in its margin")
        rows, weights = masker_rows(masker, limit=MASKER_ROWS)
        super().__init__(linear_model(model), rows, weights, None)
        self.masker = masker
        self.feature_perturbation = "interventional"

    def shap_values(self, X: Any) -> np.ndarray:
        """SHAP values ``(n, M)`` or ``(n, M, K)``; ``(M,)`` or ``(M, K)`` for a 1-D row.
        Sparse ``X`` is made dense."""
        return first_row(self._run(X)[2], None, one_row=is_one_row(X))[0]

    def __call__(self, X: Any) -> Any:
        """A ``shap.Explanation`` (or :class:`shapgov.shap.Explanation`) of ``X``."""
        return self._output(X, *self._run(X))


class KernelExplainer(_Interventional):
    """Shapley values of any function against background rows, computed by shapgov's
    Kernel explainer: exact (every coalition) up to its player budget, else its unbiased
    sampler (seeded: the same call gives the same values) with standard errors.

    :param model: A function of a table returning ``(n,)`` or ``(n, K)`` outputs.
    :param data: Background rows, or ``shap.kmeans(...)`` (rows and weights).
    :param feature_names: Names for the returned explanation's columns.
    :param link: ``"identity"`` or ``"logit"`` (or ``shap.links``'s): with ``"logit"``
        the game is shap's ``v(S) = logit(mean_b f(x_S, b))`` on probabilities, the
        values and ``expected_value`` are log-odds and ``sigmoid(expected_value + sum)``
        rebuilds ``f(x)`` (probabilities of exactly 0 or 1 clipped to ``1e-15`` from
        them; see :mod:`shapgov.explainers.game_links`).
    :param keep_index: Accepted (shap passes a DataFrame's index to the model; shapgov
        passes the table's columns, and the values are the same).
    :param keep_index_ordered: Accepted, as ``keep_index``.
    :param nsamples: Default coalition budget of :meth:`shap_values` where the values
        are sampled (``"auto"``: shapgov's, ``2 * M + 2048`` per row and background row).
    :param random_state: Seed of the sampler (default 0).
    :param l1_reg: Accepted and not applied, as in :meth:`shap_values`.
    :raises ShapOptionError: Another link.
    :raises UnsupportedModelError: ``model`` is not callable (a ``TypeError``).
    """

    def __init__(
        self,
        model: Any,
        data: Any,
        feature_names: list[str] | None = None,
        link: Any = "identity",
        *,
        keep_index: bool = False,
        keep_index_ordered: bool = False,
        nsamples: int | str = "auto",
        random_state: int | None = None,
        l1_reg: Any = "num_features(10)",
    ) -> None:
        if not callable(model):
            raise UnsupportedModelError(
                f"KernelExplainer explains a function; got {type(model).__name__}: pass "
                "model.predict or model.predict_proba"
            )
        game_link = game_link_of(link)
        rows, weights = masker_rows(data, limit=None)
        super().__init__(model, rows, weights, feature_names)
        self.link = link
        self.game_link = game_link
        self.keep_index = keep_index
        self.keep_index_ordered = keep_index_ordered
        self.nsamples = nsamples
        self.random_state = random_state
        self.l1_reg = l1_reg
        self.feature_perturbation = "interventional"

    def _kernel_options(self, nsamples: int | str) -> dict[str, Any]:
        kernel: dict[str, Any] = {}
        budget = self.nsamples if nsamples == "auto" else nsamples
        if budget != "auto":
            kernel["n_samples"] = int(budget)
        if self.random_state is not None:
            kernel["random_state"] = int(self.random_state)
        return {"explainer_options": {"kernel": kernel}} if kernel else {}

    def shap_values(
        self,
        X: Any,
        nsamples: int | str = "auto",
        l1_reg: Any = "num_features(10)",
        silent: bool = False,
        gc_collect: bool = False,
    ) -> np.ndarray:
        """SHAP values ``(n, M)`` or ``(n, M, K)``; ``(M,)`` or ``(M, K)`` for a 1-D row.

        ``nsamples`` sets the sampler's budget where the values are not exact; ``l1_reg``
        is accepted and not applied: shapgov keeps every feature (shap's default selects
        at most 10 when few samples are drawn, which biases the others to 0).
        """
        values = self._run(X, **self._kernel_options(nsamples))[2]
        return first_row(values, None, one_row=is_one_row(X))[0]

    def explain(
        self,
        incoming_instance: Any,
        nsamples: int | str = "auto",
        l1_reg: Any = "num_features(10)",
        silent: bool = False,
    ) -> np.ndarray:
        """shap's legacy one-row call: the values of one row, ``(M,)`` or ``(M, K)``."""
        row = as_rows(incoming_instance)
        return self._run(row, **self._kernel_options(nsamples))[2][0]

    @staticmethod
    def not_equal(i: Any, j: Any) -> bool:
        """shap's test of two background values: numbers compare as numbers, missing
        values (None, NaN) equal each other, anything else compares by ``!=``."""

        def missing(v: Any) -> bool:
            return v is None or (isinstance(v, (float, np.floating)) and np.isnan(v))

        if missing(i) or missing(j):
            return not (missing(i) and missing(j))
        number = (int, float, np.number)
        if isinstance(i, number) != isinstance(j, number):
            try:
                return float(i) != float(j)
            except (TypeError, ValueError):
                return True
        return bool(i != j)

    def __call__(self, X: Any, l1_reg: Any = "num_features(10)", silent: bool = False) -> Any:
        """A ``shap.Explanation`` (or :class:`shapgov.shap.Explanation`) of ``X``."""
        return self._output(X, *self._run(X, **self._kernel_options("auto")))
