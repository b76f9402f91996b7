"""The context handed to ``shapgov_decompose`` hooks: naming, recursion, and the plugins.

It carries the explanation's :class:`~shapgov.registry.PluginCalls` (the manager passed
to :func:`shapgov.explain`, never a global one) and the matrix rows read from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shapgov.decomposition.blueprint import CompositeRecord, Node, Vertex, class_path, task_of
from shapgov.decomposition.links import Link
from shapgov.errors import ModelOutputError, NotFittedModelError, UndecomposableModelError
from shapgov.planning.compatibility import MatrixRow, find_row, rows
from shapgov.registry import PluginCalls


class DecomposeContext:
    """Passed to ``shapgov_decompose`` hooks: naming and recursion helpers.

    :param plugins: The explanation's plugin calls (wraps the plugin manager).
    :param path: Where in the model this context stands (``"votingregressor/ridge"``).
    :param options: Decomposition options, e.g. ``calibration``: ``"probability"``
        (exact) or ``"margin"``.
    """

    def __init__(
        self, plugins: PluginCalls, path: str = "", options: dict[str, Any] | None = None
    ) -> None:
        self.plugins = plugins
        self.path = path
        self.options = dict(options or {})
        self._table: list[MatrixRow] | None = None

    @property
    def plugin_manager(self) -> Any:
        """The pluggy plugin manager behind ``plugins``."""
        return self.plugins.plugin_manager

    def child(self, name: str) -> DecomposeContext:
        """The context of a part of this model named ``name`` (``path`` + ``/name``), with
        the same plugins and options: what a decomposer passes when it recurses."""
        path = f"{self.path}/{name}" if self.path else name
        ctx = DecomposeContext(self.plugins, path, self.options)
        ctx._table = self._table
        return ctx

    def find_row(self, obj: Any) -> MatrixRow | None:
        """``obj``'s compatibility-matrix row (rows read once per explanation)."""
        if self._table is None:
            self._table = rows(self.plugin_manager)
        return find_row(obj, table=self._table)

    def composite_record(self, model: Any) -> CompositeRecord:
        """The audit record of a composite met here (its path, class and matrix row)."""
        row = self.find_row(model)
        return CompositeRecord(self.path, class_path(model), row.id if row else None)

    def decompose(self, model: Any, name: str | None = None) -> Node:
        """Decompose ``model`` (a part of the current one) through the plugins.

        :raises UndecomposableModelError: No plugin answers for it.
        """
        ctx = self.child(name or type(model).__name__.lower())
        _check_fitted(model, ctx.path)
        node = self.plugins.first("shapgov_decompose", model=model, context=ctx)
        if node is None:
            raise UndecomposableModelError(
                f"no plugin can decompose {class_path(model)} (at {ctx.path!r}); explain the "
                "model as a whole with opaque=True (Kernel explainer), or install a shapgov "
                "plugin that answers shapgov_decompose for it."
            )
        return node

    def column_origins(self, transformer: Any, n_features_in: int, name: str) -> np.ndarray:
        """Input column of every output column of ``transformer``.

        :raises UndecomposableModelError: No plugin can trace its columns.
        """
        origins = self.trace_columns(transformer, n_features_in, f"{self.path}/{name}")
        if origins is None:
            raise UndecomposableModelError(
                f"{class_path(transformer)} at {self.path}/{name} has outputs that shapgov "
                "cannot trace to single input columns; SHAP values cannot be reported in the "
                "original columns. Move it out of the pipeline or add a plugin answering "
                "shapgov_column_origins."
            )
        return np.asarray(origins, dtype=np.int64)

    def trace_columns(self, transformer: Any, n_features_in: int, where: str = "") -> Any:
        """The ``shapgov_column_origins`` answer for ``transformer`` (``None``: untraceable);
        for plugins that trace nested transformers."""
        if transformer is None or transformer == "passthrough":
            return np.arange(n_features_in)
        _check_fitted(transformer, where or self.path)
        return self.plugins.first(
            "shapgov_column_origins",
            transformer=transformer,
            n_features_in=n_features_in,
            context=self,
        )

    def leaf(
        self,
        estimator: Any,
        *,
        n_margins: int,
        link: Link,
        prediction: str,
        margin_method: str | None,
        allow_nan: bool = False,
    ) -> Node:
        """A single modeling vertex taking the original columns as they are."""
        vertex = Vertex(
            name=self.path,
            estimator=estimator,
            task=task_of(estimator),
            n_margins=n_margins,
            allow_nan=allow_nan,
            margin=margin_function(estimator, n_margins, link, prediction, margin_method),
        )
        return Node((vertex,), np.zeros(n_margins), link, prediction, margin_method)


def margin_function(
    estimator: Any, n_margins: int, link: Link, prediction: str, margin_method: str | None
) -> Callable[[Any], np.ndarray]:
    """The margin of a leaf estimator as a function of its input: its ``margin_method``'s
    output, else the link applied to its prediction."""
    names = getattr(estimator, "feature_names_in_", None)

    def margin(Z: Any) -> np.ndarray:
        if names is not None and isinstance(Z, np.ndarray) and Z.shape[1] == len(names):
            import pandas as pd

            Z = pd.DataFrame(Z, columns=names)
        method = margin_method or prediction
        out = np.asarray(getattr(estimator, method)(Z), dtype=float)
        if out.ndim > 2:
            raise ModelOutputError(
                f"{method}() returned shape {out.shape}; it must return (n,) or (n, K)"
            )
        out = out.reshape(len(out), -1)
        if out.shape[1] == 2 and n_margins == 1 and method == "predict_proba":
            out = out[:, 1:]
        return out if margin_method else link.forward(out)

    return margin


def _check_fitted(model: Any, where: str) -> None:
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(model, BaseEstimator):
        return
    try:
        check_is_fitted(model)
    except NotFittedError as err:
        raise NotFittedModelError(
            f"{type(model).__name__} at {where!r} is not fitted; call fit(X, y) before "
            "explaining it."
        ) from err
    except TypeError:
        return
