"""How stable each declined row's reasons are to the reference population drawn.

The reasons are re-derived against ``resamples`` seeded bootstrap resamples of the
reference population (its rows drawn with replacement, as many as it has): a row whose
reasons change when the reference sample does is a row whose notice depends on an
accident of sampling (the inconsistency FinRegLab 2022 and Nair et al. 2022, arXiv
2204.12365, traced mostly to the choice of background). Each resample costs one grouped
explanation of the declined rows against ``b`` reference rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shapgov.adverse_action.direction import reference_medians, statement_holds
from shapgov.adverse_action.selection import select_reasons
from shapgov.errors import AdditivityError

#: The documented default number of resamples (``shapgov.mlflow`` and the CLI use it).
DEFAULT_RESAMPLES = 20
METHOD = "bootstrap resamples of the reference population's rows (with replacement, seeded)"


def stability(
    result: Any,
    model: Any,
    rows: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    random_state: int = 0,
    options: dict[str, Any],
    sign: float = 1.0,
) -> dict[str, Any]:
    """Per declined row, the share of its reasons kept across the resamples.

    :param result: The :class:`~shapgov.adverse_action.derive.AdverseActionReasons` to check.
    :param model: Its model.
    :param rows: The declined rows ``(d, M)``, in the order of ``result``'s declined rows.
    :param reference: The reference population ``(b, M)`` it was derived against.
    :param resamples: How many bootstrap resamples (at least 1).
    :param random_state: Their seed.
    :param options: The explain options the reasons were derived with.
    :param sign: ``+1`` when a positive value pushes toward decline, ``-1`` otherwise.
    :returns: JSON-ready figures: ``resamples``, ``method``, ``random_state``,
        ``rows`` (declined rows with reasons), ``mean_share_kept`` (mean over rows of the
        share of a row's reasons found among its reasons in a resample, averaged over
        resamples), ``min_share_kept``, ``rows_always_kept`` (share of rows whose every
        reason is kept in every resample), ``first_reason_kept`` (share of (row, resample)
        pairs whose first reason is unchanged) -- each ``None`` when no row has reasons or
        the additivity policy withheld every resample --, ``withheld_resamples``, and
        ``per_row`` (row key -> share kept; NaN when no resample was explained).
    """
    from shapgov.grouped import explain_groups

    declined = np.flatnonzero(result.declined)
    base = result.codes[declined]
    has = np.array([c is not None for c in base[:, 0]])
    catalogue = result.catalogue
    position = {name: p for p, name in enumerate(result.players)}
    reason_player = np.array([position[c] for c in catalogue.codes])
    rng = np.random.default_rng(random_state)
    kept = np.zeros(len(declined))
    first = np.zeros(len(declined))
    always = np.ones(len(declined), dtype=bool)
    done = withheld = 0
    for _ in range(int(resamples)):
        take = rng.integers(0, len(reference), len(reference))
        drawn = reference.iloc[take]
        try:
            grouped = explain_groups(
                model, rows, players=catalogue.groups(), member_sums=False,
                **{**options, "background": drawn},
            )  # fmt: skip
        except AdditivityError:
            withheld += 1
            continue
        holds = statement_holds(catalogue, rows, reference_medians(catalogue, drawn))
        codes, _, _ = select_reasons(
            grouped.values * sign, reason_player, catalogue.codes,
            max_reasons=result.max_reasons, min_share=result.min_share, holds=holds,
        )  # fmt: skip
        done += 1
        for i in np.flatnonzero(has):
            mine = {c for c in base[i] if c is not None}
            theirs = {c for c in codes[i] if c is not None}
            share = len(mine & theirs) / len(mine)
            kept[i] += share
            always[i] &= share == 1.0
            first[i] += codes[i, 0] == base[i, 0]
    per_row = kept[has] / done if done else np.full(int(has.sum()), np.nan)
    keys = result.index[declined][has]
    measured = bool(has.any() and done)
    return {
        "resamples": int(resamples),
        "method": METHOD,
        "random_state": int(random_state),
        "rows": int(has.sum()),
        "mean_share_kept": float(per_row.mean()) if measured else None,
        "min_share_kept": float(per_row.min()) if measured else None,
        "rows_always_kept": float(always[has].mean()) if measured else None,
        "first_reason_kept": float(first[has].sum() / (has.sum() * done)) if measured else None,
        "withheld_resamples": int(withheld),
        "per_row": {str(k): float(v) for k, v in zip(keys, per_row, strict=True)},
    }
