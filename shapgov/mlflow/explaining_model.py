"""The explaining model's code, logged as an MLflow "model from code": no pickle.

MLflow saves this file with the model and runs it on load; its state comes from the
logged artifacts only (``config.json``, ``background.parquet`` and the original model's
own flavor files). See :mod:`shapgov.mlflow.serving`.
"""

from __future__ import annotations

import os

# OpenMP threads that spin after the model's predict (LightGBM, scikit-learn) steal the
# cores numba's kernels need on the next small request; a serving process wants them to
# sleep. Read when the OpenMP runtime starts, so set before the model's library loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import mlflow

from shapgov.mlflow.serving import ExplainingModel

mlflow.models.set_model(ExplainingModel())
