"""Checks of the data handed to shapgov, with errors that say what to do."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import ColumnMismatchError, InputError


def as_frame(X: Any, model: Any, *, what: str = "X") -> pd.DataFrame:
    """``X`` as a DataFrame whose columns are the model's input columns, checked against it."""
    if isinstance(X, pd.Series):
        raise InputError(f"{what} is a Series; pass a 2-D table (X.to_frame().T for one row)")
    expected_names = getattr(model, "feature_names_in_", None)
    n_expected = getattr(model, "n_features_in_", None)
    if n_expected is not None and int(n_expected) == 0:
        n_expected = None  # a CatBoost model loaded from a file says 0: unknown
    if isinstance(X, pd.DataFrame):
        frame = X.reset_index(drop=True)
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise InputError(
                f"{what} must be 2-D (rows x columns), got shape {arr.shape}; reshape a single "
                "row with X.reshape(1, -1)"
            )
        names = list(expected_names) if expected_names is not None else None
        if names is None or len(names) != arr.shape[1]:
            names = [f"x{j}" for j in range(arr.shape[1])]
        frame = pd.DataFrame(arr, columns=names)
        if expected_names is not None and len(expected_names) == arr.shape[1]:
            expected_names = None  # an array is taken in the fitted column order
    if len(frame) == 0:
        raise InputError(f"{what} has no rows; pass at least one row to explain")
    named = isinstance(X, pd.DataFrame) and expected_names is not None  # errors name columns
    if not named and n_expected is not None and frame.shape[1] != int(n_expected):
        raise ColumnMismatchError(
            f"{what} has {frame.shape[1]} columns but the model was fitted on {int(n_expected)}; "
            "pass the same columns the model was trained with."
        )
    if expected_names is not None:
        expected = [str(c) for c in expected_names]
        got = [str(c) for c in frame.columns]
        # LightGBM stores names with whitespace replaced by "_": accept the user's originals.
        if got != expected and ["_".join(c.split()) for c in got] != expected:
            plain = ["_".join(c.split()) for c in got]
            missing = [c for c in expected if c not in got and c not in plain]
            extra = [
                c
                for c, p in zip(got, plain, strict=True)
                if c not in expected and p not in expected
            ]
            said = [f"missing {missing}"] * bool(missing) + [f"unexpected {extra}"] * bool(extra)
            hint = ", ".join(said) or "same names in another order"
            count = (
                f"{what} has {len(got)} columns but the model was fitted on {len(expected)}"
                if len(got) != len(expected)
                else f"{what} columns differ from those the model was fitted on"
            )
            select = (
                f"{what}[{expected}]" if len(expected) <= 12 else f"{what}[model.feature_names_in_]"
            )
            raise ColumnMismatchError(f"{count} ({hint}); select them as {select}.")
    if len(set(map(str, frame.columns))) != frame.shape[1]:
        raise ColumnMismatchError(f"{what} has duplicate column names; make them unique")
    return frame


def with_row_keys(frame: pd.DataFrame, X: Any) -> pd.DataFrame:
    """``frame`` (rows of ``X`` with a fresh 0..n-1 index) indexed again by ``X``'s own row
    keys (applicant IDs, dates, ...), so explanations, their frames, files and reports name
    rows as the caller does. A flat index whose labels are unique is kept; a MultiIndex or
    repeated labels cannot name one row each, and the rows keep their positions."""
    index = getattr(X, "index", None)
    if not isinstance(X, pd.DataFrame) or len(index) != len(frame):
        return frame
    if isinstance(index, pd.MultiIndex) or not index.is_unique:
        import warnings

        why = "a MultiIndex" if isinstance(index, pd.MultiIndex) else "repeated labels"
        warnings.warn(
            f"X's index has {why}, which cannot name one row each in the explanation's "
            "files; rows are numbered 0..n-1 instead (give X a flat index of unique keys, "
            "e.g. X.reset_index() and X.set_index('applicant_id'))",
            UserWarning,
            stacklevel=4,
        )
        return frame
    return frame.set_axis(index, axis=0)


def same_columns(background: pd.DataFrame, X: pd.DataFrame) -> None:
    if list(background.columns) != list(X.columns):
        raise ColumnMismatchError(
            "background columns differ from X's; pass a background with the columns of X, "
            f"in the same order (got {list(background.columns)[:10]}...)"
        )


def per_row(value: Any, n: int, what: str) -> np.ndarray | None:
    """An offset or exposure as a float column ``(n, 1)``; ``None`` stays ``None``."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise InputError(
            f"{what} must be a scalar or have one value per row ({n}), got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what} contains NaN or inf; give a finite value for every row")
    if what == "exposure" and np.any(arr <= 0):
        bad = np.flatnonzero(arr <= 0)
        raise InputError(
            f"exposure must be positive (a time or amount at risk); {bad.size} row(s) hold "
            f"zero or a negative value (first at row {int(bad[0])}): drop those rows or fix "
            "their exposure"
        )
    return arr[:, None]
