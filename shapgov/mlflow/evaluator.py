"""``mlflow.models.evaluate(..., evaluators=["shapgov"])``: the artifact set for a logged model.

Registered in the ``mlflow.model_evaluator`` entry-point group as ``shapgov``. A model
logged with a flavor shapgov can decompose (scikit-learn, LightGBM, XGBoost, CatBoost,
statsmodels; glum through the scikit-learn flavor) is
explained through its blueprint; any other pyfunc model is a black box for the Kernel
explainer.

``evaluator_config`` keys: ``sample`` (rows explained, default 500), ``background``
(background rows, default 200), ``random_state`` (0), ``permutation`` (also permutation
impact, needs targets; default True), ``analyses`` (XEMP and the SHAP-vs-XEMP
comparison; default True), ``top_k`` (3), ``additivity_threshold``, ``pass_tolerance``
and ``output``, passed to :func:`shapgov.explain`. The set includes the compliance
report.
"""

from __future__ import annotations

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
    if module in ("sklearn", "lightgbm", "xgboost", "catboost", "statsmodels", "glum"):
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
        from shapgov.mlflow import explain_and_log
        from shapgov.mlflow.sampling import sample_xy

        if model is None:
            raise ValueError("the shapgov evaluator needs a model, not only predictions")
        config = dict(evaluator_config or {})
        seed = int(config.get("random_state", 0))
        X, y = dataset.features_data, dataset.labels_data
        rows, labels = sample_xy(X, y, int(config.get("sample", 500)), seed)
        background, _ = sample_xy(X, None, int(config.get("background", 200)), seed + 1)
        options = {k: config[k] for k in _EXPLAIN_KEYS if k in config}
        try:
            e = explain_and_log(
                native_model(model),
                rows,
                run_id=run_id,
                y=labels if config.get("permutation", True) else None,
                background=background,
                analyses=config.get("analyses", True),
                top_k=int(config.get("top_k", 3)),
                random_state=seed,
                **options,
            )
        except AdditivityError as err:
            return EvaluationResult(
                metrics={"shapgov.max_normalized_mismatch": err.report.max_normalized_mismatch},
                artifacts={},
                run_id=run_id,
            )
        return EvaluationResult(
            metrics={
                "shapgov.max_normalized_mismatch": e.additivity.max_normalized_mismatch,
                "shapgov.rows": float(len(e)),
            },
            artifacts={},
            run_id=run_id,
        )
