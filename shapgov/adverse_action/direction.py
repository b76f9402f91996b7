"""Whether a reason's statement is true of the applicant: its ``adverse`` direction.

A statement such as "Proportion of balances to credit limits is too high" describes the
applicant's inputs, not only their push toward decline. A Shapley value can push toward
decline while the applicant's value is on the favourable side (through an interaction, or
a model that is not monotone in the input); giving that statement would not "accurately
describe the factors actually considered or scored" (CFPB circular 2022-03). So an entry
whose ``adverse`` is ``"high"`` is given only when at least one of its inputs lies above
the reference population's median, ``"low"`` only when one lies below it. A missing
value is neither high nor low: "utilization is too high" is not true of an applicant
with no utilization on file (a statement about missing information belongs in an
``"either"`` entry). Booleans count as numbers (True above False). ``"either"`` is never
judged, and neither is an input that is not a number (a category has no "high"): an
entry with no numeric input is given on its push alone.

The medians are the reference population's (the game's background), so the statement
and the value are measured against the same applicants; they are recorded with the
reasons.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shapgov.adverse_action.catalogue import ReasonCatalogue

RULE = (
    "an entry with adverse = 'high' is given only when one of its inputs is above the "
    "reference population's median, 'low' only when one is below it (a missing value is "
    "neither); 'either' entries and inputs that are not numbers are not judged"
)


def _numeric(column: pd.Series) -> bool:
    """Numbers and booleans (True above False); not categories or text."""
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _floats(column: pd.Series) -> np.ndarray:
    return column.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def reference_medians(catalogue: ReasonCatalogue, reference: pd.DataFrame) -> dict[str, float]:
    """The reference population's median of every numeric input of a ``"high"`` or
    ``"low"`` entry (missing values left out; an input with no value has none).

    :param catalogue: The catalogue.
    :param reference: The reference population ``(b, M)``.
    :returns: Input name -> median, in the input's own units.
    """
    medians: dict[str, float] = {}
    for reason in catalogue.reasons:
        if reason.adverse == "either":
            continue
        for label in reason.inputs:
            column = _column(reference, label)
            if column is None or not _numeric(column):
                continue
            values = _floats(column)
            values = values[np.isfinite(values)]
            if len(values):
                medians[label] = float(np.median(values))
    return medians


def statement_holds(
    catalogue: ReasonCatalogue, rows: pd.DataFrame, medians: dict[str, float]
) -> np.ndarray:
    """``(n, R)`` bool: whether each entry's statement may be given for each row, by the
    rule of the module (True for entries with no numeric input, or ``"either"``).

    :param catalogue: The catalogue (``R`` entries, in order).
    :param rows: The rows ``(n, M)``.
    :param medians: :func:`reference_medians` of the reference population.
    """
    n = len(rows)
    holds = np.ones((n, len(catalogue.reasons)), dtype=bool)
    for r, reason in enumerate(catalogue.reasons):
        if reason.adverse == "either":
            continue
        judged = False
        adverse = np.zeros(n, dtype=bool)
        for label in reason.inputs:
            column = _column(rows, label)
            if label not in medians or column is None or not _numeric(column):
                continue
            values = _floats(column)  # NaN compares False: a missing value is neither side
            side = values > medians[label] if reason.adverse == "high" else values < medians[label]
            judged = True
            adverse |= side
        if judged:
            holds[:, r] = adverse
    return holds


def _column(frame: pd.DataFrame, label: str) -> Any:
    """The column named ``label`` (columns may be labelled by numbers; the catalogue names
    them as text)."""
    for c in frame.columns:
        if str(c) == label:
            return frame[c]
    return None
