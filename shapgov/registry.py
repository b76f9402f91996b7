"""The plugin manager: built lazily, on first use, from the ``shapgov`` entry points."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pluggy

from shapgov import hookspecs

if TYPE_CHECKING:
    from shapgov.explainers.base import Explainer

ENTRY_POINT_GROUP = "shapgov"
hookimpl = pluggy.HookimplMarker("shapgov")


def make_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """Return a fresh plugin manager with the hook specifications added.

    Built-in plugins are registered through the same entry-point group as
    third-party ones, so ``load_entry_points=False`` gives an empty manager.
    """
    pm = pluggy.PluginManager("shapgov")
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created on first call."""
    return make_plugin_manager()


def reset_plugin_manager() -> None:
    """Forget the cached manager (after installing or registering plugins)."""
    get_plugin_manager.cache_clear()


def explainer_classes(pm: pluggy.PluginManager | None = None) -> dict[str, type[Explainer]]:
    """Registered explainers by name; duplicate names raise."""
    from shapgov.errors import DuplicateExplainerError, PluginError

    pm = pm or get_plugin_manager()
    found: dict[str, type[Explainer]] = {}
    for impl in pm.hook.shapgov_explainers.get_hookimpls():
        for cls in impl.function() or ():
            name = getattr(cls, "name", None)
            if not name:
                raise PluginError(f"explainer {cls!r} from plugin {impl.plugin_name!r} has no name")
            if name in found and found[name] is not cls:
                raise DuplicateExplainerError(
                    f"explainer name {name!r} is registered twice: by {found[name]!r} and by "
                    f"{cls!r} (plugin {impl.plugin_name!r}); rename one or uninstall a plugin."
                )
            found[name] = cls
    return found
