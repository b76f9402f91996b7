"""The ``shapgov`` command line and the README's generated matrix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from shapgov.cli import main
from shapgov.compatibility import to_markdown

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


def test_readme_matrix_is_current():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- matrix:start -->") + len("<!-- matrix:start -->\n")
    end = readme.index("<!-- matrix:end -->")
    assert readme[start:end] == to_markdown(), "regenerate with: shapgov matrix --format markdown"


def test_demo_runs_end_to_end_on_the_embedded_store(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from shapgov.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(main, ["demo", "--rows", "2"])
    assert result.exit_code == 0, result.output
    assert "both exact" in result.output and "approved, alias 'champion'" in result.output
    assert (tmp_path / "mlflow.db").exists()
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")  # absolute, for later tests
    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
