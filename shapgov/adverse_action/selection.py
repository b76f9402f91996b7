"""Which entries a row's reasons are: the selection rule, on every row at once.

An entry is a reason when its push toward decline (its value times the decision's sign)
is positive and at least ``min_share`` of the row's total adverse push (every player's,
inputs declared never a reason included), and its statement
holds for the row (:mod:`shapgov.adverse_action.direction`); reasons are
ordered by push, largest first, ties broken by code, at most ``max_reasons`` (Regulation
B's commentary: more than four is not likely to be helpful, 12 CFR 1002 Supp. I,
9(b)(2)-1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def select_reasons(
    push: np.ndarray,
    reason_player: np.ndarray,
    codes: Sequence[str],
    *,
    max_reasons: int,
    min_share: float,
    holds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reasons of each row from its players' pushes toward decline.

    :param push: ``(n, P)`` every player's value times the decision's sign (reason
        entries and inputs declared never a reason).
    :param reason_player: ``(R,)`` the player of each reason code.
    :param codes: The reason codes ``(R,)``.
    :param max_reasons: At most this many per row.
    :param min_share: Keep a reason only when its push is at least this share of the sum
        of the row's positive pushes (of every player).
    :param holds: ``(n, R)`` bool, whether each entry's statement holds for the row
        (default: everywhere).
    :returns: Codes ``(n, max_reasons)`` (object, ``None`` where fewer), their pushes
        (NaN where fewer), and ``(n, R)`` bool: the entries whose push made them a reason
        but whose statement does not hold for the row (not given).
    """
    n = push.shape[0]
    code_arr = np.asarray(codes, dtype=object)
    rank_of_code = np.empty(len(codes), dtype=np.int64)  # ties: by code
    rank_of_code[np.argsort(code_arr.astype(str), kind="stable")] = np.arange(len(codes))
    push = np.asarray(push, dtype=float)
    reason_push = push[:, reason_player]  # (n, R)
    positive = reason_push > 0
    total = np.where(push > 0, push, 0.0).sum(axis=1, keepdims=True)
    qualified = positive & (reason_push >= min_share * total)
    keep = qualified if holds is None else qualified & holds
    # every row sorted at once: kept reasons first, largest push, then code
    key = np.where(keep, -reason_push, np.inf)
    ties = np.broadcast_to(rank_of_code, key.shape)
    order = np.lexsort((ties, key), axis=1)[:, :max_reasons]
    taken = np.take_along_axis(keep, order, axis=1)
    out_codes = np.full((n, max_reasons), None, dtype=object)
    out_values = np.full((n, max_reasons), np.nan)
    width = order.shape[1]
    out_codes[:, :width] = np.where(taken, code_arr[order], None)
    out_values[:, :width] = np.where(taken, np.take_along_axis(reason_push, order, axis=1), np.nan)
    return out_codes, out_values, qualified & ~keep
