"""A logged shapgov artifact set, read back from a directory with every file it lists
checked against the manifest's SHA-256: what the compliance report, reproduction and the
reasons' command line read (never live objects)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from shapgov.combination.explanation import Explanation
from shapgov.combination.policy import AdditivityReport
from shapgov.errors import AlteredSetError, InputError


@dataclass(frozen=True)
class ArtifactSet:
    """A logged shapgov artifact set, read back from a directory."""

    directory: Path
    manifest: dict[str, Any]
    additivity: AdditivityReport
    explanation: Explanation | None  # None for a failed set: values are never logged
    vertices: list[dict[str, Any]]
    shap_impact: pd.DataFrame | None
    permutation: pd.DataFrame | None
    xemp: dict[str, Any] | None
    comparison: dict[str, Any] | None
    over_time: dict[str, Any] | None = None
    fairness: dict[str, Any] | None = None  # fairness.json: the fair-lending summary

    @classmethod
    def read(cls, directory: str | Path) -> ArtifactSet:
        """Read the set in ``directory``: only the files its manifest lists, each checked
        against its SHA-256 (files a manifest does not list, such as leftovers of an
        earlier set in the same run, are ignored).

        :raises InputError: There is no manifest, or it does not parse.
        :raises AlteredSetError: A listed file is missing or altered (also an
            ``InputError``).
        """
        from shapgov.mlflow.artifacts import MANIFEST

        directory = Path(directory)
        if not (directory / MANIFEST).exists():
            raise InputError(
                f"{directory} holds no shapgov artifact set (no {MANIFEST}); log one with "
                "shapgov.mlflow.log_explanation or 'shapgov explain'"
            )
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
            manifest["artifacts"] = dict(manifest["artifacts"])
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{MANIFEST} in {directory} is not a valid manifest: {err}") from err
        return cls.listed_in(directory, manifest)

    @classmethod
    def listed_in(cls, directory: str | Path, manifest: dict[str, Any]) -> ArtifactSet:
        """The set of the files ``manifest`` lists in ``directory``, each checked against
        its SHA-256, as :meth:`read` reads it: also for a set whose manifest is not
        written yet (the report's figures are drawn from the files before it)."""
        from shapgov.mlflow.artifacts import sha256_file

        directory = Path(directory)
        listed = dict(manifest["artifacts"])
        for name, digest in sorted(listed.items()):
            path = directory / name
            if not path.exists() or sha256_file(path) != digest:
                raise AlteredSetError(
                    f"{name} is missing or does not match its manifest hash: the set was "
                    "altered after it was logged; log a new set instead of reporting this one"
                )

        def load(name: str) -> Any:
            return json.loads((directory / name).read_text()) if name in listed else None

        if "additivity.json" not in listed:
            raise InputError(f"the manifest in {directory} lists no additivity.json")
        impact, permutation = load("feature_impact.json"), load("permutation_impact.json")
        values = directory / "values.parquet"
        mismatch = None
        if "additivity.parquet" in listed:
            mismatch = _read_parquet(directory / "additivity.parquet")["normalized_mismatch"]
        return cls(
            directory=directory,
            manifest=manifest,
            additivity=AdditivityReport.from_dict(load("additivity.json"), row_mismatch=mismatch),
            explanation=Explanation.read_parquet(values) if values.name in listed else None,
            vertices=load("vertices.json") or [],
            shap_impact=None if impact is None else pd.DataFrame(impact["features"]),
            permutation=None if permutation is None else pd.DataFrame(permutation["features"]),
            xemp=load("xemp.json"),
            comparison=load("comparison.json"),
            over_time=load("over_time.json"),
            fairness=load("fairness.json"),
        )

    def table(self, name: str, filters: Any = None) -> pd.DataFrame | None:
        """A parquet file of the set (``None`` when the manifest does not list it), read
        with pyarrow ``filters`` so that only the rows asked for are kept."""
        if name not in self.manifest.get("artifacts", {}):
            return None
        return _read_parquet(self.directory / name, filters)


def _read_parquet(path: Path, filters: Any = None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(path, filters=filters).to_pandas()


def sha256_bytes(data: bytes) -> str:
    """SHA-256 of ``data``, hex."""
    return hashlib.sha256(data).hexdigest()
