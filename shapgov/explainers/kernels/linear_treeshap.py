"""Path-dependent TreeSHAP in time linear in the tree size (after Yu et al., 2022).

For a leaf l with value v, cover share Q_l and, per feature k on its path,
p_k = prod over k's edges of [x follows the edge] / (edge cover ratio), the
path-dependent Shapley value of feature j is

    v Q_l (p_j - 1) * integral_0^1 prod_{k != j} (1 + t (p_k - 1)) dt.

The integrand is a polynomial of degree below the path length, so Gauss-Legendre
quadrature with ceil(depth / 2) nodes is exact. Per row and tree, one pass from the root
multiplies G(t) = prod_k (1 + t (p_k - 1)) into every node, one pass from the leaves
sums S_c(t) = sum of v Q_l G_l(t) over the leaves under c, and every edge on feature j
adds sum_q w_q [f(p_new) - f(p_old)] S_c(t_q) with f(p) = (p - 1) / (1 + t (p - 1)):
over the edges of a path these telescope to f(p_j) G_l, the integrand above.
Work per row is O(nodes x depth / 2) instead of O(leaves x depth^2).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from shapgov.errors import UnsupportedModelError
from shapgov.explainers.kernels.leaf_tables import (
    BLOCK_ROWS,
    TABLE_BYTES,
    _path_dependent_tables,
    _table_shap,
    _twig_tables,
    node_slots,
    path_dependent_worth_it,
    twig_layout,
)
from shapgov.explainers.kernels.routing import goes_left as _goes_left
from shapgov.explainers.trees import TreeEnsemble

#: Rows walked together per tree: the kernel's inner loops run over them, contiguous, so
#: they vectorize (XGBoost 200 x depth 8: 2.7 s at the former 32-row, rows-outer layout,
#: 0.6 s now). The block shrinks when a tree is so wide that the scratch would pass
#: ``_SCRATCH_BYTES`` per thread.
_BLOCK = 64
_SCRATCH_BYTES = 64 << 20
#: Calls with at least this many rows take per-leaf coefficient tables and row blocks
#: (:mod:`.leaf_tables`): ``2**d`` patterns per leaf, whatever the row count.
TABLE_MIN_ROWS = 20_000


def _quadrature(max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]; row q holds the q-point rule."""
    nodes = np.zeros((max_points + 1, max(max_points, 1)))
    weights = np.zeros_like(nodes)
    for q in range(1, max_points + 1):
        x, w = np.polynomial.legendre.leggauss(q)
        nodes[q, :q] = (x + 1.0) / 2.0
        weights[q, :q] = w / 2.0
    return nodes, weights


@njit(cache=True)
def _structure(left, right, feature, cover, roots, n_nodes):
    """Row-independent arrays: parent, the previous edge on the same feature (its child
    node, or -1), the cover share of every node, and each tree's quadrature size
    ceil(d / 2), d the most distinct features on one of its paths."""
    parent = np.full(n_nodes, -1, dtype=np.int64)
    prev = np.full(n_nodes, -1, dtype=np.int64)
    share = np.ones(n_nodes)
    distinct = np.zeros(n_nodes, dtype=np.int64)
    ok = True
    for u in range(n_nodes):
        if left[u] >= 0:
            for c in (left[u], right[u]):
                if c <= u:
                    ok = False
                parent[c] = u
    tree_q = np.zeros(roots.shape[0], dtype=np.int64)
    for t in range(roots.shape[0]):
        end = roots[t + 1] if t + 1 < roots.shape[0] else n_nodes
        most = 0
        for c in range(roots[t] + 1, end):
            u = parent[c]
            share[c] = cover[c] / cover[roots[t]]
            j = feature[u]
            a = u
            while a != roots[t]:
                if feature[parent[a]] == j:
                    prev[c] = a
                    break
                a = parent[a]
            distinct[c] = distinct[u] + (1 if prev[c] < 0 else 0)
            most = max(most, distinct[c])
        tree_q[t] = max(1, (most + 1) // 2)
    return parent, prev, share, tree_q, ok


@njit(cache=True)
def _edge_tables(left, cover, roots, parent, prev, tree_q, qnodes, qweights, n_nodes):
    """Per edge (child node c) and quadrature node k, everything that does not depend on x.

    On c's feature, p is 0 once any edge of it was cold, else the product P_c of
    1 / cover ratio over its edges. So G's factor on entering c and the edge's weighted
    telescoping term f(p_new) - f(p_old) take two values: hot and cold.
    """
    offset = np.zeros(n_nodes + 1, dtype=np.int64)
    for t in range(roots.shape[0]):
        end = roots[t + 1] if t + 1 < roots.shape[0] else n_nodes
        for c in range(roots[t], end):
            offset[c + 1] = offset[c] + tree_q[t]
    total = offset[n_nodes]
    # column 0: the edge is cold, 1: hot, 2: its feature is already dead (p = 0)
    factor = np.ones((3, total))
    term = np.zeros((3, total))
    p_hot = np.ones(n_nodes)
    for t in range(roots.shape[0]):
        end = roots[t + 1] if t + 1 < roots.shape[0] else n_nodes
        nq = tree_q[t]
        for c in range(roots[t] + 1, end):
            old = p_hot[prev[c]] if prev[c] >= 0 else 1.0
            new = old * cover[parent[c]] / cover[c]
            p_hot[c] = new
            for k in range(nq):
                tk, wk = qnodes[nq, k], qweights[nq, k]
                den = 1.0 + tk * (old - 1.0)
                f_old = (old - 1.0) / den
                factor[1, offset[c] + k] = (1.0 + tk * (new - 1.0)) / den
                factor[0, offset[c] + k] = (1.0 - tk) / den
                term[1, offset[c] + k] = wk * ((new - 1.0) / (1.0 + tk * (new - 1.0)) - f_old)
                term[0, offset[c] + k] = wk * (-1.0 / (1.0 - tk) - f_old)
    return offset, factor, term


@njit(cache=True, inline="always")
def _pick(state, hot, cold, dead):
    """An edge's entry by its state: 1 hot, 0 cold, 2 its feature already dead (p = 0)."""
    return hot if state == 1 else (cold if state == 0 else dead)


@njit(cache=True, parallel=True)
def _linear_path_dependent(
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
    n_outputs,
    parent,
    prev,
    share,
    tree_q,
    offset,
    factor,
    term,
    block,
    node_player,
    n_slots,
):
    n, m = X.shape
    n_nodes = left.shape[0]
    nv = value.shape[1]
    qmax = 1
    widest = 0
    for t in range(roots.shape[0]):
        end = roots[t + 1] if t + 1 < roots.shape[0] else n_nodes
        widest = max(widest, end - roots[t])
        qmax = max(qmax, tree_q[t])
    phi = np.zeros((n, n_slots, n_outputs))
    n_blocks = (n + block - 1) // block
    for blk in prange(n_blocks):
        r0 = blk * block
        nb = min(block, n - r0)
        # the block's rows, feature-major; a short last block repeats its first row
        xb = np.empty((m, block))
        for b in range(block):
            r = r0 + b if b < nb else r0
            for f in range(m):
                xb[f, b] = X[r, f]
        G = np.empty((widest, qmax, block))
        S = np.empty((widest, nv, qmax, block))
        state = np.empty((widest, block), dtype=np.int8)  # 0 cold, 1 hot, 2 dead feature
        goes = np.empty(block, dtype=np.bool_)
        acc = np.empty(block)
        phi_b = np.zeros((n_slots, n_outputs, block))
        for t in range(roots.shape[0]):
            root = roots[t]
            end = roots[t + 1] if t + 1 < roots.shape[0] else n_nodes
            nq = tree_q[t]
            out = tree_output[t]
            G[0, :nq, :] = 1.0
            # root to leaves: G(t) at every node (children follow their parent)
            for u in range(root, end):
                if left[u] < 0:
                    continue
                f = feature[u]
                for b in range(block):
                    goes[b] = _goes_left(
                        xb[f, b],
                        u,
                        threshold,
                        default_left,
                        missing,
                        cat_start,
                        cat_end,
                        cat_values,
                    )
                ui = u - root
                for side in range(2):
                    c = left[u] if side == 0 else right[u]
                    ci = c - root
                    o = offset[c]
                    pci = prev[c] - root
                    for b in range(block):
                        hot = goes[b] if side == 0 else not goes[b]
                        state[ci, b] = 1 if hot else 0
                    if pci >= 0:  # p = 0 on this feature already once an earlier edge was not hot
                        for b in range(block):
                            if state[pci, b] != 1:
                                state[ci, b] = 2
                    if left[c] < 0:  # a leaf: S(t) = value x cover share x G(t)
                        for v in range(nv):
                            lv = value[c, v] * share[c]
                            for k in range(nq):
                                f_hot = factor[1, o + k] * lv
                                f_cold = factor[0, o + k] * lv
                                for b in range(block):
                                    S[ci, v, k, b] = G[ui, k, b] * _pick(
                                        state[ci, b], f_hot, f_cold, lv
                                    )
                    else:
                        for k in range(nq):
                            f_hot = factor[1, o + k]
                            f_cold = factor[0, o + k]
                            for b in range(block):
                                G[ci, k, b] = G[ui, k, b] * _pick(state[ci, b], f_hot, f_cold, 1.0)
            # leaves to root: S_c(t), and each edge's telescoping share
            for c in range(end - 1, root - 1, -1):
                ci = c - root
                if left[c] >= 0:
                    li, ri = left[c] - root, right[c] - root
                    for v in range(nv):
                        for k in range(nq):
                            for b in range(block):
                                S[ci, v, k, b] = S[li, v, k, b] + S[ri, v, k, b]
                if c == root:
                    continue
                j = node_player[parent[c]]
                o = offset[c]
                for v in range(nv):
                    acc[:] = 0.0
                    for k in range(nq):
                        t_hot = term[1, o + k]
                        t_cold = term[0, o + k]
                        for b in range(block):
                            acc[b] += _pick(state[ci, b], t_hot, t_cold, 0.0) * S[ci, v, k, b]
                    for b in range(block):
                        phi_b[j, out + v, b] += acc[b]
        for b in range(nb):
            for j in range(n_slots):
                for v in range(n_outputs):
                    phi[r0 + b, j, v] = phi_b[j, v, b]
    return phi


def _block_rows(n_rows: int, widest: int, qmax: int, n_values: int) -> int:
    """Rows per block: ``_BLOCK``, fewer for few rows or trees too wide for the scratch."""
    per_row = 8 * widest * qmax * (1 + n_values) + widest
    return max(1, min(_BLOCK, n_rows, _SCRATCH_BYTES // per_row))


def linear_path_dependent_shap(
    ensemble: TreeEnsemble, X: np.ndarray, *, players: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact path-dependent TreeSHAP, linear in tree size: ``(values (n, P, K), base (K,))``.

    :param players: The player of each input column, ``(M,)`` (see
        :func:`~shapgov.explainers.kernels.background_treeshap.background_shap`); columns
        of one player are known or unknown together, as repeated splits on one feature
        are; default: every column its own player (``P = M``).
    :raises UnsupportedModelError: Zero covers, or nodes out of order.
    :raises InputError: Bad players, or columns that do not fit.
    """
    from shapgov.explainers.kernels.background_treeshap import node_players

    ens = ensemble.validate()
    X = ens.check_input(X)
    n_nodes = ens.left.shape[0]
    if (ens.cover[ens.left < 0] <= 0).any():
        raise UnsupportedModelError("a leaf has zero cover; path-dependent TreeSHAP needs counts")
    node_player, n_players = node_players(ens, players)
    if X.shape[0] >= TABLE_MIN_ROWS:
        phi = _tabled(ens, X, node_player, n_players + 1)
        if phi is not None:
            return phi[:, :n_players], ens.expected_value()
    parent, prev, share, tree_q, ok = _structure(
        ens.left, ens.right, node_player, ens.cover, ens.roots, n_nodes
    )
    if not ok:
        raise UnsupportedModelError("tree nodes must follow their parents in the flat arrays")
    qnodes, qweights = _quadrature(int(tree_q.max()))
    tables = _edge_tables(
        ens.left, ens.cover, ens.roots, parent, prev, tree_q, qnodes, qweights, n_nodes
    )
    phi = _linear_path_dependent(
        X,
        *ens.structure(),
        ens.value,
        ens.roots,
        ens.tree_output,
        ens.n_outputs,
        parent,
        prev,
        share,
        tree_q,
        *tables,
        _block_rows(
            X.shape[0],
            int(np.diff(np.append(ens.roots, n_nodes)).max()),
            int(tree_q.max()),
            ens.value.shape[1],
        ),
        np.where(node_player >= 0, node_player, n_players),  # -1 at leaves: never read
        n_players + 1,  # + 1: the constants' slot
    )
    return phi[:, :n_players], ens.expected_value()


def _tabled(ens: TreeEnsemble, X: np.ndarray, node_player: np.ndarray, m: int):
    """Values ``(n, m, K)`` from per-leaf coefficient tables and row blocks
    (:mod:`.leaf_tables`), or None where a leaf's table would be too large (more than
    :data:`~.background_treeshap.DENSE_MAX_FEATURES` path features, or all tables past
    :data:`~.leaf_tables.TABLE_BYTES`, or building them would cost more than the rows'
    adds, :func:`~.leaf_tables.path_dependent_worth_it`): the linear walk then explains
    the call."""
    from shapgov.explainers.kernels.background_treeshap import DENSE_MAX_FEATURES, _leaf_paths

    paths = _leaf_paths(ens.left, ens.right, node_player, ens.roots)
    leaf_node, leaf_tree, path_ptr, path_node, _, path_slot, feat_ptr, feats = paths
    widths = np.diff(feat_ptr)
    if widths.max(initial=0) > DENSE_MAX_FEATURES or not path_dependent_worth_it(
        widths, X.shape[0]
    ):
        return None
    sizes = (np.int64(1) << widths) * widths
    tab_ptr = np.where(widths > 0, np.cumsum(sizes) - sizes, -1).astype(np.int64)
    node_slot, leaf_of = node_slots(ens, leaf_node, path_node, path_slot)
    twig_ptr, twig_total = twig_layout(
        ens.left, ens.right, leaf_of, feat_ptr, tab_ptr, ens.value.shape[1]
    )
    if 8 * (int(sizes.sum()) + twig_total) > TABLE_BYTES:
        return None
    qnodes, qweights = _quadrature(max(1, (int(widths.max(initial=1)) + 1) // 2))
    tables = _path_dependent_tables(
        leaf_node, path_ptr, path_node, path_slot, feat_ptr, ens.cover.astype(float),
        ens.roots[leaf_tree], tab_ptr, int(sizes.sum()), qnodes, qweights,
    )  # fmt: skip
    twigs = _twig_tables(ens.left, ens.right, leaf_of, feat_ptr, node_slot, ens.value,
                         tables, tab_ptr, twig_ptr, twig_total)  # fmt: skip
    none = np.zeros((leaf_node.shape[0], 1), np.int64)
    return _table_shap(
        np.ascontiguousarray(X), *ens.structure(), ens.value, ens.roots, ens.tree_output,
        ens.n_outputs, node_slot, leaf_of, feat_ptr, feats,
        np.zeros(ens.n_trees, np.bool_), tables, tab_ptr, none, none.astype(float),
        np.zeros(leaf_node.shape[0], np.int64), np.zeros((1, 1)), np.zeros((1, 1)),
        max(ens.max_depth, 1), int(np.diff(np.append(ens.roots, ens.left.shape[0])).max()),
        m, BLOCK_ROWS, twig_ptr, twigs,
    )  # fmt: skip
