"""Explanations served with predictions: decompose and plan once, explain every request in
the same game, judge every row on its own.

:class:`ServedExplainer` is what a prediction server runs (``shapgov.mlflow.serving``
wraps it as an MLflow pyfunc model). The five stages are those of
:func:`shapgov.explain`; only the last differs. A served request must never fail as a
whole because one of its rows does, so the additivity policy is applied per row: a row
whose normalized mismatch is above the threshold gets status ``"fail"`` and null values
(never numbers), the others ``"pass"`` or ``"warn"`` with their values.

The normalization of a row's mismatch must not depend on the rows it was sent with: where
:func:`shapgov.explain` scales by the mean ``|prediction|`` of the explained rows, a served
row is scaled by the mean ``|prediction|`` of the background (fixed when the model is
loaded)::

    normalized = max_k |rebuilt_k - actual_k| / max(|actual_k|, mean_background |actual_k|, 1e-12)

Adverse-action reasons: given the reasons an approved set holds
(:func:`shapgov.adverse_action.stored.read_reasons`), every answer also carries, per row,
``decision`` (``"declined"``/``"approved"``), ``reason_status`` (``"approved"``,
``"reasons"``, ``"no adverse input"``, ``"needs review"`` or ``"withheld"``),
``reason_1..k`` (codes) and ``reason_statement_1..k``, empty text where a row has fewer
reasons, derived by
:func:`~shapgov.adverse_action.stored.reasons_like_the_set` exactly as the set's were.

Latency: a process that serves small requests should set ``OMP_WAIT_POLICY=PASSIVE``
before the model's library loads (the explaining model does): OpenMP threads spinning
after the model's own predict otherwise slow the next request's kernels several-fold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shapgov.combination.combine import combine_values
from shapgov.combination.policy import clipped, rebuild
from shapgov.decomposition.decompose import decompose_with
from shapgov.decomposition.encoding import as_stored_categories
from shapgov.decomposition.outputs import with_model_outputs
from shapgov.errors import InputError
from shapgov.explainers.stage import explain_vertices, model_input
from shapgov.opaque import BlackBox, PredictFunction
from shapgov.planning.plan import plan
from shapgov.registry import PluginCalls, resolve_plugin_manager, shared_parses
from shapgov.validation import as_frame, same_columns

STATUS = "additivity_status"
MISMATCH = "normalized_mismatch"
#: Per row, the units of ``base_value`` and ``shap_*`` (the explained space), and the link
#: from that space to ``prediction``: ``prediction = inverse_link(base_value + sum shap_*)``.
SPACE = "explained_space"
LINK = "link"
#: The adverse-action columns (when the approved set holds reasons): the decision's
#: verdict and the reasons' status per row, then :func:`reason_columns`.
DECISION = "decision"
REASON_STATUS = "reason_status"


def reason_columns(max_reasons: int) -> list[str]:
    """The adverse-action columns of a served answer (and of ``shapgov.spark``), in order:
    ``decision``, ``reason_status``, ``reason_1..k``, ``reason_statement_1..k``."""
    k = range(1, int(max_reasons) + 1)
    return [
        DECISION,
        REASON_STATUS,
        *[f"reason_{j}" for j in k],
        *[f"reason_statement_{j}" for j in k],
    ]


def reason_table(result: Any) -> pd.DataFrame:
    """The served adverse-action columns (:func:`reason_columns`) of an
    :class:`~shapgov.adverse_action.derive.AdverseActionReasons`, one line per row in its
    order (a fresh ``RangeIndex``): text, and empty text (never null) where a row has fewer
    reasons, so that every route carries them alike (JSON, CSV, and MLflow's Spark UDF,
    which turns a null among texts into the text ``"None"``)."""
    frame = result.to_frame().reset_index(drop=True)
    k = result.max_reasons
    renamed = {"status": REASON_STATUS}
    renamed |= {f"statement_{j}": f"reason_statement_{j}" for j in range(1, k + 1)}
    out = frame.rename(columns=renamed)[reason_columns(k)]
    return out.astype(object).where(out.notna(), "")


class ServedExplainer:
    """A model's explanation, prepared once and served row by row.

    :param model: The fitted model (as :func:`shapgov.explain` takes it).
    :param background: The background rows ``(b, M)`` of the interventional game (the
        approved set's); ``None`` only for the path-dependent game of a pure-tree model.
    :param feature_perturbation: ``"auto"``, ``"interventional"`` or
        ``"tree_path_dependent"`` (see :func:`shapgov.explain`).
    :param game_link: ``"identity"`` or ``"logit"``, the game's link of the background
        average (see :func:`shapgov.explain`).
    :param output: The explained space (``"margin"``, ``"prediction"``, ``"probability"``).
    :param additivity_threshold: Normalized mismatch above which a row's values are withheld.
    :param pass_tolerance: Normalized mismatch up to which a row passes silently.
    :param top_k: Prediction Explanations per row (0: none): columns ``pe_<r>_feature`` and
        ``pe_<r>_shap`` for r = 1..k, of the predicted class for multiclass models; a
        regressor of several targets gets them per output (``pe_<r>_feature_<output>``).
    :param opaque: Explain the model as a whole with the Kernel explainer (as
        :func:`shapgov.explain` does with ``opaque=True``).
    :param keys: Columns a request may carry beside the features to name its rows (an
        applicant ID): they are not explained, and come back first in every answer.
    :param reasons: The adverse-action reasons an approved set holds
        (:func:`~shapgov.adverse_action.stored.read_reasons`): every answer then carries
        :func:`reason_columns`, derived by
        :func:`~shapgov.adverse_action.stored.reasons_like_the_set` for the requested
        rows. ``None``: no reason columns.
    :param plugin_manager: The plugins that decompose and explain (default: the default).
    :raises InputError: Bad background or options.
    :raises CatalogueError: The reasons' catalogue does not cover the model's inputs.
    :raises UnsupportedModelError: No plugin or explainer covers the model.
    """

    def __init__(
        self,
        model: Any,
        *,
        background: Any = None,
        background_weights: Any = None,
        feature_perturbation: str = "auto",
        game_link: str = "identity",
        output: str = "margin",
        additivity_threshold: float = 0.01,
        pass_tolerance: float = 1e-6,
        fallback: str | None = "kernel",
        explainer_options: Mapping[str, Mapping[str, Any]] | None = None,
        top_k: int = 0,
        keys: Sequence[str] = (),
        opaque: bool = False,
        reasons: Mapping[str, Any] | None = None,
        plugin_manager: Any = None,
    ) -> None:
        if not 0.0 <= pass_tolerance <= additivity_threshold:
            raise InputError("need 0 <= pass_tolerance <= additivity_threshold")
        self._plugins = PluginCalls(resolve_plugin_manager(plugin_manager))
        # the model is fitted and owned here: its parsed trees are kept for every request
        self._parses: dict[Any, Any] = {}
        with shared_parses(self._parses):
            self._prepare(
                model,
                background=background,
                background_weights=background_weights,
                feature_perturbation=feature_perturbation,
                game_link=game_link,
                output=output,
                fallback=fallback,
                explainer_options=explainer_options,
                opaque=opaque,
            )
        self.threshold_ = float(additivity_threshold)
        self.pass_tolerance_ = float(pass_tolerance)
        n_features = len(self.columns_)
        if not 0 <= top_k <= n_features:
            raise InputError(f"top_k must be between 0 and {n_features}, got {top_k}")
        self.top_k_ = int(top_k)
        self.keys_ = [str(k) for k in keys]
        clash = [k for k in self.keys_ if k in map(str, self.columns_)]
        if clash:
            raise InputError(f"key columns {clash} are features of the model; name other columns")
        self._model = model
        self._explainer_options = explainer_options
        #: The set's reasons (summary, catalogue, reference rows), or ``None``.
        self.reasons_: dict[str, Any] | None = None
        self.max_reasons_ = 0
        if reasons:
            self.reasons_ = {k: reasons[k] for k in ("summary", "catalogue", "reference")}
            self.max_reasons_ = int(reasons["summary"]["max_reasons"])
            reasons["catalogue"].check_inputs([str(c) for c in self.columns_])
            clash = [k for k in self.keys_ if k in reason_columns(self.max_reasons_)]
            if clash:
                raise InputError(
                    f"key columns {clash} are named like the served reason columns; name "
                    "other columns"
                )
        node = self.blueprint_.node
        self.link_ = node.link.name
        #: The units of ``base_value`` and the ``shap_*`` columns: the space the game was
        #: explained in (``"margin"`` before the link, ``"probability"``, ...).
        self.explained_space_ = "margin" if node.link.name != "identity" else output
        classes = getattr(self.blueprint_.model, "classes_", None)
        self._classifier = classes is not None
        k = self.blueprint_.node.n_outputs
        # several outputs: the class labels, or the outputs' positions (multi-output regression)
        self.labels_ = (
            None if k == 1 else [str(c) for c in (classes if classes is not None else range(k))]
        )
        self.game_ = self.plan_.game.to_dict()

    def _prepare(
        self,
        model: Any,
        *,
        background: Any,
        background_weights: Any,
        feature_perturbation: str,
        game_link: str,
        output: str,
        fallback: str | None,
        explainer_options: Mapping[str, Mapping[str, Any]] | None,
        opaque: bool,
    ) -> None:
        self.blueprint_ = decompose_with(
            model,
            self._plugins,
            calibration="probability",
            output=output,
            opaque=opaque,
            fallback=fallback,
        )
        if background is None:
            raise InputError(
                "a served explanation needs its background rows (the approved set's); pass "
                "background="
            )
        if isinstance(self.blueprint_.model, BlackBox | PredictFunction) and isinstance(
            background, pd.DataFrame
        ):  # the black box gets rows as the background holds them (as explain() does)
            self.blueprint_.model.takes_frame(background.columns)
        bg = as_frame(background, self.blueprint_.model, what="background")
        # an opaque regressor's outputs are counted on one row (several targets: K)
        self.blueprint_ = with_model_outputs(
            self.blueprint_, model_input(bg.iloc[:1], self.blueprint_.model), self._plugins
        )
        self.plan_ = plan(
            self.blueprint_,
            plugins=self._plugins,
            data=bg,
            background=bg,
            feature_perturbation=feature_perturbation,
            explainer_options=explainer_options,
            fallback=fallback,
            background_weights=background_weights,
            game_link=game_link,
        )
        self.blueprint_ = self.plan_.blueprint  # a game link makes its own explained space
        self.columns_ = list(bg.columns)
        self.dtypes_ = bg.dtypes
        self._plain_dtypes = not any(isinstance(t, pd.CategoricalDtype) for t in bg.dtypes)
        self._column_names = [str(c) for c in bg.columns]
        self._dtype_tuple = tuple(bg.dtypes)
        self._scale = np.maximum(np.abs(self._actual(bg)).mean(axis=0), 1e-12)  # (K,)

    def plugins(self) -> list[dict[str, Any]]:
        """The plugins that took part so far (as an explanation's ``plugins`` lists them)."""
        return self._plugins.participants()

    # ------------------------------------------------------------------ columns
    def output_columns(self) -> list[str]:
        """The columns :meth:`explain` returns, in order."""
        suffixes = [""] if self.labels_ is None else [f"_{c}" for c in self.labels_]
        cols = [f"prediction{s}" for s in suffixes]
        cols += [f"base_value{s}" for s in suffixes]
        cols += [f"shap_{f}{s}" for f in self.columns_ for s in suffixes]
        cols += [STATUS, MISMATCH]
        pe = [""] if self.labels_ is None or self._classifier else [f"_{c}" for c in self.labels_]
        for s in pe:
            for r in range(1, self.top_k_ + 1):
                cols += [f"pe_{r}_feature{s}", f"pe_{r}_shap{s}"]
        return [*self.keys_, *cols, SPACE, LINK, *self.reason_columns()]

    def reason_columns(self) -> list[str]:
        """The adverse-action columns :meth:`explain` ends with (none without reasons)."""
        return reason_columns(self.max_reasons_) if self.reasons_ is not None else []

    # ------------------------------------------------------------------ explain
    def explain(self, X: Any) -> pd.DataFrame:
        """Predictions, SHAP values, base values, and each row's additivity status and
        normalized mismatch, one line per row of ``X`` (see :meth:`output_columns`).

        :raises InputError: ``X`` has other columns than the background, or is empty.
        """
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(np.asarray(X), columns=self.columns_[: np.shape(X)[-1]])
        order = [*self.columns_, *self.keys_]
        if [str(c) for c in X.columns] == [str(j) for j in range(X.shape[1])] and X.shape[1] in (
            len(self.columns_),
            len(order),
        ):  # unnamed (Spark UDF): features, then keys
            X = X.set_axis(order[: X.shape[1]], axis=1)
        if X.index.name is not None and str(X.index.name) in self.keys_:
            X = X.reset_index()  # a key held as the index (in process) comes back too
        sent = [k for k in self.keys_ if k in X.columns]
        keys = X[sent].reset_index(drop=True) if sent else None
        if sent:
            X = X.drop(columns=sent)
        self._check_request_columns(X)
        frame = as_frame(self.conform(X), self.blueprint_.model)
        if len(frame) == 0:
            raise InputError("no rows to explain; send at least one row")
        if [str(c) for c in frame.columns] != self._column_names:
            same_columns(pd.DataFrame(columns=self.columns_), frame)  # raises, naming them
        with shared_parses(self._parses):
            results = explain_vertices(self.plan_, frame, plugins=self._plugins)
        combined = combine_values(self.plan_, results)
        node = self.blueprint_.node
        actual = self._actual(frame)
        rebuilt = rebuild(node.link, combined.explained, None, None, None, margin=True)
        mismatch = self._mismatch(rebuilt, actual)
        status = np.where(
            mismatch > self.threshold_,
            "fail",
            np.where(mismatch > self.pass_tolerance_, "warn", "pass"),
        )
        values = np.array(combined.values, dtype=float, copy=True)  # (n, M, K)
        values[status == "fail"] = np.nan  # withheld: never numbers
        out = self._frame(actual, combined.base, values, status, mismatch, keys)
        if self.reasons_ is not None:
            out = pd.concat([out, self.reasons(frame)], axis=1)
        return out

    def reasons(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The adverse-action columns (:meth:`reason_columns`) of conformed rows, one line
        per row in order: :func:`~shapgov.adverse_action.stored.reasons_like_the_set` with
        the set's catalogue, rule, reference population and limits, and this explainer's
        plugins and explainer options.

        :raises InputError: No reasons were given.
        """
        from shapgov.adverse_action.stored import reasons_like_the_set

        if self.reasons_ is None:
            raise InputError("this explainer serves no reasons (none were given)")
        options: dict[str, Any] = {"plugin_manager": self._plugins.plugin_manager}
        if self._explainer_options:
            options["explainer_options"] = self._explainer_options
        with shared_parses(self._parses):
            got = reasons_like_the_set(self._model, frame, self.reasons_, options=options)
        return reason_table(got)

    def _check_request_columns(self, X: pd.DataFrame) -> None:
        """A request must carry every feature column (null where a value is missing) and
        nothing else but key columns; the error names the columns, never the rows."""
        features = [str(c) for c in self.columns_]
        got = [str(c) for c in X.columns]
        missing = [c for c in features if c not in got]
        unexpected = [c for c in got if c not in features]
        if missing or unexpected:
            said = [f"missing {missing}"] * bool(missing) + [f"unexpected {unexpected}"] * bool(
                unexpected
            )
            keys = f" and the key columns {self.keys_}" if self.keys_ else ""
            raise InputError(
                f"the request's columns differ from the model's features ({', '.join(said)}); "
                f"send every feature column (null where a value is missing){keys}, nothing else"
            )

    def conform(self, X: pd.DataFrame) -> pd.DataFrame:
        """A request's columns in the dtypes the model was explained with: a category
        column sent as text (JSON and CSV carry strings; nulls are missing) becomes the
        background's categories, with labels it lacks appended, so that the model's own
        rules decide what an unseen label means (LightGBM: missing; XGBoost: an error);
        other columns are cast where the cast changes no value.

        :raises InputError: A column cannot take the background's dtype (names it).
        """
        if (
            self._plain_dtypes
            and [str(c) for c in X.columns] == self._column_names
            and tuple(X.dtypes) == self._dtype_tuple
        ):
            return X  # a request already in the model's dtypes (no categories): as it is
        stored = {
            name: list(dtype.categories)
            for name, dtype in self.dtypes_.items()
            if isinstance(dtype, pd.CategoricalDtype)
        }
        out = as_stored_categories(X, stored)
        for name, dtype in self.dtypes_.items():
            if name in stored or name not in out.columns or out[name].dtype == dtype:
                continue
            col = out[name]
            try:
                cast = col.astype(dtype)
                same = (cast.isna() == col.isna()).all() and bool(
                    (cast[col.notna()].astype(object) == col[col.notna()].astype(object)).all()
                )
            except (TypeError, ValueError):
                same = False
            if not same:
                raise InputError(
                    f"column {name!r} ({col.dtype}) cannot be read as {dtype} without changing "
                    "a value; send the values the model was fitted on"
                )
            out[name] = cast
        return out

    def _actual(self, frame: pd.DataFrame) -> np.ndarray:
        actual = self.blueprint_.predict(model_input(frame, self.blueprint_.model))
        return clipped(self.blueprint_.node.link, actual)  # a game link's clip, as check does

    def _mismatch(self, rebuilt: np.ndarray, actual: np.ndarray) -> np.ndarray:
        rebuilt = np.asarray(rebuilt, dtype=float).reshape(len(actual), -1)
        denom = np.maximum(np.abs(actual), self._scale[None, :])
        with np.errstate(invalid="ignore"):
            ratio = np.abs(rebuilt - actual) / denom
        ratio[~np.isfinite(ratio)] = np.inf
        return ratio.max(axis=1)

    def _frame(
        self,
        actual: np.ndarray,
        base: np.ndarray,
        values: np.ndarray,
        status: np.ndarray,
        mismatch: np.ndarray,
        keys: pd.DataFrame | None,
    ) -> pd.DataFrame:
        """The response in :meth:`output_columns` order, built from three blocks (the
        keys, the numbers as one float block, the few text and rank columns): a served
        row pays for a handful of frame constructions, not one per column."""
        n, m, k = values.shape
        # the numbers: predictions, base values, then per feature its value for each output
        numbers = np.concatenate(
            [actual, np.broadcast_to(base, (n, k)), values.reshape(n, m * k)], axis=1
        )
        first = len(self.keys_)
        names = self.output_columns()[first : first + numbers.shape[1]]
        tail: dict[str, Any] = {STATUS: status.astype(object), MISMATCH: mismatch}
        if self.top_k_:
            features = np.asarray([str(c) for c in self.columns_], dtype=object)
            failed = status == "fail"
            for suffix, chosen in self._explained_outputs(actual):
                phi = values[np.arange(n), :, chosen]  # (n, M)
                order = np.argsort(-np.abs(np.nan_to_num(phi)), axis=1, kind="stable")
                for r in range(self.top_k_):
                    feature = features[order[:, r]].copy()
                    feature[failed] = None
                    tail[f"pe_{r + 1}_feature{suffix}"] = feature
                    tail[f"pe_{r + 1}_shap{suffix}"] = phi[np.arange(n), order[:, r]]
        tail[SPACE] = self.explained_space_
        tail[LINK] = self.link_
        index = pd.RangeIndex(n)
        blocks = [
            pd.DataFrame(numbers, columns=names, index=index),
            pd.DataFrame(tail, index=index),
        ]
        if self.keys_:
            sent = {} if keys is None else {c: keys[c] for c in keys.columns}
            echoed = {key: sent.get(key) for key in self.keys_}
            blocks.insert(0, pd.DataFrame(echoed, index=index))
        return pd.concat(blocks, axis=1)

    def _explained_outputs(self, actual: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """Whose Prediction Explanations a row gets, as (column suffix, output per row):
        a classifier's predicted class; each output of a regressor of several targets."""
        n, k = actual.shape
        if k == 1:
            return [("", np.zeros(n, dtype=np.int64))]
        if self._classifier:
            return [("", np.argmax(actual, axis=1))]
        return [(f"_{label}", np.full(n, o)) for o, label in enumerate(self.labels_)]
