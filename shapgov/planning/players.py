"""The players of the game: original columns, or declared groups of them.

By default every original column is a player. Columns derived from one source (lags,
rolling windows, calendar parts of ``sales``) can be declared one player: they then enter
and leave every coalition together, and the player's value is the exact Shapley value of
the game whose players are the groups. That is not the sum of the members' values in the
game over columns (the two agree only when the members do not interact with the rest of
the model), so both can be reported.

Every explainer reads the players through the vertices' ``origins`` (input column ->
player), which the plan composes with the grouping: the tree kernels group their path
conditions by player, the coalition engines enumerate players, linear terms add up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import InputError


@dataclass(frozen=True, eq=False)
class Players:
    """Players ``(P,)`` over ``M`` original columns.

    :param names: One name per player: the group's name, or the column's label as text.
    :param members: The column labels of every player, in column order.
    :param of_column: ``(M,)`` the player of each original column.
    """

    names: tuple[str, ...]
    members: tuple[tuple[Any, ...], ...]
    of_column: np.ndarray

    @classmethod
    def resolve(
        cls, columns: Sequence[Any], groups: Mapping[str, Sequence[Any]] | None = None
    ) -> Players:
        """Players of ``columns``: each group of ``groups`` (name -> member labels) is one
        player, every other column its own. Players are ordered by their first column.

        :raises InputError: An unknown or repeated member, an empty group, or a group name
            that is also the label of a column outside it.
        """
        columns = list(columns)
        position = {c: j for j, c in enumerate(columns)}
        owner = np.full(len(columns), -1, dtype=np.int64)
        named: list[tuple[int, str, list[int]]] = []
        if groups is not None and not isinstance(groups, Mapping):
            raise InputError(
                "players must map a group name to its member columns, e.g. "
                "{'sales': ['sales_lag_1', 'sales_lag_7']}"
            )
        for g, (name, member_labels) in enumerate((groups or {}).items()):
            if isinstance(member_labels, np.ndarray | pd.Index | pd.Series):
                member_labels = list(member_labels)
            if isinstance(member_labels, str) or not isinstance(member_labels, Sequence):
                raise InputError(f"players[{name!r}] must be a list of column labels")
            if not member_labels:
                raise InputError(f"players[{name!r}] is empty; a group needs a column")
            idx = []
            for label in member_labels:
                if label not in position:
                    raise InputError(
                        f"players[{name!r}] names column {label!r}, which the data does not have"
                    )
                j = position[label]
                if owner[j] == g:
                    raise InputError(f"players[{name!r}] lists column {label!r} twice")
                if owner[j] >= 0:
                    raise InputError(f"column {label!r} is in two player groups")
                owner[j] = g
                idx.append(j)
            named.append((min(idx), str(name), sorted(idx)))
        taken = {str(name) for _, name, _ in named}
        for j, c in enumerate(columns):
            if owner[j] < 0 and str(c) in taken:
                raise InputError(
                    f"the group name {str(c)!r} is also a column outside the group; rename it"
                )
        entries = named + [(j, str(c), [j]) for j, c in enumerate(columns) if owner[j] < 0]
        entries.sort(key=lambda e: e[0])
        of_column = np.empty(len(columns), dtype=np.int64)
        for p, (_, _, idx) in enumerate(entries):
            of_column[idx] = p
        return cls(
            names=tuple(name for _, name, _ in entries),
            members=tuple(tuple(columns[j] for j in idx) for _, _, idx in entries),
            of_column=of_column,
        )

    def __len__(self) -> int:
        return len(self.names)

    @property
    def grouped(self) -> bool:
        """Whether some player has more than one column."""
        return len(self.names) < self.of_column.shape[0]

    def compose(self, origins: np.ndarray) -> np.ndarray:
        """Input column -> player, from input column -> original column (-1 stays -1)."""
        origins = np.asarray(origins, dtype=np.int64)
        return np.where(origins >= 0, self.of_column[np.maximum(origins, 0)], -1)

    def sum_members(self, values: np.ndarray) -> np.ndarray:
        """Per-column values ``(n, M, ...)`` added up per player ``(n, P, ...)``."""
        out = np.zeros((values.shape[0], len(self), *values.shape[2:]))
        np.add.at(out, (slice(None), self.of_column), values)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"players": [{"name": ..., "members": [...]}, ...]}``, members as
        text."""
        return {
            "players": [
                {"name": n, "members": [str(c) for c in m]}
                for n, m in zip(self.names, self.members, strict=True)
            ]
        }
