"""One flat representation of tree ensembles, whatever library grew them.

All trees of an ensemble live in shared node arrays; ``roots[t]`` is tree t's root and
child indices are global. A node is a leaf when ``left[i] == -1``. Routing of a value x
at split node i:

* categorical split (``cat_start[i] < cat_end[i]``): left iff x is a non-negative integer
  listed in ``cat_values[cat_start[i]:cat_end[i]]``; other categories go right, and NaN
  follows ``default_left[i]`` when ``missing[i] == 1``, else goes right;
* numerical split: left iff ``x <= threshold[i]``, after missing handling by
  ``missing[i]``: 0 = NaN is read as 0.0 (LightGBM ``None``), 1 = NaN follows
  ``default_left[i]``, 2 = NaN and zero follow ``default_left[i]`` (LightGBM ``Zero``).

``value[i]`` holds V outputs; tree t adds them to outputs ``tree_output[t]`` to
``tree_output[t] + V - 1``. ``cover[i]`` is the training weight reaching node i.

A split may also read a *derived column* ``n_features + d`` (:class:`DerivedColumns`): a
value computed from several input columns at once (a CatBoost CTR over a combination of
columns). Only kernels that play such a split as a condition on all the columns it reads
accept them (``validate(derived=True)``); every other kernel refuses the ensemble.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from shapgov.errors import InputError, UnsupportedModelError

MISSING_AS_ZERO, MISSING_DEFAULT, ZERO_AND_MISSING_DEFAULT = 0, 1, 2
ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold


@dataclass(frozen=True)
class DerivedColumns:
    """Split features computed from several input columns at once.

    ``reads[d]`` lists the input columns derived column d reads (it is known in a
    coalition only when all of them are); ``compute(X)`` maps rows ``(n, n_features)``
    (as the trees compare them) to ``(n, len(reads))`` float64 values; ``what`` names
    them and ``instead`` says how to avoid them, for the errors of kernels that cannot
    read them.
    """

    reads: tuple[tuple[int, ...], ...]
    compute: Callable[[np.ndarray], np.ndarray]
    what: str
    instead: str


@dataclass(frozen=True)
class ObliviousLevels:
    """The same trees as symmetric (oblivious) ones, level by level, for kernels that
    use the symmetry (CatBoost's default trees): every node at level j of tree t splits
    alike, and bit j of a leaf's index is that split's outcome (1: the "true" side).

    ``node[t, j]`` is one flat node splitting at that level (-1 beyond ``depth[t]``) and
    ``left_is_true[t, j]`` whether its left child is the true side; ``leaf_value``
    ``(T, 2**D, V)`` and ``leaf_weight`` ``(T, 2**D)`` (training weight, may be 0) are
    indexed by the leaf index (zero beyond ``2**depth[t]``).
    """

    node: np.ndarray  # int64 (T, D)
    left_is_true: np.ndarray  # bool (T, D)
    depth: np.ndarray  # int64 (T,)
    leaf_value: np.ndarray  # float64 (T, 2**D, V)
    leaf_weight: np.ndarray  # float64 (T, 2**D)


@dataclass(frozen=True)
class TreeEnsemble:
    """A tree ensemble in the flat node arrays the kernels walk (the module
    ``shapgov.explainers.trees`` states the layout and routing rules): what the
    ``shapgov_tree_ensemble`` hook returns for a model whose trees a plugin can read.

    ``n_features`` is the number of input columns, ``n_outputs`` the number of outputs
    (K), and ``base_offset`` ``(K,)`` is added to every prediction.
    """

    left: np.ndarray  # int64 (nodes,)
    right: np.ndarray  # int64
    feature: np.ndarray  # int64, -1 at leaves
    threshold: np.ndarray  # float64
    default_left: np.ndarray  # bool
    missing: np.ndarray  # int8, see module docstring
    cat_start: np.ndarray  # int64
    cat_end: np.ndarray  # int64
    cat_values: np.ndarray  # int64
    cover: np.ndarray  # float64
    value: np.ndarray  # float64 (nodes, V)
    roots: np.ndarray  # int64 (trees,)
    tree_output: np.ndarray  # int64 (trees,)
    base_offset: np.ndarray  # float64 (K,), added to every prediction
    n_features: int
    n_outputs: int
    #: scikit-learn trees compare float32 inputs: round X the same way first.
    float32_inputs: bool = False
    #: Split features read from several input columns (see the module doc), or None.
    derived: DerivedColumns | None = None
    #: The trees level by level where all are symmetric (oblivious), or None.
    oblivious: ObliviousLevels | None = None

    def structure(self) -> tuple[np.ndarray, ...]:
        """Children, split features and routing arrays, in the order the kernels take them
        (splatted: numba kernels get the arrays one by one, which keeps them fast)."""
        return (self.left, self.right, self.feature, *self.routing())

    def routing(self) -> tuple[np.ndarray, ...]:
        """The arrays ``shapgov.explainers.kernels.routing.goes_left`` reads after the
        node index (threshold to categories), splatted in that order."""
        return (
            self.threshold,
            self.default_left,
            self.missing,
            self.cat_start,
            self.cat_end,
            self.cat_values,
        )

    @property
    def n_trees(self) -> int:
        """The number of trees (of ``roots``)."""
        return int(self.roots.shape[0])

    @cached_property
    def max_depth(self) -> int:
        depth = np.zeros(self.left.shape[0], dtype=np.int64)
        best = 0
        for root in self.roots:
            stack = [int(root)]
            while stack:
                i = stack.pop()
                if self.left[i] >= 0:
                    for c in (self.left[i], self.right[i]):
                        depth[c] = depth[i] + 1
                        stack.append(int(c))
                else:
                    best = max(best, int(depth[i]))
        return best

    @property
    def n_split_columns(self) -> int:
        """Input columns plus derived columns: the range of ``feature`` at splits."""
        return self.n_features + (len(self.derived.reads) if self.derived else 0)

    def split_inputs(self, X: np.ndarray) -> np.ndarray:
        """``X`` (checked, ``(n, n_features)``) with the derived columns appended,
        ``(n, n_split_columns)``: what ``feature`` indexes."""
        if self.derived is None:
            return X
        extra = np.asarray(self.derived.compute(X), dtype=np.float64)
        if extra.shape != (X.shape[0], len(self.derived.reads)):
            raise UnsupportedModelError(
                f"derived columns came back with shape {extra.shape}, expected "
                f"{(X.shape[0], len(self.derived.reads))}: the parser is broken"
            )
        return np.ascontiguousarray(np.hstack([X, extra]))

    def validate(self, *, derived: bool = False) -> TreeEnsemble:
        """Check shapes and structure; raise a typed error naming the problem.

        :param derived: The caller plays splits on derived columns as conditions on all
            the columns they read; otherwise an ensemble with derived columns is refused.
        :raises UnsupportedModelError: The arrays are inconsistent, or the ensemble has
            derived columns and ``derived`` is false.
        """
        if self.derived is not None and not derived:
            raise UnsupportedModelError(
                f"this model splits on {self.derived.what}, which read several columns at "
                "once; that computation reads one column per split. The path-dependent "
                "game (feature_perturbation='tree_path_dependent') plays them exactly; "
                f"otherwise {self.derived.instead}"
            )
        n = self.left.shape[0]
        arrays = (
            self.right,
            self.feature,
            self.threshold,
            self.default_left,
            self.missing,
            self.cat_start,
            self.cat_end,
            self.cover,
        )
        if any(a.shape != (n,) for a in arrays) or self.value.shape[0] != n:
            raise UnsupportedModelError("tree arrays disagree in length: the parser is broken")
        split = self.left >= 0
        if (self.feature[split] < 0).any() or (self.feature[split] >= self.n_split_columns).any():
            raise UnsupportedModelError("a split uses a feature outside the model's inputs")
        if (self.cover[split] <= 0).any():
            raise UnsupportedModelError(
                "a split node has zero cover; path-dependent TreeSHAP needs node counts "
                "(retrain with the counts kept, or use interventional TreeSHAP)"
            )
        if (self.tree_output + self.value.shape[1] > self.n_outputs).any():
            raise UnsupportedModelError("a tree writes past the model's outputs")
        return self

    def check_input(self, X: np.ndarray) -> np.ndarray:
        """``X`` as the kernels take it: a writable C-contiguous float64 ``(n, n_features)``
        array (one compiled kernel for every caller), rounded through float32 first where
        the model compares float32 inputs.

        :raises InputError: ``X`` does not have ``n_features`` columns.
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        if not X.flags.writeable:  # a read-only view (of pandas' data): numba would compile
            X = X.copy()  # every kernel again for it, seconds each
        if self.float32_inputs:
            X = X.astype(np.float32).astype(np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise InputError(
                f"the tree model takes {self.n_features} columns, got data of shape {X.shape}; "
                "pass the columns the model was trained on"
            )
        return X

    def expected_value(self) -> np.ndarray:
        """Cover-weighted mean output: the path-dependent base value, ``(K,)``."""
        out = self.base_offset.astype(float).copy()
        sizes = np.diff(np.append(self.roots, self.left.shape[0]))
        tree_of = np.repeat(np.arange(self.n_trees), sizes)
        leaves = np.flatnonzero(self.left < 0)
        trees = tree_of[leaves]
        share = self.cover[leaves] / self.cover[self.roots[trees]]
        v = self.value.shape[1]
        for k in range(v):  # tree t adds value[:, k] to output tree_output[t] + k
            np.add.at(out, self.tree_output[trees] + k, share * self.value[leaves, k])
        return out


def concatenate(
    parts: Sequence[TreeEnsemble], *, base_offset: np.ndarray, n_outputs: int
) -> TreeEnsemble:
    """Join ensembles (e.g. one per tree of a forest) into one; node indices are shifted.

    :raises UnsupportedModelError: A part has derived columns (joining would renumber them).
    """
    if any(p.derived is not None for p in parts):
        raise UnsupportedModelError("ensembles with derived columns are not joined")
    shift = np.cumsum([0] + [p.left.shape[0] for p in parts[:-1]])
    cat_shift = np.cumsum([0] + [p.cat_values.shape[0] for p in parts[:-1]])

    def moved(a: np.ndarray, by: int) -> np.ndarray:
        return np.where(a >= 0, a + by, a)

    return TreeEnsemble(
        left=np.concatenate([moved(p.left, s) for p, s in zip(parts, shift, strict=True)]),
        right=np.concatenate([moved(p.right, s) for p, s in zip(parts, shift, strict=True)]),
        feature=np.concatenate([p.feature for p in parts]),
        threshold=np.concatenate([p.threshold for p in parts]),
        default_left=np.concatenate([p.default_left for p in parts]),
        missing=np.concatenate([p.missing for p in parts]),
        cat_start=np.concatenate([p.cat_start + c for p, c in zip(parts, cat_shift, strict=True)]),
        cat_end=np.concatenate([p.cat_end + c for p, c in zip(parts, cat_shift, strict=True)]),
        cat_values=np.concatenate([p.cat_values for p in parts]),
        cover=np.concatenate([p.cover for p in parts]),
        value=np.concatenate([p.value for p in parts]),
        roots=np.concatenate([p.roots + s for p, s in zip(parts, shift, strict=True)]),
        tree_output=np.concatenate([p.tree_output for p in parts]),
        base_offset=np.asarray(base_offset, dtype=float),
        n_features=parts[0].n_features,
        n_outputs=n_outputs,
        float32_inputs=any(p.float32_inputs for p in parts),
    )
