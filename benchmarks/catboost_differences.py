"""What CatBoost's own SHAP (and shap's route to it) computes differently from shapgov,
measured on small models (the README's CatBoost table comes from this script).

For each case it prints the largest additivity error ``max |base + sum(phi) - raw|`` of
each implementation against CatBoost's own raw formula (``RawFormulaVal``), and, where
both play the same game, the largest difference of the values themselves.
Run: python benchmarks/catboost_differences.py
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np
import pandas as pd


def table(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(4)})
    X["c"] = rng.choice([f"k{i}" for i in range(8)], n)
    y = X.x0 * X.x1 + X.x2 + (X.c == "k1") + rng.normal(scale=0.2, size=n)
    return X, y.to_numpy()


def additivity(values: np.ndarray, base: np.ndarray | float, raw: np.ndarray) -> float:
    return float(np.max(np.abs(values.sum(axis=1) + base - raw)))


def main() -> None:
    import catboost

    import shapgov

    X, y = table()
    rows, ref = X.iloc[:200], X.iloc[1000:1100]
    common = {"verbose": 0, "random_seed": 0, "allow_writing_files": False}
    print(f"catboost {catboost.__version__}")
    for policy in ("Depthwise", "Lossguide"):
        model = catboost.CatBoostRegressor(
            iterations=50, depth=5, grow_policy=policy, cat_features=["c"], **common
        ).fit(X, y)
        raw = model.predict(rows, prediction_type="RawFormulaVal")
        native = model.get_feature_importance(
            catboost.Pool(rows, cat_features=["c"]), type="ShapValues"
        )
        e = shapgov.explain(model, rows)
        print(
            f"{policy}: CatBoost ShapValues additivity error "
            f"{additivity(native[:, :-1], native[:, -1], raw):.3g}; "
            f"shapgov {additivity(e.values, e.expected_value, raw):.3g}"
        )
    floats = X.drop(columns="c")
    model = catboost.CatBoostRegressor(iterations=50, depth=5, **common).fit(floats, y)
    raw = model.predict(floats.iloc[:200], prediction_type="RawFormulaVal")
    e = shapgov.explain(model, floats.iloc[:200], background=floats.iloc[1000:1100])
    print(
        f"symmetric floats, interventional: shapgov additivity error "
        f"{additivity(e.values, e.expected_value, raw):.3g}"
    )
    try:
        import shap

        explainer = shap.TreeExplainer(
            model, data=floats.iloc[1000:1100], feature_perturbation="interventional"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            phi = explainer.shap_values(floats.iloc[:200], check_additivity=False)
        print(
            f"  shap {shap.__version__} TreeExplainer interventional: additivity error "
            f"{additivity(phi, explainer.expected_value, raw):.3g}; values differ from "
            f"shapgov's by {np.max(np.abs(phi - e.values)):.3g}"
        )
        try:
            shap.TreeExplainer(model, data=ref, feature_perturbation="interventional").shap_values(
                rows
            )
            print("  shap interventional with a categorical column: ran")
        except Exception as err:
            print(f"  shap interventional with a categorical column: {type(err).__name__}")
    except ImportError:
        print("  shap not installed")
    model.set_scale_and_bias(0.5, 1.0)
    try:
        model.get_feature_importance(catboost.Pool(floats.iloc[:5]), type="ShapInteractionValues")
        print("scale 0.5: CatBoost ShapInteractionValues ran")
    except catboost.CatBoostError as err:
        print(f"scale 0.5: CatBoost ShapInteractionValues refused ({str(err)[:80]})")
    e = shapgov.explain(model, floats.iloc[:5], interactions=True)
    inter_sum = e.interaction_values.sum(axis=(1, 2)) + e.expected_value
    raw = model.predict(floats.iloc[:5], prediction_type="RawFormulaVal")
    print(f"  shapgov interaction values add up to {np.max(np.abs(inter_sum - raw)):.3g}")
    combinations(catboost, shapgov, common)


def combinations(catboost, shapgov, common) -> None:
    """CTRs over combinations of columns: CatBoost plays each projection as one player and
    splits its value equally among its columns; shapgov plays the game of the original
    columns (a combination split is known only when all its columns are), equal to brute
    force over every coalition (tests/test_catboost.py)."""
    rng = np.random.default_rng(1)
    n = 2000
    X = pd.DataFrame(
        {
            "a": rng.choice(list("xyz"), n),
            "b": rng.choice(list("pqrs"), n),
            "f": rng.normal(size=n),
            "g": rng.normal(size=n),
        }
    )
    y = (X.a == "x") * (X.b == "p") * 2.0 + (X.f > 0) * (X.a == "y") * 3 + X.g
    y = y + rng.normal(scale=0.1, size=n)
    cats = ["a", "b"]
    model = catboost.CatBoostRegressor(
        iterations=60, depth=4, max_ctr_complexity=3, one_hot_max_size=1, cat_features=cats,
        **common,
    ).fit(X, y)  # fmt: skip
    rows, ref = X.iloc[:200], X.iloc[1000:1100]
    raw = model.predict(rows, prediction_type="RawFormulaVal")
    pool = catboost.Pool(rows, cat_features=cats)
    labelled = catboost.Pool(rows, label=np.zeros(len(rows)), cat_features=cats)
    ref_pool = catboost.Pool(ref, label=y.iloc[1000:1100], cat_features=cats)  # it asks for labels
    native = model.get_feature_importance(pool, type="ShapValues")
    ours = shapgov.explain(model, rows)
    print(
        "CTRs over combinations (max_ctr_complexity=3), path-dependent: CatBoost "
        f"ShapValues differ from the Shapley values of the original columns by "
        f"{np.max(np.abs(native[:, :-1] - ours.values)):.3g} (additivity: CatBoost "
        f"{additivity(native[:, :-1], native[:, -1], raw):.3g}, shapgov "
        f"{additivity(ours.values, ours.expected_value, raw):.3g})"
    )
    e = shapgov.explain(model, rows, background=ref, feature_perturbation="interventional")
    try:
        independent = model.get_feature_importance(
            labelled, type="ShapValues", reference_data=ref_pool
        )
        print(
            f"  interventional: CatBoost (reference_data) differs from brute force by "
            f"{np.max(np.abs(independent[:, :-1] - e.values)):.3g}; shapgov additivity "
            f"{additivity(e.values, e.expected_value, raw):.3g}"
        )
    except catboost.CatBoostError as err:
        print(f"  interventional: CatBoost refused ({str(err)[:80]})")
    inter = model.get_feature_importance(pool, type="ShapInteractionValues")
    total = inter[:, :-1, :-1].sum(axis=(1, 2)) + inter[:, -1, -1]
    ours = shapgov.explain(model, rows[:50], interactions=True)
    mine = ours.interaction_values.sum(axis=(1, 2)) + ours.expected_value
    print(
        f"  interactions: CatBoost ShapInteractionValues additivity error "
        f"{np.max(np.abs(total - raw)):.3g}; shapgov {np.max(np.abs(mine - raw[:50])):.3g}"
    )


if __name__ == "__main__":
    main()
