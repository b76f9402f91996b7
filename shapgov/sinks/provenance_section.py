"""The compliance report's section "Versions and provenance": the library versions when
the set was logged and now, and the ids and times of the set, run, model version and
report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shapgov._version import __version__


def provenance_section(aset: Any, run: Any, model_version: Any) -> dict[str, Any]:
    """Libraries (logged and now) and ids (set, run, model version, report) of ``aset``
    (an :class:`~shapgov.sinks.artifact_set.ArtifactSet`)."""
    from shapgov.versions import library_versions

    def ms(stamp: int | None) -> str:
        if not stamp:
            return "–"
        return datetime.fromtimestamp(stamp / 1000, UTC).isoformat(timespec="seconds")

    logged = aset.manifest.get("environment", {})
    now = library_versions(logged)
    libraries = [
        {"name": name, "logged": logged.get(name, "–"), "now": now.get(name, "–")}
        for name in dict.fromkeys([*logged, *now])
    ]
    ids = {"set created": aset.manifest.get("created", "–")}
    if run is not None:
        ids.update(
            {
                "run id": run.info.run_id,
                "run name": run.info.run_name or "–",
                "experiment id": run.info.experiment_id,
                "run started": ms(run.info.start_time),
                "run ended": ms(run.info.end_time),
            }
        )
    if model_version is not None:
        ids.update(
            {
                "registered model": model_version.name,
                "model version": str(model_version.version),
                "model source": model_version.source,
                "version created": ms(model_version.creation_timestamp),
            }
        )
    ids["report generated"] = datetime.now(UTC).isoformat(timespec="seconds")
    ids["report shapgov version"] = __version__
    return {"libraries": libraries, "ids": ids}
