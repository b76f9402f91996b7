"""``shapgov.shap.TreeExplainer``: shap's ``TreeExplainer`` API on shapgov's exact
TreeSHAP (both games), for any blueprint shapgov decomposes (pipelines, voting and
stacking ensembles, calibrated models: shap refuses them).

Source of the API followed: shap 0.51 (``shap.TreeExplainer``), its arguments, shapes and
``expected_value`` conventions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import ModelOutputError, ShapOptionError
from shapgov.shap.common import (
    PROBABILITY_TREES,
    as_rows,
    check_no_saabas,
    class_path,
    explanation_of,
    governed,
    shap_shaped,
)

#: shap's model_output -> shapgov's output
OUTPUTS = {
    "raw": "margin",
    "margin": "margin",
    "probability": "probability",
    "predict_proba": "probability",
    "predict": "prediction",
}


class TreeExplainer:
    """Exact TreeSHAP with shap's ``TreeExplainer`` interface.

    :param model: A fitted model (trees, or any blueprint shapgov decomposes).
    :param data: Background rows ``(b, M)``: the interventional game; None: the
        path-dependent game of the trees' training cover.
    :param model_output: ``"raw"`` (the margin, shap's default), ``"probability"``
        (interventional, needs ``data``) or ``"predict"``.
    :param feature_perturbation: ``"auto"`` (interventional with ``data``, else
        path-dependent), ``"interventional"`` or ``"tree_path_dependent"``.
    :param feature_names: Names for the returned explanation's columns.
    :param approximate: Refused when True (Saabas values; see :meth:`shap_values`).
    :param link: Accepted as None only (the link follows from ``model_output``).
    :param linearize_link: Accepted and ignored (no sampling to linearize).
    :raises ModelOutputError: ``model_output`` is ``"log_loss"`` or unknown.
    :raises ShapOptionError: ``approximate=True`` or a ``link``.
    """

    def __init__(
        self,
        model: Any,
        data: Any = None,
        model_output: str = "raw",
        feature_perturbation: str = "auto",
        feature_names: list[str] | None = None,
        approximate: Any = None,
        link: Any = None,
        linearize_link: Any = None,
    ) -> None:
        check_no_saabas(approximate)
        if model_output not in OUTPUTS:
            raise ModelOutputError(
                f"model_output={model_output!r}: shapgov explains the model's "
                f"{', '.join(sorted(OUTPUTS))} output; the log loss of a label needs the "
                "label's loss as the explained function (explain it with shapgov.explain on "
                "a callable)"
            )
        if link is not None:
            raise ShapOptionError(
                "link=: the tree explainer's link follows from model_output (the margin, "
                "or the probability through the model's own link)"
            )
        if feature_perturbation not in ("auto", "interventional", "tree_path_dependent"):
            raise ShapOptionError(
                f"feature_perturbation={feature_perturbation!r}: one of 'auto', "
                "'interventional', 'tree_path_dependent'"
            )
        self.model = model
        self.data = None if data is None else as_rows(getattr(data, "data", data))
        self.model_output = model_output
        self.feature_names = feature_names
        if feature_perturbation == "auto":
            feature_perturbation = (
                "interventional" if self.data is not None else ("tree_path_dependent")
            )
        self.feature_perturbation = feature_perturbation
        if (
            self.model_output != "raw"
            and OUTPUTS[model_output] != "margin"
            and (feature_perturbation == "tree_path_dependent")
        ):
            raise ShapOptionError(
                f"model_output={model_output!r} is a nonlinear function of the trees' margin: "
                "it is explained in the interventional game only; pass data (background rows)"
            )
        self._expected: Any = None
        self.last_explanation_: Any = None

    # -- shapgov ---------------------------------------------------------------------
    def _explain(self, X: Any, *, interactions: bool = False) -> tuple[Any, Any]:
        rows = as_rows(X)
        background = self.data if self.feature_perturbation == "interventional" else None
        result = governed(
            self.model,
            rows,
            background=background,
            feature_perturbation=self.feature_perturbation,
            output=OUTPUTS[self.model_output],
            interactions=interactions,
        )
        self.last_explanation_ = result
        return rows, result

    @property
    def _two_classes(self) -> bool:
        classes = getattr(self.model, "classes_", None)
        return (
            class_path(self.model) in PROBABILITY_TREES
            and classes is not None
            and len(classes) == 2
        )

    # -- shap's API ------------------------------------------------------------------
    @property
    def expected_value(self) -> Any:
        """The base value: a float for one output, ``(K,)`` for K (shap's convention).

        :raises ShapOptionError: No background and nothing explained yet, for a model
            whose base value needs a row to be computed.
        """
        if self._expected is None:
            if self.data is not None:
                self._explain_for_base(self.data.iloc[:1] if isinstance(
                    self.data, pd.DataFrame) else self.data[:1])  # fmt: skip
            else:
                self._explain_for_base(self._zero_row())
        return self._expected

    def _explain_for_base(self, row: Any) -> None:
        _, result = self._explain(row)
        self._expected = self._shaped(result)[1]

    def _shaped(self, result: Any) -> tuple[np.ndarray, Any]:
        """shap's shapes; a scikit-learn model's path-dependent base value of one output
        is a ``(1,)`` array in shap (its trees' value arrays), a float elsewhere."""
        values, expected = shap_shaped(
            result.values, result.expected_value, two_classes=self._two_classes
        )
        sklearn_trees = type(self.model).__module__.startswith("sklearn.")
        if (
            np.ndim(expected) == 0
            and sklearn_trees
            and (self.feature_perturbation == "tree_path_dependent")
        ):
            expected = np.array([expected])
        return values, expected

    def _zero_row(self) -> Any:
        names = getattr(self.model, "feature_names_in_", None)
        n = getattr(self.model, "n_features_in_", None)
        if names is not None:
            return pd.DataFrame([np.zeros(len(names))], columns=list(names))
        if n:
            return np.zeros((1, int(n)))
        raise ShapOptionError(
            "the path-dependent base value of this model needs one row to be computed: call "
            "shap_values first, or pass data"
        )

    def shap_values(
        self,
        X: Any,
        y: Any = None,
        tree_limit: int | None = None,
        approximate: bool = False,
        check_additivity: bool = True,
        from_call: bool = False,
    ) -> np.ndarray:
        """SHAP values ``(n, M)`` (one output) or ``(n, M, K)``, exact.

        ``check_additivity`` is accepted: shapgov's additivity policy always applies, and a
        withheld explanation raises :class:`~shapgov.errors.AdditivityError` (also shap's
        ``ExplainerError`` when shap is installed).

        :raises ShapOptionError: ``y`` (a loss explanation), ``tree_limit`` or
            ``approximate=True``.
        """
        check_no_saabas(approximate)
        self._check_call(y, tree_limit)
        _, result = self._explain(X)
        values, self._expected = self._shaped(result)
        return values

    def shap_interaction_values(self, X: Any, y: Any = None, tree_limit: int | None = None):
        """SHAP interaction values ``(n, M, M)`` or ``(n, M, M, K)``: each row's matrix sums
        to its SHAP values (Lundberg et al. 2020).

        :raises ShapOptionError: ``y`` or ``tree_limit``.
        """
        self._check_call(y, tree_limit)
        _, result = self._explain(X, interactions=True)
        inter = np.asarray(result.interaction_values)
        if self._two_classes and inter.ndim == 3:
            inter = np.stack([-inter, inter], axis=-1)
        self._expected = self._shaped(result)[1]
        return inter

    def __call__(
        self,
        X: Any,
        y: Any = None,
        interactions: bool = False,
        check_additivity: bool = True,
        approximate: bool = False,
    ) -> Any:
        """A ``shap.Explanation`` (shap installed) or :class:`shapgov.shap.Explanation` of
        ``X``; with ``interactions`` its values are the interaction values."""
        check_no_saabas(approximate)
        self._check_call(y, None)
        rows, result = self._explain(X, interactions=interactions)
        values, self._expected = self._shaped(result)
        if interactions:
            values = np.asarray(result.interaction_values)
            if self._two_classes and values.ndim == 3:
                values = np.stack([-values, values], axis=-1)
        return explanation_of(
            values, self._expected, rows, result, feature_names=self.feature_names
        )

    @staticmethod
    def _check_call(y: Any, tree_limit: Any) -> None:
        if y is not None:
            raise ShapOptionError(
                "y= asks for the explanation of a loss (model_output='log_loss'), which "
                "shapgov does not compute; explain the model's output instead"
            )
        if tree_limit not in (None, -1):
            raise ShapOptionError(
                "tree_limit=: shapgov explains the whole fitted model; refit or slice the "
                "model to the trees wanted (e.g. LightGBM's num_iteration at fit)"
            )
