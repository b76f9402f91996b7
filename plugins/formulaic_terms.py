"""Read a formulaic model spec (glum's formulas; statsmodels with
``SM_FORMULA_ENGINE=formulaic``) into terms over original columns.

formulaic records, per term, the data variables it reads (``ModelSpec.term_variables``,
variables whose source is ``"data"``) and the slice of design columns it builds. Each term
becomes one factor reading all its variables, coded by the spec itself (its memorized
state: spline knots, levels, contrasts), so a term reading one column needs the rows and
the background only, and an interaction is evaluated on every (row, background row) pair
(:mod:`shapgov_plugins.terms`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from shapgov.decomposition.terms import Factor, Term, design_coefficients, input_positions
from shapgov.errors import InputError, MissingValueError


def is_formulaic_spec(spec: Any) -> bool:
    """Whether ``spec`` is a formulaic ``ModelSpec``."""
    return type(spec).__module__.startswith("formulaic") and hasattr(spec, "term_variables")


def _data_variables(spec: Any, term: Any) -> list[str]:
    return sorted(str(v) for v in spec.term_variables[term] if getattr(v, "source", None) == "data")


def formulaic_columns(spec: Any, known: Sequence[str] | None) -> list[str]:
    """Every data column the spec reads, in the order of ``known`` when given."""
    read: list[str] = []
    for term in spec.terms:
        read.extend(_data_variables(spec, term))
    read = list(dict.fromkeys(read))
    if known is not None:
        order = {str(k): i for i, k in enumerate(known)}
        read.sort(key=lambda c: order.get(c, len(order)))
    return read


class _Matrix:
    """The spec's model matrix of the frame last asked for (terms share one build)."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.frame: pd.DataFrame | None = None
        self.matrix: np.ndarray | None = None

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        if self.frame is not frame:
            from formulaic.errors import FormulaicError

            try:
                built = self.spec.get_model_matrix(frame)
            except (FormulaicError, ValueError, KeyError) as err:
                raise InputError(
                    f"the model's formula cannot be evaluated on these rows, so the model "
                    f"cannot predict them either: {err}. Keep the rows (and the background) "
                    "within what the model was fitted on (the levels of a category, a "
                    "transform's domain)."
                ) from err
            if hasattr(built, "toarray"):  # glum's specs build tabmat matrices
                built = built.toarray()
            matrix = np.asarray(built, dtype=float)
            if matrix.shape[0] == len(frame) and not np.isfinite(matrix).all():
                rows = int((~np.isfinite(matrix).all(axis=1)).sum())
                raise MissingValueError(
                    f"{rows} row(s) hold a missing value, or one the formula turns into NaN "
                    "or inf (the log of 0 or of a negative number); the model cannot predict "
                    "them either: impute or fix them, or drop those rows before explaining"
                )
            if matrix.shape[0] != len(frame):
                raise MissingValueError(
                    f"{len(frame) - matrix.shape[0]} row(s) hold a missing value that the "
                    "model's formula drops; impute them or drop those rows before explaining"
                )
            self.frame, self.matrix = frame, matrix
        return self.matrix


def read_formulaic(
    spec: Any, params: np.ndarray, columns: Sequence[str]
) -> tuple[list[Term], np.ndarray]:
    """Terms of a formulaic spec with coefficients ``params`` ``(J_total,)`` over the input
    ``columns``; returns the terms that read columns and the intercept ``(1,)``.

    :raises UndecomposableModelError: The spec's columns and the coefficients disagree.
    """
    params = design_coefficients(params, len(spec.column_names))
    build = _Matrix(spec)
    terms: list[Term] = []
    intercept = 0.0
    for term, where in spec.term_slices.items():
        coef = params[where]
        reads = _data_variables(spec, term)
        if not reads:
            intercept += float(coef.sum())
            continue
        positions = input_positions(columns, reads, what=f"term {str(term)!r}")

        def encode(frame: pd.DataFrame, where: slice = where) -> np.ndarray:
            return build(frame)[:, where]

        width = where.stop - where.start
        factor = Factor(str(term), positions, width, encode)
        index = np.arange(width, dtype=np.int64)[:, None]
        terms.append(Term(str(term), (factor,), index, coef[:, None]))
    return terms, np.array([intercept])
