"""What every Spark task runs: one batch of rows explained, governed row by row.

Pure pandas and shapgov, no Spark: :class:`BatchExplainer` is pickled once into a
broadcast variable and called by ``mapInPandas`` on the Arrow batches of each partition.
Every batch plays the same game (the model and background travel with it), so a row's
values are those of :func:`shapgov.explain` on that row, whichever batch it falls in.
Unlike :func:`shapgov.explain` a batch never raises on additivity: each row carries its
normalized mismatch and status, and the driver judges the whole table.

Given an approved set's adverse-action reasons, every batch also derives its rows' reasons
with :func:`~shapgov.adverse_action.stored.reasons_like_the_set` (the set's catalogue,
rule, reference population and limits): the columns
:func:`shapgov.serving.reason_columns` names, as the explaining model serves them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Output columns beside the keys and the SHAP columns.
MISMATCH = "additivity_mismatch"
ABS_MISMATCH = "additivity_abs_mismatch"
STATUS = "additivity_status"
STATUSES = ("pass", "warn", "fail")


def shap_column(feature: Any, output: Any = None) -> str:
    """The output column of ``feature``'s SHAP value (``output``: the class, several
    outputs)."""
    return f"shap_{feature}" if output is None else f"shap_{feature}__{output}"


@dataclass(frozen=True, eq=False)
class BatchExplainer:
    """Explains batches of rows in one game.

    :param model: The fitted blueprint.
    :param features: The model's input columns, in order.
    :param keys: Columns copied through to the output (row identifiers).
    :param background: Background rows ``(b, M)`` (``None``: the path-dependent game).
    :param options: Keyword options of :func:`shapgov.explain` (``output=``, ...).
    :param capping: As in :func:`shapgov.explain`.
    :param labels: Output labels (classes) when the model has several outputs.
    :param scale: ``mean |prediction|`` per output over the whole table: rows are
        normalized against the table, as :func:`shapgov.explain` on all rows would.
    :param reasons: An approved set's reasons (``summary``, ``catalogue`` and
        ``reference`` of :func:`~shapgov.adverse_action.stored.read_reasons`): the output
        ends with the adverse-action columns. ``None``: no reasons.
    """

    model: Any
    features: tuple[Any, ...]
    keys: tuple[str, ...]
    background: pd.DataFrame | None
    options: Mapping[str, Any] = field(default_factory=dict)
    capping: tuple[float | None, float | None] | None = None
    labels: tuple[Any, ...] | None = None
    scale: tuple[float, ...] | None = None
    reasons: Mapping[str, Any] | None = None

    def reason_columns(self) -> list[str]:
        """The adverse-action columns (none without reasons)."""
        from shapgov.serving import reason_columns

        if not self.reasons:
            return []
        return reason_columns(int(self.reasons["summary"]["max_reasons"]))

    def columns(self) -> list[str]:
        """Output column names, in order: keys, SHAP values, base values, predictions,
        mismatch, status, and the adverse-action columns when given reasons."""
        out = list(self.keys)
        outputs = self.labels or (None,)
        out += [shap_column(f, k) for f in self.features for k in outputs]
        suffix = [""] if self.labels is None else [f"__{k}" for k in self.labels]
        out += [f"base_value{s}" for s in suffix] + [f"prediction{s}" for s in suffix]
        return [*out, MISMATCH, ABS_MISMATCH, STATUS, *self.reason_columns()]

    def stages(self, batch: pd.DataFrame) -> Any:
        """The first four stages on ``batch``'s features (:func:`shapgov.engine.run_stages`)."""
        from shapgov.engine import run_stages

        return run_stages(
            self.model,
            batch[list(self.features)],
            background=self.background,
            interactions=False,
            **_stage_defaults(self.options),
        )

    def explain(self, batch: pd.DataFrame) -> pd.DataFrame:
        """One batch: ``(r, keys + features)`` in, :meth:`columns` out."""
        from shapgov.combination.policy import check
        from shapgov.explainers.stage import model_input

        run = self.stages(batch)
        X = run.frame
        blueprint, node = run.plan.blueprint, run.plan.blueprint.node
        actual = blueprint.predict(model_input(run.frame, blueprint.model))
        report, governed = check(
            node.link,
            node.prediction,
            run.combined.explained,
            actual,
            run.policy,
            offset=run.offset,
            exposure=run.exposure,
            capping=self.capping,
            scale=None if self.scale is None else np.asarray(self.scale),
        )
        values = run.combined.values  # (r, M, K)
        k = values.shape[2]
        if k != len(self.labels or (None,)):
            from shapgov.errors import InputError

            raise InputError(f"the model has {k} outputs; the explainer was built for another")
        data: dict[str, Any] = {key: batch[key].to_numpy() for key in self.keys}
        outputs = self.labels or (None,)
        for j, f in enumerate(self.features):
            for o, label in enumerate(outputs):
                data[shap_column(f, label)] = values[:, j, o]
        suffix = [""] if self.labels is None else [f"__{lab}" for lab in self.labels]
        governed = np.asarray(governed, dtype=float).reshape(len(X), -1)
        for o in range(k):
            data[f"base_value{suffix[o]}"] = np.full(len(X), run.combined.base[o])
        for o in range(k):
            data[f"prediction{suffix[o]}"] = governed[:, o]
        mismatch = np.asarray(report.row_mismatch, dtype=float)
        data[MISMATCH] = mismatch
        rebuilt = _rebuilt(run, node.link, self.capping)
        data[ABS_MISMATCH] = np.abs(rebuilt - governed).max(axis=1)
        status = np.where(mismatch > report.pass_tolerance, "warn", "pass")
        data[STATUS] = np.where(mismatch > report.threshold, "fail", status)
        if self.reasons:
            for name, column in self.explain_reasons(run.frame).items():
                data[name] = column.to_numpy()
        return pd.DataFrame(data, columns=self.columns())

    def explain_reasons(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The adverse-action columns of a batch's rows, derived as the set's were
        (:func:`~shapgov.adverse_action.stored.reasons_like_the_set`, with the batch's
        plugins and explainer options)."""
        from shapgov.adverse_action.stored import reasons_like_the_set
        from shapgov.serving import reason_table

        chosen = ("plugin_manager", "explainer_options")
        options = {k: self.options[k] for k in chosen if self.options.get(k) is not None}
        got = reasons_like_the_set(self.model, frame, dict(self.reasons or {}), options=options)
        return reason_table(got)

    def prediction_sums(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """``mapInPandas``'s function of the scale pass: per batch, the row count and the
        sum of |governed prediction| per output (``n``, ``s0``, ``s1``, ...)."""
        from shapgov.combination.policy import rebuild
        from shapgov.decomposition.decompose import decompose
        from shapgov.explainers.stage import model_input
        from shapgov.validation import as_frame

        chosen = ("calibration", "output", "opaque", "fallback", "plugin_manager")
        settings = {"fallback": "kernel"} | {k: v for k, v in self.options.items() if k in chosen}
        blueprint = decompose(self.model, **settings)
        for batch in batches:
            if not len(batch):
                continue
            frame = as_frame(batch[list(self.features)], blueprint.model)
            actual = np.asarray(blueprint.predict(model_input(frame, blueprint.model)), float)
            governed = rebuild(
                blueprint.node.link, actual, None, None, self.capping, margin=False
            ).reshape(len(frame), -1)
            sums = np.abs(governed).sum(axis=0)
            yield pd.DataFrame({"n": [len(frame)], **{f"s{k}": [v] for k, v in enumerate(sums)}})

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """``mapInPandas``'s function: the model's trees are parsed once per task, and the
        kernels use the task's cores (``spark.task.cpus``), not every core of the machine:
        Spark's task slots are the parallelism."""
        from shapgov.registry import shared_parses

        _use_task_cpus()
        with shared_parses():
            for batch in batches:
                if len(batch):
                    yield self.explain(batch)


def _use_task_cpus() -> None:
    import numba

    try:
        from pyspark import TaskContext
    except ImportError:  # called outside Spark
        return
    ctx = TaskContext.get()
    cpus = ctx.cpus() if ctx is not None else None
    if cpus:
        numba.set_num_threads(max(1, min(int(cpus), numba.config.NUMBA_NUM_THREADS)))


def _rebuilt(run: Any, link: Any, capping: Any) -> np.ndarray:
    """The prediction rebuilt from base + values (DataRobot's rule), ``(r, K)``."""
    from shapgov.combination.policy import rebuild

    explained = run.combined.explained
    return rebuild(link, explained, run.offset, run.exposure, capping, margin=True)


@functools.cache
def _explain_defaults() -> tuple[tuple[str, Any], ...]:
    """:func:`shapgov.explain`'s keyword defaults that the stages take (read once)."""
    import inspect

    from shapgov.engine import explain

    skip = {"model", "X", "background", "capping", "interactions"}
    params = inspect.signature(explain).parameters.items()
    return tuple((n, p.default) for n, p in params if n not in skip)


def _stage_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`shapgov.engine.run_stages`'s keywords: ``options`` over explain's defaults."""
    out = dict(_explain_defaults())
    unknown = sorted(set(options) - set(out))
    if unknown:
        from shapgov.errors import InputError

        raise InputError(f"unknown explain option(s) {unknown}; valid: {sorted(out)}")
    out.update(options)
    return out


def check_keys(keys: Sequence[str], columns: Sequence[str]) -> tuple[str, ...]:
    """Key columns, checked against the table's columns."""
    from shapgov.errors import InputError

    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    missing = [k for k in keys if k not in columns]
    if missing:
        raise InputError(f"key column(s) {missing} are not in the table; columns: {list(columns)}")
    return keys
