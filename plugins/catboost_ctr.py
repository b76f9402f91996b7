"""CatBoost's CTRs (counter statistics of categories), read from a model's JSON export.

Nothing here imports catboost. Facts followed (sources: CatBoost's model JSON as written
by ``save_model(format="json")`` and its evaluator, ``catboost/libs/model/`` — facts
only, no code; checked against ``model.predict`` in ``tests/test_catboost.py``):

* ``CalcHash(a, b) = M * (a + M * b) mod 2**64`` with ``M = 0x4906ba494954cb65``;
* a CTR's *projection* is the list of its ``elements`` in the JSON's order; its key for a
  row starts at 0 and folds each element in with ``CalcHash``: a categorical column
  (``cat_feature_value``) by its 32-bit CatBoost hash read as a signed int32 and
  sign-extended to 64 bits; a binarized float column (``float_feature``) by
  ``float32(x) > border`` (0 or 1; NaN as the column's ``nan_value_treatment`` sends it);
  a one-hot condition (``cat_feature_exact_value``) by ``hash == value`` (0 or 1);
* the table (``ctr_data[identifier]``) stores ``hash_stride - 1`` counts per key
  (``hash_map``: key, counts, key, counts, ...; the all-ones key marks a free slot); a key
  missing from the table has zero counts;
* the CTR value is ``(ctr + shift) * scale`` in float32 with ``ctr`` by type: ``Borders``
  ``(good + prior_num) / (total + prior_den)`` (good: the classes above the target
  border), ``Buckets`` ``(count[target] + prior_num) / (total + prior_den)``,
  ``Counter``/``FeatureFreq`` ``(count + prior_num) / (counter_denominator + prior_den)``;
  the split is true iff that value is ``> border`` (float32).

M is odd, so ``M**2`` is invertible mod 2**64: a single-column key gives back its
category's hash (:func:`cat_hash_of_key`), which turns a single-column CTR split into a
plain categorical split. A CTR over several columns (``max_ctr_complexity > 1``) is
:class:`Combination`: a derived column the tree kernels play as a condition on all the
columns it reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shapgov.errors import UnsupportedModelError

_M = 0x4906BA494954CB65
_MASK = (1 << 64) - 1
_INV_M2 = pow(_M * _M % (1 << 64), -1, 1 << 64)
EMPTY_KEY = _MASK  # the table's free slot marker
#: CTR types whose value is read from the table's counts
CTR_TYPES = ("Borders", "Buckets", "Counter", "FeatureFreq")
#: The CombinationElement kinds a projection may hold
ELEMENT_KINDS = ("cat_feature_value", "float_feature", "cat_feature_exact_value")


def calc_hash(a: int, b: int) -> int:
    """CatBoost's ``CalcHash(a, b)`` on unsigned 64-bit integers."""
    return (_M * ((a + _M * b) & _MASK)) & _MASK


def ctr_key(cat_hash: int) -> int:
    """The CTR table key of a single-column projection of a category with this hash."""
    signed = cat_hash - (1 << 32) if cat_hash >= 1 << 31 else cat_hash
    return calc_hash(0, signed & _MASK)


def cat_hash_of_key(key: int) -> int | None:
    """The category hash a single-column CTR key was made from (``None``: not one)."""
    signed = (key * _INV_M2) & _MASK
    if signed < 1 << 31:
        return signed
    if signed >= (1 << 64) - (1 << 31):
        return signed - (1 << 64) + (1 << 32)
    return None


def check_ctr_type(ctr: dict[str, Any]) -> None:
    """:raises UnsupportedModelError: The CTR's type has no counts to read."""
    if ctr["ctr_type"] not in CTR_TYPES:
        raise UnsupportedModelError(
            f"CatBoost CTR type {ctr['ctr_type']!r} is not read by the tree explainer "
            f"(read: {list(CTR_TYPES)}); explain the model as a whole (opaque=True)"
        )


def ctr_table(model_json: dict[str, Any], ctr: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(keys (T,) uint64, counts (T, stride - 1) float64)`` of the CTR's table, free
    slots left out.

    :raises UnsupportedModelError: The model holds no table for the CTR.
    """
    table = model_json.get("ctr_data", {}).get(ctr["identifier"])
    if table is None:
        raise UnsupportedModelError(f"the CatBoost model has no table for CTR {ctr['identifier']}")
    stride = int(table["hash_stride"])
    flat = table["hash_map"]
    keys = np.array([int(k) for k in flat[0::stride]], dtype=np.uint64)
    counts = np.array(
        [[float(v) for v in flat[r * stride + 1 : (r + 1) * stride]] for r in range(len(keys))],
        dtype=np.float64,
    ).reshape(len(keys), stride - 1)
    kept = keys != np.uint64(EMPTY_KEY)
    return keys[kept], counts[kept]


def ctr_value(ctr: dict[str, Any], table: dict[str, Any], counts: np.ndarray, target: int) -> Any:
    """``(ctr + shift) * scale`` in float32 (see the module), of one table row's counts
    ``(stride - 1,)`` or of every row ``(T, stride - 1)`` at once."""
    f = np.float32
    counts = np.asarray(counts, dtype=np.float64)
    prior_num, prior_den = f(ctr["prior_numerator"]), f(ctr["prior_denomerator"])
    kind = ctr["ctr_type"]
    if kind in ("Counter", "FeatureFreq"):
        value = (counts[..., 0].astype(f) + prior_num) / (
            f(table.get("counter_denominator", 0)) + prior_den
        )
    elif kind == "Buckets":
        value = (counts[..., target].astype(f) + prior_num) / (
            counts.sum(axis=-1).astype(f) + prior_den
        )
    else:  # Borders: the counts of the classes above the target border are good
        good = counts[..., target + 1 :].sum(axis=-1).astype(f)
        value = (good + prior_num) / (counts.sum(axis=-1).astype(f) + prior_den)
    return (np.asarray(value, dtype=f) + f(ctr["shift"])) * f(ctr["scale"])


def split_outcomes(
    model_json: dict[str, Any], ctr: dict[str, Any], raw: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(keys, outcome per key, outcome of a key missing from the table)`` of one CTR
    split (``raw``: the split dict, with its ``border`` and target border index)."""
    check_ctr_type(ctr)
    keys, counts = ctr_table(model_json, ctr)
    table = model_json["ctr_data"][ctr["identifier"]]
    border = np.float32(raw["border"])
    target = int(raw.get("ctr_target_border_idx", ctr.get("target_border_idx", 0)))
    unseen = bool(ctr_value(ctr, table, np.zeros(counts.shape[1]), target) > border)
    outcomes = np.asarray(ctr_value(ctr, table, counts, target) > border, dtype=bool)
    return keys, outcomes.reshape(-1), unseen


class Combination:
    """One CTR split over a combination of columns, evaluated on rows.

    :param elements: The projection's elements as :class:`CatBoostTrees` resolved them:
        ``(kind, flat column, border or one-hot value, NaN counts as true)``.
    :param keys: The table's keys; ``outcomes`` the split's outcome for each.
    :param unseen: The outcome for a key missing from the table.
    """

    def __init__(
        self,
        elements: list[tuple[str, int, float, bool]],
        keys: np.ndarray,
        outcomes: np.ndarray,
        unseen: bool,
    ) -> None:
        self.elements = elements
        order = np.argsort(keys)
        self._keys, self._outcomes, self._unseen = keys[order], outcomes[order], unseen
        self.columns = tuple(sorted({column for _, column, _, _ in elements}))

    def keys_of(self, X: np.ndarray) -> np.ndarray:
        """The projection's key ``(n,)`` uint64 of each row of ``X`` (flat columns, the
        categorical ones as CatBoost hashes)."""
        m = np.uint64(_M)
        key = np.zeros(X.shape[0], dtype=np.uint64)
        for kind, column, arg, nan_true in self.elements:
            x = X[:, column]
            if kind == "cat_feature_value":
                b = x.astype(np.int64).astype(np.int32).astype(np.int64).astype(np.uint64)
            elif kind == "float_feature":
                with np.errstate(invalid="ignore"):
                    b = (x.astype(np.float32) > np.float32(arg)) | (np.isnan(x) & nan_true)
                b = b.astype(np.uint64)
            else:
                b = (x == arg).astype(np.uint64)
            with np.errstate(over="ignore"):
                key = m * (key + m * b)  # uint64 arithmetic wraps mod 2**64
        return key

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """The split's outcome ``(n,)`` as 0.0 (false) or 1.0 (true)."""
        key = self.keys_of(X)
        at = np.minimum(np.searchsorted(self._keys, key), max(self._keys.shape[0] - 1, 0))
        found = (self._keys[at] == key) if self._keys.shape[0] else np.zeros(key.shape, bool)
        picked = self._outcomes[at] if self._keys.shape[0] else np.zeros(key.shape, bool)
        return np.where(found, picked, self._unseen).astype(np.float64)
