"""``mlflow.models.evaluate(..., evaluators=["shapgov"])``: the artifact set for a logged model.

Registered in the ``mlflow.model_evaluator`` entry-point group as ``shapgov``. A model
logged with a flavor shapgov can decompose (scikit-learn, LightGBM, XGBoost) is explained
through its blueprint; any other pyfunc model is a black box for the Kernel explainer.

``evaluator_config`` keys: ``sample`` (rows explained, default 500), ``background``
(background rows, default 200), ``random_state`` (0), ``permutation`` (also permutation
impact, needs targets; default True), ``top_k`` (3), ``additivity_threshold``,
``pass_tolerance`` and ``output``, passed to :func:`shapgov.explain`.
"""

from __future__ import annotations

import time
from typing import Any

from mlflow.models.evaluation.base import EvaluationResult, ModelEvaluator

from shapgov.errors import AdditivityError

_EXPLAIN_KEYS = ("additivity_threshold", "pass_tolerance", "output")


def native_model(model: Any) -> Any:
    """The flavor's own model inside a pyfunc model when shapgov can decompose it, else a
    :class:`shapgov.opaque.BlackBox` around the pyfunc model."""
    from shapgov.opaque import BlackBox

    try:
        raw = model.get_raw_model()
    except Exception:
        raw = None
    module = type(raw).__module__.split(".")[0] if raw is not None else ""
    if module in ("sklearn", "lightgbm", "xgboost"):
        return raw
    return BlackBox(model)


class ShapgovEvaluator(ModelEvaluator):
    """Logs shapgov's artifact set for the evaluated model."""

    @classmethod
    def can_evaluate(cls, *, model_type: str, evaluator_config: dict, **kwargs: Any) -> bool:
        return model_type in ("regressor", "classifier")

    def evaluate(
        self,
        *,
        model_type: str,
        dataset: Any,
        run_id: str,
        evaluator_config: dict,
        model: Any = None,
        extra_metrics: Any = None,
        custom_artifacts: Any = None,
        predictions: Any = None,
        **kwargs: Any,
    ) -> EvaluationResult:
        import shapgov
        from shapgov.impact import sample_rows
        from shapgov.mlflow import log_explanation, log_failure

        if model is None:
            raise ValueError("the shapgov evaluator needs a model, not only predictions")
        config = dict(evaluator_config or {})
        seed = config.get("random_state", 0)
        X = dataset.features_data
        y = dataset.labels_data
        target = native_model(model)
        rows = sample_rows(X, int(config.get("sample", 500)), seed)
        background = sample_rows(X, int(config.get("background", 200)), seed + 1)
        options = {k: config[k] for k in _EXPLAIN_KEYS if k in config}
        start = time.perf_counter()
        try:
            e = shapgov.explain(target, rows, background=background, **options)
        except AdditivityError as err:
            log_failure(err.report, run_id=run_id)
            return EvaluationResult(
                metrics={"shapgov.max_normalized_mismatch": err.report.max_normalized_mismatch},
                artifacts={},
                run_id=run_id,
            )
        permutation = None
        if config.get("permutation", True) and y is not None:
            permutation = shapgov.permutation_impact(target, X, y, random_state=seed)
        log_explanation(
            e,
            run_id=run_id,
            permutation=permutation,
            seconds=time.perf_counter() - start,
            top_k=int(config.get("top_k", 3)),
        )
        report = e.additivity
        return EvaluationResult(
            metrics={
                "shapgov.max_normalized_mismatch": report.max_normalized_mismatch,
                "shapgov.rows": float(len(e)),
            },
            artifacts={},
            run_id=run_id,
        )
