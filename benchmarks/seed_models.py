"""The seed documents' models, built once for every benchmark (imported as a sibling
module: run the scripts as files)."""

from __future__ import annotations

from typing import Any

import numpy as np


def diabetes_mlp() -> tuple[Any, np.ndarray, np.ndarray]:
    """The KernelExplainer tutorial's model: ``make_pipeline(StandardScaler(),
    MLPRegressor((5,), activation='logistic', max_iter=10000, learning_rate='invscaling',
    random_state=0))`` fitted on diabetes split 67/33 with ``random_state=42``.

    :returns: ``(model, X_train (296, 10), X_test (146, 10))``.
    """
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.33, random_state=42)
    model = make_pipeline(
        StandardScaler(),
        MLPRegressor(
            hidden_layer_sizes=(5,),
            activation="logistic",
            max_iter=10000,
            learning_rate="invscaling",
            random_state=0,
        ),
    ).fit(X_train, y_train)
    return model, X_train, X_test
