"""Hook specifications: the contract between shapgov and its plugins.

Plugins implement these with ``@shapgov.hookimpl`` and are found through the
``shapgov`` entry-point group. Built-in implementations are marked
``trylast=True`` so that a third-party plugin answering the same hook wins. A hook
implementation whose name matches no specification here is refused when the plugin
manager is built (:func:`shapgov.registry.make_plugin_manager` calls ``check_pending``).
Every explanation records which plugin answered which hook
(``Explanation.plugins``, the manifest, the compliance report).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import numpy as np

    from shapgov.decomposition.blueprint import Node, Vertex
    from shapgov.decomposition.context import DecomposeContext
    from shapgov.decomposition.offsets import ModelOffset
    from shapgov.explainers.base import Explainer
    from shapgov.explainers.trees import TreeEnsemble
    from shapgov.planning.compatibility import MatrixRow
    from shapgov.registry import PluginCalls

hookspec = pluggy.HookspecMarker("shapgov")


@hookspec
def shapgov_explainers() -> list[type[Explainer]]:
    """Register explainer classes.

    An explainer subclasses :class:`shapgov.explainers.base.Explainer`: it takes its
    options as keyword-only constructor parameters, declares the games it plays
    (``feature_perturbations``) and implements ``explain(request)``.

    :returns: Explainer subclasses, each with a unique ``name``. Two plugins
        registering the same name make the plugin manager raise
        :class:`shapgov.errors.DuplicateExplainerError`.
    """


@hookspec
def shapgov_matrix_rows() -> list[dict[str, Any]]:
    """Contribute rows to the compatibility matrix.

    :returns: Row mappings with the keys of ``compat/matrix.toml`` (``id``,
        ``family``, ``kind``, ``explainer``, ``classes``, one status per task,
        ``notes``). Row ids must be unique across all plugins.
    """


@hookspec(firstresult=True)
def shapgov_prepare_model(model: Any) -> Any | None:
    """Wrap a model that cannot be called as is (no ``predict``, or a loaded model whose
    parts are unknown) into an object shapgov can decompose and call.

    :param model: The object passed to :func:`shapgov.explain`.
    :returns: The object to explain in its place, or ``None`` to leave it as it is.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def shapgov_decompose(model: Any, context: DecomposeContext) -> Node | None:
    """Decompose a fitted model into modeling vertices and a combination rule.

    Teach shapgov a new pipeline, ensemble or leaf model type by answering for
    it; call ``context.decompose(child)`` to recurse into parts.

    :param model: The fitted object to decompose.
    :param context: Recursion and naming helpers for the current position.
    :returns: A :class:`shapgov.decomposition.blueprint.Node`, or ``None`` when this plugin
        does not know the model.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def shapgov_column_origins(
    transformer: Any, n_features_in: int, context: DecomposeContext
) -> np.ndarray | None:
    """Map each output column of a fitted transformer to the input column it comes from.

    :param transformer: A fitted preprocessing step.
    :param n_features_in: Number of columns the step receives.
    :param context: The decomposition context; ``context.trace_columns(step, n)`` asks
        the plugins about a nested step (a ColumnTransformer's parts).
    :returns: Integer array, one entry per output column: the index of the single
        input column it depends on, or -1 for a constant column. ``None`` when
        this plugin does not know the transformer.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def shapgov_select_explainer(
    vertex: Vertex, row: MatrixRow | None, explainers: dict[str, type[Explainer]]
) -> str | None:
    """Choose the explainer for one modeling vertex.

    :param vertex: The vertex to explain.
    :param row: Its compatibility-matrix row, or ``None`` when no row matches.
    :param explainers: Registered explainers by name.
    :returns: The name of the explainer to use, or ``None`` to defer.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def shapgov_tree_ensemble(model: Any) -> TreeEnsemble | None:
    """Parse a fitted tree model into shapgov's flat tree representation.

    :param model: A fitted tree model (booster, forest, boosted trees, ...).
    :returns: A :class:`shapgov.explainers.trees.TreeEnsemble` whose raw output equals the model's
        margin, or ``None`` when this plugin does not know the model.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def shapgov_model_offset(model: Any, plugins: PluginCalls) -> ModelOffset | None:
    """Say how a model takes a per-row offset in its own prediction method, when it does
    (XGBoost's ``base_margin``, LightGBM's ``init_score``, statsmodels' and glum's
    ``offset=``), and whether it takes an exposure too (statsmodels' ``exposure=``:
    ``ModelOffset.takes_exposure``). Asked only when :func:`shapgov.explain` is given
    ``offset=`` or ``exposure=``: the additivity policy then judges the explanation against
    the model's own output with them, and the base value loses what the offset replaces. A
    model no plugin answers for takes DataRobot's rule (the offset is added to the margin of
    its prediction, the exposure multiplies it); an answer without ``takes_exposure`` is
    used only with an offset.

    :param model: The model as explained (a Pipeline, a wrapper, a leaf model).
    :param plugins: The explanation's plugin calls; ``plugins.first("shapgov_model_offset",
        model=part, plugins=plugins)`` asks about a part (a Pipeline's final step).
    :returns: A :class:`shapgov.decomposition.offsets.ModelOffset`, or ``None`` when this
        plugin does not know the model or the model takes no offset itself.
    :raises InputError: The model takes its offset itself but cannot be explained with one
        the way it is explained (a whole model explained through its outputs).

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def shapgov_stored_categories(model: Any, plugins: PluginCalls) -> dict[Any, list[Any]] | None:
    """Name the columns a fitted model takes as pandas ``category`` columns, with the
    categories it stored at fit (LightGBM's ``pandas_categorical``). A table read from a
    file that carries no dtypes (CSV: labels as text) is recoded to them before it is
    explained, so its labels mean what they meant at fit; a label the model never saw is
    kept for the model's own rule (LightGBM: missing).

    :param model: The model as explained (a Pipeline, a wrapper, a leaf model).
    :param plugins: The plugin calls; ``plugins.first("shapgov_stored_categories",
        model=part, plugins=plugins)`` asks about a part (a Pipeline's final step).
    :returns: ``{column: [category, ...]}`` in the model's column order, or ``None`` when
        this plugin does not know the model or the model stores no categories.

    Stops at first non-None result.
    """
