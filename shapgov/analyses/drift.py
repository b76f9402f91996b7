"""Distribution shift of SHAP values between time windows: exact two-sample statistics.

For every column of values (a player, per output) and every pair of windows compared, the
two empirical distributions are compared by

* the **Wasserstein distance** ``W1 = integral |F_a(t) - F_b(t)| dt`` (in the values'
  units), and
* the **two-sample Kolmogorov-Smirnov statistic** ``D = max_t |F_a(t) - F_b(t)|`` with its
  asymptotic p-value under Stephens' (1970) small-sample correction,
  ``p = Q_KS((sqrt(n_e) + 0.12 + 0.11 / sqrt(n_e)) D)``, ``n_e = n_a n_b / (n_a + n_b)``
  (Press et al., Numerical Recipes, 14.3). With ties (tree models' SHAP values take few
  distinct values) the test is conservative.

Both are computed exactly from the sorted samples in one merge (integer step counts, so
``D`` is exact); every window's column is sorted once, whatever the number of
comparisons. p-values of a family of tests are adjusted by Holm's (1979) step-down
method, which controls the family-wise error rate at ``alpha`` under any dependence.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from shapgov.errors import InputError


@njit(cache=True)
def _two_sample(a, b):
    """``(D, W1)`` of two sorted, non-empty samples."""
    n1, n2 = a.shape[0], b.shape[0]
    i = 0
    j = 0
    worst = 0
    area = 0.0
    prev = min(a[0], b[0])
    while i < n1 or j < n2:
        x = a[i] if j >= n2 or (i < n1 and a[i] <= b[j]) else b[j]
        area += abs(i * n2 - j * n1) * (x - prev)  # the ECDFs are flat on [prev, x)
        while i < n1 and a[i] == x:
            i += 1
        while j < n2 and b[j] == x:
            j += 1
        gap = abs(i * n2 - j * n1)
        if gap > worst:
            worst = gap
        prev = x
    scale = float(n1) * float(n2)
    return worst / scale, area / scale


@njit(cache=True, parallel=True)
def _window_drift(values, starts, pairs):
    """Per column of ``values`` ``(n, C)`` (rows grouped by window: window ``w`` is rows
    ``starts[w]:starts[w+1]``) and per pair ``(w, v)`` of ``pairs`` ``(Q, 2)``: ``out[q, c]
    = (D, W1)`` of window w's column against window v's."""
    n, n_cols = values.shape
    n_windows = starts.shape[0] - 1
    out = np.empty((pairs.shape[0], n_cols, 2))
    for c in prange(n_cols):
        col = np.empty(n)
        for w in range(n_windows):
            s, e = starts[w], starts[w + 1]
            for r in range(s, e):
                col[r] = values[r, c]
            col[s:e] = np.sort(col[s:e])
        for q in range(pairs.shape[0]):
            w, v = pairs[q, 0], pairs[q, 1]
            d, w1 = _two_sample(col[starts[w] : starts[w + 1]], col[starts[v] : starts[v + 1]])
            out[q, c, 0] = d
            out[q, c, 1] = w1
    return out


def window_drift(values: np.ndarray, starts: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Kolmogorov-Smirnov statistic and Wasserstein distance between windows.

    :param values: ``(n, C)`` float values, rows grouped by window.
    :param starts: ``(W + 1,)`` row offsets: window ``w`` is ``starts[w]:starts[w+1]``,
        every window non-empty.
    :param pairs: ``(Q, 2)`` window indices ``(w, v)`` to compare.
    :returns: ``(Q, C, 2)``: ``[..., 0]`` the KS statistic D (in [0, 1]), ``[..., 1]``
        W1 in the values' units.
    :raises InputError: Shapes or offsets that do not fit, empty windows, or non-finite
        values.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    pairs = np.ascontiguousarray(pairs, dtype=np.int64).reshape(-1, 2)
    if values.ndim != 2 or starts.ndim != 1 or starts.size < 2:
        raise InputError("window_drift needs values (n, C) and at least one window")
    if starts[0] != 0 or starts[-1] != values.shape[0] or (np.diff(starts) <= 0).any():
        raise InputError("window offsets must run from 0 to n with every window non-empty")
    if pairs.size and (pairs.min() < 0 or pairs.max() >= starts.size - 1):
        raise InputError("a compared window index is out of range")
    if not np.isfinite(values).all():
        raise InputError("SHAP values must be finite to compare their distributions")
    return _window_drift(values, starts, pairs)


def ks_pvalue(d: np.ndarray, n_a: np.ndarray, n_b: np.ndarray) -> np.ndarray:
    """Asymptotic two-sample KS p-value with Stephens' correction (module docstring)."""
    from scipy.special import kolmogorov

    ne = np.asarray(n_a, float) * np.asarray(n_b, float) / (np.asarray(n_a) + np.asarray(n_b))
    root = np.sqrt(ne)
    return np.clip(kolmogorov((root + 0.12 + 0.11 / root) * np.asarray(d, float)), 0.0, 1.0)


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, same shape; NaN entries are left out of the
    family and stay NaN."""
    p = np.asarray(pvalues, dtype=float)
    flat = p.ravel()
    out = np.full(flat.shape, np.nan)
    live = np.flatnonzero(~np.isnan(flat))
    m = live.size
    if m:
        order = live[np.argsort(flat[live], kind="stable")]
        scaled = flat[order] * (m - np.arange(m))
        out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out.reshape(p.shape)
