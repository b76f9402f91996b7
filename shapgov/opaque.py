"""Opaque models: a bare predict function, explained only through its outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import InputError, ModelOutputError, UnsupportedModelError


class PredictFunction:
    """Wraps a callable ``f(X) -> predictions`` so it can take a matrix row (Scoring Code)."""

    def __init__(self, fn: Callable[[Any], Any], *, n_features: int | None = None) -> None:
        self.fn = fn
        if n_features is not None:
            self.n_features_in_ = n_features

    def takes_frame(self, columns: Any) -> None:
        """Call the function on DataFrames with these columns (as the user's X was)."""
        self.feature_names_in_ = np.asarray(columns, dtype=object)

    def predict(self, X: Any) -> np.ndarray:
        return checked_predictions(calling(self.fn, X, f"{self!r}"), len(X), repr(self))

    def __repr__(self) -> str:
        return f"PredictFunction({getattr(self.fn, '__name__', self.fn)!r})"


def calling(fn: Callable[[Any], Any], X: Any, what: str) -> Any:
    """``fn(X)``; a failure inside the model is reported with its cause
    (:func:`failure_cause`), never with the (hybrid) rows some libraries print into their
    messages.

    :raises ModelOutputError: ``fn`` raised; the original exception is chained.
    """
    try:
        return fn(X)
    except Exception as err:
        raise ModelOutputError(
            f"{what} failed on {len(X)} rows: {failure_cause(err).rstrip('.')}. The model "
            "gets rows as X was given (a DataFrame keeps its columns and dtypes)"
        ) from err


#: Most characters of a model's own message carried into a :class:`ModelOutputError`.
CAUSE_CHARS = 300


def failure_cause(err: BaseException) -> str:
    """``"<type>: <cause>"`` of a model's failure, without the data it may print.

    A one-line message is the cause. A message of several lines (MLflow's "Failed to
    enforce schema of data '<the rows>' with schema ... Error: <cause>") has the rows in
    its middle lines, so the cause is taken from the exception it was raised from
    (``__cause__``, else the one being handled, ``__context__``) when that one says it
    in one line (MLflow: "Incompatible input types for column age. Can not safely
    convert int64 to int32."); else from its last line, after its last ``"Error: "``
    where it has one (the rest of that line is the end of the rows). At most
    :data:`CAUSE_CHARS` characters.
    """
    lines = _lines(err)
    if len(lines) == 1:
        return f"{type(err).__name__}: {lines[0][:CAUSE_CHARS]}"
    if not lines:
        return type(err).__name__
    seen = {id(err)}
    inner = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        inner_lines = _lines(inner)
        if len(inner_lines) == 1:
            return f"{type(inner).__name__}: {inner_lines[0][:CAUSE_CHARS]}"
        inner = inner.__cause__ or (None if inner.__suppress_context__ else inner.__context__)
    last = lines[-1]
    marker = last.rfind("Error: ")
    if marker >= 0:
        last = last[marker + len("Error: ") :]
    return f"{type(err).__name__}: {last[-CAUSE_CHARS:]}"


def _lines(err: BaseException) -> list[str]:
    """The non-blank lines of an exception's message (``.message`` where it has one)."""
    text = str(getattr(err, "message", None) or err)
    return [line.strip() for line in text.splitlines() if line.strip()]


def checked_predictions(out: Any, n_rows: int, what: str) -> np.ndarray:
    """A predict function's output as a float array ``(n,)`` or ``(n, K)``.

    :raises ModelOutputError: ``None``, ragged, non-numeric or wrongly sized output.
    """
    if out is None:
        raise ModelOutputError(f"{what} returned None; it must return one prediction per row")
    try:
        arr = np.asarray(out, dtype=float)
    except (TypeError, ValueError) as err:
        raise ModelOutputError(
            f"{what} returned {type(out).__name__} output that is not numeric ({err}); "
            "return one number per row, (n,), or per row and output, (n, K)"
        ) from err
    if arr.ndim == 0 or arr.ndim > 2 or arr.shape[0] != n_rows:
        raise ModelOutputError(
            f"{what} returned shape {arr.shape} for {n_rows} rows; return (n,) or (n, K)"
        )
    return arr


class BlackBox:
    """A whole fitted model explained through its outputs only (the Kernel explainer).

    Regressors are explained on ``predict``; classifiers on ``predict_proba``, in
    probability space, or with ``link="logit"`` (binary) in log-odds: the game is then
    played on ``logit(p)`` and the additivity check maps the values back through the
    link. The model receives hybrid rows in the same form as ``X`` (a DataFrame keeps its
    column types).
    """

    def __init__(self, model: Any, *, link: str = "identity") -> None:
        if link not in ("identity", "logit"):
            raise InputError(f"link must be 'identity' or 'logit', got {link!r}")
        self.model = model
        self.link = link
        method = "predict_proba" if hasattr(model, "classes_") else "predict"
        if not hasattr(model, method):
            raise UnsupportedModelError(
                f"{type(model).__name__} has no {method}(); the Kernel explainer needs "
                "numeric predictions (probabilities for a classifier)"
            )
        self.method = method
        if link == "logit" and len(getattr(model, "classes_", [])) != 2:
            raise InputError("link='logit' needs a binary classifier")
        for attr in ("classes_", "feature_names_in_", "n_features_in_"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    def takes_frame(self, columns: Any) -> None:
        """Give the model DataFrames with these columns (as the user's X was)."""
        if not hasattr(self, "feature_names_in_"):
            self.feature_names_in_ = np.asarray(columns, dtype=object)

    def conform(self, frame: pd.DataFrame, *, what: str = "X") -> pd.DataFrame:
        """``frame`` cast to the model's MLflow signature where lossless (a pyfunc model
        enforces it on every call); other models take it as it is.

        :raises InputError: A column cannot be cast without changing a value.
        """
        from shapgov.mlflow.signature import conform_to_schema, input_schema

        schema = input_schema(self.model)
        return frame if schema is None else conform_to_schema(frame, schema, what=what)

    def predict(self, X: Any) -> np.ndarray:
        """The model's ``predict`` (``predict_proba`` for a classifier) on ``X``: ``(n,)``
        or ``(n, K)`` floats.

        :raises ModelOutputError: ``None``, ragged, non-numeric or wrongly sized output.
        """
        return checked_predictions(self._call(self.method, X), len(X), repr(self))

    def predict_proba(self, X: Any) -> np.ndarray:
        """The model's ``predict_proba`` on ``X``: ``(n, K)`` floats.

        :raises ModelOutputError: ``None``, ragged, non-numeric or wrongly sized output.
        """
        return checked_predictions(self._call("predict_proba", X), len(X), repr(self))

    def _call(self, method: str, X: Any) -> Any:
        return calling(getattr(self.model, method), X, f"{self!r}.{method}")

    def __repr__(self) -> str:
        return f"BlackBox({type(self.model).__name__})"
