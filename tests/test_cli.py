"""The ``shapgov`` command line, the documentation's generated matrix and the README's
quickstart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from shapgov.cli import main
from shapgov.demo import CASE_NAMES
from shapgov.errors import InputError
from shapgov.planning.compatibility import to_markdown

# Requirements declared up front: inferring them loads each model in a subprocess (~5 s).
SKLEARN = ["scikit-learn"]
ROOT = Path(__file__).resolve().parents[1]


def test_matrix_command_formats():
    runner = CliRunner()
    table = runner.invoke(main, ["matrix"])
    assert table.exit_code == 0 and "Linear models" in table.output
    md = runner.invoke(main, ["matrix", "--format", "markdown"])
    assert md.exit_code == 0 and md.output == to_markdown()
    bad = runner.invoke(main, ["matrix", "--format", "xml"])
    assert bad.exit_code == 2 and "Invalid value" in bad.output


def test_console_script_is_installed():
    exe = shutil.which("shapgov", path=str(Path(sys.executable).parent))
    assert exe, "the shapgov console script is not on PATH"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert "shapgov" in out.stdout


def test_docs_matrix_is_current():
    page = (ROOT / "docs" / "matrix.md").read_text()
    start = page.index("<!-- matrix:start -->") + len("<!-- matrix:start -->\n")
    end = page.index("<!-- matrix:end -->")
    assert page[start:end] == to_markdown(), "regenerate with: shapgov matrix --format markdown"


def _demo(tmp_path, monkeypatch, *cases: str, store: str = "sqlite:///mlflow.db"):
    """``shapgov demo`` in ``tmp_path`` on ``store`` (default: the embedded store, here), no
    key configured; returns its output and the names of the reports it wrote. MLflow keeps
    one store per URI in a process, and a relative sqlite URI is resolved where it is first
    used: only one test per process may use the default."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name in ("SHAPGOV_APPROVAL_KEY", "SHAPGOV_APPROVAL_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    args = ["demo", "--rows", "2", *(a for c in cases for a in ("--case", c))]
    if store != "sqlite:///mlflow.db":
        args += ["--tracking-uri", store]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    n = len(cases) or len(CASE_NAMES)
    assert result.output.count("approved, alias 'champion'") == n
    # signed with a demo key kept beside the reports; shapgov verify accepts them with it
    assert result.output.count(", signature verified (approver ") == n
    assert result.output.count("additivity pass") == n
    assert "SHAPGOV_APPROVAL_KEY_FILE" not in os.environ  # the demo's key is not left set
    assert f"mlflow ui --backend-store-uri {store}" in result.output
    assert (tmp_path / "mlflow.db").exists()
    reports = sorted(p.name for p in (tmp_path / "shapgov-reports").glob("*.html"))
    # the command the demo prints verifies a case it ran (the first), as printed
    (hint,) = [line for line in result.output.splitlines() if " shapgov verify " in line]
    setting, command = hint.strip().split(" ", 1)
    key = tmp_path / "shapgov-reports" / "demo-approval.key"
    assert setting == f"SHAPGOV_APPROVAL_KEY_FILE={key.resolve()}"
    first = next(c for c in CASE_NAMES if not cases or c in cases)  # the demo's own order
    assert command == f"shapgov verify shapgov-demo-{first} 1"
    verify = CliRunner().invoke(
        main, command.split()[1:], env={"SHAPGOV_APPROVAL_KEY_FILE": str(key)}
    )
    assert verify.exit_code == 0, verify.output
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")  # absolute, for later tests
    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return result.output, reports


def _check_sales(output: str, tmp_path) -> None:
    # the time-aware case: the generated shift is flagged from its first month on
    assert "explained over 24 monthly windows" in output
    assert "drift flagged from 2024-07" in output
    sales = (tmp_path / "shapgov-reports" / "daily-sales-over-time.html").read_text()
    assert "Explanations over time" in sales and "sales history = sales_lag_1" in sales


def _check_credit(output: str, tmp_path) -> None:
    """The credit case: its reasons, one declined applicant's notice, and the command
    line it prints giving that applicant the same notice from the approved version."""
    import re

    assert re.search(
        r"adverse-action reasons: \d+ of 396 applicants declined \(probability >= 0.25 "
        r"declines\), measured against the \d+ approved of 200 reference applicants; most "
        r"given: R\d\d \(\d+\), R\d\d \(\d+\), R\d\d \(\d+\); \d+% of reasons kept over 20 "
        r"resamples of the reference population",
        output,
    ), output
    lines = output.splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.startswith("   notice for applicant ")]
    key = lines[at].split()[3].rstrip(":")
    assert lines[at].endswith(": principal reasons for the adverse action")
    reasons = []
    for line in lines[at + 1 :]:
        if not re.match(r"     \d\. .* \(R\d\d\)$", line):
            break
        reasons.append(line[3:])
    # the notice's reasons: at least one (the applicant printed is one declined with
    # reasons) and at most the demo's max_reasons, 4; the command below must repeat them
    assert 1 <= len(reasons) <= 4, lines[at : at + 6]
    command = lines[at + 1 + len(reasons)]
    assert command.startswith("   the same from the command line: shapgov reasons ")
    args = command.split("shapgov ", 1)[1].split()
    assert args[-2:] == ["--notice", key]
    again = CliRunner().invoke(
        main, [*args, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    )
    assert again.exit_code == 0, again.output
    notice = "\n".join([f"Application {key}: principal reasons for the adverse action", *reasons])
    assert again.output.endswith(notice + "\n"), again.output
    _check_credit_statements_are_true(tmp_path)


def _check_credit_statements_are_true(tmp_path) -> None:
    """Every high/low statement the demo's set gives is true of its applicant, by hand:
    one of the entry's inputs lies above (below) the median of the stored reference
    population; the statements withheld as untrue are the ones the set counts."""
    import mlflow
    import numpy as np
    import pandas as pd

    from shapgov.adverse_action.stored import read_reasons

    client = mlflow.MlflowClient()
    version = client.get_model_version("shapgov-demo-credit-default-lightgbm", "1")
    folder = mlflow.artifacts.download_artifacts(
        f"runs:/{version.run_id}/shapgov", dst_path=str(tmp_path / "credit-set")
    )
    stored = read_reasons(Path(folder))
    applicants = pd.read_csv(
        tmp_path / "shapgov-reports" / "credit-default-lightgbm-applicants.csv"
    ).set_index("applicant")
    frame = stored["frame"].set_index("row")
    median = {c: float(np.nanmedian(stored["reference"][c])) for c in stored["reference"]}
    given = untrue = 0
    for key, row in frame[frame["status"] == "reasons"].iterrows():
        for code in row.filter(like="reason_").dropna():
            entry = stored["catalogue"].reason(code)
            if entry.adverse == "either":
                continue
            values = [applicants.loc[key, i] for i in entry.inputs]
            sides = [
                (v > median[i]) if entry.adverse == "high" else (v < median[i])
                for v, i in zip(values, entry.inputs, strict=True)
            ]
            given += 1
            untrue += not any(sides)
    withheld = stored["summary"]["direction"]["contradicted"]
    assert given > 100 and untrue == 0
    assert withheld == sum(f["contradicted"] for f in stored["summary"]["frequencies"])
    print(f"\ncredit demo: {given} high/low statements given, {untrue} untrue; {withheld} withheld")


def test_demo_runs_two_cases_end_to_end_on_the_embedded_store(tmp_path, monkeypatch):
    """The default run's twin of the whole demo (marked slow): the same loop, two cases."""
    output, reports = _demo(
        tmp_path, monkeypatch, "credit-default-lightgbm", "daily-sales-over-time"
    )
    assert reports == ["credit-default-lightgbm.html", "daily-sales-over-time.html"]
    assert "[1/2]" in output and "[2/2]" in output and "both exact" not in output
    _check_sales(output, tmp_path)
    _check_credit(output, tmp_path)


@pytest.mark.slow
def test_demo_runs_every_case_end_to_end(tmp_path, monkeypatch):
    output, reports = _demo(tmp_path, monkeypatch, store=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert "both exact" in output
    assert reports == [
        "breast-cancer-lightgbm-challenger.html",  # the second version, compared
        "breast-cancer-lightgbm.html",
        "credit-default-lightgbm.html",
        "daily-sales-over-time.html",
        "diabetes-blender.html",
        "diabetes-mlp.html",
        "motor-claims-statsmodels.html",
    ]
    assert "[6/6]" in output
    # every approved blueprint's Word and PDF documents; the challenger's report section
    folder = tmp_path / "shapgov-reports"
    assert len(list(folder.glob("*-model-documentation.docx"))) == 6
    assert len(list(folder.glob("*-model-documentation.pdf"))) == 6
    # the statsmodels GLM: its terms traced to columns, exposure taken statsmodels' way
    assert re.search(
        r"statsmodelsresults \[terms\]: the formula's terms traced to 6 columns .* rebuilds "
        r"its expected claims within \d\.\de-1[0-9] \(relative\)",
        output,
    ), output
    challenger = (folder / "breast-cancer-lightgbm-challenger.html").read_text()
    assert '<section id="challenger">' in challenger
    assert "fair lending: group B (group) flagged" in output
    _check_sales(output, tmp_path)
    _check_credit(output, tmp_path)
    blender = (tmp_path / "shapgov-reports" / "diabetes-blender.html").read_text()
    for vertex in ("pipeline/blend/lgbm", "pipeline/blend/ridge", "pipeline/blend/mlp"):
        assert vertex in blender


def test_the_demo_names_its_cases_and_refuses_an_unknown_one(tmp_path):
    from shapgov import demo

    assert [c.name for c in demo.cases()] == list(demo.CASE_NAMES)
    with pytest.raises(InputError, match=r"no demo case named \['nope'\]; the cases are"):
        demo.run(only=["nope"], out_dir=tmp_path, tracking_uri=f"sqlite:///{tmp_path}/m.db")
    assert not (tmp_path / "m.db").exists()  # refused before anything was written
    refused = CliRunner().invoke(main, ["demo", "--case", "nope"])
    assert refused.exit_code == 2 and "'nope' is not one of" in refused.output


# ------------------------------------------------------------ explain / report / approve
def _registered(uri, tmp_path):
    import mlflow
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=SKLEARN)
    mv = mlflow.register_model(info.model_uri, "ridge")
    X.assign(progression=y).iloc[:60].to_csv(tmp_path / "rows.csv", index=False)
    X.iloc[100:200].to_parquet(tmp_path / "background.parquet")
    return uri, mlflow.MlflowClient().get_model_version("ridge", str(mv.version))


def test_explain_report_approve_from_the_command_line(store, tmp_path):
    import json

    import mlflow

    uri, mv = _registered(store, tmp_path)
    runner = CliRunner()
    rejected = runner.invoke(main, ["approve", "ridge", str(mv.version), "--tracking-uri", uri])
    assert rejected.exit_code == 1 and "no shapgov artifact set" in rejected.output

    def explain(background: str):
        args = ["explain", "--model-uri", f"models:/ridge/{mv.version}", "--tracking-uri", uri]
        args += ["--data", str(tmp_path / "rows.csv"), "--target", "progression"]
        return runner.invoke(main, [*args, "--background", str(tmp_path / background)])

    explained = explain("background.parquet")
    assert explained.exit_code == 0, explained.output
    assert f"logged to run {mv.run_id}" in explained.output  # the model's source run
    assert "additivity pass" in explained.output
    run = mlflow.get_run(mv.run_id)
    assert run.data.tags["shapgov.status"] == "pass" and run.data.metrics["shapgov.rows"] == 60
    names = {
        f.path.split("/")[-1] for f in mlflow.MlflowClient().list_artifacts(mv.run_id, "shapgov")
    }
    assert {"permutation_impact.json", "xemp.json", "comparison.json", "report.html"} <= names
    manifest = mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/shapgov/manifest.json")
    again = explain("rows.csv")  # the training file, target included, as the background
    assert again.exit_code == 0, again.output
    assert mv.run_id not in again.output  # the source run's set is never overwritten
    assert mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/shapgov/manifest.json") == manifest
    approved = runner.invoke(
        main, ["approve", "ridge", str(mv.version), "--alias", "champion", "--tracking-uri", uri]
    )
    assert approved.exit_code == 0 and "approved" in approved.output
    out = tmp_path / "out" / "ridge.html"
    reported = runner.invoke(
        main,
        [
            "report",
            "--model",
            "ridge",
            "--version",
            str(mv.version),
            "--out",
            str(out),
            "--tracking-uri",
            uri,
        ],
    )
    assert reported.exit_code == 0, reported.output
    assert out.exists() and "approved" in out.read_text()
    record = mlflow.artifacts.download_artifacts(  # beside the set, whose report was approved
        run_id=mv.run_id,
        artifact_path=f"shapgov-approval/v{mv.version}/report.json",
        dst_path=str(tmp_path / "dl"),
    )
    assert json.loads(Path(record).read_text())["model"] == {
        "name": "ridge",
        "version": str(mv.version),
    }


def test_commands_have_help_and_bad_input_exits_2(store, tmp_path):
    uri, mv = _registered(store, tmp_path)
    runner = CliRunner()
    for command in ("explain", "matrix", "report", "approve", "demo", "webhook"):
        shown = runner.invoke(main, [command, "--help"])
        assert shown.exit_code == 0 and "Usage:" in shown.output, command
    model = ["--model-uri", f"models:/ridge/{mv.version}", "--tracking-uri", uri]
    (tmp_path / "rows.txt").write_text("a,b\n1,2\n")
    cases = [
        (["report", "--tracking-uri", uri], "either --run-id"),
        (["report", "--model", "ridge", "--tracking-uri", uri], "either --run-id"),
        (["report", "--run-id", "0" * 32, "--tracking-uri", uri], "could not find"),
        (["explain", *model, "--data", str(tmp_path / "rows.txt")], "neither .csv nor .parquet"),
        (["explain", *model, "--data", str(tmp_path / "nope.csv")], "does not exist"),
        (["explain", *model, "--data", str(tmp_path / "rows.csv"), "--target", "y"], "no column"),
        (
            [
                "explain",
                "--model-uri",
                "models:/ridge/99",
                "--tracking-uri",
                uri,
                "--data",
                str(tmp_path / "rows.csv"),
            ],
            "models:/ridge/99",
        ),
        (
            ["explain", *model, "--data", str(tmp_path / "rows.csv")],  # the target column too
            "columns",
        ),
        (["approve", "nope", "1", "--tracking-uri", uri], "nope version 1"),
        (["explain", *model, "--data", str(tmp_path / "rows.csv"), "--sample", "0"], "0"),
        (
            [
                "explain",
                *model,
                "--data",
                str(tmp_path / "rows.csv"),
                "--target",
                "progression",
                "--run-id",
                "f" * 32,
            ],
            "f" * 32,
        ),
        (["report", "--run-id", mv.run_id, "--rows", "-1", "--tracking-uri", uri], "-1"),
    ]
    for args, message in cases:
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_readme_quickstart_runs(tmp_path):
    """The README's quickstart as a new user runs it, in a fresh directory: the key
    command, the Python saved as a script, then verify and reproduce, each as written."""
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Quickstart\n") : readme.index("## Documentation")]
    blocks = re.findall(r"```(bash|python)\n(.*?)```", section, re.S)
    assert [kind for kind, _ in blocks] == ["bash", "python", "bash"]
    (tmp_path / "quickstart.py").write_text(blocks[1][1])
    script = "\n".join(
        ["set -euo pipefail", blocks[0][1], f"{sys.executable} quickstart.py", blocks[2][1]]
    )
    # a new user's shell: no MLflow or shapgov settings that other tests left behind
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SHAPGOV"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "\npass " in out  # the additivity status printed by the Python part
    assert "\napproved\n" in out
    assert "cancer-lgbm version 1: approved, signed by the approval key" in out
    assert "reproduced from the registry alone" in out and "max |difference| 0 " in out
