"""``shapgov reasons`` (issue 32): new applicants' reasons exactly as a registered version's
set derived its own, or afresh from a catalogue; every refusal an exit code with what to
fix; and ``shapgov approve --min-reason-stability``.

Planted data: credit applicants generated with a known logistic risk
(:func:`shapgov.demo_data.credit_applicants`), a LightGBM model fitted to them and the
consumer-credit catalogue shipped with shapgov; two planted applicants, typical in every
input but one (eight delinquencies; a debt-to-income ratio of 58%), must be given that
input's reason first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from stores import use_store

import shapgov
import shapgov.mlflow
from shapgov.adverse_action.stored import read_reasons, reasons_like_the_set
from shapgov.cli import main
from shapgov.demo import credit_applicants, credit_catalogue

CUTOFF = 0.25
CATALOGUE = Path(shapgov.__file__).parent / "adverse_action" / "catalogues" / "consumer_credit.toml"


def _log(model, rows, train, reasons):
    """A run with ``model``'s set (with ``reasons`` when given) and the model; returns the
    registered version and the run id."""
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(
            model, rows, background=train.iloc[200:400], analyses=False, reasons=reasons
        )
        info = mlflow.lightgbm.log_model(
            model, name="model", input_example=train.head(3), pip_requirements=["lightgbm"]
        )
    return mlflow.register_model(info.model_uri, "credit-reasons").version, run.info.run_id


@pytest.fixture(scope="module")
def logged(module_store, tmp_path_factory):
    """Version 1 logged with reasons (3 stability resamples), version 2 without; the new
    applicants (two planted ones among them) and reference rows as CSV files."""
    from lightgbm import LGBMClassifier

    use_store(module_store)
    X, y = credit_applicants(1000, seed=3)
    train, new = X.iloc[:700], X.iloc[700:].copy()
    model = LGBMClassifier(n_estimators=60, num_leaves=15, verbose=-1).fit(train, y.iloc[:700])
    typical = train.median()
    typical[["housing_own", "housing_rent"]] = 0.0
    typical["housing_mortgage"] = 1.0
    planted = pd.DataFrame([typical, typical], index=pd.Index([1, 2], name="applicant"))
    planted.loc[1, "delinquencies"] = 8.0
    planted.loc[2, "debt_to_income"] = 58.0
    new = pd.concat([planted, new])
    spec = dict(
        catalogue=credit_catalogue(), decision=shapgov.Decision(cutoff=CUTOFF),
        reference=train.iloc[:200], stability=3,
    )  # fmt: skip
    version, run_id = _log(model, train.iloc[:150], train, spec)
    plain, _ = _log(model, train.iloc[:50], train, None)
    folder = tmp_path_factory.mktemp("cli-reasons")
    new.to_csv(folder / "applicants.csv")
    train.iloc[:200].to_csv(folder / "reference.csv")
    stored = read_reasons(
        Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/shapgov", dst_path=folder))
    )
    return SimpleNamespace(
        uri=module_store, model=model, new=new, train=train, folder=folder, stored=stored,
        with_reasons=f"models:/credit-reasons/{version}", plain=f"models:/credit-reasons/{plain}",
        name="credit-reasons", version=version, plain_version=plain, run_id=run_id,
    )  # fmt: skip


@pytest.fixture
def cli(logged, module_store):
    """Runs ``shapgov ARGS`` on the module's store with the applicants' file."""
    use_store(module_store)

    def run(*args: str, model: str | None = None):
        base = ["reasons", "--model-uri", model or logged.with_reasons, "--tracking-uri"]
        base += [module_store, "--data", str(logged.folder / "applicants.csv"), "--key"]
        base += ["applicant"]
        return CliRunner().invoke(main, [*base, *args])

    return run


def test_reasons_as_the_approved_set_derived_them(cli, logged):
    out = logged.folder / "stored.parquet"
    ran = cli("--out", str(out))
    assert ran.exit_code == 0, ran.output
    expected = reasons_like_the_set(logged.model, logged.new, logged.stored)
    frame = expected.to_frame()
    got = pd.read_parquet(out).set_index("applicant")
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)
    assert (got["game_sha256"] == logged.stored["summary"]["game_sha256"]).all()
    # the planted applicants: the one input that is not typical is the first reason
    assert got.loc[1, "reason_1"] == "R04" and got.loc[2, "reason_1"] == "R02"
    declined = int(expected.declined.sum())
    assert f"reasons for {len(logged.new)} rows of " in ran.output
    assert f": {declined} declined (probability >= 0.25 declines)" in ran.output
    assert "catalogue consumer-credit 2026.1" in ran.output
    assert f"as the artifact set of run {logged.run_id} derived them" in ran.output
    assert f"({logged.with_reasons}, shapgov.approval: " in ran.output
    assert "over 3 resamples of its reference population" in ran.output
    top = expected.frequencies().iloc[0]
    assert f"  {top.code}  {top['any']:>6} rows" in ran.output
    assert "Application" not in ran.output  # no notice unless asked


def test_the_notice_of_a_declined_applicant(cli, logged):
    ran = cli("--notice", "1")
    assert ran.exit_code == 0, ran.output
    notice = reasons_like_the_set(logged.model, logged.new, logged.stored).notice(1)
    assert notice.startswith("Application 1: principal reasons for the adverse action\n")
    assert "  1. Delinquent past or present credit obligations with others (R04)" in notice
    assert ran.output.endswith(notice + "\n")
    scores = logged.model.predict_proba(logged.new)[:, 1]
    approved = int(logged.new.index[scores < CUTOFF][0])
    refused = cli("--notice", str(approved))
    assert refused.exit_code == 2 and f"row {approved!r} was approved" in refused.output
    unknown = cli("--notice", "42")
    assert unknown.exit_code == 2 and "no row '42' in --data" in unknown.output


def test_fresh_reasons_equal_shapgov_reasons(cli, logged):
    out = logged.folder / "fresh.csv"
    args = ["--catalogue", str(CATALOGUE), "--cutoff", "0.3", "--reference"]
    args += [str(logged.folder / "reference.csv"), "--population", "all", "--max-reasons", "3"]
    ran = cli(*args, "--stability", "2", "--out", str(out), "--notice", "2")
    assert ran.exit_code == 0, ran.output
    expected = shapgov.reasons(
        logged.model, logged.new, catalogue=credit_catalogue(),
        decision=shapgov.Decision(cutoff=0.3), reference=logged.train.iloc[:200],
        population="all", max_reasons=3, stability=2,
    )  # fmt: skip
    got = pd.read_csv(out).set_index("applicant")
    frame = expected.to_frame()
    pd.testing.assert_frame_equal(
        got.drop(columns=[c for c in got if c.startswith(("reason_", "statement_"))]),
        frame.drop(columns=[c for c in frame if c.startswith(("reason_", "statement_"))]),
        check_dtype=False,
    )
    assert (
        got.filter(like="reason_").fillna("").to_numpy().tolist()
        == frame.filter(like="reason_").fillna("").to_numpy().tolist()
    )
    assert f"derived afresh from {CATALOGUE}" in ran.output
    assert "reference population 'all': 200 of 200 rows" in ran.output
    kept = expected.stability["mean_share_kept"]
    assert f"stability over 2 resamples of the reference population: mean share of a row's " \
        f"reasons kept {kept:.3f}" in ran.output  # fmt: skip
    assert f"\n{expected.notice(2)}\nreasons of every row written to {out}\n" in ran.output


BAD_CATALOGUES = {
    "a duplicate code": (
        lambda text: text.replace('code = "R02"', 'code = "R01"'),
        "the reason code 'R01' appears twice",
    ),
    "an uncovered input": (
        lambda text: text[: text.index('[[reason]]\ncode = "R10"')],
        "covers no entry for the model input(s) ['housing_own', 'housing_mortgage', "
        "'housing_rent']: add each to a reason, or declare it under [[never_a_reason]]",
    ),
    "an unknown adverse direction": (
        lambda text: text.replace('adverse = "low"', 'adverse = "lower"', 1),
        "has adverse='lower'; it must be one of ['high', 'low', 'either']",
    ),
    "not TOML": (lambda text: text + "\n[[reason\n", "is not valid TOML"),
}


@pytest.mark.parametrize("problem", sorted(BAD_CATALOGUES))
def test_a_bad_catalogue_exits_2_with_what_to_fix(cli, logged, problem):
    edit, message = BAD_CATALOGUES[problem]
    bad = logged.folder / f"bad {problem}.toml"
    bad.write_text(edit(CATALOGUE.read_text()))
    ran = cli(
        "--catalogue", str(bad), "--cutoff", "0.3",
        "--reference", str(logged.folder / "reference.csv"),
    )  # fmt: skip
    assert ran.exit_code == 2, ran.output
    assert message in " ".join(ran.output.split()), ran.output
    assert "Traceback" not in ran.output


def test_a_protected_attribute_exits_2(cli, logged):
    fresh = ["--catalogue", str(CATALOGUE), "--cutoff", "0.3"]
    fresh += ["--reference", str(logged.folder / "reference.csv")]
    as_input = cli(*fresh, "--protected", "age", "--protected", "housing_rent")
    assert as_input.exit_code == 2, as_input.output
    assert "the model takes the protected attribute(s) ['housing_rent'] as input" in " ".join(
        as_input.output.split()
    )
    # the approved set's catalogue is checked too
    stored = cli("--protected", "housing_own")
    assert stored.exit_code == 2 and "protected attribute(s) ['housing_own']" in stored.output
    # a catalogue that names one (as never a reason) for a model that does not take it
    named = logged.folder / "names-age.toml"
    named.write_text(
        CATALOGUE.read_text()
        + '\n[[never_a_reason]]\ninput = "age"\njustification = "Age is never a credit '
        'factor in this catalogue at all."\n'
    )
    ran = cli("--catalogue", str(named), *fresh[2:], "--protected", "age")
    assert ran.exit_code == 2, ran.output
    assert "names the protected attribute(s) ['age']" in " ".join(ran.output.split())


def test_usage_errors_exit_2_and_say_what_to_fix(cli, logged, tmp_path):
    reference = str(logged.folder / "reference.csv")
    cases = [
        (["--cutoff", "0.3"], "--cutoff derives fresh reasons: give --catalogue"),
        (["--reference", reference, "--stability", "3"], "--reference, --stability derive"),
        (["--catalogue", str(CATALOGUE)], "give --cutoff and --reference"),
        (["--out", str(tmp_path / "reasons.txt")], "neither .csv nor .parquet"),
    ]
    everyone = ["--catalogue", str(CATALOGUE), "--cutoff", "0"]  # a probability >= 0: all
    cases.append(([*everyone, "--reference", reference], "population 'approved' is empty"))
    percent = ["--catalogue", str(CATALOGUE), "--cutoff", "25", "--reference", reference]
    cases.append((percent, "the cutoff 25.0 is a probability, so it lies in [0, 1]"))
    for args, message in cases:
        ran = cli(*args)
        assert ran.exit_code == 2 and message in " ".join(ran.output.split()), (args, ran.output)
    plain = cli(model=logged.plain)
    assert plain.exit_code == 2, plain.output
    assert "holds no adverse-action reasons" in plain.output and "--catalogue" in plain.output
    missing = cli(model="models:/credit-reasons/99")
    assert missing.exit_code == 2 and "models:/credit-reasons/99" in missing.output
    tables = {
        "short.csv": (logged.new.iloc[:, :5], "has no column 'months_since_oldest_account'"),
        "target.csv": (logged.new.assign(default=0), "has column(s) ['default'] that models:/"),
    }
    for name, (table, message) in tables.items():
        table.to_csv(tmp_path / name)
        ran = CliRunner().invoke(
            main,
            ["reasons", "--model-uri", logged.with_reasons, "--tracking-uri", logged.uri,
             "--data", str(tmp_path / name), "--key", "applicant"],
        )  # fmt: skip
        assert ran.exit_code == 2 and message in ran.output, (name, ran.output)
    nokey = cli("--key", "id")
    assert nokey.exit_code == 2 and "has no column 'id'" in nokey.output


def test_a_csv_catalogue_its_version_and_repeated_keys(cli, logged, tmp_path):
    """A spreadsheet's catalogue (CSV) takes its version on the command line and is the
    same catalogue as the TOML; applicants' keys that repeat exit 2."""
    import csv

    catalogue = credit_catalogue()
    with (tmp_path / "reasons.csv").open("w", newline="", encoding="utf-8-sig") as f:
        out = csv.writer(f)
        out.writerow(["code", "statement", "inputs", "adverse", "justification"])
        for r in catalogue.reasons:
            out.writerow([r.code, r.statement, ";".join(r.inputs), r.adverse, ""])
        for name, why in catalogue.never.items():
            out.writerow(["", "", name, "", why])
    fresh = ["--catalogue", str(tmp_path / "reasons.csv"), "--cutoff", "0.3", "--reference"]
    fresh += [str(logged.folder / "reference.csv"), "--out", str(tmp_path / "csv.csv")]
    unversioned = cli(*fresh)
    assert unversioned.exit_code == 2 and "has no version" in unversioned.output
    ran = cli(*fresh, "--catalogue-version", "2026.1", "--catalogue-name", "consumer-credit")
    assert ran.exit_code == 0, ran.output
    assert f"catalogue consumer-credit 2026.1 (sha256 {catalogue.sha256[:12]}...)" in ran.output
    toml = cli("--catalogue", str(CATALOGUE), *fresh[2:-2], "--catalogue-version", "2")
    assert toml.exit_code == 2 and "for a .csv catalogue" in " ".join(toml.output.split())
    logged.new.iloc[[0, 0, 1]].to_csv(tmp_path / "twice.csv")
    twice = CliRunner().invoke(
        main,
        ["reasons", "--model-uri", logged.with_reasons, "--tracking-uri", logged.uri,
         "--data", str(tmp_path / "twice.csv"), "--key", "applicant"],
    )  # fmt: skip
    assert twice.exit_code == 2 and "repeats keys" in twice.output, twice.output
    assert "Traceback" not in twice.output


def test_withheld_values_exit_1(cli, monkeypatch):
    """The additivity policy withholds the declined rows' values: no reasons, exit 1."""
    import shapgov.grouped
    from shapgov.errors import AdditivityError

    report = SimpleNamespace(describe=lambda: "planted", to_dict=lambda rows: {"status": "fail"})

    def withheld(*args, **kwargs):
        raise AdditivityError(report)

    monkeypatch.setattr(shapgov.grouped, "explain_groups", withheld)
    ran = cli("--notice", "1")
    assert ran.exit_code == 1, ran.output
    assert "withheld by the additivity policy" in ran.output
    assert "Application 1: the explanation was withheld by the additivity policy" in ran.output
    assert "additivity failed: the values of " in ran.output


def test_an_unreachable_server_exits_75(logged, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    args = ["reasons", "--model-uri", "models:/credit-reasons/1", "--tracking-uri"]
    args += ["http://127.0.0.1:9", "--data", str(logged.folder / "applicants.csv")]
    try:
        ran = CliRunner().invoke(main, args)
    finally:
        use_store(logged.uri)
    assert ran.exit_code == 75 and "did not answer" in ran.output, ran.output


def test_the_console_script_prints_the_notice(logged):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SHAPGOV"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    exe = Path(sys.executable).parent / "shapgov"
    done = subprocess.run(
        [str(exe), "reasons", "--model-uri", logged.with_reasons, "--data",
         str(logged.folder / "applicants.csv"), "--key", "applicant", "--notice", "2"],
        env={**env, "MLFLOW_TRACKING_URI": logged.uri}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    notice = reasons_like_the_set(logged.model, logged.new, logged.stored).notice(2)
    assert done.stdout.endswith(notice + "\n")
    assert "  1. Excessive obligations in relation to income (R02)\n" in done.stdout


def test_approve_min_reason_stability(logged, module_store):
    use_store(module_store)
    kept = logged.stored["summary"]["stability"]["mean_share_kept"]

    def approve(version: str, limit: float):
        args = ["approve", logged.name, str(version), "--tracking-uri", module_store]
        return CliRunner().invoke(main, [*args, "--min-reason-stability", str(limit)])

    passed = approve(logged.version, kept)
    assert passed.exit_code == 0, passed.output
    assert f"credit-reasons version {logged.version}: approved" in passed.output
    assert kept < 1  # some declined row loses a reason in some resample
    above = approve(logged.version, min(1.0, kept + 1e-3))
    assert above.exit_code == 1 and "is below min_reason_stability" in above.output
    plain = approve(logged.plain_version, 0.5)
    assert plain.exit_code == 1 and "no adverse-action reasons in the set" in plain.output
    bad = approve(logged.version, 1.5)
    assert bad.exit_code == 2 and "1.5" in bad.output
