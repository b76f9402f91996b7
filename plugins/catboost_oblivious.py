"""CatBoost's symmetric (oblivious) trees expanded into flat node arrays, in numba.

A tree of depth D has one split per level; bit k of a leaf's index is split k's outcome
(1: the true side), and the root splits on the last level. The expansion is a full binary
tree in depth-first order (the false child numbered before the true one, the true subtree
laid out first), whose node covers are sums of ``leaf_weights``; a subtree no training
row reached (cover 0) whose leaves all hold one value becomes that leaf (exact for any
row). :mod:`shapgov_plugins.catboost_json` states how each split routes; here a split is
one row of the split table (column, threshold, NaN side, category range, whether its left
child is the true side), shared by every node that splits alike.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from shapgov.errors import UnsupportedModelError


@njit(cache=True)
def _count_nodes(depth, values, weights):  # pragma: no cover - numba
    """Nodes of each tree's expansion (``(T,)``), with the collapse rule."""
    t_count = depth.shape[0]
    out = np.zeros(t_count, dtype=np.int64)
    stack_lv = np.empty(64, dtype=np.int64)
    stack_px = np.empty(64, dtype=np.int64)
    for t in range(t_count):
        top = 1
        stack_lv[0], stack_px[0] = depth[t], 0
        n = 0
        while top > 0:
            top -= 1
            lv, px = stack_lv[top], stack_px[top]
            n += 1
            if lv == 0 or _collapses(values[t], weights[t], px, px + (1 << lv)):
                continue
            stack_lv[top], stack_px[top] = lv - 1, px
            stack_lv[top + 1], stack_px[top + 1] = lv - 1, px + (1 << (lv - 1))
            top += 2
        out[t] = n
    return out


@njit(cache=True)
def _collapses(values, weights, lo, hi):  # pragma: no cover - numba
    """Whether leaves lo..hi-1 were reached by no training row and hold one value."""
    for leaf in range(lo, hi):
        if weights[leaf] != 0.0:
            return False
    for leaf in range(lo + 1, hi):
        for k in range(values.shape[1]):
            if values[leaf, k] != values[lo, k]:
                return False
    return True


@njit(cache=True)
def _expand(
    depth,
    level_split,
    values,
    weights,
    starts,
    split_column,
    split_threshold,
    split_default_left,
    split_cat_start,
    split_cat_end,
    split_left_true,
    left,
    right,
    feature,
    threshold,
    default_left,
    cat_start,
    cat_end,
    cover,
    value,
    level_node,
    level_left_true,
):  # pragma: no cover - numba
    """Fill the node arrays (preallocated, ``starts[t]``: tree t's root)."""
    stack_i = np.empty(64, dtype=np.int64)
    stack_lv = np.empty(64, dtype=np.int64)
    stack_px = np.empty(64, dtype=np.int64)
    for t in range(depth.shape[0]):
        nxt = starts[t] + 1
        top = 1
        stack_i[0], stack_lv[0], stack_px[0] = starts[t], depth[t], 0
        while top > 0:
            top -= 1
            i, lv, px = stack_i[top], stack_lv[top], stack_px[top]
            hi = px + (1 << lv)
            c = 0.0
            for leaf in range(px, hi):
                c += weights[t, leaf]
            cover[i] = c
            if lv == 0 or _collapses(values[t], weights[t], px, hi):
                left[i], right[i], feature[i] = -1, -1, -1
                for k in range(values.shape[2]):
                    value[i, k] = values[t, px, k]
                continue
            level = lv - 1
            f, tr = nxt, nxt + 1
            nxt += 2
            s = level_split[t, level]
            lt = split_left_true[s]
            left[i] = tr if lt else f
            right[i] = f if lt else tr
            feature[i] = split_column[s]
            threshold[i] = split_threshold[s]
            default_left[i] = split_default_left[s]
            cat_start[i] = split_cat_start[s]
            cat_end[i] = split_cat_end[s]
            level_node[t, level] = i
            level_left_true[t, level] = lt
            stack_i[top], stack_lv[top], stack_px[top] = f, level, px
            stack_i[top + 1], stack_lv[top + 1], stack_px[top + 1] = tr, level, px + (1 << level)
            top += 2


def expand_oblivious(
    depth: np.ndarray,
    level_split: np.ndarray,
    values: np.ndarray,
    weights: np.ndarray,
    splits: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Flat node arrays of symmetric trees, and their level layout.

    :param depth: ``(T,)`` each tree's depth (at most 30).
    :param level_split: ``(T, D)`` the split table row of each tree's level (bit) k.
    :param values: ``(T, 2**D, K)`` leaf values (scaled), by leaf index.
    :param weights: ``(T, 2**D)`` leaf weights, by leaf index.
    :param splits: The split table: ``column``, ``threshold``, ``default_left``,
        ``cat_start``, ``cat_end`` (into the caller's category list), ``left_true``.
    :returns: ``left``, ``right``, ``feature``, ``threshold``, ``default_left``,
        ``cat_start``, ``cat_end``, ``cover``, ``value``, ``roots``, ``level_node``
        ``(T, D)`` (one node per level, -1 where a level kept no node) and
        ``level_left_true``.
    :raises UnsupportedModelError: A tree is deeper than 30 levels.
    """
    if depth.size and int(depth.max()) > 30:
        raise UnsupportedModelError("a CatBoost symmetric tree deeper than 30 levels")
    depth = np.ascontiguousarray(depth, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    sizes = _count_nodes(depth, values, weights)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    n, k = int(sizes.sum()), values.shape[2]
    out = {
        "left": np.empty(n, dtype=np.int64),
        "right": np.empty(n, dtype=np.int64),
        "feature": np.empty(n, dtype=np.int64),
        "threshold": np.zeros(n),
        "default_left": np.zeros(n, dtype=np.bool_),
        "cat_start": np.zeros(n, dtype=np.int64),
        "cat_end": np.zeros(n, dtype=np.int64),
        "cover": np.empty(n),
        "value": np.zeros((n, k)),
        "level_node": np.full(level_split.shape, -1, dtype=np.int64),
        "level_left_true": np.zeros(level_split.shape, dtype=np.bool_),
    }
    _expand(
        depth,
        np.ascontiguousarray(level_split, dtype=np.int64),
        values,
        weights,
        starts,
        *(
            np.ascontiguousarray(splits[name], dtype=dtype)
            for name, dtype in (
                ("column", np.int64),
                ("threshold", np.float64),
                ("default_left", np.bool_),
                ("cat_start", np.int64),
                ("cat_end", np.int64),
                ("left_true", np.bool_),
            )
        ),
        *out.values(),
    )
    out["roots"] = starts
    return out
