"""Re-derive an approved explanation from the registry alone.

A model-risk team must be able to show that the values it approved are the model's:
:func:`reproduce` takes a registered version, reads its artifact set (every file checked
against the manifest), loads the model through its own flavor, explains the explained
rows the set stores (``values.parquet``) against the background rows it stores
(``background.parquet``, checked against the game's SHA-256) in the set's game, and
compares the values with those approved. Nothing but the registry is needed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shapgov.errors import InputError

#: Exact values are reproduced to this many units of the largest |value| (float64
#: rounding of the sums, not of the method).
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Reproduction:
    """The comparison of re-derived values with the approved ones."""

    model: str
    version: str
    rows: int
    features: int
    max_abs_difference: float
    tolerance: float
    method: str  # "exact" or "sampled"

    @property
    def reproduced(self) -> bool:
        return self.max_abs_difference <= self.tolerance

    def describe(self) -> str:
        verdict = "reproduced" if self.reproduced else "NOT reproduced"
        return (
            f"{self.model} version {self.version}: {verdict} from the registry alone: "
            f"{self.rows} rows x {self.features} features re-explained, max |difference| "
            f"{self.max_abs_difference:.3g} (tolerance {self.tolerance:.3g}, {self.method} "
            "values)"
        )


def reproduce(name: str, version: str | int, *, client: Any = None) -> Reproduction:
    """Explain registered model ``name`` at ``version`` (a number or an alias) again from
    what the registry holds, and compare with the values of its artifact set.

    Exact values must agree to :data:`RELATIVE_TOLERANCE` of the largest |value|; sampled
    values (Kernel's sampling mode) are re-derived with the default seed and must agree
    within 4 of their largest standard error.

    :returns: The :class:`Reproduction`; ``.reproduced`` says whether the values agree.
    :raises InputError: No such version or alias, the version has no set, a set file was
        altered, the set's game cannot be replayed (an offset or exposure, which the set
        does not store), or the set predates stored backgrounds.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from shapgov.combination.explanation import Explanation
    from shapgov.engine import explain
    from shapgov.mlflow.evaluator import native_model
    from shapgov.planning.stored_background import FILE, read_background
    from shapgov.sinks.artifact_set import ArtifactSet

    client = client or MlflowClient()
    try:  # a version number, or an alias such as "champion"
        if str(version).isdigit():
            mv = client.get_model_version(name, str(version))
        else:
            mv = client.get_model_version_by_alias(name, str(version))
    except MlflowException as err:
        raise InputError(
            f"{name} has no version or alias {version!r}: {getattr(err, 'message', err)}"
        ) from err
    version = mv.version
    with tempfile.TemporaryDirectory(prefix="shapgov-reproduce-") as tmp:
        try:
            local = Path(client.download_artifacts(mv.run_id, "shapgov", tmp))
        except Exception as err:
            raise InputError(
                f"{name} version {version} has no shapgov artifact set in run {mv.run_id}"
            ) from err
        aset = ArtifactSet.read(local)  # every listed file checked against its hash
        if aset.explanation is None:
            raise InputError(f"{name} version {version}: the set holds no values (failed check)")
        approved = Explanation.read_parquet(local / "values.parquet")
        game = aset.manifest.get("game") or {}
        applied = approved.additivity.applied or {}
        if applied.get("offset") or applied.get("exposure"):
            raise InputError(
                "the set was explained with an offset or exposure, which it does not store; "
                "re-explain with them by hand"
            )
        background = weights = None
        if (
            game.get("feature_perturbation") == "interventional"
            and game.get("background_source") != "explained rows"
        ):
            if FILE not in aset.manifest.get("artifacts", {}):
                raise InputError(
                    "the set does not store its background rows (logged before shapgov stored "
                    "them); log a new set to make it reproducible"
                )
            background, weights = read_background(
                local / FILE, sha256=game.get("background_sha256")
            )
        model = native_model(mlflow.pyfunc.load_model(mv.source))
        rows = approved.data
        capping = applied.get("capping")
        again = explain(
            model,
            rows,
            background=background,
            background_weights=weights,
            feature_perturbation=game.get("feature_perturbation", "auto"),
            game_link=game.get("link", "identity"),
            output=game.get("output", "margin"),
            capping=None if capping is None else tuple(capping),
            opaque=bool(game.get("opaque", False)),
            explainer_options=game.get("explainer_options") or None,
        )
    diff = np.abs(np.asarray(again.values) - np.asarray(approved.values))
    scale = max(1.0, float(np.max(np.abs(approved.values))))
    tolerance, method = RELATIVE_TOLERANCE * scale, "exact"
    if approved.std_error is not None:  # sampled: the same seed, within 4 standard errors
        tolerance, method = 4 * float(np.max(approved.std_error)) + tolerance, "sampled"
    return Reproduction(
        name, str(version), len(rows), rows.shape[1], float(diff.max()), tolerance, method
    )
