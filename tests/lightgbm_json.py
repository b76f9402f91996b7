"""The former LightGBM parser, kept as an oracle: ``Booster.dump_model()`` (JSON) walked
node by node. ``shapgov.explainers.lightgbm_trees`` reads the model text instead; the
tests compare the two array by array."""

from __future__ import annotations

from typing import Any

import numpy as np

from shapgov.errors import UnsupportedModelError
from shapgov.explainers.lightgbm_trees import _COLUMNS as NODE_FIELDS
from shapgov.explainers.trees import (
    MISSING_AS_ZERO,
    MISSING_DEFAULT,
    ZERO_AND_MISSING_DEFAULT,
    TreeEnsemble,
)

_MISSING = {"None": MISSING_AS_ZERO, "NaN": MISSING_DEFAULT, "Zero": ZERO_AND_MISSING_DEFAULT}


def parse_booster_json(booster: Any) -> TreeEnsemble:
    """All trees of a ``lightgbm.Booster`` (raw score, init score folded into tree 0)."""
    dump = booster.dump_model()
    per_iteration = int(dump.get("num_tree_per_iteration", 1))
    nodes: dict[str, list[Any]] = {k: [] for k in NODE_FIELDS}
    cat_values: list[int] = []
    roots, outputs = [], []

    def add(node: dict[str, Any]) -> int:
        i = len(nodes["left"])
        for k in nodes:
            nodes[k].append(None)
        if "leaf_coeff" in node or "leaf_const" in node:
            raise UnsupportedModelError(
                "LightGBM linear_tree models have linear functions in their leaves, which the "
                "tree explainer does not support; explain such a model with the Kernel explainer"
            )
        if "split_index" not in node:
            fill(
                i,
                -1,
                -1,
                -1,
                0.0,
                False,
                MISSING_AS_ZERO,
                0,
                0,
                float(node.get("leaf_count", 0)),
                float(node["leaf_value"]),
            )
            return i
        start = end = len(cat_values)
        threshold = 0.0
        if node["decision_type"] == "==":
            cats = [int(c) for c in str(node["threshold"]).split("||")]
            cat_values.extend(cats)
            end = len(cat_values)
        elif node["decision_type"] == "<=":
            threshold = float(node["threshold"])
        else:
            raise UnsupportedModelError(
                f"LightGBM split type {node['decision_type']!r} is not supported"
            )
        fill(
            i,
            0,
            0,
            int(node["split_feature"]),
            threshold,
            bool(node["default_left"]),
            MISSING_AS_ZERO if end > start else _MISSING[node["missing_type"]],
            start,
            end,
            float(node["internal_count"]),
            0.0,
        )
        nodes["left"][i] = add(node["left_child"])
        nodes["right"][i] = add(node["right_child"])
        return i

    def fill(i: int, *vals: Any) -> None:
        for k, v in zip(nodes, vals, strict=True):
            nodes[k][i] = v

    for t, tree in enumerate(dump["tree_info"]):
        roots.append(add(tree["tree_structure"]))
        outputs.append(t % per_iteration)
    # Single-leaf trees have no count; give them one so cover shares stay defined.
    cover = np.asarray(nodes["cover"], dtype=float)
    for r in roots:
        if nodes["left"][r] == -1 and cover[r] == 0:
            cover[r] = 1.0
    return TreeEnsemble(
        left=np.asarray(nodes["left"], dtype=np.int64),
        right=np.asarray(nodes["right"], dtype=np.int64),
        feature=np.asarray(nodes["feature"], dtype=np.int64),
        threshold=np.asarray(nodes["threshold"], dtype=float),
        default_left=np.asarray(nodes["default_left"], dtype=bool),
        missing=np.asarray(nodes["missing"], dtype=np.int8),
        cat_start=np.asarray(nodes["cat_start"], dtype=np.int64),
        cat_end=np.asarray(nodes["cat_end"], dtype=np.int64),
        cat_values=np.asarray(cat_values, dtype=np.int64),
        cover=cover,
        value=np.asarray(nodes["value"], dtype=float)[:, None],
        roots=np.asarray(roots, dtype=np.int64),
        tree_output=np.asarray(outputs, dtype=np.int64),
        base_offset=np.zeros(per_iteration),
        n_features=int(dump["max_feature_idx"]) + 1,
        n_outputs=per_iteration,
    )
