"""``explain_groups()``: exact Shapley values of the game whose players are groups of
columns (derived features as one player), beside the sums of their members' values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shapgov.combination.govern import judge
from shapgov.combination.policy import AdditivityReport
from shapgov.engine import explain, run_stages
from shapgov.planning.players import Players

#: Differences between a group's value and its members' sum below this (relative to the
#: largest |value|) are rounding, not a difference between the games.
SAME_GAME_TOLERANCE = 1e-9


@dataclass(frozen=True, eq=False)
class GroupedExplanation:
    """Values of the grouped game, governed by the additivity policy.

    :param values: ``(n, P)`` (``(n, P, K)`` for several outputs): the exact Shapley value
        of every player in the game whose players are the groups, in the explained space.
    :param base_value: ``(K,)``: the game's value of the empty coalition.
    :param players: The players (group names and members).
    :param member_sums: Like ``values``: each player's members' Shapley values in the game
        over columns, added up (``None`` when not asked).
    :param additivity: The additivity report of ``values``.
    :param game: The explained game (:meth:`shapgov.planning.game.Game.to_dict`).
    :param explanation: The explanation by column that gave ``member_sums``.
    """

    values: np.ndarray
    base_value: np.ndarray
    players: Players
    additivity: AdditivityReport
    game: dict[str, Any] = field(default_factory=dict)
    member_sums: np.ndarray | None = None
    explanation: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def names(self) -> tuple[str, ...]:
        """The players' names ``(P,)``, in the order of the values' second axis."""
        return self.players.names

    def difference(self) -> np.ndarray | None:
        """``values - member_sums``, shaped like ``values`` (``None`` without sums)."""
        return None if self.member_sums is None else self.values - self.member_sums

    def differing(self) -> list[str]:
        """The players whose group value differs from their members' sum on some row."""
        diff = self.difference()
        if diff is None:
            return []
        scale = max(float(np.abs(self.values).max(initial=0.0)), 1e-300)
        worst = np.abs(diff).reshape(len(self), len(self.players), -1).max(axis=(0, 2))
        return [
            n for n, d in zip(self.names, worst, strict=True) if d > SAME_GAME_TOLERANCE * scale
        ]

    def to_frame(self) -> pd.DataFrame:
        """One column per player (and ``<player> (member sum)`` where the sum differs),
        plus ``base_value``; several outputs give one frame per output, stacked with an
        ``output`` column."""
        values = self.values.reshape(len(self), len(self.players), -1)
        sums = None
        if self.member_sums is not None:
            sums = self.member_sums.reshape(values.shape)
        differ = set(self.differing())
        frames = []
        for k in range(values.shape[2]):
            frame = pd.DataFrame(values[:, :, k], columns=list(self.names))
            for p, name in enumerate(self.names):
                if sums is not None and name in differ:
                    frame[f"{name} (member sum)"] = sums[:, p, k]
            frame.insert(0, "base_value", self.base_value[k])
            if values.shape[2] > 1:
                frame.insert(0, "output", k)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: players, mean ``|value|`` per player (and of the member sums),
        the players whose values differ, the additivity report and the game."""
        values = np.abs(self.values.reshape(len(self), len(self.players), -1)).mean(axis=(0, 2))
        out: dict[str, Any] = {
            **self.players.to_dict(),
            "mean_abs_value": dict(zip(self.names, values.tolist(), strict=True)),
            "additivity": self.additivity.to_dict(rows=False),
            "game": self.game,
        }
        if self.member_sums is not None:
            sums = np.abs(self.member_sums.reshape(len(self), len(self.players), -1))
            out["mean_abs_member_sum"] = dict(
                zip(self.names, sums.mean(axis=(0, 2)).tolist(), strict=True)
            )
            out["differing"] = self.differing()
        return out


def explain_groups(
    model: Any,
    X: Any,
    *,
    players: Mapping[str, Sequence[Any]],
    background: Any = None,
    background_weights: Any = None,
    feature_perturbation: str = "auto",
    offset: Any = None,
    exposure: Any = None,
    capping: tuple[float | None, float | None] | None = None,
    additivity_threshold: float = 0.01,
    pass_tolerance: float = 1e-6,
    fallback: str | None = "kernel",
    calibration: str = "probability",
    output: str = "margin",
    opaque: bool = False,
    explainer_options: Mapping[str, Mapping[str, Any]] | None = None,
    plugin_manager: Any = None,
    member_sums: bool = True,
) -> GroupedExplanation:
    """Exact Shapley values of the game whose players are ``players``' groups (every other
    column its own player), in the same single game as :func:`shapgov.explain`.

    Every explainer plays the grouped game itself: the tree kernels treat the path
    conditions of a group's columns as one player's, the coalition engines enumerate
    groups (up to ``max_exact_players`` players, 14 by default: ``2**14`` coalitions),
    linear terms add up. Values therefore equal brute force over coalitions of groups.

    Other parameters are those of :func:`shapgov.explain`.

    :param players: Group name -> member column labels, e.g. ``{"sales": ["sales_lag_1",
        "sales_lag_7", "sales_roll_28"]}``.
    :param member_sums: Also explain the columns one by one and add up each group's
        members (twice the work), to report where the two differ.

    :returns: The :class:`GroupedExplanation`, values ``(n, P[, K])``.
    :raises AdditivityError: The values failed the policy; only diagnostics are attached.
    :raises InputError: Bad groups (unknown, repeated or empty members) or options.
    """
    options = dict(
        background=background,
        background_weights=background_weights,
        feature_perturbation=feature_perturbation,
        offset=offset,
        exposure=exposure,
        additivity_threshold=additivity_threshold,
        pass_tolerance=pass_tolerance,
        fallback=fallback,
        calibration=calibration,
        output=output,
        opaque=opaque,
        explainer_options=explainer_options,
        plugin_manager=plugin_manager,
    )
    run = run_stages(model, X, interactions=False, players=players, **options)
    report, _, combined = judge(
        run.plan,
        run.combined,
        run.frame,
        run.policy,
        plugins=run.plugins,
        offset=run.offset,
        exposure=run.exposure,
        capping=capping,
    )
    sums = by_column = None
    if member_sums:
        by_column = explain(model, run.frame, capping=capping, **options)
        sums = run.plan.players.sum_members(by_column._raw)
    k = combined.values.shape[2]
    values = combined.values
    return GroupedExplanation(
        values=values[:, :, 0] if k == 1 else values,
        base_value=combined.base,
        players=run.plan.players,
        additivity=report,
        game=run.plan.game.to_dict(),
        member_sums=None if sums is None else (sums[:, :, 0] if k == 1 else sums),
        explanation=by_column,
    )
