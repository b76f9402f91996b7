"""The wheel carries the matrix, the plugins and the templates; no generic import names."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # build from a clean copy: a stale build/ folder would hide a forgotten subpackage
    src = tmp_path_factory.mktemp("src") / "shapgov"
    skip = ("build", "dist", ".venv*", ".git", "*.egg-info", "__pycache__", "mlruns", "*.db")
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*skip))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("shapgov-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_contents(wheel):
    names = set(wheel.namelist())
    for expected in (
        "shapgov/compat/matrix.toml",
        "shapgov/adverse_action/catalogues/consumer_credit.toml",
        "shapgov/reports/__init__.py",
        "shapgov_plugins/linear.py",
        "shapgov_plugins/sklearn_blueprints.py",
        "shapgov/hookspecs.py",
    ):
        assert expected in names
    # every source file of the package and the plugins ships (a forgotten subpackage fails)
    for path in (ROOT / "shapgov").rglob("*.py"):
        assert f"shapgov/{path.relative_to(ROOT / 'shapgov').as_posix()}" in names
    for path in (ROOT / "shapgov").rglob("*.toml"):  # package data: the reason catalogues
        assert f"shapgov/{path.relative_to(ROOT / 'shapgov').as_posix()}" in names
    for path in (ROOT / "plugins").rglob("*.py"):
        assert f"shapgov_plugins/{path.relative_to(ROOT / 'plugins').as_posix()}" in names
    tops = {n.split("/")[0] for n in names}
    assert not tops & {"plugins", "compat", "reports", "tests"}
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[shapgov]" in text and "linear = shapgov_plugins.linear" in text
    assert "shapgov = shapgov.cli:main" in text


def test_generic_names_are_not_importable(tmp_path):
    code = (
        "import importlib.util as u; "
        "print([n for n in ('plugins', 'compat', 'reports') if u.find_spec(n)])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
