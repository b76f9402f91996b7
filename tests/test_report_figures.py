"""The report's figures are drawn once per set: the set logged with its report holds them
(``report_figures.parquet``, hashed in the manifest), and a later report of the same set
(a registered version's, the run's) embeds them instead of drawing them again, giving the
report a fresh render gives; other options draw what the set does not hold, and figures
drawn from other files are never reused. On a real sqlite MLflow store."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import mlflow
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from stores import use_store

import shapgov
import shapgov.mlflow
import shapgov.sinks.compliance as compliance
from shapgov.errors import InputError
from shapgov.mlflow.artifacts import MANIFEST, sha256_file
from shapgov.sinks.artifact_set import ArtifactSet
from shapgov.sinks.report_figures import FILE, Figures, save, stored

PNG = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")
NAME = "figures"


def _generated(html: str) -> str:
    """The report without its one line of provenance that is the time of rendering."""
    return re.sub(r"<th>report generated</th><td[^>]*>[^<]*</td>", "", html)


@pytest.fixture
def drawn(monkeypatch) -> list[int]:
    """Counts the figures the report sink draws (``compliance._png``, still called)."""
    calls: list[int] = []
    real = compliance._png

    def counted(fig):
        calls.append(1)
        return real(fig)

    monkeypatch.setattr(compliance, "_png", counted)
    return calls


@pytest.fixture(scope="module")
def logged(module_store, tmp_path_factory) -> tuple[str, Path]:
    """A classifier's set logged with its report and registered as version 1 of
    ``NAME``, once for the module (the tests only read it): (version, the set
    downloaded)."""
    use_store(module_store)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(
            model, X.iloc[:40], y=y.iloc[:40], background=X.iloc[100:150]
        )
    client = mlflow.MlflowClient()
    client.create_registered_model(NAME)
    source = f"runs:/{run.info.run_id}/shapgov"
    version = client.create_model_version(NAME, source, run_id=run.info.run_id).version
    folder = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id,
        artifact_path="shapgov",
        dst_path=str(tmp_path_factory.mktemp("set")),
    )
    return str(version), Path(folder)


def test_a_later_report_of_the_set_embeds_the_figures_it_holds(
    logged, module_store, tmp_path, drawn
):
    use_store(module_store)
    version, folder = logged
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["artifacts"][FILE] == sha256_file(folder / FILE)  # verified like any file
    aset = ArtifactSet.read(folder)
    kept = stored(aset.directory, aset.manifest)
    # the additivity histogram, the summary, 3 dependence plots, 5 sampled waterfalls
    # and those of the rows the comparison flagged
    assert len(kept.held) >= 10 and "additivity" in kept.held

    # the version's report draws none of them again, and is the report a fresh render gives
    page = shapgov.report(model=NAME, version=version, out=tmp_path / "v.html").read_text()
    assert drawn == []
    fresh = Figures()
    context = compliance.build_context(aset, figures=fresh)
    assert sorted(fresh.drawn) == kept.held and len(drawn) == len(fresh.drawn)
    assert PNG.findall(page) == PNG.findall(compliance.render_html(context))
    reused = compliance.render_html(compliance.build_context(aset))
    assert _generated(reused) == _generated(compliance.render_html(context))

    # other options (as shapgov.report passes them on) draw exactly what the set lacks
    drawn.clear()
    more = stored(aset.directory, aset.manifest)
    compliance.build_context(aset, rows=8, n_dependence=4, figures=more)
    new = [n for n in more.uris if n not in kept.held]
    assert new and sorted(more.drawn) == sorted(new) and len(drawn) == len(new)
    assert any(n.startswith("dependence/") for n in new)
    assert all(n.startswith(("dependence/", "waterfall/")) for n in new)


def test_figures_drawn_from_other_files_or_altered_are_not_used(logged, tmp_path):
    _, folder = logged
    aset = ArtifactSet.read(folder)
    kept = stored(aset.directory, aset.manifest)
    for name in kept.held:
        kept.uri(name, lambda: pytest.fail("a stored figure was drawn"))
    # the same figures filed under another explanation's hash, the manifest updated to
    # match: a set that reads, and holds no figure a report may use
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    save(other, kept, {**aset.manifest["artifacts"], "values.parquet": "0" * 64})
    manifest = json.loads((other / MANIFEST).read_text())
    manifest["artifacts"][FILE] = sha256_file(other / FILE)
    (other / MANIFEST).write_text(json.dumps(manifest))
    moved = ArtifactSet.read(other)
    assert stored(moved.directory, moved.manifest).held == []
    # a figure altered after logging: the set no longer reads
    altered = tmp_path / "altered"
    shutil.copytree(folder, altered)
    with open(altered / FILE, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(InputError, match=f"{FILE} is missing or does not match"):
        ArtifactSet.read(altered)
