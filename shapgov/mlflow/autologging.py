"""``shapgov.mlflow.autolog()``: explain and log after every ``fit`` of a supported model.

Follows MLflow's autologging conventions (``autologging_integration``, ``disable``,
``silent``; failures are warnings, the user's ``fit`` never breaks). After the outermost
``fit`` of a scikit-learn predictor or pipeline, or of a LightGBM scikit-learn model, a
seeded sample of the training rows is explained against a seeded background sample and
the artifact set is logged to the fit's run: the active run, or the run MLflow's own
autologging just opened and closed for this fit.

MLflow's ``safe_patch`` always wraps a class's *original* ``fit``, so a second
integration patching the same method replaces the first. shapgov therefore wraps
whatever ``fit`` is in place (MLflow's patch included) and restores exactly that on
``disable=True``. Call ``shapgov.mlflow.autolog()`` after ``mlflow.autolog()`` (or a
flavor's ``autolog()``): re-enabling MLflow's autologging later re-patches ``fit`` from
the original and drops shapgov's wrapper.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Collection
from typing import Any

from mlflow.utils.autologging_utils import autologging_integration, autologging_is_disabled

FLAVOR = "shapgov"
_depth = threading.local()
_wrapped: dict[type, Any] = {}  # class -> the fit it had before shapgov wrapped it


def _classes() -> list[type]:
    from mlflow.sklearn import _gen_estimators_to_patch

    out = [c for c in _gen_estimators_to_patch() if hasattr(c, "predict")]
    try:
        import lightgbm

        out += [lightgbm.LGBMRegressor, lightgbm.LGBMClassifier]
    except ImportError:  # pragma: no cover
        pass
    return out


@autologging_integration(FLAVOR)
def _register(disable: bool = False, silent: bool = False) -> None:
    """MLflow's bookkeeping of the integration (its config answers ``autologging_is_disabled``);
    MLflow skips this body when ``disable=True``, so the wrapping lives in :func:`autolog`."""


def autolog(
    sample: int = 1000,
    background: int = 200,
    random_state: int = 0,
    explain_options: dict[str, Any] | None = None,
    analyses: bool | Collection[str] = False,
    disable: bool = False,
    silent: bool = False,
) -> None:
    """Explain every fitted model on a sample of its training data and log the set.

    :param sample: Training rows explained (seeded).
    :param background: Training rows used as the background (seeded).
    :param explain_options: Passed to :func:`shapgov.explain`.
    :param analyses: Analyses added to every fit's set beyond the values, SHAP Feature
        Impact, Prediction Explanations and the report (see
        :func:`shapgov.mlflow.explain_and_log`): ``False`` by default, so a fit pays the
        explanation and the report only; ``True`` for permutation impact (on the fit's
        targets), XEMP and the SHAP-vs-XEMP comparison, or some of them by name
        (``("xemp", "comparison")``: cheap for tree models, which XEMP walks).
    :param disable: Turn shapgov autologging off.
    :param silent: Suppress shapgov's autologging warnings.
    """
    from shapgov.mlflow import chosen_analyses

    chosen_analyses(analyses)  # a typo fails here, not as a warning after every fit
    config = {
        "sample": sample,
        "background": background,
        "random_state": random_state,
        "explain_options": dict(explain_options or {}),
        "analyses": analyses,
        "silent": silent,
    }

    _register(disable=disable, silent=silent)
    _unwrap()
    if disable:
        return
    for cls in _classes():
        if "fit" in vars(cls):
            _wrap(cls, config)


def _wrap(cls: type, config: dict[str, Any]) -> None:
    inner = vars(cls)["fit"]

    def fit(self: Any, X: Any, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_depth, "value", 0)
        _depth.value = depth + 1
        started = time.time() * 1000
        try:
            result = inner(self, X, y, *args, **kwargs)
        finally:
            _depth.value = depth
        if depth == 0 and not autologging_is_disabled(FLAVOR):
            _explain_after_fit(self, X, y, started, config)
        return result

    fit.__wrapped__ = inner  # type: ignore[attr-defined]
    fit.__doc__ = getattr(inner, "__doc__", None)
    _wrapped[cls] = inner
    cls.fit = fit


def _unwrap() -> None:
    for cls, inner in list(_wrapped.items()):
        current = vars(cls).get("fit")
        if getattr(current, "__wrapped__", None) is inner:
            cls.fit = inner
        del _wrapped[cls]


def _fit_run_id(started_ms: float) -> str | None:
    import mlflow

    run = mlflow.active_run()
    if run is not None:
        return run.info.run_id
    last = mlflow.last_active_run()
    if last is not None and last.info.start_time >= started_ms - 1000:
        return last.info.run_id
    return None


def _explain_after_fit(
    model: Any, X: Any, y: Any, started_ms: float, config: dict[str, Any]
) -> None:
    from shapgov.errors import AdditivityError
    from shapgov.mlflow import explain_and_log
    from shapgov.mlflow.sampling import sample_xy

    run_id = _fit_run_id(started_ms)
    if run_id is None:
        return
    try:
        seed = config["random_state"]
        rows, labels = sample_xy(X, y, config["sample"], seed)
        bg, _ = sample_xy(X, None, config["background"], seed + 1)
        try:
            explain_and_log(
                model,
                rows,
                run_id=run_id,
                y=labels,
                background=bg,
                analyses=config["analyses"],
                random_state=seed,
                **config["explain_options"],
            )
        except AdditivityError:
            return  # logged as a failure set; the fit itself succeeded
    except Exception as err:
        if not config["silent"]:
            warnings.warn(
                f"shapgov autologging could not explain {type(model).__name__}: {err}",
                stacklevel=3,
            )
