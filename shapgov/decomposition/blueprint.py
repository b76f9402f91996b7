"""Blueprints: a fitted model as modeling vertices plus an affine combination rule.

Every blueprint shapgov explains has the form

    explained(x) = intercept + sum_v  W_v @ out_v(z_v(x)),   prediction = link^-1(explained)

where ``z_v`` is the vertex's preprocessing of the original columns, ``out_v`` is the
vertex's margin (or, when its parent consumes probabilities, a fixed response of that
margin) and ``W_v`` a weight matrix. Because Shapley values are linear, the blueprint's
SHAP values are ``sum_v W_v @ phi_v``, each ``phi_v`` summed back from transformed
columns to the original column it comes from (``origins``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from shapgov.decomposition.encoding import Transform, as_float_matrix
from shapgov.decomposition.links import IDENTITY, Link
from shapgov.errors import UndecomposableModelError, UnsupportedModelError
from shapgov.planning.compatibility import class_path_set


@dataclass(frozen=True)
class Response:
    """A fixed map from a vertex's margin (..., K_m) to what its parent consumes (..., K_r)."""

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    n_outputs: int


@dataclass(frozen=True, eq=False)
class Vertex:
    """One modeling estimator inside a blueprint (immutable: stages hand on new ones)."""

    name: str
    estimator: Any
    task: str
    n_margins: int
    transform: Transform = as_float_matrix
    origins: np.ndarray | None = None
    response: Response | None = None
    weight: np.ndarray | None = None
    allow_nan: bool = False
    #: The vertex's margin ``(n, n_margins)`` as a function of its input Z, for
    #: model-agnostic explainers (Kernel); set by :meth:`DecomposeContext.leaf`.
    margin: Callable[[Any], np.ndarray] | None = None

    @property
    def n_outputs(self) -> int:
        """The number of outputs the parent consumes (after ``response``, if any)."""
        return self.response.n_outputs if self.response else self.n_margins

    def output(self, margin: np.ndarray) -> np.ndarray:
        """What the parent consumes, given margins."""
        return self.response.fn(margin) if self.response else margin


@dataclass(frozen=True)
class CompositeRecord:
    """A composite step met during decomposition (for the matrix and the audit)."""

    name: str
    estimator_class: str
    matrix_row: str | None = None


@dataclass(frozen=True, eq=False)
class Node:
    """The decomposition of one (sub)model: vertices, intercept, link, and methods.

    ``prediction`` names the model method whose output is ``link^-1(explained)``;
    ``margin_method`` names one that outputs ``explained`` itself, if any.
    """

    vertices: tuple[Vertex, ...]
    intercept: np.ndarray
    link: Link
    prediction: str
    margin_method: str | None = None
    composites: tuple[CompositeRecord, ...] = ()
    steps: tuple[str, ...] = ()

    @property
    def n_outputs(self) -> int:
        """K, the number of explained outputs (the length of ``intercept``)."""
        return int(self.intercept.shape[0])

    def under(self, transform: Transform, origins: np.ndarray, label: str) -> Node:
        """This node behind a preprocessing step with the given column origins."""
        verts = []
        for v in self.vertices:
            inner = v.transform
            verts.append(
                replace(
                    v,
                    transform=lambda X, inner=inner: inner(transform(X)),
                    origins=_compose_origins(origins, v.origins),
                )
            )
        return replace(self, vertices=tuple(verts), steps=(label, *self.steps))

    def with_output(self, method: str, *, owner: str) -> Node:
        """This node re-expressed so that its explained output *is* ``method``'s output."""
        if method == self.margin_method:
            return replace(self, link=IDENTITY, prediction=method)
        if method != self.prediction:
            raise UnsupportedModelError(
                f"{owner}: a parent consumes {method!r}, which shapgov cannot express "
                f"through this part's decomposition (it explains {self.prediction!r})."
            )
        if self.link.name == "identity":
            return self
        node = self.respond(self.link.inverse, self.link.name, owner=owner)
        return replace(node, prediction=method, margin_method=method)

    def respond(self, fn: Callable[[np.ndarray], np.ndarray], name: str, *, owner: str) -> Node:
        """This single-vertex node with ``fn`` applied to its output, as the vertex's response."""
        if len(self.vertices) != 1:
            raise UndecomposableModelError(
                f"{owner}: a nonlinear function ({name}) of several vertices is not additive, "
                "so the compatibility matrix has no additive rule for it; explain the model "
                "as a whole with the Kernel explainer (opaque=True)."
            )
        (v,) = self.vertices
        prev, weight, intercept = v.output, _weight(v), self.intercept
        k = fn(np.zeros((1, self.n_outputs))).shape[-1]
        inner = v.response.name if v.response else "margin"
        resp = Response(f"{name}({inner})", lambda m: fn(prev(m) @ weight.T + intercept), k)
        return replace(
            self,
            vertices=(replace(v, response=resp, weight=np.eye(k)),),
            intercept=np.zeros(k),
            link=IDENTITY,
        )


def _weight(v: Vertex) -> np.ndarray:
    return np.eye(v.n_outputs) if v.weight is None else v.weight


def _compose_origins(outer: np.ndarray, inner: np.ndarray | None) -> np.ndarray:
    if inner is None:
        return outer.copy()
    out = np.full(inner.shape, -1, dtype=np.int64)
    ok = inner >= 0
    out[ok] = outer[inner[ok]]
    return out


def combine_nodes(
    parts: list[tuple[Node, np.ndarray]],
    *,
    intercept: np.ndarray,
    link: Link,
    prediction: str,
    margin_method: str | None = None,
    record: CompositeRecord | None = None,
    label: str = "",
) -> Node:
    """Affine combination: ``intercept + sum_i A_i @ explained_i`` of child nodes."""
    vertices: list[Vertex] = []
    total = np.asarray(intercept, dtype=float).copy()
    composites: list[CompositeRecord] = [record] if record else []
    steps = [label] if label else []
    for node, A in parts:
        A = np.atleast_2d(np.asarray(A, dtype=float))
        total = total + A @ node.intercept
        vertices.extend(replace(v, weight=A @ _weight(v)) for v in node.vertices)
        composites.extend(node.composites)
        steps.extend(node.steps)
    return Node(
        tuple(vertices), total, link, prediction, margin_method, tuple(composites), tuple(steps)
    )


def task_of(estimator: Any) -> str:
    """regression, binary or multiclass, from the estimator's classes (none, or an empty
    list as CatBoost's regressors hold: regression)."""
    classes = getattr(estimator, "classes_", None)
    if classes is None or len(classes) == 0:
        return "regression"
    return "binary" if len(classes) == 2 else "multiclass"


#: Composites with one fitted estimator per output (``estimators_``, in output order).
PER_OUTPUT_COMPOSITES = {
    "sklearn.multioutput.MultiOutputRegressor",
    "sklearn.multioutput.RegressorChain",
}


def regression_outputs(estimator: Any) -> int:
    """How many outputs (targets) a fitted regressor predicts: ``K`` when it was fitted on
    a 2-D ``y`` of ``K`` columns and predicts ``(n, K)``, else 1.

    Read from what scikit-learn stores, never by calling the model: ``n_outputs_`` (trees,
    forests, MLPs), one estimator per output (``MultiOutputRegressor``, ``RegressorChain``),
    a 2-D ``coef_`` ``(K, M)`` (linear models), or the stored 2-D targets (``_y`` of the
    nearest-neighbour regressors, ``y_train_`` of Gaussian processes). A model that
    shows none of these counts as one output; an opaque model's outputs are counted on
    its first row instead (:func:`shapgov.decomposition.outputs.with_model_outputs`).
    """
    n = getattr(estimator, "n_outputs_", None)
    if isinstance(n, int | np.integer) and not isinstance(n, bool):
        return int(n)
    if class_path_set(estimator) & PER_OUTPUT_COMPOSITES:
        return len(estimator.estimators_)
    coef = getattr(estimator, "coef_", None)
    if isinstance(coef, np.ndarray) and coef.ndim == 2:
        return int(coef.shape[0])
    for stored in ("_y", "y_train_"):
        y = getattr(estimator, stored, None)
        if isinstance(y, np.ndarray) and y.ndim == 2:
            return int(y.shape[1])
    return 1


def class_path(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
