"""Feature Impact: mean |SHAP| per original feature, and permutation impact.

Both report in the original input columns, normalized so the most important feature is
100%, with the unnormalized values kept. Results are DataFrames with a ``to_dict()``
twin (JSON-ready) for logging and reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shapgov.analyses.tables import json_records
from shapgov.combination.explanation import Explanation
from shapgov.errors import InputError, UnsupportedModelError
from shapgov.registry import sharing_parses

Metric = Callable[[np.ndarray, np.ndarray], float]

DEFAULT_SHAP_SAMPLE = 5000
DEFAULT_PERMUTATION_SAMPLE = 2500
MAX_PERMUTATION_SAMPLE = 100_000
#: Most cells (rows x columns) of shuffled data predicted in one call.
MAX_BATCH_CELLS = 1 << 23


@dataclass(frozen=True)
class FeatureImpact:
    """Impact per feature: ``frame`` has ``feature``, ``impact``, ``normalized`` (top =
    100), ``rank`` (1 = most important) and method-specific columns."""

    method: str
    frame: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``method``, ``params`` and one record per feature."""
        return {
            "method": self.method,
            "params": self.params,
            "features": json_records(self.frame),
        }


def _ranked(frame: pd.DataFrame, by: str = "impact") -> pd.DataFrame:
    top = frame[by].max()
    frame = frame.copy()
    frame["normalized"] = 100.0 * frame[by] / top if top > 0 else 0.0
    frame = frame.sort_values(by, ascending=False, kind="stable").reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame


def shap_impact(explanation: Explanation) -> FeatureImpact:
    """Mean |SHAP| per feature over the explained rows.

    Multiclass: one column ``impact_<class>`` per class, and ``impact`` their mean.
    Features are named by their column label as text, as in :func:`permutation_impact`
    (whose groups are named by text) and the report.
    """
    if len(explanation) == 0:
        raise InputError("the explanation has no rows; explain a non-empty sample")
    raw = np.abs(explanation._raw).mean(axis=0)  # (M, K)
    names = [str(c) for c in explanation.feature_names]
    frame = pd.DataFrame({"feature": names, "impact": raw.mean(axis=1)})
    if explanation.n_outputs > 1:
        labels = explanation.classes or list(range(explanation.n_outputs))
        for k, label in enumerate(labels):
            frame[f"impact_{label}"] = raw[:, k]
    return FeatureImpact(
        "shap", _ranked(frame), {"rows": len(explanation), "space": explanation.output_space}
    )


def sample_rows(X: Any, n: int, random_state: int | None, what: str = "sample") -> Any:
    """A seeded sample of at most ``n`` rows of ``X`` (all rows if there are fewer)."""
    if len(X) == 0:
        raise InputError(f"the data is empty; the {what} needs at least one row")
    if n < 1:
        raise InputError(f"the {what} size must be at least 1, got {n}")
    if len(X) <= n:
        return X
    idx = np.sort(np.random.default_rng(random_state).choice(len(X), size=n, replace=False))
    return X.iloc[idx] if isinstance(X, pd.DataFrame | pd.Series) else np.asarray(X)[idx]


def feature_impact(
    model: Any,
    X: Any,
    *,
    sample: int = DEFAULT_SHAP_SAMPLE,
    random_state: int | None = 0,
    background: Any = None,
    **explain_options: Any,
) -> FeatureImpact:
    """SHAP Feature Impact of ``model`` on a seeded sample of ``X`` (see :func:`shap_impact`).

    :param explain_options: Passed to :func:`shapgov.explain` (``output=``, ...).
    """
    from shapgov.engine import explain

    rows = sample_rows(X, sample, random_state)
    e = explain(model, rows, background=background, **explain_options)
    impact = shap_impact(e)
    impact.params.update({"sample": sample, "random_state": random_state})
    return impact


# --------------------------------------------------------------------- permutation


def _targets(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``y`` as ``(n, K)``, one column per output of the predictions ``p`` ``(n, K)``.

    :raises InputError: ``y`` has another number of columns than the model has outputs.
    """
    y = np.asarray(y, dtype=float).reshape(len(p), -1)
    if y.shape[1] != p.shape[1]:
        raise InputError(
            f"y has {y.shape[1]} column(s) for a model of {p.shape[1]} outputs; pass one "
            "target column per output"
        )
    return y


# regression metrics over every output (uniform average for a regressor of K targets)
_LOSSES = {
    "rmse": lambda y, p: float(np.sqrt(np.mean((_targets(y, p) - p) ** 2))),
    "mae": lambda y, p: float(np.mean(np.abs(_targets(y, p) - p))),
    "log_loss": None,  # built lazily (needs the classes)
}
_SCORES = {"r2", "auc"}
_TASK_METRICS = {
    "regression": {"rmse", "mae", "r2"},
    "binary": {"log_loss", "auc"},
    "multiclass": {"log_loss", "auc"},
}


@dataclass(frozen=True)
class _Scorer:
    name: str
    fn: Metric
    greater_is_better: bool


def _scorer(metric: str | Metric | None, task: str, classes: Sequence[Any] | None) -> _Scorer:
    from sklearn.metrics import log_loss, r2_score, roc_auc_score

    if metric is None:
        metric = "rmse" if task == "regression" else "log_loss"
    if callable(metric):
        name = getattr(metric, "__name__", "custom")
        greater = bool(getattr(metric, "greater_is_better", False))
        return _Scorer(name, lambda y, p: float(metric(y, p)), greater)
    if metric not in _LOSSES and metric not in _SCORES:
        raise InputError(
            f"unknown metric {metric!r}; use one of {sorted(set(_LOSSES) | _SCORES)} or a "
            "callable metric(y_true, predictions) (set its greater_is_better attribute if "
            "higher is better)"
        )
    if metric not in _TASK_METRICS[task]:
        raise InputError(
            f"metric {metric!r} does not fit a {task} model; use one of "
            f"{sorted(_TASK_METRICS[task])}"
        )
    if metric == "r2":
        return _Scorer("r2", lambda y, p: float(r2_score(_targets(y, p), p)), True)
    if metric == "auc":

        def auc(y: np.ndarray, p: np.ndarray) -> float:
            if p.shape[1] == 1:
                return float(roc_auc_score(y, p[:, 0]))
            return float(roc_auc_score(y, p, multi_class="ovr", labels=classes))

        return _Scorer("auc", auc, True)
    if metric == "log_loss":

        def loss(y: np.ndarray, p: np.ndarray) -> float:
            full = np.column_stack([1 - p[:, 0], p[:, 0]]) if p.shape[1] == 1 else p
            return float(log_loss(y, full, labels=classes))

        return _Scorer("log_loss", loss, False)
    return _Scorer(metric, _LOSSES[metric], False)


@sharing_parses
def permutation_impact(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    *,
    metric: str | Metric | None = None,
    sample: int = DEFAULT_PERMUTATION_SAMPLE,
    n_repeats: int = 5,
    random_state: int | None = 0,
    groups: Mapping[str, Sequence[str]] | None = None,
    plugin_manager: Any = None,
    method: str = "auto",
) -> FeatureImpact:
    """Permutation Feature Impact: how much the metric worsens when a feature is shuffled.

    Cost: for a model made of trees shapgov parses, the shuffled predictions come from
    walking the trees (``shapgov.analyses.tree_walks``: only the trees whose path for a
    row meets the shuffled feature are walked again); otherwise as many shuffles per
    predict call as fit in :data:`MAX_BATCH_CELLS` cells.

    :param metric: ``"rmse"`` (default), ``"mae"`` or ``"r2"`` for regression (over
        every output, uniformly averaged, for a regressor of K targets: ``y`` ``(n, K)``);
        ``"log_loss"`` (default) or ``"auc"`` for classification; or a callable
        ``metric(y_true, predictions)`` with predictions ``(n, K)`` (probabilities of the
        positive class for binary), lower is better unless it has
        ``greater_is_better = True``.
    :param sample: Rows used (seeded; at most 100,000).
    :param n_repeats: Shuffles per feature; ``impact`` is their mean, ``impact_std`` their
        spread.
    :param groups: Columns shuffled together under one name (e.g. the one-hot columns of
        one feature in the input).
    :param plugin_manager: The plugin manager that decomposes the model (default: the
        default one).
    :param method: ``"auto"`` (walk the trees when the model is made of trees and the walk
        reproduces its predictions, else predict), ``"trees"`` (raise
        :class:`UnsupportedModelError` when it cannot) or ``"predict"``.
    :returns: A :class:`FeatureImpact` (``params["method"]`` says which route ran).
    :raises InputError: Bad data, target, metric or options.
    """
    if method not in ("auto", "trees", "predict"):
        raise InputError(f"method must be 'auto', 'trees' or 'predict', got {method!r}")
    from shapgov.engine import decompose
    from shapgov.explainers.stage import model_input
    from shapgov.validation import as_frame

    if y is None:
        raise InputError("permutation impact needs the true target y; pass y=")
    if not 1 <= sample <= MAX_PERMUTATION_SAMPLE:
        raise InputError(f"sample must be between 1 and {MAX_PERMUTATION_SAMPLE}, got {sample}")
    if n_repeats < 1:
        raise InputError(f"n_repeats must be at least 1, got {n_repeats}")
    blueprint = decompose(model, plugin_manager=plugin_manager)
    frame = as_frame(X, blueprint.model)
    y = np.asarray(y)
    if len(y) != len(frame):
        raise InputError(f"y has {len(y)} values for {len(frame)} rows; pass one per row")
    idx = sample_rows(np.arange(len(frame)), sample, random_state, "permutation sample")
    frame, y = frame.iloc[idx].reset_index(drop=True), y[idx]
    classes = getattr(blueprint.model, "classes_", None)
    scorer = _scorer(metric, blueprint.task, None if classes is None else list(classes))
    groups = dict(groups or {})
    grouped = {c for cols in groups.values() for c in cols}
    unknown = grouped - set(frame.columns)
    if unknown:
        raise InputError(f"groups name columns that X does not have: {sorted(unknown)}")
    units = {name: list(cols) for name, cols in groups.items()}
    units.update({str(c): [c] for c in frame.columns if c not in grouped})

    own = blueprint.predict(model_input(frame, blueprint.model))
    rng = np.random.default_rng(random_state)
    # the shuffles, drawn in the order (feature, repeat): the same draws whatever the route
    orders = np.array([rng.permutation(len(frame)) for _ in units for _ in range(n_repeats)])
    shuffles = [
        (cols, order)
        for cols, order in zip(
            [c for c in units.values() for _ in range(n_repeats)], orders, strict=True
        )
    ]
    route, reason = "predict", None
    batches: Any = None
    if method in ("auto", "trees"):
        from shapgov.analyses.tree_walks import shuffle_route
        from shapgov.registry import PluginCalls, resolve_plugin_manager

        plugins = PluginCalls(resolve_plugin_manager(plugin_manager))
        routed = shuffle_route(
            blueprint, frame, units, orders.reshape(-1, len(frame)), plugins, own
        )
        if isinstance(routed, str):
            if method == "trees":
                raise UnsupportedModelError(f"permutation impact cannot walk the trees: {routed}")
            reason = routed
        else:
            own, walked = routed
            batches = ((first, list(p.transpose(1, 0, 2))) for first, p in walked)
            route = "trees"
    if batches is None:
        batches = _shuffled_predictions(blueprint, frame, shuffles)
    actual = scorer.fn(y, own)
    drops = np.empty(len(shuffles))
    for first, predictions in batches:
        for b, pred in enumerate(predictions, start=first):
            permuted = scorer.fn(y, pred)
            drops[b] = actual - permuted if scorer.greater_is_better else permuted - actual
    drops = drops.reshape(len(units), n_repeats)
    rows = [
        {
            "feature": name,
            "impact": float(np.mean(d)),
            "impact_std": float(np.std(d, ddof=1)) if n_repeats > 1 else 0.0,
            "columns": list(cols),
        }
        for (name, cols), d in zip(units.items(), drops, strict=True)
    ]
    frame_out = _ranked(pd.DataFrame(rows))
    params = {
        "metric": scorer.name,
        "baseline": actual,
        "sample": len(frame),
        "n_repeats": n_repeats,
        "random_state": random_state,
        "method": route,
        **({"fallback_reason": reason} if reason else {}),
    }
    return FeatureImpact("permutation", frame_out, params)


def _shuffled_predictions(
    blueprint: Any, frame: pd.DataFrame, shuffles: list[tuple[list[Any], np.ndarray]]
) -> Any:
    """Predictions ``(n, K)`` of ``frame`` with each shuffle's columns permuted, as
    ``(index of the first shuffle, [predictions...])`` per batch: as many shuffles per
    predict call as fit in :data:`MAX_BATCH_CELLS` cells. Columns are gathered with
    ``take``, so every column keeps its dtype (category, nullable)."""
    from shapgov.explainers.stage import model_input

    n, m = frame.shape
    per_call = max(1, MAX_BATCH_CELLS // max(n * m, 1))
    for first in range(0, len(shuffles), per_call):
        batch = shuffles[first : first + per_call]
        rows = np.tile(np.arange(n), len(batch))
        columns = {}
        for c in frame.columns:
            take = rows
            for b, (cols, order) in enumerate(batch):
                if c in cols:
                    if take is rows:
                        take = rows.copy()
                    take[b * n : (b + 1) * n] = order
            columns[c] = frame[c].take(take).reset_index(drop=True)
        big = pd.DataFrame(columns, columns=frame.columns)
        pred = blueprint.predict(model_input(big, blueprint.model))
        yield first, [pred[b * n : (b + 1) * n] for b in range(len(batch))]


def compare_impacts(first: FeatureImpact, second: FeatureImpact) -> pd.DataFrame:
    """Both impacts side by side per feature, with Spearman and Kendall rank agreement in
    ``frame.attrs``."""
    from scipy.stats import kendalltau, spearmanr

    a = first.frame.set_index("feature")[["normalized", "rank"]]
    b = second.frame.set_index("feature")[["normalized", "rank"]]
    both = a.join(b, suffixes=(f"_{first.method}", f"_{second.method}"), how="inner")
    ranks = both[[f"rank_{first.method}", f"rank_{second.method}"]].to_numpy()
    if len(both) > 1:
        both.attrs["spearman"] = float(spearmanr(ranks[:, 0], ranks[:, 1]).statistic)
        both.attrs["kendall"] = float(kendalltau(ranks[:, 0], ranks[:, 1]).statistic)
    return both.reset_index()


def mark_redundant(
    impact: FeatureImpact,
    X: pd.DataFrame,
    *,
    correlation: float = 0.9,
    noise: float = 2.0,
    floor: float = 0.01,
) -> FeatureImpact:
    """Add ``redundant_with`` to a permutation impact (DataRobot's ``redundantWith``).

    Feature j is redundant with a higher-impact feature i when both hold:

    * their values move together: ``|Spearman(x_i, x_j)| >= correlation`` (categorical
      columns by their category codes);
    * the model does not need j while i is there: shuffling j alone costs no more than
      ``noise`` standard deviations of its own shuffles, or ``floor`` of the top impact.

    The first such i in impact order is reported; other features get ``None``.
    """
    if impact.method != "permutation":
        raise InputError("redundancy needs a permutation impact (it reads impact_std)")
    frame = impact.frame.copy()
    single = frame[frame["columns"].map(len) == 1]
    codes = {}
    for name, cols in zip(single["feature"], single["columns"], strict=True):
        col = X[cols[0]]
        if not pd.api.types.is_numeric_dtype(col):
            col = col.astype("category").cat.codes.replace(-1, np.nan)
        codes[name] = col.astype(float)
    from shapgov.analyses.row_ranks import column_ranks

    coded = pd.DataFrame(codes)
    ranked = pd.DataFrame(column_ranks(coded.to_numpy(dtype=float)), columns=coded.columns)
    values = ranked.to_numpy()
    if len(values) > 1 and not np.isnan(values).any():  # one BLAS product, not pairwise
        with np.errstate(invalid="ignore", divide="ignore"):
            matrix = np.abs(np.corrcoef(values, rowvar=False))
        corr = pd.DataFrame(np.atleast_2d(matrix), index=ranked.columns, columns=ranked.columns)
    else:  # pairwise over the rows both columns have
        corr = ranked.corr().abs()
    top = float(frame["impact"].max())
    redundant: list[str | None] = []
    for pos, row in frame.iterrows():
        j = row["feature"]
        found = None
        needless = row["impact"] <= max(noise * row["impact_std"], floor * top)
        if j in corr.index and needless:
            for i in frame["feature"].iloc[:pos]:
                if i in corr.index and corr.loc[i, j] >= correlation:
                    found = i
                    break
        redundant.append(found)
    frame["redundant_with"] = redundant
    params = dict(impact.params, redundancy={"correlation": correlation, "noise": noise})
    return FeatureImpact(impact.method, frame, params)
