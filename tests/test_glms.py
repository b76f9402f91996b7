"""GLMs as insurers and banks fit them (statsmodels, glum): every value against brute force
over all coalitions of the original columns through the model's own predict (<= 1e-10)."""

from __future__ import annotations

import copy
import itertools
from math import factorial

import numpy as np
import pandas as pd
import pytest
from oracles import brute_force_shapley, coalition_values

import shapgov
from shapgov.composites import FrequencySeverityRegressor
from shapgov.errors import (
    ColumnMismatchError,
    InputError,
    MissingValueError,
    NotFittedModelError,
)
from shapgov_plugins.glum_glms import GlumModel

sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")
glum = pytest.importorskip("glum")

TOL = 1e-10


def reads(model, X):
    """The columns a statsmodels model reads (its formula's variables), from the table."""
    from shapgov_plugins.statsmodels_glms import StatsmodelsResults

    return X[list(StatsmodelsResults(model).feature_names_in_)]


def policies(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A motor book: driver age, vehicle power, region, a bonus-malus score; exposure in
    years."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, n),
            "power": rng.integers(4, 13, n).astype(float),
            "region": rng.choice(["north", "south", "east"], n),
            "bonus": rng.uniform(50, 150, n),
            "density": rng.lognormal(5, 1, n),
        }
    )
    exposure = rng.uniform(0.1, 1.0, n)
    return X, exposure


def claims(X: pd.DataFrame, exposure: np.ndarray, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    eta = (
        -2.0
        + 0.3 * np.sin(X.age / 10)
        + 0.04 * X.power
        + 0.2 * (X.region == "south")
        + 0.004 * (X.bonus - 100)
    )
    counts = rng.poisson(exposure * np.exp(eta))
    amount = rng.gamma(2.0, np.exp(7 + 0.01 * X.power + 0.002 * X.age) / 2.0)
    return X.assign(counts=counts, amount=amount, expo=exposure)


def _margin_oracle(predict_linear, X, background):
    ref, base = brute_force_shapley(predict_linear, X, background)
    return ref[:, :, 0], base


def _check(e, ref, base):
    assert np.max(np.abs(e.values - ref)) <= TOL
    assert np.max(np.abs(np.atleast_1d(e.expected_value) - np.atleast_1d(base)[:1])) <= TOL


@pytest.fixture(scope="module")
def book():
    X, exposure = policies()
    return X, exposure, claims(X, exposure)


def test_poisson_glm_with_offset_log_exposure_and_a_spline(book):
    X, exposure, data = book
    offset = np.log(exposure)
    model = smf.glm(
        "counts ~ bs(age, 4) + power + C(region) + bonus",
        data=data,
        family=sm.families.Poisson(),
        offset=offset,
    ).fit()
    assert list(reads(model, X).columns) == ["age", "power", "region", "bonus"]
    rows, bg = X.iloc[:10], X.iloc[200:260]
    rows, bg = reads(model, rows), reads(model, bg)
    e = shapgov.explain(model, rows, background=bg, offset=offset[:10])
    # brute force through the model's own predict, each row with its own offset
    ref, base = _margin_oracle(lambda D: model.predict(D, which="linear"), rows, bg)
    _check(e, ref, base)
    assert e.additivity.status == "pass"
    assert e.additivity.applied["offset_taken_by"].startswith("statsmodels")
    own = model.predict(rows, offset=offset[:10])
    rebuilt = np.exp(e.expected_value + e.values.sum(1) + offset[:10])
    assert np.max(np.abs(rebuilt - own) / own) <= 1e-12


def test_exposure_is_taken_as_statsmodels_takes_it(book):
    X, exposure, data = book
    model = smf.glm(
        "counts ~ age + C(region)", data=data, family=sm.families.Poisson(), exposure=exposure
    ).fit()
    rows, bg = X.iloc[:6], X.iloc[300:340]
    rows, bg = reads(model, rows), reads(model, bg)
    e = shapgov.explain(model, rows, background=bg, exposure=exposure[:6])
    ref, base = _margin_oracle(lambda D: model.predict(D, which="linear"), rows, bg)
    _check(e, ref, base)
    assert e.additivity.applied["exposure_taken_by"].startswith("statsmodels")
    own = model.predict(rows, exposure=exposure[:6])
    assert np.max(np.abs(e.prediction[:, 0] - own)) <= 1e-12 * np.max(own)


def test_gamma_glm_with_an_interaction_term_splits_it_by_its_shapley_value(book):
    X, _, data = book
    model = smf.glm(
        "amount ~ age * power + C(region)",
        data=data,
        family=sm.families.Gamma(link=sm.families.links.Log()),
    ).fit()
    rows, bg = X.iloc[:8], X.iloc[100:150]
    rows, bg = reads(model, rows), reads(model, bg)
    e = shapgov.explain(model, rows, background=bg)
    ref, base = _margin_oracle(lambda D: model.predict(D, which="linear"), rows, bg)
    _check(e, ref, base)
    # the interaction's closed form by hand: b (x_a x_p) over its two players
    assert list(rows.columns) == ["age", "power", "region"]
    b = model.params["age:power"]
    a, p = rows.age.to_numpy(), rows.power.to_numpy()
    ab, pb = bg.age.to_numpy(), bg.power.to_numpy()
    v0, v_all = b * np.mean(ab * pb), b * a * p
    v_age, v_power = b * a * pb.mean(), b * ab.mean() * p
    by_hand = 0.5 * (v_age - v0) + 0.5 * (v_all - v_power)
    main = model.params["age"] * (a - ab.mean())
    assert np.max(np.abs(e.values[:, 0] - main - by_hand)) <= TOL
    equal_split = main + 0.5 * (v_all - v0)
    assert np.max(np.abs(e.values[:, 0] - equal_split)) > 1e-3  # not split equally


def test_binomial_glm_with_probit_link_in_probability_space(book):
    X, _, data = book
    data = data.assign(claimed=(data.counts > 0).astype(int))
    model = smf.glm(
        "claimed ~ age + power:bonus + C(region)",
        data=data,
        family=sm.families.Binomial(link=sm.families.links.Probit()),
    ).fit()
    rows, bg = X.iloc[:6], X.iloc[400:430]
    rows, bg = reads(model, rows), reads(model, bg)
    e = shapgov.explain(model, rows, background=bg, output="probability")
    assert e.task == "binary"
    ref, base = brute_force_shapley(lambda D: model.predict(D), rows, bg)
    _check(e, ref[:, :, 0], base)
    margin = shapgov.explain(model, rows, background=bg)
    assert margin.link.name == "probit"
    ref, base = _margin_oracle(lambda D: model.predict(D, which="linear"), rows, bg)
    _check(margin, ref, base)


def test_treatment_reference_and_a_two_column_factor(book):
    X, exposure, data = book
    model = smf.glm(
        'counts ~ C(region, Treatment(reference="south")) + np.log(density) + I(bonus / power)',
        data=data,
        family=sm.families.Poisson(),
        exposure=exposure,
    ).fit()
    rows, bg = X.iloc[:5], X.iloc[50:80]
    rows, bg = reads(model, rows), reads(model, bg)
    e = shapgov.explain(model, rows, background=bg)
    ref, base = _margin_oracle(lambda D: model.predict(D, which="linear"), rows, bg)
    _check(e, ref, base)
    assert list(rows.columns) == ["power", "region", "bonus", "density"]


def test_formulaic_engine_terms(book):
    X, _, data = book
    import statsmodels.formula

    # statsmodels 0.15 predicts a formulaic model only while formulaic is its engine
    before = statsmodels.formula.options.formula_engine
    statsmodels.formula.options.formula_engine = "formulaic"
    try:
        model = smf.glm(
            "amount ~ bs(age, df=4) + power:C(region) + bonus",
            data=data,
            family=sm.families.Gamma(link=sm.families.links.Log()),
        ).fit()
        assert type(model.model.data.model_spec).__module__.startswith("formulaic")
        rows, bg = X.iloc[:5], X.iloc[10:40]
        rows, bg = reads(model, rows), reads(model, bg)
        e = shapgov.explain(model, rows, background=bg)
        ref, base = _margin_oracle(lambda D: model.predict(D, which="linear"), rows, bg)
    finally:
        statsmodels.formula.options.formula_engine = before
    _check(e, ref, base)


@pytest.mark.parametrize(
    ("family", "link"),
    [
        ("Gaussian", "Identity"),
        ("Gamma", "InversePower"),
        ("Poisson", "Sqrt"),
        ("Binomial", "CLogLog"),
        ("Binomial", "Logit"),
        ("Tweedie", "Log"),
        ("NegativeBinomial", "Log"),
    ],
)
def test_glm_families_and_links_from_arrays(book, family, link):
    X, _, data = book
    exog = sm.add_constant(X[["age", "power", "bonus"]])
    y = {
        "Gaussian": data.amount,
        "Gamma": data.amount,
        "Poisson": data.counts,
        "Binomial": (data.counts > 0).astype(int),
        "Tweedie": data.amount,
        "NegativeBinomial": data.counts,
    }[family]
    fam = getattr(sm.families, family)(link=getattr(sm.families.links, link)())
    model = sm.GLM(y, exog, family=fam).fit()
    rows, bg = exog.iloc[:6], exog.iloc[100:140]
    output = "probability" if family == "Binomial" else "prediction"
    e = shapgov.explain(model, rows, background=bg, output=output)
    ref, base = brute_force_shapley(lambda D: model.predict(D), rows, bg)
    _check(e, ref[:, :, 0], base)
    assert np.all(e.values[:, 0] == 0.0)  # the constant column


@pytest.mark.parametrize("kind", ["logit", "probit", "ols", "wls", "poisson"])
def test_discrete_and_linear_regression_models(book, kind):
    X, exposure, data = book
    data = data.assign(claimed=(data.counts > 0).astype(int))
    if kind == "logit":
        model = smf.logit("claimed ~ age + C(region) + power:bonus", data=data).fit(disp=0)
    elif kind == "probit":
        model = smf.probit("claimed ~ age + bonus", data=data).fit(disp=0)
    elif kind == "ols":
        model = smf.ols("np.log(amount) ~ age * power + C(region)", data=data).fit()
    elif kind == "wls":
        model = smf.wls("amount ~ age + power", data=data, weights=exposure).fit()
    else:
        model = smf.poisson("counts ~ age + C(region)", data=data, exposure=exposure).fit(disp=0)
    rows, bg = X.iloc[:5], X.iloc[500:530]
    rows, bg = reads(model, rows), reads(model, bg)
    e = shapgov.explain(model, rows, background=bg)
    linear = (
        (lambda D: model.predict(D))
        if kind in ("ols", "wls")
        else (lambda D: model.predict(D, which="linear"))
    )
    ref, base = _margin_oracle(linear, rows, bg)
    _check(e, ref, base)
    assert e.additivity.status == "pass"


def test_frequency_severity_of_two_statsmodels_glms(book):
    X, exposure, data = book
    freq = smf.glm(
        "counts ~ bs(age, 3) + C(region) + power",
        data=data,
        family=sm.families.Poisson(),
        exposure=exposure,
    ).fit()
    claimed = data[data.counts > 0]
    sev = smf.glm(
        "amount ~ age:power + bonus",
        data=claimed,
        family=sm.families.Gamma(link=sm.families.links.Log()),
    ).fit()
    model = FrequencySeverityRegressor.from_fitted(freq, sev)
    columns = ["age", "power", "region", "bonus"]
    rows, bg = X[columns].iloc[:6], X[columns].iloc[30:70]
    e = shapgov.explain(model, rows, background=bg, exposure=exposure[:6])

    def log_cost(D):
        return np.log(freq.predict(D)) + np.log(sev.predict(D))

    ref, base = _margin_oracle(log_cost, rows, bg)
    _check(e, ref, base)
    cost = freq.predict(rows, exposure=exposure[:6]) * sev.predict(rows)
    assert np.max(np.abs(e.prediction[:, 0] - cost) / cost) <= 1e-12
    assert {v.matrix_row for v in e.vertices} == {"glm"}


def test_glum_tweedie_with_category_columns(book):
    X, exposure, data = book
    table = X.assign(region=pd.Categorical(X.region))
    model = glum.GeneralizedLinearRegressor(family="tweedie", alpha=0.01, drop_first=True).fit(
        table, data.amount
    )
    rows, bg = table.iloc[:6], table.iloc[100:140]
    offset = np.log(exposure[:6])
    e = shapgov.explain(model, rows, background=bg, offset=offset)
    ref, base = _margin_oracle(lambda D: model.linear_predictor(D), rows, bg)
    _check(e, ref, base)
    assert e.additivity.applied["offset_taken_by"].startswith("glum")
    probability = shapgov.explain(model, rows, background=bg, output="prediction")
    ref, base = brute_force_shapley(lambda D: model.predict(D), rows, bg)
    _check(probability, ref[:, :, 0], base)


@pytest.mark.parametrize("missing", ["zero", "convert"])
def test_glum_missing_categories_coded_as_glum_codes_them(book, missing):
    X, _, data = book
    table = X.assign(region=pd.Categorical(X.region.where(X.index % 7 != 0)))
    model = glum.GeneralizedLinearRegressor(
        family="poisson", alpha=0.01, cat_missing_method=missing
    ).fit(table, data.counts)
    rows, bg = table.iloc[:8], table.iloc[100:130]
    assert rows.region.isna().any()
    e = shapgov.explain(model, rows, background=bg)
    ref, base = _margin_oracle(lambda D: model.linear_predictor(D), rows, bg)
    _check(e, ref, base)


def test_glum_formula_and_pipeline(book):
    from sklearn.ensemble import VotingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from shapgov_plugins.glum_glms import GlumModel

    X, _, data = book
    table = X.assign(region=pd.Categorical(X.region))
    model = glum.GeneralizedLinearRegressor(
        family="poisson", alpha=0.01, formula="age + C(region) + power:bonus"
    ).fit(table, data.counts)
    # a formula's columns in the order it reads them
    assert list(GlumModel(model).feature_names_in_) == ["age", "region", "bonus", "power"]
    rows = table[["age", "region", "bonus", "power"]].iloc[:5]
    bg = table[["age", "region", "bonus", "power"]].iloc[100:130]
    e = shapgov.explain(model, rows, background=bg)
    ref, base = _margin_oracle(lambda D: model.linear_predictor(D), rows, bg)
    _check(e, ref, base)

    numeric = X[["age", "power", "bonus"]]
    pipe = make_pipeline(StandardScaler(), glum.GeneralizedLinearRegressor(family="gamma"))
    vote = VotingRegressor([("glm", pipe), ("g2", glum.GeneralizedLinearRegressor(alpha=1.0))])
    vote.fit(numeric, data.amount)
    rows, bg = numeric.iloc[:5], numeric.iloc[100:130]
    e = shapgov.explain(vote, rows, background=bg)
    ref, base = brute_force_shapley(vote.predict, rows, bg)
    _check(e, ref[:, :, 0], base)


def test_interaction_values_by_the_shapley_interaction_index(book):
    X, _, data = book
    model = smf.glm(
        "amount ~ age * power + C(region)",
        data=data,
        family=sm.families.Gamma(link=sm.families.links.Log()),
    ).fit()
    rows, bg = X.iloc[:4], X.iloc[100:120]
    rows, bg = reads(model, rows), reads(model, bg)
    e = shapgov.explain(model, rows, background=bg, interactions=True)
    v = coalition_values(lambda D: model.predict(D, which="linear"), rows, bg)
    m = rows.shape[1]
    for i, j in itertools.combinations(range(m), 2):
        rest = [k for k in range(m) if k not in (i, j)]
        total = 0.0
        for size in range(len(rest) + 1):
            w = factorial(size) * factorial(m - size - 2) / factorial(m - 1)
            for S in itertools.combinations(rest, size):
                S = frozenset(S)
                total = total + w * (v[S | {i, j}] - v[S | {i}] - v[S | {j}] + v[S])
        assert np.max(np.abs(e.interaction_values[:, i, j] - total[:, 0] / 2)) <= TOL
    assert np.max(np.abs(e.interaction_values.sum(2) - e.values)) <= TOL


def test_bad_input_gets_typed_errors(book):
    X, exposure, data = book
    model = smf.glm(
        "counts ~ age + C(region)", data=data, family=sm.families.Poisson(), exposure=exposure
    ).fit()
    with pytest.raises(ColumnMismatchError, match="region"):
        shapgov.explain(model, X[["age", "power"]].iloc[:5], background=X[["age", "power"]])
    bad = exposure[:5].copy()
    bad[2] = 0.0
    with pytest.raises(InputError, match="exposure must be positive"):
        shapgov.explain(model, X[["age", "region"]].iloc[:5], exposure=bad)
    bad[2] = -1.0
    with pytest.raises(InputError, match="exposure must be positive"):
        shapgov.explain(model, X[["age", "region"]].iloc[:5], exposure=bad)
    unfitted = smf.glm("counts ~ age", data=data, family=sm.families.Poisson())
    with pytest.raises(NotFittedModelError, match="fit"):
        shapgov.explain(unfitted, X[["age"]].iloc[:5])
    stripped = copy.deepcopy(model)  # a results object that lost its formula's design
    stripped.model.data.model_spec = None
    with pytest.raises(InputError, match="no longer hold the formula's design"):
        shapgov.explain(stripped, X[["age", "region"]].iloc[:5])
    outside = X[["age", "region"]].iloc[:5].assign(region="west")  # a level never seen
    with pytest.raises(InputError, match="cannot be evaluated on these rows"):
        shapgov.explain(model, outside, background=X[["age", "region"]].iloc[10:20])
    holes = X[["age", "region"]].iloc[:5].copy()
    holes.loc[1, "age"] = np.nan
    with pytest.raises(MissingValueError, match="age"):
        shapgov.explain(model, holes, background=X[["age", "region"]].iloc[10:20])


@pytest.mark.parametrize("kind", ["negativebinomial", "generalizedpoisson", "nb_arrays"])
def test_count_models_with_a_dispersion_parameter(book, kind):
    """NegativeBinomial and GeneralizedPoisson append a dispersion parameter (``alpha``)
    to their coefficients: the linear predictor is read without it."""
    X, _, data = book
    if kind == "negativebinomial":
        model = smf.negativebinomial("counts ~ age + C(region)", data=data).fit(disp=0)
    elif kind == "generalizedpoisson":
        model = sm.GeneralizedPoisson.from_formula("counts ~ age + power", data=data).fit(disp=0)
    else:
        exog = sm.add_constant(X[["age", "power", "bonus"]])
        model = sm.NegativeBinomial(data.counts, exog).fit(disp=0)
    table = X if kind != "nb_arrays" else sm.add_constant(X[["age", "power", "bonus"]])
    rows, bg = reads(model, table.iloc[:5]), reads(model, table.iloc[200:230])
    assert "alpha" not in rows.columns
    e = shapgov.explain(model, rows, background=bg)
    assert e.vertices[0].explainer == "terms"
    ref, base = _margin_oracle(lambda D: model.predict(D, which="linear"), rows, bg)
    _check(e, ref, base)


def test_review_cases_get_typed_errors_or_exact_values(book):
    """Found by a fresh user's review: each gets exact values or a typed error."""
    X, exposure, data = book
    # a glum formula that meets a missing value or the log of 0
    table = X.assign(region=pd.Categorical(X.region))
    model = glum.GeneralizedLinearRegressor(
        family="poisson", alpha=0.01, formula="np.log(density) + age:power"
    ).fit(table, data.counts)
    cols = list(GlumModel(model).feature_names_in_)
    holes = table[cols].iloc[:5].copy()
    holes.loc[2, "density"] = 0.0
    with pytest.raises(MissingValueError, match="log of 0"):
        shapgov.explain(model, holes, background=table[cols].iloc[50:60])
    with pytest.raises(NotFittedModelError, match="fit"):
        shapgov.explain(glum.GeneralizedLinearRegressor(), table.iloc[:5])
    # patsy: the log of 0 names the factor
    sm_model = smf.glm(
        "counts ~ np.log(density) + age", data=data, family=sm.families.Poisson()
    ).fit()
    rows = reads(sm_model, X).iloc[:5].copy()
    rows.loc[3, "density"] = 0.0
    with pytest.raises(MissingValueError, match=r"np\.log\(density\)"):
        shapgov.explain(sm_model, rows, background=reads(sm_model, X).iloc[50:60])
    # exposure with a non-log link: statsmodels takes none; DataRobot's rule multiplies it
    gamma = smf.glm(
        "amount ~ age + power",
        data=data,
        family=sm.families.Gamma(link=sm.families.links.Identity()),
    ).fit()
    rows, bg = reads(gamma, X).iloc[:4], reads(gamma, X).iloc[50:80]
    e = shapgov.explain(gamma, rows, background=bg, exposure=exposure[:4])
    assert "exposure_taken_by" not in e.additivity.applied
    assert np.max(np.abs(e.prediction[:, 0] - gamma.predict(rows) * exposure[:4])) < 1e-9
    # boolean dummies (pandas get_dummies) for a model fitted from arrays
    dummies = pd.get_dummies(X[["region"]], drop_first=True).assign(age=X.age)
    ols = sm.OLS(data.amount, sm.add_constant(dummies.astype(float))).fit()
    rows = sm.add_constant(dummies, has_constant="add").iloc[:5]
    e = shapgov.explain(ols, rows, background=sm.add_constant(dummies).iloc[50:80])
    ref, base = _margin_oracle(
        lambda D: ols.predict(D.astype(float)), rows, sm.add_constant(dummies).iloc[50:80]
    )
    _check(e, ref, base)
    # a formula fitted on a dict of arrays: its functions are not taken for columns
    as_dict = {c: data[c].to_numpy() for c in ["counts", "age", "region"]}
    fitted = smf.glm(
        "counts ~ bs(age, 3) + C(region)", data=as_dict, family=sm.families.Poisson()
    ).fit()
    assert list(reads(fitted, X).columns) == ["age", "region"]


def test_glum_cv_variant_with_a_formula(book):
    X, _, data = book
    table = X.assign(region=pd.Categorical(X.region))
    model = glum.GeneralizedLinearRegressorCV(
        family="gamma", formula="bs(age, 3) + C(region) + power:bonus", n_alphas=3, cv=2
    ).fit(table, data.amount)
    cols = list(GlumModel(model).feature_names_in_)
    rows, bg = table[cols].iloc[:5], table[cols].iloc[100:130]
    e = shapgov.explain(model, rows, background=bg, interactions=True)
    assert e.vertices[0].matrix_row == "glm"
    ref, base = _margin_oracle(lambda D: model.linear_predictor(D), rows, bg)
    _check(e, ref, base)
    assert np.max(np.abs(e.interaction_values.sum(2) - e.values)) <= TOL


def test_a_misread_design_is_refused_never_reported(book, monkeypatch):
    """The terms are checked against the library's own linear predictor on every
    explained row: a reading off by one coefficient is refused."""
    from dataclasses import replace

    from shapgov.errors import UndecomposableModelError
    from shapgov_plugins.statsmodels_glms import StatsmodelsResults

    X, _, data = book
    model = smf.glm(
        "counts ~ bs(age, 3) + C(region)", data=data, family=sm.families.Poisson()
    ).fit()
    read = StatsmodelsResults.term_model

    def misread(self):
        terms = read(self)
        first = terms.terms[0]
        wrong = replace(first, coef=first.coef + 1e-6)
        return replace(terms, terms=(wrong, *terms.terms[1:]))

    monkeypatch.setattr(StatsmodelsResults, "term_model", misread)
    rows = reads(model, X)
    with pytest.raises(UndecomposableModelError, match="as read, give a margin"):
        shapgov.explain(model, rows.iloc[:5], background=rows.iloc[50:60], fallback=None)
