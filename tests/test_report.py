"""The compliance report, built from sets logged to a real sqlite MLflow store, read back
as HTML and (where Chromium is installed) loaded by a real headless browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shapgov
import shapgov.mlflow
from shapgov.errors import AdditivityError, InputError
from shapgov.sinks.compliance import REPORT, REPORT_RECORD, SECTIONS

# Requirements declared up front: inferring them loads each model in a subprocess (~5 s).
SKLEARN = ["scikit-learn"]

EVIL = "<script>alert(1)</script>"
# a set without explanations over time (nor adverse-action reasons) has every section but those
OPTIONAL = ("over_time", "reasons", "fairness", "challenger")
WITHOUT_OVER_TIME = [s for s, _ in SECTIONS if s not in OPTIONAL]


class DOM(HTMLParser):
    """Element ids, tags, attribute values and text of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self.meta: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        for key in ("src", "href"):
            if key in attrs:
                self.urls.append(attrs[key])
        if tag == "meta":
            self.meta.append(attrs)

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> DOM:
    dom = DOM()
    dom.feed(html)
    return dom


@pytest.fixture(scope="module")
def _approved_store(tmp_path_factory):
    """A breast-cancer classifier with a hostile column name, logged with the whole set
    (permutation, XEMP, comparison, report), registered and approved: built once for the
    module in a store of its own (each test still writes its report to its own file)."""
    where = tmp_path_factory.mktemp("approved")
    uri = f"sqlite:///{where / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.create_experiment("shapgov-report-tests", artifact_location=where.as_uri())
    mlflow.set_experiment("shapgov-report-tests")
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8].rename(columns={X.columns[0]: EVIL})
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    with mlflow.start_run() as run:
        e = shapgov.mlflow.explain_and_log(
            model, X.iloc[:60], y=y.iloc[:60], background=X.iloc[::5]
        )
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=SKLEARN)
    mv = mlflow.register_model(info.model_uri, "cancer")
    verdict = shapgov.approve("cancer", mv.version, alias="champion")
    assert verdict.approved, verdict.reasons
    return uri, (run.info.run_id, mv, e)


@pytest.fixture
def approved_version(_approved_store, monkeypatch):
    uri, version = _approved_store
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return version


def test_report_has_every_section_and_reads_the_logged_set(approved_version, tmp_path):
    run_id, mv, e = approved_version
    out = shapgov.report(model="cancer", version=mv.version, out=tmp_path / "r.html")
    html = out.read_text()
    dom = parse(html)
    assert [i for i in dom.ids if i in dict(SECTIONS)] == WITHOUT_OVER_TIME
    text = " ".join(dom.text)
    manifest = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="shapgov/manifest.json", dst_path=str(tmp_path)
            )
        ).read_text()
    )
    assert manifest["data_sha256"] in text
    # the explained game and the plugins that took part, as the manifest records them
    assert manifest["game"] == e.game and e.game["description"] in text
    assert e.game["background_sha256"] in text
    for plugin in manifest["plugins"]:
        assert plugin["name"] in text and ", ".join(plugin["hooks"]) in text
    assert "approved" in text and "All checks passed" in text  # the approval section
    assert run_id in text and "cancer" in text
    for part in e.vertices:
        assert part.name in text and part.estimator_class in text
    for library in ("numpy", "sklearn", "lightgbm", "mlflow", "shapgov"):
        assert library in manifest["environment"] and library in text
    assert "Rows listed by the check" not in text  # a pass lists no mismatched rows
    # every figure is embedded; nothing is fetched from anywhere
    assert dom.urls and all(u.startswith(("data:image/png;base64,", "#")) for u in dom.urls)
    assert dom.tags.count("img") >= 6
    csp = [m["content"] for m in dom.meta if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]
    assert "@media print" in html


def test_a_hostile_feature_name_is_text_never_markup(approved_version, tmp_path):
    out = shapgov.report(
        model="cancer", version=approved_version[1].version, out=tmp_path / "r.html"
    )
    html = out.read_text()
    dom = parse(html)
    assert "script" not in dom.tags
    assert EVIL not in html  # escaped in the source ...
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert any(EVIL in t for t in dom.text)  # ... and shown as text


def test_the_report_is_logged_and_bound_to_its_manifest(approved_version, tmp_path):
    from shapgov.mlflow.artifacts import sha256_file

    run_id, mv, _ = approved_version

    def download(path: str, into: str) -> Path:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=str(tmp_path / into)
            )
        )

    approved = sha256_file(download("shapgov", "before") / REPORT)
    tags = mlflow.MlflowClient().get_model_version("cancer", mv.version).tags
    assert approved == tags["shapgov.approval.report_sha256"]
    shapgov.report(model="cancer", version=mv.version, out=tmp_path / "r.html")
    local = download("shapgov", "dl")
    # the version's report goes beside the set; the approved report stays as signed
    assert sha256_file(local / REPORT) == approved
    beside = download(f"shapgov-approval/v{mv.version}", "beside")
    record = json.loads((beside / REPORT_RECORD).read_text())
    assert record["report_sha256"] == sha256_file(beside / REPORT)
    assert record["manifest_sha256"] == sha256_file(local / "manifest.json")
    assert record["model"] == {"name": "cancer", "version": str(mv.version)}
    assert (beside / REPORT).read_bytes() == (tmp_path / "r.html").read_bytes()
    assert shapgov.approve("cancer", mv.version).approved  # still approved, idempotent


def _artifact_root(run_id: str) -> Path:
    return Path(urlparse(mlflow.get_run(run_id).info.artifact_uri).path) / "shapgov"


def test_approval_rejects_a_missing_or_tampered_report(store):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    versions = {}
    for kind in ("none", "tampered"):
        with mlflow.start_run() as run:
            e = shapgov.explain(model, X.iloc[:20], background=X)
            shapgov.mlflow.log_explanation(e, report=kind != "none")
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=SKLEARN)
        if kind == "tampered":
            path = _artifact_root(run.info.run_id) / REPORT
            path.write_text(path.read_text().replace("Compliance report", "Approved report"))
        versions[kind] = mlflow.register_model(info.model_uri, "ridge").version
    missing = shapgov.approve("ridge", versions["none"])
    assert not missing.approved and any("no compliance report" in r for r in missing.reasons)
    tampered = shapgov.approve("ridge", versions["tampered"])
    assert not tampered.approved
    assert tampered.reasons == [f"{REPORT} does not match its recorded hash (tampered)"]


def test_a_report_of_another_set_is_rejected(store, tmp_path):
    """A valid report copied from another run does not vouch for this run's set."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    runs = []
    for rows in (slice(0, 20), slice(20, 40)):
        with mlflow.start_run() as run:
            shapgov.mlflow.log_explanation(shapgov.explain(model, X.iloc[rows], background=X))
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=SKLEARN)
        runs.append((run.info.run_id, info))
    for name in (REPORT, REPORT_RECORD):
        shutil.copyfile(_artifact_root(runs[0][0]) / name, _artifact_root(runs[1][0]) / name)
    mv = mlflow.register_model(runs[1][1].model_uri, "ridge")
    result = shapgov.approve("ridge", mv.version)
    assert result.reasons == [
        f"the compliance report was built for run {runs[0][0]}",
        "the compliance report was built from another artifact set",
    ]


def test_a_whole_set_copied_into_another_run_is_rejected(store):
    """Manifest, files and report all intact, but logged for another run."""
    from shapgov.mlflow.artifacts import sha256_file

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    with mlflow.start_run() as first:
        shapgov.mlflow.log_explanation(shapgov.explain(model, X.iloc[:20], background=X))
    with mlflow.start_run() as second:
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=SKLEARN)
    source, target = _artifact_root(first.info.run_id), _artifact_root(second.info.run_id)
    shutil.copytree(source, target)
    mv = mlflow.register_model(info.model_uri, "ridge")
    result = shapgov.approve("ridge", mv.version)
    assert result.reasons == [
        f"the artifact set was logged for run {first.info.run_id}, not this run "
        f"({second.info.run_id})",
        f"the compliance report was built for run {first.info.run_id}",
    ]
    tags = mlflow.MlflowClient().get_model_version("ridge", str(mv.version)).tags
    assert tags["shapgov.approval.manifest_sha256"] == sha256_file(target / "manifest.json")


def test_a_failed_set_reports_its_diagnostics_and_no_values(store, tmp_path, test_plugin):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    upper = float(np.quantile(Ridge().fit(X, y).predict(X), 0.9))
    clipped = test_plugin.ClippedRegressor(Ridge(), upper=upper).fit(X, y)
    with mlflow.start_run() as run, pytest.raises(AdditivityError) as caught:
        shapgov.mlflow.explain_and_log(clipped, X)
    html = shapgov.report(run_id=run.info.run_id, out=tmp_path / "fail.html").read_text()
    dom = parse(html)
    assert [i for i in dom.ids if i in dict(SECTIONS)] == WITHOUT_OVER_TIME
    text = " ".join(dom.text)
    assert "the SHAP values were withheld" in text
    assert f"{caught.value.report.n_over_threshold} of {len(X)}" in " ".join(text.split())
    assert "img" in dom.tags  # the mismatch distribution is shown


def test_report_needs_a_run_or_a_model(store, tmp_path):
    with pytest.raises(InputError, match="either a run"):
        shapgov.report(out=tmp_path / "r.html")
    with pytest.raises(InputError, match="could not find"):
        shapgov.report(model="nope", version=1, out=tmp_path / "r.html")
    with mlflow.start_run() as run:
        pass
    with pytest.raises(InputError, match="no complete shapgov artifact set"):
        shapgov.report(run_id=run.info.run_id, out=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# --------------------------------------------------------------------------- browser
def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _headless(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [exe, *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )


def _need_chromium() -> str:
    exe = _chromium()
    if exe is None:
        # .ci/run installs Debian's chromium, so CI never skips; a developer machine
        # without a browser does, with the command that fixes it.
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no chromium here: apt-get install chromium to run the browser test")
    return exe


def test_a_real_browser_renders_every_section(approved_version, tmp_path):
    exe = _need_chromium()
    from matplotlib.image import imread

    report = shapgov.report(
        model="cancer", version=approved_version[1].version, out=tmp_path / "report.html"
    )
    url = report.resolve().as_uri()
    dom = parse(_headless(exe, tmp_path / "p1", "--dump-dom", url).stdout)
    assert [i for i in dom.ids if i in dict(SECTIONS)] == WITHOUT_OVER_TIME
    assert "script" not in dom.tags and any(EVIL in t for t in dom.text)
    shot = tmp_path / "shot.png"
    _headless(exe, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1200,1600", url)
    pixels = imread(shot)[..., :3]
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    dark = (pixels.mean(axis=2) < 0.5).mean()  # text, figures, table rules
    assert pixels.std() > 0.05 and 0.005 < dark < 0.9, (pixels.std(), dark)
    # "Save as PDF": the print stylesheet starts every section on a page of its own
    pdf = tmp_path / "report.pdf"
    _headless(exe, tmp_path / "p3", "--no-pdf-header-footer", f"--print-to-pdf={pdf}", url)
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    assert pdf.read_bytes()[:5] == b"%PDF-" and pages >= len(WITHOUT_OVER_TIME), pages


def test_the_report_reads_only_the_verified_files_of_the_manifest(store, tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(model, X.iloc[:30], y=y.iloc[:30], background=X)
        # a second set in the same run, without analyses: the first set's xemp.json and
        # comparison.json stay in the run's artifacts but are not part of this set
        shapgov.mlflow.explain_and_log(model, X.iloc[30:50], background=X, analyses=False)
    root = _artifact_root(run.info.run_id)
    assert (root / "xemp.json").exists()
    html = shapgov.report(run_id=run.info.run_id, out=tmp_path / "r.html").read_text()
    assert "No XEMP comparison was logged with this set." in html
    assert "20 rows, 10 original columns" in " ".join(html.split())
    (root / "vertices.json").write_text("[]")  # altered after logging
    with pytest.raises(InputError, match="altered after it was logged"):
        shapgov.report(run_id=run.info.run_id, out=tmp_path / "again.html")
    assert not (tmp_path / "again.html").exists()


def test_flagged_rows_are_shown_for_the_class_they_were_flagged_for(tmp_path):
    """Multiclass: the comparison flags (row, class) pairs; the report shows those pairs
    (the worst three), not the row's predicted class."""
    from sklearn.datasets import load_iris

    from shapgov.analyses.compare import compare_shap_xemp
    from shapgov.analyses.exemplars import xemp
    from shapgov.mlflow.artifacts import write_set
    from shapgov.sinks.compliance import ArtifactSet, _chosen_rows

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    e = shapgov.explain(model, X.iloc[::3], background=X)
    strengths = xemp(model, e.data, training=X)
    comparison = compare_shap_xemp(e, strengths, k=2)
    write_set(tmp_path, e, xemp=strengths, comparison=comparison)
    chosen = _chosen_rows(ArtifactSet.read(tmp_path), 2, 0)
    flagged = comparison.flagged
    pairs = {(int(r), int(o)) for r, o in zip(flagged["row"], flagged["output"], strict=True)}
    shown = [(i, o) for i, o, why in chosen if why.startswith("flagged")]
    assert len(shown) == 3 and set(shown) <= pairs
    worst = flagged.sort_values(["overlap", "spearman", "row"]).head(3)
    assert shown == [(int(r), int(o)) for r, o in zip(worst["row"], worst["output"], strict=True)]


def test_prediction_cards_show_the_governed_prediction(tmp_path):
    """With an offset, exposure and capping, a card shows the model's prediction after
    all three (what the additivity check compared), not the bare explained output."""
    from shapgov.mlflow.artifacts import write_set
    from shapgov.sinks.compliance import ArtifactSet, _fmt, write_report

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge().fit(X, y)
    offset, exposure = np.linspace(-1, 1, 60), np.linspace(0.5, 2, 60)
    e = shapgov.explain(model, X.iloc[:60], offset=offset, exposure=exposure, capping=(0, 250))
    write_set(tmp_path, e)
    write_report(tmp_path)
    governed = np.clip((model.predict(X.iloc[:60]) + offset) * exposure, 0, 250)
    html = " ".join((tmp_path / REPORT).read_text().split())
    from shapgov.sinks.compliance import build_context

    cards = build_context(ArtifactSet.read(tmp_path))["predictions"]["rows"]
    assert cards
    for card in cards:
        i = card["row"]
        assert card["prediction"] == _fmt(float(governed[i]))
        assert card["explained"] == _fmt(float(e.explained_output[i, 0]))
        assert f"Row {i} " in html and f"Model prediction {card['prediction']} " in html


def test_a_sampled_explanation_reports_its_standard_errors(tmp_path):
    """Values from sampled coalitions say how uncertain they are; exact ones say nothing."""
    from sklearn.svm import SVR

    from shapgov.mlflow.artifacts import write_set
    from shapgov.sinks.compliance import ArtifactSet, _fmt, build_context, write_report

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = SVR(C=30).fit(X, y)
    options = {"kernel": {"mode": "sampling", "n_samples": 200, "random_state": 1}}
    e = shapgov.explain(model, X.iloc[:8], background=X.iloc[::40], explainer_options=options)
    write_set(tmp_path / "sampled", e)
    write_report(tmp_path / "sampled")
    sampling = build_context(ArtifactSet.read(tmp_path / "sampled"))["model"]["sampling"]
    assert sampling["mean"] == _fmt(float(e.std_error.mean()))
    html = " ".join((tmp_path / "sampled" / REPORT).read_text().split())
    assert f"standard error {sampling['mean']} on average" in html
    exact = shapgov.explain(Ridge().fit(X, y), X.iloc[:8])
    write_set(tmp_path / "exact", exact)
    assert build_context(ArtifactSet.read(tmp_path / "exact"))["model"]["sampling"] is None


# ------------------------------------------------------- issue 30's new user: credit
@pytest.fixture(scope="module")
def _credit_store(tmp_path_factory):
    """Issue 30's new user: the seeded credit table (string categories, missing values,
    applicant IDs), a LightGBM classifier, explain_and_log with the whole set and
    explanations over time by application month, registered and approved; built once
    for the module."""
    import lightgbm as lgb
    import pandas as pd
    from credit import credit_table

    where = tmp_path_factory.mktemp("credit")
    uri = f"sqlite:///{where / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.create_experiment("shapgov-credit-report", artifact_location=where.as_uri())
    mlflow.set_experiment("shapgov-credit-report")
    X, y = credit_table(1000, seed=0)
    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=8, verbose=-1).fit(X, y)
    days = np.sort(np.random.default_rng(1).uniform(0, 181, 400))
    rows = X.iloc[:400].assign(applied=pd.Timestamp("2024-01-01") + pd.to_timedelta(days, "D"))
    with mlflow.start_run() as run:
        e = shapgov.mlflow.explain_and_log(
            model,
            rows,
            y=y.iloc[:400],
            background=X.iloc[500:700],
            over_time={"time": "applied", "freq": "M"},
        )
        # requirements declared: inferring them loads the model in a subprocess (~5 s)
        info = mlflow.lightgbm.log_model(model, name="model", pip_requirements=["lightgbm"])
    mv = mlflow.register_model(info.model_uri, "credit-default")
    assert shapgov.approve("credit-default", mv.version).approved
    return uri, (run.info.run_id, mv, e, model)


@pytest.fixture
def credit(_credit_store, monkeypatch):
    uri, logged = _credit_store
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return logged


def _credit_report(credit, tmp_path) -> str:
    out = shapgov.report(model="credit-default", version=credit[1].version, out=tmp_path / "r.html")
    return out.read_text()


def _section(html: str, section: str) -> str:
    start = html.index(f'<section id="{section}">')
    return html[start : html.index("</section>", start)]


def _words(html: str) -> str:
    """The text of ``html`` as a reader sees it: tags dropped, whitespace collapsed."""
    return " ".join(" ".join(parse(html).text).split())


def _table_after(html: str, heading: str) -> tuple[list[str], list[list[str]]]:
    """Header and body cells (as text) of the first table after ``heading``."""
    start = html.index(heading)
    table = html[start : html.index("</table>", start)]
    header = [_words(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", table, re.S)]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    return header, [[_words(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]


def test_the_agreement_says_what_a_flag_means_and_that_it_is_no_failed_check(credit, tmp_path):
    """The comparison's counts with the rule that flagged them, the share, how to judge
    it, and that the approval's "all checks passed" does not include the comparison."""
    import pandas as pd

    run_id = credit[0]
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="shapgov/comparison.parquet", dst_path=str(tmp_path)
    )
    rows = pd.read_parquet(path)
    flagged = rows[rows["flagged"]]
    n, m = len(rows), len(flagged)
    assert 0 < m < n  # the credit model's rows disagree here and there: something to say
    html = _credit_report(credit, tmp_path)
    agreement = _words(_section(html, "agreement"))
    assert f"{m} of {n} rows ({m / n:.1%}) flagged for review." in agreement
    by = {
        rule: int(flagged["reason"].str.contains(word, regex=False).sum())
        for rule, word in (("overlap", "overlap"), ("rank", "Spearman"), ("sign", "sign of"))
    }
    assert (
        f"fewer than 2 of the top 3 are the same features (top-3 overlap below 0.67): "
        f"{by['overlap']} flagged" in agreement
    )
    assert (
        "the rank correlation of |SHAP| and |XEMP strength| over the features is below 0.5 "
        f"(Spearman): {by['rank']} flagged" in agreement
    )
    assert f"has the opposite sign in XEMP: {by['sign']} flagged" in agreement
    assert "(of the 8 features XEMP evaluated)" in agreement
    assert "A flag marks a row to review, not a failed check" in agreement
    assert "shapgov sets no acceptable share" in agreement
    assert "expected to disagree where features are correlated or interact" in agreement
    assert "row comparisons" not in agreement  # the old bare count
    approval = _words(_section(html, "approval"))
    assert "All checks passed: the artifact set is complete and unaltered" in approval
    assert "the additivity status is pass" in approval
    assert (
        f"The SHAP-vs-XEMP comparison is not one of them: its {m} flagged rows are for "
        "review" in approval
    )


def test_the_flagged_table_has_no_empty_output_cells(credit, tmp_path):
    """A single output needs no Output column (the cards name it); none is left empty."""
    html = _credit_report(credit, tmp_path)
    header, body = _table_after(_section(html, "agreement"), "<h3>Flagged rows</h3>")
    assert header == ["Row", "Overlap", "Spearman", "Top SHAP", "Top XEMP", "Reason"]
    assert body and all(len(r) == len(header) and all(r) for r in body)
    keys = {str(k) for k in credit[2].data.index}
    assert all(r[0] in keys for r in body)  # rows by applicant ID


def test_a_multiclass_flagged_table_names_the_class_of_each_line(tmp_path):
    from sklearn.datasets import load_iris

    from shapgov.analyses.compare import compare_shap_xemp
    from shapgov.analyses.exemplars import xemp
    from shapgov.mlflow.artifacts import write_set
    from shapgov.sinks.compliance import write_report

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    e = shapgov.explain(model, X.iloc[::3], background=X)
    strengths = xemp(model, e.data, training=X)
    comparison = compare_shap_xemp(e, strengths, k=2)
    write_set(tmp_path, e, xemp=strengths, comparison=comparison)
    write_report(tmp_path)
    html = (tmp_path / REPORT).read_text()
    header, body = _table_after(_section(html, "agreement"), "<h3>Flagged rows</h3>")
    assert header[:2] == ["Row", "Output"]
    expected = comparison.flagged.head(50)
    assert [r[:2] for r in body] == [
        [str(e.data.index[r]), f"class {o}"]  # the row by its key, the class by its label
        for r, o in zip(expected["row"], expected["output"], strict=True)
    ]
    assert "2 of the top 2" in _words(_section(html, "agreement"))
    assert "(row, class) pairs" in _words(_section(html, "agreement"))


def test_no_section_on_explanations_over_time_without_them(approved_version, tmp_path):
    without = shapgov.report(
        model="cancer", version=approved_version[1].version, out=tmp_path / "without.html"
    ).read_text()
    dom = parse(without)
    assert "over_time" not in dom.ids and "#over_time" not in dom.urls
    assert "Explanations over time" not in " ".join(dom.text)
    assert [i for i in dom.ids if i in dict(SECTIONS)] == WITHOUT_OVER_TIME


def test_the_section_on_explanations_over_time_where_the_set_has_them(credit, tmp_path):
    with_it = parse(_credit_report(credit, tmp_path))
    assert [i for i in with_it.ids if i in dict(SECTIONS)] == [
        s for s, _ in SECTIONS if s not in ("reasons", "fairness", "challenger")
    ]
    assert "#over_time" in with_it.urls and "Explanations over time" in with_it.text


def test_waterfalls_and_cards_say_they_are_in_log_odds(credit, tmp_path):
    """Each card adds up in log-odds and maps the sum to the model's probability."""
    from scipy.special import expit

    from shapgov.sinks.compliance import _fmt

    _, _, e, model = credit
    html = _credit_report(credit, tmp_path)
    predictions = _words(_section(html, "predictions"))
    assert (
        "SHAP values, their sums and the waterfalls are in log-odds: the margin before the "
        "logit link, which the link turns into the probability the model gives." in predictions
    )
    cards = re.findall(r"Row (\S+) \(", predictions)
    assert len(cards) >= 5
    position = {str(k): i for i, k in enumerate(e.data.index)}
    for key in cards:
        i = position[key]
        phi, base = e.values[i], float(e.expected_value[0])
        fx = float(e.explained_output[i, 0])
        p = model.predict_proba(e.data.iloc[[i]])[0, 1]
        assert _fmt(float(expit(fx))) == _fmt(float(p))  # the link gives the model's output
        assert (
            f"Explained output: base {_fmt(base)} + Σ SHAP {phi.sum():+.4g} = {_fmt(fx)} "
            f"log-odds = probability {_fmt(float(p))} (through the logit link)" in predictions
        )
    assert predictions.count("in log-odds (the margin before the logit link).") == len(cards)


#: Measures the laid-out page once everything (figures included) has loaded: the page's
#: width against the window's, and the elements that reach past the window's right edge
#: (but for the contents of a box that scrolls on its own).
PROBE = """<script>
window.addEventListener("load", function () {
  var page = document.documentElement, past = [];
  document.querySelectorAll("body *").forEach(function (el) {
    var inside = el.parentElement.closest(".scroll");  // what scrolls in its own box
    if (!inside && el.getBoundingClientRect().right > page.clientWidth + 0.5) {
      past.push(el.tagName + (el.className ? "." + el.className : ""));
    }
  });
  page.setAttribute("data-width", page.scrollWidth + " " + page.clientWidth + " " + past.join(","));
});
</script>"""


def _laid_out_width(exe: str, report: Path, width: int, where: Path) -> tuple[int, int, str]:
    """``(scrollWidth, clientWidth, elements past the right edge)`` of ``report`` in a real
    Chromium window ``width`` pixels wide. The report's Content-Security-Policy forbids
    scripts, so a copy without it carries the probe; nothing else changes."""
    html = report.read_text()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>', html)
    assert csp is not None
    probed = where / f"probed-{width}.html"
    probed.write_text(html.replace(csp.group(0), "").replace("</body>", PROBE + "</body>"))
    dom = _headless(
        exe,
        where / f"profile-{width}",
        "--virtual-time-budget=10000",
        f"--window-size={width},900",
        "--dump-dom",
        probed.resolve().as_uri(),
    ).stdout
    found = re.search(r'data-width="(\d+) (\d+) ?([^"]*)"', dom)
    assert found is not None, "the probe did not run"
    return int(found.group(1)), int(found.group(2)), found.group(3)


@pytest.mark.parametrize("width", [1400, 1024])
def test_no_horizontal_scrollbar_in_a_real_browser(credit, tmp_path, width):
    """Issue 30's credit report, with its widest tables (flagged rows, explanations over
    time): the page fits the window; a table wider than the page scrolls in its own box."""
    exe = _need_chromium()
    report = tmp_path / "report.html"
    report.write_text(_credit_report(credit, tmp_path))
    scroll_width, client_width, past = _laid_out_width(exe, report, width, tmp_path)
    assert width - 30 <= client_width <= width  # the window, less a vertical scrollbar
    assert scroll_width <= client_width, f"{scroll_width} > {client_width}: {past}"
    assert past == ""
