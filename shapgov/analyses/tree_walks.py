"""Analyses of blueprints made of tree vertices, without predict calls.

For a blueprint ``explained(x) = intercept + sum_v W_v @ out_v(margin_v(z_v(x)))`` whose
every vertex parses into flat trees, the output for ``x`` with some columns replaced is
the blueprint's output after each vertex's margin moves by a tree walk
(:mod:`shapgov.explainers.kernels.exemplar_trees`):

* :func:`exemplar_route`: XEMP's ICE averages, ``f(x with unit u := exemplar e)``;
* :func:`shuffle_route`: permutation impact, ``f(x with unit u := the same columns of
  another row)`` for every shuffle.

Each vertex's preprocessing must map every original column on its own (checked on the
data: replaced columns change their transformed columns only, the same way whatever the
row), and the whole route is checked against the model's own predictions of the rows
before it is used: any disagreement beyond rounding sends the analysis back to predict
calls, with the reason recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shapgov.analyses.tables import cast_like
from shapgov.explainers.kernels.exemplar_trees import ROW_BLOCK, donor_deltas, exemplar_deltas
from shapgov.explainers.stage import model_input

#: Relative agreement with the model's own predictions that the tree route must reach:
#: float64 rounding for float64 models; for float32 models, float32 rounding of each tree.
FLOAT64_AGREEMENT = 1e-10
FLOAT32_AGREEMENT = float(np.finfo(np.float32).eps)
#: Most shuffled predictions (rows x shuffles x outputs) held at once.
SHUFFLE_CELLS = 1 << 23


@dataclass(frozen=True)
class _TreeVertex:
    vertex: Any
    ensemble: Any
    Z: np.ndarray  # (n, m) the rows, preprocessed
    unit_of: np.ndarray  # (m,)
    replaced: np.ndarray  # (U, E, m) the replacing values, preprocessed


def _tree_vertices(
    blueprint: Any,
    frame: pd.DataFrame,
    units: Mapping[str, Sequence[Any]],
    tables: Sequence[pd.DataFrame],
    plugins: Any,
) -> list[_TreeVertex] | str:
    """Every vertex's trees, preprocessed rows and preprocessed replacing values (each
    unit's ``tables[u]``), or the reason the blueprint cannot be walked."""
    if len(frame) < 2:  # the preprocessing check compares two rows
        return "one row: too few to check the preprocessing (its predict calls are cheap)"
    grid, starts = _exemplar_grid(frame, units, tables)
    col_pos = {c: j for j, c in enumerate(frame.columns)}
    unit_index = np.full(frame.shape[1], -1, dtype=np.int64)
    for u, cols in enumerate(units.values()):
        unit_index[[col_pos[c] for c in cols]] = u
    counts = np.array([len(t) for t in tables], dtype=np.int64)
    x_in = model_input(frame, blueprint.model)
    out = []
    for vertex in blueprint.vertices:
        ens = plugins.first("shapgov_tree_ensemble", model=vertex.estimator)
        if ens is None or ens.n_outputs != vertex.n_margins:
            return f"{vertex.name} is not a tree model shapgov parses"
        if ens.derived is not None:  # the walks read one column per split
            return f"{vertex.name} splits on {ens.derived.what}"
        try:
            Z = np.asarray(vertex.transform(x_in), dtype=np.float64)
            Zg = [
                np.asarray(vertex.transform(model_input(g, blueprint.model)), dtype=np.float64)
                for g in grid
            ]
        except (ValueError, TypeError) as err:
            return f"{vertex.name}: preprocessing of the replaced columns failed ({err})"
        origins = vertex.origins if vertex.origins is not None else np.arange(Z.shape[1])
        origins = np.asarray(origins, dtype=np.int64)
        unit_of = np.where(origins >= 0, unit_index[np.maximum(origins, 0)], -1)
        if not _separable(Zg, unit_of, starts, counts):
            return (
                f"{vertex.name}: its preprocessing mixes columns, so replaced values "
                "depend on the row"
            )
        replaced = np.zeros((len(tables), max(counts.max(initial=0), 1), Z.shape[1]))
        for u, (start, count) in enumerate(zip(starts, counts, strict=True)):
            replaced[u, :count] = Zg[0][start : start + count]
        out.append(_TreeVertex(vertex, ens, Z, unit_of, replaced))
    return out


def exemplar_route(
    blueprint: Any,
    frame: pd.DataFrame,
    units: Mapping[str, Sequence[Any]],
    tables: Sequence[tuple[pd.DataFrame, np.ndarray]],
    plugins: Any,
    own: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | str:
    """Prediction ``(n, K)`` and XEMP strengths ``(n, U, K)`` of ``units`` (in order, each
    with its exemplar table and weights in ``tables``), or the reason the tree route does
    not apply. ``own`` is the model's own prediction of ``frame``."""
    vertices = _tree_vertices(blueprint, frame, units, [t[0] for t in tables], plugins)
    if isinstance(vertices, str):
        return vertices
    counts = np.array([len(t[0]) for t in tables], dtype=np.int64)
    weights = np.zeros((len(tables), vertices[0].replaced.shape[1]))
    for u, (_, w) in enumerate(tables):
        weights[u, : len(w)] = w
    n = frame.shape[0]
    prediction = np.empty((n, blueprint.node.n_outputs))
    strengths = np.empty((n, len(tables), blueprint.node.n_outputs))
    linear = _linear(blueprint, vertices)
    for start in range(0, n, ROW_BLOCK):
        rows = slice(start, min(start + ROW_BLOCK, n))
        moved, mine, change = [], [], None
        for v in vertices:
            delta, margin = exemplar_deltas(v.ensemble, v.Z[rows], v.unit_of, v.replaced, counts)
            mine.append(margin[:, None, None, :])
            if linear:  # f_e - f(x) is the weighted margin change itself
                part = np.einsum("buem,km->buek", delta, _weight(v))
                change = part if change is None else change + part
            else:
                moved.append(margin[:, None, None, :] + delta)
        own_ice = _compose(blueprint, vertices, mine)  # (b, 1, 1, K)
        if not linear:  # computed the same way as f(x): equal margins give equal outputs
            change = _compose(blueprint, vertices, moved) - own_ice
        prediction[rows] = own_ice[:, 0, 0]
        # f(x) - sum_e w_e f_e, summed as differences: exactly 0 for a dummy feature
        strengths[rows] = -np.einsum("buek,ue->buk", change, weights)
    if not _agrees(prediction, own, sum(v.ensemble.n_trees for v in vertices)):
        return "the trees do not reproduce the model's predictions"
    return prediction, strengths


def shuffle_route(
    blueprint: Any,
    frame: pd.DataFrame,
    units: Mapping[str, Sequence[Any]],
    orders: np.ndarray,
    plugins: Any,
    own: np.ndarray,
) -> tuple[np.ndarray, Iterator[tuple[int, np.ndarray]]] | str:
    """Prediction ``(n, K)`` and, lazily, the predictions of the ``R = U x repeats``
    shuffles ``orders`` ``(R, n)`` (shuffle r permutes unit ``r // repeats``: row i takes
    the unit's columns of row ``orders[r, i]``) as ``(first shuffle, (n, r, K))`` chunks
    of at most :data:`SHUFFLE_CELLS` values; or the reason the tree route does not apply.
    ``own`` is the model's own prediction of ``frame``."""
    n, n_units = frame.shape[0], len(units)
    repeats = orders.shape[0] // max(n_units, 1)
    # one replacing row per unit (the last row) is enough to check the preprocessing
    probe = [frame.iloc[[n - 1]][list(cols)].reset_index(drop=True) for cols in units.values()]
    vertices = _tree_vertices(blueprint, frame, units, probe, plugins)
    if isinstance(vertices, str):
        return vertices
    k = blueprint.node.n_outputs
    per_chunk = max(1, SHUFFLE_CELLS // max(n * repeats * k, 1))  # units per chunk

    def walk(lo: int, hi: int) -> tuple[np.ndarray, list[np.ndarray]]:
        start = (np.arange(n_units, dtype=np.int64) - lo) * repeats
        count = np.where((np.arange(n_units) >= lo) & (np.arange(n_units) < hi), repeats, 0)
        start = np.where(count > 0, start, 0)
        chunk = orders[lo * repeats : hi * repeats]
        moved, mine = [], []
        for v in vertices:
            delta, margin = donor_deltas(v.ensemble, v.Z, v.unit_of, chunk, start, count)
            moved.append(margin[:, None, :] + delta)
            mine.append(margin[:, None, :])
        return _compose(blueprint, vertices, mine)[:, 0], moved

    prediction, first_moved = walk(0, min(per_chunk, n_units))
    if not _agrees(prediction, own, sum(v.ensemble.n_trees for v in vertices)):
        return "the trees do not reproduce the model's predictions"

    def chunks() -> Iterator[tuple[int, np.ndarray]]:
        moved = first_moved
        for lo in range(0, n_units, per_chunk):
            if lo:
                moved = walk(lo, min(lo + per_chunk, n_units))[1]
            yield lo * repeats, _compose(blueprint, vertices, moved)

    return prediction, chunks()


def _exemplar_grid(
    frame: pd.DataFrame,
    units: Mapping[str, Sequence[Any]],
    tables: Sequence[pd.DataFrame],
) -> tuple[list[pd.DataFrame], np.ndarray]:
    """Two frames (from the first and the last row) of ``1 + sum_u E_u`` rows: the row
    itself, then each unit's replacing values in place of its columns."""
    sizes = [len(t) for t in tables]
    starts = 1 + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    total = 1 + sum(sizes)
    grids = []
    for base in sorted({0, len(frame) - 1}):
        grid = frame.iloc[np.full(total, base)].reset_index(drop=True)
        for cols, values, start in zip(units.values(), tables, starts, strict=True):
            for c in cols:
                column = grid[c].to_numpy(dtype=object, copy=True)
                column[start : start + len(values)] = values[c].to_numpy(dtype=object)
                grid[c] = cast_like(pd.Series(column), frame[c])
        grids.append(grid)
    return grids, starts


def _separable(
    grids: list[np.ndarray], unit_of: np.ndarray, starts: np.ndarray, counts: np.ndarray
) -> bool:
    """Every transformed column depends on its own original column only: an exemplar's
    columns agree whatever the row, and the other columns keep the row's values."""
    first = grids[0]
    for g in grids[1:]:
        for u, (s, c) in enumerate(zip(starts, counts, strict=True)):
            mine = unit_of == u
            if not _same(g[s : s + c][:, mine], first[s : s + c][:, mine]):
                return False
    for g in grids:
        for u, (s, c) in enumerate(zip(starts, counts, strict=True)):
            other = unit_of != u
            if not _same(g[s : s + c][:, other], np.broadcast_to(g[0, other], (c, other.sum()))):
                return False
    return True


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


def _compose(blueprint: Any, vertices: list[_TreeVertex], margins: list[np.ndarray]) -> np.ndarray:
    """The blueprint's prediction from each vertex's margins ``(..., K_m)``, elementwise in
    the leading axes (so equal margins give bit-equal predictions)."""
    node = blueprint.node
    lead = margins[0].shape[:-1]
    explained = np.broadcast_to(node.intercept.astype(float), (*lead, node.n_outputs)).copy()
    for v, m in zip(vertices, margins, strict=True):
        flat = m.reshape(-1, m.shape[-1])
        out = v.vertex.output(flat).reshape(*lead, -1)
        weight = v.vertex.weight if v.vertex.weight is not None else np.eye(out.shape[-1])
        for k in range(node.n_outputs):
            for j in range(out.shape[-1]):
                if weight[k, j] != 0.0:
                    explained[..., k] += weight[k, j] * out[..., j]
    flat = explained.reshape(-1, node.n_outputs)
    return node.link.inverse(flat).reshape(*lead, -1)


def _linear(blueprint: Any, vertices: list[_TreeVertex]) -> bool:
    """The prediction is affine in the vertices' margins (identity link, no responses)."""
    return blueprint.node.link.name == "identity" and all(
        v.vertex.response is None for v in vertices
    )


def _weight(v: _TreeVertex) -> np.ndarray:
    return v.vertex.weight if v.vertex.weight is not None else np.eye(v.vertex.n_margins)


def _agrees(prediction: np.ndarray, own: np.ndarray, n_trees: int) -> bool:
    """Equal up to rounding: float64 sums, or each tree's float32 leaf for float32 models."""
    if prediction.shape != own.shape:
        return False
    tol = FLOAT32_AGREEMENT * max(n_trees, 1) if own.dtype == np.float32 else FLOAT64_AGREEMENT
    scale = np.maximum(np.abs(own.astype(float)), 1.0)
    return bool(np.all(np.abs(prediction - own) <= tol * scale))
