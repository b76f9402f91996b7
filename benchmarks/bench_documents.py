"""Model documents of a wide model: time and size (issue 36).

A LightGBM classifier on 500 input columns, explained on 2,000 rows against 100 background
rows with explanations over time (six monthly windows), adverse-action reasons (ten
catalogue entries of 50 inputs each, five stability resamples) and fair-lending checks (a
protected attribute of three groups, over the windows too), logged, registered and
approved in a temporary sqlite store; then ``shapgov.document`` writes the Word file and
the PDF. Prints the time of each step and the files' sizes and page count.

    python benchmarks/bench_documents.py [--columns 500] [--rows 2000]

Not a timed test: the numbers depend on the machine (the note of issue 36 states the ones
measured on the project's 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=500)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()

    import lightgbm as lgb
    import mlflow

    import shapgov
    import shapgov.mlflow
    from shapgov.adverse_action.catalogue import make_catalogue
    from shapgov.documents import build_document, write_docx, write_pdf
    from shapgov.mlflow.reporting import approval_state, download_set

    rng = np.random.default_rng(0)
    m, n = args.columns, args.rows
    columns = [f"x{j:03d}" for j in range(m)]
    X = pd.DataFrame(rng.normal(size=(n + 600, m)), columns=columns)
    margin = X.iloc[:, :20].to_numpy() @ rng.normal(size=20) + X["x000"] * X["x001"]
    y = (margin + rng.normal(size=len(X)) > 0.5).astype(int)
    model = lgb.LGBMClassifier(n_estimators=100, num_leaves=31, verbose=-1).fit(X, y)
    days = np.sort(rng.uniform(0, 181, n))
    rows = X.iloc[:n].assign(applied=pd.Timestamp("2024-01-01") + pd.to_timedelta(days, "D"))
    per = m // 10
    # a protected attribute (not an input) that leans on x000, a driver of the score
    lean = 1 / (1 + np.exp(-(X["x000"].to_numpy()[:n] - 0.5)))
    protected = pd.DataFrame(
        {"group": np.where(rng.random(n) < lean, "B", rng.choice(["A", "C"], n))},
        index=rows.index,
    )
    catalogue = make_catalogue(
        name="wide-bench",
        version="1",
        reasons=[
            dict(
                code=f"R{k:02d}", statement=f"Factor group {k}",
                inputs=columns[k * per : (k + 1) * per], adverse="high",
            )
            for k in range(10)
        ],
    )  # fmt: skip
    reasons = dict(
        catalogue=catalogue, decision=shapgov.Decision(cutoff=0.5),
        reference=X.iloc[n : n + 300], stability=5,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        mlflow.create_experiment("bench", artifact_location=(tmp / "art").as_uri())
        mlflow.set_experiment("bench")
        os.environ.setdefault("SHAPGOV_APPROVAL_KEY", "bench-documents-key-0123456789abcdef")
        os.environ.setdefault("SHAPGOV_USER", "bench")
        t0 = time.perf_counter()
        with mlflow.start_run() as run:
            shapgov.mlflow.explain_and_log(
                model, rows, y=y[:n], background=X.iloc[n + 300 : n + 400],
                over_time={"time": "applied", "freq": "M"}, reasons=reasons,
                fairness={"protected": protected, "decision": shapgov.Decision(cutoff=0.5)},
            )  # fmt: skip
            info = mlflow.lightgbm.log_model(model, name="model", pip_requirements=["lightgbm"])
        mv = mlflow.register_model(info.model_uri, "wide")
        verdict = shapgov.approve("wide", mv.version)
        logged = time.perf_counter() - t0
        print(f"{m} columns, {n} rows: logged and approved ({verdict.verdict}) in {logged:.1f} s")
        t0 = time.perf_counter()
        local = download_set(run.info.run_id, tmp / "set")
        doc = build_document(local, run=run, model_version=mv, approval_state=approval_state(mv))
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        docx = write_docx(doc, tmp / "wide.docx")
        t_docx = time.perf_counter() - t0
        t0 = time.perf_counter()
        pdf = write_pdf(doc, tmp / "wide.pdf")
        t_pdf = time.perf_counter() - t0
        t0 = time.perf_counter()
        whole = shapgov.document("wide", mv.version, out_dir=tmp / "out")
        t_whole = time.perf_counter() - t0
        pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
        n_pages = next((ln.split()[-1] for ln in pages.splitlines() if ln.startswith("Pages")), "?")
        sections = [s.id for s in doc.sections]
        print(f"sections: {', '.join(sections)}")
        print(f"content read from the set (download + context + blocks): {t_build:.2f} s")
        print(f"Word: {t_docx:.2f} s, {docx.stat().st_size / 1e6:.2f} MB")
        print(f"PDF:  {t_pdf:.2f} s, {pdf.stat().st_size / 1e6:.2f} MB, {n_pages} pages")
        print(
            f"shapgov.document (both, logged, ledger entry {whole.ledger_entry}): {t_whole:.2f} s"
        )


if __name__ == "__main__":
    main()
