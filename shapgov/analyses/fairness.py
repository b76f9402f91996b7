"""Fair-lending checks: disparate impact and proxies, from the governed explanation.

:func:`fairness` reads a governed :class:`~shapgov.combination.explanation.Explanation`
(or explains a model first) and a table of protected attributes aligned with its rows —
attributes that are **not** model inputs (ECOA, Regulation B, 12 CFR 1002.6(b): a creditor
may not use them). For each attribute, each group is compared with a reference group:

* **Decisions**: approval rates and the **adverse impact ratio** (AIR) with its Katz
  interval (:mod:`shapgov.analyses.fairness_stats`). **The flag rule**: a group is flagged
  when its AIR is below ``air_threshold`` (the four-fifths screen, 0.8, by default) *and*
  the one-sided test of ``AIR >= 1`` rejects at ``alpha`` after Holm's correction over
  every comparison of the result, *and* the group has at least ``min_group_size`` rows
  (smaller groups are reported, warned about, never flagged). With no real difference
  the chance that any group of a result is flagged is at most ``alpha``.
* **Scores**: the standardized mean difference of the score with its interval.
* **Outcomes** (with ``y``): false positive and false negative rates of the decision
  (``positive`` = the event the score predicts, e.g. default; a decline "predicts" it),
  their differences with Newcombe intervals, and calibration within groups (mean score
  against the observed rate).
* **Attribution of the gap**: the difference of the groups' mean explained output
  (e.g. the log-odds margin) is, exactly, the sum over players of the difference of their
  mean SHAP values (the base value cancels; the values add up): reported per player, the
  largest first, so a reviewer sees which inputs carry the gap.
* **Over time** (``windows``, one label per row, e.g. from :func:`shapgov.over_time`):
  per window, each group's approval rate, AIR (against the reference group of the whole
  result), interval and gap; a window's group is flagged by the same rule, Holm's
  correction then running over every (window, group) comparison.
* **Proxy screen**: per input, the proxy score of its values for the attribute (the best
  one-group-against-the-rest cross-validated AUC); an input whose score reaches
  ``max_proxy_score`` is flagged, and flagged inputs are listed first, the ones with the
  largest share of Feature Impact on top: an input that both predicts a protected
  attribute and drives the score. The score of its SHAP column is reported beside it: a
  SHAP column can give a group away through the input's interactions with a proxy even
  where the input's values do not (it says where the input's *effect* differs by group).

The protected table itself is not kept: only its SHA-256 and the group counts.
Sources: EEOC Uniform Guidelines 29 CFR 1607.4(D) (four-fifths rule); CFPB, ECOA
examination procedures (disparate impact); Holm 1979.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shapgov.analyses.drift import holm
from shapgov.analyses.fairness_stats import (
    difference_of_rates,
    proxy_score,
    ratio_of_rates,
    standardized_difference,
)
from shapgov.analyses.tables import json_records
from shapgov.errors import InputError, ProtectedAttributeError


class SmallGroupWarning(UserWarning):
    """A protected group has fewer rows than ``min_group_size``: reported, never flagged."""


@dataclass(frozen=True, eq=False)
class Fairness:
    """The result of :func:`fairness`.

    :param groups: One row per (attribute, group): ``reference`` (the group compared
        with), ``n``, ``approved``, ``approval_rate``, ``air``, ``air_low``, ``air_high``,
        ``p_value`` (one-sided, ``AIR >= 1``), ``p_adjusted`` (Holm), ``small``,
        ``flagged``, ``mean_score``, ``smd`` (and ``smd_low``, ``smd_high``),
        ``mean_explained`` (in the explained space) and ``gap`` (its difference with the
        reference's); with ``y``: ``observed_rate``, ``fpr``, ``fnr``, ``fpr_diff``,
        ``fpr_low``, ``fpr_high``, ``fnr_diff``, ``fnr_low``, ``fnr_high``. The reference
        group's row has ``air`` 1.
    :param gaps: One row per (attribute, group, player): ``mean_shap_group``,
        ``mean_shap_reference``, ``contribution`` (their difference; the contributions of
        a group sum to its ``gap``), ``share`` (of ``|gap|``, signed), ``rank``.
    :param proxies: One row per (attribute, input): ``score`` (the proxy score of its
        values, the flagged statistic), ``shap_proxy_score`` (of its SHAP column, reported),
        ``group`` (the group its values give away best), ``impact_share`` (its share of
        Feature Impact), ``flagged``, ``order`` (1 = listed first).
    :param summary: The rules and thresholds, the protected table's SHA-256 and group
        counts, the flagged groups and proxies.
    """

    groups: pd.DataFrame
    gaps: pd.DataFrame
    proxies: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    #: One row per (window, attribute, group) when windows were given: ``window``, ``n``,
    #: ``approval_rate``, ``air``, ``air_low``, ``air_high``, ``p_adjusted``, ``small``,
    #: ``flagged``, ``gap``; ``None`` otherwise.
    windows: pd.DataFrame | None = None

    @property
    def flagged(self) -> bool:
        """Whether any group or proxy was flagged."""
        return bool(self.groups["flagged"].any() or self.proxies["flagged"].any())

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready records (as the artifact set stores it)."""
        out = {
            "groups": json_records(self.groups),
            "gaps": json_records(self.gaps),
            "proxies": json_records(self.proxies),
            "summary": self.summary,
        }
        if self.windows is not None:
            out["windows"] = json_records(self.windows)
        return out


def protected_sha256(protected: pd.DataFrame) -> str:
    """SHA-256 of the protected table's column names and values (not its index)."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, protected.columns)).encode())
    digest.update(pd.util.hash_pandas_object(protected, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def checked_protected(protected: Any, explanation: Any) -> pd.DataFrame:
    """The protected table as a DataFrame aligned with the explanation's rows.

    :raises ProtectedAttributeError: Not one row per explained row (or another index), a
        missing value, an attribute with a single group, or an attribute that is a model
        input.
    """
    if isinstance(protected, pd.Series):
        protected = protected.to_frame()
    if not isinstance(protected, pd.DataFrame) or protected.shape[1] == 0:
        raise ProtectedAttributeError(
            "protected must be a DataFrame (or Series) of protected attributes, one row per "
            "explained row, e.g. protected=applicants[['sex', 'age_band']]"
        )
    data = explanation.data
    if len(protected) != len(data):
        raise ProtectedAttributeError(
            f"the protected table has {len(protected)} rows for {len(data)} explained rows; "
            "pass one row per explained row, in the same order"
        )
    if not protected.index.equals(data.index):
        raise ProtectedAttributeError(
            "the protected table's index differs from the explained rows' index: align them "
            "(protected.set_index(X.index), or reset both indexes)"
        )
    inputs = {str(c) for c in data.columns}
    clash = [c for c in protected.columns if str(c) in inputs]
    if clash:
        raise ProtectedAttributeError(
            f"protected attribute(s) {clash} are model inputs: a model may not use them "
            "(ECOA, 12 CFR 1002.6(b)); fit the model without them"
        )
    for col in protected.columns:
        if protected[col].isna().any():
            raise ProtectedAttributeError(
                f"protected attribute {col!r} has {int(protected[col].isna().sum())} missing "
                "values: give every row a group (an explicit 'unknown' group if need be)"
            )
        if protected[col].nunique() < 2:
            raise ProtectedAttributeError(
                f"protected attribute {col!r} has a single group: there is nothing to compare"
            )
    return protected


def _scores(explanation: Any, decision: Any) -> tuple[np.ndarray, int, Any]:
    """The decision's score per row, the explained output it reads and the positive class
    (the event the score predicts; ``None`` for a regressor).

    :raises InputError: A multiclass model without ``positive_class``, a class the model
        does not have, or a probability asked of a regressor.
    """
    classes = list(explanation.classes or [])
    if not classes:
        if decision.score == "probability":
            raise InputError(
                "a regressor has no probability: decide on its prediction, "
                "Decision(cutoff=..., score='prediction')"
            )
        return np.asarray(_prediction(explanation), dtype=float)[:, 0], 0, None
    if explanation.n_outputs > 1 and decision.positive_class is None:
        raise InputError(
            f"a multiclass model scores one class per output: name the class whose "
            f"probability decides, Decision(..., positive_class=...) of {classes}"
        )
    wanted = decision.positive_class if decision.positive_class is not None else classes[-1]
    if wanted not in classes:
        raise InputError(f"positive_class {wanted!r} is not one of the classes {classes}")
    k = classes.index(wanted) if explanation.n_outputs > 1 else 0
    flip = explanation.n_outputs == 1 and wanted == classes[0]  # binary: the other class
    if decision.score == "margin":
        margin = explanation.explained_output[:, k]
        return (-margin if flip else margin), k, wanted
    score = np.asarray(_prediction(explanation), dtype=float)[:, k]
    return (1.0 - score if flip else score), k, wanted


def _prediction(explanation: Any) -> np.ndarray:
    prediction = explanation.prediction
    if prediction is None:
        prediction = explanation.link.inverse(explanation.explained_output)
    return np.asarray(prediction)


def fairness(
    explanation_or_model: Any,
    X: Any = None,
    *,
    protected: Any,
    decision: Any,
    y: Any = None,
    reference: dict[str, Any] | None = None,
    background: Any = None,
    air_threshold: float = 0.8,
    alpha: float = 0.05,
    confidence: float = 0.95,
    min_group_size: int = 30,
    max_proxy_score: float = 0.7,
    random_state: int = 0,
    windows: Any = None,
) -> Fairness:
    """Disparate impact, its attribution to inputs, and proxies (see the module).

    :param explanation_or_model: A governed explanation, a grouped one
        (:func:`shapgov.explain_groups` with ``member_sums=True``: the gap is then
        decomposed over its players, the proxy screen reads the columns), or a fitted model
        (then ``X`` and ``background`` are explained with :func:`shapgov.explain` first).
    :param X: The rows to explain (with a model only).
    :param protected: Protected attributes ``(n, A)``, one row per explained row (same
        index), none of them a model input.
    :param decision: A :class:`shapgov.Decision`: the cutoff that declines.
    :param y: Observed outcomes ``(n,)`` (1 or ``decision.positive_class`` = the event
        the score predicts), for error rates and calibration.
    :param reference: The reference group per attribute (default: the group with the
        highest approval rate among groups of at least ``min_group_size`` rows, the
        EEOC's comparison).
    :param air_threshold: AIR below which a group may be flagged (0.8: four-fifths).
    :param alpha: Family-wise level of the flag's test (Holm over all comparisons).
    :param confidence: Level of the reported intervals.
    :param min_group_size: Groups with fewer rows are reported with a
        :class:`SmallGroupWarning` and never flagged.
    :param max_proxy_score: Proxy score (cross-validated AUC, 0.5..1) from which an input
        is flagged as a proxy.
    :param random_state: Seed of the proxy score's folds.
    :param windows: One window label per explained row ``(n,)`` (in time order of the
        windows' first rows): the same figures per window, in :attr:`Fairness.windows`.
    :returns: :class:`Fairness`.
    :raises ProtectedAttributeError: A misaligned protected table, a missing value, a
        single group, or an attribute that is a model input.
    :raises InputError: Bad thresholds, ``y`` of another length, a reference group that
        does not occur.
    """
    from shapgov.combination.explanation import Explanation
    from shapgov.grouped import GroupedExplanation

    if not 0.0 < air_threshold <= 1.0 or not 0.0 < alpha < 1.0 or not 0.5 < confidence < 1.0:
        raise InputError("need 0 < air_threshold <= 1, 0 < alpha < 1 and 0.5 < confidence < 1")
    if not 0.5 <= max_proxy_score <= 1.0 or min_group_size < 1:
        raise InputError("need 0.5 <= max_proxy_score <= 1 and min_group_size >= 1")
    e = explanation_or_model
    grouped = None
    if isinstance(e, GroupedExplanation):  # the gap decomposed over its players
        if e.explanation is None:
            raise InputError(
                "a grouped explanation carries its rows in its explanation by column: "
                "explain_groups(..., member_sums=True)"
            )
        grouped, e = e, e.explanation
    if not isinstance(e, Explanation):
        import shapgov

        if X is None:
            raise InputError("pass the rows X to explain the model on (or an explanation)")
        e = shapgov.explain(e, X, background=background)
    elif X is not None:
        raise InputError("pass X only with a model: an explanation holds its rows")
    table = checked_protected(protected, e)
    scores, k, positive = _scores(e, decision)
    declined = np.asarray(decision.declined(scores), dtype=bool)
    approved = ~declined
    phi = e._raw[:, :, k]
    explained = e.explained_output[:, k]
    gap_players, gap_phi = e.feature_names, phi
    if grouped is not None:
        values = np.asarray(grouped.values, dtype=float)
        gap_phi = values[:, :, k] if values.ndim == 3 else values
        gap_players = list(grouped.names)
    event = None
    if y is not None:
        y = np.asarray(y)
        if y.shape != (len(e),):
            raise InputError(f"y has shape {y.shape}; pass one outcome per explained row")
        if positive is None:  # a regressor: y is the event itself
            values = set(pd.unique(y).tolist())
            if not values <= {0, 1}:
                raise InputError(
                    "y gives the error rates the outcome event (1 = the event the decision "
                    f"guards against, e.g. default), but has values {sorted(values)[:5]}...; "
                    "pass the event indicator"
                )
            positive = 1
        elif not set(pd.unique(y).tolist()) <= set(e.classes):
            raise InputError(
                f"y holds values that are not the model's classes {list(e.classes)}; pass the "
                "observed class of each row"
            )
        event = y == positive
    groups, gaps = [], []
    for attribute in table.columns:
        labels = table[attribute].to_numpy()
        ref = _reference(attribute, labels, approved, reference, min_group_size)
        in_ref = labels == ref
        for g in pd.unique(labels):
            member = labels == g
            groups.append(_group_row(attribute, g, ref, member, in_ref, approved, scores,
                                     explained, event, declined, confidence))  # fmt: skip
            if g != ref:
                gaps.append(_gap(attribute, g, ref, member, in_ref, gap_phi, gap_players))
    frame = pd.DataFrame(groups)
    comparison = frame["group"] != frame["reference"]
    frame["p_adjusted"] = np.where(comparison, holm(frame["p_value"].where(comparison)), np.nan)
    frame["small"] = frame["n"] < min_group_size
    frame["flagged"] = (
        comparison & ~frame["small"] & (frame["air"] < air_threshold)
        & (frame["p_adjusted"] <= alpha)
    )  # fmt: skip
    for row in frame[frame["small"]].itertuples():
        warnings.warn(
            SmallGroupWarning(
                f"group {row.group!r} of {row.attribute!r} has {row.n} rows (fewer than "
                f"{min_group_size}): reported, not flagged"
            ),
            stacklevel=2,
        )
    gap_frame = pd.concat(gaps, ignore_index=True) if gaps else pd.DataFrame()
    proxies = _proxies(e, table, phi, frame, max_proxy_score, random_state)
    by_window = None
    if windows is not None:
        by_window = _by_window(
            np.asarray(windows), table, frame, approved, explained, options=locals()
        )
    summary = _summary(table, frame, gap_frame, proxies, decision, y is not None, locals())
    if by_window is not None:
        flagged = by_window[by_window["flagged"]]
        summary["flagged_windows"] = sorted(set(flagged["window"].astype(str)), key=list(
            dict.fromkeys(by_window["window"].astype(str))).index)  # fmt: skip
    return Fairness(frame, gap_frame, proxies, summary, by_window)


def _by_window(
    labels: np.ndarray, table: pd.DataFrame, groups: pd.DataFrame, approved: np.ndarray,
    explained: np.ndarray, *, options: dict[str, Any],
) -> pd.DataFrame:  # fmt: skip
    """The decision figures per window (the reference group of the whole result)."""
    if labels.shape != (len(table),):
        raise InputError(f"windows has shape {labels.shape}; pass one label per explained row")
    rows = []
    for window in pd.unique(labels):
        inside = labels == window
        for attribute in table.columns:
            attr = table[attribute].to_numpy()
            ref = groups.loc[groups["attribute"] == str(attribute), "reference"].iloc[0]
            in_ref = inside & (attr == ref)
            for g in pd.unique(attr[inside]):
                member = inside & (attr == g)
                n, n_ref = int(member.sum()), int(in_ref.sum())
                a, a_ref = int(approved[member].sum()), int(approved[in_ref].sum())
                air, low, high, p = ratio_of_rates(a, n, a_ref, n_ref, options["confidence"])
                if g == ref:
                    air, low, high, p = 1.0, 1.0, 1.0, np.nan
                gap = explained[member].mean() - explained[in_ref].mean() if n_ref else np.nan
                rows.append(
                    {"window": str(window), "attribute": str(attribute), "group": g,
                     "reference": ref, "n": n, "approval_rate": a / n, "air": air,
                     "air_low": low, "air_high": high, "p_value": p, "gap": float(gap)}
                )  # fmt: skip
    frame = pd.DataFrame(rows)
    compared = frame["group"] != frame["reference"]
    frame["p_adjusted"] = np.where(compared, holm(frame["p_value"].where(compared)), np.nan)
    frame["small"] = frame["n"] < options["min_group_size"]
    frame["flagged"] = (
        compared & ~frame["small"] & (frame["air"] < options["air_threshold"])
        & (frame["p_adjusted"] <= options["alpha"])
    )  # fmt: skip
    return frame


def _reference(
    attribute: Any, labels: np.ndarray, approved: np.ndarray,
    reference: dict[str, Any] | None, min_group_size: int,
) -> Any:  # fmt: skip
    if reference and attribute in reference:
        ref = reference[attribute]
        if not (labels == ref).any():
            raise InputError(f"reference group {ref!r} does not occur in {attribute!r}")
        return ref
    rates = pd.Series(approved).groupby(labels).agg(["mean", "size"])
    big = rates[rates["size"] >= min_group_size]
    return (big if len(big) else rates)["mean"].idxmax()


def _group_row(
    attribute: Any, g: Any, ref: Any, member: np.ndarray, in_ref: np.ndarray,
    approved: np.ndarray, scores: np.ndarray, explained: np.ndarray,
    event: np.ndarray | None, declined: np.ndarray, confidence: float,
) -> dict[str, Any]:  # fmt: skip
    n, n_ref = int(member.sum()), int(in_ref.sum())
    a, a_ref = int(approved[member].sum()), int(approved[in_ref].sum())
    air, low, high, p = ratio_of_rates(a, n, a_ref, n_ref, confidence)
    if g == ref:
        air, low, high, p = 1.0, 1.0, 1.0, np.nan
    smd = standardized_difference(scores[member], scores[in_ref], confidence)
    row = {
        "attribute": str(attribute), "group": g, "reference": ref, "n": n, "approved": a,
        "approval_rate": a / n, "air": air, "air_low": low, "air_high": high, "p_value": p,
        "mean_score": float(scores[member].mean()), "smd": smd[0], "smd_low": smd[1],
        "smd_high": smd[2], "mean_explained": float(explained[member].mean()),
        "gap": float(explained[member].mean() - explained[in_ref].mean()),
    }  # fmt: skip
    if event is not None:
        neg, neg_ref = member & ~event, in_ref & ~event
        pos, pos_ref = member & event, in_ref & event
        fp, fp_ref = int(declined[neg].sum()), int(declined[neg_ref].sum())
        fn, fn_ref = int((~declined[pos]).sum()), int((~declined[pos_ref]).sum())
        fpr = difference_of_rates(fp, int(neg.sum()), fp_ref, int(neg_ref.sum()), confidence)
        fnr = difference_of_rates(fn, int(pos.sum()), fn_ref, int(pos_ref.sum()), confidence)
        row.update(
            observed_rate=float(event[member].mean()),
            fpr=fp / neg.sum() if neg.any() else np.nan,
            fnr=fn / pos.sum() if pos.any() else np.nan,
            fpr_diff=fpr[0], fpr_low=fpr[1], fpr_high=fpr[2],
            fnr_diff=fnr[0], fnr_low=fnr[1], fnr_high=fnr[2],
        )  # fmt: skip
    return row


def _gap(
    attribute: Any, g: Any, ref: Any, member: np.ndarray, in_ref: np.ndarray,
    phi: np.ndarray, players: list[Any],
) -> pd.DataFrame:  # fmt: skip
    mean_g, mean_r = phi[member].mean(axis=0), phi[in_ref].mean(axis=0)
    contribution = mean_g - mean_r
    total = contribution.sum()
    order = np.argsort(-np.abs(contribution), kind="stable")
    rank = np.empty(len(players), dtype=int)
    rank[order] = np.arange(1, len(players) + 1)
    return pd.DataFrame(
        {
            "attribute": str(attribute), "group": g, "reference": ref,
            "player": [str(p) for p in players], "mean_shap_group": mean_g,
            "mean_shap_reference": mean_r, "contribution": contribution,
            "share": contribution / abs(total) if total != 0 else np.nan, "rank": rank,
        }
    ).sort_values("rank", kind="stable")  # fmt: skip


def _proxies(
    e: Any, table: pd.DataFrame, phi: np.ndarray, groups: pd.DataFrame,
    threshold: float, random_state: int,
) -> pd.DataFrame:  # fmt: skip
    impact = np.abs(phi).mean(axis=0)
    share = impact / impact.sum() if impact.sum() > 0 else np.zeros_like(impact)
    players = [str(p) for p in e.feature_names]
    rows = []
    for attribute in table.columns:
        labels = table[attribute].to_numpy()
        ref = groups.loc[groups["attribute"] == str(attribute), "reference"].iloc[0]
        # the compared groups first: with two groups both give the same score
        candidates = sorted(
            (g for g in pd.unique(labels) if (labels == g).sum() >= 2), key=lambda g: g == ref
        )
        for j, column in enumerate(e.data.columns):
            best = (np.nan, np.nan, None)
            for g in candidates:
                member = labels == g
                if member.all():
                    continue
                value = proxy_score(e.data[column], member, random_state)
                if not np.isfinite(best[0]) or value > best[0]:
                    shap_value = proxy_score(pd.Series(phi[:, j]), member, random_state)
                    best = (value, shap_value, g)
            score = best[0]
            rows.append(
                {
                    "attribute": str(attribute), "input": str(column), "score": score,
                    "shap_proxy_score": best[1], "group": best[2],
                    "impact_share": float(share[players.index(str(column))])
                    if str(column) in players else np.nan,
                    "flagged": bool(score >= threshold),
                }
            )  # fmt: skip
    frame = pd.DataFrame(rows)
    key = np.where(frame["flagged"], frame["impact_share"].fillna(0), -1.0)
    frame = frame.assign(_k=-key, _s=-frame["score"]).sort_values(
        ["attribute", "_k", "_s"], kind="stable"
    )
    frame["order"] = frame.groupby("attribute").cumcount() + 1
    return frame.drop(columns=["_k", "_s"]).reset_index(drop=True)


def _summary(
    table: pd.DataFrame, groups: pd.DataFrame, gaps: pd.DataFrame, proxies: pd.DataFrame,
    decision: Any, with_outcomes: bool, options: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    flagged = groups[groups["flagged"]]
    carried = []
    for row in flagged.itertuples():
        top = gaps[(gaps["attribute"] == row.attribute) & (gaps["group"] == row.group)]
        carried.append(
            {"attribute": row.attribute, "group": _plain(row.group), "air": row.air,
             "top_inputs": top["player"].head(3).tolist()}
        )  # fmt: skip
    comparisons = groups[groups["group"] != groups["reference"]]
    return {
        "rules": {
            "air_threshold": options["air_threshold"],
            "alpha": options["alpha"],
            "confidence": options["confidence"],
            "min_group_size": options["min_group_size"],
            "max_proxy_score": options["max_proxy_score"],
            "random_state": options["random_state"],
            "flag": "AIR < air_threshold and Holm-adjusted one-sided p (H0: AIR >= 1) <= alpha, "
            "groups of at least min_group_size rows",
            "air_interval": "Katz log interval",
            "difference_interval": "Newcombe hybrid score",
            "proxy_score": "cross-validated AUC of out-of-fold bin means, best group vs the rest",
            "reference": "given, else the group with the highest approval rate (EEOC)",
        },
        "decision": decision.to_dict(),
        "outcomes": with_outcomes,
        "protected_sha256": protected_sha256(table),
        "group_counts": {
            str(c): {str(k): int(v) for k, v in table[c].value_counts().items()}
            for c in table.columns
        },
        "min_air": float(comparisons["air"].min()) if len(comparisons) else None,
        "flagged_groups": carried,
        "flagged_proxies": [
            {
                "attribute": r.attribute,
                "input": r.input,
                "score": r.score,
                "impact_share": r.impact_share,
            }
            for r in proxies[proxies["flagged"]].itertuples()
        ],
        "max_proxy": float(proxies["score"].max()) if len(proxies) else None,
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
