"""The plugin manager and each explanation's record of the plugins it called.

:func:`make_plugin_manager` is the factory: the hook specifications, the ``shapgov``
entry points (built-in plugins register there exactly as third-party ones do), and
``check_pending()`` so a misspelled hook is an error, not a silent no-op.
:func:`get_plugin_manager` keeps the one default manager, built lazily; nothing else in
shapgov fetches it: :func:`shapgov.explain` takes ``plugin_manager=`` and hands it on.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import pluggy

from shapgov import hookspecs

if TYPE_CHECKING:
    from shapgov.explainers.base import Explainer

ENTRY_POINT_GROUP = "shapgov"
hookimpl = pluggy.HookimplMarker("shapgov")


#: Hooks whose answers :func:`shared_parses` keeps: parsing a model's trees is pure
#: (the same model gives the same trees) and costly (the whole model text read tree by tree).
SHARED_HOOKS = frozenset({"shapgov_tree_ensemble"})
_SHARED: ContextVar[dict[tuple[int, str, int], Any] | None] = ContextVar(
    "shapgov_shared_parses", default=None
)


@contextmanager
def shared_parses(memo: dict[Any, Any] | None = None) -> Iterator[None]:
    """Within the block, each model object's trees are parsed once and shared by every
    stage and analysis (explain, XEMP, permutation impact): the block holds the models, so
    the objects are not mutated under it. Blocks nest (the outermost one keeps the
    parses); leaving it drops them, unless ``memo`` (a dict the caller keeps, e.g. a
    served model that owns its fitted model) carries them from block to block."""
    if _SHARED.get() is not None:
        yield
        return
    token = _SHARED.set({} if memo is None else memo)
    try:
        yield
    finally:
        _SHARED.reset(token)


def sharing_parses(fn: Any) -> Any:
    """Run ``fn`` inside :func:`shared_parses`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with shared_parses():
            return fn(*args, **kwargs)

    return wrapper


def hook_names() -> list[str]:
    """Names of shapgov's hooks, in the order of :mod:`shapgov.hookspecs`."""
    return [n for n in vars(hookspecs) if n.startswith("shapgov_")]


def check_plugins(pm: pluggy.PluginManager) -> None:
    """Reject implementations of hooks that do not exist (a typo registers silently
    otherwise): :class:`~shapgov.errors.PluginError` naming the hook and the valid ones."""
    from shapgov.errors import PluginError

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        raise PluginError(
            f"{err}. shapgov's hooks are: {', '.join(hook_names())}; fix the name of the "
            "hook implementation or uninstall the plugin."
        ) from None


def make_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the hook specifications added and checked.

    Built-in plugins are registered through the same entry-point group as third-party
    ones, so ``load_entry_points=False`` gives an empty manager.

    :raises PluginError: A registered plugin implements a hook that does not exist.
    """
    pm = pluggy.PluginManager("shapgov")
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        check_plugins(pm)
    return pm


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The default plugin manager, created on first call (what ``plugin_manager=None``
    means in :func:`shapgov.explain`)."""
    return make_plugin_manager()


def resolve_plugin_manager(plugin_manager: pluggy.PluginManager | None) -> pluggy.PluginManager:
    """``plugin_manager``, checked, or the default one when ``None``: what a public entry
    point (``explain``, ``matrix``, ``approve``, ``report``) does with its argument."""
    if plugin_manager is None:
        return get_plugin_manager()
    if not isinstance(plugin_manager, pluggy.PluginManager):
        from shapgov.errors import PluginError

        raise PluginError(
            f"plugin_manager must be a pluggy.PluginManager (shapgov.registry."
            f"make_plugin_manager()), got {type(plugin_manager).__name__}"
        )
    check_plugins(plugin_manager)
    return plugin_manager


def reset_plugin_manager() -> None:
    """Forget the default manager (after installing or registering plugins)."""
    get_plugin_manager.cache_clear()


def explainer_providers(pm: pluggy.PluginManager) -> dict[str, tuple[type[Explainer], str]]:
    """Registered explainers by name, with the plugin that registered each.

    :raises DuplicateExplainerError: Two plugins register the same name.
    :raises PluginError: An explainer class has no ``name``.
    """
    from shapgov.errors import DuplicateExplainerError, PluginError

    found: dict[str, tuple[type[Explainer], str]] = {}
    for impl in pm.hook.shapgov_explainers.get_hookimpls():
        for cls in impl.function() or ():
            name = getattr(cls, "name", None)
            if not name:
                raise PluginError(f"explainer {cls!r} from plugin {impl.plugin_name!r} has no name")
            if name in found and found[name][0] is not cls:
                raise DuplicateExplainerError(
                    f"explainer name {name!r} is registered twice: by {found[name][0]!r} and by "
                    f"{cls!r} (plugin {impl.plugin_name!r}); rename one or uninstall a plugin."
                )
            found[name] = (cls, impl.plugin_name)
    return found


def explainer_classes(pm: pluggy.PluginManager) -> dict[str, type[Explainer]]:
    """Registered explainers by name; duplicate names raise."""
    return {name: cls for name, (cls, _) in explainer_providers(pm).items()}


class PluginCalls:
    """One explanation's window on the plugin manager: it calls hooks and records which
    plugin answered each, for the manifest and the compliance report.

    :param plugin_manager: The manager to call (never fetched from a global here).
    """

    def __init__(self, plugin_manager: pluggy.PluginManager) -> None:
        self.plugin_manager = plugin_manager
        self._answered: dict[str, set[str]] = {}
        self._explainers: dict[str, tuple[type[Explainer], str]] | None = None

    def first(self, hook: str, **kwargs: Any) -> Any:
        """Call a ``firstresult`` hook in pluggy's order (last registered and ``tryfirst``
        first, ``trylast`` last) and record the plugin whose answer was taken. With a
        wrapper registered on the hook, pluggy calls it and every implementation is
        recorded (which one answered cannot be seen through a wrapper).

        Inside :func:`shared_parses`, the answers of :data:`SHARED_HOOKS` are kept per
        model object and handed out again (with the same plugins recorded)."""
        memo = _SHARED.get()
        shared = memo is not None and hook in SHARED_HOOKS and set(kwargs) == {"model"}
        key = (id(self.plugin_manager), hook, id(kwargs.get("model")))
        hit = memo.get(key) if shared else None
        if hit is not None and hit[0] is kwargs["model"]:
            result, names = hit[1], hit[2]
        else:
            result, names = self._first(hook, **kwargs)
            if shared:
                memo[key] = (kwargs["model"], result, names)
        for name in names:
            self.record(name, hook)
        return result

    def _first(self, hook: str, **kwargs: Any) -> tuple[Any, list[str]]:
        """The answer and the plugins to record for it."""
        caller = getattr(self.plugin_manager.hook, hook)
        impls = caller.get_hookimpls()
        if any(i.hookwrapper or i.wrapper for i in impls):
            result = caller(**kwargs)
            names = [impl.plugin_name for impl in impls] if result is not None else []
            return result, names
        for impl in reversed(impls):
            result = impl.function(*(kwargs[a] for a in impl.argnames))
            if result is not None:
                return result, [impl.plugin_name]
        return None, []

    def record(self, plugin_name: str, hook: str) -> None:
        """Record that ``plugin_name`` answered ``hook`` (listed in ``Explanation.plugins``)."""
        self._answered.setdefault(plugin_name, set()).add(hook)

    def explainers(self) -> dict[str, type[Explainer]]:
        """Registered explainers by name (read once per explanation)."""
        if self._explainers is None:
            self._explainers = explainer_providers(self.plugin_manager)
        return {name: cls for name, (cls, _) in self._explainers.items()}

    def use_explainer(self, name: str) -> None:
        """Record that the plugin registering explainer ``name`` took part."""
        self.explainers()
        self.record(self._explainers[name][1], "shapgov_explainers")

    def participants(self) -> list[dict[str, Any]]:
        """The plugins that answered: ``[{"name", "distribution", "version", "hooks"}]``."""
        dists = {
            self.plugin_manager.get_name(plugin): dist
            for plugin, dist in self.plugin_manager.list_plugin_distinfo()
        }
        out = []
        for name in sorted(self._answered):
            dist = dists.get(name)
            out.append(
                {
                    "name": name,
                    "distribution": None if dist is None else dist.project_name,
                    "version": None if dist is None else dist.version,
                    "hooks": sorted(self._answered[name]),
                }
            )
        return out
