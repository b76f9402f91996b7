"""Interventional TreeSHAP for many rows: per-leaf coefficient tables and row blocks.

The values are those of :mod:`.background_treeshap` (the leaf game there, WOODELF's
decision patterns in our own formulation); this module holds the Shapley coefficients of
one leaf pattern (:func:`_coefficients`, shared with that module) and a second way of
visiting the rows, for calls with many rows (a million-row scoring table):

* every leaf's coefficients are tabulated once for **all** ``2**d`` row patterns
  (:func:`_leaf_tables`, work ``3**d * d`` per leaf), where that costs less than pairing
  the rows with the leaf's background patterns (``3**d <= rows * patterns``); other
  leaves pair each row with the background's distinct patterns;
* rows are taken in blocks that stay in the core's cache (:data:`BLOCK_ROWS`), each block
  by one thread from the first tree to the last, so a row's values are the same floats on
  any number of threads;
* a row's pattern at every leaf of a tree comes from one depth-first walk of the tree:
  a leaf's path features get their slots root first (:func:`~.background_treeshap._leaf_paths`),
  so every leaf under a node shares its ancestors' slots and each edge costs one AND per
  row, instead of one per path node and leaf;
* a node whose children are both tabled leaves (a *twig*, 58% of the leaves of a
  LightGBM model of 100 x 31 leaves) has one table indexed by its pattern and its own
  split decision, the leaf values folded in (:func:`twig_layout`, :func:`_twig_tables`):
  one lookup and ``d`` adds per row for both leaves.

Sources: Lundberg et al. (2020), *From local explanations to global understanding with
explainable AI for trees* (the interventional leaf game); Nadel and Wettenstein (AAAI-26,
arXiv:2511.09376, WOODELF: decision patterns). Our own code.
"""

from __future__ import annotations

from math import comb
from typing import Any

import numpy as np
from numba import njit, prange

from shapgov.explainers.kernels.routing import goes_left

#: Rows per block: the block's transposed rows, decisions, masks and accumulators stay
#: within a core's L2 cache at 30 columns (about 1.4 MB); 128 to 8192 were timed
#: (1,000,000 x 30, LightGBM 100 x 31): 2048 was fastest, 128 took 1.35x as long.
BLOCK_ROWS = 2048
#: Most bytes all of one call's leaf tables may take; beyond, the call keeps the
#: per-block route of :mod:`.background_treeshap`.
TABLE_BYTES = 512 << 20
#: A call takes the tables when building them (and pairing the leaves without one) costs
#: at most this many times the per-row adds (:func:`table_layout`,
#: :func:`path_dependent_worth_it`).
TABLE_WORK_FACTOR = 1.0


def _shapley_weights(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``WA[a, b] = (a-1)! b! / (a+b)!`` and ``WB[a, b] = a! (b-1)! / (a+b)!``."""
    wa = np.zeros((size + 1, size + 1))
    wb = np.zeros((size + 1, size + 1))
    for a in range(size + 1):
        for b in range(size + 1):
            if a > 0:
                wa[a, b] = 1.0 / (a * comb(a + b, a))
            if b > 0:
                wb[a, b] = 1.0 / (b * comb(a + b, b))
    return wa, wb


@njit(cache=True, inline="always")
def _popcount(v):
    c = 0
    while v:
        v &= v - 1
        c += 1
    return c


@njit(cache=True)
def _coefficients(xp, d, counts, wa, wb, out):
    """Per-slot Shapley coefficients of pattern ``xp`` against pattern counts ``counts``
    (unit leaf value, unnormalized), written to ``out[:d]``."""
    full = (np.int64(1) << d) - 1
    notx = full & ~xp
    b = d - _popcount(xp)
    n_x = d - b
    for j in range(d):
        out[j] = 0.0
    neg = 0.0
    t = xp
    while True:
        c = counts[notx | t]
        if c != 0.0:
            a = n_x - _popcount(t)
            if a + b > 0:
                if a > 0:
                    ca = c * wa[a, b]
                    only_x = xp & ~t
                    for j in range(d):
                        if (only_x >> j) & 1:
                            out[j] += ca
                if b > 0:
                    neg += c * wb[a, b]
        if t == 0:
            break
        t = (t - 1) & xp
    if neg != 0.0:
        for j in range(d):
            if (notx >> j) & 1:
                out[j] -= neg


def table_layout(
    widths: np.ndarray, n_distinct: np.ndarray, eligible: np.ndarray, n_rows: int
) -> tuple[np.ndarray, int, bool]:
    """Where each leaf's table starts in one flat array, ``(start (L,), total floats,
    worth it)``; ``-1`` for a leaf without a table: not ``eligible`` (deep trees, more
    than the dense limit of features), without path features, or cheaper to pair
    (``3**d > rows x its background patterns``). A table holds ``2**d x d`` floats.

    *Worth it* is the routing rule for the call: the tables' ``3**d x d`` work and the
    paired leaves' ``rows x patterns x d`` stay within the per-row adds both routes do,
    ``rows x sum of d`` over the eligible leaves. Deep forests (paths of a dozen features
    and more, thousands of leaves) fail it and keep the per-block route, which computes
    coefficients only for the patterns the rows show."""
    d = widths.astype(np.int64)
    cost = np.power(3.0, d)
    pairs = float(n_rows) * np.maximum(n_distinct, 1)
    tabled = eligible & (d > 0) & (cost <= pairs)
    sizes = np.where(tabled, (np.int64(1) << np.minimum(d, 62)) * d, 0)
    start = np.where(tabled, np.cumsum(sizes) - sizes, -1).astype(np.int64)
    paired = eligible & (d > 0) & ~tabled
    extra = float(np.sum(cost[tabled] * d[tabled])) + float(np.sum(pairs[paired] * d[paired]))
    base = float(n_rows) * float(np.sum(d[eligible]))
    return start, int(sizes.sum()), extra <= TABLE_WORK_FACTOR * base


def path_dependent_worth_it(widths: np.ndarray, n_rows: int) -> bool:
    """The routing rule of the path-dependent tables: building them (``2**d`` patterns x
    ``ceil(d/2)`` quadrature nodes x about ``3d`` operations per leaf) stays within the
    per-row adds, ``rows x sum of d``."""
    d = widths.astype(np.float64)
    build = np.sum(np.power(2.0, d) * np.ceil(d / 2.0) * 3.0 * d)
    return bool(build <= TABLE_WORK_FACTOR * float(n_rows) * float(np.sum(d)))


@njit(cache=True)
def _reach(zpat, zweight, n_distinct, leaf_node, leaf_tree, feat_ptr, deep, value,
           tree_output, n_outputs):  # fmt: skip
    """The background's weighted reach of every leaf of the trees not ``deep``, times the
    leaf's value, summed per output ``(K,)``, leaf by leaf."""
    reach = np.zeros(n_outputs)
    for L in range(leaf_node.shape[0]):
        if deep[leaf_tree[L]]:
            continue
        full = (np.int64(1) << (feat_ptr[L + 1] - feat_ptr[L])) - 1
        nz = n_distinct[L]
        if nz > 0 and zpat[L, nz - 1] == full:  # ascending: the full pattern comes last
            o = tree_output[leaf_tree[L]]
            for k in range(value.shape[1]):
                reach[o + k] += zweight[L, nz - 1] * value[leaf_node[L], k]
    return reach


@njit(cache=True, parallel=True)
def _leaf_tables(zpat_all, w_all, n_distinct, feat_ptr, tab_ptr, total, wa, wb):
    """Every tabled leaf's coefficients for all ``2**d`` row patterns, flat ``(total,)``:
    leaf ``L``'s pattern ``p`` at ``tab_ptr[L] + p * d`` (unit leaf value)."""
    tables = np.zeros(total)
    for L in prange(tab_ptr.shape[0]):
        if tab_ptr[L] < 0:
            continue
        d = feat_ptr[L + 1] - feat_ptr[L]
        counts = np.zeros(np.int64(1) << d)
        for s in range(n_distinct[L]):
            counts[zpat_all[L, s]] += w_all[L, s]
        coef = np.empty(d)
        base = tab_ptr[L]
        for p in range(np.int64(1) << d):
            _coefficients(p, d, counts, wa, wb, coef)
            for j in range(d):
                tables[base + p * d + j] = coef[j]
    return tables


@njit(cache=True)
def _paired_leaf(L, masks, R, d, zpat, w, wa, wb, feats, fbase, value, leaf, o, acc):
    """Leaf ``L`` without a table: each row of the block paired with the background's
    distinct patterns ``zpat`` and weights ``w``; adds into ``acc`` ``(m, K, R)``."""
    full = (np.int64(1) << d) - 1
    for r in range(R):
        xp = masks[r] & full
        notx = full & ~xp
        b = d - _popcount(xp)
        for s in range(zpat.shape[0]):
            zp = zpat[s]
            if (xp | zp) != full:
                continue
            only_x = xp & ~zp
            a = _popcount(only_x)
            if a + b == 0:
                continue
            for j in range(d):
                c = 0.0
                if (only_x >> j) & 1:
                    c = w[s] * wa[a, b]
                elif (notx >> j) & 1:
                    c = -w[s] * wb[a, b]
                if c != 0.0:
                    f = feats[fbase + j]
                    for k in range(value.shape[1]):
                        acc[f, o + k, r] += c * value[leaf, k]


@njit(cache=True, parallel=True)
def _table_shap(
    X, left, right, feature, threshold, default_left, missing, cat_start, cat_end,
    cat_values, value, roots, tree_output, n_outputs, node_slot, leaf_of, feat_ptr, feats,
    deep, tables, tab_ptr, zpat_all, w_all, n_distinct, wa, wb, max_depth, max_nodes, m,
    block, twig_ptr, twig_tables,
):  # fmt: skip
    """Values ``(n, m, K)`` of the trees not ``deep`` for the rows ``X`` ``(n, M)``, block
    by block (:data:`BLOCK_ROWS`), each block by one thread over the trees in order. A
    node with ``twig_ptr >= 0`` (:func:`twig_layout`) adds both its leaves at once."""
    n, n_cols = X.shape
    n_trees = roots.shape[0]
    n_nodes = left.shape[0]
    phi = np.zeros((n, m, n_outputs))
    n_blocks = (n + block - 1) // block
    for bi in prange(n_blocks):
        start = bi * block
        R = min(n, start + block) - start
        Xt = np.empty((n_cols, R))
        for r in range(R):
            for c in range(n_cols):
                Xt[c, r] = X[start + r, c]
        acc = np.zeros((m, n_outputs, R))
        dec = np.zeros((max_nodes, R), np.bool_)
        masks = np.empty((max_depth + 1, R), np.int64)
        off = np.empty(R, np.int64)
        st_node = np.empty(max_depth + 2, np.int64)
        st_depth = np.empty(max_depth + 2, np.int64)
        st_parent = np.empty(max_depth + 2, np.int64)
        st_left = np.empty(max_depth + 2, np.bool_)
        for t in range(n_trees):
            if deep[t]:
                continue
            root = roots[t]
            end = roots[t + 1] if t + 1 < n_trees else n_nodes
            o = tree_output[t]
            for i in range(root, end):
                if left[i] >= 0:
                    col = Xt[feature[i]]
                    di = dec[i - root]
                    for r in range(R):
                        di[r] = goes_left(
                            col[r], i, threshold, default_left, missing, cat_start, cat_end,
                            cat_values,
                        )  # fmt: skip
            m0 = masks[0]
            for r in range(R):
                m0[r] = -1
            st_node[0] = root
            st_depth[0] = 0
            st_parent[0] = -1
            sp = 1
            while sp > 0:  # depth first, left subtree first
                sp -= 1
                i = st_node[sp]
                k = st_depth[sp]
                p = st_parent[sp]
                mk = masks[k]
                if p >= 0:  # clear the parent's slot where a row turns the other way
                    mp = masks[k - 1]
                    notbit = ~(np.int64(1) << node_slot[p])
                    dp = dec[p - root]
                    if st_left[sp]:
                        for r in range(R):
                            mk[r] = mp[r] & (notbit | -np.int64(dp[r]))
                    else:
                        for r in range(R):
                            mk[r] = mp[r] & (notbit | (np.int64(dp[r]) - 1))
                tw = twig_ptr[i]
                if tw >= 0:  # both children leaves: one lookup, d adds, values in
                    L = leaf_of[left[i]]
                    d = feat_ptr[L + 1] - feat_ptr[L]
                    full = (np.int64(1) << d) - 1
                    di = dec[i - root]
                    for r in range(R):
                        off[r] = tw + ((mk[r] & full) | (np.int64(di[r]) << d)) * d
                    for j in range(d):
                        dst = acc[feats[feat_ptr[L] + j], o]
                        for r in range(R):
                            dst[r] += twig_tables[off[r] + j]
                    continue
                if left[i] >= 0:  # the parent level stays untouched below it
                    st_node[sp] = right[i]
                    st_node[sp + 1] = left[i]
                    st_depth[sp] = k + 1
                    st_depth[sp + 1] = k + 1
                    st_parent[sp] = i
                    st_parent[sp + 1] = i
                    st_left[sp] = False
                    st_left[sp + 1] = True
                    sp += 2
                    continue
                L = leaf_of[i]
                d = feat_ptr[L + 1] - feat_ptr[L]
                if d == 0:
                    continue
                fbase = feat_ptr[L]
                if tab_ptr[L] >= 0:
                    full = (np.int64(1) << d) - 1
                    tb = tab_ptr[L]
                    for r in range(R):
                        off[r] = tb + (mk[r] & full) * d
                    for j in range(d):
                        f = feats[fbase + j]
                        for kk in range(value.shape[1]):
                            v = value[i, kk]
                            dst = acc[f, o + kk]
                            for r in range(R):
                                dst[r] += tables[off[r] + j] * v
                else:
                    nz = n_distinct[L]
                    _paired_leaf(
                        L, mk, R, d, zpat_all[L, :nz], w_all[L, :nz], wa, wb, feats, fbase,
                        value, i, o, acc,
                    )  # fmt: skip
        for r in range(R):
            for f in range(m):
                for kk in range(n_outputs):
                    phi[start + r, f, kk] = acc[f, kk, r]
    return phi


@njit(cache=True, parallel=True)
def _path_dependent_tables(
    leaf_node, path_ptr, path_node, path_slot, feat_ptr, cover, roots_of_leaf, tab_ptr,
    total, qnodes, qweights,
):  # fmt: skip
    """Every leaf's path-dependent coefficients for all ``2**d`` row patterns, flat
    ``(total,)`` as :func:`_leaf_tables` lays them out (unit leaf value).

    With ``P_s`` the product of ``cover(parent) / cover(child)`` over the path's edges on
    slot ``s`` and ``p_s = P_s`` where the row follows all of them (its pattern bit), else
    0, slot ``j`` gets ``Q (p_j - 1) * integral_0^1 prod_{k != j} (1 + t (p_k - 1)) dt``
    with ``Q`` the leaf's cover share (Yu et al. 2022, Linear TreeShap): a polynomial of
    degree ``d - 1``, integrated exactly by the ``ceil(d / 2)``-point Gauss-Legendre rule
    ``qnodes[q], qweights[q]`` on [0, 1]."""
    tables = np.zeros(total)
    for L in prange(tab_ptr.shape[0]):
        if tab_ptr[L] < 0:
            continue
        d = feat_ptr[L + 1] - feat_ptr[L]
        hot = np.ones(d)
        child = leaf_node[L]
        for q in range(path_ptr[L], path_ptr[L + 1]):
            parent = path_node[q]
            hot[path_slot[q]] *= cover[parent] / cover[child]
            child = parent
        share = cover[leaf_node[L]] / cover[roots_of_leaf[L]]
        nq = max(1, (d + 1) // 2)
        p = np.empty(d)
        before = np.empty(d + 1)
        after = np.empty(d + 1)
        base = tab_ptr[L]
        for pattern in range(np.int64(1) << d):
            for s in range(d):
                p[s] = hot[s] if (pattern >> s) & 1 else 0.0
            for k in range(nq):
                t = qnodes[nq, k]
                wk = qweights[nq, k]
                before[0] = 1.0
                for s in range(d):
                    before[s + 1] = before[s] * (1.0 + t * (p[s] - 1.0))
                after[d] = 1.0
                for s in range(d - 1, -1, -1):
                    after[s] = after[s + 1] * (1.0 + t * (p[s] - 1.0))
                for j in range(d):
                    tables[base + pattern * d + j] += wk * before[j] * after[j + 1]
            for j in range(d):
                tables[base + pattern * d + j] *= share * (p[j] - 1.0)
    return tables


def twig_layout(
    left: np.ndarray,
    right: np.ndarray,
    leaf_of: np.ndarray,
    feat_ptr: np.ndarray,
    tab_ptr: np.ndarray,
    n_values: int,
) -> tuple[np.ndarray, int]:
    """Where each *twig*'s table starts (a node whose children are both tabled leaves),
    ``(start per node (nodes,), total floats)``, ``-1`` elsewhere. A twig's leaves share
    their path features (the same slots, root first), so one table indexed by the
    twig's pattern and its own split decision, ``2**(d+1) x d`` floats with the leaf
    values folded in, adds both leaves per row. Single-output leaves only (``n_values ==
    1``); none otherwise."""
    start = np.full(left.shape[0], -1, np.int64)
    if n_values != 1:
        return start, 0
    inner = np.flatnonzero(left >= 0)
    kids_l, kids_r = left[inner], right[inner]
    leaves = (left[kids_l] < 0) & (left[kids_r] < 0)
    twigs, kids_l, kids_r = inner[leaves], kids_l[leaves], kids_r[leaves]
    tabled = (tab_ptr[leaf_of[kids_l]] >= 0) & (tab_ptr[leaf_of[kids_r]] >= 0)
    twigs, kids_l = twigs[tabled], kids_l[tabled]
    d = np.diff(feat_ptr)[leaf_of[kids_l]]
    sizes = (np.int64(2) << d) * d
    start[twigs] = np.cumsum(sizes) - sizes
    return start, int(sizes.sum())


@njit(cache=True, parallel=True)
def _twig_tables(left, right, leaf_of, feat_ptr, node_slot, value, tables, tab_ptr, twig_ptr,
                 total):  # fmt: skip
    """Every twig's table (:func:`twig_layout`): at pattern ``p`` (the twig's ``d`` slots)
    and decision ``g`` (1: left), ``value(left) x table(left)[p, or p without the twig's
    slot where the row turns right] + value(right) x table(right)[...]``."""
    out = np.zeros(total)
    twigs = np.flatnonzero(twig_ptr >= 0)
    for q in prange(twigs.shape[0]):
        u = twigs[q]
        a, b = leaf_of[left[u]], leaf_of[right[u]]
        d = feat_ptr[a + 1] - feat_ptr[a]
        bit = np.int64(1) << node_slot[u]
        va, vb = value[left[u], 0], value[right[u], 0]
        ta, tb = tab_ptr[a], tab_ptr[b]
        base = twig_ptr[u]
        for idx in range(np.int64(2) << d):
            p = idx & ((np.int64(1) << d) - 1)
            goes = idx >> d
            pa = p if goes else p & ~bit
            pb = p & ~bit if goes else p
            for j in range(d):
                ra, rb = tables[ta + pa * d + j], tables[tb + pb * d + j]
                out[base + idx * d + j] = va * ra + vb * rb
    return out


def node_slots(
    ens: Any, leaf_node: np.ndarray, path_node: np.ndarray, path_slot: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(slot of every internal node's feature on its leaves' paths, leaf index of every
    leaf node)``, both ``(nodes,)`` with -1 elsewhere: slots are numbered from the root
    down (:func:`~.background_treeshap._leaf_paths`), so a node's slot is the same from
    every leaf below it."""
    node_slot = np.full(ens.left.shape[0], -1, np.int64)
    node_slot[path_node] = path_slot
    leaf_of = np.full(ens.left.shape[0], -1, np.int64)
    leaf_of[leaf_node] = np.arange(leaf_node.shape[0])
    return node_slot, leaf_of
