"""Node routing, defined once for every tree kernel.

The rules are those documented in :mod:`shapgov.explainers.trees`; the constants come
from there too. ``tests/naive.py`` holds the plain-Python twin the tests compare with.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from shapgov.explainers.trees import MISSING_DEFAULT, ZERO_AND_MISSING_DEFAULT, ZERO_THRESHOLD


@njit(cache=True, inline="always")
def goes_left(x, i, threshold, default_left, missing, cat_start, cat_end, cat_values):
    if cat_start[i] < cat_end[i]:
        if np.isnan(x):
            return missing[i] == MISSING_DEFAULT and default_left[i]
        if x < 0:
            return False
        c = int(x)
        for k in range(cat_start[i], cat_end[i]):  # noqa: SIM110 (numba: no generators)
            if cat_values[k] == c:
                return True
        return False
    kind = missing[i]
    if kind == ZERO_AND_MISSING_DEFAULT and (np.isnan(x) or abs(x) <= ZERO_THRESHOLD):
        return default_left[i]
    if kind == MISSING_DEFAULT and np.isnan(x):
        return default_left[i]
    if np.isnan(x):
        x = 0.0
    return x <= threshold[i]
