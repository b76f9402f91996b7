"""The game: the one value function and background every vertex of an explanation plays.

A blueprint's values are "its SHAP values" only when every vertex is explained in the
same cooperative game. Two games are offered, with the field's names:

* ``"interventional"``: ``v(S) = mean_b f(x_S, b_rest)`` over the background rows ``b``
  (Janzing et al. 2020; Lundberg et al. 2020, "interventional" TreeSHAP). Every
  explainer plays it, so every blueprint can.
* ``"tree_path_dependent"``: ``v(S) = E[f(x) | x_S]`` with the conditional expectation
  taken over each tree's training cover (Lundberg et al. 2020, Algorithm 2). Only tree
  vertices play it, and no background enters.

``"auto"`` picks ``"tree_path_dependent"`` only for a blueprint whose every vertex is a
tree explained in its raw margin, explained without a background; otherwise
``"interventional"``.

The interventional game may carry a **game link** ``g`` applied to the background
average, ``v(S) = g(mean_b f(x_S, b_rest))``: ``"logit"`` is shap's
``KernelExplainer(link="logit")`` game on a model's probabilities (see
:mod:`shapgov.explainers.game_links`); only explainers that list the link in their
``game_links`` play it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import InputError

INTERVENTIONAL = "interventional"
TREE_PATH_DEPENDENT = "tree_path_dependent"
FEATURE_PERTURBATIONS = ("auto", INTERVENTIONAL, TREE_PATH_DEPENDENT)
OUTPUTS = ("margin", "prediction", "probability")
#: Links a game can apply to its background average (``"identity"``: none).
GAME_LINKS = ("identity", "logit")


def frame_sha256(frame: pd.DataFrame, weights: np.ndarray | None = None) -> str:
    """SHA-256 of a table's column names and values (not its index), and of its row
    weights when there are any."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in frame.columns]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    if weights is not None:
        digest.update(np.ascontiguousarray(weights, dtype="<f8").tobytes())
    return digest.hexdigest()


def checked_weights(weights: object, background: pd.DataFrame | None) -> np.ndarray:
    """Background row weights as a float array summing to one.

    :raises InputError: No background, or not one finite non-negative weight per row with
        a positive sum.
    """
    if background is None:
        raise InputError("background_weights need background rows; pass background= too")
    try:
        w = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        w = np.full(0, np.nan)
    if w.shape != (len(background),) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise InputError(
            f"background_weights must be {len(background)} finite non-negative numbers (one "
            "per background row) with a positive sum"
        )
    return w / w.sum()


def check_game_link(link: object) -> str:
    """``link`` checked: one of :data:`GAME_LINKS`.

    :raises InputError: Another value.
    """
    if not isinstance(link, str) or link not in GAME_LINKS:
        raise InputError(
            f"game_link must be one of {GAME_LINKS}, got {link!r}: 'logit' plays "
            "v(S) = logit(mean_b f(x_S, b)) on a model's probabilities (shap's Kernel link)"
        )
    return link


@dataclass(frozen=True, eq=False)
class Game:
    """The cooperative game of one :func:`shapgov.explain` call, built once, immutable.

    :param feature_perturbation: ``"interventional"`` or ``"tree_path_dependent"``.
    :param output: The explained space: ``"margin"``, ``"prediction"`` or ``"probability"``.
    :param background: The background rows in the original columns ``(b, M)``
        (interventional); ``None`` for the path-dependent game.
    :param background_source: ``"given"`` (``background=``) or ``"explained rows"``
        (the default when none is given); ``None`` for the path-dependent game.
    :param background_weights: Weights of the background rows ``(b,)``, normalized to sum
        to one (``v(S) = sum_b w_b f(x_S, z_b)``); ``None`` for equal weights.
    :param link: The game link applied to the background average: ``"identity"`` (none)
        or ``"logit"`` (``v(S) = logit(sum_b w_b f(x_S, z_b))``, interventional only).
    """

    feature_perturbation: str
    output: str
    background: pd.DataFrame | None = field(repr=False)
    background_source: str | None
    background_sha256: str | None = None
    background_weights: np.ndarray | None = field(default=None, repr=False)
    link: str = "identity"

    def __post_init__(self) -> None:
        check_game_link(self.link)
        if self.link != "identity" and self.feature_perturbation != INTERVENTIONAL:
            raise InputError(
                f"game_link={self.link!r} links the background average of the interventional "
                "game; the path-dependent game has no background. Use "
                "feature_perturbation='interventional'."
            )
        if self.feature_perturbation not in (INTERVENTIONAL, TREE_PATH_DEPENDENT):
            raise InputError(
                f"a game is {INTERVENTIONAL!r} or {TREE_PATH_DEPENDENT!r}, got "
                f"{self.feature_perturbation!r}"
            )
        if (self.background is None) != (self.feature_perturbation == TREE_PATH_DEPENDENT):
            raise InputError(
                "the interventional game needs background rows; the path-dependent game takes none"
            )
        if self.background_weights is not None:
            object.__setattr__(
                self,
                "background_weights",
                checked_weights(self.background_weights, self.background),
            )
        if self.background is not None and self.background_sha256 is None:
            digest = frame_sha256(self.background, self.background_weights)
            object.__setattr__(self, "background_sha256", digest)

    @property
    def interventional(self) -> bool:
        """``True`` for the interventional game, ``False`` for the path-dependent one."""
        return self.feature_perturbation == INTERVENTIONAL

    def average(self, values: np.ndarray, axis: int) -> np.ndarray:
        """The game's mean over background rows along ``axis`` (weighted when it is)."""
        if self.background_weights is None:
            return np.mean(values, axis=axis)
        return np.average(values, axis=axis, weights=self.background_weights)

    @property
    def n_background(self) -> int | None:
        """The number of background rows; ``None`` for the path-dependent game."""
        return None if self.background is None else len(self.background)

    def describe(self) -> str:
        """One sentence for reports: which game, against what, in which space."""
        space = {"margin": "the model's margin (pre-link) space"}.get(
            self.output, f"{self.output} space"
        )
        if not self.interventional:
            return (
                "Explained game: path-dependent (tree_path_dependent) Shapley values, "
                f"conditional expectations over the trees' training cover, in {space}."
            )
        source = (
            "the explained rows themselves"
            if self.background_source == "explained rows"
            else "the given background"
        )
        weighted = "weighted " if self.background_weights is not None else ""
        if self.link == "logit":
            space = (
                "log-odds of the background-averaged model output (game link logit: "
                "v(S) = logit(mean_b f(x_S, b)))"
            )
        return (
            f"Explained game: interventional Shapley values against {self.n_background} "
            f"{weighted}background rows ({source}), SHA-256 {self.background_sha256}, in "
            f"{space}."
        )

    def to_dict(self) -> dict[str, Any]:
        """The game as it is recorded (``Explanation.game``, the manifest, the report):
        ``feature_perturbation``, ``output``, ``n_background``, ``background_source``,
        ``background_sha256``, ``background_weighted``, ``link`` and ``description``,
        without the background rows."""
        return {
            "feature_perturbation": self.feature_perturbation,
            "output": self.output,
            "n_background": self.n_background,
            "background_source": self.background_source,
            "background_sha256": self.background_sha256,
            "background_weighted": self.background_weights is not None,
            "link": self.link,
            "description": self.describe(),
        }
