"""Sampling-mode Kernel SHAP: one game per background row, each on its own coalitions.

The interventional game is an average, ``v(S) = sum_b w_b v_b(S)`` with
``v_b(S) = f(x_S, b_rest)``, and Shapley values are linear in the game, so
``phi = sum_b w_b phi_b``. Evaluating every sampled coalition against every background
row (``v(S)`` itself) spends ``n_background`` model rows to learn one coalition's value.
Here each background row instead gets its own independent sample of ``n_samples``
coalitions and its game ``v_b`` is estimated on them: the same model rows
(``n_samples * n_background`` per explained row) see ``n_background`` times as many
distinct coalitions, and the estimates' errors, independent across background rows,
average out. Each ``v_b`` holds efficiency exactly (``sum_i phi_b,i = f(x) - f(b)``), so
their average does too; players on which the row and ``b`` agree are dummies of ``v_b``
and get exactly 0 in it.

Estimators per game (:func:`shapgov.explainers.kernelshap.kernel_shap`'s ``estimator``):
``"leverage"``, the paired leverage-score regression on the singletons
(:mod:`shapgov.explainers.coalition_sampling`), and ``"odd"``, the odd-component regression
on the singletons and a tree surrogate's strongest odd interactions
(:mod:`shapgov.explainers.odd_regression`); the surrogate is fitted once per block of rows
on all the model rows that block evaluated. Standard errors: the games are independent,
so ``se^2 = sum_b w_b^2 se_b^2``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from shapgov.errors import ModelOutputError
from shapgov.explainers.coalition_sampling import (
    CoalitionSample,
    constrained_regression,
    sample_coalitions,
)
from shapgov.explainers.hybrids import Hybrids, checked_output, run_tasks
from shapgov.explainers.odd_regression import (
    interleaved,
    n_support_terms,
    odd_regression,
    support,
)
from shapgov.explainers.surrogate import EncodedColumns, fit_surrogate

Predict = Callable[[Any], np.ndarray]
#: Most model rows held at once for one block's surrogates (~32 MiB per output).
MAX_BLOCK_MODEL_ROWS = 1 << 22
#: Most surrogates (per output) fitted for one block of rows: up to this many background
#: rows, one each; beyond, groups of background rows share one.
MAX_SURROGATES = 16


def sample_per_background(
    n_players: int, n_samples: int | None, random_state: int | None, n_background: int
) -> list[CoalitionSample]:
    """One independent paired sample of ``n_samples`` coalitions (empty and full included)
    per background row, seeded from ``random_state`` (``numpy.random.SeedSequence``)."""
    seeds = np.random.SeedSequence(random_state).generate_state(n_background, dtype=np.uint32)
    return [sample_coalitions(n_players, n_samples, int(s)) for s in seeds]


def unit_values(
    f: Predict,
    hybrids: Hybrids,
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    batch_rows: int,
    n_jobs: int,
    progress: tqdm | None,
) -> np.ndarray:
    """``v_b(S)`` for ``rows`` × background rows × each background row's coalitions:
    ``(len(rows), n_background, S, K)``, from per-background column masks
    ``cols (n_background, S, columns)``."""
    nb, s = cols.shape[0], cols.shape[1]
    r_of, b_of = np.divmod(np.arange(rows.shape[0] * nb), nb)
    step = max(1, batch_rows // s)
    starts = list(range(0, r_of.size, step))

    def run(u0: int) -> np.ndarray:
        rr, bb = rows[r_of[u0 : u0 + step]], b_of[u0 : u0 + step]
        table = hybrids.build_units(rr, bb, cols[bb])
        pred = checked_output(f(table), rr.size * s)
        if progress is not None:
            progress.update(rr.size * s)
        return pred.reshape(rr.size, s, -1)

    results = run_tasks(run, starts, n_jobs)
    k = results[0].shape[-1]
    out = np.empty((r_of.size, s, k))
    for u0, res in zip(starts, results, strict=True):
        if res.shape[-1] != k:
            raise ModelOutputError(
                f"the model returned {res.shape[-1]} outputs per row, earlier {k}; return "
                "the same outputs for every batch"
            )
        out[u0 : u0 + res.shape[0]] = res
    return out.reshape(rows.shape[0], nb, s, k)


def plain_values(
    sample: CoalitionSample, v: np.ndarray, null: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The paired leverage-score regression of one background row's game for several rows:
    ``v (r, S, K)`` (empty, full, then the sample's coalitions), ``null (r, P)`` players
    on which row and background row agree (exactly 0). ``(values, std_error)``,
    ``(r, P, K)`` each."""
    values, se = constrained_regression(sample, v[:, 2:], v[:, 0], v[:, 1])
    for i in np.flatnonzero(null.any(axis=1)):
        values[i], se[i] = odd_regression(sample, v[i, 2:], v[i, 0], v[i, 1], [], null[i])
    return values, se


def sampled_values(
    f: Predict,
    hybrids: Hybrids,
    X: Any,
    background: Any,
    samples: list[CoalitionSample],
    estimator: str,
    random_state: int | None,
    *,
    batch_rows: int,
    n_jobs: int,
    progress: tqdm | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Sampling-mode values of every row of ``X``, in blocks of rows (each block's model
    rows pooled for its surrogate, at most :data:`MAX_BLOCK_MODEL_ROWS`).

    :param samples: One sample per background row (:func:`sample_per_background`).
    :returns: ``(values (n, P, K), base (K,), std_error (n, P, K), surrogate_share (K,)
        or None)``: ``surrogate_share`` is the share of rows whose values come from the odd
        regression (``estimator="odd"``).
    """
    n_rows, nb = len(X), hybrids.n_background
    w = hybrids.weights
    masks = np.stack(
        [
            np.vstack([np.zeros(s.masks.shape[1]), np.ones(s.masks.shape[1]), s.masks])
            for s in samples
        ]
    )
    cols = np.stack([hybrids.column_masks(m) for m in masks])
    n_coalitions = masks.shape[1]
    odd = estimator == "odd"
    encoded = EncodedColumns(X, background) if odd else None
    rng = np.random.default_rng(None if random_state is None else random_state + 1)
    step = max(1, MAX_BLOCK_MODEL_ROWS // (n_coalitions * nb))
    values, se, used = [], [], []
    base = None
    for r0 in range(0, n_rows, step):
        rows = np.arange(r0, min(n_rows, r0 + step))
        v = unit_values(
            f, hybrids, rows, cols, batch_rows=batch_rows, n_jobs=n_jobs, progress=progress
        )
        if base is None:
            base = np.einsum("b,bk->k", w, v[0, :, 0])
        null = np.stack([hybrids.agreement(r) for r in rows])  # (r, nb, P)
        plain = np.zeros((rows.size, masks.shape[2], v.shape[3]))
        plain_var = np.zeros_like(plain)
        for b in np.flatnonzero(w > 0):
            vals, s_e = plain_values(samples[b], v[:, b], null[:, b])
            plain += w[b] * vals
            plain_var += (w[b] * s_e) ** 2
        if not odd:
            values.append(plain)
            se.append(np.sqrt(plain_var))
            continue
        est, var = _odd_block(encoded, hybrids, rows, cols, v, null, samples, rng, n_jobs)
        pick = var.sum() <= plain_var.sum()  # the estimate with the smaller variance
        values.append(est if pick else plain)
        se.append(np.sqrt(var if pick else plain_var))
        used.append(pick)
    share = np.full(v.shape[3], float(np.mean(used))) if odd else None
    return np.concatenate(values), base, np.concatenate(se), share


def _odd_block(
    encoded: EncodedColumns,
    hybrids: Hybrids,
    rows: np.ndarray,
    cols: np.ndarray,
    v: np.ndarray,
    null: np.ndarray,
    samples: list[CoalitionSample],
    rng: np.random.Generator,
    n_jobs: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The odd regression of every row and background row of a block; ``(values,
    variance)``, ``(r, P, K)``. The background rows are split into at most
    :data:`MAX_SURROGATES` groups and each group gets one surrogate per output, fitted on
    the block's model rows of that group (with few background rows, one per row: a
    surrogate of one ``v_b``'s neighbourhood ranks its interactions best)."""
    w = hybrids.weights
    n_players, n_outputs = samples[0].masks.shape[1], v.shape[3]
    est = np.zeros((rows.size, n_players, n_outputs))
    var = np.zeros_like(est)
    for group in np.array_split(np.flatnonzero(w > 0), min(MAX_SURROGATES, int((w > 0).sum()))):
        surrogates = [
            fit_surrogate(encoded, rows, group, cols[group], v[:, group][..., k], rng, n_jobs)
            for k in range(n_outputs)
        ]
        for b in group:
            sample, one, b_row = samples[b], np.ones(1), encoded.B[b : b + 1]
            n_terms = n_support_terms(sample)
            for i, row in enumerate(rows):
                terms = interleaved(
                    [
                        support(ens, encoded.X[row], b_row, one, hybrids.player, n_terms)
                        for ens in surrogates
                    ],
                    n_terms,
                )
                vi = v[i, b]
                vals, s_e = odd_regression(sample, vi[2:], vi[0], vi[1], terms, null[i, b])
                est[i] += w[b] * vals
                var[i] += (w[b] * s_e) ** 2
    return est, var
