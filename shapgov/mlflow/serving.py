"""Explaining models: MLflow pyfunc models that return governed explanations with every
prediction (DataRobot's "prediction servers" column of the compatibility matrix).

:func:`log_explaining_model` wraps a registered, approved model version: the original
model (loaded through its own flavor), the approved set's game (background, explained
space, feature perturbation) and the manifest SHA-256 the approval judged. Its ``predict``
runs :class:`shapgov.serving.ServedExplainer`: the additivity policy per row, so one row
never fails a request. ``mlflow models serve -m models:/NAME@champion --env-manager local``
serves it as any pyfunc model.

When the approved set holds adverse-action reasons (``reasons.json`` and the files
:func:`shapgov.adverse_action.stored.read_reasons` reads), the explaining model carries
them in ``reasons/`` (copied from the set, each checked against the set's manifest when
logged and against the config's hashes when loaded), and every answer adds ``decision``,
``reason_status``, ``reason_1..k`` and ``reason_statement_1..k`` per row
(``shapgov.serving.reason_columns``; empty text where a row has fewer reasons),
derived as the set's were.

Nothing of shapgov's is pickled: the model is logged "from code"
(``shapgov.mlflow.explaining_model``), its state is ``config.json``,
``background.parquet``, ``reasons/`` (when the set has reasons) and the original model's
directory.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel

from shapgov.errors import InputError, UnapprovedModelError
from shapgov.mlflow import signing
from shapgov.mlflow.approval import EXPLAINING_MODELS_TAG, explaining_models
from shapgov.planning.stored_background import read_background, write_background

CONFIG = "config.json"
BACKGROUND = "background.parquet"
MODEL = "model"
#: The explaining model's folder of the set's reason files (when the set has reasons).
REASONS = "reasons"
#: The explaining model's metadata key of the request schema clients follow (a list of
#: MLflow column specs: the original model's, categories of any type, optional keys).
REQUEST_SCHEMA = "shapgov_request_schema"
__all__ = ["ExplainingModel", "UnapprovedModelError", "log_explaining_model"]

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))$")


def _version(model_uri: str, client: Any) -> Any:
    match = _MODELS_URI.match(model_uri)
    if match is None:
        raise InputError(
            f"{model_uri!r} is not a registered model version; pass models:/NAME/VERSION or "
            "models:/NAME@ALIAS (approval is recorded on registered versions)"
        )
    if match["version"]:
        return client.get_model_version(match["name"], match["version"])
    return client.get_model_version_by_alias(match["name"], match["alias"])


def _approved_set(mv: Any, client: Any, tmp: Path, allow_unapproved: bool) -> dict[str, Any]:
    """The manifest of the version's set, checked against the approval's hash."""
    from shapgov.mlflow.artifacts import MANIFEST, sha256_file

    tags = dict(mv.tags or {})
    verdict = tags.get("shapgov.approval")
    approved_sha = tags.get("shapgov.approval.manifest_sha256")
    try:
        local = Path(client.download_artifacts(mv.run_id, f"shapgov/{MANIFEST}", str(tmp)))
    except Exception as err:
        if allow_unapproved:  # served in the game of the background given; no set backs it
            return {"manifest": {}, "manifest_sha256": None, "approved": False}
        raise UnapprovedModelError(
            f"{mv.name} v{mv.version}: its run holds no shapgov artifact set ({err}); log one "
            "with shapgov.mlflow.explain_and_log (or 'shapgov explain --model-uri "
            f"models:/{mv.name}/{mv.version} --data ROWS') and approve it, or pass "
            "allow_unapproved=True with background= (recorded in the model)"
        ) from err
    manifest_sha = sha256_file(local)
    approved = verdict == "approved" and approved_sha == manifest_sha
    # where the approval key is held, only a verdict that verifies counts: signed (not a
    # tag set by hand, nor one copied from another version), standing in the ledger, and
    # over a set whose every file is as approved
    forged = []
    if approved and signing.verifying_keys():
        forged = signing.verify_version(mv.name, mv.version, client=client).reasons
    if (forged or not approved) and not allow_unapproved:
        why = (
            f"its verdict is {verdict!r}"
            if verdict != "approved"
            else "its set changed after the approval (manifest hash differs)"
            if approved_sha != manifest_sha
            else f"its verdict does not verify: {forged[0]}"
        )
        raise UnapprovedModelError(
            f"{mv.name} v{mv.version} is not approved ({why}); run 'shapgov approve "
            f"{mv.name} {mv.version}' or pass allow_unapproved=True (recorded in the model)"
        )
    manifest = json.loads(local.read_text())
    return {
        "manifest": manifest,
        "manifest_sha256": manifest_sha,
        "approved": approved and not forged,
    }


def _refuse_offsets(manifest: dict[str, Any], mv: Any, client: Any, tmp: Path) -> None:
    """A set explained with an offset or exposure cannot be served: a request carries
    neither, so the served values would not be the approved game's.

    :raises InputError: The set's additivity audit applied an offset or an exposure.
    """
    if "additivity.json" not in (manifest.get("artifacts") or {}):
        return
    path = client.download_artifacts(mv.run_id, "shapgov/additivity.json", str(tmp))
    applied = json.loads(Path(path).read_text()).get("applied") or {}
    given = [name for name in ("offset", "exposure") if applied.get(name)]
    if given:
        raise InputError(
            f"{mv.name} v{mv.version} was explained with an {' and '.join(given)}, which a "
            "served request does not carry, so the served values would not be the approved "
            "ones; explain the model for serving without it (or serve its predictions "
            "without explanations)"
        )


def _background(
    game: dict[str, Any],
    background: Any,
    manifest: dict[str, Any],
    mv: Any,
    client: Any,
    tmp: Path,
) -> tuple[pd.DataFrame, Any]:
    """The approved game's background rows and weights: by default those the set stores
    (``background.parquet``, or its explained rows when the game used them), checked
    against the game's SHA-256; ``background`` given instead is checked the same way."""
    from shapgov.combination.explanation import Explanation
    from shapgov.planning.game import frame_sha256
    from shapgov.planning.stored_background import FILE, read_background

    expected = game.get("background_sha256")
    if not manifest:  # no set backs this model: the background given defines the game
        if background is None:
            raise InputError(
                f"{mv.name} v{mv.version} has no shapgov artifact set, so no background to "
                "serve with; pass background= (for example a sample of the training rows)"
            )
        frame = background if isinstance(background, pd.DataFrame) else pd.DataFrame(background)
        return frame, None
    if background is None:
        if FILE in (manifest.get("artifacts") or {}):
            path = client.download_artifacts(mv.run_id, f"shapgov/{FILE}", str(tmp))
            return read_background(path, sha256=expected)
        if game.get("background_source") != "explained rows":
            raise InputError(
                "the approved set's background is not stored with it (a set logged before "
                "shapgov stored backgrounds); pass background= (the rows with SHA-256 "
                f"{expected}), or log and approve a new set"
            )
        path = client.download_artifacts(mv.run_id, "shapgov/values.parquet", str(tmp))
        return Explanation.read_parquet(path).data.reset_index(drop=True), None
    frame = background if isinstance(background, pd.DataFrame) else pd.DataFrame(background)
    if game.get("background_weighted"):
        raise InputError(
            "the approved set's background is weighted; leave background= out so its stored "
            "rows and weights are used"
        )
    if expected and frame_sha256(frame) != expected:
        raise InputError(
            "this background is not the one the approved set was explained with (SHA-256 "
            f"{frame_sha256(frame)[:12]}... against {expected[:12]}...); leave background= "
            "out to use the rows the set stores"
        )
    return frame, None


def _set_reasons(
    manifest: dict[str, Any], mv: Any, client: Any, tmp: Path
) -> tuple[Path | None, dict[str, str] | None]:
    """The set's reason files copied into ``tmp/reasons`` and their SHA-256 by name, each
    checked against the set's manifest; ``(None, None)`` when the set holds no reasons.

    :raises UnapprovedModelError: A reason file is missing from the manifest, or is not
        the file it lists (the set changed after it was logged).
    """
    from shapgov.adverse_action.stored import FILES
    from shapgov.mlflow.artifacts import sha256_file

    listed = manifest.get("artifacts") or {}
    if "reasons.json" not in listed:
        return None, None
    folder = tmp / REASONS
    folder.mkdir()
    hashes: dict[str, str] = {}
    for name in FILES:
        expected = listed.get(name)
        got = None
        if expected is not None:
            path = client.download_artifacts(mv.run_id, f"shapgov/{name}", str(tmp / "set"))
            got = sha256_file(Path(path))
        if got is None or got != expected:
            said = "is not in its manifest" if expected is None else "differs from its manifest"
            raise UnapprovedModelError(
                f"{mv.name} v{mv.version}: the set's {name} {said}, so its reasons are not "
                "the approved ones and cannot be served; log and approve a new set"
            )
        shutil.copyfile(path, folder / name)
        hashes[name] = got
    return folder, hashes


def log_explaining_model(
    model_uri: str,
    *,
    name: str = "explaining_model",
    background: Any = None,
    top_k: int = 3,
    keys: Sequence[str] = (),
    allow_unapproved: bool = False,
    registered_model_name: str | None = None,
) -> Any:
    """Log (to the active run) a pyfunc model that serves governed explanations of the
    approved model version ``model_uri``.

    When the set holds adverse-action reasons, the model carries its reason files and
    every answer ends with ``decision``, ``reason_status``, ``reason_1..k`` and
    ``reason_statement_1..k`` (see the module docstring); without, no such columns.

    :param model_uri: ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``.
    :param name: The logged model's name in the run.
    :param background: Leave out: the approved set's background rows and weights are
        read from the set (``background.parquet``, checked against the game's SHA-256;
        its explained rows where the game used them). Given, it must be those rows (or,
        for a version without a set, it defines the served game).
    :param top_k: Prediction Explanations per served row (0: none).
    :param keys: Columns a request may carry to name its rows (e.g. ``["applicant_id"]``):
        echoed first in every answer, never explained.
    :param allow_unapproved: Log for a version without an approved verdict, or without a
        set at all when ``background=`` is given (recorded in the model's config as
        ``"approved": false`` and ``"backed_by_set": false``).
    :param registered_model_name: Also register the logged model under this name.
    :returns: MLflow's ``ModelInfo`` of the logged model.
    :raises UnapprovedModelError: The version is not approved, or its set changed since.
    :raises InputError: A bad URI, or a background that is not the approved one.
    """
    from mlflow.tracking import MlflowClient

    from shapgov._version import __version__

    client = MlflowClient()
    mv = _version(model_uri, client)
    with tempfile.TemporaryDirectory(prefix="shapgov-serving-") as tmp:
        tmp = Path(tmp)
        approved = _approved_set(mv, client, tmp, allow_unapproved)
        manifest = approved["manifest"]
        game = manifest.get("game") or {}
        _refuse_offsets(manifest, mv, client, tmp)
        bg, weights = _background(game, background, manifest, mv, client, tmp)
        reasons_dir, reason_hashes = _set_reasons(manifest, mv, client, tmp)
        model_dir = mlflow.artifacts.download_artifacts(mv.source, dst_path=str(tmp / MODEL))
        write_background(tmp / BACKGROUND, bg, weights=weights)
        config = {
            "model_uri": model_uri,
            "model_name": mv.name,
            "model_version": str(mv.version),
            "manifest_sha256": approved["manifest_sha256"],
            "approved": approved["approved"],
            "backed_by_set": bool(manifest),
            "game": game,
            "plugins": manifest.get("plugins"),
            "feature_perturbation": game.get("feature_perturbation", "auto"),
            "game_link": game.get("link", "identity"),
            "output": game.get("output", "margin"),
            "top_k": int(top_k),
            "keys": [str(k) for k in keys],
            "reasons": _reasons_config(reasons_dir, reason_hashes),
            "shapgov_version": __version__,
        }
        stored = _read_reasons(reasons_dir, config)
        # built once: its output is the schema
        served = _served(model_dir, bg, weights, config, reasons=stored)
        sample = served.explain(bg.iloc[: min(len(bg), 5)])
        if not manifest:  # the game and plugins are those of the background given, recorded
            config["game"], config["plugins"] = served.game_, served.plugins()
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
        original = mlflow.models.get_model_info(mv.source).signature
        # No input schema for MLflow to enforce: its CSV parser cannot read a column of any
        # type, and a string spec refuses the category dtype in process; the explaining
        # model checks requests itself (ServedExplainer: columns named, categories
        # recoded, lossless casts). The schema a client should follow is documented in
        # the model's metadata. The keys are echoed as sent, of any type: no output spec
        # (the Spark UDF cannot type such a column, and the caller's table has them).
        requests = request_schema(bg, original, keys=config["keys"])
        signature = ModelSignature(None, output_schema(sample, bg, config["keys"], served))
        artifacts = {MODEL: model_dir, CONFIG: str(tmp / CONFIG), BACKGROUND: str(tmp / BACKGROUND)}
        if reasons_dir is not None:
            artifacts[REASONS] = str(reasons_dir)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(Path(__file__).with_name("explaining_model.py")),
            artifacts=artifacts,
            signature=signature,
            metadata={REQUEST_SCHEMA: requests.to_dict()},
            pip_requirements=[f"shapgov=={__version__}"],
            registered_model_name=registered_model_name,
        )
    record = {
        "model_uri": info.model_uri,
        "manifest_sha256": approved["manifest_sha256"],
        "registered_model_name": registered_model_name,
    }
    client.set_tag(
        info.run_id,
        f"shapgov.explaining_model.{name}",
        json.dumps({"model_uri": model_uri, "manifest_sha256": approved["manifest_sha256"]}),
    )
    listed = [m for m in explaining_models(mv) if m.get("model_uri") != info.model_uri]
    client.set_model_version_tag(
        mv.name, str(mv.version), EXPLAINING_MODELS_TAG, json.dumps([*listed, record])[:5000]
    )
    return info


def _reasons_config(folder: Path | None, hashes: dict[str, str] | None) -> Any:
    """The config's record of the carried reasons: file hashes, the catalogue, the rule,
    the limits and the served columns; ``None`` without reasons."""
    if folder is None or hashes is None:
        return None
    from shapgov.serving import reason_columns

    summary = json.loads((folder / "reasons.json").read_text())
    return {
        "files": hashes,
        "catalogue": summary.get("catalogue"),
        "decision": summary.get("decision"),
        "reference": summary.get("reference"),
        "max_reasons": int(summary["max_reasons"]),
        "min_share": float(summary["min_share"]),
        "columns": reason_columns(int(summary["max_reasons"])),
    }


def _read_reasons(folder: Any, config: dict[str, Any]) -> dict[str, Any] | None:
    """The carried reasons (:func:`~shapgov.adverse_action.stored.read_reasons`), each
    file checked against the config's SHA-256; ``None`` when the model carries none.

    :raises InputError: A reason file is missing or altered.
    """
    recorded = config.get("reasons")
    if not recorded:
        return None
    from shapgov.adverse_action.stored import read_reasons
    from shapgov.mlflow.artifacts import sha256_file

    folder = Path(folder) if folder is not None else None
    for name, expected in recorded["files"].items():
        path = None if folder is None else folder / name
        if path is None or not path.exists() or sha256_file(path) != expected:
            raise InputError(
                f"the explaining model's reason file {name} is missing or altered (not the "
                "SHA-256 its config records); log the explaining model again"
            )
    return read_reasons(folder)


def output_schema(
    sample: pd.DataFrame, background: pd.DataFrame, keys: Sequence[str], served: Any
) -> Any:
    """The explaining model's output schema: inferred from a sample answer (without the
    keys: echoed as sent, of any type), and the reason columns as text (the sample's rows
    may have no reasons to infer them from)."""
    from mlflow.types.schema import ColSpec, DataType, Schema

    reasons = served.reason_columns()
    inferred = mlflow.models.infer_signature(
        background.iloc[:5], sample.drop(columns=[*keys, *reasons])
    ).outputs
    specs = [ColSpec(DataType.string, c) for c in reasons]
    return Schema([*inferred.inputs, *specs])


def check_plugins(approved: list[dict[str, Any]], used: list[dict[str, Any]]) -> None:
    """Refuse to serve with plugins other than the approved set's (name and version).

    :raises PluginError: A plugin the served route uses is missing from the approved list
        or has another version.
    """
    from shapgov.errors import PluginError

    allowed = {(p.get("name"), p.get("version")) for p in approved}
    names = {p.get("name"): p.get("version") for p in approved}
    for plugin in used:
        if (plugin.get("name"), plugin.get("version")) not in allowed:
            was = names.get(plugin.get("name"))
            how = f"with {was}" if was is not None else "without it"
            raise PluginError(
                f"plugin {plugin.get('name')!r} {plugin.get('version')} serves this model, but "
                f"the approved set was explained {how}; install the approved plugins or "
                "log a new explaining model from a version approved with these"
            )


def request_schema(background: pd.DataFrame, original: Any, *, keys: Sequence[str]) -> Any:
    """The request schema the explaining model documents (its metadata
    :data:`REQUEST_SCHEMA`): one a JSON or CSV client can satisfy.

    The original model's named input specs where it has them (else those inferred from
    the background), except that a ``category`` column takes any value (MLflow cannot
    type it: a ``string`` spec refuses the category dtype in process, and JSON carries
    strings; :meth:`shapgov.serving.ServedExplainer.conform` recodes both) and is
    optional (a null is a missing value), as is every column with missing values in the
    background, and the ``keys`` columns are optional.
    """
    from mlflow.types.schema import AnyType, ColSpec, Schema

    inputs = None if original is None else original.inputs
    if inputs is None or not inputs.has_input_names():
        inputs = mlflow.models.infer_signature(background.iloc[:5]).inputs
    categorical = {
        str(c) for c, t in background.dtypes.items() if isinstance(t, pd.CategoricalDtype)
    }
    missing = {str(c) for c in background.columns[background.isna().any().to_numpy()]}
    specs = [
        ColSpec(AnyType(), spec.name, required=False)
        if spec.name in categorical
        else ColSpec(spec.type, spec.name, required=False)
        if spec.name in missing
        else spec
        for spec in inputs.inputs
    ]
    specs += [ColSpec(AnyType(), key, required=False) for key in keys]
    return Schema(specs)


def _served(
    model_dir: str,
    background: pd.DataFrame,
    weights: Any,
    config: dict[str, Any],
    *,
    reasons: dict[str, Any] | None = None,
) -> Any:
    from shapgov.mlflow.evaluator import native_model
    from shapgov.serving import ServedExplainer

    model = native_model(mlflow.pyfunc.load_model(model_dir))
    return ServedExplainer(
        model,
        background=background,
        background_weights=weights,
        feature_perturbation=config["feature_perturbation"],
        game_link=config.get("game_link", "identity"),
        output=config["output"],
        top_k=config["top_k"],
        keys=config.get("keys", ()),
        opaque=bool(config.get("game", {}).get("opaque", False)),
        explainer_options=config.get("game", {}).get("explainer_options") or None,
        reasons=reasons,
    )


class ExplainingModel(PythonModel):
    """The pyfunc model :func:`log_explaining_model` logs (see the module doc)."""

    def load_context(self, context: Any) -> None:
        config = json.loads(Path(context.artifacts[CONFIG]).read_text())
        background, weights = read_background(context.artifacts[BACKGROUND])
        self.config = config
        stored = _read_reasons(context.artifacts.get(REASONS), config)
        self.served = _served(context.artifacts[MODEL], background, weights, config, reasons=stored)
        self.served.explain(background.iloc[:1])  # every plugin of the route takes part
        check_plugins(config.get("plugins") or [], self.served.plugins())

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        """Prediction, SHAP values, base value, additivity status and normalized mismatch
        per row, and the adverse-action columns when the set has reasons (see
        :meth:`shapgov.serving.ServedExplainer.explain`)."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        try:
            return self.served.explain(model_input)
        except InputError as err:  # a bad request: a 4xx that says what to fix
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from err
