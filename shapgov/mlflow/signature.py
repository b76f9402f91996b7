"""Conforming a table to a logged model's signature before it is explained.

MLflow enforces a model's input schema on every ``predict`` and refuses casts it cannot
prove safe (an ``int64`` column for an ``int32`` spec, even when every value fits). The
data a user reads from a CSV rarely carries the logged dtypes, so shapgov casts each
column to its spec when the cast is lossless (every value, missing ones included,
survives the round trip) and otherwise raises an :class:`~shapgov.errors.InputError`
naming the column, its dtype and the spec's type, before any hybrid row exists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import ColumnMismatchError, InputError


def input_schema(model: Any) -> Any | None:
    """The input schema of an MLflow pyfunc model (``None`` without a named one)."""
    metadata = getattr(model, "metadata", None)
    schema = metadata.get_input_schema() if metadata is not None else None
    if schema is None or not schema.has_input_names():
        return None
    return schema


def conform_to_schema(frame: pd.DataFrame, schema: Any, *, what: str = "X") -> pd.DataFrame:
    """``frame`` with each column cast to its column spec's type where lossless.

    :param frame: The table to explain ``(n, M)``.
    :param schema: An ``mlflow.types.Schema`` with named column specs.
    :returns: A new frame; columns without a spec are kept as they are.
    :raises ColumnMismatchError: A required column of the schema is missing.
    :raises InputError: A column cannot be cast to its spec without changing a value.
    """
    out = frame.copy()
    for spec in schema.inputs:
        name = spec.name
        if name not in out.columns:
            if getattr(spec, "required", True):
                raise ColumnMismatchError(
                    f"{what} has no column {name!r}, which the model's signature requires"
                )
            continue
        target = _numpy_type(spec)
        if target is None or out[name].dtype == target:
            continue
        out[name] = _lossless_cast(out[name], target, name, spec, what)
    return out


def _numpy_type(spec: Any) -> np.dtype | None:
    to_numpy = getattr(getattr(spec, "type", None), "to_numpy", None)
    if to_numpy is None:
        return None  # tensors, objects, arrays: left to MLflow
    dtype = np.dtype(to_numpy())
    return None if dtype.kind in "OUSM" else dtype  # strings and datetimes: as read


def _lossless_cast(col: pd.Series, target: np.dtype, name: Any, spec: Any, what: str) -> Any:
    problem = None
    if col.isna().any() and target.kind in "biu":
        problem = "it has missing values, which integer columns cannot hold"
    else:
        try:
            cast = col.astype(target)
        except (TypeError, ValueError, OverflowError) as err:
            problem = f"the cast fails ({err})"
        else:
            back = cast.astype(col.dtype) if col.dtype != object else cast.astype(object)
            same = (back == col) | (col.isna() & back.isna())
            if bool(np.asarray(same, dtype=bool).all()):
                return cast
            problem = "some values would change (out of range or not whole)"
    raise InputError(
        f"{what} column {name!r} is {col.dtype} but the model's signature declares "
        f"{spec.type} ({target}); {problem}. Cast it yourself or log the model with a "
        "signature that matches the data."
    )
