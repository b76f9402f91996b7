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
    assert [s for s, _ in SECTIONS] == [i for i in dom.ids if i in dict(SECTIONS)]
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
    assert "approved" in text and "all checks passed" in text  # the approval section
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
    assert [s for s, _ in SECTIONS] == [i for i in dom.ids if i in dict(SECTIONS)]
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


def test_a_real_browser_renders_every_section(approved_version, tmp_path):
    exe = _chromium()
    if exe is None:
        # .ci/run installs Debian's chromium, so CI never skips; a developer machine
        # without a browser does, with the command that fixes it.
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no chromium here: apt-get install chromium to run the browser test")
    from matplotlib.image import imread

    report = shapgov.report(
        model="cancer", version=approved_version[1].version, out=tmp_path / "report.html"
    )
    url = report.resolve().as_uri()
    dom = parse(_headless(exe, tmp_path / "p1", "--dump-dom", url).stdout)
    assert [s for s, _ in SECTIONS] == [i for i in dom.ids if i in dict(SECTIONS)]
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
    assert pdf.read_bytes()[:5] == b"%PDF-" and pages >= len(SECTIONS), pages


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
