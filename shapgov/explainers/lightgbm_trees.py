"""LightGBM boosters parsed into shapgov's flat tree representation.

LightGBM is a runtime dependency: the built-in tree plugin registers this parser, and the
Kernel explainer's surrogate (:mod:`shapgov.explainers.surrogate`) uses it on the LightGBM
models it fits itself (up to 600 trees per game).

The model text (``Booster.model_to_string()``) holds every tree as arrays
(``split_feature``, ``threshold``, ``decision_type``, ``left_child``, ``right_child``,
``leaf_value``, ``leaf_count``, ``internal_count``, ``cat_boundaries``,
``cat_threshold``): internal nodes ``0..L-2``, leaf ``l`` written ``~l`` (``-l - 1``) in
the child arrays. They are read with numpy and the nodes laid out depth first (node, left
subtree, right subtree): the arrays the former walk of ``dump_model()``'s JSON built (the
tests keep that walk as an oracle and compare array by array), three times faster.

Decision types follow LightGBM's ``include/LightGBM/tree.h``: bit 0 categorical, bit 1
default left, bits 2-3 the missing type (0 none, 1 zero, 2 NaN); a categorical split's
threshold indexes ``cat_boundaries``, whose ``cat_threshold`` words are 32-bit sets of
the categories going left.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shapgov.errors import UnsupportedModelError
from shapgov.explainers.trees import (
    MISSING_AS_ZERO,
    MISSING_DEFAULT,
    ZERO_AND_MISSING_DEFAULT,
    TreeEnsemble,
)

_MISSING_TYPES = np.array([MISSING_AS_ZERO, ZERO_AND_MISSING_DEFAULT, MISSING_DEFAULT], np.int8)


def _fields(block: str) -> dict[str, str]:
    out = {}
    for line in block.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def _numbers(fields: dict[str, str], key: str, dtype: type) -> np.ndarray:
    text = fields.get(key, "").strip()
    return np.array(text.split(), dtype=dtype) if text else np.zeros(0, dtype=dtype)


def _categories(words: np.ndarray, start: int, end: int) -> list[int]:
    cats = []
    for i in range(start, end):
        w = int(words[i])
        base = (i - start) * 32
        cats.extend(base + bit for bit in range(32) if (w >> bit) & 1)
    return cats


def parse_booster(booster: Any) -> TreeEnsemble:
    """All trees of a ``lightgbm.Booster`` (raw score, init score folded into tree 0).

    :raises UnsupportedModelError: ``linear_tree`` models.
    """
    return parse_model_string(booster.model_to_string())


def parse_model_string(text: str) -> TreeEnsemble:
    """All trees of a LightGBM model text (``Booster.model_to_string()``), raw score.

    :raises UnsupportedModelError: ``linear_tree`` models (linear functions in the
        leaves), or text that holds no trees.
    """
    head, sep, rest = text.partition("\nTree=")
    if not sep:
        raise UnsupportedModelError("the LightGBM model text holds no trees")
    header = _fields(head)
    per_iteration = int(header.get("num_tree_per_iteration", "1"))
    blocks = ("Tree=" + rest).split("end of trees", 1)[0].split("\nTree=")
    cols: dict[str, list[np.ndarray]] = {k: [] for k in _COLUMNS}
    cat_values: list[int] = []
    roots, outputs = [], []
    offset = 0
    for t, block in enumerate(blocks):
        tree = _fields(block)
        if tree.get("is_linear", "0").strip() not in ("", "0"):
            raise UnsupportedModelError(
                "LightGBM linear_tree models have linear functions in their leaves, which the "
                "tree explainer does not support; explain such a model with the Kernel explainer"
            )
        arrays, cats = _tree(tree, len(cat_values))
        inner = arrays["left"] >= 0
        arrays["left"][inner] += offset  # node ids of the whole ensemble
        arrays["right"][inner] += offset
        cat_values.extend(cats)
        for k in _COLUMNS:
            cols[k].append(arrays[k])
        roots.append(offset)
        outputs.append(t % per_iteration)
        offset += arrays["left"].shape[0]
    flat = {k: np.concatenate(v) for k, v in cols.items()}
    return TreeEnsemble(
        left=flat["left"],
        right=flat["right"],
        feature=flat["feature"],
        threshold=flat["threshold"],
        default_left=flat["default_left"],
        missing=flat["missing"],
        cat_start=flat["cat_start"],
        cat_end=flat["cat_end"],
        cat_values=np.asarray(cat_values, dtype=np.int64),
        cover=flat["cover"],
        value=flat["value"][:, None],
        roots=np.asarray(roots, dtype=np.int64),
        tree_output=np.asarray(outputs, dtype=np.int64),
        base_offset=np.zeros(per_iteration),
        n_features=int(header["max_feature_idx"]) + 1,
        n_outputs=per_iteration,
    )


_COLUMNS = (
    "left",
    "right",
    "feature",
    "threshold",
    "default_left",
    "missing",
    "cat_start",
    "cat_end",
    "cover",
    "value",
)


def _tree(tree: dict[str, str], n_cats: int) -> tuple[dict[str, np.ndarray], list[int]]:
    """One tree's nodes depth first (the node, its left subtree, its right subtree) with
    node indices local to the tree, and the categories its splits add after ``n_cats``."""
    leaf_value = _numbers(tree, "leaf_value", float)
    leaf_count = _numbers(tree, "leaf_count", float)
    n_leaves = leaf_value.shape[0]
    if n_leaves <= 1:  # a single leaf; no count: one, so cover shares stay defined
        cover = float(leaf_count[0]) if leaf_count.size and leaf_count[0] > 0 else 1.0
        arrays = _empty(1)
        arrays["cover"][0] = cover
        arrays["value"][0] = leaf_value[0] if n_leaves else 0.0
        return arrays, []
    split_feature = _numbers(tree, "split_feature", np.int64)
    threshold = _numbers(tree, "threshold", float)
    decision = _numbers(tree, "decision_type", np.int64)
    left_child = _numbers(tree, "left_child", np.int64)
    right_child = _numbers(tree, "right_child", np.int64)
    internal_count = _numbers(tree, "internal_count", float)
    boundaries = _numbers(tree, "cat_boundaries", np.int64)
    words = _numbers(tree, "cat_threshold", np.int64)
    n = 2 * n_leaves - 1
    arrays = _empty(n)
    cats: list[int] = []
    # depth first: LightGBM's node ids (internal i >= 0, leaf ~l) in the order visited
    stack, order = [0], []
    while stack:
        node = stack.pop()
        order.append(node)
        if node >= 0:
            stack.append(int(right_child[node]))
            stack.append(int(left_child[node]))
    position = {node: i for i, node in enumerate(order)}
    for i, node in enumerate(order):
        if node < 0:
            leaf = ~node
            arrays["cover"][i] = leaf_count[leaf] if leaf_count.size else 0.0
            arrays["value"][i] = leaf_value[leaf]
            continue
        arrays["left"][i] = position[int(left_child[node])]
        arrays["right"][i] = position[int(right_child[node])]
        arrays["feature"][i] = split_feature[node]
        arrays["cover"][i] = internal_count[node]
        kind = int(decision[node])
        arrays["default_left"][i] = bool(kind & 2)
        start = n_cats + len(cats)
        if kind & 1:  # categorical: the categories going left
            k = int(threshold[node])
            cats.extend(_categories(words, int(boundaries[k]), int(boundaries[k + 1])))
            end = n_cats + len(cats)
            arrays["missing"][i] = (
                MISSING_AS_ZERO if end > start else _MISSING_TYPES[(kind >> 2) & 3]
            )
        else:
            end = start
            arrays["threshold"][i] = threshold[node]
            arrays["missing"][i] = _MISSING_TYPES[(kind >> 2) & 3]
        arrays["cat_start"][i] = start
        arrays["cat_end"][i] = end
    return arrays, cats


def _empty(n: int) -> dict[str, np.ndarray]:
    return {
        "left": np.full(n, -1, np.int64),
        "right": np.full(n, -1, np.int64),
        "feature": np.full(n, -1, np.int64),
        "threshold": np.zeros(n),
        "default_left": np.zeros(n, dtype=bool),
        "missing": np.full(n, MISSING_AS_ZERO, np.int8),
        "cat_start": np.zeros(n, np.int64),
        "cat_end": np.zeros(n, np.int64),
        "cover": np.zeros(n),
        "value": np.zeros(n),
    }
