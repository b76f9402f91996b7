"""Read a patsy design (statsmodels' default formula engine) into terms over original columns.

patsy builds each design column of a term's subterm as the row-wise product of its
factors' columns: a numerical factor's own columns (``age``, ``np.log(vp)``, the 4 columns
of ``bs(age, 4)``), a categorical factor's contrast row for the row's level
(``C(region, Treatment(reference="b"))``), the left-most factor varying fastest
(patsy's ``_build_subterm``, "for consistency with R"). Each factor is evaluated with the
state patsy memorized at fit (spline knots, category levels), so the codings are those the
model was fitted on. The reading is checked against the library's own linear predictor on
every explained row (:mod:`shapgov_plugins.terms`).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from shapgov.decomposition.terms import (
    Factor,
    Term,
    checked_codes,
    design_coefficients,
    input_positions,
)
from shapgov.errors import InputError, UndecomposableModelError


def is_patsy_design(spec: Any) -> bool:
    """Whether ``spec`` is a patsy ``DesignInfo``."""
    return type(spec).__module__.startswith("patsy") and hasattr(spec, "term_codings")


def factor_variables(
    factor: Any, known: Sequence[str] | None, state: dict[str, Any] | None = None
) -> list[str]:
    """The data columns a patsy factor's code reads: its names (and ``Q("...")`` quoted
    names) that are columns of the training data ``known`` or, without it, that its
    formula's environment does not define (``np``, ``bs``, ``C`` are functions)."""
    code = getattr(factor, "code", None)
    if code is None:
        raise UndecomposableModelError(
            f"patsy factor {factor!r} is not an expression of the data (no code); explain the "
            "model as a whole with opaque=True"
        )
    names: list[str] = []
    for node in ast.walk(ast.parse(code, mode="eval")):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "Q"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.append(str(node.args[0].value))
    if known is not None:
        known_set = {str(k) for k in known}
        return list(dict.fromkeys(n for n in names if n in known_set))
    env = _namespace(state)
    return list(dict.fromkeys(n for n in names if n not in env))


def _namespace(state: dict[str, Any] | None) -> set[str]:
    import builtins

    from patsy.builtins import __all__ as patsy_builtins

    out = set(dir(builtins)) | set(patsy_builtins)
    env = (state or {}).get("eval_env")
    for ns in getattr(env, "_namespaces", []):
        out.update(ns)
    return out


def design_columns(design: Any, known: Sequence[str] | None) -> list[str]:
    """Every data column the design reads, in the order of ``known`` (the training data's
    columns) when given, else in order of appearance."""
    read: list[str] = []
    for info in design.factor_infos.values():
        read.extend(factor_variables(info.factor, known, info.state))
    read = list(dict.fromkeys(read))
    if known is not None:
        order = {str(k): i for i, k in enumerate(known)}
        read.sort(key=lambda c: order[c])
    return read


def _evaluated(info: Any, frame: pd.DataFrame, where: str) -> tuple[Any, Any]:
    """patsy's evaluation of one factor on ``frame`` with its memorized state.

    :raises InputError: The factor cannot be evaluated on these rows (a spline's rows
        outside its knots, an unseen level): patsy's message, and what to do.
    """
    from patsy import PatsyError
    from patsy.build import _eval_factor
    from patsy.missing import NAAction

    try:
        return _eval_factor(info, frame, NAAction())
    except PatsyError as err:
        raise InputError(
            f"the formula's factor {where!r} cannot be evaluated on these rows, so the model "
            f"cannot predict them either: {err.message}. Keep the rows (and the background) "
            "within what the model was fitted on (a spline's boundary knots, the levels of a "
            "category)."
        ) from err


def _numerical(info: Any, where: str) -> Any:
    def encode(frame: pd.DataFrame) -> np.ndarray:
        value, is_na = _evaluated(info, frame, where)
        value = np.asarray(value, dtype=float).reshape(len(frame), -1)
        bad = np.asarray(is_na).reshape(len(frame)) | ~np.isfinite(value).all(axis=1)
        return checked_codes(value, bad, where)

    return encode


def _categorical(info: Any, contrast: np.ndarray, where: str) -> Any:
    def encode(frame: pd.DataFrame) -> np.ndarray:
        codes, is_na = _evaluated(info, frame, where)
        codes = checked_codes(np.asarray(codes), np.asarray(is_na) | (np.asarray(codes) < 0), where)
        return contrast[codes]

    return encode


def read_terms(
    design: Any, params: np.ndarray, columns: Sequence[str], known: Sequence[str] | None
) -> tuple[list[Term], np.ndarray]:
    """Terms of a patsy design with coefficients ``params`` ``(J_total,)`` over the input
    ``columns``; returns the terms that read columns and the intercept ``(1,)``.

    :raises UndecomposableModelError: The design's columns and the coefficients disagree.
    """
    params = design_coefficients(params, len(design.column_names))
    terms: list[Term] = []
    intercept = 0.0
    for term, where in design.term_slices.items():
        start = where.start
        for subterm in design.term_codings[term]:
            stop = start + subterm.num_columns
            coef = params[start:stop]
            start = stop
            if not subterm.factors:
                intercept += float(coef.sum())
                continue
            factors = []
            widths = []
            for factor in subterm.factors:
                info = design.factor_infos[factor]
                name = factor.name()
                reads = input_positions(
                    columns, factor_variables(factor, known, info.state), what=f"factor {name!r}"
                )
                if factor in subterm.contrast_matrices:
                    matrix = np.asarray(subterm.contrast_matrices[factor].matrix, dtype=float)
                    encode = _categorical(info, matrix, name)
                    width = matrix.shape[1]
                else:
                    encode = _numerical(info, name)
                    width = int(info.num_columns)
                factors.append(Factor(name, reads, width, encode))
                widths.append(width)
            # patsy's order: the left-most factor varies fastest
            combos = [c[::-1] for c in itertools.product(*[range(w) for w in reversed(widths)])]
            index = np.asarray(combos, dtype=np.int64).reshape(-1, len(widths))
            label = ":".join(f.name for f in factors)
            if not any(f.columns for f in factors):  # reads no column: a constant term
                raise UndecomposableModelError(
                    f"term {label!r} reads no data column; explain the model as a whole with "
                    "opaque=True"
                )
            terms.append(Term(label, tuple(factors), index, coef[:, None]))
    return terms, np.array([intercept])
