"""The background rows of an explained game as a file of the artifact set.

An approved explanation must be reproducible from the registry alone, so the set keeps
the rows its game was played against (``background.parquet``, hashed in the manifest like
every file) with their weights, and whoever re-derives or serves the set reads them from
there. The file's metadata holds the game's SHA-256 of the rows and weights
(:func:`shapgov.planning.game.frame_sha256`); :func:`read_background` recomputes it, so a
file that does not hold the game's rows is refused, whatever its manifest says.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shapgov.errors import InputError
from shapgov.planning.game import frame_sha256

FILE = "background.parquet"
_META_KEY = b"shapgov.background"
_WEIGHT = "shapgov::background_weight"


def write_background(
    path: str | Path,
    frame: pd.DataFrame,
    *,
    weights: np.ndarray | None = None,
    sha256: str | None = None,
) -> Path:
    """Write the background rows ``(b, M)`` (and their weights ``(b,)``, as given to the
    game) to one parquet file; dtypes, categories and missing values round-trip.

    :param sha256: The game's SHA-256 of these rows and weights (computed when ``None``).
    :raises InputError: ``weights`` is not one number per row, or ``sha256`` is not the
        rows' own.
    """
    path = Path(path)
    digest = frame_sha256(frame, weights)
    if sha256 is not None and sha256 != digest:
        raise InputError(
            f"these background rows hash to {digest[:12]}..., not to the game's "
            f"{sha256[:12]}...; write the rows the game was played against"
        )
    cols = {f"{j}": pa.array(frame.iloc[:, j], from_pandas=True) for j in range(frame.shape[1])}
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(frame),):
            raise InputError(f"need one weight per background row ({len(frame)}), got {w.shape}")
        cols[_WEIGHT] = w
    meta = {
        "columns": [c.item() if isinstance(c, np.generic) else c for c in frame.columns],
        "dtypes": [str(t) for t in frame.dtypes],
        "weighted": weights is not None,
        "sha256": digest,
    }
    table = pa.table(cols).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    pq.write_table(table, path)
    return path


def read_background(
    path: str | Path, *, sha256: str | None = None
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The background rows and weights :func:`write_background` wrote, checked against
    their SHA-256 (``sha256``: the game's, e.g. ``manifest["game"]["background_sha256"]``;
    default: the file's own record).

    :returns: ``(frame (b, M), weights (b,) or None)``.
    :raises InputError: The file holds no shapgov background, or its rows do not hash to
        the game's SHA-256.
    """
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise InputError(f"{path} is not a shapgov background file (no shapgov metadata)")
    meta = json.loads(raw)
    stored = table.to_pandas()
    frame = pd.DataFrame({j: stored[f"{j}"] for j in range(len(meta["columns"]))})
    frame.columns = pd.Index(meta["columns"])
    for j, dtype in enumerate(meta["dtypes"]):
        if str(frame.dtypes.iloc[j]) != dtype:  # nullable dtypes may come back as float
            frame.isetitem(j, frame.iloc[:, j].astype(dtype))
    weights = stored[_WEIGHT].to_numpy(dtype=float) if meta["weighted"] else None
    expected = sha256 or meta["sha256"]
    digest = frame_sha256(frame, weights)
    if digest != expected:
        raise InputError(
            f"{path} holds background rows that hash to {digest[:12]}..., not to the "
            f"explained game's {expected[:12]}...; the file was altered or belongs to "
            "another set"
        )
    return frame, weights
