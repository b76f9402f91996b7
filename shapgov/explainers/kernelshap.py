"""Model-agnostic interventional SHAP (Kernel SHAP) for any predict function.

The game is the interventional one every shapgov explainer plays:
``v(S) = mean_b f(x_S, b_rest)`` over the background rows b, with players the original
columns (several input columns can belong to one player). Two modes:

* **exact**: all ``2**P`` coalitions are evaluated and the Shapley formula applied
  (:func:`shapgov.explainers.coalitions.shapley_from_values`): equal to brute force.
* **sampling**: paired coalitions, stratified by size with leverage-score shares and
  drawn without replacement (:mod:`shapgov.explainers.coalition_sampling`; Musco and
  Witter, ICLR 2025), within ``n_samples`` coalitions per row (empty and full included).
  The default estimator (``"odd"``) regresses each pair's odd part on the singletons and
  the strongest odd interactions of a LightGBM surrogate fitted on the model rows already
  evaluated (:mod:`shapgov.explainers.odd_regression`); ``"leverage"`` on the singletons
  alone. The efficiency constraint is held exactly; standard errors are the estimator's
  linearisation over the sampled pairs (no further model calls). All rows share the same
  coalitions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from shapgov.errors import InputError, ModelOutputError
from shapgov.explainers.coalition_sampling import (
    CoalitionSample,
    constrained_regression,
    sample_coalitions,
)
from shapgov.explainers.coalitions import (
    DEFAULT_MAX_EXACT_PLAYERS,
    check_budget,
    coalition_masks,
    interactions_from_values,
    shapley_from_values,
)
from shapgov.explainers.odd_regression import (
    coalition_share,
    coalition_support,
    interleaved,
    merged_support,
    n_support_terms,
    odd_regression,
    support,
)
from shapgov.explainers.surrogate import EncodedColumns, fit_surrogate
from shapgov.opaque import checked_predictions

Predict = Callable[[Any], np.ndarray]
DEFAULT_BATCH_ROWS = 1 << 16  # hybrid rows per model call (cache-sized)
#: Sampling-mode estimators (see :func:`kernel_shap`).
ESTIMATORS = ("odd", "leverage")
#: Most model rows held at once for one block's surrogate (~32 MiB per output).
MAX_BLOCK_MODEL_ROWS = 1 << 22


@dataclass(frozen=True)
class KernelValues:
    """Kernel SHAP values ``(n, P, K)`` over the players, base ``(K,)`` and, for the
    sampling mode, standard errors ``(n, P, K)`` (the estimator's linearisation over the
    sampled pairs)."""

    values: np.ndarray
    base: np.ndarray
    std_error: np.ndarray | None
    n_coalitions: int
    n_evaluations: int
    exact: bool
    #: Exact interaction values ``(n, P, P, K)``, when asked (exact mode only).
    interactions: np.ndarray | None = None
    #: Sampling mode: per output, the share of rows whose values are regression-adjusted.
    surrogate_share: np.ndarray | None = None


class Hybrids:
    """Builds the rows ``(x_S, b_rest)`` for many rows, coalitions and background rows.

    Works on float arrays (fast path) or DataFrames of any column types (each column
    keeps its dtype). ``player[c]`` is the player of input column c; -1 marks a column
    that is taken from the row in every coalition.
    """

    def __init__(
        self,
        X: Any,
        background: Any,
        player: np.ndarray,
        *,
        dedupe: bool = True,
        weights: np.ndarray | None = None,
    ) -> None:
        self.dedupe = dedupe
        nb = len(background)
        #: Background row weights, summing to one.
        self.weights = np.full(nb, 1.0 / nb) if weights is None else np.asarray(weights)
        self.frame = isinstance(X, pd.DataFrame)
        if self.frame:
            self.columns = list(X.columns)
            self.dtypes = X.dtypes
            self.x_cols = [X[c].to_numpy() for c in self.columns]
            self.b_cols = [background[c].to_numpy() for c in self.columns]
        else:
            self.X = np.asarray(X)
            self.B = np.asarray(background)
        self.player = np.asarray(player, dtype=np.int64)
        self.n_background = len(background)

    def agreement(self, row: int) -> np.ndarray:
        """``(b, P)``: whether background row b holds row ``row``'s value for every column
        of player p (NaN equals NaN). Such a player cannot change that b's hybrids."""
        n_players = int(self.player.max(initial=-1)) + 1
        if not self.dedupe:
            return np.zeros((self.n_background, n_players), dtype=bool)
        same = np.ones((self.n_background, n_players), dtype=bool)
        for c, p in enumerate(self.player):
            if p < 0:
                continue
            if self.frame:
                x, b = self.x_cols[c][row], self.b_cols[c]
            else:
                x, b = self.X[row, c], self.B[:, c]
            same[:, p] &= _same_values(b, x)
        return same

    def build_one(self, row: int, cols: np.ndarray, background_rows: np.ndarray) -> Any:
        """Hybrids of one row with some background rows: coalitions × those rows."""
        s, nb = cols.shape[0], background_rows.shape[0]
        if not self.frame:
            h = np.where(
                cols[:, None, :], self.X[row][None, None, :], self.B[background_rows][None]
            )
            return h.reshape(s * nb, -1)
        data = {}
        for c, name in enumerate(self.columns):
            xc = self.x_cols[c][row]
            bc = self.b_cols[c][background_rows][None, :]
            data[name] = np.where(cols[:, None, c], xc, bc).reshape(-1)
        return self._typed(pd.DataFrame(data))

    def _typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        for name, dtype in self.dtypes.items():
            if frame[name].dtype != dtype:
                frame[name] = frame[name].astype(dtype)
        return frame

    def column_masks(self, masks: np.ndarray) -> np.ndarray:
        """Coalition masks ``(S, P)`` → per-column "take from the row" masks ``(S, m)``."""
        out = np.ones((masks.shape[0], self.player.shape[0]), dtype=bool)
        on = self.player >= 0
        out[:, on] = masks[:, self.player[on]].astype(bool)
        return out

    def build(self, rows: np.ndarray, cols: np.ndarray) -> Any:
        """Hybrids for ``rows`` × coalitions (column masks ``cols``) × background, in that
        order, as one 2-D table of ``len(rows) * S * n_background`` rows."""
        r, s, nb = rows.shape[0], cols.shape[0], self.n_background
        if not self.frame:
            x = self.X[rows][:, None, None, :]
            b = self.B[None, None, :, :]
            h = np.where(cols[None, :, None, :], x, b)
            return h.reshape(r * s * nb, -1)
        data = {}
        for c, name in enumerate(self.columns):
            take = cols[None, :, None, c]
            xc = self.x_cols[c][rows][:, None, None]
            bc = self.b_cols[c][None, None, :]
            data[name] = np.where(take, xc, bc).reshape(-1)
        return self._typed(pd.DataFrame(data))


def _same_values(b: np.ndarray, x: Any) -> np.ndarray:
    """Whether each of ``b`` equals ``x``; missing markers (NaN, None, pd.NA, NaT) equal
    each other and nothing else."""
    absent = np.asarray(pd.isna(b), dtype=bool)
    if pd.isna(x):
        return absent
    eq = np.zeros(b.shape[0], dtype=bool)
    eq[~absent] = np.asarray(b[~absent] == x, dtype=bool)
    return eq


def checked_output(out: Any, n_rows: int) -> np.ndarray:
    """A predict function's output as ``(n_rows, K)`` floats, or a typed error."""
    arr = checked_predictions(out, n_rows, "the model")
    if arr.ndim == 1:
        arr = arr[:, None]
    if not np.isfinite(arr).all():
        raise ModelOutputError(
            "the model returned NaN or inf for some rows; Kernel SHAP needs finite outputs "
            "on every hybrid row (impute inside the model, or clip its output)"
        )
    return arr


def coalition_values(
    f: Predict,
    hybrids: Hybrids,
    rows: np.ndarray,
    masks: np.ndarray,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    n_jobs: int = 1,
    progress: tqdm | None = None,
    keep_model_rows: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``v(S)`` for ``rows`` and coalitions ``masks`` ``(S, P)``: ``(len(rows), S, K)``;
    with ``keep_model_rows`` also the model's outputs ``(len(rows), S, b, K)``.

    The hybrid table is cut into batches of at most ``batch_rows`` rows; ``n_jobs``
    threads build and predict batches side by side (numpy and most models release the
    GIL), each averaging its own predictions over the background.
    """
    nb = hybrids.n_background
    cols = hybrids.column_masks(masks)
    s_step = max(1, min(cols.shape[0], batch_rows // nb))
    r_step = max(1, batch_rows // (s_step * nb))
    batches = [
        (r0, s0) for r0 in range(0, rows.shape[0], r_step) for s0 in range(0, cols.shape[0], s_step)
    ]

    def run(batch: tuple[int, int]) -> np.ndarray:
        r0, s0 = batch
        rr, cc = rows[r0 : r0 + r_step], cols[s0 : s0 + s_step]
        n_eval = rr.shape[0] * cc.shape[0] * nb
        pred = checked_output(f(hybrids.build(rr, cc)), n_eval)
        if progress is not None:
            progress.update(n_eval)
        block = pred.reshape(rr.shape[0], cc.shape[0], nb, -1)
        return block if keep_model_rows else np.einsum("rsbk,b->rsk", block, hybrids.weights)

    results = _map(run, batches, n_jobs)
    k = results[0].shape[-1]
    out = np.empty((rows.shape[0], cols.shape[0], k))
    kept = np.empty((rows.shape[0], cols.shape[0], nb, k)) if keep_model_rows else None
    for (r0, s0), res in zip(batches, results, strict=True):
        if kept is not None:
            _place(kept, res, r0, s0, k)
            res = np.einsum("rsbk,b->rsk", res, hybrids.weights)
        _place(out, res, r0, s0, k)
    return out if kept is None else (out, kept)


def exact_values(
    f: Predict,
    hybrids: Hybrids,
    n_rows: int,
    n_players: int,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    n_jobs: int = 1,
    progress: tqdm | None = None,
) -> tuple[np.ndarray, int]:
    """``v(S)`` for every row and all ``2**P`` coalitions, ``(n, 2**P, K)``, and the
    number of model evaluations spent.

    A player whose columns hold the same values in the row and in background row b
    cannot change b's hybrids, so for each row the background is grouped by the players
    it agrees on and only coalitions of the other players are evaluated: with
    categorical or binary columns (or the row itself in the background) far fewer
    evaluations than ``2**P * b``, with identical results.
    """
    ids = np.arange(1 << n_players)
    pieces: list[tuple[int, int, np.ndarray, np.ndarray]] = []  # row, group, cols, members
    plans: list[list[np.ndarray]] = []
    for i in range(n_rows):
        same = hybrids.agreement(i)
        patterns, group = np.unique(same, axis=0, return_inverse=True)
        plan = []
        for g, pattern in enumerate(patterns):
            members = np.flatnonzero(group.ravel() == g)
            free = np.flatnonzero(~pattern)  # players that change these rows' hybrids
            sub = np.zeros((1 << free.size, n_players))
            sub[:, free] = coalition_masks(free.size)
            # position of S & free among the sub-coalitions, for every coalition S
            plan.append(((ids[:, None] >> free[None, :]) & 1) @ (1 << np.arange(free.size)))
            cols = hybrids.column_masks(sub)
            step = max(1, batch_rows // members.size)
            for a in range(0, cols.shape[0], step):
                pieces.append((i, g, cols[a : a + step], members))
        plans.append(plan)
    tasks = _pack(pieces, batch_rows)

    def run(task: list[tuple[int, int, np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        tables = [hybrids.build_one(i, cols, members) for i, _, cols, members in task]
        n_eval = sum(len(t) for t in tables)
        table = pd.concat(tables, ignore_index=True) if hybrids.frame else np.vstack(tables)
        pred = checked_output(f(table), n_eval)
        if progress is not None:
            progress.update(n_eval)
        out, start = [], 0
        for _, _, cols, members in task:
            size = cols.shape[0] * members.size
            block = pred[start : start + size]
            block = block.reshape(cols.shape[0], members.size, -1)
            out.append(np.einsum("smk,m->sk", block, hybrids.weights[members]))
            start += size
        return out

    results = [r for batch in _map(run, tasks, n_jobs) for r in batch]
    k = results[0].shape[1]
    sums: dict[tuple[int, int], list[np.ndarray]] = {}
    for (i, g, _, _), res in zip(pieces, results, strict=True):
        if res.shape[1] != k:
            raise ModelOutputError(
                f"the model returned {res.shape[1]} outputs per row, earlier {k}; return "
                "the same outputs for every batch"
            )
        sums.setdefault((i, g), []).append(res)
    v = np.zeros((n_rows, ids.size, k))
    for i, plan in enumerate(plans):
        for g, index in enumerate(plan):
            v[i] += np.concatenate(sums[(i, g)])[index]
    return v, sum(p[2].shape[0] * p[3].size for p in pieces)


def _pack(pieces: list[Any], batch_rows: int) -> list[list[Any]]:
    """Consecutive pieces grouped into model calls of about ``batch_rows`` rows."""
    tasks: list[list[Any]] = []
    size = batch_rows
    for piece in pieces:
        n = piece[2].shape[0] * piece[3].size
        if size + n > batch_rows:
            tasks.append([])
            size = 0
        tasks[-1].append(piece)
        size += n
    return tasks


def _map(run: Callable[[Any], Any], tasks: list[Any], n_jobs: int) -> list[Any]:
    """``run`` over ``tasks`` in order; the first alone (it fixes the output width and a
    bad model fails before any thread starts), the rest in ``n_jobs`` threads."""
    if not tasks:
        raise InputError("there are no rows to explain")
    first = [run(tasks[0])]
    if n_jobs > 1 and len(tasks) > 2:
        # one BLAS thread per worker: the workers are the parallelism
        with threadpool_limits(limits=1), ThreadPoolExecutor(max_workers=n_jobs) as pool:
            return first + list(pool.map(run, tasks[1:]))
    return first + [run(t) for t in tasks[1:]]


def _place(out: np.ndarray, v: np.ndarray, r0: int, s0: int, k: int) -> None:
    if v.shape[-1] != k:
        raise ModelOutputError(
            f"the model returned {v.shape[-1]} outputs per row, earlier {k}; return the same "
            "outputs for every batch"
        )
    out[r0 : r0 + v.shape[0], s0 : s0 + v.shape[1]] = v


def kernel_shap(
    f: Predict,
    X: Any,
    background: Any,
    *,
    player: np.ndarray | None = None,
    mode: str = "auto",
    max_exact_players: int = DEFAULT_MAX_EXACT_PLAYERS,
    n_samples: int | None = None,
    random_state: int | None = 0,
    estimator: str = "odd",
    batch_rows: int = DEFAULT_BATCH_ROWS,
    n_jobs: int | None = None,
    dedupe: bool = True,
    progress: bool | None = None,
    interactions: bool = False,
    background_weights: np.ndarray | None = None,
) -> KernelValues:
    """Interventional SHAP values of ``f`` on ``X`` against ``background``.

    :param f: Predict function: a 2-D table (array or DataFrame like ``X``) → ``(n, K)``.
    :param player: Player of each column (default: one per column); -1 = never varied.
    :param mode: ``"exact"``, ``"sampling"`` or ``"auto"`` (exact up to
        ``max_exact_players`` players).
    :param n_samples: Coalitions per row in sampling mode, the empty and full ones included
        (default ``2 * P + 2048``); never exceeded. Below two pairs per coalition size:
        ``InputError``.
    :param random_state: Seed of the coalition sampler (sampling mode).
    :param estimator: Sampling mode's estimator: ``"odd"`` (default: the paired odd
        regression on the singletons and the strongest odd interactions of a tree
        surrogate fitted on the evaluated model rows, see
        :mod:`shapgov.explainers.odd_regression`; per output, the plain regression
        instead where its estimated variance is smaller) or ``"leverage"`` (the paired
        leverage-score regression on the singletons alone).
    :param batch_rows: Most hybrid rows per model call (bounds memory).
    :param n_jobs: Threads calling ``f`` side by side (default: the CPU count, at most 4);
        pass 1 for a predict function that is not thread-safe.
    :param dedupe: Exact mode: skip hybrids that equal others because the row and a
        background row agree on a player (same values, fewer model calls).
    :param progress: Show a progress bar (default: when the work exceeds 10**7 rows).
    :param interactions: Also return exact interaction values (exact mode only).
    :param background_weights: Background row weights summing to one (default equal).
    :returns: :class:`KernelValues`: values ``(n, P, K)`` in the units of ``f``'s output,
        base ``(K,)``; base + values summed over players = ``f(x)`` to rounding.
    :raises InputError: Bad mode, estimator, players, budget or an empty background.
    :raises ExactBudgetError: ``mode="exact"`` beyond ``max_exact_players``.
    :raises ModelOutputError: ``f`` returned the wrong shape, non-numbers, NaN or inf.
    """
    if mode not in ("auto", "exact", "sampling"):
        raise InputError(f"mode must be 'auto', 'exact' or 'sampling', got {mode!r}")
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if n_samples is not None and (
        not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool)
    ):
        raise InputError(f"n_samples must be an int (coalitions per row), got {n_samples!r}")
    if random_state is not None and (
        not isinstance(random_state, (int, np.integer))
        or isinstance(random_state, bool)
        or random_state < 0
    ):
        raise InputError(f"random_state must be None or an int >= 0, got {random_state!r}")
    n_rows, n_cols = X.shape
    if len(background) == 0:
        raise InputError("the background is empty; pass at least one background row")
    if player is None:
        player = np.arange(n_cols)
    player = np.asarray(player, dtype=np.int64)
    if player.shape != (n_cols,):
        raise InputError(f"player must give one entry per column ({n_cols}), got {player.shape}")
    n_players = int(player.max(initial=-1)) + 1
    exact = mode == "exact" or (mode == "auto" and n_players <= max_exact_players)
    if mode == "exact":
        check_budget(
            n_players, max_exact_players, what="Kernel SHAP", instead="use mode='sampling'"
        )
    if interactions and not exact:
        raise InputError(
            "interaction values come from exact Kernel SHAP only; keep the columns within "
            "max_exact_players or explain without interactions"
        )
    if background_weights is not None:
        w = np.asarray(background_weights, dtype=float) if np.ndim(background_weights) else None
        if (
            w is None
            or w.shape != (len(background),)
            or not np.isfinite(w).all()
            or ((w < 0).any() or w.sum() <= 0)
        ):
            raise InputError(
                f"background_weights must be {len(background)} finite non-negative numbers "
                "(one per background row) with a positive sum"
            )
        background_weights = w / w.sum()
    hybrids = Hybrids(X, background, player, dedupe=dedupe, weights=background_weights)
    jobs = min(os.cpu_count() or 1, 4) if n_jobs is None else int(n_jobs)
    if exact:
        n_coalitions = 1 << n_players
    else:
        sample = sample_coalitions(n_players, n_samples, random_state)
        masks = np.vstack([np.zeros(n_players), np.ones(n_players), sample.masks])
        n_coalitions = masks.shape[0]
    total = n_rows * n_coalitions * hybrids.n_background
    show = total > 10**7 if progress is None else progress
    with tqdm(total=total, disable=not show, unit="row", desc="Kernel SHAP") as bar:
        if exact:
            v, spent = exact_values(
                f, hybrids, n_rows, n_players, batch_rows=batch_rows, n_jobs=jobs, progress=bar
            )
            values = shapley_from_values(v)
            pairs = interactions_from_values(v) if interactions else None
            return KernelValues(values, v[0, 0], None, n_coalitions, spent, True, pairs)
        return _sampled(
            f, hybrids, X, background, sample, masks, estimator, random_state, batch_rows, jobs, bar
        )


def _sampled(
    f: Predict,
    hybrids: Hybrids,
    X: Any,
    background: Any,
    sample: CoalitionSample,
    masks: np.ndarray,
    estimator: str,
    random_state: int | None,
    batch_rows: int,
    jobs: int,
    bar: tqdm,
) -> KernelValues:
    """Sampling mode over blocks of rows (each block's model rows pooled for its surrogate,
    at most :data:`MAX_BLOCK_MODEL_ROWS`)."""
    n_rows, nb = len(X), hybrids.n_background
    n_coalitions = masks.shape[0]
    if estimator == "leverage":
        v = coalition_values(
            f, hybrids, np.arange(n_rows), masks, batch_rows=batch_rows, n_jobs=jobs, progress=bar
        )
        values, se = constrained_regression(sample, v[:, 2:], v[:, 0], v[:, 1])
        return KernelValues(values, v[0, 0], se, n_coalitions, n_rows * n_coalitions * nb, False)
    encoded = EncodedColumns(X, background)
    cols = hybrids.column_masks(masks)
    step = max(1, MAX_BLOCK_MODEL_ROWS // (n_coalitions * nb))
    rng = np.random.default_rng(None if random_state is None else random_state + 1)
    parts = []
    for r0 in range(0, n_rows, step):
        rows = np.arange(r0, min(n_rows, r0 + step))
        v, kept = coalition_values(
            f,
            hybrids,
            rows,
            masks,
            batch_rows=batch_rows,
            n_jobs=jobs,
            progress=bar,
            keep_model_rows=True,
        )
        plain, plain_se = constrained_regression(sample, v[:, 2:], v[:, 0], v[:, 1])
        odd, odd_se = np.empty_like(plain), np.empty_like(plain)
        n_terms, share = n_support_terms(sample), coalition_share(sample)
        surrogates = [
            fit_surrogate(encoded, rows, cols, np.arange(n_coalitions), kept[..., k], rng, jobs)
            for k in range(v.shape[2])
        ]
        for i, row in enumerate(rows):
            per_output = []
            for k, ens in enumerate(surrogates):
                x_row, B, w = encoded.X[row], encoded.B, hybrids.weights
                terms = support(ens, x_row, B, w, hybrids.player, n_terms)
                if share > 0:
                    own = coalition_support(sample, v[i, 2:, k], n_terms, int(rng.integers(2**31)))
                    terms = merged_support(terms, own, n_terms, share)
                per_output.append(terms)
            null = hybrids.agreement(row).all(axis=0)
            odd[i], odd_se[i] = odd_regression(
                sample, v[i, 2:], v[i, 0], v[i, 1], interleaved(per_output, n_terms), null
            )
        # the estimate with the smaller estimated variance over the block (all outputs on
        # one design, so probabilities' values still sum to zero across classes)
        use = (odd_se**2).sum() <= (plain_se**2).sum()
        parts.append((np.where(use, odd, plain), np.where(use, odd_se, plain_se), v[0, 0], use))
    values = np.concatenate([p[0] for p in parts])
    se = np.concatenate([p[1] for p in parts])
    used = np.full(values.shape[2], np.mean([p[3] for p in parts]))
    return KernelValues(
        values,
        parts[0][2],
        se,
        n_coalitions,
        n_rows * n_coalitions * nb,
        False,
        surrogate_share=used,
    )
