"""How a model sees a table: the numeric matrix its kernels compare with split thresholds
and coefficients, built exactly as the model's own ``predict`` builds it.

* numbers, booleans and pandas nullable dtypes (``Int64``, ``Float64``, ``boolean``):
  float64, with ``pd.NA``/``None``/``NaN`` as NaN (what scikit-learn's ``check_array``,
  LightGBM and XGBoost do with them);
* pandas ``category`` columns: the model is asked how it encodes them —
  LightGBM's ``pandas_categorical`` (category codes in the categories stored at fit,
  unseen labels missing), XGBoost >= 3.1's stored categories (``get_categories``),
  else the column's own codes (what older XGBoost uses); models without a category
  encoding get the category values, as scikit-learn's ``check_array`` does;
* strings anywhere else raise :class:`~shapgov.errors.InputError` naming the column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import InputError

Transform = Callable[[Any], np.ndarray]


def as_float_matrix(X: Any) -> np.ndarray:
    """``X`` as a float64 matrix ``(n, M)``: the identity preprocessing.

    :param X: DataFrame or 2-D array; numeric, boolean, nullable or category columns.
    :raises InputError: A column holds strings (or other objects) that are not numbers;
        the message names it and says how to encode it.
    """
    if isinstance(X, pd.DataFrame):
        if all(isinstance(t, np.dtype) and t.kind in "biuf" for t in X.dtypes):
            return X.to_numpy(dtype=float).reshape(len(X), -1)  # plain numbers: one copy
        return np.column_stack([_float_column(X[c], c) for c in X.columns]).reshape(len(X), -1)
    arr = np.asarray(X)
    if arr.dtype.kind in "biuf":
        return arr.astype(float).reshape(len(arr), -1)
    arr = arr.reshape(len(arr), -1)
    return np.column_stack(
        [_float_column(pd.Series(arr[:, j]), j) for j in range(arr.shape[1])]
    ).reshape(len(arr), -1)


def _float_column(col: pd.Series, name: Any) -> np.ndarray:
    """One column as float64 with every missing marker as NaN."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    if col.dtype.kind in "biuf":
        return col.to_numpy(dtype=float)
    try:
        return col.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        pass
    values = col.astype(object).where(col.notna(), np.nan)
    try:
        return values.to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        bad = next(v for v in values if not _is_number(v))
        raise InputError(
            f"column {name!r} ({col.dtype}) holds non-numeric values such as {bad!r}, and this "
            "model takes numbers there; encode it as its training pipeline did (e.g. a "
            "OneHotEncoder or OrdinalEncoder in a Pipeline, or a pandas 'category' column "
            "for LightGBM, XGBoost or HistGradientBoosting)"
        ) from err


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def category_codes(
    categories: Sequence[Sequence[Any] | None],
    *,
    unseen: str,
    library: str,
) -> Transform:
    """The encoding of a model that stores its categories: column j's labels become their
    position in ``categories[j]`` (a ``None`` entry: a numeric column).

    :param categories: Per input column, the categories stored at fit, or ``None``.
    :param unseen: ``"missing"``: labels outside the stored ones become NaN (LightGBM);
        ``"error"``: they raise :class:`~shapgov.errors.InputError` (XGBoost >= 3.1).
    :param library: Named in error messages.
    """
    stored = [None if c is None else pd.Index(list(c)) for c in categories]

    def encode(X: Any) -> np.ndarray:
        if not isinstance(X, pd.DataFrame):
            return as_float_matrix(X)  # codes already, as the model itself takes arrays
        if X.shape[1] != len(stored):
            raise InputError(f"{library} model stores {len(stored)} columns; got {X.shape[1]}")
        out = np.empty((len(X), len(stored)))
        for j, (name, cats) in enumerate(zip(X.columns, stored, strict=True)):
            col = X[name]
            if cats is None:
                if isinstance(col.dtype, pd.CategoricalDtype):
                    raise InputError(
                        f"column {name!r} is a pandas 'category' column but the {library} "
                        "model was fitted on numbers there; pass it with the dtype used at fit"
                    )
                out[:, j] = _float_column(col, name)
                continue
            if not isinstance(col.dtype, pd.CategoricalDtype):
                raise InputError(
                    f"column {name!r} ({col.dtype}) was a pandas 'category' column when the "
                    f"{library} model was fitted; convert it with "
                    f"X[{name!r}] = X[{name!r}].astype('category')"
                )
            labels = col.astype(object)
            codes = cats.get_indexer(labels.where(col.notna(), None)).astype(float)
            new = (codes < 0) & col.notna().to_numpy()
            if new.any() and unseen == "error":
                raise InputError(
                    f"column {name!r} holds {labels[new].iloc[0]!r}, a category the {library} "
                    f"model never saw at fit (it knows {list(cats)[:10]}); the model rejects "
                    "it: map it to a known category or to missing"
                )
            codes[codes < 0] = np.nan
            out[:, j] = codes
        return out

    return encode


def frame_codes(X: Any) -> np.ndarray:
    """Category columns as their own codes (missing: NaN), the rest as numbers: what
    XGBoost before 3.1 feeds its trees."""
    if not isinstance(X, pd.DataFrame):
        return as_float_matrix(X)
    cols = []
    for name in X.columns:
        col = X[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy().astype(float)
            codes[codes < 0] = np.nan
            cols.append(codes)
        else:
            cols.append(_float_column(col, name))
    return np.column_stack(cols).reshape(len(X), -1)


def as_stored_categories(
    frame: pd.DataFrame, categories: Mapping[Any, Sequence[Any]]
) -> pd.DataFrame:
    """``frame`` with each column named in ``categories`` made a pandas ``category``
    column over the categories the model stored (labels it lacks appended after them, so
    that the model's own rule decides what an unseen label means); missing values stay
    missing. For tables read from files without dtypes (CSV) and served requests.

    :raises InputError: A column's values cannot be labels of its categories (names it).
    """
    out = frame.copy()
    for name, stored in categories.items():
        if name not in out.columns:
            continue
        col = out[name]
        known = list(stored)
        if isinstance(col.dtype, pd.CategoricalDtype) and list(col.cat.categories) == known:
            continue
        labels = col.astype(object).where(col.notna(), None)
        kind = pd.Index(known).dtype
        if kind.kind in "iuf":  # numeric categories read back as text (CSV of integers)
            labels = pd.to_numeric(labels, errors="coerce").where(col.notna(), None)
        seen = set(known)
        unseen = [v for v in pd.unique(labels.dropna()) if v not in seen]
        try:
            out[name] = pd.Categorical(
                labels.to_numpy(dtype=object), categories=pd.Index([*known, *unseen])
            )
        except (TypeError, ValueError) as err:
            raise InputError(
                f"column {name!r} holds values that cannot be labels of its categories "
                f"({known[:5]}...): {err}"
            ) from err
    return out
