"""Model documents (issue 36): the Word file and the PDF of an approved version, read back
with python-docx and poppler's pdftotext, against the set's own files.

Two sets in one real sqlite store with an approval key: a credit model with explanations
over time (LightGBM, categorical columns), and the planted adverse-action model of
``test_reasons_report`` (its catalogue carries hostile text). Both registered and approved.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from docx import Document
from docx.oxml.ns import qn
from stores import new_store
from test_reasons_report import EVIL, applicants, planted_model, reference, spec
from test_report import _need_chromium, parse

import shapgov
import shapgov.mlflow
from shapgov.cli import main
from shapgov.documents import BLOCKS, INLINE, build_document
from shapgov.documents.default_template import build_default_template
from shapgov.documents.docx_writer import default_template, template_placeholders
from shapgov.documents.regulatory import FILLED, OWNER, load_map
from shapgov.errors import (
    AlteredSetError,
    DocumentRendererError,
    DocumentTemplateError,
    InputError,
)
from shapgov.review.ledger import read_chain
from shapgov.sinks.compliance import SECTIONS

KEY = "shapgov-tests-documents-key-0123456789abcdef"


@pytest.fixture(scope="module")
def approved(tmp_path_factory, _store_template):
    """Two approved versions (credit with over time; planted reasons), in a store of the
    module's own, with an approval key and a declared user."""
    import lightgbm as lgb
    from credit import credit_table

    patch = pytest.MonkeyPatch()
    patch.setenv("SHAPGOV_APPROVAL_KEY", KEY)
    patch.setenv("SHAPGOV_USER", "ada")
    patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    where = tmp_path_factory.mktemp("documents")
    uri = new_store(_store_template, where)
    X, y = credit_table(800, seed=0)
    model = lgb.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1).fit(X, y)
    days = np.sort(np.random.default_rng(1).uniform(0, 120, 300))
    rows = X.iloc[:300].assign(applied=pd.Timestamp("2024-01-01") + pd.to_timedelta(days, "D"))
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(
            model,
            rows,
            y=y.iloc[:300],
            background=X.iloc[400:520],
            over_time={"time": "applied", "freq": "M"},
        )
        info = mlflow.lightgbm.log_model(model, name="model", pip_requirements=["lightgbm"])
    credit = mlflow.register_model(info.model_uri, "credit")
    assert shapgov.approve("credit", credit.version).approved
    with mlflow.start_run() as reasons_run:
        shapgov.mlflow.explain_and_log(
            planted_model(), applicants(), background=reference(), analyses=False, reasons=spec()
        )
        info = mlflow.sklearn.log_model(
            planted_model(), name="model", pip_requirements=["scikit-learn"]
        )
    planted = mlflow.register_model(info.model_uri, "planted")
    assert shapgov.approve("planted", planted.version).approved
    yield (
        uri,
        where,
        {"credit": (run.info.run_id, credit), "planted": (reasons_run.info.run_id, planted)},
    )
    patch.undo()


@pytest.fixture
def store(approved, monkeypatch):
    uri, where, versions = approved
    monkeypatch.setenv("SHAPGOV_APPROVAL_KEY", KEY)
    monkeypatch.setenv("SHAPGOV_USER", "ada")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri, where, versions


@pytest.fixture(scope="module")
def credit_documents(approved, tmp_path_factory):
    """The credit version's Word and PDF documents, written and logged once."""
    _need_chromium()
    uri, _, versions = approved
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    patch = pytest.MonkeyPatch()
    patch.setenv("SHAPGOV_APPROVAL_KEY", KEY)
    patch.setenv("SHAPGOV_USER", "ada")
    out = tmp_path_factory.mktemp("credit-docs")
    result = shapgov.document("credit", versions["credit"][1].version, out_dir=out)
    set_dir = Path(
        mlflow.artifacts.download_artifacts(
            f"runs:/{versions['credit'][0]}/shapgov", dst_path=str(out / "set")
        )
    )
    yield result, set_dir
    patch.undo()


def _manifest(set_dir: Path) -> dict:
    return json.loads((set_dir / "manifest.json").read_text())


def _captions(doc: Document) -> list[str]:
    """Caption paragraphs with their SEQ field's number, as Word shows them."""
    out = []
    for p in doc.paragraphs:
        if p.style.name != "Caption":
            continue
        field = p._p.find(qn("w:fldSimple"))
        number = "".join(t.text for t in field.iter(qn("w:t"))) if field is not None else ""
        out.append(p.text.replace(" : ", f" {number}: ", 1))
    return out


def _table_after(doc: Document, caption_start: str) -> list[list[str]]:
    """The rows of the table that follows the caption starting with ``caption_start``."""
    body = list(doc.element.body.iterchildren())
    for i, node in enumerate(body):
        text = "".join(t.text or "" for t in node.iter(qn("w:t")))
        if node.tag == qn("w:p") and text.startswith(caption_start):
            for later in body[i + 1 :]:
                if later.tag == qn("w:tbl"):
                    from docx.table import Table

                    return [[c.text for c in r.cells] for r in Table(later, doc).rows]
    raise AssertionError(f"no table after a caption starting {caption_start!r}")


def test_the_word_document_holds_the_sets_sections_tables_and_figures(credit_documents):
    result, set_dir = credit_documents
    manifest = _manifest(set_dir)
    doc = Document(str(result.paths["docx"]))
    headings = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    present = [t for s, t in SECTIONS if s not in ("reasons", "fairness", "challenger")]
    assert headings == ["Executive summary", *present, "Regulatory section map"]
    # the cover and the footer tie the filed copy to the registry
    text = "\n".join(p.text for p in doc.paragraphs)
    assert f"Manifest SHA-256: {result.manifest_sha256}" in text
    assert "Verdict: approved, by ada" in text
    assert result.manifest_sha256 in doc.sections[0].footer.paragraphs[0].text
    # every table and figure cites the file it was read from, with the manifest's hash
    captions = _captions(doc)
    assert len(captions) == len(doc.tables) + len(doc.inline_shapes)
    cited = re.compile(r"Source: ([\w.]+)[^,]*, SHA-256 ([0-9a-f]{64})\.")
    for caption in captions:
        match = cited.search(caption)
        if match and match.group(1) in manifest["artifacts"]:
            assert manifest["artifacts"][match.group(1)] == match.group(2), caption
    assert sum(bool(cited.search(c)) for c in captions) >= len(captions) - 2  # registry's
    # values read back equal the artifacts
    impact = json.loads((set_dir / "feature_impact.json").read_text())["features"]
    rows = _table_after(doc, "Table")  # the first table: model and game
    assert rows[0][0] == "Model class"
    table = _table_after(doc, next(c for c in captions if ": Feature Impact." in c)[:8])
    by_feature = {r[0]: r for r in table[1:]}
    for f in impact:
        assert float(by_feature[f["feature"]][1]) == pytest.approx(f["normalized"], rel=1e-2)
        assert int(by_feature[f["feature"]][2]) == f["rank"]
    files = _table_after(doc, next(c for c in captions if "Files of the artifact set" in c)[:8])
    assert {r[0]: r[1] for r in files[1:]} == manifest["artifacts"]
    additivity = json.loads((set_dir / "additivity.json").read_text())
    kv = dict(_table_after(doc, next(c for c in captions if "Additivity check" in c)[:8]))
    assert kv["Status"] == additivity["status"] == "pass"
    assert kv["Rows above tolerance / threshold"].endswith(f"of {additivity['n_rows']}")
    # a table of contents field, and links from the summary to the sections' bookmarks
    xml = doc.element.xml
    assert 'TOC \\o "1-2"' in xml
    anchors = set(re.findall(r'w:anchor="(sec_\w+)"', xml))
    bookmarks = set(re.findall(r'w:bookmarkStart w:id="\d+" w:name="(sec_\w+)"', xml))
    assert anchors and anchors <= bookmarks
    assert {"sec_impact", "sec_over_time", "sec_approval"} <= anchors
    # the regulatory map: monitoring is filled by explanations over time here
    regulatory = _table_after(doc, next(c for c in captions if "Regulatory section map" in c)[:8])
    monitoring = next(r for r in regulatory if r[1] == "Ongoing monitoring")
    assert monitoring[3] == FILLED and "Explanations over time" in monitoring[4]
    outcomes = next(r for r in regulatory if r[1] == "Outcomes analysis")
    assert outcomes[3] == OWNER


def test_the_pdf_carries_the_verdict_summary_and_hash_on_every_page(credit_documents):
    result, _ = credit_documents
    pages = subprocess.run(
        ["pdftotext", "-layout", str(result.paths["pdf"]), "-"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\f")  # fmt: skip
    pages = [p for p in pages if p.strip()]
    assert len(pages) > 5
    for number, page in enumerate(pages, start=1):
        assert result.manifest_sha256 in page, f"page {number} lacks the manifest hash"
        assert f"page {number} of {len(pages)}" in page
    # the first page: the cover and the executive summary, read first
    assert "approved, by ada" in pages[0] and "Executive summary" in pages[0]
    assert "Top drivers" in pages[0] and "Drift over time" in pages[0]
    # the same content as the Word file: every section heading
    text = "\n".join(pages)
    for _, title in SECTIONS:
        if title not in ("Adverse-action reasons", "Fair lending", "Challenger comparison"):
            assert title in text


def test_documents_are_logged_beside_the_set_and_recorded_in_the_ledger(credit_documents, store):
    result, _ = credit_documents
    _, _, versions = store
    run_id = versions["credit"][0]
    assert result.logged_to.startswith("shapgov-approval/v1/documents/")
    logged = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{result.logged_to}"))
    record = json.loads((logged / "documents.json").read_text())
    for fmt, path in result.paths.items():
        assert (logged / path.name).read_bytes() == path.read_bytes()
        assert record["files"][path.name] == result.sha256[fmt]
    assert record["manifest_sha256"] == result.manifest_sha256
    # the approved set is untouched: its files still verify
    assert shapgov.mlflow.signing.verify_version("credit", "1").verified
    chain = read_chain(mlflow.MlflowClient())
    entry = next(e for e in chain.entries if e.seq == result.ledger_entry)
    assert entry.kind == "document" and entry.model == "credit" and entry.actor == "ada"
    assert entry.body["files"] == record["files"]
    assert not chain.problems


def test_the_html_report_opens_with_the_executive_summary(store, tmp_path):
    html = shapgov.report(model="credit", version="1", out=tmp_path / "r.html", log=False)
    dom = parse(html.read_text())
    assert dom.ids.index("executive") < dom.ids.index("model")
    summary = html.read_text().split('<section id="executive"', 1)[1].split("</section>", 1)[0]
    for label in ("Verdict", "Game", "Additivity", "Top drivers", "Drift over time", "Findings"):
        assert f">{label}</dt>" in summary
    for anchor in ("#approval", "#additivity", "#impact", "#over_time"):
        assert f'href="{anchor}"' in summary


def test_reasons_appear_escaped_with_their_catalogue(store, tmp_path):
    """The adverse-action section's tables come from the reasons' files; a catalogue
    statement with markup stays text in Word (and in the PDF's HTML: autoescaped)."""
    result = shapgov.document("planted", "1", formats=("docx",), out_dir=tmp_path, log=False)
    assert result.logged_to is None and result.ledger_entry is None
    doc = Document(str(result.paths["docx"]))
    captions = _captions(doc)
    catalogue = _table_after(doc, next(c for c in captions if "Reason catalogue" in c)[:8])
    assert [r[0] for r in catalogue[1:]] == ["R01", "R02", "R03"]
    assert catalogue[2][1] == EVIL  # text, as written
    summary = next(p.text for p in doc.paragraphs if p.text.startswith("Adverse action:"))
    assert "4 of 8 explained rows declined" in summary  # 3 with reasons, 1 needs review
    from shapgov.documents.pdf_writer import document_html

    set_dir = tmp_path / "set"
    mlflow.artifacts.download_artifacts(
        f"runs:/{store[2]['planted'][0]}/shapgov", dst_path=str(set_dir)
    )
    html = document_html(build_document(set_dir / "shapgov"))
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def _template(path: Path, *lines: str) -> Path:
    doc = Document()
    for line in lines:
        doc.add_paragraph(line)
    doc.save(path)
    return path


def test_a_bank_template_with_its_own_section_is_honoured(store, tmp_path):
    template = _template(
        tmp_path / "bank.docx",
        "ACME Bank model file {{ model_name }} v{{ model_version }}",
        "{{p executive_summary }}",
        "Validator's independent assessment",
        "To be completed by Model Risk Management.",
        "{{p section_impact }}",
        "{{p section_regulatory_map }}",
        "Filed copy of manifest {{ manifest_sha256 }}",
    )
    result = shapgov.document(
        "credit", "1", formats=("docx",), out_dir=tmp_path, template=template, log=False
    )
    doc = Document(str(result.paths["docx"]))
    texts = [p.text for p in doc.paragraphs]
    assert texts[0] == "ACME Bank model file credit v1"
    assert "Validator's independent assessment" in texts
    assert texts.index("Validator's independent assessment") < texts.index("Feature Impact")
    headings = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    assert headings == ["Executive summary", "Feature Impact", "Regulatory section map"]
    assert texts[-1] == f"Filed copy of manifest {result.manifest_sha256}"


def test_an_unknown_placeholder_is_a_typed_error_listing_the_known_ones(store, tmp_path):
    template = _template(tmp_path / "typo.docx", "{{ manifest_sha }}", "{{p all_sections }}")
    with pytest.raises(DocumentTemplateError, match=r"\['manifest_sha'\].*manifest_sha256"):
        shapgov.document("credit", "1", formats=("docx",), out_dir=tmp_path, template=template)
    assert (
        not list(tmp_path.glob("*.docx-model*"))
        and not (tmp_path / "credit-v1-model-documentation.docx").exists()
    )
    (tmp_path / "not.docx").write_text("plain text")
    with pytest.raises(DocumentTemplateError, match="not a readable Word"):
        template_placeholders(tmp_path / "not.docx")
    out = CliRunner().invoke(
        main,
        ["document", "--model", "credit/1", "--template", str(template), "--out", str(tmp_path)],
    )
    assert out.exit_code == 2 and "manifest_sha" in out.output


def test_the_shipped_template_is_what_the_builder_makes():
    shipped, built = (
        Document(io.BytesIO(default_template())),
        Document(io.BytesIO(build_default_template())),
    )
    assert [p.text for p in shipped.paragraphs] == [p.text for p in built.paragraphs]
    assert (
        shipped.sections[0].footer.paragraphs[0].text == built.sections[0].footer.paragraphs[0].text
    )
    used = template_placeholders(io.BytesIO(default_template()))
    assert used <= set(INLINE) | set(BLOCKS)
    assert {"manifest_sha256", "verdict", "signed_by", "table_of_contents", "all_sections"} <= used


def _altered_copy(store, tmp_path: Path, name: str) -> tuple[str, Path]:
    """A small set logged and approved as a model of its own (the planted one, without
    analyses), then ``name`` in its artifact store changed by the caller: (version, path
    of the stored file)."""
    registered = f"altered-{tmp_path.name}"[:60]
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(
            planted_model(), applicants(), background=reference(), analyses=False
        )
        info = mlflow.sklearn.log_model(
            planted_model(), name="model", pip_requirements=["scikit-learn"]
        )
    mv = mlflow.register_model(info.model_uri, registered)
    assert shapgov.approve(registered, mv.version).approved
    root = Path(mlflow.get_run(run.info.run_id).info.artifact_uri.removeprefix("file://"))
    return f"{registered}/{mv.version}", root / "shapgov" / name


def test_a_set_altered_after_approval_is_refused(store, tmp_path):
    target, stored = _altered_copy(store, tmp_path, "additivity.json")
    data = json.loads(stored.read_text())
    data["max_normalized_mismatch"] = 0.0  # a quiet edit of one number
    stored.write_text(json.dumps(data))
    name, version = target.split("/")
    with pytest.raises(AlteredSetError, match=r"additivity\.json"):
        shapgov.document(name, version, formats=("docx",), out_dir=tmp_path / "o1")
    assert not (tmp_path / "o1").exists() or not list((tmp_path / "o1").iterdir())
    out = CliRunner().invoke(main, ["document", "--model", target, "--out", str(tmp_path / "o2")])
    assert out.exit_code == 1 and "refused" in out.output


def test_a_manifest_replaced_after_the_verdict_is_refused(store, tmp_path):
    target, stored = _altered_copy(store, tmp_path, "manifest.json")
    manifest = json.loads(stored.read_text())
    manifest["rows"] = 1  # the files still match it, but it is not the manifest signed
    stored.write_text(json.dumps(manifest))
    name, version = target.split("/")
    with pytest.raises(AlteredSetError, match="not the one the verdict signed"):
        shapgov.document(name, version, formats=("docx",), out_dir=tmp_path)


def test_the_regulatory_map_is_data_and_checked(tmp_path):
    items, digest = load_map()
    frameworks = {i.framework for i in items}
    assert frameworks == {"SR 11-7", "EU AI Act Annex IV"}
    sr = [i.item for i in items if i.framework == "SR 11-7"]
    for expected in (
        "Purpose and intended use",
        "Conceptual soundness",
        "Data",
        "Outcomes analysis",
        "Ongoing monitoring",
    ):
        assert expected in sr
    assert len(digest) == 64
    bad = tmp_path / "map.toml"
    bad.write_text(
        '[[framework]]\nname = "X"\n[[framework.item]]\nitem = "a"\nreference = "b"\n'
        'sections = ["nowhere"]\n'
    )
    with pytest.raises(InputError, match="unknown sections"):
        load_map(bad)


def test_without_chromium_the_pdf_is_a_typed_error(store, tmp_path, monkeypatch):
    monkeypatch.setenv("SHAPGOV_CHROMEDRIVER", str(tmp_path / "no-chromedriver"))
    with pytest.raises(DocumentRendererError, match=r"could not print|Chromium"):
        shapgov.document("credit", "1", formats=("pdf",), out_dir=tmp_path, log=False)
    assert not (tmp_path / "credit-v1-model-documentation.pdf").exists()
