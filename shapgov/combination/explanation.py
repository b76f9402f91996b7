"""The Explanation: SHAP values of a whole blueprint over its original input columns."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shapgov.combination.policy import AdditivityReport
from shapgov.decomposition.links import Link
from shapgov.errors import InputError
from shapgov.sinks import strict_json

_META_KEY = b"shapgov"
FORMAT_VERSION = 2


@dataclass(frozen=True, eq=False)
class VertexPart:
    """One vertex's contribution, already weighted into the blueprint's explained space."""

    name: str
    estimator_class: str
    explainer: str
    matrix_row: str | None
    response: str | None
    values: np.ndarray  # (n, M, K)
    base: np.ndarray  # (K,)
    #: The matrix row's family and its status for the vertex's task, as they were when
    #: the vertex was explained (approval and the report judge these, not today's matrix).
    matrix_family: str | None = None
    matrix_status: str | None = None
    #: How the explainer computed the values: "exact", "sampled" or "approximate".
    method: str = "exact"

    def __repr__(self) -> str:  # the arrays' shapes, not their numbers
        return (
            f"VertexPart(name={self.name!r}, estimator_class={self.estimator_class!r}, "
            f"explainer={self.explainer!r}, method={self.method!r}, "
            f"values=<{'x'.join(map(str, self.values.shape))}>, base={self.base.tolist()!r})"
        )

    def meta(self) -> dict[str, Any]:
        """The vertex's description without its values, JSON-ready: name, estimator class,
        explainer, matrix row, family and status, method, response and base values."""
        return {
            "name": self.name,
            "estimator_class": self.estimator_class,
            "explainer": self.explainer,
            "matrix_row": self.matrix_row,
            "matrix_family": self.matrix_family,
            "matrix_status": self.matrix_status,
            "method": self.method,
            "response": self.response,
            "base": self.base.tolist(),
        }


class Explanation:
    """SHAP values ``(n, M)`` (``(n, M, K)`` for multiclass) and everything needed to audit them.

    Built only by :func:`shapgov.explain` after the additivity policy has run, or read
    back from a parquet file written by :meth:`to_parquet`.
    """

    def __init__(
        self,
        *,
        raw_values: np.ndarray,
        expected_value: np.ndarray,
        data: pd.DataFrame,
        output_space: str,
        link: Link,
        task: str,
        classes: list[Any] | None,
        vertices: list[VertexPart],
        additivity: AdditivityReport,
        model_class: str,
        composites: list[dict[str, Any]],
        shapgov_version: str,
        raw_interactions: np.ndarray | None = None,
        raw_std_error: np.ndarray | None = None,
        raw_prediction: np.ndarray | None = None,
        game: dict[str, Any] | None = None,
        plugins: list[dict[str, Any]] | None = None,
        background: pd.DataFrame | None = None,
        background_weights: np.ndarray | None = None,
    ) -> None:
        if not isinstance(additivity, AdditivityReport) or additivity.status == "fail":
            raise InputError("an Explanation needs a passing additivity report")
        self._raw = raw_values
        self.expected_value = np.asarray(expected_value, dtype=float)
        self.data = data
        self.output_space = output_space
        self.link = link
        self.task = task
        self.classes = classes
        self.vertices = vertices
        self.additivity = additivity
        self.model_class = model_class
        self.composites = composites
        self.shapgov_version = shapgov_version
        self._interactions = raw_interactions
        self._std_error = raw_std_error
        self._prediction = raw_prediction
        #: The explained game (:meth:`shapgov.planning.game.Game.to_dict`): which value
        #: function, against which background (row count and SHA-256), in which space.
        self.game = dict(game or {})
        #: The plugins that took part: ``[{"name", "distribution", "version", "hooks"}]``.
        self.plugins = list(plugins or [])
        #: The background rows ``(b, M)`` the game was played against, and their weights
        #: ``(b,)`` (``None``: unweighted); ``None`` for the path-dependent game and for
        #: explanations read from a values file (the set keeps them in background.parquet).
        self.background = background
        self.background_weights = background_weights

    # ------------------------------------------------------------------ views
    @property
    def feature_names(self) -> list[Any]:
        """The original column labels, as given (integer labels stay integers)."""
        return list(self.data.columns)

    @property
    def n_outputs(self) -> int:
        """K, the number of explained outputs (1 for a regressor or binary classifier)."""
        return int(self._raw.shape[2])

    @property
    def values(self) -> np.ndarray:
        """``(n, M)``, or ``(n, M, K)`` when the model has several outputs (multiclass)."""
        return self._raw[:, :, 0] if self.n_outputs == 1 else self._raw

    @property
    def interaction_values(self) -> np.ndarray | None:
        """``(n, M, M)`` (``(n, M, M, K)``) SHAP interaction values, when requested with
        ``explain(..., interactions=True)``; rows of each matrix sum to :attr:`values`.
        Not stored by :meth:`to_parquet`."""
        if self._interactions is None:
            return None
        return self._interactions[..., 0] if self.n_outputs == 1 else self._interactions

    @property
    def std_error(self) -> np.ndarray | None:
        """Standard errors of sampled values (Kernel sampling mode), shaped like
        :attr:`values`; ``None`` when every value is exact."""
        if self._std_error is None:
            return None
        return self._std_error[:, :, 0] if self.n_outputs == 1 else self._std_error

    @property
    def prediction(self) -> np.ndarray | None:
        """The model's own prediction ``(n, K)`` as the additivity check saw it: after the
        link, offset, exposure and capping (``None`` for explanations read from files
        written before it was stored)."""
        return self._prediction

    @property
    def base_values(self) -> np.ndarray:
        """Per-row base values: ``(n,)``, or ``(n, K)`` for several outputs."""
        base = np.broadcast_to(self.expected_value, (len(self), self.n_outputs))
        return base[:, 0].copy() if self.n_outputs == 1 else base.copy()

    @property
    def explained_output(self) -> np.ndarray:
        """``base + sum(values)`` in the explained space, ``(n, K)``."""
        return self.expected_value + self._raw.sum(axis=1)

    @property
    def feature_perturbation(self) -> str | None:
        """``"interventional"`` or ``"tree_path_dependent"``: the game every vertex played."""
        return self.game.get("feature_perturbation")

    @property
    def explainers(self) -> dict[str, str]:
        """The explainer of every vertex, by vertex name."""
        return {p.name: p.explainer for p in self.vertices}

    def __len__(self) -> int:
        return int(self._raw.shape[0])

    def __repr__(self) -> str:
        return (
            f"<Explanation rows={len(self)} features={len(self.feature_names)} "
            f"outputs={self.n_outputs} space={self.output_space} link={self.link.name} "
            f"additivity={self.additivity.status}>"
        )

    def __getitem__(self, rows: Any) -> Explanation:
        idx = np.arange(len(self))[rows]
        idx = np.atleast_1d(idx)
        return Explanation(
            raw_values=self._raw[idx],
            expected_value=self.expected_value,
            data=self.data.iloc[idx],
            output_space=self.output_space,
            link=self.link,
            task=self.task,
            classes=self.classes,
            vertices=[replace(p, values=p.values[idx]) for p in self.vertices],
            additivity=self.additivity,
            model_class=self.model_class,
            composites=self.composites,
            shapgov_version=self.shapgov_version,
            raw_interactions=None if self._interactions is None else self._interactions[idx],
            raw_std_error=None if self._std_error is None else self._std_error[idx],
            raw_prediction=None if self._prediction is None else self._prediction[idx],
            game=self.game,
            plugins=self.plugins,
            background=self.background,
            background_weights=self.background_weights,
        )

    def to_frame(self) -> pd.DataFrame:
        """SHAP values with one column per feature plus ``base_value``, indexed by the
        explained rows' own keys (``X``'s index; 0..n-1 for an array).

        Several outputs give a long frame with a ``row`` column (the row's key) and an
        ``output`` column (the class label).
        """
        frames = []
        labels = self.classes if self.task == "multiclass" else None
        keys = self.data.index
        for k in range(self.n_outputs):
            frame = pd.DataFrame(self._raw[:, :, k], columns=self.feature_names, index=keys)
            frame.insert(0, "base_value", self.expected_value[k])
            if self.n_outputs > 1:
                frame.insert(0, "output", labels[k] if labels is not None else k)
                frame.insert(0, "row", keys)
                frame = frame.reset_index(drop=True)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    # ---------------------------------------------------------------- parquet
    def _stored_names(self) -> tuple[list[str], list[str | None]]:
        """The parquet column names of the features and of the outputs (see
        :func:`_output_labels`)."""
        return _unique_labels(self.feature_names), _output_labels(
            self.n_outputs, self.task, self.classes
        )

    def to_parquet(self, path: str | Path) -> Path:
        """Write values, data, per-vertex parts, sampled values' standard errors and the
        audit metadata to one parquet file.

        Columns are named for what they hold: ``row_key`` (the rows' keys, when ``X`` had
        an index of its own), ``data::<feature>``, ``shap::<feature>`` (``shap::<feature>::
        <class>`` with several outputs), ``std_error::...``, ``prediction`` (``prediction::
        <class>``), ``vertex::<vertex>::<feature>[::<k>]`` and ``additivity::mismatch``.
        A label that would repeat once written as text gets ``#<position>``.
        """
        path = Path(path)
        features, outputs = self._stored_names()
        cols: dict[str, Any] = {}
        keyed = not isinstance(self.data.index, pd.RangeIndex) or not self.data.index.equals(
            pd.RangeIndex(len(self))
        )
        if keyed:
            cols[ROW_KEY] = pa.array(self.data.index.to_series(), from_pandas=True)
        for j, name in enumerate(features):  # pyarrow keeps nulls, categories and dtypes
            cols[f"data::{name}"] = pa.array(self.data.iloc[:, j], from_pandas=True)
        for j, name in enumerate(features):
            for k, out in enumerate(outputs):
                cols[_col("shap", name, out)] = self._raw[:, j, k]
        if self._std_error is not None:  # sampled values' standard errors
            for j, name in enumerate(features):
                for k, out in enumerate(outputs):
                    cols[_col("std_error", name, out)] = self._std_error[:, j, k]
        if self._prediction is not None:
            for k, out in enumerate(outputs[: self._prediction.shape[1]]):
                cols[_col("prediction", out)] = self._prediction[:, k]
        vertices = _unique_labels([p.name for p in self.vertices])
        for part, vname in zip(self.vertices, vertices, strict=True):
            for j, name in enumerate(features):
                for k in range(part.values.shape[2]):
                    cols[_col("vertex", vname, name, k)] = part.values[:, j, k]
        if len(self.additivity.row_mismatch) == len(self):
            cols["additivity::mismatch"] = np.asarray(self.additivity.row_mismatch, dtype=float)
        table = pa.table(cols)
        meta = {
            "format_version": FORMAT_VERSION,
            "feature_names": [_jsonable(c) for c in self.feature_names],
            "row_key": _jsonable(self.data.index.name) if keyed else None,
            "row_keyed": keyed,
            "data_dtypes": [str(t) for t in self.data.dtypes],
            "expected_value": self.expected_value.tolist(),
            "output_space": self.output_space,
            "link": self.link.to_dict(),
            "task": self.task,
            "classes": None if self.classes is None else [_jsonable(c) for c in self.classes],
            "vertices": [p.meta() for p in self.vertices],
            "additivity": self.additivity.to_dict(rows=False),
            "model_class": self.model_class,
            "composites": self.composites,
            "shapgov_version": self.shapgov_version,
            "game": self.game,
            "plugins": self.plugins,
        }
        table = table.replace_schema_metadata({_META_KEY: strict_json.dumps(meta).encode()})
        pq.write_table(table, path)
        return path

    @classmethod
    def read_parquet(cls, path: str | Path) -> Explanation:
        """The explanation :meth:`to_parquet` wrote (also files of format version 1, whose
        columns were numbered).

        :raises InputError: The file holds no shapgov explanation.
        """
        table = pq.read_table(path)
        raw_meta = (table.schema.metadata or {}).get(_META_KEY)
        if raw_meta is None:
            raise InputError(f"{path} is not a shapgov explanation (no shapgov metadata)")
        meta = json.loads(raw_meta)
        frame = table.to_pandas()
        names = meta["feature_names"]
        m, k = len(names), len(meta["expected_value"])
        if meta.get("format_version", 1) == 1:
            features, outputs, vertices = list(range(m)), list(range(k)), None
            name_of = _numbered_column
        else:
            features = _unique_labels(names)
            outputs = _output_labels(k, meta["task"], meta["classes"])
            vertices = _unique_labels([pm["name"] for pm in meta["vertices"]])
            name_of = _col

        def block(prefix: str, width: int | None = None, *head: str) -> np.ndarray:
            outs = outputs if width is None else list(range(width))
            return np.stack(
                [
                    np.stack([frame[name_of(prefix, *head, f, o)].to_numpy() for o in outs], -1)
                    for f in features
                ],
                axis=1,
            ).reshape(len(frame), m, len(outs))

        data = pd.DataFrame({j: frame[name_of("data", f)] for j, f in enumerate(features)})
        data.columns = pd.Index(names)
        if meta.get("row_keyed"):
            data.index = pd.Index(frame[ROW_KEY]).rename(meta.get("row_key"))
        for j, dtype in enumerate(meta.get("data_dtypes", [])):
            if str(data.dtypes.iloc[j]) != dtype:  # nullable dtypes come back as float/object
                data.isetitem(j, data.iloc[:, j].astype(dtype))
        raw = block("shap")
        std_error = None
        if any(str(c).startswith("std_error::") for c in frame.columns):
            std_error = block("std_error")
        prediction = None
        if any(str(c).startswith("prediction") for c in frame.columns):
            prediction = np.stack([frame[name_of("prediction", o)].to_numpy() for o in outputs], -1)
        parts = []
        for v, pm in enumerate(meta["vertices"]):
            head = (str(v),) if vertices is None else (vertices[v],)
            parts.append(
                VertexPart(
                    name=pm["name"],
                    estimator_class=pm["estimator_class"],
                    explainer=pm["explainer"],
                    matrix_row=pm["matrix_row"],
                    response=pm["response"],
                    values=block("vertex", len(pm["base"]), *head),
                    base=np.asarray(pm["base"], dtype=float),
                    matrix_family=pm.get("matrix_family"),
                    matrix_status=pm.get("matrix_status"),
                    method=pm.get("method", "exact"),
                )
            )
        return cls(
            raw_values=raw,
            expected_value=np.asarray(meta["expected_value"], dtype=float),
            data=data,
            output_space=meta["output_space"],
            link=Link.from_dict(meta["link"]),
            task=meta["task"],
            classes=meta["classes"],
            vertices=parts,
            additivity=AdditivityReport.from_dict(
                meta["additivity"],
                row_mismatch=frame["additivity::mismatch"].to_numpy()
                if "additivity::mismatch" in frame.columns
                else None,
            ),
            model_class=meta["model_class"],
            composites=meta["composites"],
            shapgov_version=meta["shapgov_version"],
            raw_prediction=prediction,
            raw_std_error=std_error,
            game=meta.get("game"),
            plugins=meta.get("plugins"),
        )


ROW_KEY = "row_key"


def _unique_labels(labels: list[Any]) -> list[str]:
    """Labels as text for column names, each made unique by ``#<position>`` where two
    would read the same (``1`` and ``"1"``)."""
    text = [str(c) for c in labels]
    seen: dict[str, int] = {}
    for t in text:
        seen[t] = seen.get(t, 0) + 1
    return [t if seen[t] == 1 else f"{t}#{j}" for j, t in enumerate(text)]


def _output_labels(k: int, task: str, classes: list[Any] | None) -> list[str | None]:
    """The outputs' parts of column names: none for one output, the class labels for a
    multiclass model, else the output's position."""
    if k == 1:
        return [None]
    labels = list(classes) if task == "multiclass" and classes else list(range(k))
    return list(_unique_labels(labels))


def _col(prefix: str, *parts: Any) -> str:
    """A readable column name: the parts after ``prefix`` joined by ``::``; a ``None``
    part (the output of a single-output model) is left out."""
    return "::".join([prefix, *(str(p) for p in parts if p is not None)])


def _numbered_column(prefix: str, *parts: Any) -> str:
    """Format version 1's column names (``shap::<j>::<k>``, ``prediction::<k>``)."""
    return "::".join([prefix, *(str(p) for p in parts)])


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
