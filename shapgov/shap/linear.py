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
from shapgov.shap.common import as_rows, explanation_of, governed, shap_shaped

#: Rows an Independent masker keeps (shap's ``max_samples`` default).
MASKER_ROWS = 100


def masker_rows(masker: Any, *, limit: int | None) -> tuple[Any, np.ndarray | None]:
    """``(background rows, weights or None)`` of a masker, shap's way (see the module).

    :raises ShapOptionError: A (mean, covariance) masker (the correlation-dependent game).
    """
    if isinstance(masker, tuple):
        raise ShapOptionError(
            "a (mean, covariance) masker asks for the correlation-dependent game of a "
            "Gaussian model, which shapgov does not play; pass background rows (the "
            "interventional game)"
        )
    weights = getattr(masker, "weights", None)
    rows = getattr(masker, "data", masker)
    rows = as_rows(rows)
    if weights is not None:
        return rows, np.asarray(weights, dtype=float)
    if limit is not None and len(rows) > limit:
        from sklearn.utils import resample

        rows = resample(rows, n_samples=limit, random_state=0, replace=False)
    return rows, None


class _Interventional:
    """An explainer of ``model`` against background rows, in shap's shapes."""

    def __init__(self, model: Any, rows: Any, weights: np.ndarray | None, names: Any) -> None:
        self.model = model
        self.data = rows
        self.weights = weights
        self.feature_names = names
        self._expected: Any = None
        self.last_explanation_: Any = None

    def _run(self, X: Any, **options: Any) -> tuple[Any, Any, np.ndarray]:
        rows = as_rows(X)
        result = governed(
            self.model,
            rows,
            background=self.data,
            background_weights=self.weights,
            feature_perturbation="interventional",
            **options,
        )
        self.last_explanation_ = result
        values, self._expected = shap_shaped(
            result.values, result.expected_value, two_classes=False
        )
        return rows, result, values

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

    :param model: A fitted linear model (or a pipeline ending in one).
    :param masker: Background rows, a shap masker with ``.data``, or ``shap.kmeans``.
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
        super().__init__(model, rows, weights, None)
        self.feature_perturbation = "interventional"

    def shap_values(self, X: Any) -> np.ndarray:
        """SHAP values ``(n, M)`` or ``(n, M, K)``."""
        return self._run(X)[2]

    def __call__(self, X: Any) -> Any:
        """A ``shap.Explanation`` (or :class:`shapgov.shap.Explanation`) of ``X``."""
        rows, result, values = self._run(X)
        return explanation_of(values, self._expected, rows, result, feature_names=None)


class KernelExplainer(_Interventional):
    """Shapley values of any function against background rows, computed by shapgov's
    Kernel explainer: exact (every coalition) up to its player budget, else its unbiased
    sampler with standard errors.

    :param model: A function of a table returning ``(n,)`` or ``(n, K)`` outputs.
    :param data: Background rows, or ``shap.kmeans(...)`` (rows and weights).
    :param feature_names: Names for the returned explanation's columns.
    :param link: ``"identity"`` only (see the error for ``"logit"``).
    :raises ShapOptionError: Another link.
    :raises UnsupportedModelError: ``model`` is not callable (a ``TypeError``).
    """

    def __init__(
        self, model: Any, data: Any, feature_names: list[str] | None = None, link: Any = "identity"
    ) -> None:
        if not callable(model):
            raise UnsupportedModelError(
                f"KernelExplainer explains a function; got {type(model).__name__}: pass "
                "model.predict or model.predict_proba"
            )
        if link not in ("identity", None) and getattr(link, "__name__", "") != "identity":
            raise ShapOptionError(
                "link='logit': shap's Kernel estimate with a logit link matches "
                "logit(f(x)) - logit(mean f) and has no single game shapgov plays; explain "
                "the log-odds function itself (a callable returning them)"
            )
        rows, weights = masker_rows(data, limit=None)
        super().__init__(model, rows, weights, feature_names)
        self.feature_perturbation = "interventional"

    def shap_values(
        self,
        X: Any,
        nsamples: int | str = "auto",
        l1_reg: Any = "num_features(10)",
        silent: bool = False,
        gc_collect: bool = False,
    ) -> np.ndarray:
        """SHAP values ``(n, M)`` or ``(n, M, K)``.

        ``nsamples`` sets the sampler's budget where the values are not exact; ``l1_reg``
        is accepted and not applied: shapgov keeps every feature (shap's default selects
        at most 10 when few samples are drawn, which biases the others to 0).
        """
        options = {}
        if nsamples != "auto":
            options = {"explainer_options": {"kernel": {"n_samples": int(nsamples)}}}
        return self._run(X, **options)[2]

    def __call__(self, X: Any, l1_reg: Any = "num_features(10)", silent: bool = False) -> Any:
        """A ``shap.Explanation`` (or :class:`shapgov.shap.Explanation`) of ``X``."""
        rows, result, values = self._run(X)
        return explanation_of(
            values, self._expected, rows, result, feature_names=self.feature_names
        )
