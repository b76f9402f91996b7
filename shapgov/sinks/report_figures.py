"""The compliance report's figures, drawn once per set.

A set logged with its report holds ``report_figures.parquet``: the PNG of every figure that
report drew from the set's rows (the additivity histogram, the summary and dependence
plots, the waterfalls), one row per figure, named by what it shows (``summary/0``,
``dependence/<feature>``, ``waterfall/<row>/<output>``), and, in the file's metadata, the
key they were drawn under: the SHA-256 of the files they were drawn from
(:data:`INPUTS`), and the shapgov, matplotlib and numpy versions and the SHA-256 of the
drawing code (:data:`CODE`). The file is hashed into the manifest like every file of the
set, so approval verifies it and a signed verdict covers it.

A later report of the same set (``shapgov report`` of a registered version, of the run)
embeds a stored figure instead of drawing it again only when the set's files and the code
give the same key; a figure it does not hold (other options: more rows, another seed,
more dependence plots) is drawn. Each figure is a pure function of its name and those
inputs (:func:`shapgov.sinks.plots.to_png` gives the same bytes for the same figure), so
the report is the one a fresh render gives.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from shapgov._version import __version__

#: The file of the set that holds the figures.
FILE = "report_figures.parquet"
#: The files of the set the figures are drawn from.
INPUTS = ("values.parquet", "additivity.json", "additivity.parquet")
#: The modules that draw them (beside this one, in ``shapgov/sinks/``).
CODE = ("plots.py", "plot_parts.py", "compliance.py", "report_figures.py")
_METADATA = b"shapgov.report_figures"
_URI = "data:image/png;base64,"


@cache
def _code_sha256() -> str:
    """SHA-256 of the drawing code; where its source cannot be read (an install without
    it), a token of this process alone, so that no other process reuses what it drew."""
    digest = hashlib.sha256()
    try:
        for name in CODE:
            digest.update(Path(__file__).with_name(name).read_bytes())
    except OSError:
        return f"unread-{uuid.uuid4().hex}"
    return digest.hexdigest()


def figure_key(artifacts: Mapping[str, str]) -> dict[str, Any]:
    """What the figures of a set with these ``artifacts`` (file name -> SHA-256) are drawn
    from and with."""
    return {
        "inputs": {name: artifacts[name] for name in INPUTS if name in artifacts},
        "shapgov": __version__,
        "matplotlib": version("matplotlib"),
        "numpy": version("numpy"),
        "code": _code_sha256(),
    }


class Figures:
    """The figures of one report: :meth:`uri` gives the stored figure of a name when there
    is one, else draws it. ``uris`` holds every figure the report shows (by name),
    ``drawn`` the names drawn here."""

    def __init__(self, stored: Mapping[str, bytes] | None = None) -> None:
        self._stored = dict(stored or {})
        self.uris: dict[str, str] = {}
        self.drawn: list[str] = []

    @property
    def held(self) -> list[str]:
        """The names of the figures stored in the set, which :meth:`uri` does not draw."""
        return sorted(self._stored)

    def uri(self, name: str, draw: Callable[[], str]) -> str:
        """The figure ``name`` as a PNG data URI: the stored one, else ``draw()``'s (the
        figure drawn, as a PNG data URI)."""
        if name in self._stored:
            uri = _URI + base64.b64encode(self._stored[name]).decode("ascii")
        else:
            uri = draw()
            self.drawn.append(name)
        self.uris[name] = uri
        return uri


def stored(directory: Path, manifest: Mapping[str, Any]) -> Figures:
    """The figures the set in ``directory`` holds, when it holds some drawn under the key
    of its files and this code (``manifest``'s artifacts are checked already, as
    :class:`~shapgov.sinks.artifact_set.ArtifactSet` checks them); else none."""
    import pyarrow.parquet as pq

    artifacts = manifest.get("artifacts", {})
    if FILE not in artifacts:
        return Figures()
    table = pq.read_table(directory / FILE)
    key = json.loads((table.schema.metadata or {}).get(_METADATA, b"null"))
    if key != figure_key(artifacts):
        return Figures()
    columns = table.to_pydict()
    return Figures(dict(zip(columns["name"], columns["png"], strict=True)))


def save(directory: Path, figures: Figures, artifacts: Mapping[str, str]) -> None:
    """Write ``figures`` (drawn from the files ``artifacts`` lists) into the set in
    ``directory``, keyed by :func:`figure_key`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = sorted(figures.uris)
    pngs = [base64.b64decode(figures.uris[n][len(_URI) :]) for n in names]
    table = pa.table({"name": pa.array(names, pa.string()), "png": pa.array(pngs, pa.binary())})
    key = json.dumps(figure_key(artifacts), sort_keys=True).encode("utf-8")
    pq.write_table(table.replace_schema_metadata({_METADATA: key}), directory / FILE)
