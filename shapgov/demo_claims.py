"""The demo's motor-claims case: a claim-frequency GLM fitted with statsmodels' formula API
on a generated motor book, with each policy's exposure (years insured).

The formula reads five columns through a spline (``bs(driver_age, 4)``), a categorical
coding with a chosen reference (``C(region, Treatment(reference="urban"))``), a log
(``np.log(density)``) and an interaction of a number with a category
(``vehicle_power:C(fuel)``); the exposure enters as statsmodels takes it,
``log(exposure)`` added to the linear predictor. shapgov traces every term to the columns
it reads (:mod:`shapgov_plugins.statsmodels_glms`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The frequency model's formula.
FORMULA = (
    'claims ~ bs(driver_age, 4) + C(region, Treatment(reference="urban")) '
    "+ np.log(density) + vehicle_power + vehicle_power:C(fuel) + bonus_malus"
)
COLUMNS = ["driver_age", "region", "density", "vehicle_power", "fuel", "bonus_malus"]


def motor_book(n: int = 6_000, seed: int = 0) -> tuple[Any, np.ndarray, np.ndarray]:
    """Seeded policies ``(n, 6)``, their exposure in years ``(n,)`` and claim counts
    ``(n,)`` drawn from a Poisson rate that rises for young and old drivers, dense areas,
    powerful diesel vehicles and a high bonus-malus."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "driver_age": rng.uniform(18, 90, n).round(),
            "region": rng.choice(["urban", "suburban", "rural"], n, p=[0.5, 0.3, 0.2]),
            "density": rng.lognormal(6, 1.3, n).round() + 1,
            "vehicle_power": rng.integers(4, 16, n).astype(float),
            "fuel": rng.choice(["petrol", "diesel"], n),
            "bonus_malus": rng.choice(np.arange(50, 151), n).astype(float),
        }
    )
    exposure = rng.uniform(0.05, 1.0, n).round(3)
    age = X.driver_age.to_numpy()
    eta = (
        -2.6
        + 0.5 * ((age - 50) / 30) ** 2
        + 0.12 * np.log(X.density)
        + 0.03 * X.vehicle_power * (X.fuel == "diesel")
        + 0.01 * (X.bonus_malus - 100)
        - 0.2 * (X.region == "rural")
    )
    claims = rng.poisson(exposure * np.exp(eta - 0.12 * 6))
    return X, exposure, claims


def claims_model(seed: int = 0) -> dict[str, Any]:
    """The fitted frequency GLM and its split: ``model`` (statsmodels results),
    ``X_train``/``X_test`` (the columns the formula reads), ``y_train``/``y_test`` (claim
    counts), ``exposure_train``/``exposure_test``."""
    import pandas as pd
    import statsmodels.api as sm
    import statsmodels.formula.api as smf
    from sklearn.model_selection import train_test_split

    X, exposure, claims = motor_book(seed=seed)
    X_train, X_test, e_train, e_test, y_train, y_test = train_test_split(
        X, exposure, claims, test_size=0.1, random_state=42
    )
    model = smf.glm(
        FORMULA,
        data=X_train.assign(claims=y_train),
        family=sm.families.Poisson(),
        exposure=e_train,
    ).fit()
    y_train = pd.Series(y_train, index=X_train.index, name="claims")
    y_test = pd.Series(y_test, index=X_test.index, name="claims")
    return {
        "model": model,
        "X_train": X_train[COLUMNS],
        "X_test": X_test[COLUMNS],
        "y_train": y_train,
        "y_test": y_test,
        "exposure_train": e_train,
        "exposure_test": e_test,
    }
