"""The Jinja environment of shapgov's HTML templates (``reports/``, installed as
``shapgov.reports``): autoescaping on, undefined names an error, built once per process.
The compliance report and the printed model document render through it."""

from __future__ import annotations

import base64
from functools import cache
from importlib import resources
from typing import Any


def read(name: str) -> str:
    """A file of ``shapgov.reports`` as text (a template's CSS)."""
    return resources.files("shapgov.reports").joinpath(name).read_text("utf-8")


@cache
def environment() -> Any:
    """The environment (a ``jinja2.Environment``; filter ``b64``: bytes as base64 text)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(read),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    return env
