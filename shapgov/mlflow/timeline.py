"""Explanations over time as MLflow step metrics: one step per window, stamped with the
window's end, so the MLflow UI draws every figure as a chart over the windows."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

#: Prefix of every window metric.
PREFIX = "shapgov.window."
#: MLflow takes at most this many metrics per ``log_batch`` call.
BATCH = 1000
_UNSAFE = re.compile(r"[^0-9A-Za-z_\-. /]")


def metric_key(name: str) -> str:
    """``name`` as an MLflow metric key: characters MLflow refuses become ``_``."""
    return _UNSAFE.sub("_", str(name))[:250]


def player_keys(players: list[str]) -> dict[str, str]:
    """A distinct metric key per player: ``metric_key``, with ``_2``, ``_3``, ... added
    where two names map to the same key (``rate%`` and ``rate#``)."""
    keys: dict[str, str] = {}
    taken: set[str] = set()
    for player in players:
        base = key = metric_key(player)
        n = 1
        while key in taken:
            n += 1
            key = f"{base}_{n}"
        taken.add(key)
        keys[player] = key
    return keys


def _millis(end: Any, fallback: int) -> int:
    if isinstance(end, pd.Timestamp | np.datetime64) and not pd.isna(end):
        return int(pd.Timestamp(end).value // 1_000_000)
    return fallback


def window_metrics(result: Any, *, now_ms: int) -> list[Any]:
    """The metrics of :class:`~shapgov.analyses.over_time.OverTime` ``result``, per window
    ``w`` at step ``w``, timestamp the window's end (``now_ms`` for numeric windows):

    ``shapgov.window.rows``, ``.mean_prediction``, ``.max_normalized_mismatch``,
    ``.flagged`` (0/1), ``.impact_l1`` and ``.spearman`` (against the reference window),
    and ``shapgov.window.impact.<player>`` (mean |SHAP|) for every player (keys from
    :func:`player_keys`).
    """
    from mlflow.entities import Metric

    drift = result.drift[result.drift["against"] == "reference"].set_index("window")
    impact = result.impact.set_index(["window", "player"])["impact"]
    players = player_keys(result.impact["player"].drop_duplicates().tolist())
    out = []
    for step, rec in enumerate(result.windows.to_dict(orient="records")):
        stamp = _millis(rec["end"], now_ms)
        label = rec["window"]
        figures = {
            "rows": rec["rows"],
            "mean_prediction": rec["mean_prediction"],
            "max_normalized_mismatch": rec["max_normalized_mismatch"],
            "flagged": float(rec["flagged"]),
        }
        if label in drift.index:
            figures["impact_l1"] = drift.at[label, "impact_l1"]
            figures["spearman"] = drift.at[label, "spearman"]
        for player, key in players.items():
            figures[f"impact.{key}"] = impact.at[(label, player)]
        for key, value in figures.items():
            if value is not None and np.isfinite(float(value)):
                out.append(Metric(PREFIX + key, float(value), stamp, step))
    return out


def log_window_metrics(client: Any, run_id: str, result: Any) -> int:
    """Log :func:`window_metrics` to ``run_id`` in batches; returns how many."""
    import time

    metrics = window_metrics(result, now_ms=int(time.time() * 1000))
    for start in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + BATCH])
    return len(metrics)
