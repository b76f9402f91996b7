"""The demo's data: the tutorial's diabetes MLP and its split, the generated daily store
sales (:func:`daily_sales`) and credit applicants (:func:`credit_applicants`) with their
group labels and reason catalogue; seeded, so every run sees the same rows. The cases
themselves are :func:`shapgov.demo.cases`."""

from __future__ import annotations

from typing import Any

import numpy as np


def _diabetes(categorical_sex: bool = False) -> tuple[Any, ...]:
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    if categorical_sex:
        X = X.copy()
        X["sex"] = np.where(X["sex"] > 0, "male", "female")
    return tuple(train_test_split(X, y, test_size=0.33, random_state=42))


#: The day the generated sales data shifts: the price spread triples.
SALES_SHIFT = "2024-07-01"
SALES_PLAYERS = {
    "sales history": ["sales_lag_1", "sales_lag_7", "sales_roll_28"],
    "calendar": ["day_of_week", "month"],
}


def daily_sales(seed: int = 0, stores: int = 6) -> tuple[Any, Any]:
    """Seeded daily sales of ``stores`` stores over 2023-2024: features (lags and a
    28-day rolling mean of the store's sales, price, promotion, calendar parts, and the
    ``date``) and the day's sales. From :data:`SALES_SHIFT` the price spread triples."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    days = pd.date_range("2023-01-01", "2024-12-31", freq="D")
    frames = []
    for store in range(stores):
        n = len(days) + 28
        level = 20 + 5 * store
        season = 3 * np.sin(2 * np.pi * np.arange(n) / 7)
        price = 1 + 0.1 * rng.normal(size=n)
        shifted = np.r_[np.zeros(28, bool), days >= pd.Timestamp(SALES_SHIFT)]
        price[shifted] = 1 + 0.3 * rng.normal(size=int(shifted.sum()))
        promo = (rng.uniform(size=n) < 0.15).astype(float)
        sales = np.empty(n)
        sales[0] = level
        for t in range(1, n):
            sales[t] = (
                level
                + 0.6 * (sales[t - 1] - level)
                + season[t]
                + promo[t] * (6 - 8 * (price[t] - 1))
                - 10 * (price[t] - 1)
                + rng.normal()
            )
        s = pd.Series(sales)
        frame = pd.DataFrame(
            {
                "date": days,
                "sales_lag_1": s.shift(1).to_numpy()[28:],
                "sales_lag_7": s.shift(7).to_numpy()[28:],
                "sales_roll_28": s.shift(1).rolling(28).mean().to_numpy()[28:],
                "price": price[28:],
                "promo": promo[28:],
                "day_of_week": days.day_of_week.to_numpy().astype(float),
                "month": days.month.to_numpy().astype(float),
                "sales": sales[28:],
            }
        )
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True).sort_values("date", kind="stable")
    data = data.reset_index(drop=True)
    return data.drop(columns="sales"), data["sales"]


#: The credit case's decision: a probability of default of at least this declines (about
#: a fifth of the generated applicants).
CREDIT_CUTOFF = 0.25
#: The reason catalogue the credit case uses (package data).
CREDIT_CATALOGUE = "catalogues/consumer_credit.toml"


def credit_applicants(n: int = 1200, seed: int = 0) -> tuple[Any, Any]:
    """Seeded credit applicants (indexed by a six-digit applicant number) and whether each
    defaulted, from a planted logistic risk: income, debt-to-income, revolving
    utilization, delinquencies, inquiries in the last 6 months, age of the oldest account,
    open accounts, months employed, the loan amount and the housing status, one-hot
    (``housing_own``, ``housing_mortgage``, ``housing_rent``)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    housing = rng.choice(["own", "mortgage", "rent"], n, p=[0.2, 0.45, 0.35])
    X = pd.DataFrame(
        {
            "income": rng.lognormal(11, 0.45, n).round(-2),
            "debt_to_income": np.clip(rng.normal(22, 10, n), 0, 60).round(1),
            "revolving_utilization": rng.beta(2, 3, n).round(3),
            "delinquencies": rng.poisson(0.35, n).astype(float),
            "inquiries_6m": rng.poisson(1.0, n).astype(float),
            "months_since_oldest_account": rng.integers(3, 400, n).astype(float),
            "open_accounts": rng.poisson(6, n).astype(float),
            "months_employed": rng.integers(0, 360, n).astype(float),
            "loan_amount": rng.uniform(1, 40, n).round(1) * 1000,
            **{f"housing_{h}": (housing == h).astype(float) for h in ("own", "mortgage", "rent")},
        },
        index=pd.Index(rng.choice(np.arange(10**5, 10**6), n, replace=False), name="applicant"),
    )
    logit = (
        -2.2
        - 1.0 * (np.log(X.income) - 11)
        + 0.05 * (X.debt_to_income - 22)
        + 2.8 * (X.revolving_utilization - 0.4)
        + 0.8 * X.delinquencies
        + 0.3 * (X.inquiries_6m - 1)
        - 0.004 * (X.months_since_oldest_account - 200)
        - 0.08 * (X.open_accounts - 6)
        - 0.002 * (X.months_employed - 180)
        + 0.00003 * (X.loan_amount - 20000)
        + 0.4 * X.housing_rent
        - 0.2 * X.housing_own
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, pd.Series(y, index=X.index, name="default")


def applicant_groups(X: Any, seed: int = 1) -> Any:
    """A protected attribute of the generated applicants, not a model input: ``"group B"``
    with a probability that rises with revolving utilization (and renting), so group B is
    declined more often, its gap runs through ``revolving_utilization``, and that input is
    a proxy for the group (the planted answer the fair-lending section finds). Drawn from
    its own seed: the applicants and their outcomes are those of :func:`credit_applicants`."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    logit = -1.8 + 14.0 * (X["revolving_utilization"] - 0.4) + 0.6 * X["housing_rent"]
    member = rng.random(len(X)) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"group": np.where(member, "group B", "group A")}, index=X.index)


def credit_catalogue() -> Any:
    """The consumer-credit reason catalogue shipped with shapgov (ten reasons)."""
    from importlib.resources import as_file, files

    from shapgov.adverse_action.catalogue import load_catalogue

    with as_file(files("shapgov.adverse_action") / CREDIT_CATALOGUE) as path:
        return load_catalogue(path)


def tutorial_mlp() -> Any:
    """The tutorial's model: StandardScaler -> MLPRegressor(5 logistic units)."""
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = MLPRegressor(
        hidden_layer_sizes=(5,),
        activation="logistic",
        max_iter=10000,
        learning_rate="invscaling",
        random_state=0,
    )
    return make_pipeline(StandardScaler(), mlp)
