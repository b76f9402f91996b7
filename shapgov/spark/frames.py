"""``shapgov.spark.explain``: SHAP values of a Spark table, one game, by ``mapInPandas``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from shapgov.errors import InputError
from shapgov.spark.batches import MISMATCH, STATUS, BatchExplainer, check_keys
from shapgov.spark.environment import check_workers


def explain(
    model: Any,
    sdf: Any,
    *,
    background: Any = None,
    keys: Sequence[str] = (),
    capping: tuple[float | None, float | None] | None = None,
    reasons: Any = None,
    **options: Any,
) -> Any:
    """Explain every row of the Spark DataFrame ``sdf``; returns a (lazy) Spark DataFrame.

    The model, the background and the options are pickled once into a broadcast variable;
    each task explains its partition's Arrow batches with them (``shapgov.spark.batches``),
    so every row plays the same game and its values equal :func:`shapgov.explain` on that
    row. Nothing is collected to the driver but two rows, explained there first to check
    the model and options and to learn the outputs.

    :param model: A fitted blueprint :func:`shapgov.explain` takes.
    :param sdf: Rows ``(n, keys + M)``: every column that is not a key is a feature, in the
        model's order.
    :param background: The background rows (pandas, or a small Spark DataFrame collected
        once), required unless ``feature_perturbation="tree_path_dependent"``: a batch's
        own rows would make every batch another game.
    :param keys: Columns copied to the output to identify rows.
    :param reasons: An approved set's adverse-action reasons, to give every row its
        reasons as the set's were derived (:func:`set_reasons`: the set's folder, e.g.
        ``runs:/RUN_ID/shapgov`` or a local copy, or
        :func:`~shapgov.adverse_action.stored.read_reasons` of it). The output then ends
        with ``decision``, ``reason_status``, ``reason_1..k`` and ``reason_statement_1..k``
        (text; empty where a row has fewer reasons), as the explaining model serves them.
    :param options: Keyword options of :func:`shapgov.explain` (``output=``,
        ``feature_perturbation=``, ``additivity_threshold=``, ...).
    :returns: Spark DataFrame: the keys, ``shap_<feature>`` (``shap_<feature>__<class>``
        with several outputs) in the explained space, ``base_value``, ``prediction`` (the
        model's, after link, offset, exposure and capping), ``additivity_mismatch``
        (normalized) and ``additivity_status`` (``pass``/``warn``/``fail`` per row; the
        governed :func:`shapgov.spark.explain_and_log` withholds a table with any
        ``fail``), then the adverse-action columns when ``reasons`` is given.
    :raises InputError: Unknown keys or options, no background for the interventional
        game, a model the driver cannot explain on two rows, or reason files that are not
        those the set's manifest lists.
    :raises CatalogueError: The reasons' catalogue does not cover the table's features.
    :raises WorkerEnvironmentError: Spark's Python workers cannot import shapgov
        (``PYSPARK_PYTHON`` names another Python; ``shapgov.spark.environment``).
    """
    from pyspark.sql import types as T

    keys = check_keys(keys, sdf.columns)
    features = tuple(c for c in sdf.columns if c not in keys)
    if not features:
        raise InputError("the table has no feature columns beside the keys")
    if options.get("offset") is not None or options.get("exposure") is not None:
        raise InputError("per-row offset and exposure are not taken on Spark yet; fold them in")
    bg = _background(background, features, options)
    stored = None if reasons is None else set_reasons(reasons)
    if stored is not None:
        from shapgov.serving import reason_columns

        stored["catalogue"].check_inputs([str(f) for f in features])
        clash = [k for k in keys if k in reason_columns(int(stored["summary"]["max_reasons"]))]
        if clash:
            raise InputError(f"key columns {clash} are named like the reason columns; rename them")
    probe = sdf.select(*keys, *features).limit(2).toPandas()
    if probe.empty:
        raise InputError("the table has no rows")
    batch = BatchExplainer(model, features, keys, bg, dict(options), capping)
    labels = _labels(batch, probe)
    batch = BatchExplainer(
        model, features, keys, bg, dict(options), capping, labels, reasons=stored
    )
    batch.explain(probe)  # fails here, on the driver, with shapgov's message
    check_workers(sdf.sparkSession)  # before the first job that needs shapgov in a worker
    scale = table_scale(sdf.select(*features), batch, 1 if labels is None else len(labels))
    batch = BatchExplainer(
        model, features, keys, bg, dict(options), capping, labels, scale, reasons=stored
    )
    fields = [sdf.schema[k] for k in keys]
    texts = {STATUS, *batch.reason_columns()}
    for name in batch.columns()[len(keys) :]:
        kind = T.StringType() if name in texts else T.DoubleType()
        fields.append(T.StructField(name, kind, nullable=name == MISMATCH))
    shared = share(sdf.sparkSession, batch)

    def run(batches: Any) -> Any:
        return shared_value(shared)(batches)

    return sdf.select(*keys, *features).mapInPandas(run, T.StructType(fields))


def set_reasons(reasons: Any) -> dict[str, Any]:
    """An approved set's adverse-action reasons, as the batches take them (``summary``,
    ``catalogue``, ``reference``).

    :param reasons: The set's folder: a local path, or an MLflow artifact URI such as
        ``runs:/RUN_ID/shapgov`` (downloaded); when it holds the set's ``manifest.json``,
        every reason file must have the SHA-256 the manifest lists. Or what
        :func:`~shapgov.adverse_action.stored.read_reasons` returned.
    :raises InputError: No reasons there, or a reason file that is not the manifest's.
    """
    import json
    from pathlib import Path

    from shapgov.adverse_action.stored import FILES, read_reasons

    if isinstance(reasons, Mapping):
        stored = dict(reasons)
    elif isinstance(reasons, str | os.PathLike):
        from urllib.parse import urlparse

        text = os.fspath(reasons)
        if text.startswith("file://"):
            text = text[len("file://") :]
        folder = Path(text)
        if len(urlparse(text).scheme) > 1:  # an MLflow artifact URI: runs:/..., s3://...
            import mlflow

            folder = Path(mlflow.artifacts.download_artifacts(text))
        manifest = folder / "manifest.json"
        if manifest.exists():
            from shapgov.mlflow.artifacts import sha256_file

            listed = json.loads(manifest.read_text()).get("artifacts") or {}
            held = "reasons.json" in listed or (folder / "reasons.json").exists()
            for name in FILES if held else ():
                path = folder / name
                if not path.exists() or sha256_file(path) != listed.get(name):
                    raise InputError(
                        f"{path} is not the file the set's manifest lists (missing, altered "
                        "or unlisted); its reasons are not the approved ones"
                    )
        stored = read_reasons(folder)
    else:
        raise InputError(
            "reasons= takes an approved set's folder (a path or runs:/RUN_ID/shapgov) or "
            "read_reasons() of it"
        )
    missing = [k for k in ("summary", "catalogue", "reference") if k not in stored]
    if missing:
        raise InputError(f"no adverse-action reasons there (lacks {missing}); pass a set with them")
    return {k: stored[k] for k in ("summary", "catalogue", "reference")}


def share(spark: Any, batch: BatchExplainer) -> Any:
    """``batch`` as a broadcast variable, serialized with cloudpickle (a plugin manager or
    a model class defined in a script travels too; Spark's broadcast uses plain pickle)."""
    import uuid

    from pyspark import cloudpickle

    return spark.sparkContext.broadcast((uuid.uuid4().hex, cloudpickle.dumps(batch)))


_LOADED: dict[str, BatchExplainer] = {}


def shared_value(shared: Any) -> BatchExplainer:
    """The broadcast :class:`BatchExplainer`, unpickled once per Python worker."""
    import pickle

    key, payload = shared.value
    if key not in _LOADED:
        _LOADED.clear()  # one job's explainer at a time per worker
        _LOADED[key] = pickle.loads(payload)
    return _LOADED[key]


def table_scale(sdf: Any, batch: BatchExplainer, k: int) -> tuple[float, ...]:
    """``mean |prediction|`` per output over the whole table, by one predict pass in Spark:
    the additivity policy normalizes every row against the table's typical prediction."""
    from pyspark.sql import functions as F

    schema = "n long, " + ", ".join(f"s{o} double" for o in range(k))
    shared = share(sdf.sparkSession, batch)

    def sums(batches: Any) -> Any:
        return shared_value(shared).prediction_sums(batches)

    row = (
        sdf.mapInPandas(sums, schema)
        .agg(*(F.sum(c).alias(c) for c in ["n", *[f"s{o}" for o in range(k)]]))
        .collect()[0]
    )
    n = int(row["n"] or 0)
    if n == 0:
        raise InputError("the table has no rows")
    return tuple(float(row[f"s{o}"]) / n for o in range(k))


def _background(background: Any, features: tuple[Any, ...], options: dict[str, Any]) -> Any:
    if background is None:
        if options.get("feature_perturbation") != "tree_path_dependent":
            raise InputError(
                "pass background= (for example a sample of the training rows): on Spark "
                "every batch must play the same game, and a batch's own rows would make "
                "each batch another one; or explain trees with "
                "feature_perturbation='tree_path_dependent'"
            )
        return None
    if hasattr(background, "toPandas"):
        background = background.toPandas()
    if not isinstance(background, pd.DataFrame):
        raise InputError("background must be a pandas or Spark DataFrame with the features")
    missing = [f for f in features if f not in background.columns]
    if missing:
        raise InputError(f"the background lacks feature column(s) {missing}")
    return background[list(features)].reset_index(drop=True)


def _labels(batch: BatchExplainer, probe: pd.DataFrame) -> tuple[Any, ...] | None:
    """The output labels (classes) of a model with several outputs, else ``None``."""
    from shapgov.combination.govern import _classes

    run = batch.stages(probe)
    k = run.combined.values.shape[2]
    if k == 1:
        return None
    classes = _classes(run.plan.blueprint.model)
    return tuple(classes) if classes and len(classes) == k else tuple(range(k))
