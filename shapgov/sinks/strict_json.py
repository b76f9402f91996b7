"""Strict JSON (RFC 8259) for every artifact: missing and non-finite values become ``null``.

NaN, ±inf, ``None``, ``pd.NA`` and ``NaT`` all become ``null``; numpy scalars become
Python numbers; timestamps ISO 8601 strings. Readers that need the column's type find it
beside the values (``dtype`` fields), so a ``null`` is never ambiguous.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def json_ready(value: Any) -> Any:
    """``value`` with every leaf a strict-JSON scalar (recursing into mappings/sequences)."""
    if isinstance(value, Mapping):
        return {_key(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, pd.Timedelta | dt.timedelta):
        return str(value)
    return str(value)


def _key(key: Any) -> str:
    return key if isinstance(key, str) else str(json_ready(key))


def dumps(payload: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`json_ready` ``(payload)``, refusing anything non-strict."""
    return json.dumps(json_ready(payload), allow_nan=False, **kwargs)
