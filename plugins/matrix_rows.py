"""Built-in plugin: the packaged compatibility matrix rows."""

from __future__ import annotations

from typing import Any

from shapgov import hookimpl
from shapgov.planning.compatibility import load_builtin_rows


@hookimpl(trylast=True)
def shapgov_matrix_rows() -> list[dict[str, Any]]:
    return load_builtin_rows()
