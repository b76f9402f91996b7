"""Path-dependent TreeSHAP (Lundberg et al., 2018, Algorithm 2) in numba.

``path_dependent_shap`` validates and calls ``_path_dependent``, which runs over rows in
parallel; per row it walks every tree once, carrying the "unique path" of features met
so far with the fraction of zero (cover-weighted) and one (followed by x) paths. Node
routing is :func:`shapgov.explainers.kernels.routing.goes_left`.

The kernels take the tree arrays one by one: bundling the routing arrays into a tuple
made the linear-time kernel 35% slower (benchmarks/bench_tree.py, workload 1).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from shapgov.explainers.kernels.routing import goes_left as _goes_left
from shapgov.explainers.trees import TreeEnsemble


@njit(cache=True)
def _extend(pf, pz, po, pw, base, depth, zero, one, feat):
    pf[base + depth] = feat
    pz[base + depth] = zero
    po[base + depth] = one
    pw[base + depth] = 1.0 if depth == 0 else 0.0
    for i in range(depth - 1, -1, -1):
        pw[base + i + 1] += one * pw[base + i] * (i + 1) / (depth + 1)
        pw[base + i] = zero * pw[base + i] * (depth - i) / (depth + 1)


@njit(cache=True)
def _unwind(pf, pz, po, pw, base, depth, idx):
    one = po[base + idx]
    zero = pz[base + idx]
    nxt = pw[base + depth]
    for i in range(depth - 1, -1, -1):
        if one != 0.0:
            tmp = pw[base + i]
            pw[base + i] = nxt * (depth + 1) / ((i + 1) * one)
            nxt = tmp - pw[base + i] * zero * (depth - i) / (depth + 1)
        else:
            pw[base + i] = pw[base + i] * (depth + 1) / (zero * (depth - i))
    for i in range(idx, depth):
        pf[base + i] = pf[base + i + 1]
        pz[base + i] = pz[base + i + 1]
        po[base + i] = po[base + i + 1]


@njit(cache=True)
def _unwound_sum(pz, po, pw, base, depth, idx):
    one = po[base + idx]
    zero = pz[base + idx]
    nxt = pw[base + depth]
    total = 0.0
    if one != 0.0:
        for i in range(depth - 1, -1, -1):
            tmp = nxt / ((i + 1) * one)
            total += tmp
            nxt = pw[base + i] - tmp * zero * (depth - i)
    else:
        for i in range(depth - 1, -1, -1):
            total += pw[base + i] / (zero * (depth - i))
    return total * (depth + 1)


@njit(cache=True)
def _tree(
    x,
    phi,
    root,
    out,
    pf,
    pz,
    po,
    pw,
    stack_i,
    stack_f,
    left,
    right,
    feature,
    threshold,
    default_left,
    missing,
    cat_start,
    cat_end,
    cat_values,
    cover,
    value,
    condition,
    condition_feature,
):
    """One tree, depth first with an explicit stack of (node, depth, parent_base, feat)
    and (zero, one, condition) fractions. Each level copies its parent's path just past the
    parent's last element, so a sibling still finds its parent's path intact.

    ``condition`` 1 / -1 fixes ``condition_feature`` present / absent (it leaves the
    players and its splits are followed / cover-averaged); 0 is plain TreeSHAP."""
    nv = value.shape[1]
    top = 0
    stack_i[0, 0], stack_i[0, 1], stack_i[0, 2], stack_i[0, 3] = root, 0, 0, -1
    stack_f[0, 0], stack_f[0, 1], stack_f[0, 2] = 1.0, 1.0, 1.0
    while top >= 0:
        node, depth, parent_base, feat = (
            stack_i[top, 0],
            stack_i[top, 1],
            stack_i[top, 2],
            stack_i[top, 3],
        )
        zero, one, share = stack_f[top, 0], stack_f[top, 1], stack_f[top, 2]
        top -= 1
        if share == 0.0:
            continue
        base = parent_base + depth + 1
        for i in range(depth + 1):
            pf[base + i] = pf[parent_base + i]
            pz[base + i] = pz[parent_base + i]
            po[base + i] = po[parent_base + i]
            pw[base + i] = pw[parent_base + i]
        if condition == 0 or feat != condition_feature:
            _extend(pf, pz, po, pw, base, depth, zero, one, feat)
        if left[node] < 0:
            for i in range(1, depth + 1):
                w = _unwound_sum(pz, po, pw, base, depth, i) * (po[base + i] - pz[base + i])
                f = pf[base + i]
                for k in range(nv):
                    phi[f, out + k] += w * value[node, k] * share
            continue
        split = feature[node]
        if _goes_left(
            x[split], node, threshold, default_left, missing, cat_start, cat_end, cat_values
        ):
            hot, cold = left[node], right[node]
        else:
            hot, cold = right[node], left[node]
        w = cover[node]
        in_zero, in_one = 1.0, 1.0
        idx = 0
        while idx <= depth:
            if pf[base + idx] == split:
                break
            idx += 1
        if idx <= depth:
            in_zero, in_one = pz[base + idx], po[base + idx]
            _unwind(pf, pz, po, pw, base, depth, idx)
            depth -= 1
        hot_share, cold_share = share, share
        if condition != 0 and split == condition_feature:
            if condition > 0:
                cold_share = 0.0
            else:
                hot_share *= cover[hot] / w
                cold_share *= cover[cold] / w
            depth -= 1  # the children do not extend the path with this feature
        # cold first on the stack, so the hot child is walked first
        top += 1
        stack_i[top, 0], stack_i[top, 1], stack_i[top, 2], stack_i[top, 3] = (
            cold,
            depth + 1,
            base,
            split,
        )
        stack_f[top, 0], stack_f[top, 1], stack_f[top, 2] = (
            cover[cold] / w * in_zero,
            0.0,
            cold_share,
        )
        top += 1
        stack_i[top, 0], stack_i[top, 1], stack_i[top, 2], stack_i[top, 3] = (
            hot,
            depth + 1,
            base,
            split,
        )
        stack_f[top, 0], stack_f[top, 1], stack_f[top, 2] = (
            cover[hot] / w * in_zero,
            in_one,
            hot_share,
        )


@njit(cache=True, parallel=True)
def _path_dependent(
    X,
    left,
    right,
    feature,
    threshold,
    default_left,
    missing,
    cat_start,
    cat_end,
    cat_values,
    cover,
    value,
    roots,
    tree_output,
    n_outputs,
    max_depth,
    condition,
    condition_feature,
):
    n, m = X.shape
    phi = np.zeros((n, m, n_outputs))
    size = (max_depth + 3) * (max_depth + 4) // 2 + 1
    for r in prange(n):
        pf = np.full(size, -1, dtype=np.int64)
        pz = np.empty(size)
        po = np.empty(size)
        pw = np.empty(size)
        stack_i = np.empty((2 * max_depth + 4, 4), dtype=np.int64)
        stack_f = np.empty((2 * max_depth + 4, 3))
        x = X[r]
        for t in range(roots.shape[0]):
            _tree(
                x,
                phi[r],
                roots[t],
                tree_output[t],
                pf,
                pz,
                po,
                pw,
                stack_i,
                stack_f,
                left,
                right,
                feature,
                threshold,
                default_left,
                missing,
                cat_start,
                cat_end,
                cat_values,
                cover,
                value,
                condition,
                condition_feature,
            )
    return phi


def path_dependent_shap(ensemble: TreeEnsemble, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact path-dependent TreeSHAP: ``(values (n, M, K), expected_value (K,))``.

    ``expected_value + values.sum(1)`` equals the ensemble's raw output on every row.
    """
    ens = ensemble.validate()
    X = ens.check_input(X)
    return _run(ens, X, 0, -1), ens.expected_value()


def path_dependent_interactions(
    ensemble: TreeEnsemble, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """SHAP interaction values (Lundberg et al., 2020): ``(values (n, M, M, K), base (K,))``.

    Off the diagonal, ``Phi_ij = (phi_i | j present - phi_i | j absent) / 2`` from TreeSHAP
    conditioned on feature j; the diagonal holds the rest of ``phi_i``, so each row of the
    matrix sums to the SHAP value and all entries to the raw output minus the base.
    """
    ens = ensemble.validate()
    X = ens.check_input(X)
    n, m = X.shape
    phi = _run(ens, X, 0, -1)
    out = np.zeros((n, m, m, ens.n_outputs))
    for j in np.unique(ens.feature[ens.left >= 0]):
        half = (_run(ens, X, 1, j) - _run(ens, X, -1, j)) / 2.0
        half[:, j] = 0.0
        out[:, :, j] = half
    idx = np.arange(m)
    out[:, idx, idx] = phi - out.sum(axis=2)
    return out, ens.expected_value()


def _run(ens: TreeEnsemble, X: np.ndarray, condition: int, condition_feature: int) -> np.ndarray:
    return _path_dependent(
        X,
        *ens.structure(),
        ens.cover,
        ens.value,
        ens.roots,
        ens.tree_output,
        ens.n_outputs,
        ens.max_depth,
        condition,
        condition_feature,
    )
