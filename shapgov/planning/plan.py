"""Stage 2: :func:`plan` matches every vertex to its matrix row and explainer, checks the
explainer options, and fixes the one :class:`~shapgov.planning.game.Game` they all play.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from shapgov.decomposition.blueprint import Vertex, class_path
from shapgov.decomposition.decompose import Blueprint
from shapgov.decomposition.links import Link
from shapgov.errors import InputError, UnsupportedModelError
from shapgov.explainers.base import Explainer
from shapgov.explainers.game_links import PROBABILITY_FLOOR
from shapgov.planning.compatibility import MatrixRow, find_row, row_provider, rows
from shapgov.planning.game import (
    FEATURE_PERTURBATIONS,
    INTERVENTIONAL,
    TREE_PATH_DEPENDENT,
    Game,
    check_game_link,
)
from shapgov.planning.players import Players
from shapgov.registry import PluginCalls


@dataclass(frozen=True, eq=False)
class PlannedVertex:
    """A vertex with its explainer chosen: immutable, handed to the explain stage.

    :param vertex: The vertex, its ``origins`` resolved (one per input column).
    :param explainer: The explainer's registered name.
    :param explainer_class: Its class.
    :param options: Checked keyword options for the explainer's constructor.
    :param matrix_row: The vertex's compatibility-matrix row, if any.
    """

    vertex: Vertex
    explainer: str
    explainer_class: type[Explainer]
    options: Mapping[str, Any]
    matrix_row: MatrixRow | None

    @property
    def name(self) -> str:
        return self.vertex.name

    def make_explainer(self) -> Explainer:
        return self.explainer_class(**self.options)


@dataclass(frozen=True, eq=False)
class Plan:
    """What the explain stage runs: the blueprint, its planned vertices, the game and its
    players (every vertex's ``origins`` map its input columns to them)."""

    blueprint: Blueprint
    vertices: tuple[PlannedVertex, ...]
    game: Game
    players: Players


def plan(
    blueprint: Blueprint,
    *,
    plugins: PluginCalls,
    data: pd.DataFrame,
    background: pd.DataFrame | None,
    feature_perturbation: str = "auto",
    explainer_options: Mapping[str, Mapping[str, Any]] | None = None,
    fallback: str | None = "kernel",
    background_weights: Any = None,
    players: Players | None = None,
    game_link: str = "identity",
) -> Plan:
    """Match vertices and composites to matrix rows, pick explainers, fix the game.

    :param data: The rows to explain, in the original columns ``(n, M)``.
    :param background: The background rows given by the user, or ``None``.
    :param feature_perturbation: ``"auto"``, ``"interventional"`` or
        ``"tree_path_dependent"`` (see :mod:`shapgov.planning.game`).
    :param explainer_options: Keyword options per explainer name.
    :param fallback: Explainer for vertices without a supported matrix row, or ``None``.
    :param background_weights: Weights of the background rows (interventional game).
    :param players: The game's players (:class:`~shapgov.planning.players.Players` over
        ``data``'s columns); default: every original column.
    :param game_link: ``"identity"`` or ``"logit"``: the game's link of the background
        average (:mod:`shapgov.planning.game`); ``"logit"`` needs a model explained as a
        whole in its probabilities by an explainer that plays the link (Kernel), and makes
        the blueprint's link the logit (the values add up to the log-odds).
    :raises UnsupportedModelError: A vertex or composite has no supported explainer.
    :raises InputError: Unknown explainer names or options; a game the blueprint cannot
        play.
    """
    pm = plugins.plugin_manager
    table = rows(pm)
    explainers = plugins.explainers()
    settings = checked_options(explainer_options, explainers)
    for record in blueprint.node.composites:
        row = next((r for r in table if r.id == record.matrix_row), None)
        if row is not None and row.status_for(blueprint.task) != "supported":
            raise UnsupportedModelError(
                f"{record.name}: {record.estimator_class} for {blueprint.task} is "
                f"{row.status_for(blueprint.task)!r} in the compatibility matrix ({row.family})."
            )
        if row is not None:
            plugins.record(row_provider(pm, row.id), "shapgov_matrix_rows")
    m = data.shape[1]
    if players is None:
        players = Players.resolve(data.columns)
    planned = []
    for vertex in blueprint.vertices:
        row = find_row(vertex.estimator, table=table)
        if row is not None:
            plugins.record(row_provider(pm, row.id), "shapgov_matrix_rows")
        name = plugins.first(
            "shapgov_select_explainer", vertex=vertex, row=row, explainers=explainers
        )
        if name is None and fallback in explainers:
            name = fallback
        if name is None:
            raise UnsupportedModelError(_no_explainer(vertex, row, fallback))
        cls = explainers.get(name)
        if cls is None:
            raise UnsupportedModelError(
                f"{vertex.name}: explainer {name!r} is not registered; registered: "
                f"{sorted(explainers)}"
            )
        if vertex.response is not None and not cls.supports_response:
            raise UnsupportedModelError(
                f"{vertex.name}: its parent consumes {vertex.response.name}, which explainer "
                f"{name!r} cannot explain exactly; explain the model as a whole instead."
            )
        plugins.use_explainer(name)
        origins = np.arange(m) if vertex.origins is None else np.asarray(vertex.origins)
        origins = players.compose(origins)
        planned.append(
            PlannedVertex(
                replace(vertex, origins=origins),
                name,
                cls,
                MappingProxyType(dict(settings.get(name, {}))),
                row,
            )
        )
    game = resolve_game(
        planned,
        feature_perturbation=feature_perturbation,
        output=blueprint.output,
        data=data,
        background=background,
        background_weights=background_weights,
        link=check_game_link(game_link),
    )
    if game.link != "identity":
        blueprint = linked_blueprint(blueprint, planned, game.link)
    return Plan(blueprint, tuple(planned), game, players)


def linked_blueprint(blueprint: Blueprint, planned: list[PlannedVertex], link: str) -> Blueprint:
    """The blueprint whose explained space is ``link`` of its predictions (a game link):
    one vertex, explained by an explainer that plays the link, whose output is the
    model's prediction itself.

    :raises InputError: Several vertices, an explainer without the link, or a model
        explained in a margin (its link not the identity).
    """
    node = blueprint.node
    if len(planned) != 1 or link not in planned[0].explainer_class.game_links:
        what = ", ".join(f"{pv.name} ({pv.explainer})" for pv in planned)
        raise InputError(
            f"game_link={link!r} links the background average of the model's whole output; "
            f"only a model explained as a whole by an explainer that plays it (Kernel) can, "
            f"not {what}. Explain the model as a whole (opaque=True, or pass its "
            "predict_proba as a callable)."
        )
    if node.link.name != "identity":
        raise InputError(
            f"game_link={link!r} takes the log-odds of probabilities, but the model is "
            f"explained in its margin (link {node.link.name!r}); explain with "
            "output='probability' (or pass its predict_proba as a callable)"
        )
    linked = Link(link, {"clip": PROBABILITY_FLOOR})
    return replace(blueprint, node=replace(node, link=linked, margin_method=None))


def checked_options(
    options: Mapping[str, Mapping[str, Any]] | None, explainers: Mapping[str, type[Explainer]]
) -> dict[str, dict[str, Any]]:
    """``explainer_options`` checked against the registered explainers' parameters.

    :raises InputError: An unknown explainer name or option, listing the valid ones.
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise InputError(
            "explainer_options must map explainer names to option dicts, e.g. "
            "{'kernel': {'n_samples': 4096}}"
        )
    out = {}
    for name, opts in options.items():
        if name not in explainers:
            raise InputError(
                f"explainer_options names unknown explainer {name!r}; registered explainers: "
                f"{sorted(explainers)}"
            )
        valid = explainers[name].option_names()
        unknown = sorted(set(opts) - set(valid))
        if unknown:
            hint = ""
            if "algorithm" in unknown:
                hint = (
                    " The game is chosen for the whole explanation, not per explainer: pass "
                    "explain(..., feature_perturbation='interventional' or "
                    "'tree_path_dependent')."
                )
            raise InputError(
                f"unknown option(s) {unknown} for explainer {name!r}; valid options: "
                f"{list(valid)}.{hint}"
            )
        out[name] = dict(opts)
    return out


def resolve_game(
    planned: list[PlannedVertex],
    *,
    feature_perturbation: str,
    output: str,
    data: pd.DataFrame,
    background: pd.DataFrame | None,
    background_weights: Any = None,
    link: str = "identity",
) -> Game:
    """The game of the explanation (see :mod:`shapgov.planning.game` for ``"auto"``).

    :raises InputError: ``"tree_path_dependent"`` asked of a blueprint with vertices that
        cannot play it, or together with a background.
    """
    if feature_perturbation not in FEATURE_PERTURBATIONS:
        raise InputError(
            f"feature_perturbation must be one of {FEATURE_PERTURBATIONS}, got "
            f"{feature_perturbation!r}"
        )
    others = [
        pv
        for pv in planned
        if TREE_PATH_DEPENDENT not in pv.explainer_class.feature_perturbations
        or pv.vertex.response is not None
    ]
    if feature_perturbation == TREE_PATH_DEPENDENT:
        if others:
            listed = ", ".join(
                f"{pv.name} ({pv.explainer}"
                + (f", explained as {pv.vertex.response.name})" if pv.vertex.response else ")")
                for pv in others
            )
            raise InputError(
                "feature_perturbation='tree_path_dependent' is a game only tree vertices "
                f"explained in their raw margin can play; these vertices cannot: {listed}. "
                "Use feature_perturbation='interventional' (or 'auto') so every vertex plays "
                "the same game."
            )
        if background is not None:
            raise InputError(
                "feature_perturbation='tree_path_dependent' conditions on the trees' "
                "training cover and uses no background; drop background= or use "
                "feature_perturbation='interventional'."
            )
    if feature_perturbation == TREE_PATH_DEPENDENT or (
        feature_perturbation == "auto" and not others and background is None and link == "identity"
    ):
        return Game(TREE_PATH_DEPENDENT, output, None, None, link=link)
    if background is None:
        return Game(INTERVENTIONAL, output, data, "explained rows", link=link)
    return Game(
        INTERVENTIONAL,
        output,
        background,
        "given",
        background_weights=background_weights,
        link=link,
    )


def _no_explainer(vertex: Vertex, row: MatrixRow | None, fallback: str | None) -> str:
    what = f"{vertex.name}: {class_path(vertex.estimator)} ({vertex.task})"
    tail = (
        f" No fallback explainer {fallback!r} is installed."
        if fallback
        else " No fallback was allowed (fallback=None)."
    )
    if row is None:
        return f"{what} has no row in the compatibility matrix.{tail}"
    status = row.status_for(vertex.task)
    return (
        f"{what} is {status!r} in the compatibility matrix row {row.family!r} "
        f"(explainer {row.explainer!r}): {row.notes}{tail}"
    )
