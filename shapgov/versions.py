"""Versions of the libraries an explanation depends on, for the audit trail."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from functools import lru_cache
from importlib import metadata

CORE = (
    "shapgov",
    "numpy",
    "pandas",
    "pyarrow",
    "sklearn",
    "lightgbm",
    "numba",
    "pluggy",
    "mlflow",
    "matplotlib",
    "jinja2",
)


def _version(module: str, owners: dict[str, list[str]]) -> str | None:
    """The version of the distribution that installs ``module`` (``sklearn`` comes from
    ``scikit-learn``, ``xgboost`` from ``xgboost`` or ``xgboost-cpu``)."""
    for name in [*owners.get(module, []), module]:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def library_versions(extra_classes: Iterable[str] = ()) -> dict[str, str]:
    """``{"python": ..., "numpy": ..., ...}``: Python, shapgov's libraries, and the top-level
    package of every dotted class path in ``extra_classes`` (the model's own libraries)."""
    modules = list(CORE)
    for path in extra_classes:
        top = str(path).split(".")[0]
        if top and top not in modules and top != "builtins":
            modules.append(top)
    out = {"python": platform.python_version()}
    for module in modules:
        version = _module_version(module)
        if version is not None:
            out[module] = version
    return out


@lru_cache(maxsize=256)
def _module_version(module: str) -> str | None:
    """Cached per process: reading every installed distribution's metadata takes a third
    of a second, and the installed versions do not change under a running process."""
    return _version(module, _owners())


@lru_cache(maxsize=1)
def _owners() -> dict[str, list[str]]:
    return metadata.packages_distributions()
