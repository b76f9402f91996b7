"""Rank statistics of every row of two ``(n, F)`` arrays at once, in numba.

Used by the SHAP-vs-XEMP comparison: per row, the top-k columns by value and Spearman's
rho and Kendall's tau-b between the two rows. The definitions are scipy's
(:func:`scipy.stats.spearmanr`, :func:`scipy.stats.kendalltau` with ``variant="b"``):
rho is Pearson's r of the average ranks, computed here from integer sums of doubled
ranks so that its only roundings are one square root and one division (a rho that is
exactly a threshold comes out exactly); tau-b is
``(concordant - discordant) / sqrt(pairs untied in a) / sqrt(pairs untied in b)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from shapgov.errors import InputError

#: Products of integer rank sums below this are exact in float64.
_EXACT = 2.0**53


def _pair(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise InputError(f"{what} needs two (n, F) arrays of one shape, got {a.shape}, {b.shape}")
    return a, b


def _varies(a: np.ndarray) -> np.ndarray:
    """Rows with at least two columns, no NaN and not all equal."""
    if a.shape[1] < 2:
        return np.zeros(a.shape[0], dtype=bool)
    return ~np.isnan(a).any(axis=1) & (a != a[:, :1]).any(axis=1)


def row_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho of every row of ``a`` against the same row of ``b``, ``(n,)``; NaN
    where a row is constant, has NaN or F < 2 (as :func:`scipy.stats.spearmanr`).

    :raises InputError: The arrays are not two ``(n, F)`` arrays of one shape.
    """
    a, b = _pair(a, b, "row_spearman")
    out = np.full(a.shape[0], np.nan)
    _spearman_rows(a, b, np.flatnonzero(_varies(a) & _varies(b)), out)
    return out


def row_kendall(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of every row of ``a`` against the same row of ``b``, ``(n,)``; NaN
    where a row is constant, has NaN or F < 2 (as :func:`scipy.stats.kendalltau`).

    :raises InputError: The arrays are not two ``(n, F)`` arrays of one shape.
    """
    a, b = _pair(a, b, "row_kendall")
    out = np.full(a.shape[0], np.nan)
    _kendall_rows(a, b, np.flatnonzero(_varies(a) & _varies(b)), out)
    return out


def top_k(a: np.ndarray, k: int) -> np.ndarray:
    """Column indices ``(n, k)`` of each row's ``k`` largest values, largest first, ties
    in column order: ``np.argsort(-a, axis=1, kind="stable")[:, :k]``.

    :raises InputError: ``a`` is not ``(n, F)`` or ``k`` is not in ``1..F``.
    """
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.ndim != 2 or not 1 <= k <= a.shape[1]:
        raise InputError(f"top_k needs an (n, F) array and 1 <= k <= F, got {a.shape}, k={k}")
    if np.isnan(a).any():  # numpy's rule for NaN (last), which the kernel does not follow
        return np.argsort(-a, axis=1, kind="stable")[:, :k]
    out = np.empty((a.shape[0], k), dtype=np.int64)
    _top_k_rows(a, out)
    return out


@njit(cache=True, inline="always")
def _doubled_ranks(x):
    """Twice the average ranks (1-based) of ``x``: integers, exact in float64."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.shape[0])
    start = 0
    n = x.shape[0]
    while start < n:
        end = start + 1
        while end < n and x[order[end]] == x[order[start]]:
            end += 1
        doubled = start + end + 1.0  # positions start+1 .. end, averaged, times two
        for p in range(start, end):
            ranks[order[p]] = doubled
        start = end
    return ranks


@njit(cache=True, parallel=True)
def _spearman_rows(a, b, rows, out):
    f = a.shape[1]
    for r in prange(rows.shape[0]):
        i = rows[r]
        ra = _doubled_ranks(a[i])
        rb = _doubled_ranks(b[i])
        sa = ra.sum()
        sb = rb.sum()
        num = f * (ra * rb).sum() - sa * sb
        var_a = f * (ra * ra).sum() - sa * sa
        var_b = f * (rb * rb).sum() - sb * sb
        if var_a * var_b < _EXACT:
            rho = num / np.sqrt(var_a * var_b)
        else:
            rho = num / np.sqrt(var_a) / np.sqrt(var_b)
        out[i] = min(1.0, max(-1.0, rho))


@njit(cache=True, parallel=True)
def _kendall_rows(a, b, rows, out):
    f = a.shape[1]
    for r in prange(rows.shape[0]):
        i = rows[r]
        con_minus_dis = 0
        untied_a = 0
        untied_b = 0
        for p in range(f):
            for q in range(p + 1, f):
                sa = np.sign(a[i, p] - a[i, q])
                sb = np.sign(b[i, p] - b[i, q])
                con_minus_dis += int(sa * sb)
                untied_a += int(sa != 0)
                untied_b += int(sb != 0)
        tau = con_minus_dis / np.sqrt(untied_a) / np.sqrt(untied_b)
        out[i] = min(1.0, max(-1.0, tau))


@njit(cache=True, parallel=True)
def _top_k_rows(a, out):
    k = out.shape[1]
    for i in prange(a.shape[0]):
        order = np.argsort(-a[i], kind="mergesort")
        for j in range(k):
            out[i, j] = order[j]


def column_ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) within each column of ``a`` ``(n, F)``, NaN kept as NaN
    and left out of the ranking: ``pandas.DataFrame.rank()``.

    :raises InputError: ``a`` is not two-dimensional.
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise InputError(f"column_ranks needs an (n, F) array, got shape {a.shape}")
    out = np.empty(a.shape)
    a = np.asfortranarray(a)
    if not a.flags.writeable:  # numba compiles the kernel apart for read-only arrays
        a = a.copy(order="F")
    _column_ranks(a, out)
    return out


@njit(cache=True, parallel=True)
def _column_ranks(a, out):
    for j in prange(a.shape[1]):
        column = a[:, j]
        keep = np.flatnonzero(~np.isnan(column))
        ranks = _doubled_ranks(column[keep]) / 2.0
        out[:, j] = np.nan
        for p in range(keep.shape[0]):
            out[keep[p], j] = ranks[p]
