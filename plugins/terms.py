"""Built-in plugin: exact interventional SHAP for margins that are sums of terms (GLMs).

A term ``g_t`` reads only its columns ``R_t``, so in the interventional game it is a game
of those players alone: ``v_t(T) = E_b[g_t(x_T, b_{R_t \\ T})]`` for ``T`` within ``R_t``,
and by the Shapley value's linearity and null-player axioms (Shapley 1953) the margin's
values are the sum over terms of each term's Shapley values over its own players:

    phi_i = sum_{t : i in R_t}  sum_{T in R_t \\ i}  |T|! (r_t - |T| - 1)! / r_t!
                                 * (v_t(T + i) - v_t(T)),         r_t = |R_t|.

A main effect (``r = 1``) gives ``g(x) - E_b g(b)``; an interaction ``a:b`` is split by
the closed form above over its two players, never equally and never per design column.
Each design column is a product of its factors' codings, so ``E_b`` of a subset's value
is the product of the factors read from the row and the background mean of the product of
the others: time ``O((n + B) J)`` per term and subset (``J`` design columns). Only a factor
that reads columns on both sides of a subset (``I(a / b)`` with ``a`` in, ``b`` out) needs
the row-by-background table, ``O(n B J)``.

Where the parent consumes a response of the margin (a probability through a probit link,
a mean through a log link: ``output="prediction"``), the values are exact in that space
through the exact-coalition engine, each coalition's margin assembled from the terms'
subset values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shapgov import hookimpl
from shapgov.decomposition.terms import Term, TermModel, hybrid_frame
from shapgov.errors import UndecomposableModelError, UnsupportedModelError
from shapgov.explainers.base import Explainer, VertexRequest, VertexValues
from shapgov.explainers.coalitions import (
    CHUNK_ELEMENTS,
    DEFAULT_MAX_EXACT_PLAYERS,
    checked_max_players,
    exact_shapley,
    interactions_from_values,
    shapley_from_values,
)

#: Largest relative gap between the terms' margin and the library's own margin on the
#: explained rows before the reading of the design is refused.
CHECK_RTOL = 1e-9


class _TermGame:
    """One term's players and factor codings on the explained rows and the background."""

    def __init__(self, term: Term, origins: np.ndarray, x: pd.DataFrame, bg: pd.DataFrame):
        self.term = term
        self.factor_players = [
            frozenset(int(origins[c]) for c in f.columns if origins[c] >= 0) for f in term.factors
        ]
        self.players = sorted(set().union(*self.factor_players)) if term.factors else []
        self.x_codings = [f.encode(x) for f in term.factors]
        self.bg_codings = [f.encode(bg) for f in term.factors]
        self.origins = origins

    @property
    def n_players(self) -> int:
        return len(self.players)

    def sides(self, subset: int) -> tuple[list[int], list[int], list[int], set[int]]:
        """Factors read from the row, from the background, and from both, for the subset
        (bit ``i``: ``players[i]`` is present), and the present players."""
        present = {p for i, p in enumerate(self.players) if subset >> i & 1}
        rows, back, mixed = [], [], []
        for f, fp in enumerate(self.factor_players):
            if fp <= present:
                rows.append(f)
            elif not fp & present:
                back.append(f)
            else:
                mixed.append(f)
        return rows, back, mixed, present

    def _product(self, codings: list[np.ndarray], factors: list[int]) -> np.ndarray | None:
        out = None
        for f in factors:
            part = np.take(codings[f], self.term.index[:, f], axis=-1)
            out = part if out is None else out * part
        return out

    def _hybrid(
        self, rows: slice, factors: list[int], present: set[int], x: pd.DataFrame, bg: pd.DataFrame
    ) -> np.ndarray | None:
        """Product of the mixed factors on every (row, background row) pair ``(r, B, J)``."""
        if not factors:
            return None
        names = [
            c for j, c in enumerate(x.columns) if self.origins[j] < 0 or self.origins[j] in present
        ]
        table = hybrid_frame(x.iloc[rows], bg, names)
        codings = {f: self.term.factors[f].encode(table) for f in factors}
        r, b = rows.stop - rows.start, len(bg)
        out = None
        for f in factors:
            part = np.take(codings[f], self.term.index[:, f], axis=-1).reshape(r, b, -1)
            out = part if out is None else out * part
        return out

    def averaged(
        self, subset: int, rows: slice, x: pd.DataFrame, bg: pd.DataFrame, game: Any
    ) -> np.ndarray:
        """``v_t(subset)`` for a block of rows: ``(r, K)``."""
        from_rows, from_back, mixed, present = self.sides(subset)
        r, j = rows.stop - rows.start, self.term.index.shape[0]
        d_rows = self._product([c[rows] for c in self.x_codings], from_rows)
        d_back = self._product(self.bg_codings, from_back)
        if not mixed:
            mean_back = np.ones(j) if d_back is None else game.average(d_back, axis=0)
            d_rows = np.ones((r, j)) if d_rows is None else d_rows
            return d_rows @ (mean_back[:, None] * self.term.coef)
        full = self._hybrid(rows, mixed, present, x, bg)
        if d_rows is not None:
            full = full * d_rows[:, None, :]
        if d_back is not None:
            full = full * d_back[None]
        return game.average(full, axis=1) @ self.term.coef

    def pairs(self, subset: int, rows: slice, x: pd.DataFrame, bg: pd.DataFrame) -> np.ndarray:
        """``g_t(x_subset, b_rest)`` for every row and background row: ``(r, B, K)``."""
        from_rows, from_back, mixed, present = self.sides(subset)
        r, b, j = rows.stop - rows.start, len(bg), self.term.index.shape[0]
        full = np.ones((r, b, j))
        d_rows = self._product([c[rows] for c in self.x_codings], from_rows)
        d_back = self._product(self.bg_codings, from_back)
        if d_rows is not None:
            full = full * d_rows[:, None, :]
        if d_back is not None:
            full = full * d_back[None]
        hyb = self._hybrid(rows, mixed, present, x, bg)
        if hyb is not None:
            full = full * hyb
        return full @ self.term.coef


class TermsExplainer(Explainer):
    """Exact interventional SHAP for a :class:`~shapgov.decomposition.terms.TermModel`
    (GLMs from statsmodels and glum, formulas traced to the original columns).

    :param max_exact_players: Most original columns enumerated when the parent consumes a
        response of the margin (``output="prediction"``, a probability); the margin itself
        needs no enumeration beyond each term's own columns.
    :param max_term_players: Most original columns one term may read (its subsets are
        enumerated: ``2**r`` per term).
    """

    name = "terms"
    supports_response = True

    def __init__(
        self,
        *,
        max_exact_players: int = DEFAULT_MAX_EXACT_PLAYERS,
        max_term_players: int = 10,
    ) -> None:
        self.max_exact_players = checked_max_players(max_exact_players)
        self.max_term_players = checked_max_players(max_term_players)

    def _games(
        self, request: VertexRequest
    ) -> tuple[TermModel, list[_TermGame], pd.DataFrame, pd.DataFrame]:
        model = request.vertex.estimator
        if not isinstance(model, TermModel):
            raise UnsupportedModelError(
                f"{request.vertex.name}: the terms explainer explains TermModel vertices (GLMs "
                f"read by a plugin), not {type(model).__name__}"
            )
        x = model.frame(request.Z)
        bg = model.frame(request.Z_background)
        origins = request.origins
        games = []
        for term in model.terms:
            game = _TermGame(term, origins, x, bg)
            if game.n_players > self.max_term_players:
                raise UnsupportedModelError(
                    f"{request.vertex.name}: term {term.name!r} reads {game.n_players} columns, "
                    f"above max_term_players={self.max_term_players}; raise it through "
                    "explainer_options={'terms': {'max_term_players': ...}} (cost doubles per "
                    "column)"
                )
            games.append(game)
        _check_reading(model, x, games, request.vertex.name)
        return model, games, x, bg

    def explain(self, request: VertexRequest) -> VertexValues:
        model, games, x, bg = self._games(request)
        if request.vertex.response is not None:
            return self._response_values(request, model, games, x, bg)
        n, k = len(x), model.n_outputs
        values = np.zeros((n, request.n_features, k))
        base = model.intercept.astype(float).copy()
        for game in games:
            v = self._subset_values(game, x, bg, request)  # (n, 2**r, K)
            base = base + v[0, 0]
            if game.n_players:
                values[:, game.players] += shapley_from_values(v)
        return VertexValues(values, base)

    def interactions(self, request: VertexRequest) -> np.ndarray:
        """SHAP interaction values ``(n, M, M, K)``: each term's Shapley interaction index
        over its own players (a main effect sits on the diagonal), summed over terms."""
        if request.vertex.response is not None:
            model, games, x, bg = self._games(request)
            return self._response_values(request, model, games, x, bg, interactions=True)
        model, games, x, bg = self._games(request)
        n, m, k = len(x), request.n_features, model.n_outputs
        out = np.zeros((n, m, m, k))
        for game in games:
            if game.n_players:
                v = self._subset_values(game, x, bg, request)
                p = np.asarray(game.players)
                out[:, p[:, None], p[None, :]] += interactions_from_values(v)
        return out

    def _subset_values(
        self, game: _TermGame, x: pd.DataFrame, bg: pd.DataFrame, request: VertexRequest
    ) -> np.ndarray:
        n, r = len(x), game.n_players
        k = game.term.coef.shape[1]
        out = np.empty((n, 1 << r, k))
        step = max(1, CHUNK_ELEMENTS // max(1, len(bg) * game.term.index.shape[0]))
        for start in range(0, n, step):
            rows = slice(start, min(n, start + step))
            for subset in range(1 << r):
                out[rows, subset] = game.averaged(subset, rows, x, bg, request.game)
        return out

    def _response_values(
        self,
        request: VertexRequest,
        model: TermModel,
        games: list[_TermGame],
        x: pd.DataFrame,
        bg: pd.DataFrame,
        *,
        interactions: bool = False,
    ) -> Any:
        vertex = request.vertex
        active = np.array(sorted({p for g in games for p in g.players}), dtype=np.int64)
        slot = {int(p): i for i, p in enumerate(active)}
        n_active = active.size
        coalitions = np.arange(1 << n_active)
        # each term's subset bits, per coalition
        subsets = []
        for g in games:
            bits = np.zeros(coalitions.size, dtype=np.int64)
            for i, p in enumerate(g.players):
                bits |= ((coalitions >> slot[p]) & 1) << i
            subsets.append(bits)
        respond = vertex.response.fn
        game = request.game
        intercept = model.intercept.astype(float)

        def values(rows: slice) -> np.ndarray:
            r = rows.stop - rows.start
            margin = np.broadcast_to(
                intercept, (r, coalitions.size, len(bg), intercept.size)
            ).copy()
            for g, bits in zip(games, subsets, strict=True):
                table = np.stack([g.pairs(s, rows, x, bg) for s in range(1 << g.n_players)], 1)
                margin += table[:, bits]
            return game.average(respond(margin), axis=2)

        margin_bg = np.broadcast_to(intercept, (len(bg), intercept.size)).copy()
        for g in games:
            margin_bg += g.term.design(g.bg_codings) @ g.term.coef
        base = game.average(respond(margin_bg), axis=0)
        phi = exact_shapley(
            values,
            n_rows=len(x),
            n_players=n_active,
            elements_per_row=(1 << n_active) * len(bg) * max(intercept.size, base.shape[-1]),
            max_players=self.max_exact_players,
            what=f"{vertex.name} ({vertex.response.name})",
            interactions=interactions,
        )
        k = phi.shape[-1]
        if interactions:
            out = np.zeros((len(x), request.n_features, request.n_features, k))
            out[:, active[:, None], active[None, :]] = phi
            return out
        out = np.zeros((len(x), request.n_features, k))
        out[:, active] = phi
        return VertexValues(out, base)


def _check_reading(model: TermModel, x: pd.DataFrame, games: list[_TermGame], where: str) -> None:
    """The terms' margin on the explained rows (from the codings the games hold: a row
    the terms cannot code got their typed error already) against the library's own."""
    if model.check is None:
        return
    mine = np.broadcast_to(model.intercept.astype(float), (len(x), model.n_outputs)).copy()
    for game in games:
        mine += game.term.design(game.x_codings) @ game.term.coef
    own = np.asarray(model.check(x), dtype=float).reshape(len(x), -1)
    gap = np.abs(own - mine)
    limit = CHECK_RTOL * (1.0 + np.abs(own))
    if not np.all(gap <= limit):
        raise UndecomposableModelError(
            f"{where}: the {model.kind}'s terms, as read, give a margin up to "
            f"{float(gap.max()):.3g} away from the model's own on the explained rows; the "
            "design could not be traced to its columns. Explain the model as a whole with "
            "opaque=True, and report this model's formula to shapgov."
        )


@hookimpl(trylast=True)
def shapgov_explainers() -> list[type[Explainer]]:
    return [TermsExplainer]
