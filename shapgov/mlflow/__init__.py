"""shapgov inside MLflow: log explanation artifact sets to runs.

Importing this package does not import mlflow itself: the functions import it when called,
so ``import shapgov.mlflow`` stays cheap (as do the CLI and the Spark publisher, which
import mlflow inside the functions that need it).
"""

from __future__ import annotations

import tempfile
import time as clock
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from shapgov.combination.policy import AdditivityReport
from shapgov.mlflow.artifacts import MANIFEST, write_failure, write_set
from shapgov.mlflow.failures import tracking_errors

ARTIFACT_PATH = "shapgov"

__all__ = [
    "ANALYSES",
    "ARTIFACT_PATH",
    "autolog",
    "explain_and_log",
    "log_explaining_model",
    "log_explanation",
    "log_failure",
    "report",
]


def autolog(**options: Any) -> None:
    """See :func:`shapgov.autolog`."""
    from shapgov.mlflow.autologging import autolog as _autolog

    _autolog(**options)


def log_explaining_model(model_uri: str, **options: Any) -> Any:
    """See :func:`shapgov.mlflow.serving.log_explaining_model`."""
    from shapgov.mlflow.serving import log_explaining_model as _log

    return _log(model_uri, **options)


def report(**options: Any) -> Any:
    """See :func:`shapgov.report`."""
    from shapgov.mlflow.reporting import report as _report

    return _report(**options)


def _run_id(run_id: str | None) -> str:
    import mlflow

    if run_id is not None:
        return run_id
    run = mlflow.active_run()
    if run is None:
        from shapgov.errors import InputError

        raise InputError("no active MLflow run; start one (mlflow.start_run()) or pass run_id=")
    return run.info.run_id


def _retry(run_id: str) -> str:
    return (
        f"call it again with run_id={run_id!r}: the retry uploads the whole set again, "
        "manifest last, over what is there (no cleanup needed)"
    )


def _upload(run_id: str, directory: Path) -> None:
    """Every file but the manifest, then the manifest: a set without its manifest is
    incomplete by definition, so an interrupted upload is never mistaken for a set."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    for path in sorted(directory.iterdir()):
        if path.name != MANIFEST:
            client.log_artifact(run_id, str(path), ARTIFACT_PATH)
    client.log_artifact(run_id, str(directory / MANIFEST), ARTIFACT_PATH)


def _write_report(directory: Path, run_id: str, report: bool) -> None:
    """The compliance report beside the set, before anything is uploaded: a report that
    cannot be built stops the upload, so no set is logged without its report."""
    if not report:
        return
    from mlflow.tracking import MlflowClient

    from shapgov.sinks.compliance import write_report

    write_report(directory, run=MlflowClient().get_run(run_id))


def _report_figures(directory: Path, manifest: dict[str, Any]) -> None:
    """The report's figures, drawn into the set before its manifest (so hashed in it): the
    report written with the set and later reports of it embed them, not drawn again."""
    from shapgov.sinks.compliance import write_figures

    write_figures(directory, manifest)


def log_explanation(
    explanation: Any,
    *,
    run_id: str | None = None,
    permutation: Any = None,
    xemp: Any = None,
    comparison: Any = None,
    over_time: Any = None,
    reasons: Any = None,
    fairness: Any = None,
    attachments: dict[str, Any] | None = None,
    seconds: float | None = None,
    top_k: int = 3,
    report: bool = True,
) -> dict[str, Any]:
    """Log the artifact set of ``explanation`` to a run (the active one by default).

    The set is written to a temporary directory with its compliance report
    (``report=False`` leaves the report out; approval then rejects the run) and uploaded
    with the manifest last. Then metrics (``shapgov.max_normalized_mismatch``,
    ``shapgov.mean_normalized_mismatch``, ``shapgov.rows``, ``shapgov.seconds``) and tags
    (``shapgov.status``, ``shapgov.explainers.base``, ``shapgov.version``) in one batch.
    With ``over_time`` (an :class:`~shapgov.analyses.over_time.OverTime` of the same
    explanation) the set holds its tables, and every window's figures are logged as step
    metrics (step = window index, timestamp = window end; see
    ``shapgov.mlflow.timeline.window_metrics``), so ``mlflow ui`` charts them. With
    ``reasons`` (the :class:`~shapgov.adverse_action.derive.AdverseActionReasons` of the
    same rows) the set holds the adverse-action reasons and the run gets the metrics
    ``shapgov.reasons.declined`` and, when measured, ``shapgov.reasons.stability``;
    ``fairness`` (a :class:`~shapgov.analyses.fairness.Fairness` of the same rows): the
    fair-lending tables, and the metrics ``shapgov.fairness.min_air`` and
    ``shapgov.fairness.max_proxy_score``.

    :returns: The manifest.
    :raises TrackingUnavailableError: The tracking server did not answer; call again with
        the same ``run_id`` (the set is uploaded whole again, manifest last).
    """
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    from shapgov._version import __version__

    rid = _run_id(run_id)
    with tracking_errors(f"logging the shapgov set to run {rid}", retry=_retry(rid)):
        with tempfile.TemporaryDirectory(prefix="shapgov-") as tmp:
            manifest = write_set(
                Path(tmp),
                explanation,
                permutation=permutation,
                xemp=xemp,
                comparison=comparison,
                over_time=over_time,
                reasons=reasons,
                fairness=fairness,
                attachments=attachments,
                top_k=top_k,
                run_id=rid,
                logged_by=_logged_by(),
                before_manifest=_report_figures if report else None,
            )
            _write_report(Path(tmp), rid, report)
            _upload(rid, Path(tmp))
        additivity = explanation.additivity
        now = int(clock.time() * 1000)
        metrics = [
            Metric("shapgov.max_normalized_mismatch", additivity.max_normalized_mismatch, now, 0),
            Metric("shapgov.mean_normalized_mismatch", additivity.mean_normalized_mismatch, now, 0),
            Metric("shapgov.rows", float(len(explanation)), now, 0),
        ]
        if seconds is not None:
            metrics.append(Metric("shapgov.seconds", float(seconds), now, 0))
        if fairness is not None:
            air = fairness.summary.get("min_air")
            if air is not None:
                metrics.append(Metric("shapgov.fairness.min_air", float(air), now, 0))
            proxy = fairness.summary.get("max_proxy")
            if proxy is not None:
                metrics.append(Metric("shapgov.fairness.max_proxy_score", float(proxy), now, 0))
            if fairness.windows is not None:  # one step per window, in window order
                compared = fairness.windows[
                    fairness.windows["group"] != fairness.windows["reference"]
                ]
                lowest = compared.groupby("window", sort=False)["air"].min()
                name = "shapgov.fairness.window_min_air"
                for step, air in enumerate(lowest.to_numpy(dtype=float)):
                    if air == air:  # not NaN: a window with both groups
                        metrics.append(Metric(name, float(air), now, step))
        if reasons is not None:
            declined = float(reasons.declined.sum())
            metrics.append(Metric("shapgov.reasons.declined", declined, now, 0))
            kept = (reasons.stability or {}).get("mean_share_kept")
            if kept is not None:
                metrics.append(Metric("shapgov.reasons.stability", float(kept), now, 0))
        explainers = sorted(set(explanation.explainers.values()))
        tags = [
            RunTag("shapgov.status", additivity.status),
            RunTag("shapgov.explainers.base", ",".join(explainers)),
            RunTag("shapgov.version", __version__),
        ]
        client = MlflowClient()
        client.log_batch(rid, metrics=metrics, tags=tags)
        if over_time is not None:
            from shapgov.mlflow.timeline import log_window_metrics

            log_window_metrics(client, rid, over_time)
    return manifest


def log_failure(
    report: AdditivityReport, *, run_id: str | None = None, with_report: bool = True
) -> dict[str, Any]:
    """Log a failed additivity check: its diagnostics, the compliance report that shows
    them, and ``shapgov.status = fail``. Never values."""
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    from shapgov._version import __version__

    rid = _run_id(run_id)
    with tracking_errors(f"logging the failed check to run {rid}", retry=_retry(rid)):
        with tempfile.TemporaryDirectory(prefix="shapgov-") as tmp:
            manifest = write_failure(Path(tmp), report, run_id=rid)
            _write_report(Path(tmp), rid, with_report)
            _upload(rid, Path(tmp))
        now = int(clock.time() * 1000)
        MlflowClient().log_batch(
            rid,
            metrics=[
                Metric("shapgov.max_normalized_mismatch", report.max_normalized_mismatch, now, 0)
            ],
            tags=[RunTag("shapgov.status", "fail"), RunTag("shapgov.version", __version__)],
        )
    return manifest


#: The analyses :func:`explain_and_log` can add to a set (each beyond SHAP Feature Impact
#: and Prediction Explanations, which every set holds).
ANALYSES = ("permutation", "xemp", "comparison")


def chosen_analyses(analyses: bool | Collection[str]) -> frozenset[str]:
    """``True``: all of :data:`ANALYSES`; ``False``: none; else the names given.

    :raises InputError: An unknown name, or the comparison without XEMP.
    """
    from shapgov.errors import InputError

    if analyses is True:
        return frozenset(ANALYSES)
    if analyses is False or analyses is None:
        return frozenset()
    if isinstance(analyses, str):
        analyses = [analyses]
    chosen = frozenset(analyses)
    unknown = chosen - set(ANALYSES)
    if unknown:
        raise InputError(f"unknown analyses {sorted(unknown)}; choose from {list(ANALYSES)}")
    if "comparison" in chosen and "xemp" not in chosen:
        raise InputError("the SHAP-vs-XEMP comparison needs XEMP; add 'xemp' to analyses")
    return chosen


def explain_and_log(
    model: Any,
    X: Any,
    *,
    run_id: str | None = None,
    y: Any = None,
    training: Any = None,
    analyses: bool | Collection[str] = True,
    top_k: int = 3,
    random_state: int = 0,
    report: bool = True,
    over_time: Mapping[str, Any] | None = None,
    reasons: Mapping[str, Any] | None = None,
    fairness: Mapping[str, Any] | None = None,
    **options: Any,
) -> Any:
    """:func:`shapgov.explain` ``X`` and log the whole set; on an additivity failure, log
    the diagnostics (no values) and re-raise :class:`shapgov.AdditivityError`.

    Every set holds the values, SHAP Feature Impact and Prediction Explanations. The
    analyses (``True``: all; ``False``: none; or some of :data:`ANALYSES`) add
    ``"permutation"`` impact with redundancy marks (when ``y`` is given; a seeded sample,
    predicted in batches), ``"xemp"`` strengths of the explained rows with exemplars from
    ``training`` (default: the background, else ``X``; tree models are walked, others
    predicted) and the SHAP-vs-XEMP ``"comparison"``.

    Cost (``python benchmarks/bench_governance.py``): for a LightGBM model on 10,000 x 50
    rows the whole call takes a few times the bare explanation; for models that are not
    trees, XEMP's predict calls dominate (rows x features x exemplars predictions).

    :param over_time: Options of :func:`shapgov.over_time` (``{"time": "month", "freq":
        "M"}``, plus ``windows``, ``reference``, ``players``, ``alpha``, ...): the rows are
        explained once through it, the set gains its tables and the run its per-window
        step metrics. The explained rows are then those in a window, in time order.
    :param reasons: Options of :func:`shapgov.reasons` (``catalogue``, ``decision``,
        ``reference`` required; ``protected``, ``population``, ``max_reasons``,
        ``min_share``, ``stability`` (default here: 20 resamples), ``random_state``): the
        adverse-action reasons of the explained rows join the set. A protected attribute
        or a bad catalogue raises before anything is logged.
    :param fairness: Options of :func:`shapgov.fairness` (``protected`` and ``decision``
        required, one protected row per row of ``X``; ``reference``, ``air_threshold``,
        ``alpha``, ``min_group_size``, ``max_proxy_score``, ...; ``y`` defaults to this
        call's ``y``): the fair-lending checks of the explained rows join the set (their
        tables and summary; the protected table only as its SHA-256 and group counts).
    :param options: Passed to :func:`shapgov.explain` (``background=``, ``output=``, ...).
    :returns: The :class:`shapgov.Explanation`.
    :raises InputError: Bad options (an unknown analysis, ...).
    :raises TrackingUnavailableError: The tracking server did not answer while the set was
        logged; call again with the same ``run_id``: the set is uploaded whole again over
        the incomplete one (no cleanup), and approval rejects the incomplete one meanwhile.
    """
    from shapgov.registry import shared_parses

    chosen = chosen_analyses(analyses)
    with shared_parses():  # each model's trees are parsed once for every stage
        return _explain_and_log(
            model,
            X,
            run_id=run_id,
            y=y,
            training=training,
            chosen=chosen,
            top_k=top_k,
            random_state=random_state,
            report=report,
            options=options,
            windowed=over_time,
            reason_options=reasons,
            fairness_options=fairness,
        )


def _explain_and_log(
    model: Any,
    X: Any,
    *,
    run_id: str | None,
    y: Any,
    training: Any,
    chosen: frozenset[str],
    top_k: int,
    random_state: int,
    report: bool,
    options: dict[str, Any],
    windowed: Mapping[str, Any] | None,
    reason_options: Mapping[str, Any] | None = None,
    fairness_options: Mapping[str, Any] | None = None,
) -> Any:
    import numpy as np

    from shapgov.analyses.compare import compare_shap_xemp
    from shapgov.analyses.exemplars import xemp
    from shapgov.analyses.impact import mark_redundant, permutation_impact, shap_impact
    from shapgov.engine import explain
    from shapgov.errors import AdditivityError

    start = clock.perf_counter()
    by_window = None
    try:
        if windowed is not None:
            from shapgov.analyses.over_time import over_time

            labels = y if "permutation" in chosen else None
            by_window = over_time(
                model, X, **dict(windowed), y=labels, random_state=random_state, **options
            )
            e = by_window.explanation
            y = None if y is None else np.asarray(y)[by_window.positions]
        else:
            e = explain(model, X, **options)
    except AdditivityError as err:
        log_failure(err.report, run_id=run_id, with_report=report)
        raise
    permutation = strengths = comparison = None
    frame = e.data
    given_reasons = None
    if reason_options is not None:
        given_reasons = _reasons(model, frame, reason_options, options, random_state)
    fair = None
    if fairness_options is not None:
        positions = None if by_window is None else by_window.positions
        fair = _fairness(e, fairness_options, y, positions, by_window)
    if "permutation" in chosen and y is not None:
        permutation = permutation_impact(model, frame, y, random_state=random_state)
        permutation = mark_redundant(permutation, frame)
    if "xemp" in chosen:
        if training is None:
            training = options.get("background")
        impact = shap_impact(e)
        training = frame if training is None else training
        strengths = xemp(model, frame, training=training, impact=impact)
        if "comparison" in chosen:
            impacts = [impact] + ([permutation] if permutation is not None else [])
            k = min(top_k, len(strengths.evaluated))
            comparison = compare_shap_xemp(e, strengths, k=k, impacts=impacts)
    log_explanation(
        e,
        run_id=run_id,
        permutation=permutation,
        xemp=strengths,
        comparison=comparison,
        over_time=by_window,
        reasons=given_reasons,
        fairness=fair,
        seconds=clock.perf_counter() - start,
        top_k=top_k,
        report=report,
    )
    return e


def _fairness(
    e: Any, given: Mapping[str, Any], y: Any, positions: Any, by_window: Any = None
) -> Any:
    """The fair-lending checks of the explained rows (:func:`shapgov.fairness`), the
    protected table aligned with them by position (in time order under ``over_time``)."""
    import inspect

    import pandas as pd

    from shapgov.analyses.fairness import fairness
    from shapgov.errors import InputError

    if not isinstance(given, Mapping):
        raise InputError("fairness= takes the options of shapgov.fairness as a dict")
    spec = dict(given)
    missing = [k for k in ("protected", "decision") if k not in spec]
    if missing:
        raise InputError(
            f"fairness= needs {missing}: the protected attributes (one row per row of X) and "
            "the decision rule, e.g. fairness={'protected': applicants[['sex']], "
            "'decision': shapgov.Decision(cutoff=0.2)}"
        )
    taken = set(inspect.signature(fairness).parameters)
    taken -= {"explanation_or_model", "X", "background"}
    unknown = sorted(set(spec) - taken)
    if unknown:
        raise InputError(f"fairness= has option(s) shapgov.fairness does not take: {unknown}")
    protected = spec.pop("protected")
    if isinstance(protected, pd.Series):
        protected = protected.to_frame()
    if isinstance(protected, pd.DataFrame):
        if positions is not None and len(protected) >= len(positions):
            protected = protected.iloc[positions]
        if len(protected) == len(e.data):
            protected = protected.set_axis(e.data.index)
    spec.setdefault("y", y)
    if positions is not None and by_window is not None and "windows" not in spec:
        import numpy as np

        frame = by_window.windows  # the explained rows come window by window
        spec["windows"] = np.repeat(frame["window"].astype(str).to_numpy(), frame["rows"])
    return fairness(e, protected=protected, **spec)


def _reasons(
    model: Any,
    frame: Any,
    given: Mapping[str, Any],
    options: Mapping[str, Any],
    random_state: int,
) -> Any:
    """The adverse-action reasons of the explained rows, with the explanation's plugin
    manager and policy options (default: 20 stability resamples)."""
    from shapgov.adverse_action.derive import reasons
    from shapgov.adverse_action.stability import DEFAULT_RESAMPLES
    from shapgov.errors import InputError

    if not isinstance(given, Mapping):
        raise InputError("reasons= takes the options of shapgov.reasons as a dict")
    import inspect

    taken = set(inspect.signature(reasons).parameters) - {"model", "X"}
    unknown = sorted(set(given) - taken)
    missing = [k for k in ("catalogue", "decision", "reference") if k not in given]
    if missing:
        raise InputError(
            f"reasons= needs {missing}: the catalogue, the decision rule and the reference "
            "rows, e.g. reasons={'catalogue': 'reasons.toml', 'decision': "
            "shapgov.Decision(cutoff=0.2), 'reference': recent_applicants}"
        )
    if unknown:
        raise InputError(
            f"reasons= has option(s) shapgov.reasons does not take: {unknown}; its options "
            f"are {sorted(taken)}"
        )
    shared = {
        k: options[k]
        for k in ("plugin_manager", "explainer_options", "additivity_threshold", "pass_tolerance")
        if k in options
    }
    spec = {"stability": DEFAULT_RESAMPLES, "random_state": random_state, **shared, **given}
    return reasons(model, frame, **spec)


def _logged_by() -> dict[str, Any]:
    """Who logs a set (:func:`shapgov.review.current_identity`; on a store without
    authentication and no declared user, the operating-system user, not authenticated)."""
    import getpass

    from shapgov.errors import IdentityError
    from shapgov.review.identity import current_identity

    try:
        who = current_identity()
    except IdentityError:
        return {"name": getpass.getuser(), "authenticated": False}
    return {"name": who.name, "authenticated": who.authenticated}
