"""The largest oracle errors of the GLM cases issue 39 names, printed (tests/test_glms.py
asserts them <= 1e-10): SHAP values and base value against brute force over all coalitions
of the original columns through each model's own predict (with the same offset/exposure).
Run: python benchmarks/glm_oracle_errors.py
"""

import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
warnings.simplefilter("ignore")  # statsmodels' and glum's fitting warnings

import glum  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import statsmodels.api as sm  # noqa: E402
import statsmodels.formula.api as smf  # noqa: E402
from oracles import brute_force_shapley  # noqa: E402
from test_glms import claims, policies, reads  # noqa: E402

import shapgov  # noqa: E402
from shapgov.composites import FrequencySeverityRegressor  # noqa: E402

X, expo = policies()
data = claims(X, expo)


def err(e, f, rows, bg):
    ref, base = brute_force_shapley(f, rows, bg)
    return max(
        np.abs(e.values - ref[:, :, 0]).max(),
        np.abs(np.atleast_1d(e.expected_value) - base[:1]).max(),
    )


out = {}
m = smf.glm(
    "counts ~ bs(age, 4) + power + C(region) + bonus",
    data=data,
    family=sm.families.Poisson(),
    offset=np.log(expo),
).fit()
r, b = reads(m, X.iloc[:10]), reads(m, X.iloc[200:260])
out["Poisson GLM, offset log(exposure), spline on age (statsmodels/patsy)"] = err(
    shapgov.explain(m, r, background=b, offset=np.log(expo[:10])),
    lambda D: m.predict(D, which="linear"),
    r,
    b,
)
m = smf.glm(
    "amount ~ age * power + C(region)",
    data=data,
    family=sm.families.Gamma(link=sm.families.links.Log()),
).fit()
r, b = reads(m, X.iloc[:8]), reads(m, X.iloc[100:150])
out["Gamma GLM, interaction age*power"] = err(
    shapgov.explain(m, r, background=b), lambda D: m.predict(D, which="linear"), r, b
)
d = data.assign(claimed=(data.counts > 0).astype(int))
m = smf.glm(
    "claimed ~ age + power:bonus + C(region)",
    data=d,
    family=sm.families.Binomial(link=sm.families.links.Probit()),
).fit()
r, b = reads(m, X.iloc[:6]), reads(m, X.iloc[400:430])
out["Binomial GLM, probit link, probability space"] = err(
    shapgov.explain(m, r, background=b, output="probability"), lambda D: m.predict(D), r, b
)
t = X.assign(region=pd.Categorical(X.region))
g = glum.GeneralizedLinearRegressor(family="tweedie", alpha=0.01, drop_first=True).fit(
    t, data.amount
)
r, b = t.iloc[:6], t.iloc[100:140]
out["glum Tweedie, category column, offset"] = err(
    shapgov.explain(g, r, background=b, offset=np.log(expo[:6])), g.linear_predictor, r, b
)
f = smf.glm(
    "counts ~ bs(age, 3) + C(region) + power",
    data=data,
    family=sm.families.Poisson(),
    exposure=expo,
).fit()
s = smf.glm(
    "amount ~ age:power + bonus",
    data=data[data.counts > 0],
    family=sm.families.Gamma(link=sm.families.links.Log()),
).fit()
fs = FrequencySeverityRegressor.from_fitted(f, s)
cols = ["age", "power", "region", "bonus"]
r, b = X[cols].iloc[:6], X[cols].iloc[30:70]
out["frequency x severity of two statsmodels GLMs, exposure"] = err(
    shapgov.explain(fs, r, background=b, exposure=expo[:6]),
    lambda D: np.log(f.predict(D)) + np.log(s.predict(D)),
    r,
    b,
)
m = smf.glm(
    'counts ~ C(region, Treatment(reference="south")) + np.log(density) + I(bonus / power)',
    data=data,
    family=sm.families.Poisson(),
    exposure=expo,
).fit()
r, b = reads(m, X.iloc[:5]), reads(m, X.iloc[50:80])
out["C(x, Treatment(reference=...)) and a two-column factor I(bonus/power)"] = err(
    shapgov.explain(m, r, background=b), lambda D: m.predict(D, which="linear"), r, b
)
print("max |shapgov - brute force| over values and base value (tests assert <= 1e-10):")
for k, v in out.items():
    print(f"{v:.1e}  {k}")
