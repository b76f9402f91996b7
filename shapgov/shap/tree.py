"""``shapgov.shap.TreeExplainer``: shap's ``TreeExplainer`` API on shapgov's exact
TreeSHAP (both games), for any blueprint shapgov decomposes (pipelines, voting and
stacking ensembles, calibrated models: shap refuses them).

Source of the API followed: shap 0.51 (``shap.TreeExplainer``), its arguments, shapes and
``expected_value`` conventions.
"""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import (
    AdditivityCheckError,
    ModelOutputError,
    ShapOptionError,
    UnsupportedModelError,
)
from shapgov.shap.common import (
    PROBABILITY_TREES,
    Serializable,
    as_rows,
    check_no_saabas,
    class_path,
    explanation_of,
    first_row,
    governed,
    is_one_row,
    shap_error_type,
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
FEATURE_PERTURBATIONS = ("auto", "interventional", "tree_path_dependent")


def _from_booster(model: Any) -> tuple[Any, bool]:
    """A bare ``xgboost.Booster`` as its scikit-learn wrapper (a classifier for logistic
    and multiclass objectives), which shapgov's XGBoost plugin reads; ``(model, wrapped)``."""
    if class_path(model) != "xgboost.core.Booster":
        return model, False
    import xgboost

    objective = json.loads(model.save_config())["learner"]["objective"]["name"]
    classifier = objective.startswith(("binary:", "multi:")) or objective == "reg:logistic"
    wrapper = xgboost.XGBClassifier() if classifier else xgboost.XGBRegressor()
    wrapper.load_model(bytearray(model.save_raw("json")))
    return wrapper, True


def _first_trees(model: Any, limit: int) -> Any:
    """A copy of ``model`` that predicts with its first ``limit`` boosting rounds.

    :raises ShapOptionError: A model shapgov cannot slice.
    """
    name = class_path(model)
    if name.startswith("sklearn.ensemble._gb."):
        out = copy.copy(model)
        out.estimators_ = model.estimators_[:limit]
        out.n_estimators_ = min(limit, model.n_estimators_)
        out.n_estimators = out.n_estimators_
        return out
    if name.startswith("xgboost.sklearn."):
        out = copy.copy(model)
        out._Booster = model.get_booster()[:limit]
        return out
    raise ShapOptionError(
        f"tree_limit=: shapgov slices scikit-learn gradient boosting and XGBoost models, not "
        f"{type(model).__name__}; refit or slice the model to the trees wanted (e.g. "
        "LightGBM's num_iteration)"
    )


class TreeExplainer(Serializable):
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
    :raises ShapOptionError: ``approximate=True`` or a ``link``; an unknown
        ``feature_perturbation`` (also shap's ``InvalidFeaturePerturbationError``).
    :raises UnsupportedModelError: A model no shapgov plugin reads (also shap's
        ``InvalidModelError``, "Model type not yet supported by TreeExplainer").

    A bare ``xgboost.Booster`` is read through its scikit-learn wrapper (rows are taken
    by position, as the Booster takes them); ``"interventional"`` without ``data`` falls
    back to ``"tree_path_dependent"`` with shap's ``FutureWarning``.
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
        if feature_perturbation not in FEATURE_PERTURBATIONS:
            raise shap_error_type("InvalidFeaturePerturbationError", ShapOptionError)(
                "feature_perturbation must be 'auto', 'interventional', or "
                f"'tree_path_dependent'. Got {feature_perturbation} instead."
            )
        if feature_perturbation == "interventional" and data is None:
            warnings.warn(
                "In the future, passing feature_perturbation='interventional' without "
                "providing a background dataset will raise an error. Please provide a "
                "background dataset to continue using the interventional approach or set "
                "feature_perturbation='auto' to automatically switch approaches.",
                FutureWarning,
                stacklevel=2,
            )
            feature_perturbation = "tree_path_dependent"
        self.model = model
        self._model, self._by_position = _from_booster(model)
        self._check_model()
        # a masker's rows (shap's Independent); a scipy matrix's .data is its stored entries
        rows = data if data is None or hasattr(data, "tocsr") else getattr(data, "data", data)
        self.data = None if rows is None else as_rows(rows)
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
    def _check_model(self) -> None:
        """Refuse at construction, as shap does, a model no shapgov plugin can read."""
        from shapgov.decomposition.decompose import decompose

        try:
            decompose(self._model, fallback=None)
        except UnsupportedModelError as err:
            raise shap_error_type("InvalidModelError", UnsupportedModelError)(
                f"Model type not yet supported by TreeExplainer: {type(self.model)} ({err})"
            ) from err

    def _explain(self, X: Any, *, interactions: bool = False, model: Any = None) -> tuple[Any, Any]:
        rows = as_rows(X)
        background = self.data if self.feature_perturbation == "interventional" else None
        if self._by_position:
            rows = np.asarray(rows, dtype=float)
            background = None if background is None else np.asarray(background, dtype=float)
        result = governed(
            self._model if model is None else model,
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
        classes = getattr(self._model, "classes_", None)
        return (
            class_path(self._model) in PROBABILITY_TREES
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
        sklearn_trees = type(self._model).__module__.startswith("sklearn.")
        if (
            np.ndim(expected) == 0
            and sklearn_trees
            and (self.feature_perturbation == "tree_path_dependent")
        ):
            expected = np.array([expected])
        return values, expected

    def _zero_row(self) -> Any:
        names = getattr(self._model, "feature_names_in_", None)
        n = getattr(self._model, "n_features_in_", None)
        if names is not None and not self._by_position:
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
        ``ExplainerError`` when shap is installed). ``y`` is accepted and unused, as in
        shap for every ``model_output`` but the log loss (which shapgov refuses).
        ``tree_limit`` explains a copy of the model cut to its first trees (scikit-learn
        gradient boosting, XGBoost); its values add up to that copy's output. A 1-D row
        gives 1-D values.

        :raises ShapOptionError: ``approximate=True``, or a ``tree_limit`` on a model
            shapgov cannot cut.
        """
        check_no_saabas(approximate)
        model = self._limited(tree_limit)
        _, result = self._explain(X, model=model)
        values, expected = self._shaped(result)
        if model is None:
            self._expected = expected
        return first_row(values, expected, one_row=is_one_row(X))[0]

    def shap_interaction_values(self, X: Any, y: Any = None, tree_limit: int | None = None):
        """SHAP interaction values ``(n, M, M)`` or ``(n, M, M, K)``: each row's matrix sums
        to its SHAP values (Lundberg et al. 2020).

        :raises ShapOptionError: A ``tree_limit`` on a model shapgov cannot cut.
        """
        model = self._limited(tree_limit)
        _, result = self._explain(X, interactions=True, model=model)
        inter = np.asarray(result.interaction_values)
        if self._two_classes and inter.ndim == 3:
            inter = np.stack([-inter, inter], axis=-1)
        if model is None:
            self._expected = self._shaped(result)[1]
        return first_row(inter, None, one_row=is_one_row(X))[0]

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
        rows, result = self._explain(X, interactions=interactions)
        values, self._expected = self._shaped(result)
        if interactions:
            values = np.asarray(result.interaction_values)
            if self._two_classes and values.ndim == 3:
                values = np.stack([-values, values], axis=-1)
        # a (1,) base value (shap's scikit-learn trees) is one number per row here, as in shap
        expected = self._expected
        if np.ndim(expected) == 1 and np.shape(expected)[0] == 1 and values.ndim == 2:
            expected = float(expected[0])
        out = explanation_of(values, expected, rows, result, feature_names=self.feature_names)
        if not is_one_row(X):
            return out
        # one 1-D row: values without the row axis, base values with it (shap 0.51 tiles
        # the base value over the values' first axis: ``base_values[0]`` is the base value)
        row = out[0]
        row.base_values = np.asarray(out.base_values)[:1]
        return row

    def _limited(self, tree_limit: int | None) -> Any:
        if tree_limit is None or tree_limit < 0:
            return None
        return _first_trees(self._model, int(tree_limit))

    def assert_additivity(self, phi: Any, model_output: np.ndarray) -> None:
        """shap's check of given values against given outputs: ``expected_value +
        phi.sum(-1)`` within ``allclose(atol=1e-2, rtol=1e-2)`` of ``model_output`` (per
        output for a list ``phi``).

        :raises AdditivityCheckError: They differ (also shap's ``ExplainerError``).
        """
        expected = np.atleast_1d(self.expected_value)
        pairs = (
            [(expected[i] + np.asarray(p).sum(-1), model_output[:, i]) for i, p in enumerate(phi)]
            if isinstance(phi, list)
            else [(expected[0] + np.asarray(phi).sum(-1), model_output)]
        )
        for total, output in pairs:
            if not np.allclose(total, output, atol=1e-2, rtol=1e-2):
                worst = int(np.argmax(np.abs(total - output)))
                raise shap_error_type("ExplainerError", AdditivityCheckError)(
                    f"the SHAP values of row {worst} sum to {total[worst]:f} with the base "
                    f"value, the model output is {output[worst]:f}"
                )
