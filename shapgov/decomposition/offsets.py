"""Offsets a model takes itself: XGBoost's ``base_margin``, LightGBM's ``init_score``.

DataRobot's rule adds an offset to the margin, ``pred = link^-1(base + sum(phi) + offset)``.
A model that takes the offset in its own prediction does not always agree: XGBoost's
``predict(X, base_margin=o)`` *replaces* ``base_score`` with ``o`` (xgboost#6546), and a
LightGBM model boosted from an ``init_score`` predicts without it (its documentation adds
it to the raw score: ``link^-1(predict(X, raw_score=True) + init_score)``). The additivity
policy must judge the explanation against the model's own output computed the model's own
way, so plugins say how through the ``shapgov_model_offset`` hook, answering with a
:class:`ModelOffset`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The model's prediction with a per-row offset ``(n, 1)``, computed its own way: what
#: its prediction method returns (``(n,)``, ``(n, K)``, or ``(n, 2)`` for a binary
#: classifier's ``predict_proba``), in the model's own float dtype. A model that takes an
#: exposure too (``takes_exposure``) is called ``predict(X, offset, exposure)`` with either
#: one ``None`` when not given.
OffsetPredict = Callable[..., Any]


@dataclass(frozen=True, eq=False)
class ModelOffset:
    """How a model takes a per-row offset in its own prediction method.

    :param name: What the model calls the offset, as the report says it
        (``"XGBoost base_margin (replaces base_score)"``).
    :param replaces: ``(K,)``, in the explained margin: the part of the model's margin that
        the offset takes the place of (XGBoost's ``link(base_score)``); zeros where the
        offset adds to the whole margin (LightGBM). It leaves the base value when an offset
        is given: the explained margin is then ``base - replaces + sum(phi) + offset``.
    :param predict: ``predict(X, offset)``: the model's output for the model input ``X``
        with the per-row ``offset`` ``(n, 1)``, computed through the model's own API.
    :param takes_exposure: The model also takes a per-row exposure at predict time
        (statsmodels' ``exposure=``, adding ``log(exposure)`` to its log-link margin):
        ``predict(X, offset, exposure)``, ``(n, 1)`` each or ``None``, and the policy
        judges the rebuild against that output rather than multiplying the exposure in.
    """

    name: str
    replaces: np.ndarray
    predict: OffsetPredict
    takes_exposure: bool = False

    def behind(self, transform: Callable[[Any], Any]) -> ModelOffset:
        """The same offset taken behind a preprocessing step (a Pipeline's transforms):
        ``transform`` maps the outer model's input to this model's input."""
        inner = self.predict
        return ModelOffset(
            self.name,
            self.replaces,
            lambda X, *given: inner(transform(X), *given),
            self.takes_exposure,
        )
