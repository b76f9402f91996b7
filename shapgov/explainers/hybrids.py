"""The hybrid rows ``(x_S, b_rest)`` of the interventional game, built for a predict
function, and the model calls over them (batched, in threads).

Every model-agnostic explainer's game is ``v(S) = sum_b w_b f(x_S, b_rest)``: the row's
values on the coalition's columns, a background row's elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from shapgov.errors import ColumnMismatchError, InputError, ModelOutputError
from shapgov.opaque import checked_predictions


class Hybrids:
    """Builds the rows ``(x_S, b_rest)`` for many rows, coalitions and background rows.

    Works on float arrays (fast path) or DataFrames of any column types (each column
    keeps its dtype). ``player[c]`` is the player of input column c; -1 marks a column
    that is taken from the row in every coalition.
    """

    def __init__(
        self,
        X: Any,
        background: Any,
        player: np.ndarray,
        *,
        dedupe: bool = True,
        weights: np.ndarray | None = None,
    ) -> None:
        self.dedupe = dedupe
        nb = len(background)
        #: Background row weights, summing to one.
        self.weights = np.full(nb, 1.0 / nb) if weights is None else np.asarray(weights)
        self.frame = isinstance(X, pd.DataFrame)
        if self.frame:
            self.columns = list(X.columns)
            self.dtypes = X.dtypes
            self.x_cols = [X[c].to_numpy() for c in self.columns]
            self.b_cols = [c.to_numpy() for c in _background_columns(X, background)]
        else:
            self.X = np.asarray(X)
            self.B = np.asarray(background)
            if self.B.ndim != 2 or self.B.shape[1] != self.X.shape[1]:
                raise ColumnMismatchError(
                    f"background has shape {self.B.shape}, X has {self.X.shape[1]} columns: "
                    "pass background rows with X's columns"
                )
        self.player = np.asarray(player, dtype=np.int64)
        self.n_background = len(background)

    def agreement(self, row: int) -> np.ndarray:
        """``(b, P)``: whether background row b holds row ``row``'s value for every column
        of player p (NaN equals NaN). Such a player cannot change that b's hybrids."""
        n_players = int(self.player.max(initial=-1)) + 1
        if not self.dedupe:
            return np.zeros((self.n_background, n_players), dtype=bool)
        same = np.ones((self.n_background, n_players), dtype=bool)
        for c, p in enumerate(self.player):
            if p < 0:
                continue
            if self.frame:
                x, b = self.x_cols[c][row], self.b_cols[c]
            else:
                x, b = self.X[row, c], self.B[:, c]
            same[:, p] &= _same_values(b, x)
        return same

    def build_one(self, row: int, cols: np.ndarray, background_rows: np.ndarray) -> Any:
        """Hybrids of one row with some background rows: coalitions × those rows."""
        s, nb = cols.shape[0], background_rows.shape[0]
        if not self.frame:
            h = np.where(
                cols[:, None, :], self.X[row][None, None, :], self.B[background_rows][None]
            )
            return h.reshape(s * nb, -1)
        data = {}
        for c, name in enumerate(self.columns):
            xc = self.x_cols[c][row]
            bc = self.b_cols[c][background_rows][None, :]
            data[name] = np.where(cols[:, None, c], xc, bc).reshape(-1)
        return self._typed(pd.DataFrame(data))

    def _typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        for name, dtype in self.dtypes.items():
            if frame[name].dtype != dtype:
                frame[name] = frame[name].astype(dtype)
        return frame

    def column_masks(self, masks: np.ndarray) -> np.ndarray:
        """Coalition masks ``(S, P)`` → per-column "take from the row" masks ``(S, m)``."""
        out = np.ones((masks.shape[0], self.player.shape[0]), dtype=bool)
        on = self.player >= 0
        out[:, on] = masks[:, self.player[on]].astype(bool)
        return out


def _background_columns(X: pd.DataFrame, background: Any) -> list[pd.Series]:
    """The background's columns in X's order, each cast to X's dtype (so hybrid rows keep
    the dtypes the model was given); a clear error where that cannot be done."""
    if not isinstance(background, pd.DataFrame):
        raise ColumnMismatchError(
            f"X is a DataFrame but background is a {type(background).__name__}: pass the "
            "background as a DataFrame with X's columns"
        )
    missing = [c for c in X.columns if c not in background.columns]
    if missing:
        raise ColumnMismatchError(
            f"background lacks X's columns {missing[:5]}: pass background rows with X's columns"
        )
    out = []
    for c in X.columns:
        col, dtype = background[c], X[c].dtype
        try:
            out.append(col if col.dtype == dtype else col.astype(dtype))
        except (TypeError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(
                f"background column {c!r} ({col.dtype}) cannot take X's dtype {dtype}: "
                f"{first}; give the background the same column types as X"
            ) from None
    return out


def _same_values(b: np.ndarray, x: Any) -> np.ndarray:
    """Whether each of ``b`` equals ``x``; missing markers (NaN, None, pd.NA, NaT) equal
    each other and nothing else."""
    absent = np.asarray(pd.isna(b), dtype=bool)
    if pd.isna(x):
        return absent
    eq = np.zeros(b.shape[0], dtype=bool)
    eq[~absent] = np.asarray(b[~absent] == x, dtype=bool)
    return eq


def checked_output(out: Any, n_rows: int) -> np.ndarray:
    """A predict function's output as ``(n_rows, K)`` floats, or a typed error."""
    arr = checked_predictions(out, n_rows, "the model")
    if arr.ndim == 1:
        arr = arr[:, None]
    if not np.isfinite(arr).all():
        raise ModelOutputError(
            "the model returned NaN or inf for some rows; Kernel SHAP needs finite outputs "
            "on every hybrid row (impute inside the model, or clip its output)"
        )
    return arr


def run_tasks(run: Callable[[Any], Any], tasks: list[Any], n_jobs: int) -> list[Any]:
    """``run`` over ``tasks`` in order; the first alone (it fixes the output width and a
    bad model fails before any thread starts), the rest in ``n_jobs`` threads."""
    if not tasks:
        raise InputError("there are no rows to explain")
    first = [run(tasks[0])]
    if n_jobs > 1 and len(tasks) > 2:
        # one BLAS thread per worker: the workers are the parallelism
        with threadpool_limits(limits=1), ThreadPoolExecutor(max_workers=n_jobs) as pool:
            return first + list(pool.map(run, tasks[1:]))
    return first + [run(t) for t in tasks[1:]]


def check_width(got: int, expected: int) -> None:
    """A model that changes its number of outputs between calls is refused."""
    if got != expected:
        raise ModelOutputError(
            f"the model returned {got} outputs per row, earlier {expected}; return the same "
            "outputs for every batch"
        )
