"""``reasons()``: the statement of specific reasons for each declined row, from the
governed explanation of the game whose players are the catalogue's entries.

Per declined row: every entry's exact group Shapley value against the reference
population (:func:`shapgov.explain_groups`, each entry one player; inputs declared never
a reason stay players of their own and are never reported), times the decision's sign
(its push toward decline); the entries with a positive push of at least ``min_share`` of
the row's total adverse push (every player's, inputs never a reason included) and whose
statement is true of the row (its ``adverse`` direction against the reference
population's median, :mod:`shapgov.adverse_action.direction`), largest first, ties
broken by code, at most ``max_reasons`` (Regulation B's commentary: more than four is not
likely to be helpful, 12 CFR 1002 Supp. I, 9(b)(2)-1). A row no automatic notice can
state truthfully (no pushing entry's statement is true of it, or inputs never a reason
pushed further toward decline than its reasons: the notice would leave out the principal
factor) "needs review". Rows whose values the additivity policy withholds get no
reasons and say so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shapgov.adverse_action.catalogue import ReasonCatalogue, load_catalogue
from shapgov.adverse_action.decision import NEAR_CUTOFF_SHARE, Decision, reference_population
from shapgov.adverse_action.direction import RULE, reference_medians, statement_holds
from shapgov.adverse_action.selection import select_reasons
from shapgov.errors import AdditivityError, InputError

#: The statuses of an explained row.
STATUSES = ("approved", "reasons", "no adverse input", "needs review", "withheld")

#: An entry whose push toward decline is below this share of the row's total adverse push
#: (the sum of every player's positive push) is not given as a reason.
MIN_SHARE = 0.01
#: Regulation B's commentary: more than four reasons is not likely to be helpful.
MAX_REASONS = 4


@dataclass(frozen=True, eq=False)
class AdverseActionReasons:
    """Reasons per row of the explained table.

    :param index: The rows' keys ``(n,)`` (the index of ``X``).
    :param scores: The model's scores ``(n,)`` in the decision's units.
    :param declined: ``(n,)`` bool, the rows the decision declines.
    :param codes: ``(n, max_reasons)`` reason codes in order (``None`` where fewer).
    :param values: ``(n, max_reasons)`` each reason's push toward decline, in the explained
        margin's units (NaN where no reason).
    :param status: ``(n,)``: ``"approved"``, ``"reasons"``, ``"no adverse input"`` (declined,
        but nothing pushes toward decline by at least ``min_share``), ``"needs review"``
        (declined, and no automatic notice is true: entries pushed toward decline but none's
        statement is true of the row, or inputs declared never a reason pushed further
        toward decline than the reasons; a reviewer states the reasons, and the row's codes
        are empty) or ``"withheld"`` (the additivity policy withheld the row's values).
    :param group_values: ``(n_declined_explained, P)`` every player's value for the
        declined rows, in the explained margin (the players are ``players``).
    :param players: The game's player names ``(P,)``: reason codes and inputs that are
        never a reason.
    :param catalogue: The catalogue.
    :param decision: The decision rule.
    :param reference: How the reference population was chosen (JSON-ready).
    :param reference_rows: The reference population ``(b, M)``: the game's background.
    :param game: The explained game (background = the reference population).
    :param game_sha256: SHA-256 of the game, its players and the catalogue.
    :param additivity: The additivity report (a dict), or the withheld report's.
    :param min_share: The minimum share of a row's adverse push a reason must have.
    :param sign: ``+1`` when a positive value pushes toward decline, ``-1`` otherwise.
    :param protected: The protected attributes declared and checked (none is a model
        input or named by the catalogue), as given.
    :param stability: The stability figures (``shapgov.adverse_action.stability``), or
        ``None`` when not computed.
    :param medians: The reference population's median of each input whose entry has a
        direction (:func:`~shapgov.adverse_action.direction.reference_medians`).
    :param contradicted: ``(n, R)`` bool: entries whose push made them a reason for the
        row but whose statement is not true of it (not given).
    """

    index: pd.Index
    scores: np.ndarray
    declined: np.ndarray
    codes: np.ndarray
    values: np.ndarray
    status: np.ndarray
    group_values: np.ndarray
    players: tuple[str, ...]
    catalogue: ReasonCatalogue
    decision: Decision
    reference: dict[str, Any]
    reference_rows: pd.DataFrame
    game: dict[str, Any]
    game_sha256: str
    additivity: dict[str, Any]
    min_share: float = MIN_SHARE
    sign: float = 1.0
    stability: dict[str, Any] | None = field(default=None)
    protected: tuple[str, ...] = ()
    medians: dict[str, float] = field(default_factory=dict)
    contradicted: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.index)

    @property
    def max_reasons(self) -> int:
        """How many reasons a row may be given."""
        return int(self.codes.shape[1])

    def to_frame(self) -> pd.DataFrame:
        """One row per explained row: ``score``, ``decision`` (``"declined"`` or
        ``"approved"``), ``status``, then ``reason_1..k``, ``statement_1..k`` and
        ``value_1..k`` (empty where fewer reasons), and ``game_sha256``; indexed like ``X``.
        """
        statements = {r.code: r.statement for r in self.catalogue.reasons}
        frame = pd.DataFrame(
            {
                "score": self.scores,
                "decision": np.where(self.declined, "declined", "approved"),
                "status": self.status,
            },
            index=self.index,
        )
        for j in range(self.max_reasons):
            frame[f"reason_{j + 1}"] = self.codes[:, j]
        for j in range(self.max_reasons):
            frame[f"statement_{j + 1}"] = [statements.get(c) for c in self.codes[:, j]]
        for j in range(self.max_reasons):
            frame[f"value_{j + 1}"] = self.values[:, j]
        frame["game_sha256"] = self.game_sha256
        return frame

    def frequencies(self) -> pd.DataFrame:
        """How often each code is given among the declined rows that got reasons:
        ``code``, ``statement``, ``first`` (times it is the first reason), ``any`` (times it
        is among the reasons), ``share_any`` (``any`` / rows with reasons), ``contradicted``
        (declined rows where its push made it a reason but its statement was not true of
        the row, so it was not given); every code of the catalogue, most given first."""
        given = self.codes[self.status == "reasons"]
        n = max(len(given), 1)
        contradicted = self.contradicted
        if contradicted is None:
            contradicted = np.zeros((len(self), len(self.catalogue.reasons)), dtype=bool)
        rows = []
        for r, reason in enumerate(self.catalogue.reasons):
            anywhere = int((given == reason.code).any(axis=1).sum()) if len(given) else 0
            first = int((given[:, 0] == reason.code).sum()) if len(given) else 0
            against = int(contradicted[:, r].sum())
            rows.append((reason.code, reason.statement, first, anywhere, anywhere / n, against))
        columns = ["code", "statement", "first", "any", "share_any", "contradicted"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.sort_values(["any", "code"], ascending=[False, True], ignore_index=True)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: counts by status, the decision, the reference population,
        the catalogue's name, version and SHA-256, the game and its hash, code frequencies,
        the additivity report and (when computed) the stability figures."""
        counts = pd.Series(self.status).value_counts()
        return {
            "rows": len(self),
            "declined": int(self.declined.sum()),
            "status": {str(k): int(v) for k, v in counts.items()},
            "max_reasons": self.max_reasons,
            "min_share": self.min_share,
            "protected": list(self.protected),
            "decision": self.decision.to_dict(),
            "reference": self.reference,
            "catalogue": {
                "name": self.catalogue.name,
                "version": self.catalogue.version,
                "sha256": self.catalogue.sha256,
            },
            "game": self.game,
            "game_sha256": self.game_sha256,
            "frequencies": self.frequencies().to_dict(orient="records"),
            "additivity": self.additivity,
            "stability": self.stability,
            "direction": {
                "rule": RULE,
                "medians": dict(self.medians),
                "contradicted": int(0 if self.contradicted is None else self.contradicted.sum()),
            },
        }

    def notice(self, row: Any) -> str:
        """The statement of specific reasons for one declined row (by its key), as plain
        text a notice of adverse action can carry.

        :raises InputError: The key is not a row, or the row was not declined.
        """
        try:
            known = row in self.index
        except TypeError:  # unhashable: a list of keys
            known = False
        if not known:
            raise InputError(f"no row {row!r} among the explained rows")
        i = self.index.get_loc(row)
        if not self.declined[i]:
            raise InputError(f"row {row!r} was approved: it has no adverse-action reasons")
        return notice_text(row, str(self.status[i]), self.codes[i], self.catalogue)


def notice_text(row: Any, status: str, codes: Sequence[Any], catalogue: ReasonCatalogue) -> str:
    """The statement of specific reasons for one declined row, as plain text: what
    :meth:`AdverseActionReasons.notice` gives, and what the compliance report shows from
    a logged set's ``reasons.parquet``.

    :param row: The row's key, as the notice names it.
    :param status: The row's status (``"reasons"``, ``"no adverse input"``,
        ``"needs review"`` or ``"withheld"``).
    :param codes: Its reason codes in order (``None`` or NaN where it has fewer).
    :param catalogue: The catalogue the codes come from (their statements).
    :returns: The notice's text, one line per reason.
    :raises CatalogueError: A code the catalogue does not have.
    """
    if status == "withheld":
        return (
            f"Application {row}: the explanation was withheld by the additivity policy; "
            "no reasons can be stated from this model's values."
        )
    if status == "needs review":
        return (
            f"Application {row}: no approved statement describes what pushed the score toward "
            "decline for this applicant (a statement would be untrue of them, or the decline "
            "comes mostly from inputs that are never given as reasons); a reviewer must state "
            "the principal reasons."
        )
    lines = [f"Application {row}: principal reasons for the adverse action"]
    for j, code in enumerate(codes):
        if code is not None and not (isinstance(code, float) and code != code):
            lines.append(f"  {j + 1}. {catalogue.reason(code).statement} ({code})")
    if len(lines) == 1:
        lines.append("  nothing pushed the score toward decline by a reportable share")
    return "\n".join(lines)


def applicant_rows(X: Any, model: Any, *, what: str = "X") -> pd.DataFrame:
    """``X`` as a table of the model's inputs, indexed by each applicant's key.

    A numpy array takes the model's input names (``feature_names_in_``; ``x0``, ``x1``, ...
    for a model fitted without names), so a catalogue names inputs as the model does.

    :param X: Rows ``(n, M)``: a DataFrame (its index is each row's key) or an array.
    :param model: The fitted model.
    :param what: What the rows are, for messages.
    :returns: The rows, columns in the model's order.
    :raises ColumnMismatchError: The columns are not the model's inputs (extra ones, e.g. a
        protected attribute kept beside them, or missing ones).
    :raises InputError: No rows, or keys that do not name one row each (a MultiIndex or
        repeated keys): a notice names one applicant.
    """
    from shapgov.validation import as_frame

    frame = as_frame(X, model, what=what)
    if not isinstance(X, pd.DataFrame):
        return frame.infer_objects()  # an array of mixed inputs holds numbers as objects
    index = X.index
    if isinstance(index, pd.MultiIndex) or not index.is_unique:
        if what != "X":
            return frame  # the reference population's rows need no names
        why = "is a MultiIndex" if isinstance(index, pd.MultiIndex) else "repeats keys"
        raise InputError(
            f"X's index {why}: each notice names one applicant by its row key; give X a flat "
            "index of unique keys, e.g. X.set_index('application_id')"
        )
    return frame.set_axis(index, axis=0)


def _count(value: Any, name: str, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise InputError(f"{name} must be a whole number of at least {least}, not {value!r}")
    return int(value)


def _share(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise InputError(f"{name} must be a number in [0, 1), not {value!r}")
    if not 0 <= float(value) < 1:
        raise InputError(f"{name} must be in [0, 1), not {value!r}")
    return float(value)


def game_hash(game: dict[str, Any], players: Sequence[str], catalogue: ReasonCatalogue) -> str:
    """SHA-256 of the game's record, its players and the catalogue's hash."""
    payload = {"game": game, "players": list(players), "catalogue": catalogue.sha256}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def reasons(
    model: Any,
    X: Any,
    *,
    catalogue: ReasonCatalogue | str | Path,
    decision: Decision,
    reference: Any,
    max_reasons: int = MAX_REASONS,
    protected: Sequence[str] = (),
    population: str = "approved",
    near_cutoff_share: float = NEAR_CUTOFF_SHARE,
    min_share: float = MIN_SHARE,
    stability: int = 0,
    random_state: int = 0,
    feature_perturbation: str = "interventional",
    additivity_threshold: float = 0.01,
    pass_tolerance: float = 1e-6,
    explainer_options: Any = None,
    plugin_manager: Any = None,
) -> AdverseActionReasons:
    """Adverse-action reasons for the rows of ``X`` the decision declines.

    :param model: The fitted model (anything :func:`shapgov.explain` takes) with the score
        the decision reads (``predict_proba``, ``predict``, or ``decision_function``).
    :param X: Applicants ``(n, M)``, the model's inputs; the index is each row's key.
    :param catalogue: A :class:`~shapgov.adverse_action.catalogue.ReasonCatalogue`, or the path of
        its TOML/CSV file.
    :param decision: How the score decides (:class:`~shapgov.adverse_action.decision.Decision`).
    :param reference: Rows ``(b, M)`` the reference population is chosen from.
    :param max_reasons: At most this many reasons per declined row (default 4).
    :param protected: Protected attributes: the model may not take them, the catalogue
        may not name them.
    :param population: ``"approved"`` (default), ``"all"`` or ``"near_cutoff"``: see
        :func:`~shapgov.adverse_action.decision.reference_population`.
    :param near_cutoff_share: The share of reference rows ``"near_cutoff"`` keeps.
    :param min_share: A reason's push must be at least this share of the row's total
        adverse push (default 0.01).
    :param stability: Seeded bootstrap resamples of the reference population to re-derive
        the reasons against (0: none; see :func:`shapgov.adverse_action.stability.stability`).
    :param random_state: Seed of the resamples.
    :param feature_perturbation: The game: ``"interventional"`` (against the reference
        population; the default and the only one with a reference population).
    :param additivity_threshold: As in :func:`shapgov.explain`.
    :param pass_tolerance: As in :func:`shapgov.explain`.
    :param explainer_options: As in :func:`shapgov.explain`.
    :param plugin_manager: As in :func:`shapgov.explain`.
    :returns: The :class:`AdverseActionReasons`; ``to_frame()`` gives the table.
    :raises ProtectedAttributeError: A protected attribute is an input or in the catalogue.
    :raises CatalogueError: The catalogue is malformed or does not cover the inputs.
    :raises ColumnMismatchError: ``X`` or ``reference`` holds columns the model does not
        take, or lacks some it does.
    :raises InputError: Bad options, no rows, row keys that do not name one row each, an
        empty reference population, or a model with several outputs (reasons need one
        score).
    """

    if isinstance(catalogue, str | Path):
        catalogue = load_catalogue(catalogue)
    if not isinstance(catalogue, ReasonCatalogue):
        raise InputError(
            f"catalogue must be a ReasonCatalogue or the path of its .toml/.csv, not "
            f"{type(catalogue).__name__}"
        )
    if not isinstance(decision, Decision):
        raise InputError("decision must be a shapgov.Decision, e.g. shapgov.Decision(cutoff=0.2)")
    max_reasons = _count(max_reasons, "max_reasons", least=1)
    min_share = _share(min_share, "min_share")
    stability = _count(stability, "stability (resamples)", least=0)
    random_state = _count(random_state, "random_state", least=0)
    if feature_perturbation != "interventional":
        raise InputError(
            "reasons are measured against a reference population: feature_perturbation "
            "must be 'interventional'"
        )
    decision.orientation(model)  # a multiclass probability is refused before any work
    frame = applicant_rows(X, model)
    ref = applicant_rows(reference, model, what="reference")
    catalogue.check_inputs(list(frame.columns), protected=protected)
    ref_rows, described = reference_population(
        ref, decision.scores(model, ref), decision,
        population=population, near_cutoff_share=near_cutoff_share,
    )  # fmt: skip
    options = dict(
        additivity_threshold=additivity_threshold,
        pass_tolerance=pass_tolerance,
        explainer_options=explainer_options,
        plugin_manager=plugin_manager,
    )
    result = reasons_against(
        model, frame, catalogue=catalogue, decision=decision, reference_rows=ref_rows,
        reference=described, max_reasons=int(max_reasons), min_share=min_share,
        options=options,
    )  # fmt: skip
    rows = frame.loc[result.declined]
    options["background"] = ref_rows
    players = result.players
    if stability and len(rows) and players:
        from shapgov.adverse_action.stability import stability as measure

        figures = measure(
            result, model, rows, ref_rows, resamples=int(stability), random_state=random_state,
            options=options, sign=result.sign,
        )  # fmt: skip
        result = _with_stability(result, figures)
    if protected:
        from dataclasses import replace

        names = [protected] if isinstance(protected, str) else list(protected)
        result = replace(result, protected=tuple(str(n) for n in names))
    return result


def reasons_against(
    model: Any,
    frame: pd.DataFrame,
    *,
    catalogue: ReasonCatalogue,
    decision: Decision,
    reference_rows: pd.DataFrame,
    reference: dict[str, Any],
    max_reasons: int = MAX_REASONS,
    min_share: float = MIN_SHARE,
    options: dict[str, Any] | None = None,
) -> AdverseActionReasons:
    """Reasons for ``frame`` against an already chosen reference population (what
    :func:`reasons` does after choosing it; serving and Spark call it with the population
    an approved set stored, so their reasons are the set's).

    :param model: The model.
    :param frame: The rows ``(n, M)``.
    :param catalogue: The (checked) catalogue.
    :param decision: The decision rule.
    :param reference_rows: The reference population ``(b, M)``: the game's background.
    :param reference: Its JSON-ready description.
    :param max_reasons: At most this many reasons per row.
    :param min_share: The minimum share of a row's adverse push.
    :param options: More options of :func:`shapgov.explain_groups` (policy, plugins).
    :returns: The :class:`AdverseActionReasons` (without stability figures).
    """
    from shapgov.grouped import explain_groups

    sign = decision.sign * decision.orientation(model)
    scores = decision.scores(model, frame)
    declined = decision.declined(scores)
    n, k = len(frame), int(max_reasons)
    codes = np.full((n, k), None, dtype=object)
    values = np.full((n, k), np.nan)
    status = np.where(declined, "reasons", "approved").astype(object)
    medians = reference_medians(catalogue, reference_rows)
    contradicted = np.zeros((n, len(catalogue.reasons)), dtype=bool)
    options = {**(options or {}), "background": reference_rows}
    rows = frame.loc[declined]
    group_values = np.zeros((0, 0))
    players: tuple[str, ...] = ()
    game: dict[str, Any] = {}
    additivity: dict[str, Any] = {}
    if len(rows):
        try:
            grouped = explain_groups(
                model, rows, players=catalogue.groups(), member_sums=False, **options
            )
        except AdditivityError as err:
            status[declined] = "withheld"
            additivity = err.report.to_dict(rows=False)
        else:
            if grouped.values.ndim != 2:
                raise InputError(
                    "the model has several outputs: adverse-action reasons need one score "
                    "(explain a binary classifier or a regressor)"
                )
            players = grouped.names
            game = grouped.game
            additivity = grouped.additivity.to_dict(rows=False)
            group_values = grouped.values
            position = {name: p for p, name in enumerate(players)}
            reason_player = np.array([position[c] for c in catalogue.codes])
            got_codes, got_values, against = select_reasons(
                grouped.values * sign, reason_player, catalogue.codes, max_reasons=k,
                min_share=min_share, holds=statement_holds(catalogue, rows, medians),
            )  # fmt: skip
            review = _needs_review(grouped.values * sign, reason_player, got_values, against)
            got_codes[review] = None
            got_values[review] = np.nan
            codes[declined] = got_codes
            values[declined] = got_values
            contradicted[declined] = against
            empty = got_codes[:, 0] == None  # noqa: E711
            status[np.flatnonzero(declined)[empty]] = "no adverse input"
            status[np.flatnonzero(declined)[review]] = "needs review"
    result = AdverseActionReasons(
        index=frame.index,
        scores=scores,
        declined=declined,
        codes=codes,
        values=values,
        status=status.astype(str),
        group_values=group_values,
        players=players,
        catalogue=catalogue,
        decision=decision,
        reference=reference,
        reference_rows=reference_rows,
        game=game,
        game_sha256=game_hash(game, players, catalogue) if game else "",
        additivity=additivity,
        min_share=float(min_share),
        sign=float(sign),
        medians=medians,
        contradicted=contradicted,
    )
    return result


def _needs_review(
    push: np.ndarray, reason_player: np.ndarray, given: np.ndarray, against: np.ndarray
) -> np.ndarray:
    """``(d,)`` bool: declined rows no automatic notice can state truthfully: entries
    pushed toward decline but none's statement is true of the row (``against``), or the
    inputs declared never a reason pushed further toward decline than the reasons given
    (the notice would leave out the principal factor)."""
    others = np.ones(push.shape[1], dtype=bool)
    others[reason_player] = False
    never = np.where(push[:, others] > 0, push[:, others], 0.0).sum(axis=1)
    stated = np.nansum(given, axis=1)
    no_reason = np.isnan(given[:, 0])
    return (no_reason & against.any(axis=1)) | ((never > 0) & (never > stated))


def _with_stability(result: AdverseActionReasons, figures: dict[str, Any]) -> AdverseActionReasons:
    from dataclasses import replace

    return replace(result, stability=figures)
