"""A tree surrogate of an opaque predict function, fitted on the model rows that Kernel
SHAP's sampled coalitions already evaluated (no further model calls).

The hybrid rows ``(x_S, b_rest)`` of every explained row of a block and every sampled
coalition of one game (one background row, or a few) are pooled: ``rows x coalitions``
exact model outputs per background row, where one row's game alone has ``coalitions``. A
LightGBM model fitted on them is a tree ensemble whose interventional game's Walsh
spectrum is exact and cheap (:mod:`shapgov.explainers.kernels.tree_fourier`):
:mod:`shapgov.explainers.odd_regression` takes its strongest odd interactions as the
regression's support.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm
import numpy as np
import pandas as pd

from shapgov.explainers.lightgbm_trees import parse_booster
from shapgov.explainers.trees import TreeEnsemble

#: Most model rows a surrogate is fitted on (a uniform subsample beyond).
MAX_TRAINING_ROWS = 300_000


@dataclass(frozen=True)
class SurrogateSettings:
    """LightGBM settings of the surrogate (chosen on the tree games of
    ``benchmarks/bench_estimation.py``: with 48,000 model rows 600 trees ranked the
    interactions better than 300; with 6,000, 300 did as well). Boosting rounds grow with
    the model rows: one per ``rows_per_tree``, within ``[min_trees, max_trees]``."""

    max_trees: int = 600
    min_trees: int = 100
    rows_per_tree: int = 20
    learning_rate: float = 0.1
    num_leaves: int = 31
    min_child_samples: int = 20


class EncodedColumns:
    """The rows and background as floats a LightGBM surrogate can split on: numeric
    columns as floats (missing as NaN), other columns as category codes over the values
    the rows and background hold (missing as NaN), marked categorical."""

    def __init__(self, X, background) -> None:
        if isinstance(X, pd.DataFrame):
            pairs = [(X[c], background[c]) for c in X.columns]
        else:
            x_arr, b_arr = np.asarray(X), np.asarray(background)
            pairs = [(x_arr[:, c], b_arr[:, c]) for c in range(x_arr.shape[1])]
        x_cols, b_cols, self.categorical = [], [], []
        for c, (xc, bc) in enumerate(pairs):
            xf, bf = _as_float(xc), _as_float(bc)
            if xf is None or bf is None:
                both = pd.concat(
                    [
                        pd.Series(np.asarray(xc, dtype=object)),
                        pd.Series(np.asarray(bc, dtype=object)),
                    ],
                    ignore_index=True,
                )
                codes, _ = pd.factorize(both, use_na_sentinel=True)
                codes = np.where(codes < 0, np.nan, codes.astype(float))
                xf, bf = codes[: len(xc)], codes[len(xc) :]
                self.categorical.append(c)
            x_cols.append(xf)
            b_cols.append(bf)
        self.X = np.column_stack(x_cols)
        self.B = np.column_stack(b_cols)

    def hybrids(self, rows: np.ndarray, cols: np.ndarray, background: np.ndarray) -> np.ndarray:
        """Encoded hybrid rows: row ``rows[i]`` where ``cols[i]`` (a column mask), background
        row ``background[i]`` elsewhere, ``(len(rows), columns)``."""
        return np.where(cols, self.X[rows], self.B[background])


def _as_float(col) -> np.ndarray | None:
    series = col if isinstance(col, pd.Series) else pd.Series(col)
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=float, na_value=np.nan)
    if series.dtype == object:
        try:
            return series.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            return None
    return None


def fit_surrogate(
    encoded: EncodedColumns,
    rows: np.ndarray,
    background_rows: np.ndarray,
    column_masks: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator,
    n_jobs: int,
    settings: SurrogateSettings = SurrogateSettings(),
) -> TreeEnsemble:
    """A LightGBM surrogate of one output, fitted on model rows already evaluated (a
    uniform subsample beyond :data:`MAX_TRAINING_ROWS`), as a flat tree ensemble.

    :param rows: ``(r,)`` explained rows in ``encoded``.
    :param background_rows: ``(g,)`` background rows in ``encoded``.
    :param column_masks: ``(S, columns)`` the coalitions' per-column "from the row"
        masks, the same for every background row.
    :param target: ``(r, g, S)`` the model's outputs on those hybrid rows.
    """
    n_rows, nb, n_coal = target.shape
    total = n_rows * nb * n_coal
    pick = (
        np.arange(total)
        if total <= MAX_TRAINING_ROWS
        else rng.choice(total, MAX_TRAINING_ROWS, replace=False)
    )
    r_i, rest = np.divmod(pick, nb * n_coal)
    b_i, c_i = np.divmod(rest, n_coal)
    X = encoded.hybrids(rows[r_i], column_masks[c_i], background_rows[b_i])
    y = target[r_i, b_i, c_i]
    model = lightgbm.LGBMRegressor(
        n_estimators=int(
            np.clip(y.size // settings.rows_per_tree, settings.min_trees, settings.max_trees)
        ),
        learning_rate=settings.learning_rate,
        num_leaves=settings.num_leaves,
        min_child_samples=settings.min_child_samples,
        n_jobs=n_jobs,
        random_state=int(rng.integers(2**31 - 1)),
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    model.fit(X, y, categorical_feature=encoded.categorical or "auto")
    return parse_booster(model.booster_)
