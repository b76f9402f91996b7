"""Adverse-action reasons (issue 32): planted answers and brute force.

Oracles: on an additive model (a logistic scorecard on binned inputs, a spline GAM) each
entry's value is its terms minus their mean over the reference population, computed here
from the fitted pipeline's own transformers and coefficients, and the reasons must be
the true top-k adverse entries on every declined row; on LightGBM and a voting blender
the group values equal brute force over coalitions of groups through the model's own
output (tests/oracles.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oracles import brute_force_group_shapley
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, SplineTransformer

import shapgov
from shapgov.adverse_action.catalogue import load_catalogue, make_catalogue
from shapgov.errors import (
    CatalogueError,
    ColumnMismatchError,
    InputError,
    ModelOutputError,
    ProtectedAttributeError,
)

NUMERIC = [
    "income",
    "debt_to_income",
    "utilization",
    "delinquencies",
    "inquiries",
    "months_oldest",
    "loan_amount",
]
REASONS = [
    ("R01", "Income insufficient for amount of credit requested", ["income"], "low"),
    ("R02", "Excessive obligations in relation to income", ["debt_to_income"], "high"),
    ("R03", "Proportion of balances to credit limits is too high", ["utilization"], "high"),
    (
        "R04",
        "Delinquent credit obligations or too many recent inquiries",
        ["delinquencies", "inquiries"],
        "high",
    ),
    ("R05", "Length of credit history", ["months_oldest"], "low"),
    ("R06", "Amount of credit requested", ["loan_amount"], "high"),
    ("R07", "Housing status", ["housing"], "either"),
]


def applicants(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Seeded applicants with a planted logistic default risk."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.lognormal(11, 0.4, n).round(-2),
            "debt_to_income": rng.uniform(0, 45, n).round(1),
            "utilization": rng.beta(2, 3, n).round(3),
            "delinquencies": rng.poisson(0.4, n).astype(float),
            "inquiries": rng.poisson(1.0, n).astype(float),
            "months_oldest": rng.integers(6, 360, n).astype(float),
            "loan_amount": rng.uniform(1, 40, n).round(1) * 1000,
            "housing": rng.choice(["own", "mortgage", "rent"], n, p=[0.2, 0.45, 0.35]),
        },
        index=pd.Index(rng.choice(np.arange(10**5, 10**6), n, replace=False), name="applicant"),
    )
    logit = (
        -1.5
        - 1.2 * (np.log(X.income) - 11)
        + 0.05 * (X.debt_to_income - 20)
        + 2.5 * (X.utilization - 0.4)
        + 0.7 * X.delinquencies
        + 0.3 * X.inquiries
        - 0.004 * (X.months_oldest - 150)
        + 0.00003 * (X.loan_amount - 20000)
        + 0.5 * (X.housing == "rent")
    )
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), index=X.index)
    return X, y


def catalogue(reasons=REASONS, never=()):
    return make_catalogue(
        name="test-credit",
        version="1",
        reasons=[dict(code=c, statement=s, inputs=i, adverse=a) for c, s, i, a in reasons],
        never_a_reason=list(never),
    )


def scorecard(kind: str, X: pd.DataFrame, y: pd.Series):
    """A sum of one-input terms in the log-odds: each numeric input binned (scorecard) or
    through splines (GAM), housing one-hot; returns the model and ``terms(frame)``
    ``(n, M)``, each input's term, from the fitted transformers and coefficients."""
    if kind == "scorecard":
        make = lambda: KBinsDiscretizer(n_bins=5, encode="onehot-dense", strategy="quantile")  # noqa: E731
    else:
        make = lambda: SplineTransformer(n_knots=4, degree=3)  # noqa: E731
    steps = [(c, make(), [c]) for c in NUMERIC]
    steps.append(("housing", OneHotEncoder(sparse_output=False), ["housing"]))
    model = make_pipeline(ColumnTransformer(steps), LogisticRegression(C=10.0, max_iter=5000)).fit(
        X, y
    )
    prep, coef = model[0], model[-1].coef_[0]

    def terms(frame: pd.DataFrame) -> np.ndarray:
        out, start = [], 0
        for name, _, cols in steps:
            block = prep.named_transformers_[name].transform(frame[cols])
            out.append(block @ coef[start : start + block.shape[1]])
            start += block.shape[1]
        return np.column_stack(out)

    return model, terms


def expected_reasons(push: np.ndarray, codes: list[str], k: int, min_share: float, holds=None):
    """The reasons by hand: entries with a positive push of at least ``min_share`` of the
    row's total positive push and whose statement holds for the row (``holds``, by hand
    below), largest first, ties by code, at most ``k``."""
    out = []
    for i, row in enumerate(push):
        total = sum(p for p in row if p > 0)
        keep = [
            (c, p)
            for j, (c, p) in enumerate(zip(codes, row, strict=True))
            if p > 0 and p >= min_share * total and (holds is None or holds[i][j])
        ]
        keep.sort(key=lambda cp: (-cp[1], cp[0]))
        out.append([c for c, _ in keep[:k]])
    return out


def statements_hold(rows: pd.DataFrame, approved: pd.DataFrame, reasons=REASONS):
    """By hand, per row and entry: a "high" entry's statement holds when one of its inputs
    is above the approved applicants' median, "low" below it (a missing value is
    neither); "either" always."""
    out = []
    for _, row in rows.iterrows():
        flags = []
        for _, _, inputs, adverse in reasons:
            if adverse == "either":
                flags.append(True)
                continue
            sides = []
            for name in inputs:
                median = float(np.median(approved[name].dropna()))
                value = row[name]
                above, below = (
                    (False, False) if pd.isna(value) else (value > median, value < median)
                )
                sides.append(above if adverse == "high" else below)
            flags.append(any(sides))
        out.append(flags)
    return out


@pytest.mark.parametrize("kind", ["scorecard", "gam"])
def test_on_an_additive_model_the_reasons_are_the_true_top_adverse_terms(kind):
    X, y = applicants(3000, seed=1)
    model, terms = scorecard(kind, X, y)
    rows, reference = X.iloc[:600], X.iloc[1000:1600]
    decision = shapgov.Decision(cutoff=0.25)
    got = shapgov.reasons(
        model, rows, catalogue=catalogue(), decision=decision, reference=reference
    )
    # the reference population: the reference rows the rule approves
    approved = reference[model.predict_proba(reference)[:, 1] < 0.25]
    assert got.reference["rows"] == len(approved) and got.reference["population"] == "approved"
    declined = model.predict_proba(rows)[:, 1] >= 0.25
    assert np.array_equal(got.declined, declined) and 50 < declined.sum() < 500
    # each entry's value: its terms minus their mean over the reference population
    t, t_ref = terms(rows[declined]), terms(approved).mean(axis=0)
    cols = list(X.columns)
    truth = np.column_stack(
        [
            sum(t[:, cols.index(i)] - t_ref[cols.index(i)] for i in inputs)
            for _, _, inputs, _ in REASONS
        ]
    )
    players = list(got.players)
    values = got.group_values[:, [players.index(c) for c, *_ in REASONS]]
    assert np.max(np.abs(values - truth)) <= 1e-10
    codes = [c for c, *_ in REASONS]
    holds = statements_hold(rows[declined], approved)
    expected = expected_reasons(truth, codes, 4, 0.01, holds)
    frame = got.to_frame()[declined]
    given = [
        [c for c in r if isinstance(c, str)]
        for r in frame[[f"reason_{j}" for j in range(1, 5)]].to_numpy()
    ]
    assert given == expected  # every declined row
    # the direction rule matters here: some entries pushed toward decline from the
    # favourable side of the median (a binned term is flat across its bin) and were not given
    by_push = expected_reasons(truth, codes, 4, 0.01)
    differ = sum(a != b for a, b in zip(given, by_push, strict=True))
    frequencies = got.frequencies().set_index("code")
    against = sum(
        1
        for flags, push in zip(holds, truth, strict=True)
        for j, ok in enumerate(flags)
        if not ok and push[j] > 0 and push[j] >= 0.01 * push[push > 0].sum()
    )
    assert (
        frequencies["contradicted"].sum() == against == got.summary()["direction"]["contradicted"]
    )
    print(
        f"\n{kind}: {len(given)} declined rows, all {len(given)} with exactly the true "
        f"reasons; {differ} differ from push alone ({against} statements not true of the row)"
    )
    assert set(frame["status"]) == {"reasons"}
    assert (got.to_frame()[~declined]["status"] == "approved").all()
    assert got.to_frame()[~declined]["reason_1"].isna().all()
    # values are pushes toward decline, in order, with the catalogue's statements
    assert (frame["value_1"] >= frame["value_2"].fillna(-np.inf)).all()
    statements = {c: s for c, s, *_ in REASONS}
    assert (frame["statement_1"] == frame["reason_1"].map(statements)).all()


def test_group_values_equal_brute_force_for_lightgbm_and_a_voting_blender():
    import lightgbm as lgb
    from sklearn.ensemble import VotingRegressor

    X, y = applicants(2000, seed=2)
    X["housing"] = X["housing"].astype("category")
    rows, reference = X.iloc[:40], X.iloc[500:560]
    groups = [[list(X.columns).index(i) for i in inputs] for _, _, inputs, _ in REASONS]
    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=8, verbose=-1).fit(X, y)
    got = shapgov.reasons(
        model, rows, catalogue=catalogue(), decision=shapgov.Decision(cutoff=0.2),
        reference=reference, population="all",
    )  # fmt: skip
    declined = rows[got.declined]
    margin = lambda d: model.predict(d, raw_score=True)  # noqa: E731
    truth = brute_force_group_shapley(margin, declined, reference, groups)[:, :, 0]
    order = [list(got.players).index(c) for c, *_ in REASONS]
    err_lgbm = np.max(np.abs(got.group_values[:, order] - truth))
    assert err_lgbm <= 1e-10

    numeric = X.drop(columns="housing").assign(rent=(X["housing"] == "rent").astype(float))
    blend_reasons = [*REASONS[:6], ("R07", "Housing status", ["rent"], "either")]
    blender = VotingRegressor(
        [("lgbm", lgb.LGBMRegressor(n_estimators=30, num_leaves=6, verbose=-1)), ("ridge", Ridge())]
    ).fit(numeric, y.astype(float))
    rows_b, ref_b = numeric.iloc[:30], numeric.iloc[500:540]
    got_b = shapgov.reasons(
        blender, rows_b, catalogue=catalogue(blend_reasons),
        decision=shapgov.Decision(cutoff=0.2, score="prediction"), reference=ref_b,
        population="all",
    )  # fmt: skip
    groups_b = [
        [list(numeric.columns).index(i) for i in inputs] for _, _, inputs, _ in blend_reasons
    ]
    truth_b = brute_force_group_shapley(blender.predict, rows_b[got_b.declined], ref_b, groups_b)
    order_b = [list(got_b.players).index(c) for c, *_ in blend_reasons]
    err_blend = np.max(np.abs(got_b.group_values[:, order_b] - truth_b[:, :, 0]))
    assert err_blend <= 1e-10
    assert got.declined.sum() > 3 and got_b.declined.sum() > 3
    print(f"\nbrute force over groups: LightGBM {err_lgbm:.1e}, voting blender {err_blend:.1e}")


def test_ties_break_by_code_and_small_pushes_are_dropped_by_hand():
    from shapgov.adverse_action.selection import select_reasons

    push = np.array(
        [
            [0.5, 0.5, 0.2, -1.0, 0.004, 0.3],  # R01/R02 tie: by code; 0.004 < 1% of 1.504
            [0.0, -0.1, -0.2, -0.3, -0.4, -0.5],  # nothing adverse
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],  # more than max_reasons
        ]
    )
    players = np.array([5, 4, 3, 2, 1, 0])  # reason r is player players[r]
    codes = ["R06", "R05", "R04", "R03", "R02", "R01"]
    got, values, against = select_reasons(push, players, codes, max_reasons=4, min_share=0.01)
    # R06 reads player 5 (0.3), R05 player 4 (0.004), R04 player 3 (-1.0), R03 player 2
    # (0.2), R02 player 1 (0.5), R01 player 0 (0.5): R01 and R02 tie, by code; R05's 0.004
    # is under 1% of the row's adverse push 1.504
    assert got[0].tolist() == ["R01", "R02", "R06", "R03"]
    assert values[0].tolist() == [0.5, 0.5, 0.3, 0.2]
    assert got[1].tolist() == [None] * 4 and np.isnan(values[1]).all()
    assert got[2].tolist() == ["R06", "R05", "R04", "R03"]
    # no minimum share keeps the small push; R04's push is adverse only with the sign flipped
    lower, _, _ = select_reasons(push, players, codes, max_reasons=6, min_share=0.0)
    assert lower[0].tolist() == ["R01", "R02", "R06", "R03", "R05", None]
    assert not against.any()
    # a statement that does not hold for the row is not given, the next one is; it is
    # counted as contradicted only where its push made it a reason
    holds = np.ones((3, 6), dtype=bool)
    holds[0, 5] = False  # R01 (0.5) on row 0
    holds[1, 0] = False  # R06 on row 1: no push there, not counted
    got, values, against = select_reasons(
        push, players, codes, max_reasons=4, min_share=0.01, holds=holds
    )
    assert got[0].tolist() == ["R02", "R06", "R03", None]  # R05's 0.004 stays under 1%
    assert against.tolist() == [[False] * 5 + [True], [False] * 6, [False] * 6]
    # a player that is never a reason (a 7th column) counts in the row's total adverse
    # push: beside its 100.0, nothing on row 0 reaches 1% (1.01504) and no reason is given
    never = np.column_stack([push, [100.0, 0.0, 0.0]])
    beside, _, _ = select_reasons(never, players, codes, max_reasons=4, min_share=0.01)
    assert beside[0].tolist() == [None] * 4 and beside[2].tolist() == got[2].tolist()
    flipped, _, _ = select_reasons(-push, players, codes, max_reasons=4, min_share=0.01)
    assert flipped[0].tolist() == ["R04", None, None, None]


def test_a_score_that_declines_below_the_cutoff_reads_negative_values_as_adverse():
    X, y = applicants(2000, seed=3)
    model, _terms = scorecard("scorecard", X, y)
    rows, reference = X.iloc[:300], X.iloc[1000:1400]
    above = shapgov.reasons(
        model, rows, catalogue=catalogue(), reference=reference, population="all",
        decision=shapgov.Decision(cutoff=0.3),
    )  # fmt: skip
    # the same rule stated on the probability of repayment (class 0): declines below 0.7
    below = shapgov.reasons(
        model, rows, catalogue=catalogue(), reference=reference, population="all",
        decision=shapgov.Decision(cutoff=0.7, declines="below", positive_class=0),
    )  # fmt: skip
    assert np.array_equal(above.declined, below.declined)
    a, b = above.to_frame(), below.to_frame()
    cols = [f"reason_{j}" for j in range(1, 5)]
    assert a[cols].equals(b[cols])


def test_the_reference_population_choices_and_an_empty_one():
    X, y = applicants(2000, seed=4)
    model, _ = scorecard("scorecard", X, y)
    rows, reference = X.iloc[:200], X.iloc[1000:1500]
    p = model.predict_proba(reference)[:, 1]
    kw = dict(catalogue=catalogue(), decision=shapgov.Decision(cutoff=0.3), reference=reference)
    near = shapgov.reasons(model, rows, population="near_cutoff", near_cutoff_share=0.1, **kw)
    assert near.reference["rows"] == 50
    closest = np.sort(np.abs(p - 0.3))[:50]
    assert (
        near.reference["mean_score"]
        == pytest.approx(p[np.argsort(np.abs(p - 0.3), kind="stable")[:50]].mean())
        and closest.max() < 0.1
    )
    everyone = shapgov.reasons(model, rows, population="all", **kw)
    assert everyone.reference["rows"] == 500
    assert everyone.game["n_background"] == 500
    assert everyone.game_sha256 != near.game_sha256
    with pytest.raises(InputError, match="approves none of the 500"):
        shapgov.reasons(
            model, rows, catalogue=catalogue(), reference=reference,
            decision=shapgov.Decision(cutoff=0.0),
        )  # fmt: skip
    with pytest.raises(InputError, match="must be one of"):
        shapgov.reasons(model, rows, population="declined", **kw)


def test_bad_catalogues_are_typed_errors_that_name_the_problem(tmp_path):
    X, y = applicants(500, seed=5)
    model, _ = scorecard("scorecard", X, y)
    kw = dict(decision=shapgov.Decision(cutoff=0.3), reference=X.iloc[200:300])
    twice = [*REASONS, ("R01", "Again", ["housing"], "either")]
    cases = {
        "appears twice": lambda: catalogue([*twice[:6], twice[-1]]),
        "is in reasons 'R01' and 'R08'": lambda: catalogue(
            [*REASONS, ("R08", "Income again", ["income"], "low")]
        ),
        "empty statement": lambda: catalogue([*REASONS[:6], ("R07", " ", ["housing"], "either")]),
        "adverse='up'": lambda: catalogue([*REASONS[:6], ("R07", "Housing", ["housing"], "up")]),
        "covers no model input": lambda: catalogue([*REASONS[:6], ("R07", "Housing", [], "high")]),
        "without a written justification": lambda: catalogue(
            REASONS[:6], never=[dict(input="housing", justification="no")]
        ),
    }
    for message, build in cases.items():
        with pytest.raises(CatalogueError, match=message.replace("(", r"\(")):
            build()
    with pytest.raises(
        CatalogueError, match=r"covers no entry for the model input\(s\) \['housing'\]"
    ):
        shapgov.reasons(model, X.iloc[:50], catalogue=catalogue(REASONS[:6]), **kw)
    with pytest.raises(CatalogueError, match=r"does not take: \['bureau_score'\]"):
        extra = [*REASONS, ("R08", "Bureau score", ["bureau_score"], "low")]
        shapgov.reasons(model, X.iloc[:50], catalogue=catalogue(extra), **kw)
    # an input may be left out only with a written justification, which is recorded
    why = "Housing is scored only to calibrate the base rate of renters; not a credit factor."
    justified = catalogue(REASONS[:6], never=[dict(input="housing", justification=why)])
    got = shapgov.reasons(model, X.iloc[:50], catalogue=justified, **kw)
    assert got.catalogue.never == {"housing": why} and "housing" in got.players
    assert "R07" not in set(got.to_frame()["reason_1"].dropna())
    assert justified.to_dict()["never_a_reason"] == [{"input": "housing", "justification": why}]
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text('[catalogue]\nname = "x"\nversion = "1"\n[[reasons]]\ncode = "R01"\n')
    with pytest.raises(CatalogueError, match=r"unknown table\(s\) \['reasons'\]"):
        load_catalogue(bad_toml)
    with pytest.raises(CatalogueError, match="not valid TOML"):
        (tmp_path / "broken.toml").write_text("[catalogue\n")
        load_catalogue(tmp_path / "broken.toml")
    with pytest.raises(CatalogueError, match=r"a \.toml or \.csv file"):
        load_catalogue(tmp_path / "c.json")


def test_a_catalogue_file_in_toml_or_csv_is_the_same_catalogue(tmp_path):
    toml = ['[catalogue]\nname = "test-credit"\nversion = "1"\n']
    for code, statement, inputs, adverse in REASONS:
        toml.append(
            f'[[reason]]\ncode = "{code}"\nstatement = "{statement}"\n'
            f'inputs = {inputs!r}\nadverse = "{adverse}"\n'.replace("'", '"')
        )
    (tmp_path / "c.toml").write_text("\n".join(toml))
    csv = ["code,statement,inputs,adverse,justification"]
    csv += [f'{c},"{s}",{";".join(i)},{a},' for c, s, i, a in REASONS]
    (tmp_path / "c.csv").write_text("\n".join(csv) + "\n")
    a = load_catalogue(tmp_path / "c.toml")
    b = load_catalogue(tmp_path / "c.csv", name="test-credit", version="1")
    assert a.sha256 == b.sha256 == catalogue().sha256 and len(a.sha256) == 64
    assert a.groups()["R04"] == ["delinquencies", "inquiries"]
    with pytest.raises(CatalogueError, match="has no version: add a catalogue_version column"):
        load_catalogue(tmp_path / "c.csv")
    # a CSV that names itself is a path reasons() takes; spreadsheets' UTF-8 byte-order
    # mark is read; a file in another encoding is named
    named = ["catalogue_name,catalogue_version," + csv[0]]
    named += [f"test-credit,1,{line}" for line in csv[1:]]
    (tmp_path / "named.csv").write_text("\n".join(named) + "\n", encoding="utf-8-sig")
    assert load_catalogue(tmp_path / "named.csv").sha256 == a.sha256
    with pytest.raises(CatalogueError, match="says catalogue_version = '1' but '2' was given"):
        load_catalogue(tmp_path / "named.csv", version="2")
    (tmp_path / "latin.csv").write_bytes(
        "\n".join([*csv[:2], 'R09,"Ancienneté insuffisante",months_oldest,low,']).encode("latin-1")
    )
    with pytest.raises(CatalogueError, match=r"latin\.csv is not UTF-8 text"):
        load_catalogue(tmp_path / "latin.csv", version="1")
    (tmp_path / "ragged.csv").write_text("\n".join([csv[0], "R01,Income,income,low,,extra"]))
    with pytest.raises(CatalogueError, match=r"line 2 .* has 6 cells but the header has 5"):
        load_catalogue(tmp_path / "ragged.csv", version="1")
    with pytest.raises(AttributeError, match="cannot assign"):
        a.name = "other"


def test_protected_attributes_are_refused_for_adverse_action():
    X, y = applicants(800, seed=6)
    X["age"] = np.random.default_rng(0).integers(18, 80, len(X)).astype(float)
    with_age = [*REASONS, ("R08", "Age", ["age"], "either")]
    model, _ = scorecard("scorecard", X.drop(columns="age"), y)
    kw = dict(decision=shapgov.Decision(cutoff=0.3), reference=X.iloc[200:300])
    # the model takes it as an input
    lr = make_pipeline(
        ColumnTransformer([("n", "passthrough", [*NUMERIC, "age"])]), LogisticRegression()
    ).fit(X, y)
    with pytest.raises(
        ProtectedAttributeError, match=r"takes the protected attribute\(s\) \['age'\]"
    ):
        shapgov.reasons(
            lr, X.iloc[:20], catalogue=catalogue(with_age), protected=["age", "sex"], **kw
        )
    # the catalogue names it (the model does not take it)
    cat = catalogue([*REASONS, ("R08", "Age", ["age"], "either")])
    with pytest.raises(ProtectedAttributeError, match="names the protected attribute"):
        cat.check_inputs([*X.drop(columns="age").columns], protected=["age"])
    never_age = catalogue(REASONS, never=[dict(input="age", justification="x" * 30)])
    kw["reference"] = X.drop(columns="age").iloc[200:300]
    with pytest.raises(ProtectedAttributeError, match="names the protected attribute"):
        shapgov.reasons(
            model, X.drop(columns="age").iloc[:20], catalogue=never_age, protected=["age"], **kw
        )
    # a protected column kept beside the inputs of a model that does not take it is
    # neither a protected-attribute error nor a catalogue gap: X holds a column too many
    with pytest.raises(ColumnMismatchError, match=r"unexpected \['age'\]"):
        shapgov.reasons(model, X.iloc[:20], catalogue=catalogue(), protected=["age"], **kw)
    assert issubclass(ProtectedAttributeError, ValueError)


def test_stability_is_one_where_the_reasons_are_planted_and_seeded():
    X, y = applicants(2000, seed=7)
    model, _ = scorecard("scorecard", X, y)
    rows, reference = X.iloc[:300], X.iloc[1000:1400]
    kw = dict(
        catalogue=catalogue(), decision=shapgov.Decision(cutoff=0.3), reference=reference,
        max_reasons=1, stability=5, random_state=3,
    )  # fmt: skip
    got = shapgov.reasons(model, rows, **kw)
    s = got.stability
    assert s["resamples"] == 5 and s["rows"] == int(got.declined.sum())
    assert 0 < s["min_share_kept"] <= s["mean_share_kept"] <= 1
    again = shapgov.reasons(model, rows, **kw)
    assert again.stability == s  # seeded
    # a row whose first reason leads the runner-up by far keeps it in every resample
    values = np.sort(got.group_values * 1.0, axis=1)
    lead = values[:, -1] - values[:, -2]
    far = got.index[got.declined][lead > 1.0]
    assert len(far) and all(s["per_row"][str(k)] == 1.0 for k in far)


def test_rows_the_policy_withholds_get_no_reasons_and_say_so(test_plugin):
    X, y = applicants(600, seed=8)
    numeric = X[NUMERIC]
    ridge = Ridge().fit(numeric, y.astype(float))
    upper = float(np.quantile(ridge.predict(numeric), 0.7))
    clipped = test_plugin.ClippedRegressor(Ridge(), upper=upper).fit(numeric, y.astype(float))
    got = shapgov.reasons(
        clipped, numeric.iloc[:200], catalogue=catalogue(REASONS[:6]),
        decision=shapgov.Decision(cutoff=upper - 0.05, score="prediction"),
        reference=numeric.iloc[300:400], population="all",
    )  # fmt: skip
    frame = got.to_frame()
    declined = frame[frame["decision"] == "declined"]
    assert len(declined) and set(declined["status"]) == {"withheld"}
    assert declined["reason_1"].isna().all()
    assert got.additivity["status"] == "fail"
    assert "withheld by the additivity policy" in got.notice(declined.index[0])
    # reasons given under a generous threshold, re-derived under the default one: every
    # resample is withheld, so there is no stability figure (not a stability of 0)
    from shapgov.adverse_action.stability import stability
    from shapgov.errors import AdditivityWarning

    with pytest.warns(AdditivityWarning):
        generous = shapgov.reasons(
            clipped, numeric.iloc[:200], catalogue=catalogue(REASONS[:6]),
            decision=shapgov.Decision(cutoff=upper - 0.05, score="prediction"),
            reference=numeric.iloc[300:400], population="all", additivity_threshold=1e9,
        )  # fmt: skip
    assert (generous.status == "reasons").any()
    rows = numeric.iloc[:200].loc[generous.declined]
    figures = stability(
        generous, clipped, rows, generous.reference_rows, resamples=3,
        options={"additivity_threshold": 0.01},
    )  # fmt: skip
    assert figures["withheld_resamples"] == 3 and figures["rows"] > 0
    for name in ("mean_share_kept", "min_share_kept", "rows_always_kept", "first_reason_kept"):
        assert figures[name] is None, name


def test_a_notice_names_the_reasons_in_order():
    X, y = applicants(1500, seed=9)
    model, _ = scorecard("scorecard", X, y)
    got = shapgov.reasons(
        model, X.iloc[:200], catalogue=catalogue(), decision=shapgov.Decision(cutoff=0.3),
        reference=X.iloc[500:900],
    )  # fmt: skip
    frame = got.to_frame()
    row = frame[frame["status"] == "reasons"].iloc[0]
    text = got.notice(row.name)
    assert text.splitlines()[1] == f"  1. {row['statement_1']} ({row['reason_1']})"
    with pytest.raises(InputError, match="was approved"):
        got.notice(frame[frame["decision"] == "approved"].index[0])
    assert got.summary()["catalogue"]["sha256"] == catalogue().sha256
    freq = got.frequencies()
    assert freq["any"].sum() == frame[[f"reason_{j}" for j in range(1, 5)]].notna().sum().sum()


def test_protected_names_match_whatever_their_case_and_a_lone_name_is_one_name():
    """Found by a reviewer: ``["Age"]`` against a column ``age`` and ``protected="age"``
    (iterated as the letters a, g, e) passed silently."""
    X, y = applicants(800, seed=12)
    model, _ = scorecard("scorecard", X, y)
    kw = dict(catalogue=catalogue(), decision=shapgov.Decision(cutoff=0.3), reference=X[200:300])
    for protected in (["Housing"], " HOUSING ", ("housing",)):
        with pytest.raises(ProtectedAttributeError, match=r"\['housing'\]"):
            shapgov.reasons(model, X.iloc[:20], protected=protected, **kw)
    with pytest.raises(InputError, match="list of attribute names"):
        shapgov.reasons(model, X.iloc[:20], protected=3, **kw)
    checked = shapgov.reasons(model, X.iloc[:20], protected=["age", "sex"], **kw)
    assert checked.summary()["protected"] == ["age", "sex"]  # recorded with the reasons


def test_a_statement_not_true_of_the_applicant_is_not_given_and_counted():
    """Planted: risk is U-shaped in utilization (no revolving use at all is as risky as
    maxed-out cards), so an applicant with utilization 0 is pushed toward decline by it;
    "Proportion of balances to credit limits is too high" is false of them and must not
    be given (CFPB circular 2022-03: reasons must describe the factors scored)."""
    X, _ = applicants(3000, seed=11)
    rng = np.random.default_rng(11)
    logit = -2.0 + 12 * (X.utilization - 0.4) ** 2 + 0.8 * X.delinquencies
    y = pd.Series((rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int), index=X.index)
    model, _ = scorecard("gam", X, y)
    reference = X.iloc[1000:2000]
    cutoff = float(np.quantile(model.predict_proba(reference)[:, 1], 0.6))
    approved = reference[model.predict_proba(reference)[:, 1] < cutoff]
    typical = {
        c: (float(np.median(approved[c])) if c != "housing" else "mortgage") for c in X.columns
    }
    rows = pd.DataFrame(
        [
            {**typical, "utilization": 0.0},  # only utilization pushes, from the low side
            {**typical, "utilization": 0.0, "delinquencies": 4.0},  # and delinquencies
            {**typical, "utilization": 0.97},  # maxed out: the statement is true
        ],
        index=pd.Index(["A-1", "A-2", "A-3"], name="applicant"),
    )
    got = shapgov.reasons(
        model, rows, catalogue=catalogue(), decision=shapgov.Decision(cutoff=cutoff),
        reference=reference, min_share=0.05,  # the typical applicant's small pushes are not reasons
    )  # fmt: skip
    assert got.declined.all()  # planted: all three are declined
    players = list(got.players)
    push = got.group_values[:, players.index("R03")]
    assert (push > 0).all()  # utilization pushes all three toward decline
    frame = got.to_frame()
    assert frame.loc["A-1", "status"] == "needs review" and pd.isna(frame.loc["A-1", "reason_1"])
    assert "R03" not in set(frame.loc["A-2"].filter(like="reason_").dropna())
    assert frame.loc["A-2", "reason_1"] == "R04"
    assert frame.loc["A-3", "reason_1"] == "R03"
    assert "a reviewer must state" in got.notice("A-1")
    counts = got.frequencies().set_index("code")["contradicted"]
    assert counts["R03"] == 2 and counts.drop("R03").sum() == 0
    direction = got.summary()["direction"]
    assert direction["contradicted"] == 2
    assert direction["medians"]["utilization"] == float(np.median(approved.utilization))
    assert "R07" not in direction["medians"] and "housing" not in direction["medians"]


def test_the_direction_rule_by_hand_on_missing_values_categories_and_groups():
    from shapgov.adverse_action.direction import reference_medians, statement_holds

    cat = catalogue(
        [
            ("R01", "Income too low", ["income"], "low"),
            ("R02", "Balances or inquiries too high", ["utilization", "inquiries"], "high"),
            ("R03", "Housing", ["housing"], "high"),  # a category is never judged
            ("R04", "Length of history", ["months_oldest"], "either"),
        ]
    )
    reference = pd.DataFrame(
        {
            "income": [10.0, 20.0, 30.0, np.nan],
            "utilization": [0.1, 0.2, 0.3, 0.4],
            "inquiries": [0.0, 1.0, 1.0, 2.0],
            "housing": ["own", "rent", "rent", "own"],
            "months_oldest": [1.0, 2.0, 3.0, 4.0],
            "bankruptcy": [False, False, False, True],
        }
    )
    cat = catalogue(
        [*[(r.code, r.statement, list(r.inputs), r.adverse) for r in cat.reasons],
         ("R05", "Bankruptcy on file", ["bankruptcy"], "high")]
    )  # fmt: skip
    medians = reference_medians(cat, reference)
    assert medians == {"income": 20.0, "utilization": 0.25, "inquiries": 1.0, "bankruptcy": 0.0}
    rows = pd.DataFrame(
        {
            "income": [15.0, 20.0, np.nan, 25.0],
            "utilization": [0.1, 0.3, np.nan, np.nan],
            "inquiries": [1.0, 0.0, np.nan, 3.0],
            "housing": ["own"] * 4,
            "months_oldest": [9.0] * 4,
            "bankruptcy": pd.array([True, False, None, False], dtype="boolean"),
        }
    )
    holds = statement_holds(cat, rows, medians)
    assert holds.tolist() == [
        [True, False, True, True, True],  # income below; neither above; a bankruptcy
        [False, True, True, True, False],  # income at the median is not low; utilization above
        [False, False, True, True, False],  # missing is neither high nor low
        [False, True, True, True, False],  # utilization missing, inquiries above
    ]


def test_bad_options_rows_and_files_are_typed_errors_that_say_what_to_do(tmp_path):
    X, y = applicants(600, seed=12)
    model, _ = scorecard("scorecard", X, y)
    rows, reference = X.iloc[:40], X.iloc[200:400]
    kw = dict(catalogue=catalogue(), decision=shapgov.Decision(cutoff=0.3), reference=reference)
    cases = [
        (dict(max_reasons=None), InputError, "max_reasons must be a whole number"),
        (dict(max_reasons=True), InputError, "max_reasons must be a whole number"),
        (dict(min_share="x"), InputError, "min_share must be a number"),
        (dict(stability=-1), InputError, r"stability \(resamples\) must be a whole number"),
        (dict(stability=2, random_state="a"), InputError, "random_state must be a whole"),
        (dict(population="near_cutoff", near_cutoff_share="0.2"), InputError, "near_cutoff_share"),
        (dict(catalogue="nowhere.yaml"), CatalogueError, r"a \.toml or \.csv file"),
        (dict(catalogue=5), InputError, "not int"),
        (dict(reference=reference.iloc[:0]), InputError, "reference has no rows"),
        (dict(reference=reference.drop(columns="income")), ColumnMismatchError, "missing"),
    ]
    for change, error, message in cases:
        with pytest.raises(error, match=message):
            shapgov.reasons(model, rows, **{**kw, **change})
    with pytest.raises(InputError, match="X has no rows"):
        shapgov.reasons(model, rows.iloc[:0], **kw)
    with pytest.raises(InputError, match="cutoff must be a finite number"):
        shapgov.Decision(cutoff="abc")
    # keys that do not name one applicant each are refused, whatever the rows
    for index, why in (
        (pd.Index([1, 2] * 20), "repeats keys"),
        (pd.MultiIndex.from_arrays([[1] * 40, range(40)]), "is a MultiIndex"),
    ):
        with pytest.raises(InputError, match=f"X's index {why}"):
            shapgov.reasons(model, rows.set_axis(index), **kw)
    # labels, not scores, and several classes
    labels = make_pipeline(
        ColumnTransformer([("n", "passthrough", NUMERIC)]), LogisticRegression(max_iter=2000)
    ).fit(X, np.where(y == 1, "bad", "good"))
    on_prediction = {**kw, "decision": shapgov.Decision(cutoff=0.5, score="prediction")}
    with pytest.raises(InputError, match="is a classifier whose predict gives class labels"):
        shapgov.reasons(labels, rows, **on_prediction)  # 0/1 labels would pass as numbers

    def grades(frame):  # an opaque function that answers with labels
        return np.where(frame["income"] > 60000, "A", "B")

    with pytest.raises(ModelOutputError, match=r"predicts labels such as \['(A|B)'\]"):
        shapgov.reasons(grades, rows, **on_prediction)
    with pytest.raises(InputError, match=r"the cutoff 20 is a probability, so it lies in \[0, 1\]"):
        shapgov.Decision(cutoff=20)
    with pytest.raises(InputError, match="name the class whose probability"):
        shapgov.reasons(labels, rows, **kw)
    three = make_pipeline(
        ColumnTransformer([("n", "passthrough", NUMERIC)]), LogisticRegression(max_iter=2000)
    ).fit(X, y + (X.income > X.income.median()))
    with pytest.raises(InputError, match="the model has 3 classes"):
        shapgov.reasons(three, rows, **kw)
    with pytest.raises(InputError, match=r"no row \['x'\] among the explained rows"):
        shapgov.reasons(model, rows, **kw).notice(["x"])
    # TOML written with plain values where tables or lists belong, unknown or loose keys
    head = '[catalogue]\nname = "x"\nversion = "1"\n'
    entry = '[[reason]]\ncode = "R1"\nstatement = "s"\ninputs = ["income"]\nadverse = "low"\n'
    for text, message in (
        ('[catalogue]\nname = "x"\nversion = "1"\nowner = "risk"\n' + entry,
         r"\[catalogue\] table .* has unknown key\(s\) \['owner'\]"),
        ('[catalogue]\nname = "x"\nversion = 2026.10\n' + entry,
         r"\['version'\] .* must be quoted text"),
        (head + entry + '[[never_a_reason]]\ninput = "y"\nreason = "z"\n',
         r"unknown field\(s\) \['reason'\]"),
    ):  # fmt: skip
        (tmp_path / "c.toml").write_text(text)
        with pytest.raises(CatalogueError, match=message):
            load_catalogue(tmp_path / "c.toml")
    # a spreadsheet's CSV: what it gets wrong is named; a trailing empty column is fine
    good = "code,statement,inputs,adverse,justification,catalogue_version"
    for lines, message in (
        ([good + ",code", "R1,s,income,low,,1,R1"], r"the column\(s\) \['code'\] twice"),
        ([good, ",Income too low,income,low,,1"], "a statement or an adverse direction but no"),
        ([good, "R1,s,income,low,because it is so,1"], "is reason 'R1' and has a justification"),
        (["code;statement;inputs;adverse;justification", "R1;s;income;low;"], "by semicolons"),
    ):  # fmt: skip
        (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
        with pytest.raises(CatalogueError, match=message):
            load_catalogue(tmp_path / "c.csv")
    (tmp_path / "c.csv").write_text(f"{good},\nR1,s,income,low,,1,\n")
    assert load_catalogue(tmp_path / "c.csv").codes == ("R1",)
    for text, message in (
        ('catalogue = "x"\n', r"writes \['\[catalogue\]'\] as a plain value"),
        ('[catalogue]\nname = "x"\nversion = "1"\n[[reason]]\ncode = "R1"\nstatement = "s"\n'
         'inputs = 5\nadverse = "high"\n', "inputs=5; inputs are the names of model inputs"),
    ):  # fmt: skip
        (tmp_path / "c.toml").write_text(text)
        with pytest.raises(CatalogueError, match=message):
            load_catalogue(tmp_path / "c.toml")
    with pytest.raises(CatalogueError, match=r"code\(s\) \['housing'\].* also the names of inputs"):
        catalogue(
            [*REASONS[:5], ("housing", "Amount of credit requested", ["loan_amount"], "high")],
            never=[dict(input="housing", justification="x" * 30)],
        )


def test_numpy_rows_take_the_models_input_names():
    X, y = applicants(600, seed=13)
    model, _ = scorecard("scorecard", X, y)
    frame = shapgov.reasons(
        model, X.iloc[:60], catalogue=catalogue(), decision=shapgov.Decision(cutoff=0.3),
        reference=X.iloc[200:400],
    ).to_frame()  # fmt: skip
    array = shapgov.reasons(
        model, X.iloc[:60].to_numpy(), catalogue=catalogue(),
        decision=shapgov.Decision(cutoff=0.3), reference=X.iloc[200:400].to_numpy(),
    ).to_frame()  # fmt: skip
    assert (
        frame.drop(columns="game_sha256")
        .reset_index(drop=True)
        .equals(array.drop(columns="game_sha256"))
    )
