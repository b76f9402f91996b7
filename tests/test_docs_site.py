"""The documentation site builds with warnings as errors, and its checks can fail.

The site is built as the docs say (``sphinx-build -W --keep-going -b html docs ...``).
A tiny site with ``docs/conf.py`` then proves that each check it relies on fails the
build: a broken link between pages, an object of the API reference without a docstring
(a function, or a public method left out by ``:members:``), and a ``shapgov``
cross-reference to nothing. Each planted defect is measured against a control build of
the same tiny site without it, which must pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")
pytest.importorskip("furo")


def _build(
    source: Path, out: Path, *, pythonpath: Path | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q", source, out],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


def test_site_builds_with_warnings_as_errors(tmp_path):
    import shapgov
    from shapgov.registry import hook_names

    done = _build(DOCS, tmp_path / "html")
    assert done.returncode == 0, done.stdout + done.stderr
    html = tmp_path / "html"
    pages = {p.relative_to(html).as_posix() for p in html.rglob("*.html")}
    for page in [
        "index.html",
        "architecture.html",
        "explaining.html",
        "matrix.html",
        "plugins.html",
        "testing.html",
        "research/shapley-estimation.html",
    ]:
        assert page in pages, page
    api = "".join(
        (html / "api" / f"{p}.html").read_text()
        for p in [
            "explaining",
            "analyses",
            "adverse_action",
            "mlflow",
            "serving",
            "spark",
            "errors",
            "hooks",
        ]
    )
    public = [n for n in shapgov.__all__ if n != "__version__"]
    public += [
        "mlflow.explain_and_log",
        "mlflow.log_explanation",
        "mlflow.log_failure",
        "mlflow.serving.log_explaining_model",
        "serving.ServedExplainer",
        "spark.explain",
        "spark.explain_and_log",
        "errors.InputError",
    ]
    public += [f"hookspecs.{name}" for name in hook_names()]
    missing = [name for name in public if f'id="shapgov.{name}"' not in api]
    assert not missing, f"not in the API reference: {missing}"


PROBE = '''"""A module for the tiny site."""


def documented():
    """Has a docstring; see :func:`shapgov_probe.documented` and :class:`pandas.DataFrame`."""


def undocumented():
    pass


def broken_reference():
    """Points at :func:`shapgov_probe.no_such_function`."""


class Documented:
    """A class whose public methods have docstrings."""

    def method(self):
        """Has one."""


class HalfDocumented:
    """A class with a public method without a docstring."""

    def method(self):
        pass
'''

CONTROL = """# Probe

A [link to a heading](other.md#a-heading).

```{eval-rst}
.. autofunction:: shapgov_probe.documented

.. autoclass:: shapgov_probe.Documented
   :members:
```

```{toctree}
other
```
"""

DEFECTS = {
    "broken link": ("other.md#a-heading", "other.md#no-such-heading", "xref_missing"),
    "broken page link": ("other.md#a-heading", "missing.md", "xref_missing"),
    "function without docstring": (
        "shapgov_probe.documented\n",
        "shapgov_probe.undocumented\n",
        "function shapgov_probe.undocumented has no docstring",
    ),
    "method without docstring": (
        "shapgov_probe.Documented\n",
        "shapgov_probe.HalfDocumented\n",
        "HalfDocumented.method (shapgov_probe) has no docstring",
    ),
    "broken shapgov reference": (
        "shapgov_probe.documented\n",
        "shapgov_probe.broken_reference\n",
        "reference target not found: shapgov_probe.no_such_function",
    ),
}


def _tiny_site(root: Path, index: str) -> Path:
    source = root / "docs"
    source.mkdir(parents=True)
    shutil.copy(DOCS / "conf.py", source / "conf.py")
    shutil.copytree(DOCS / "_static", source / "_static")
    (source / "index.md").write_text(index)
    (source / "other.md").write_text("# Other\n\n## A heading\n\nText.\n")
    (root / "shapgov_probe.py").write_text(PROBE)
    return source


def test_tiny_site_control_builds(tmp_path):
    """Without a planted defect the tiny site builds: the failures below are the defects'."""
    source = _tiny_site(tmp_path, CONTROL)
    done = _build(source, tmp_path / "html", pythonpath=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_docs_checks_fail_the_build(tmp_path, defect):
    old, new, message = DEFECTS[defect]
    assert old in CONTROL
    source = _tiny_site(tmp_path, CONTROL.replace(old, new, 1))
    done = _build(source, tmp_path / "html", pythonpath=tmp_path)
    assert done.returncode != 0, f"{defect}: the build passed"
    assert message in done.stdout + done.stderr, done.stdout + done.stderr
