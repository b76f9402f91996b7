"""Models whose margin is a sum of *terms*, each a function of a few original columns.

A GLM's linear predictor, as statsmodels, glum or a formula builds it, is

    eta(x) = intercept + sum_t  D_t(x_{R_t}) @ beta_t

where term ``t`` reads the original columns ``R_t`` (one for a main effect, a spline or a
categorical coding; several for an interaction ``a:b``) and ``D_t`` are its design columns.
Each design column of a term is a product of its *factors'* columns (patsy and formulaic
build interactions as row-wise products of the factors' codings), so a term is stored as
its factors, each reading its own columns, and an index that says which column of each
factor builds each design column.

:class:`TermModel` is the library-neutral vertex a plugin hands the ``terms`` explainer
(:mod:`shapgov_plugins.terms`); the libraries' own readers (patsy, formulaic, glum, plain
arrays) live in their plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import (
    ColumnMismatchError,
    InputError,
    MissingValueError,
    UndecomposableModelError,
)

#: A factor's coding of rows: a frame with the model's input columns ``(n, M)`` to its
#: columns ``(n, c)`` float64.
Encode = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True, eq=False)
class Factor:
    """One factor of a term: a function of the original columns ``columns`` (positions in
    the model's input columns) with ``width`` columns of its own, computed by ``encode``.

    A categorical factor codes a level as its contrast row; a numerical factor is the
    column, a transform of it (``np.log(x)``), or a basis (``bs(x, 4)``: 4 columns).
    """

    name: str
    columns: tuple[int, ...]
    width: int
    encode: Encode


@dataclass(frozen=True, eq=False)
class Term:
    """One term of a linear predictor.

    :param name: As the formula writes it (``"age:C(region)"``).
    :param factors: Its factors (none for the intercept).
    :param index: ``(J, F)``: design column ``j`` is the product over factors ``f`` of
        factor ``f``'s column ``index[j, f]``.
    :param coef: ``(J, K)`` coefficients of its design columns, K outputs.
    """

    name: str
    factors: tuple[Factor, ...]
    index: np.ndarray
    coef: np.ndarray

    @property
    def players(self) -> tuple[int, ...]:
        """The original columns the term reads, sorted."""
        return tuple(sorted({c for f in self.factors for c in f.columns}))

    def design(self, codings: Sequence[np.ndarray]) -> np.ndarray:
        """The term's design columns ``(..., J)`` from its factors' codings (``(..., c_f)``
        each, broadcast together)."""
        out: np.ndarray | None = None
        for f, coding in enumerate(codings):
            part = np.take(coding, self.index[:, f], axis=-1)
            out = part if out is None else out * part
        if out is None:
            return np.ones((1, self.index.shape[0]))
        return out

    def values(self, frame: pd.DataFrame) -> np.ndarray:
        """``D_t(x) @ beta_t``, ``(n, K)``: the term's part of the margin of each row."""
        codings = [f.encode(frame) for f in self.factors]
        return self.design(codings) @ self.coef


@dataclass(frozen=True, eq=False)
class TermModel:
    """A margin that is a sum of terms: the vertex the ``terms`` explainer explains.

    :param columns: The model's input columns, in order (the vertex's ``Z`` columns).
    :param terms: Terms that read at least one column.
    :param intercept: ``(K,)``: the intercept and every term that reads no column.
    :param source: The fitted library object (the results, the regressor), for the audit.
    :param kind: What built it, in words (``"statsmodels GLM (patsy formula)"``).
    :param check: ``check(frame) -> (n, K)``: the model's own margin of ``frame`` computed
        by its library, which the explainer compares with the sum of the terms on the rows
        it explains (a reader that misread the design is caught, never trusted);
        ``None``: no independent margin.
    """

    columns: tuple[str, ...]
    terms: tuple[Term, ...]
    intercept: np.ndarray
    source: Any = None
    kind: str = "linear predictor"
    check: Callable[[pd.DataFrame], np.ndarray] | None = None

    @property
    def n_outputs(self) -> int:
        """K, the number of margins."""
        return int(self.intercept.shape[0])

    def frame(self, Z: Any) -> pd.DataFrame:
        """``Z`` (a frame with the input columns, or an array in their order) as a frame.

        :raises ColumnMismatchError: The columns differ from ``columns`` (names or order).
        """
        if isinstance(Z, pd.DataFrame):
            got = [str(c) for c in Z.columns]
            if got != list(self.columns):
                missing = [c for c in self.columns if c not in got]
                extra = [c for c in got if c not in self.columns]
                raise ColumnMismatchError(
                    f"the model reads the columns {list(self.columns)}, in that order; the rows "
                    f"hold {got} (missing {missing}, unexpected {extra}): pass "
                    f"X[{list(self.columns)}]"
                )
            return Z.reset_index(drop=True)
        arr = np.asarray(Z)
        if arr.ndim != 2 or arr.shape[1] != len(self.columns):
            raise ColumnMismatchError(
                f"the model reads {len(self.columns)} columns {list(self.columns)}; got an "
                f"array of shape {arr.shape}: pass a DataFrame with those columns"
            )
        return pd.DataFrame(arr, columns=list(self.columns))

    def margin(self, Z: Any) -> np.ndarray:
        """The margin ``(n, K)``: intercept plus every term's values."""
        frame = self.frame(Z)
        out = np.broadcast_to(self.intercept, (len(frame), self.n_outputs)).copy()
        for term in self.terms:
            out += term.values(frame)
        return out


def design_coefficients(params: Any, n_columns: int) -> np.ndarray:
    """A formula's coefficients ``(J_total,)`` float64, one per design column.

    :raises UndecomposableModelError: Their number differs from ``n_columns``.
    """
    params = np.asarray(params, dtype=float).reshape(-1)
    if params.size != n_columns:
        raise UndecomposableModelError(
            f"the formula builds {n_columns} columns but the model has {params.size} "
            "coefficients; explain the model as a whole with opaque=True"
        )
    return params


def checked_codes(values: np.ndarray, bad: np.ndarray, name: str) -> np.ndarray:
    """A factor's coding, refusing rows where it is missing.

    :raises MissingValueError: ``bad`` marks a row; the message names the factor.
    """
    if bad.any():
        raise MissingValueError(
            f"{name}: {int(bad.sum())} row(s) hold a missing value that the model's formula "
            "cannot code (the library would drop those rows and predict fewer); impute them "
            "or drop those rows before explaining."
        )
    return values


def hybrid_frame(
    x: pd.DataFrame, background: pd.DataFrame, from_rows: Sequence[str]
) -> pd.DataFrame:
    """Every row of ``x`` against every background row: ``(len(x) * B, M)``, row
    ``i * B + b`` holds ``x``'s row ``i`` in the columns ``from_rows`` and background row
    ``b`` in the others (dtypes, categories included, kept)."""
    n, b = len(x), len(background)
    rows = np.repeat(np.arange(n), b)
    back = np.tile(np.arange(b), n)
    keep = set(from_rows)
    cols = {
        c: (x[c].iloc[rows] if c in keep else background[c].iloc[back]).reset_index(drop=True)
        for c in x.columns
    }
    return pd.DataFrame(cols)


def input_positions(names: Sequence[str], wanted: Sequence[str], *, what: str) -> tuple[int, ...]:
    """Positions of ``wanted`` among the input columns ``names``.

    :raises InputError: A wanted column is not an input column.
    """
    lookup = {str(c): j for j, c in enumerate(names)}
    missing = [w for w in wanted if str(w) not in lookup]
    if missing:
        raise InputError(f"{what} reads column(s) {missing} that are not among {list(names)}")
    return tuple(lookup[str(w)] for w in wanted)
