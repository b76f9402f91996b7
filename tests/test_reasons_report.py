"""Adverse-action reasons in the compliance report and in approval (issue 32).

A logistic model whose coefficients are planted, so every declined row's reasons are
known by hand: on the log-odds margin an entry's exact value against the reference
population is ``sum(coef * (x - mean of the reference population))`` over its inputs.
Eight applicants: four approved, three declined with reasons, one declined only by an
input declared never a reason ("needs review": its notice would leave out the principal
factor); one entry of one row is fragile, so
its stability is below 1. The catalogue and a row key carry hostile text.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from stores import use_store
from test_reasons import expected_reasons, statements_hold
from test_report import (
    EVIL,
    _headless,
    _laid_out_width,
    _need_chromium,
    _section,
    _table_after,
    _words,
    parse,
)

import shapgov
import shapgov.mlflow
from shapgov.adverse_action.catalogue import make_catalogue
from shapgov.errors import InputError
from shapgov.sinks.compliance import SECTIONS, ArtifactSet, build_context

COLUMNS = ["income", "utilization", "delinquencies", "inquiries", "channel"]
COEF = np.array([-0.05, 4.0, 1.0, 0.5, 3.0])
INTERCEPT = -1.0
CUTOFF = 0.2
HOSTILE_ROW = "<b>A-1</b>"
HOSTILE_WHY = "How it arrived is no credit factor <img src=x onerror=alert(2)>"
ENTRIES = [
    ("R01", "Income insufficient for amount of credit requested", ["income"], "low"),
    ("R02", EVIL, ["utilization"], "high"),
    ("R03", "Delinquencies or recent inquiries", ["delinquencies", "inquiries"], "high"),
]
CODES = [c for c, *_ in ENTRIES]


def planted_model() -> LogisticRegression:
    """A fitted LogisticRegression whose coefficients are then set by hand."""
    rng = np.random.default_rng(0)
    model = LogisticRegression().fit(
        pd.DataFrame(rng.normal(size=(20, 5)), columns=COLUMNS), np.arange(20) % 2
    )
    model.coef_, model.intercept_ = COEF[None, :].copy(), np.array([INTERCEPT])
    return model


def reference() -> pd.DataFrame:
    """30 candidate reference rows; the rule approves 26 of them."""
    rng = np.random.default_rng(5)
    n = 30
    return pd.DataFrame(
        {
            "income": rng.uniform(60, 100, n).round(0),
            "utilization": rng.uniform(0.1, 0.5, n).round(2),
            "delinquencies": rng.integers(0, 2, n).astype(float),
            "inquiries": rng.integers(0, 3, n).astype(float),
            "channel": np.zeros(n),
        }
    )


def applicants() -> pd.DataFrame:
    rows = [
        [90, 0.20, 0, 0, 0],  # approved
        [40, 0.90, 0, 1, 0],  # declined: utilization, then income
        [95, 0.15, 0, 1, 0],  # approved
        [85, 0.95, 2, 3, 0],  # declined: utilization, then delinquencies/inquiries
        [84, 0.25, 0, 0, 1],  # declined by the channel alone: needs review
        [82, 0.40, 4, 1, 0],  # declined: R03, R02, and a fragile R01 (income 1 below)
        [70, 0.30, 0, 0, 0],  # approved
        [100, 0.35, 1, 2, 0],  # approved
    ]
    keys = ["A-0", HOSTILE_ROW, "A-2", "A-3", "A-4", "A-5", "A-6", "A-7"]
    return pd.DataFrame(rows, columns=COLUMNS, index=pd.Index(keys, name="applicant"), dtype=float)


def catalogue():
    return make_catalogue(
        name="planted-credit",
        version="2026.1",
        reasons=[dict(code=c, statement=s, inputs=i, adverse=a) for c, s, i, a in ENTRIES],
        never_a_reason=[{"input": "channel", "justification": HOSTILE_WHY}],
    )


def spec(stability: int = 20) -> dict:
    return dict(
        catalogue=catalogue(), decision=shapgov.Decision(cutoff=CUTOFF), reference=reference(),
        stability=stability,
    )  # fmt: skip


def _register(name: str, run_id: str) -> str:
    """A model version whose source run is ``run_id`` (approval reads only the run's set)."""
    client = mlflow.MlflowClient()
    client.create_registered_model(name)
    return client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id).version


@pytest.fixture(scope="module")
def logged(module_store, tmp_path_factory):
    """Three sets logged once for the module: with reasons and 20 stability resamples,
    with reasons but no resamples, and without reasons; each registered."""
    use_store(module_store)
    model, X = planted_model(), applicants()
    runs = {}
    for name, reasons in (
        ("reasoned", spec()),
        ("unmeasured", spec(stability=0)),
        ("plain", None),
    ):
        with mlflow.start_run() as run:
            shapgov.mlflow.explain_and_log(
                model, X, background=reference(), analyses=False, reasons=reasons
            )
        runs[name] = (run.info.run_id, _register(name, run.info.run_id))
    where = tmp_path_factory.mktemp("sets")
    folders = {
        name: Path(
            mlflow.artifacts.download_artifacts(f"runs:/{rid}/shapgov", dst_path=str(where / name))
        )
        for name, (rid, _) in runs.items()
    }
    return model, X, runs, folders


@pytest.fixture
def sets(logged, module_store):
    use_store(module_store)
    return logged


def _hand_reasons(model, X) -> tuple[np.ndarray, list[list[str]]]:
    """Declined rows and their reasons by hand, from the planted coefficients."""
    ref = reference()
    approved = ref[model.predict_proba(ref)[:, 1] < CUTOFF]
    mean = approved.mean().to_numpy()
    declined = INTERCEPT + X.to_numpy() @ COEF >= np.log(CUTOFF / (1 - CUTOFF))
    push = (X.to_numpy() - mean) * COEF
    entries = np.column_stack([push[:, 0], push[:, 1], push[:, 2] + push[:, 3]])
    holds = statements_hold(X[declined], approved, ENTRIES)
    return declined, expected_reasons(entries[declined], CODES, 4, 0.01, holds)


def test_the_section_shows_the_planted_reasons_counted_by_hand(sets):
    model, X, _, folders = sets
    declined, given = _hand_reasons(model, X)
    # the planted answer, by hand: the rows, their reasons, the fragile one
    assert declined.tolist() == [False, True, False, True, True, True, False, False]
    assert given == [["R02", "R01"], ["R02", "R03"], [], ["R03", "R02", "R01"]]
    with_reasons = [g for g in given if g]
    section = build_context(ArtifactSet.read(folders["reasoned"]))["reasons"]

    assert section["rows"] == 8 and section["declined"] == 4
    counts = {s["status"]: s["rows"] for s in section["status"]}
    assert counts == {
        "approved": 4, "reasons": 3, "no adverse input": 0, "needs review": 1, "withheld": 0,
    }  # fmt: skip
    frequencies = {f["code"]: (f["first"], f["any"], f["share"]) for f in section["frequencies"]}
    for code in CODES:
        first = sum(g[0] == code for g in with_reasons)
        anywhere = sum(code in g for g in with_reasons)
        assert frequencies[code] == (first, anywhere, f"{anywhere / 3:.1%}")
    assert frequencies == {"R02": (2, 3, "100.0%"), "R01": (0, 2, "66.7%"), "R03": (1, 2, "66.7%")}
    assert [f["code"] for f in section["frequencies"]] == ["R02", "R01", "R03"]  # most given

    cat = section["catalogue"]
    assert (cat["name"], cat["version"], cat["sha256"]) == (
        "planted-credit",
        "2026.1",
        catalogue().sha256,
    )
    assert cat["verified"]
    assert [(r["code"], r["inputs"]) for r in cat["reasons"]] == [
        ("R01", "income"), ("R02", "utilization"), ("R03", "delinquencies, inquiries"),
    ]  # fmt: skip
    assert cat["never"] == [("channel", HOSTILE_WHY)]
    assert dict(section["decision"])["Rule"] == "probability >= 0.2 declines"
    ref = reference()
    scores = model.predict_proba(ref)[:, 1]
    approved = scores[scores < CUTOFF]
    assert section["reference"]["population"] == "approved"
    assert (section["reference"]["rows"], section["reference"]["candidates"]) == (26, 30)
    assert section["reference"]["mean_score"] == f"{approved.mean():.4g}"

    figures = json.loads((folders["reasoned"] / "reasons.json").read_text())["stability"]
    stability = section["stability"]
    assert stability["resamples"] == 20 and stability["rows"] == 3
    assert stability["mean"] == f"{figures['mean_share_kept']:.1%}"
    assert stability["min"] == f"{figures['min_share_kept']:.1%}"
    assert stability["always"] == f"{2 / 3:.1%}"  # A-5's fragile R01 comes and goes
    assert stability["first"] == f"{figures['first_reason_kept']:.1%}"
    assert [u["row"] for u in stability["unstable"]] == ["A-5"]

    # the notice: the first declined row with reasons, word for word as notice() gives it
    in_process = shapgov.reasons(model, X, **spec(stability=0))
    assert section["notice"]["row"] == HOSTILE_ROW
    assert section["notice"]["text"] == in_process.notice(HOSTILE_ROW)
    assert section["notice"]["text"].splitlines()[1:] == [f"  1. {EVIL} (R02)",
        "  2. Income insufficient for amount of credit requested (R01)"]  # fmt: skip

    # ... and the HTML shows it all: the tables read as the reader sees them
    html = (folders["reasoned"] / "report.html").read_text()
    words = _words(_section(html, "reasons"))
    assert "4 of 8 explained rows declined" in words
    head, body = _table_after(html, "How often each reason is given")
    assert head == ["Code", "Statement", "First", "Any", "Share", "Not true of the row"]
    assert [[r[0], r[2], r[3], r[4], r[5]] for r in body] == [
        ["R02", "2", "3", "100.0%", "0"], ["R01", "0", "2", "66.7%", "0"],
        ["R03", "1", "2", "66.7%", "0"],
    ]  # fmt: skip
    _, status = _table_after(html, "<h3>Explained rows</h3>")
    assert [r[:2] for r in status] == [
        ["approved", "4"],
        ["reasons", "3"],
        ["no adverse input", "0"],
        ["needs review", "1"],
        ["withheld", "0"],
    ]
    assert "26 of 30 candidates" in words and catalogue().sha256 in words
    assert f"keeps {stability['mean']} of its reasons on average" in words
    assert in_process.notice(HOSTILE_ROW) in " ".join(parse(html).text)


def test_hostile_catalogue_text_and_row_keys_are_text_never_markup(sets):
    *_, folders = sets
    html = (folders["reasoned"] / "report.html").read_text()
    dom = parse(html)
    assert "script" not in dom.tags and "b" not in dom.tags
    assert EVIL not in html and HOSTILE_WHY not in html and HOSTILE_ROW not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert all(u.startswith(("data:image/png;base64,", "#")) for u in dom.urls)  # no <img src=x>
    text = " ".join(dom.text)
    assert EVIL in text and HOSTILE_WHY in text and HOSTILE_ROW in text  # shown as text


def test_the_section_is_absent_without_reasons_and_in_the_contents_with_them(sets):
    *_, folders = sets
    without = parse((folders["plain"] / "report.html").read_text())
    assert "reasons" not in without.ids and "#reasons" not in without.urls
    assert "Adverse-action reasons" not in " ".join(without.text)
    assert build_context(ArtifactSet.read(folders["plain"]))["reasons"] is None
    with_it = parse((folders["reasoned"] / "report.html").read_text())
    expected = [s for s, _ in SECTIONS if s not in ("over_time", "fairness", "challenger")]
    assert [i for i in with_it.ids if i in dict(SECTIONS)] == expected
    assert "#reasons" in with_it.urls and "Adverse-action reasons" in with_it.text
    # reasons without resamples: the section says stability was not measured
    unmeasured = _words((folders["unmeasured"] / "report.html").read_text())
    assert "Stability was not measured for this set" in unmeasured


def test_a_real_browser_shows_the_section(sets, tmp_path):
    exe = _need_chromium()
    *_, folders = sets
    report = tmp_path / "report.html"
    report.write_text((folders["reasoned"] / "report.html").read_text())
    dom = parse(_headless(exe, tmp_path / "p1", "--dump-dom", report.resolve().as_uri()).stdout)
    assert "reasons" in dom.ids and "script" not in dom.tags and "b" not in dom.tags
    text = " ".join(dom.text)
    assert "Adverse-action reasons" in text and "principal reasons for the adverse action" in text
    assert EVIL in text and HOSTILE_ROW in text
    scroll_width, client_width, past = _laid_out_width(exe, report, 1024, tmp_path)
    assert scroll_width <= client_width and past == "", past


def test_min_reason_stability_judges_the_mean_share_kept_and_is_recorded(sets):
    _, _, runs, folders = sets
    kept = json.loads((folders["reasoned"] / "reasons.json").read_text())["stability"]
    kept = kept["mean_share_kept"]
    assert 0.9 < kept < 1.0  # the fragile reason of A-5
    version = runs["reasoned"][1]
    below = shapgov.approve("reasoned", version, min_reason_stability=kept - 1e-6)
    assert below.approved, below.reasons
    above = shapgov.approve("reasoned", version, min_reason_stability=kept + 1e-6)
    assert not above.approved
    assert len(above.reasons) == 1
    assert f"reason stability {kept:.4f}" in above.reasons[0]
    assert f"is below min_reason_stability {kept + 1e-6:g}" in above.reasons[0]
    tags = mlflow.MlflowClient().get_model_version("reasoned", version).tags
    assert tags["shapgov.approval"] == "rejected"
    assert json.loads(tags["shapgov.approval.rules"])["min_reason_stability"] == kept + 1e-6
    assert "min_reason_stability" in tags["shapgov.approval.reasons"]


def test_min_reason_stability_rejects_a_set_without_reasons_or_without_stability(sets):
    _, _, runs, _ = sets
    plain, unmeasured = runs["plain"][1], runs["unmeasured"][1]
    assert shapgov.approve("plain", plain).approved  # only the rule rejects it
    no_reasons = shapgov.approve("plain", plain, min_reason_stability=0.5)
    assert not no_reasons.approved
    assert no_reasons.reasons[0].startswith("no adverse-action reasons in the set")
    no_figures = shapgov.approve("unmeasured", unmeasured, min_reason_stability=0.0)
    assert not no_figures.approved
    assert "derived without stability resamples" in no_figures.reasons[0]
    with pytest.raises(InputError, match=r"in \[0, 1\]"):
        shapgov.approve("plain", plain, min_reason_stability=1.5)


def test_a_row_declined_mostly_by_an_input_never_a_reason_needs_review():
    """Planted by hand: the channel (never a reason) pushes 3.0 toward decline; B-1's only
    reason pushes less, so its notice would leave out the principal factor; B-2's reasons
    push more than the channel and are given."""
    model = planted_model()
    ref = reference()
    approved = ref[model.predict_proba(ref)[:, 1] < CUTOFF]
    mean = approved.mean().to_numpy()
    rows = pd.DataFrame(
        [[84, 0.45, 0, 0, 1], [60, 0.95, 2, 2, 1]],
        columns=COLUMNS, index=pd.Index(["B-1", "B-2"], name="applicant"), dtype=float,
    )  # fmt: skip
    push = (rows.to_numpy() - mean) * COEF
    entries = np.column_stack([push[:, 0], push[:, 1], push[:, 2] + push[:, 3]])
    channel = push[:, 4]
    assert np.allclose(channel, 3.0)  # the reference population never used the channel
    holds = statements_hold(rows, approved, ENTRIES)
    # by hand: the 1% share counts the channel's push in the row's total
    given = []
    for row, flags, ch in zip(entries, holds, channel, strict=True):
        total = row[row > 0].sum() + ch
        kept = [
            (c, p) for c, p, ok in zip(CODES, row, flags, strict=True) if ok and p > 0.01 * total
        ]
        given.append(sorted(kept, key=lambda cp: (-cp[1], cp[0])))
    stated = [sum(p for _, p in g) for g in given]
    assert stated[0] < 3.0 < stated[1]  # the planted answer
    got = shapgov.reasons(
        model, rows, catalogue=catalogue(), decision=shapgov.Decision(cutoff=CUTOFF),
        reference=ref,
    )  # fmt: skip
    frame = got.to_frame()
    assert frame["status"].tolist() == ["needs review", "reasons"]
    assert frame.loc["B-1"].filter(like="reason_").isna().all()  # no automatic reasons
    assert [c for c in frame.loc["B-2"].filter(like="reason_") if isinstance(c, str)] == [
        c for c, _ in given[1]
    ]
    assert "a reviewer must state the principal reasons" in got.notice("B-1")
