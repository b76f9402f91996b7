"""What ``shapgov.shap`` explainers return from ``__call__``: a real ``shap.Explanation``
when shap is installed (so ``shap.plots.*`` take it), else :class:`Explanation`, an
object with the attributes shap's has (``values``, ``base_values``, ``data``,
``feature_names``, ``output_names``, slicing by rows and columns).

Either way the object records the game its values come from (``.feature_perturbation``,
``interventional`` or ``tree_path_dependent``) and the governed shapgov explanation
(``.shapgov``), which carries the additivity report.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shapgov.errors import InputError


def shap_installed() -> bool:
    """Whether shap imports here (it is never a requirement of shapgov)."""
    return importlib.util.find_spec("shap") is not None


@dataclass
class Explanation:
    """shap's ``Explanation`` attributes without shap.

    ``values`` ``(n, M)`` or ``(n, M, K)``; ``base_values`` ``(n,)`` or ``(n, K)``;
    ``data`` ``(n, M)``; ``feature_names`` M names; ``output_names`` K names or None.
    Indexing takes rows first, then columns (an int, a slice, a list or a feature name),
    then outputs, as shap's does.

    :raises InputError: A feature name the explanation does not have.
    """

    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray | None = None
    feature_names: list[Any] | None = None
    output_names: list[Any] | None = None
    feature_perturbation: str | None = None
    shapgov: Any = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        """The values' shape."""
        return tuple(np.shape(self.values))

    def __len__(self) -> int:
        return int(np.shape(self.values)[0])

    def __getitem__(self, key: Any) -> Explanation:
        keys = key if isinstance(key, tuple) else (key,)
        rows = keys[0]
        cols = keys[1] if len(keys) > 1 else slice(None)
        outs = keys[2] if len(keys) > 2 else slice(None)
        names = self.feature_names
        if isinstance(cols, str) or (isinstance(cols, list) and cols and isinstance(cols[0], str)):
            wanted = [cols] if isinstance(cols, str) else cols
            unknown = [c for c in wanted if c not in list(names or [])]
            if unknown:
                raise InputError(f"no feature named {unknown}; the explanation's features: {names}")
            index = [list(names or []).index(c) for c in wanted]
            cols = index[0] if isinstance(cols, str) else index
        values = np.asarray(self.values)[rows]
        base = np.asarray(self.base_values)[rows]
        data = None if self.data is None else np.asarray(self.data)[rows]
        one_row = np.ndim(values) < np.ndim(self.values)
        col_axis = 0 if one_row else 1
        values = np.take(values, _index(cols, np.shape(values)[col_axis]), axis=col_axis)
        if data is not None:
            data = np.take(data, _index(cols, np.shape(data)[col_axis]), axis=col_axis)
        if isinstance(cols, (int, np.integer)):
            values = np.squeeze(values, axis=col_axis)
            data = None if data is None else np.squeeze(data, axis=col_axis)
        if np.ndim(self.values) == 3 and not (isinstance(outs, slice) and outs == slice(None)):
            values = values[..., outs]
            base = base[..., outs]
        picked = names
        if names is not None:
            chosen = _index(cols, len(names))
            picked = [names[i] for i in chosen]
            if isinstance(cols, (int, np.integer)):
                picked = picked[0]
        return Explanation(
            values=values,
            base_values=base,
            data=data,
            feature_names=picked,
            output_names=self.output_names,
            feature_perturbation=self.feature_perturbation,
            shapgov=self.shapgov,
        )


def _index(key: Any, size: int) -> list[int]:
    """The positions an int, slice or list of ints picks out of ``size``."""
    if isinstance(key, slice):
        return list(range(size))[key]
    if isinstance(key, (int, np.integer)):
        return [int(key) % size]
    return [int(k) for k in key]


def make_explanation(
    values: np.ndarray,
    base_values: np.ndarray,
    data: np.ndarray | None,
    feature_names: list[Any] | None,
    *,
    output_names: list[Any] | None = None,
    feature_perturbation: str | None = None,
    governed: Any = None,
) -> Any:
    """A ``shap.Explanation`` (shap installed) or :class:`Explanation`, with the game
    (``.feature_perturbation``) and the governed explanation (``.shapgov``) attached."""
    if shap_installed():
        import shap

        out = shap.Explanation(
            values=values,
            base_values=base_values,
            data=data,
            feature_names=feature_names,
            output_names=output_names,
        )
        out.feature_perturbation = feature_perturbation
        out.shapgov = governed
        return out
    return Explanation(
        values=values,
        base_values=base_values,
        data=data,
        feature_names=feature_names,
        output_names=output_names,
        feature_perturbation=feature_perturbation,
        shapgov=governed,
    )
