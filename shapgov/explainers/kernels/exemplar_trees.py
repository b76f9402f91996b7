"""Tree ensembles evaluated at rows with some columns replaced, without predict calls.

:func:`exemplar_deltas` gives XEMP's ICE values ``f(x with x_u := e)`` for every row x,
every feature (unit) u and every exemplar e of u; :func:`donor_deltas` gives permutation
impact's ``f(x_i with x_u := x_d)`` for the donor row d of every shuffle.

Only the splits on u's columns depend on e, so for row x and tree t:

* when no node on x's path splits on u, every exemplar lands in x's own leaf and the
  tree adds nothing to ``f(x_u := e) - f(x)``;
* otherwise the exemplars enter the tree together at the first node of x's path that
  splits on u; at each split on u they are partitioned by their own value, at every other
  split they all follow x, so each exemplar reaches its leaf in one walk shared with the
  exemplars that route like it.

Cost per row is one prediction pass plus, per tree, the exemplars' walks below the first
split on each feature of x's path: no more than one prediction pass per feature, usually
far less. The result is the change of the raw margin per (row, unit, exemplar, output),
exactly 0.0 where the exemplar routes like x (a dummy feature's strength is exactly 0).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from shapgov.errors import InputError
from shapgov.explainers.kernels.routing import goes_left
from shapgov.explainers.trees import TreeEnsemble

#: Rows handed to the kernel at once (bounds the (rows, units, exemplars, outputs) buffer).
ROW_BLOCK = 2048


@njit(cache=True, inline="always")
def _own_path(
    X,
    i,
    root,
    path,
    left,
    right,
    feature,
    threshold,
    default_left,
    missing,
    cat_start,
    cat_end,
    cat_values,
):
    """Row i's path from ``root``: its split nodes into ``path``; (their count, the leaf)."""
    node = root
    depth = 0
    while left[node] >= 0:
        path[depth] = node
        depth += 1
        if goes_left(
            X[i, feature[node]],
            node,
            threshold,
            default_left,
            missing,
            cat_start,
            cat_end,
            cat_values,
        ):
            node = left[node]
        else:
            node = right[node]
    return depth, node


#: Exemplars walked together as the bits of one mask; more are walked in slices.
MASK_BITS = 64
#: The index of a mask's lowest set bit without a loop over the bits below it: multiplying
#: the isolated bit by a de Bruijn sequence puts a distinct 6-bit pattern in the top bits
#: (Leiserson, Prokop and Randall, "Using de Bruijn sequences to index a 1 in a computer
#: word", 1998).
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_SHIFT = np.uint64(58)
_BIT_INDEX = np.zeros(64, dtype=np.int64)
for _bit in range(64):  # Python ints, wrapped to 64 bits as the kernel's uint64 product is
    _BIT_INDEX[(((1 << _bit) * int(_DE_BRUIJN)) & (2**64 - 1)) >> 58] = _bit


@njit(cache=True)
def _left_masks(
    feature,
    threshold,
    default_left,
    missing,
    cat_start,
    cat_end,
    cat_values,
    left,
    unit_of,
    ex_values,
    ex_count,
):
    """Per split node on an evaluated unit, the bit mask of the exemplars it sends left
    (the same for every row: it depends on the exemplar's own value only)."""
    masks = np.zeros(left.shape[0], dtype=np.uint64)
    for nd in range(left.shape[0]):
        if left[nd] < 0:
            continue
        f = feature[nd]
        u = unit_of[f]
        if u < 0:
            continue
        m = np.uint64(0)
        for e in range(ex_count[u]):
            if goes_left(
                ex_values[u, e, f],
                nd,
                threshold,
                default_left,
                missing,
                cat_start,
                cat_end,
                cat_values,
            ):
                m |= np.uint64(1) << np.uint64(e)
        masks[nd] = m
    return masks


@njit(cache=True, parallel=True)
def _exemplar_deltas(
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
    value,
    roots,
    tree_output,
    unit_of,
    ex_count,
    go_left,
    max_depth,
    out,
    own_margin,
):
    n = X.shape[0]
    n_trees = roots.shape[0]
    n_units = ex_count.shape[0]
    n_values = value.shape[1]
    n_chunks = min(n, 64)
    one = np.uint64(1)
    for chunk in prange(n_chunks):
        path = np.empty(max_depth + 1, dtype=np.int64)
        st_node = np.empty(max_depth + 2, dtype=np.int64)
        st_mask = np.empty(max_depth + 2, dtype=np.uint64)
        seen = np.full(n_units, -1, dtype=np.int64)
        for i in range(chunk, n, n_chunks):
            for t in range(n_trees):
                depth, own = _own_path(
                    X,
                    i,
                    roots[t],
                    path,
                    left,
                    right,
                    feature,
                    threshold,
                    default_left,
                    missing,
                    cat_start,
                    cat_end,
                    cat_values,
                )
                o = tree_output[t]
                for v in range(n_values):
                    own_margin[i, o + v] += value[own, v]
                stamp = i * n_trees + t
                for p in range(depth):
                    u = unit_of[feature[path[p]]]
                    if u < 0 or seen[u] == stamp or ex_count[u] == 0:
                        continue
                    seen[u] = stamp
                    if ex_count[u] >= 64:  # a shift by the full width is undefined
                        along = ~np.uint64(0)
                    else:
                        along = (one << np.uint64(ex_count[u])) - one
                    # follow x's path: at each split on u, the exemplars that part from x
                    # walk the other subtree; the rest stay with x (and end in x's leaf)
                    for q in range(p, depth):
                        node = path[q]
                        if unit_of[feature[node]] != u:
                            continue
                        nxt = path[q + 1] if q + 1 < depth else own
                        if nxt == left[node]:
                            off = along & ~go_left[node]
                            other = right[node]
                        else:
                            off = along & go_left[node]
                            other = left[node]
                        if off == 0:
                            continue
                        along &= ~off
                        st_node[0] = other
                        st_mask[0] = off
                        sp = 1
                        while sp > 0:
                            sp -= 1
                            nd, mask = st_node[sp], st_mask[sp]
                            while left[nd] >= 0:
                                f = feature[nd]
                                if unit_of[f] == u:
                                    lm = mask & go_left[nd]
                                    rm = mask & ~go_left[nd]
                                    if lm == 0:
                                        nd = right[nd]
                                    elif rm == 0:
                                        nd = left[nd]
                                    else:
                                        st_node[sp] = right[nd]
                                        st_mask[sp] = rm
                                        sp += 1
                                        nd = left[nd]
                                        mask = lm
                                elif goes_left(
                                    X[i, f],
                                    nd,
                                    threshold,
                                    default_left,
                                    missing,
                                    cat_start,
                                    cat_end,
                                    cat_values,
                                ):
                                    nd = left[nd]
                                else:
                                    nd = right[nd]
                            while mask != 0:  # one step per exemplar in the mask
                                low = mask & (~mask + one)
                                e = _BIT_INDEX[(low * _DE_BRUIJN) >> _SHIFT]
                                for v in range(n_values):
                                    out[i, u, e, o + v] += value[nd, v] - value[own, v]
                                mask ^= low
                        if along == 0:
                            break
    return out, own_margin


def exemplar_deltas(
    ensemble: TreeEnsemble,
    X: np.ndarray,
    unit_of: np.ndarray,
    exemplar_values: np.ndarray,
    exemplar_count: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``f(x with unit u := exemplar e) - f(x)`` in the raw margin of ``ensemble``, and
    ``f(x)`` itself.

    :param X: Rows ``(n, M)`` in the ensemble's input columns.
    :param unit_of: ``(M,)`` the unit each column belongs to, ``-1`` for columns left as
        they are.
    :param exemplar_values: ``(U, E, M)`` exemplar e of unit u; only the columns of unit u
        are read.
    :param exemplar_count: ``(U,)`` exemplars of each unit (the rest of E is padding).
    :returns: Margin changes ``(n, U, E, K)`` (0.0 on padding) and the raw margin of each
        row ``(n, K)`` (base offset included).
    :raises InputError: Shapes disagree.
    """
    ens = ensemble.validate()
    X = ens.check_input(X)
    unit_of = np.ascontiguousarray(unit_of, dtype=np.int64)
    values = np.asarray(exemplar_values, dtype=np.float64)
    count = np.ascontiguousarray(exemplar_count, dtype=np.int64)
    if values.ndim != 3 or values.shape[2] != ens.n_features or unit_of.shape != (ens.n_features,):
        raise InputError(
            f"exemplar values must be (units, exemplars, {ens.n_features}) and unit_of "
            f"({ens.n_features},); got {values.shape} and {unit_of.shape}"
        )
    if count.shape != (values.shape[0],) or (count > values.shape[1]).any() or (count < 0).any():
        raise InputError("exemplar_count must give, per unit, at most E exemplars")
    if unit_of.max(initial=-1) >= values.shape[0]:
        raise InputError("unit_of names a unit that has no exemplars")
    if ens.float32_inputs:  # the model compares float32 inputs: exemplars round the same way
        values = values.astype(np.float32).astype(np.float64)
    n_units, n_ex = values.shape[0], values.shape[1]
    out = np.zeros((X.shape[0], n_units, n_ex, ens.n_outputs))
    margin = np.zeros((X.shape[0], ens.n_outputs))
    for first in range(0, max(n_ex, 1), MASK_BITS):
        part = np.ascontiguousarray(values[:, first : first + MASK_BITS])
        part_count = np.clip(count - first, 0, MASK_BITS)
        go_left = _left_masks(ens.feature, *ens.routing(), ens.left, unit_of, part, part_count)
        if n_ex <= MASK_BITS:  # one slice: the kernel writes into the result itself
            block = out
        else:
            block = np.zeros((X.shape[0], n_units, part.shape[1], ens.n_outputs))
        own = np.zeros_like(margin)
        if X.shape[0]:
            _exemplar_deltas(
                X,
                *ens.structure(),
                ens.value,
                ens.roots,
                ens.tree_output,
                unit_of,
                part_count,
                go_left,
                ens.max_depth,
                block,
                own,
            )
        if block is not out:
            out[:, :, first : first + MASK_BITS] = block
        margin = own
    return out, margin + ens.base_offset


@njit(cache=True, parallel=True)
def _donor_deltas(
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
    value,
    roots,
    tree_output,
    unit_of,
    orders,
    shuffle_start,
    shuffle_count,
    max_depth,
    out,
    own_margin,
):
    n = X.shape[0]
    n_trees = roots.shape[0]
    n_units = shuffle_start.shape[0]
    n_values = value.shape[1]
    n_chunks = min(n, 64)
    for chunk in prange(n_chunks):
        path = np.empty(max_depth + 1, dtype=np.int64)
        seen = np.full(n_units, -1, dtype=np.int64)
        for i in range(chunk, n, n_chunks):
            for t in range(n_trees):
                depth, own = _own_path(
                    X,
                    i,
                    roots[t],
                    path,
                    left,
                    right,
                    feature,
                    threshold,
                    default_left,
                    missing,
                    cat_start,
                    cat_end,
                    cat_values,
                )
                o = tree_output[t]
                for v in range(n_values):
                    own_margin[i, o + v] += value[own, v]
                stamp = i * n_trees + t
                for p in range(depth):
                    u = unit_of[feature[path[p]]]
                    if u < 0 or seen[u] == stamp:
                        continue
                    seen[u] = stamp
                    for r in range(shuffle_start[u], shuffle_start[u] + shuffle_count[u]):
                        d = orders[r, i]
                        # follow x's path until the donor's value parts from it at a
                        # split on u; from there walk the other subtree
                        nd = -1
                        for q in range(p, depth):
                            node = path[q]
                            if unit_of[feature[node]] != u:
                                continue
                            nxt = path[q + 1] if q + 1 < depth else own
                            donor_left = goes_left(
                                X[d, feature[node]],
                                node,
                                threshold,
                                default_left,
                                missing,
                                cat_start,
                                cat_end,
                                cat_values,
                            )
                            if donor_left != (nxt == left[node]):
                                nd = left[node] if donor_left else right[node]
                                break
                        if nd < 0:
                            continue  # the donor ends in x's own leaf
                        while left[nd] >= 0:
                            f = feature[nd]
                            x = X[d, f] if unit_of[f] == u else X[i, f]
                            if goes_left(
                                x,
                                nd,
                                threshold,
                                default_left,
                                missing,
                                cat_start,
                                cat_end,
                                cat_values,
                            ):
                                nd = left[nd]
                            else:
                                nd = right[nd]
                        if nd != own:
                            for v in range(n_values):
                                out[i, r, o + v] += value[nd, v] - value[own, v]
    return out, own_margin


def donor_deltas(
    ensemble: TreeEnsemble,
    X: np.ndarray,
    unit_of: np.ndarray,
    orders: np.ndarray,
    shuffle_start: np.ndarray,
    shuffle_count: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``f(x_i with unit u's columns from row orders[r, i]) - f(x_i)`` in the raw margin of
    ``ensemble``, for the shuffles r of each unit, and ``f(x_i)`` itself.

    :param X: Rows ``(n, M)`` in the ensemble's input columns.
    :param unit_of: ``(M,)`` the unit each column belongs to, ``-1`` for columns never
        replaced.
    :param orders: ``(R, n)`` donor rows: shuffle r gives row i the unit's columns of row
        ``orders[r, i]``.
    :param shuffle_start: ``(U,)`` the first shuffle of each unit ...
    :param shuffle_count: ``(U,)`` ... and how many follow it (0: the unit is left as is).
    :returns: Margin changes ``(n, R, K)`` and the raw margin of each row ``(n, K)`` (base
        offset included).
    :raises InputError: Shapes or donor rows out of range.
    """
    ens = ensemble.validate()
    X = ens.check_input(X)
    n = X.shape[0]
    unit_of = np.ascontiguousarray(unit_of, dtype=np.int64)
    orders = np.ascontiguousarray(orders, dtype=np.int64)
    start = np.ascontiguousarray(shuffle_start, dtype=np.int64)
    count = np.ascontiguousarray(shuffle_count, dtype=np.int64)
    if orders.ndim != 2 or orders.shape[1] != n or unit_of.shape != (ens.n_features,):
        raise InputError(
            f"orders must be (shuffles, {n}) and unit_of ({ens.n_features},); got "
            f"{orders.shape} and {unit_of.shape}"
        )
    if orders.size and (orders.min() < 0 or orders.max() >= n):
        raise InputError("orders name rows outside X")
    if start.shape != count.shape or (start + count > orders.shape[0]).any():
        raise InputError("shuffle_start and shuffle_count must index the rows of orders")
    if unit_of.max(initial=-1) >= start.shape[0]:
        raise InputError("unit_of names a unit that has no shuffles")
    out = np.zeros((n, orders.shape[0], ens.n_outputs))
    margin = np.zeros((n, ens.n_outputs))
    if n:
        _donor_deltas(
            X,
            *ens.structure(),
            ens.value,
            ens.roots,
            ens.tree_output,
            unit_of,
            orders,
            start,
            count,
            ens.max_depth,
            out,
            margin,
        )
    return out, margin + ens.base_offset
