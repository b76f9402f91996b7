"""A seeded credit-default table as a bank's ML engineer has one: numbers, string
categories held as pandas ``category`` columns, and a column with missing values
(issue 30's new user)."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = [
    "income",
    "debt_to_income",
    "utilization",
    "delinquencies",
    "inquiries",
    "home_ownership",
    "purpose",
    "employment_length",
]
HOME = ["MORTGAGE", "OWN", "RENT"]
PURPOSE = ["car", "credit_card", "debt_consolidation", "home_improvement", "other"]


def credit_table(n: int = 2000, *, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """``(X, y)``: ``n`` applicants indexed by applicant ID (not 0..n-1), ``y`` the default
    flag drawn from a logistic model of the columns."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(11, 0.5, n).round(-2)
    dti = rng.uniform(0, 45, n).round(1)
    util = rng.beta(2, 3, n).round(3)
    delinq = rng.poisson(0.3, n)
    inquiries = rng.poisson(1.0, n)
    home = rng.choice(HOME, n, p=[0.45, 0.15, 0.40])
    purpose = rng.choice(PURPOSE, n)
    employment = rng.integers(0, 11, n).astype(float)
    employment[rng.random(n) < 0.1] = np.nan
    logit = (
        -2.0
        - 0.8 * (np.log(income) - 11)
        + 0.04 * (dti - 20)
        + 2.0 * (util - 0.4)
        + 0.5 * delinq
        + 0.2 * inquiries
        + 0.4 * (home == "RENT")
        - 0.05 * np.nan_to_num(employment, nan=2.0)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    ids = rng.choice(np.arange(1000, 1000 + 10 * n), size=n, replace=False)
    X = pd.DataFrame(
        {
            "income": income,
            "debt_to_income": dti,
            "utilization": util,
            "delinquencies": delinq,
            "inquiries": inquiries,
            "home_ownership": pd.Categorical(home, categories=HOME),
            "purpose": pd.Categorical(purpose, categories=PURPOSE),
            "employment_length": employment,
        },
        index=pd.Index(ids, name="applicant_id"),
    )
    return X, pd.Series(y, index=X.index, name="default")
