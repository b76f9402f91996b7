"""shapgov on Spark: governed explanations of tables that do not fit one machine.

``pip install "shapgov[spark]"``. :func:`explain` maps every partition's Arrow batches
through one game (the model and background broadcast once); :func:`explain_and_log`
writes the values as Parquet to a staging location, judges the whole table in Spark, and
publishes and logs only what the additivity policy allows.

``import shapgov.spark`` does not import pyspark; calling these does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["explain", "explain_and_log"]


def explain(model: Any, sdf: Any, **options: Any) -> Any:
    """See :func:`shapgov.spark.frames.explain`."""
    from shapgov.spark.frames import explain as _explain

    return _explain(model, sdf, **options)


def explain_and_log(model: Any, sdf: Any, **options: Any) -> Any:
    """See :func:`shapgov.spark.publish.explain_and_log`."""
    from shapgov.spark.publish import explain_and_log as _log

    return _log(model, sdf, **options)
