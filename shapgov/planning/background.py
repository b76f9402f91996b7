"""Background summaries: fewer rows that stand for "feature absent" at lower cost.

Every explainer's work grows linearly with the background, the Kernel explainer's most.
A summary trades exactness against the full background for speed; the values remain
exact Shapley values against the summary itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shapgov.errors import InputError


def summarize_background(
    X: Any,
    *,
    n: int = 100,
    method: str = "sample",
    random_state: int | None = 0,
    return_weights: bool = False,
) -> Any:
    """``n`` representative rows of ``X`` (same type and columns as ``X``).

    :param method: ``"sample"`` draws rows uniformly without replacement; ``"kmeans"``
        clusters the (numeric) rows and keeps, for each cluster, the real row closest to
        its center, so categorical codes and integer columns stay valid values.
    :param random_state: Seed of the draw or of the clustering.
    :param return_weights: Also return one weight per kept row, ``(rows, weights)``: the
        number of rows of ``X`` it stands for (its clusters' sizes for ``"kmeans"``; equal
        for ``"sample"``). Pass them as ``explain(..., background_weights=weights)`` so
        that a large cluster counts for what it holds.
    """
    frame = X if isinstance(X, pd.DataFrame) else None
    n_rows = len(X)
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    if n >= n_rows:
        return (X, np.ones(n_rows)) if return_weights else X
    if method == "sample":
        idx = np.sort(np.random.default_rng(random_state).choice(n_rows, size=n, replace=False))
        weights = np.full(idx.size, n_rows / idx.size)
    elif method == "kmeans":
        from sklearn.cluster import KMeans

        values = (frame if frame is not None else pd.DataFrame(X)).select_dtypes("number")
        if values.shape[1] != np.shape(X)[1]:
            raise InputError(
                "method='kmeans' needs numeric columns only; use method='sample' for data "
                "with categorical or text columns"
            )
        data = values.to_numpy(dtype=float)
        if np.isnan(data).any():
            raise InputError("method='kmeans' cannot cluster NaN; use method='sample'")
        scale = data.std(axis=0)
        scaled = data / np.where(scale > 0, scale, 1.0)
        km = KMeans(n_clusters=n, n_init=4, random_state=random_state).fit(scaled)
        dist = ((scaled[:, None, :] - km.cluster_centers_[None]) ** 2).sum(axis=2)
        nearest = dist.argmin(axis=0)  # the real row that stands for each cluster
        idx, owner = np.unique(nearest, return_inverse=True)
        sizes = np.bincount(km.labels_, minlength=n).astype(float)
        weights = np.bincount(owner.ravel(), weights=sizes, minlength=idx.size)
    else:
        raise InputError(f"method must be 'sample' or 'kmeans', got {method!r}")
    rows = frame.iloc[idx] if frame is not None else np.asarray(X)[idx]
    return (rows, weights) if return_weights else rows
