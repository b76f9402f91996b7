"""A pytest plugin that runs shap's own tests against :mod:`shapgov.shap`.

Loaded with ``-p shap_rebind`` into a pytest run over the ``tests/`` directory of shap's
source distribution (see ``tests/test_shap_own_suite.py``, which fetches it). It:

* rebinds shap's explainer names (``shap.TreeExplainer``, ``shap.explainers.Tree`` ...) to
  the facade's classes before any test runs; shap's tests look them up when they run, so
  no file of shap's is edited;
* refuses every connection that leaves the machine and turns a test that tried one into a
  skip ("network: ..."), since several tests download data sets;
* deselects the tests named in ``deselected.txt`` (each with its reason there).

Nothing here is shap's code; the tests it runs are fetched, never committed.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest

DESELECTED = Path(__file__).with_name("deselected.txt")

#: shap's names -> the facade's class names, bound on ``shap`` and ``shap.explainers``
NAMES = {
    "Explainer": "Explainer",
    "TreeExplainer": "TreeExplainer",
    "Tree": "TreeExplainer",
    "LinearExplainer": "LinearExplainer",
    "Linear": "LinearExplainer",
    "KernelExplainer": "KernelExplainer",
    "Kernel": "KernelExplainer",
    "DeepExplainer": "DeepExplainer",
    "Deep": "DeepExplainer",
}


class NetworkRefused(OSError):
    """A connection to a host off this machine, refused during shap's tests."""


def _local(host: Any) -> bool:
    if host is None:
        return True
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard_network() -> None:
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
            raise NetworkRefused(f"network: a connection to {address[0]} was refused")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _local(host):
            raise NetworkRefused(f"network: a lookup of {host} was refused")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


def _rebind() -> list[str]:
    import shap
    import shap.explainers

    import shapgov.shap as facade

    bound = []
    for name, target in NAMES.items():
        for module in (shap, shap.explainers):
            if hasattr(module, name) and hasattr(facade, target):
                setattr(module, name, getattr(facade, target))
                bound.append(f"{module.__name__}.{name}")
    return bound


def _deselect_list() -> dict[str, str]:
    """``node id -> reason`` from ``deselected.txt`` (``# reason`` lines head a group)."""
    out: dict[str, str] = {}
    reason = ""
    for raw in DESELECTED.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            reason = line.lstrip("# ").strip()
            continue
        out[line] = reason
    return out


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shapgov-check-deselected",
        action="store_true",
        help="fail when an entry of deselected.txt names no collected test (a full run)",
    )


def pytest_configure(config: pytest.Config) -> None:
    _guard_network()
    bound = _rebind()
    config.stash[_BOUND] = bound


_BOUND = pytest.StashKey[list]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    import shap

    return [
        f"shap {shap.__version__}: explainer names rebound to shapgov.shap: "
        + ", ".join(config.stash.get(_BOUND, []))
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    listed = _deselect_list()
    keep, drop = [], []
    for item in items:
        (drop if _listed(item.nodeid, listed) else keep).append(item)
    if config.getoption("--shapgov-check-deselected"):
        stale = [e for e in listed if not any(_listed(i.nodeid, {e: ""}) for i in items)]
        if stale:
            raise pytest.UsageError(f"deselected.txt names tests shap no longer has: {stale}")
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _listed(nodeid: str, listed: dict[str, str]) -> bool:
    # an entry names a test (all its parameters) or one parametrized item
    return nodeid in listed or nodeid.split("[")[0] in listed


def _refused(exc: BaseException | None) -> NetworkRefused | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NetworkRefused):
            return exc
        reason = getattr(exc, "reason", None)
        if isinstance(reason, BaseException):
            found = _refused(reason)
            if found is not None:
                return found
        exc = exc.__cause__ or exc.__context__
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if call.excinfo is not None and report.failed:
        refused = _refused(call.excinfo.value)
        if refused is not None:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, str(refused))
    return report


def _skip_kind(report: pytest.TestReport) -> str:
    message = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if message.startswith("network:"):
        return "tried the network"
    if "cuda" in message.lower():
        return "CUDA variant (no GPU)"
    if "could not import" in message.lower():
        return "library not installed: " + message.split("'")[1] if "'" in message else message
    return message


def pytest_terminal_summary(terminalreporter: Any) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    kinds: dict[str, int] = {}
    for report in skipped:
        kind = _skip_kind(report)
        kinds[kind] = kinds.get(kind, 0) + 1
    terminalreporter.write_sep("-", "shapgov: skipped shap tests by reason")
    for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{count:4d}  {kind}")
