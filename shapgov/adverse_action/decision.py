"""How a model's output decides, and the reference population reasons are measured against.

Reasons say why an applicant was declined *compared with* someone: the reference
population is the game's background, so a reason's value is how far its inputs move the
applicant's score from the reference population's (Lundberg & Lee 2017's interventional
game; the choice of reference is the main source of disagreement between SHAP-based
reason implementations, FinRegLab 2022, Nair et al. 2022, arXiv 2204.12365). It is
recorded in the game, hashed, like any background.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import InputError, ModelOutputError

#: The reference populations :func:`reference_population` knows.
REFERENCES = ("approved", "all", "near_cutoff")
#: Share of the reference rows closest to the cutoff that ``"near_cutoff"`` keeps.
NEAR_CUTOFF_SHARE = 0.2


@dataclass(frozen=True)
class Decision:
    """The rule that turns the model's score into a decision.

    :param cutoff: The score at which applicants are declined.
    :param declines: ``"above"``: a score ``>= cutoff`` declines (e.g. a probability of
        default); ``"below"``: a score ``< cutoff`` declines (e.g. a credit score).
    :param score: What the cutoff applies to: ``"probability"`` (``predict_proba`` of
        ``positive_class``), ``"prediction"`` (``predict``), or ``"margin"`` (the model's
        margin: log-odds for a binary classifier).
    :param positive_class: The class whose probability is the score (default: the last of
        ``classes_``, e.g. 1 = default).

    The score is a monotone function of the explained margin, so the inputs that push the
    margin toward the declining side push the score there too: reasons are ranked in the
    margin, where the values add up.
    """

    cutoff: float
    declines: str = "above"
    score: str = "probability"
    positive_class: Any = None

    def __post_init__(self) -> None:
        if self.declines not in ("above", "below"):
            raise InputError(f"declines must be 'above' or 'below', not {self.declines!r}")
        if self.score not in ("probability", "prediction", "margin"):
            raise InputError(
                f"score must be 'probability', 'prediction' or 'margin', not {self.score!r}"
            )
        try:
            finite = not isinstance(self.cutoff, bool | str) and np.isfinite(float(self.cutoff))
        except (TypeError, ValueError):
            finite = False
        if not finite:
            raise InputError(
                f"the cutoff must be a finite number (a score), not {self.cutoff!r}; e.g. "
                "Decision(cutoff=0.2) declines a probability of default of 0.2 or more"
            )
        if self.score == "probability" and not 0.0 <= float(self.cutoff) <= 1.0:
            raise InputError(
                f"the cutoff {self.cutoff!r} is a probability, so it lies in [0, 1] (20% is "
                "0.2); for a score on another scale say so: Decision(score='prediction') or "
                "score='margin'"
            )

    @property
    def sign(self) -> float:
        """``+1`` when a higher score declines, ``-1`` when a lower one does: a value times
        ``sign`` is its push toward decline."""
        return 1.0 if self.declines == "above" else -1.0

    def orientation(self, model: Any) -> float:
        """``+1`` when the score rises with the explained margin, ``-1`` when it falls (the
        probability of a binary classifier's first class: the margin is the second's).

        :raises InputError: The decision is on a probability of a model with more than two
            classes (reasons need one score whose margin is explained).
        """
        if self.score != "probability":
            return 1.0
        classes = list(getattr(model, "classes_", []))
        if len(classes) > 2:
            raise InputError(
                f"the model has {len(classes)} classes: adverse-action reasons need one score "
                "(a binary classifier's probability or a regressor's prediction), not a "
                "multiclass probability"
            )
        first = len(classes) == 2 and self.positive_class is not None
        return -1.0 if first and self.positive_class == classes[0] else 1.0

    def scores(self, model: Any, X: pd.DataFrame) -> np.ndarray:
        """The model's scores ``(n,)`` of ``X`` in the decision's units.

        :raises ModelOutputError: The model cannot give that score (no ``predict_proba``, or
            a ``predict`` that gives labels), or gives NaN/inf.
        :raises InputError: The model's classes are not 0/1 or False/True and no
            ``positive_class`` is named, or it is not a class; several outputs per row.
        """
        if self.score == "probability":
            if not hasattr(model, "predict_proba"):
                raise ModelOutputError(
                    "the decision is on a probability but the model has no predict_proba; "
                    "use Decision(score='prediction') for a regression score"
                )
            proba = np.asarray(model.predict_proba(X), dtype=float)
            classes = list(getattr(model, "classes_", range(proba.shape[1])))
            wanted = self.positive_class
            if wanted is None:
                if not _default_positive(classes):
                    labels = [_json_label(c) for c in classes]
                    raise InputError(
                        f"the model's classes are {labels}: name the class whose probability "
                        "the cutoff applies to, the outcome that declines (e.g. the label "
                        "of a default): Decision(cutoff=..., positive_class=<that label>); "
                        "the last class is taken only for 0/1 and False/True labels"
                    )
                wanted = classes[-1]
            if wanted not in classes:
                raise InputError(
                    f"positive_class={wanted!r} is not one of the model's classes {classes}"
                )
            out = proba[:, classes.index(wanted)]
        elif self.score == "prediction":
            if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
                raise InputError(
                    "the decision is on the prediction, but the model is a classifier whose "
                    "predict gives class labels (at its own threshold), not a score the "
                    "cutoff can apply to: decide on its probability, Decision(cutoff=..., "
                    "score='probability')"
                )
            out = np.asarray(model.predict(X) if hasattr(model, "predict") else model(X))
            try:
                out = out.astype(float).reshape(len(X), -1)
            except (TypeError, ValueError):
                raise ModelOutputError(
                    f"the decision is on the prediction, but the model predicts labels such as "
                    f"{out.ravel()[:1].tolist()} rather than scores: decide on a classifier's "
                    "probability, Decision(score='probability', positive_class=...)"
                ) from None
            if out.shape[1] != 1:
                raise InputError(
                    f"the model predicts {out.shape[1]} outputs per row: adverse-action "
                    "reasons need one score (a binary classifier's probability or one "
                    "regression output)"
                )
            out = out[:, 0]
        else:
            if not hasattr(model, "decision_function"):
                raise ModelOutputError(
                    "the decision is on the margin but the model has no decision_function; "
                    "use score='probability' or 'prediction'"
                )
            out = np.asarray(model.decision_function(X), dtype=float).reshape(len(X))
        if not np.all(np.isfinite(out)):
            raise ModelOutputError("the model's scores hold NaN or inf")
        return out

    def declined(self, scores: np.ndarray) -> np.ndarray:
        """``(n,)`` bool: the rows the rule declines."""
        scores = np.asarray(scores, dtype=float)
        if self.declines == "above":
            return scores >= self.cutoff
        return scores < self.cutoff

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready rule."""
        return {
            "cutoff": float(self.cutoff),
            "declines": self.declines,
            "score": self.score,
            "positive_class": _json_label(self.positive_class),
            "rule": f"{self.score} {'>=' if self.declines == 'above' else '<'} {self.cutoff:g} "
            "declines",
        }


def reference_population(
    reference: pd.DataFrame,
    scores: np.ndarray,
    decision: Decision,
    *,
    population: str = "approved",
    near_cutoff_share: float = NEAR_CUTOFF_SHARE,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows of ``reference`` the reasons are measured against.

    :param reference: Candidate rows ``(b, M)`` (e.g. recent applicants).
    :param scores: Their scores ``(b,)`` under ``decision``.
    :param decision: The decision rule.
    :param population: ``"approved"`` (default: the rows the rule approves, the usual
        benchmark: "what an approved applicant looks like"), ``"all"`` (every row), or
        ``"near_cutoff"`` (the ``near_cutoff_share`` of rows whose scores are closest to
        the cutoff: marginal applicants).
    :param near_cutoff_share: The share kept by ``"near_cutoff"``, in ``(0, 1]``.
    :returns: The rows, and a JSON-ready description (population, rule, counts).
    :raises InputError: An unknown population, or a population with no rows (e.g. the
        rule approves none of the reference rows).
    """
    if population not in REFERENCES:
        raise InputError(
            f"reference population must be one of {list(REFERENCES)}, not {population!r}"
        )
    scores = np.asarray(scores, dtype=float)
    if isinstance(near_cutoff_share, bool) or not isinstance(
        near_cutoff_share, int | float | np.number
    ):
        raise InputError(f"near_cutoff_share must be a number in (0, 1], not {near_cutoff_share!r}")
    if population == "approved":
        keep = ~decision.declined(scores)
    elif population == "all":
        keep = np.ones(len(scores), dtype=bool)
    else:
        if not 0 < near_cutoff_share <= 1:
            raise InputError(f"near_cutoff_share must be in (0, 1], not {near_cutoff_share!r}")
        k = max(1, round(near_cutoff_share * len(scores)))
        order = np.argsort(np.abs(scores - decision.cutoff), kind="stable")[:k]
        keep = np.zeros(len(scores), dtype=bool)
        keep[order] = True
    if not keep.any():
        raise InputError(
            f"the reference population {population!r} is empty: the rule "
            f"{decision.to_dict()['rule']!r} approves none of the {len(scores)} reference "
            "rows; give other reference rows or population='all'"
        )
    rows = reference.loc[keep]
    described = {
        "population": population,
        "candidates": len(reference),
        "rows": int(keep.sum()),
        "mean_score": float(scores[keep].mean()),
    }
    if population == "near_cutoff":
        described["share"] = float(near_cutoff_share)
    return rows, described


def _default_positive(classes: list[Any]) -> bool:
    """Whether the last class is plainly the positive one: labels 0/1 or False/True."""
    try:
        return sorted(set(np.asarray(classes).tolist())) in ([0, 1], [False, True])
    except TypeError:
        return False


def _json_label(label: Any) -> Any:
    """A class label as JSON keeps it: numbers, text and booleans as they are (numpy
    scalars as Python ones), anything else as text."""
    if isinstance(label, np.generic):
        label = label.item()
    return label if label is None or isinstance(label, bool | int | float | str) else str(label)
