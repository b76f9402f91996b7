"""``shapgov.compare_versions`` / ``shapgov compare``: a challenger against the champion,
from the registry, logged as a comparison set on the challenger's run.

Models are given as fitted objects or registry URIs (``models:/NAME@champion``,
``models:/NAME/3``), loaded with MLflow and explained through their flavor's own model
(:func:`shapgov.mlflow.evaluator.native_model`). The comparison itself is
:func:`shapgov.analyses.versions.compare_versions`.

With ``log`` (both models registered), the comparison set goes to the challenger's source
run under ``shapgov-comparison/v<champion version>/``: ``comparison.json`` (the summary:
game, space, hashes, agreement, PSI/KS, decisions, calibration; the metrics and the impact
table), ``comparison_rows.parquet`` (per row), ``rows.parquet`` and ``background.parquet``
(the rows compared and the background, so that the comparison can be run again from the
registry alone) and ``manifest.json`` (every file's SHA-256, both versions, both
versions' set manifests' SHA-256 where they have sets). :func:`reproduce_comparison`
loads both versions again, reads the stored rows (hash-checked) and compares every
number bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import AlteredSetError, InputError

#: Where comparison sets go in the challenger's run.
COMPARISONS = "shapgov-comparison"
FILES = ("comparison.json", "comparison_rows.parquet", "rows.parquet", "background.parquet")


@dataclass(frozen=True)
class Loaded:
    """A model to compare: the model explained, and its registry version (if any)."""

    model: Any
    name: str | None = None
    version: str | None = None
    run_id: str | None = None


def load(model: Any, *, client: Any = None) -> Loaded:
    """A fitted model as is, or a ``models:/`` URI loaded from the registry.

    :raises InputError: A URI that names no registered version.
    """
    if not isinstance(model, str):
        return Loaded(model)
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from shapgov.mlflow.evaluator import native_model

    if not model.startswith("models:/"):
        raise InputError(f"{model!r}: give a fitted model or models:/NAME/VERSION (or @ALIAS)")
    client = client or MlflowClient()
    rest = model.removeprefix("models:/")
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, version = rest.rsplit("/", 1)
            mv = client.get_model_version(name, version)
    except (MlflowException, ValueError) as err:
        raise InputError(f"{model} names no registered model version: {err}") from err
    native = native_model(mlflow.pyfunc.load_model(f"models:/{mv.name}/{mv.version}"))
    return Loaded(native, mv.name, str(mv.version), mv.run_id)


def compare_versions(
    champion: Any,
    challenger: Any,
    X: Any,
    *,
    y: Any = None,
    background: Any = None,
    decision: Any = None,
    columns: dict[str, str] | None = None,
    k: int = 5,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    random_state: int = 0,
    time: Any = None,
    freq: str = "M",
    log: bool = False,
    client: Any = None,
) -> Any:
    """Compare ``challenger`` with ``champion`` on ``X`` in one game
    (:func:`shapgov.analyses.versions.compare_versions`); models as fitted objects or
    ``models:/`` URIs.

    :param log: Log the comparison set on the challenger's run (both must be registered
        versions); the result's ``summary["logged_to"]`` says where.
    :returns: :class:`~shapgov.analyses.versions.VersionComparison`.
    :raises InputError: A URI naming no version; ``log`` without two registered versions.
    """
    from shapgov.analyses.versions import compare_versions as compare

    cp, ch = load(champion, client=client), load(challenger, client=client)
    if isinstance(time, str) and isinstance(X, pd.DataFrame) and time in X.columns:
        time, X = X[time], X.drop(columns=[time])
    result = compare(
        cp.model, ch.model, X, y=y, background=background, decision=decision,
        columns=columns, k=k, n_bootstrap=n_bootstrap, confidence=confidence,
        random_state=random_state, time=time, freq=freq,
    )  # fmt: skip
    if time is not None:
        result.summary["settings"]["freq"] = freq
    result.summary["champion"] = {"name": cp.name, "version": cp.version}
    result.summary["challenger"] = {"name": ch.name, "version": ch.version}
    if log:
        if cp.version is None or ch.version is None or ch.run_id is None:
            raise InputError("log=True compares two registered versions: pass models:/ URIs")
        if background is None:
            background = X.sample(min(200, len(X)), random_state=random_state)
        where = log_comparison(result, cp, ch, X, background, y, decision, time=time, client=client)
        result.summary["logged_to"] = where
    return result


def _set_manifest(client: Any, run_id: str | None) -> str | None:
    """SHA-256 of the shapgov set's manifest in a run, or None."""
    if run_id is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "shapgov/manifest.json", tmp)
        except Exception:
            return None
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def log_comparison(
    result: Any, cp: Loaded, ch: Loaded, X: pd.DataFrame, background: pd.DataFrame,
    y: Any, decision: Any, *, time: Any = None, client: Any = None,
) -> str:  # fmt: skip
    """Write the comparison set and log it to the challenger's run; returns its path."""
    from mlflow.tracking import MlflowClient

    from shapgov.mlflow.artifacts import sha256_file, write_parquet
    from shapgov.sinks import strict_json

    client = client or MlflowClient()
    where = f"{COMPARISONS}/v{cp.version}"
    with tempfile.TemporaryDirectory(prefix="shapgov-compare-") as tmp:
        d = Path(tmp)
        payload = {**result.to_dict(), "decision": None if decision is None else decision.to_dict()}
        (d / "comparison.json").write_text(strict_json.dumps(payload, indent=2, sort_keys=True))
        rows = result.rows.copy()
        rows["row"] = rows["row"].astype(str)
        write_parquet(d / "comparison_rows.parquet", rows)
        stored = X.copy()
        if y is not None:
            stored["__y__"] = np.asarray(y)
        if time is not None:
            stored["__time__"] = pd.to_datetime(pd.Series(np.asarray(time))).to_numpy()
        write_parquet(d / "rows.parquet", stored)
        write_parquet(d / "background.parquet", background)
        manifest = {
            "champion": {"name": cp.name, "version": cp.version,
                         "set_manifest_sha256": _set_manifest(client, cp.run_id)},
            "challenger": {"name": ch.name, "version": ch.version,
                           "set_manifest_sha256": _set_manifest(client, ch.run_id)},
            "artifacts": {f: sha256_file(d / f) for f in FILES},
            "settings": result.summary.get("settings"),
        }  # fmt: skip
        (d / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        client.log_artifacts(ch.run_id, str(d), where)
    return where


def reproduce_comparison(
    name: str, champion_version: str | int, challenger_version: str | int, *, client: Any = None
) -> tuple[bool, list[str]]:
    """Run the logged comparison again from the registry alone (both versions loaded
    again, the stored rows and background read back with their hashes checked) and
    compare every figure bit for bit: ``(identical, differences)``.

    :raises AlteredSetError: A stored file does not match the comparison's manifest.
    :raises InputError: No comparison of these versions is logged.
    """
    from mlflow.tracking import MlflowClient

    from shapgov.adverse_action.decision import Decision
    from shapgov.mlflow.artifacts import sha256_file

    client = client or MlflowClient()
    mv = client.get_model_version(name, str(challenger_version))
    where = f"{COMPARISONS}/v{champion_version}"
    with tempfile.TemporaryDirectory(prefix="shapgov-recompare-") as tmp:
        try:
            local = Path(client.download_artifacts(mv.run_id, where, tmp))
        except Exception as err:
            raise InputError(
                f"no comparison of {name} v{champion_version} is logged on "
                f"v{challenger_version}'s run; run shapgov compare with logging first"
            ) from err
        manifest = json.loads((local / "manifest.json").read_text())
        for file, digest in manifest["artifacts"].items():
            if sha256_file(local / file) != digest:
                raise AlteredSetError(f"{file} of the comparison does not match its manifest hash")
        stored = json.loads((local / "comparison.json").read_text())
        rows = pd.read_parquet(local / "rows.parquet")
        background = pd.read_parquet(local / "background.parquet")
    y = rows.pop("__y__").to_numpy() if "__y__" in rows.columns else None
    time = rows.pop("__time__") if "__time__" in rows.columns else None
    decision = None
    if stored.get("decision"):
        decision = Decision(**{k: v for k, v in stored["decision"].items() if k != "rule"})
    settings = stored["summary"]["settings"]
    again = compare_versions(
        f"models:/{name}/{champion_version}", f"models:/{name}/{challenger_version}", rows,
        y=y, background=background, decision=decision, k=stored["summary"]["k"],
        n_bootstrap=settings["n_bootstrap"], confidence=settings["confidence"],
        random_state=settings["random_state"],
        time=time, freq=settings.get("freq", "M"), client=client,
    )  # fmt: skip
    from shapgov.sinks import strict_json

    fresh = json.loads(strict_json.dumps({**again.to_dict(), "decision": stored.get("decision")}))
    keys = tuple(k for k in ("summary", "impact", "metrics", "windows") if k in stored)
    differences = [key for key in keys if _strip(fresh[key]) != _strip(stored[key])]
    return not differences, differences


def _strip(value: Any) -> Any:
    """Drop what a re-run may not reproduce by design (where it was logged)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "logged_to"}
    return value
