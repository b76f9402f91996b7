"""CatBoost models read from their JSON export into :class:`~shapgov.explainers.trees.TreeEnsemble`.

Nothing here imports catboost: the caller hands over the parsed JSON
(``model.save_model(path, format="json")``). What is read, and how it maps onto the
flat trees (sources: CatBoost's model JSON as written by ``save_model(format="json")``,
and its evaluator, ``catboost/libs/model/`` — facts only, no code):

* **oblivious trees** (``grow_policy="SymmetricTree"``, the default): every level splits
  on one binary feature, and bit k of a leaf's index is split k's outcome (1: the right,
  "true" side). A tree of depth D becomes a full binary tree of ``2**D`` leaves whose
  node covers are sums of ``leaf_weights``; a subtree no training row reached (cover 0)
  whose leaves all hold one value becomes that leaf (exact for any row);
* **non-symmetric trees** (``Depthwise``, ``Lossguide``): nested ``split``/``left``/
  ``right`` nodes, leaves with ``value`` and ``weight``;
* **float splits**: true iff ``float32(x) > border``. The kernels compare float64 with
  ``x <= threshold``: the threshold is the largest float64 that rounds (to nearest, ties
  to even) to a float32 ``<= border`` — exact for every input. NaN goes where the
  column's ``nan_value_treatment`` sends it: ``AsTrue`` (``nan_mode="Max"``) to the true
  side, ``AsFalse`` (``"Min"``) and ``AsIs`` to the false side;
* **one-hot splits** (``OneHotFeature``): true iff the category's CatBoost hash equals
  the split's ``value``;
* **CTR splits** (``OnlineCtr``, read as :mod:`shapgov_plugins.catboost_ctr` states)
  over one categorical column become categorical splits on hashes: the categories whose
  outcome differs from an unseen category's are listed;
* **combination CTRs** (a projection over several columns, ``max_ctr_complexity > 1``)
  become derived columns (:class:`~shapgov.explainers.trees.DerivedColumns`: the split's
  outcome, computed from every column the projection reads), which the path-dependent
  kernel plays as a condition known only when all those columns are; kernels that read
  one column per split refuse them, naming ``max_ctr_complexity=1``;
* ``scale_and_bias``: the raw output is ``scale * sum(leaf values) + bias``; leaf values
  are scaled, the bias becomes ``base_offset``. Multi-dimensional models (MultiClass)
  store ``K`` values per leaf, leaf-major.

Categorical inputs reach the kernels as their CatBoost hashes (32-bit, exact in
float64): :mod:`shapgov_plugins.catboost_trees` computes them with CatBoost's own
hashing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from shapgov.errors import UnsupportedModelError
from shapgov.explainers.trees import (
    MISSING_DEFAULT,
    DerivedColumns,
    ObliviousLevels,
    TreeEnsemble,
)
from shapgov_plugins.catboost_ctr import Combination, cat_hash_of_key, split_outcomes
from shapgov_plugins.catboost_oblivious import expand_oblivious

COMBINATION_WHAT = "CatBoost CTRs over combinations of columns (max_ctr_complexity > 1)"
COMBINATION_HINT = (
    "retrain with max_ctr_complexity=1, or explain the model as a whole (opaque=True, the "
    "Kernel explainer)"
)


def float32_threshold(border: float) -> float:
    """The largest float64 ``t`` with ``float32(t) <= float32(border)`` (see module doc)."""
    b = np.float32(border)
    if np.isinf(b):
        return float(b) if b > 0 else -np.inf
    if b == np.finfo(np.float32).max:  # every finite float64 below 2**128 rounds to <= it
        return float(np.nextafter(2.0**128 - 2.0**103, -np.inf))
    up = np.nextafter(b, np.float32(np.inf))
    mid = (float(b) + float(up)) / 2.0  # exact in float64
    even = (int(b.view(np.uint32)) & 1) == 0
    # a tie rounds to the even one of the two float32s
    return mid if even else float(np.nextafter(mid, -np.inf))


@dataclass(frozen=True)
class Split:
    """One binary feature of the model, as the kernels route it."""

    column: int  # the input column it reads
    threshold: float  # numerical: left iff x <= threshold (after NaN handling)
    nan_true: bool  # numerical: NaN takes the true (right) side
    categories: tuple[int, ...] | None  # categorical: hashes whose outcome is `listed_true`
    listed_true: bool  # categorical: the listed hashes' outcome (the others' is the opposite)


class CatBoostTrees:
    """The binary features and trees of one CatBoost model JSON.

    :param model_json: ``json.load`` of ``save_model(path, format="json")``.
    :raises UnsupportedModelError: The model holds something the tree explainer cannot
        read (a CTR type without counts, text or embedding features).
    """

    def __init__(self, model_json: dict[str, Any]) -> None:
        self.json = model_json
        info = model_json.get("features_info", {})
        if info.get("text_features") or info.get("embedding_features"):
            raise UnsupportedModelError(
                "CatBoost text and embedding features cannot be read from the model's JSON "
                "export; explain the model as a whole (opaque=True, the Kernel explainer)"
            )
        self.float_features = {f["feature_index"]: f for f in info.get("float_features", [])}
        self.cat_features = {f["feature_index"]: f for f in info.get("categorical_features", [])}
        self.ctrs = info.get("ctrs", [])
        flats = [
            f["flat_feature_index"]
            for f in (*self.float_features.values(), *self.cat_features.values())
        ]
        self.n_features = max(flats) + 1 if flats else 0
        self.categorical_columns = sorted(
            f["flat_feature_index"] for f in self.cat_features.values()
        )
        n_float = sum(len(f.get("borders", [])) for f in self.float_features.values())
        n_onehot = sum(len(f.get("values", [])) for f in self.cat_features.values())
        self._ctr_of_index: dict[int, tuple[dict[str, Any], float]] = {}
        i = n_float + n_onehot
        for ctr in self.ctrs:
            for border in ctr.get("borders", []):
                self._ctr_of_index[i] = (ctr, border)
                i += 1
        self._cache: dict[Any, Split] = {}
        self.combinations: list[Combination] = []  # derived column d: combinations[d]

    # -- binary features -------------------------------------------------------------
    def split(self, raw: dict[str, Any]) -> Split:
        """The routing of one split dict of the JSON (cached by its content)."""
        # a binary feature's index names it within the model; others by their content
        key = (
            f"{raw.get('split_type')} {raw['split_index']}"
            if "split_index" in raw
            else (json.dumps(raw, sort_keys=True))
        )
        if key not in self._cache:
            self._cache[key] = self._read_split(raw)
        return self._cache[key]

    def _read_split(self, raw: dict[str, Any]) -> Split:
        kind = raw.get("split_type")
        if kind == "FloatFeature":
            feat = self.float_features[raw["float_feature_index"]]
            return Split(
                column=int(feat["flat_feature_index"]),
                threshold=float32_threshold(raw["border"]),
                nan_true=feat.get("nan_value_treatment") == "AsTrue",
                categories=None,
                listed_true=False,
            )
        if kind == "OneHotFeature":
            feat = self.cat_features[raw["cat_feature_index"]]
            return Split(
                column=int(feat["flat_feature_index"]),
                threshold=0.0,
                nan_true=False,
                categories=(int(raw["value"]) & 0xFFFFFFFF,),  # stored as int32
                listed_true=True,
            )
        if kind == "OnlineCtr":
            return self._ctr_split(raw)
        raise UnsupportedModelError(
            f"CatBoost split type {kind!r} is not read by the tree explainer; explain the "
            "model as a whole (opaque=True, the Kernel explainer)"
        )

    def _ctr_split(self, raw: dict[str, Any]) -> Split:
        found = self._ctr_of_index.get(int(raw["split_index"]))
        if found is None or not np.isclose(found[1], raw["border"], rtol=0, atol=0):
            raise UnsupportedModelError(
                f"CatBoost CTR split {raw} does not match the model's CTR borders; the JSON "
                "layout is not one the tree explainer reads"
            )
        ctr = found[0]
        keys, outcomes, unseen = split_outcomes(self.json, ctr, raw)
        elements = ctr["elements"]
        if len(elements) != 1 or elements[0].get("combination_element") != "cat_feature_value":
            return self._combination_split(elements, keys, outcomes, unseen)
        column = int(self.cat_features[elements[0]["cat_feature_index"]]["flat_feature_index"])
        listed = []
        for key, outcome in zip(keys, outcomes, strict=True):
            h = cat_hash_of_key(int(key))
            if h is None:
                raise UnsupportedModelError(
                    f"CTR table key {key} of {ctr['identifier']} is not a single category's"
                )
            if outcome != unseen:
                listed.append(h)
        return Split(
            column=column,
            threshold=0.0,
            nan_true=False,
            categories=tuple(sorted(listed)),
            listed_true=not unseen,
        )

    def _combination_split(
        self, elements: list[dict[str, Any]], keys: np.ndarray, outcomes: np.ndarray, unseen: bool
    ) -> Split:
        """A derived column holding the split's outcome (1.0: true), split at 0.5."""
        resolved: list[tuple[str, int, float, bool]] = []
        for e in elements:
            kind = e.get("combination_element")
            if kind == "float_feature":
                feat = self.float_features[e["float_feature_index"]]
                nan_true = feat.get("nan_value_treatment") == "AsTrue"
                resolved.append((kind, int(feat["flat_feature_index"]), e["border"], nan_true))
            elif kind in ("cat_feature_value", "cat_feature_exact_value"):
                feat = self.cat_features[e["cat_feature_index"]]
                value = float(int(e.get("value", 0)) & 0xFFFFFFFF)  # stored as int32
                resolved.append((kind, int(feat["flat_feature_index"]), value, False))
            else:
                raise UnsupportedModelError(
                    f"CatBoost CTR element {kind!r} is not read by the tree explainer; "
                    f"{COMBINATION_HINT}"
                )
        self.combinations.append(Combination(resolved, keys, outcomes, unseen))
        return Split(
            column=self.n_features + len(self.combinations) - 1,
            threshold=0.5,
            nan_true=False,
            categories=None,
            listed_true=False,
        )

    # -- trees -----------------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        """K: the raw output's width (MultiClass: the number of classes)."""
        bias = self.json.get("scale_and_bias", [1, [0]])[1]
        return max(1, len(bias) if isinstance(bias, list) else 1)

    def ensemble(self, *, n_trees: int | None = None) -> TreeEnsemble:
        """All trees (or the first ``n_trees``) as one flat ensemble.

        :raises UnsupportedModelError: See the class.
        """
        scale, bias = self.json.get("scale_and_bias", [1, [0]])
        bias = np.broadcast_to(np.asarray(bias, dtype=float).ravel(), (self.n_outputs,))
        if "oblivious_trees" in self.json:
            trees = self.json["oblivious_trees"][:n_trees]
            if not trees:
                raise UnsupportedModelError("the CatBoost model has no trees; fit it first")
            return self._oblivious(trees, float(scale), bias.copy())
        builder = _Builder(self, float(scale), self.n_outputs)
        for tree in self.json.get("trees", [])[:n_trees]:
            builder.root(tree)
        if not builder.roots:
            raise UnsupportedModelError("the CatBoost model has no trees; fit it first")
        return builder.finish(bias.copy(), self.n_features, self._derived())

    def _oblivious(
        self, trees: list[dict[str, Any]], scale: float, bias: np.ndarray
    ) -> TreeEnsemble:
        """Symmetric trees, expanded in numba (:mod:`shapgov_plugins.catboost_oblivious`),
        with their level layout for the kernels that use the symmetry."""
        k = self.n_outputs
        depth = np.array([len(t["splits"]) for t in trees], dtype=np.int64)
        d = int(depth.max())
        ids: dict[Any, int] = {}
        table: list[Split] = []
        level_split = np.zeros((len(trees), d), dtype=np.int64)
        values = np.zeros((len(trees), 1 << d, k))
        weights = np.zeros((len(trees), 1 << d))
        for t, tree in enumerate(trees):
            for j, raw in enumerate(tree["splits"]):
                key = id(self.split(raw))  # one Split object per binary feature (cached)
                if key not in ids:
                    ids[key] = len(table)
                    table.append(self.split(raw))
                level_split[t, j] = ids[key]
            n_leaves = 1 << len(tree["splits"])
            values[t, :n_leaves] = np.asarray(tree["leaf_values"], dtype=float).reshape(n_leaves, k)
            weights[t, :n_leaves] = tree.get("leaf_weights", np.ones(n_leaves))
        values *= scale
        cats: list[int] = []
        columns = {"column": [], "threshold": [], "default_left": [], "cat_start": [],
                   "cat_end": [], "left_true": []}  # fmt: skip
        for split in table:
            threshold, default_left, listed, left_true = node_routing(split)
            columns["column"].append(split.column)
            columns["threshold"].append(threshold)
            columns["default_left"].append(default_left)
            columns["cat_start"].append(len(cats))
            cats.extend(listed or ())
            columns["cat_end"].append(len(cats))
            columns["left_true"].append(left_true)
        flat = expand_oblivious(
            depth, level_split, values, weights, {c: np.asarray(v) for c, v in columns.items()}
        )
        levels = None
        beyond = np.arange(d)[None, :] >= depth[:, None]
        if ((flat["level_node"] >= 0) | beyond).all():  # every level kept a node
            levels = ObliviousLevels(
                flat["level_node"], flat["level_left_true"], depth, values, weights
            )
        n = flat["left"].shape[0]
        return TreeEnsemble(
            left=flat["left"],
            right=flat["right"],
            feature=flat["feature"],
            threshold=flat["threshold"],
            default_left=flat["default_left"],
            missing=np.full(n, MISSING_DEFAULT, dtype=np.int8),
            cat_start=flat["cat_start"],
            cat_end=flat["cat_end"],
            cat_values=np.asarray(cats, dtype=np.int64),
            cover=flat["cover"],
            value=flat["value"],
            roots=flat["roots"],
            tree_output=np.zeros(len(trees), dtype=np.int64),
            base_offset=bias,
            n_features=self.n_features,
            n_outputs=k,
            derived=self._derived(),
            oblivious=levels,
        ).validate(derived=True)

    def _derived(self) -> DerivedColumns | None:
        """The combination CTR splits met so far, as derived columns."""
        combos = list(self.combinations)
        if not combos:
            return None

        def compute(X: np.ndarray) -> np.ndarray:
            return np.column_stack([c(X) for c in combos])

        return DerivedColumns(
            reads=tuple(c.columns for c in combos),
            compute=compute,
            what=COMBINATION_WHAT,
            instead=COMBINATION_HINT,
        )


def node_routing(s: Split) -> tuple[float, bool, tuple[int, ...] | None, bool]:
    """``(threshold, default_left, listed categories, left child is the true side)`` of
    a node splitting as ``s`` (the routing rules of :mod:`shapgov.explainers.trees`)."""
    if s.categories is None:  # numerical: the false side is x <= threshold
        return s.threshold, not s.nan_true, None, False
    if not s.categories:  # every category routes as an unseen one: all go left
        return np.inf, True, None, not s.listed_true
    return 0.0, False, s.categories, s.listed_true  # listed categories go left


class _Builder:
    """Flat node arrays of non-symmetric trees, filled tree by tree."""

    def __init__(self, model: CatBoostTrees, scale: float, k: int) -> None:
        self.model, self.scale, self.k = model, scale, k
        self.nodes: list[dict[str, Any]] = []
        self.cat_values: list[int] = []
        self.roots: list[int] = []

    def _new(self) -> int:
        self.nodes.append({})
        return len(self.nodes) - 1

    def _leaf(self, i: int, value: Any, cover: float) -> None:
        v = np.asarray(value, dtype=float).ravel() * self.scale
        self.nodes[i] = {"leaf": True, "value": v, "cover": float(cover)}

    def _split(
        self, i: int, raw: dict[str, Any], true_child: int, false_child: int, cover: float
    ) -> None:
        split = self.model.split(raw)
        threshold, default_left, cats, left_true = node_routing(split)
        self.nodes[i] = {
            "leaf": False,
            "column": split.column,
            "cover": float(cover),
            "threshold": threshold,
            "default_left": default_left,
            "cats": cats,
            "left": true_child if left_true else false_child,
            "right": false_child if left_true else true_child,
        }

    def root(self, tree: dict[str, Any]) -> None:
        root = self._new()
        self.roots.append(root)
        stack = [(root, tree)]
        while stack:
            i, node = stack.pop()
            if "split" not in node:
                self._leaf(i, node["value"], node.get("weight", 1.0))
                continue
            f, t = self._new(), self._new()
            self._split(i, node["split"], true_child=t, false_child=f, cover=0.0)
            stack.append((f, node["left"]))
            stack.append((t, node["right"]))

    def finish(
        self, bias: np.ndarray, n_features: int, derived: DerivedColumns | None
    ) -> TreeEnsemble:
        n = len(self.nodes)
        self._fill_covers()
        left = np.full(n, -1, dtype=np.int64)
        right = np.full(n, -1, dtype=np.int64)
        feature = np.full(n, -1, dtype=np.int64)
        threshold = np.zeros(n)
        default_left = np.zeros(n, dtype=bool)
        cat_start = np.zeros(n, dtype=np.int64)
        cat_end = np.zeros(n, dtype=np.int64)
        cover = np.zeros(n)
        value = np.zeros((n, self.k))
        cats: list[int] = []
        for i, node in enumerate(self.nodes):
            cover[i] = node["cover"]
            if node["leaf"]:
                value[i] = node["value"]
                continue
            left[i], right[i], feature[i] = node["left"], node["right"], node["column"]
            threshold[i], default_left[i] = node["threshold"], node["default_left"]
            if node["cats"]:
                cat_start[i] = len(cats)
                cats.extend(node["cats"])
                cat_end[i] = len(cats)
        return TreeEnsemble(
            left=left,
            right=right,
            feature=feature,
            threshold=threshold,
            default_left=default_left,
            missing=np.full(n, MISSING_DEFAULT, dtype=np.int8),
            cat_start=cat_start,
            cat_end=cat_end,
            cat_values=np.asarray(cats, dtype=np.int64),
            cover=cover,
            value=value,
            roots=np.asarray(self.roots, dtype=np.int64),
            tree_output=np.zeros(len(self.roots), dtype=np.int64),
            base_offset=bias,
            n_features=n_features,
            n_outputs=self.k,
            derived=derived,
        ).validate(derived=True)

    def _fill_covers(self) -> None:
        """Non-symmetric trees: a split's cover is the sum of its leaves' weights."""

        def total(i: int) -> float:
            node = self.nodes[i]
            if node["leaf"]:
                return node["cover"]
            node["cover"] = total(node["left"]) + total(node["right"])
            if node["cover"] == 0:  # no training row came here: one value, or refuse
                values = leaf_values(i)
                if any((v != values[0]).any() for v in values):
                    raise UnsupportedModelError(
                        "a CatBoost tree has a split no training row reached whose leaves "
                        "differ; path-dependent TreeSHAP needs those counts: explain it "
                        "with feature_perturbation='interventional'"
                    )
                self.nodes[i] = {"leaf": True, "value": values[0], "cover": 0.0}
            return node["cover"]

        def leaf_values(i: int) -> list[np.ndarray]:
            node = self.nodes[i]
            if node["leaf"]:
                return [node["value"]]
            return leaf_values(node["left"]) + leaf_values(node["right"])

        for r in self.roots:
            total(r)
