"""The demo: the governance loop, end to end, on the embedded MLflow store.

Three blueprints on data that ships with scikit-learn — the KernelExplainer tutorial's
diabetes MLP, a LightGBM classifier on the breast cancer data, and a blender (LightGBM,
Ridge and an MLP behind a ColumnTransformer) — and two on data the demo generates
(seeded), daily store sales and credit applicants: each fitted, explained, checked by the
additivity policy, logged with Feature Impact, XEMP and their comparison, reported,
registered and put through the approval check. The sales model is trained on 2023 and
explained month by month over 2023-2024 (out-of-time), its lags and rolling mean one
player; the price spread triples from July 2024, and the drift shows in the report's
"Explanations over time". The credit model's set also holds the adverse-action reasons of
its declined applicants (the consumer-credit catalogue shipped in
``shapgov/adverse_action/catalogues``, the approved applicants as the reference
population, 20 stability resamples), and the demo prints one applicant's notice, derived
again from the approved version's set as ``shapgov reasons`` does.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shapgov import demo_review
from shapgov.demo_data import (
    CREDIT_CUTOFF,
    SALES_PLAYERS,
    _diabetes,
    applicant_groups,
    credit_applicants,
    credit_catalogue,
    daily_sales,
    tutorial_mlp,
)
from shapgov.errors import InputError

#: The demo's cases, in the order it runs them (``shapgov demo --case NAME`` picks some).
CASE_NAMES = (
    "diabetes-mlp",
    "breast-cancer-lightgbm",
    "diabetes-blender",
    "daily-sales-over-time",
    "credit-default-lightgbm",
    "motor-claims-statsmodels",
)

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

STEPS = ("fit", "explain and log", "register", "approve", "report", "document")


@dataclass(frozen=True)
class Case:
    """One blueprint of the demo, with its data split."""

    name: str
    title: str
    model: Any
    X_train: Any
    X_test: Any
    y_train: Any
    y_test: Any
    flavor: str  # "sklearn", "lightgbm" or "statsmodels": how the model is logged to MLflow
    #: Options of shapgov.over_time for a time-aware case (X_test carries the time).
    over_time: dict[str, Any] | None = None
    #: Options of shapgov.reasons for a case whose set holds adverse-action reasons.
    reasons: dict[str, Any] | None = None
    #: Taken through the review workflow by declared users (:mod:`shapgov.demo_review`).
    reviewed: bool = False
    #: Options of shapgov.fairness for a case whose set holds the fair-lending checks.
    fairness: dict[str, Any] | None = None
    #: The explained rows' exposure, for a model that takes one (statsmodels' exposure=).
    exposure: Any = None
    #: Fitted when the case is built (a statsmodels formula GLM fits through its own API).
    fitted: bool = False


def cases() -> list[Case]:
    """The demo's six blueprints with their data (named as :data:`CASE_NAMES`), unfitted
    but the statsmodels GLM (fitted through its formula API; left out without
    statsmodels)."""
    from lightgbm import LGBMClassifier, LGBMRegressor
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import VotingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    cancer = train_test_split(X, y, test_size=0.33, random_state=42, stratify=y)
    Xd_train, Xd_test, yd_train, yd_test = _diabetes(categorical_sex=True)
    numeric = [c for c in Xd_train.columns if c != "sex"]
    blender = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["sex"])]
                ),
            ),
            (
                "blend",
                VotingRegressor(
                    [
                        ("lgbm", LGBMRegressor(n_estimators=100, num_leaves=15, verbose=-1)),
                        ("ridge", Ridge(alpha=1.0)),
                        (
                            "mlp",
                            MLPRegressor(hidden_layer_sizes=(8,), max_iter=5000, random_state=0),
                        ),
                    ]
                ),
            ),
        ]
    )
    return [
        Case(
            "diabetes-mlp",
            "The tutorial's MLP (StandardScaler -> MLPRegressor(5, logistic)) on diabetes",
            tutorial_mlp(),
            *_diabetes(),
            flavor="sklearn",
        ),
        Case(
            "breast-cancer-lightgbm",
            "LightGBM classifier on breast cancer",
            LGBMClassifier(n_estimators=100, num_leaves=15, verbose=-1),
            *cancer,
            flavor="lightgbm",
        ),
        Case(
            "diabetes-blender",
            "Blender: ColumnTransformer -> VotingRegressor(LightGBM, Ridge, MLP) on diabetes",
            blender,
            Xd_train,
            Xd_test,
            yd_train,
            yd_test,
            flavor="sklearn",
        ),
        _sales_case(LGBMRegressor),
        _credit_case(LGBMClassifier),
        *_claims_case(),
    ]


def _claims_case() -> list[Case]:
    """The motor-claims GLM (:mod:`shapgov.demo_claims`), when statsmodels is installed
    (``pip install "shapgov[glm]"``)."""
    import importlib.util

    if importlib.util.find_spec("statsmodels") is None:
        return []
    from shapgov.demo_claims import claims_model

    fitted = claims_model()
    return [
        Case(
            "motor-claims-statsmodels",
            "statsmodels Poisson GLM of motor claim frequency from a formula (spline, "
            "categorical reference, log, interaction) with each policy's exposure",
            fitted["model"],
            fitted["X_train"],
            fitted["X_test"],
            fitted["y_train"],
            fitted["y_test"],
            flavor="statsmodels",
            exposure=fitted["exposure_test"],
            fitted=True,
        )
    ]


def _sales_case(regressor: Any) -> Case:
    """Trained on 2023 (without the date), explained over 2023-2024 by month."""
    X, y = daily_sales()
    train = (X["date"] < "2024-01-01").to_numpy()
    return Case(
        "daily-sales-over-time",
        "Time-aware: LightGBM on daily store sales, trained on 2023, explained by month "
        "over 2023-2024 (lags and rolling mean as one player)",
        regressor(n_estimators=100, num_leaves=15, verbose=-1),
        X[train].drop(columns="date"),
        X,
        y[train],
        y,
        flavor="lightgbm",
        over_time={"time": "date", "freq": "M", "players": SALES_PLAYERS},
    )


def _credit_case(classifier: Any) -> Case:
    """Explained with the reasons of its declined applicants against the approved ones
    among 200 training applicants (20 stability resamples)."""
    from sklearn.model_selection import train_test_split

    from shapgov.adverse_action.decision import Decision

    X, y = credit_applicants()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.33, random_state=42, stratify=y
    )
    reasons = {
        "catalogue": credit_catalogue(),
        "decision": Decision(cutoff=CREDIT_CUTOFF),
        "reference": X_train.sample(200, random_state=0),
        "population": "approved",
        "stability": 20,
    }
    return Case(
        "credit-default-lightgbm",
        "LightGBM classifier of credit default on generated applicants, with the "
        "adverse-action reasons of those it declines",
        classifier(n_estimators=100, num_leaves=15, verbose=-1),
        X_train,
        X_test,
        y_train,
        y_test,
        flavor="lightgbm",
        reasons=reasons,
        reviewed=True,
        fairness={
            "protected": applicant_groups(X).loc[X_test.index],
            "decision": Decision(cutoff=CREDIT_CUTOFF),
        },
    )


def _fit(case: Case) -> None:
    from sklearn.exceptions import ConvergenceWarning

    if case.fitted:
        return

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        case.model.fit(case.X_train, case.y_train)


def _trusted_types(model: Any) -> dict[str, Any]:
    """MLflow saves scikit-learn models with skops, which loads only types it is told to
    trust: the demo trusts exactly the types of the model it has just trained."""
    import inspect

    import mlflow

    if "skops_trusted_types" not in inspect.signature(mlflow.sklearn.log_model).parameters:
        return {}
    import skops.io

    return {"skops_trusted_types": skops.io.get_untrusted_types(data=skops.io.dumps(model))}


def _pins(names: list[str]) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


def _log_model(case: Case) -> Any:
    import mlflow

    if case.flavor == "statsmodels":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mlflow.statsmodels.log_model(
                case.model,
                name="model",
                input_example=case.X_train.head(3),
                pip_requirements=_pins(["statsmodels", "patsy"]),
            )
    if case.flavor == "lightgbm":
        flavor, extra = mlflow.lightgbm, {}
    else:
        flavor, extra = mlflow.sklearn, _trusted_types(case.model)
    # the demo knows what its models need: pinning it spares MLflow's inference, which
    # loads each model again in a subprocess
    extra["pip_requirements"] = _pins(["scikit-learn", "lightgbm", "skops", "cloudpickle"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own advice on signatures and pip pins
        return flavor.log_model(
            case.model, name="model", input_example=case.X_train.head(3), **extra
        )


def run_case(case: Case, *, out_dir: Path, progress: Any, echo: Callable[[str], None]) -> Any:
    """Fit, explain and log, register, approve and report one case; returns the verdict."""
    import mlflow

    import shapgov
    import shapgov.mlflow
    from shapgov.analyses.impact import shap_impact
    from shapgov.errors import AdditivityError, AdditivityWarning

    def step(name: str) -> None:
        progress.set_postfix_str(f"{case.name}: {name}")

    step("fit")
    _fit(case)
    progress.update()
    step("explain and log")
    started = time.perf_counter()
    who = demo_review.declared(demo_review.DEVELOPER) if case.reviewed else nullcontext()
    with (
        mlflow.start_run(run_name=case.name) as run,
        warnings.catch_warnings(record=True) as w,
        who,
    ):
        warnings.simplefilter("always", AdditivityWarning)
        try:
            e = shapgov.mlflow.explain_and_log(
                case.model,
                case.X_test,
                y=case.y_test,
                background=case.X_train,
                training=case.X_train,
                over_time=case.over_time,
                reasons=case.reasons,
                fairness=case.fairness,
                exposure=case.exposure,
            )
        except AdditivityError as err:
            e = None
            echo(f"   additivity FAILED, values withheld: {err.report.describe()}")
        seconds = time.perf_counter() - started
        info = _log_model(case)
    progress.update()
    step("register")
    mv = mlflow.register_model(info.model_uri, f"shapgov-demo-{case.name}")
    progress.update()
    step("approve")
    if case.reviewed:
        verdict = demo_review.review_and_approve(mv.name, str(mv.version), echo=echo)
    else:
        verdict = shapgov.approve(mv.name, mv.version, alias="champion")
    progress.update()
    step("report")
    path = shapgov.report(model=mv.name, version=mv.version, out=out_dir / f"{case.name}.html")
    progress.update()
    step("document")
    documents = _documents(mv, verdict, out_dir)
    progress.update()
    for caught in w:
        echo(f"   warning: {caught.message}")
    if e is not None:
        a = e.additivity
        vertices = ", ".join(f"{p.name} [{p.explainer}]" for p in e.vertices)
        top = shap_impact(e).frame.head(3)
        echo(
            f"   {len(e)} rows explained, analysed, reported and logged in {seconds:.1f}s; "
            f"vertices: {vertices}\n"
            f"   {e.game['description']}\n"
            f"   additivity {a.status} (max normalized mismatch "
            f"{a.max_normalized_mismatch:.1e}, threshold {a.threshold:g}); top features: "
            + ", ".join(
                f"{f} ({v:.0f})" for f, v in zip(top["feature"], top["normalized"], strict=True)
            )
        )
    if e is not None and case.over_time is not None:
        _echo_over_time(run.info.run_id, echo)
    if e is not None and case.reasons is not None:
        _echo_reasons(case, run.info.run_id, mv, out_dir, echo)
    if e is not None and case.fairness is not None:
        _echo_fairness(run.info.run_id, echo)
    if e is not None and case.exposure is not None:
        _echo_exposure(e, case, echo)
    from shapgov.mlflow.signing import verify_version

    checked = verify_version(mv.name, mv.version)
    echo(
        f"   run {run.info.run_id}; model {mv.name} v{mv.version}: {verdict.verdict}"
        + (", alias 'champion'" if verdict.approved else f" ({'; '.join(verdict.reasons)})")
        + (f", signature verified (approver {checked.approver})" if checked.verified else "")
        + f"\n   report: {path.resolve()}"
        + "".join(f"\n   {line}" for line in documents)
    )
    return verdict


def _echo_exposure(e: Any, case: Case, echo: Callable[[str], None]) -> None:
    """The GLM case: its terms traced to columns and the exposure taken statsmodels' way."""
    own = np.asarray(case.model.predict(case.X_test, exposure=case.exposure), dtype=float)
    rebuilt = e.link.inverse(e.expected_value + e.values.sum(axis=1)[:, None])[:, 0]
    gap = float(np.max(np.abs(rebuilt * case.exposure - own) / own))
    (part,) = e.vertices
    echo(
        f"   {part.name} [{part.explainer}]: the formula's terms traced to "
        f"{case.X_test.shape[1]} columns ({', '.join(case.X_test.columns)}); exposure taken "
        f"as statsmodels takes it (predict(X, exposure=)), base + sum(SHAP) rebuilds its "
        f"expected claims within {gap:.1e} (relative)"
    )


def _documents(mv: Any, verdict: Any, out_dir: Path) -> list[str]:
    """The model documentation (Word and PDF) of an approved version, logged and recorded
    in the ledger; where no Chromium prints the PDF, the Word file alone, said."""
    import shapgov
    from shapgov.errors import DocumentRendererError

    if not verdict.approved:
        return ["no model documentation: the version is not approved"]
    try:
        written = shapgov.document(mv.name, mv.version, out_dir=out_dir)
        missing = ""
    except DocumentRendererError as err:
        written = shapgov.document(mv.name, mv.version, formats=("docx",), out_dir=out_dir)
        missing = f" (no PDF: {err})"
    lines = [f"{fmt}: {path.resolve()}" for fmt, path in written.paths.items()]
    return [*lines[:-1], lines[-1] + missing, f"documents {written.ledger_note}"]


def _echo_fairness(run_id: str, echo: Callable[[str], None]) -> None:
    """The fair-lending checks as the set holds them (section "Fair lending")."""
    import json

    import mlflow

    summary = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/shapgov/fairness.json"))
    for g in summary["flagged_groups"]:
        echo(
            f"   fair lending: {g['group']} ({g['attribute']}) flagged, adverse impact ratio "
            f"{g['air']:.2f} (four-fifths screen, Holm-corrected); the gap runs mostly "
            f"through {g['top_inputs'][0]}"
        )
    for p in summary["flagged_proxies"]:
        echo(f"   proxy for {p['attribute']}: {p['input']} (proxy score {p['score']:.2f})")
    if not summary["flagged_groups"] and not summary["flagged_proxies"]:
        echo(f"   fair lending: no group or proxy flagged (lowest AIR {summary['min_air']:.2f})")


def _echo_over_time(run_id: str, echo: Callable[[str], None]) -> None:
    import mlflow

    result = mlflow.artifacts.load_dict(f"runs:/{run_id}/shapgov/over_time.json")
    flagged = result["flagged_windows"]
    echo(
        f"   explained over {len(result['windows'])} monthly windows against one background; "
        f"drift flagged from {flagged[0] if flagged else 'no window'} "
        f"({len(flagged)} windows); largest impact drift {result['max_impact_drift']:.3f} "
        "(shapgov approve --max-impact-drift judges it)"
    )


def _echo_reasons(
    case: Case, run_id: str, mv: Any, out_dir: Path, echo: Callable[[str], None]
) -> None:
    """The reasons the set holds, and one declined applicant's notice derived again from
    the set (its catalogue, rule and reference population), as 'shapgov reasons' does."""
    import tempfile

    import mlflow

    from shapgov.adverse_action.stored import read_reasons, reasons_like_the_set

    with tempfile.TemporaryDirectory(prefix="shapgov-demo-") as tmp:
        local = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/shapgov", dst_path=tmp)
        stored = read_reasons(Path(local))
    summary, frame = stored["summary"], stored["frame"]
    top = [f for f in summary["frequencies"] if f["any"]][:3]
    kept = summary["stability"] or {}
    echo(
        f"   adverse-action reasons: {summary['declined']} of {summary['rows']} applicants "
        f"declined ({summary['decision']['rule']}), measured against the "
        f"{summary['reference']['rows']} approved of {summary['reference']['candidates']} "
        "reference applicants; most given: "
        + ", ".join(f"{f['code']} ({f['any']})" for f in top)
        + f"; {kept.get('mean_share_kept', float('nan')):.0%} of reasons kept over "
        f"{kept.get('resamples', 0)} resamples of the reference population"
    )
    key = frame.loc[frame["status"] == "reasons", "row"].iloc[0]
    again = reasons_like_the_set(case.model, case.X_test.loc[[key]], stored)
    notice = again.notice(key).splitlines()
    echo(f"   notice for applicant {key}: {notice[0].split(': ', 1)[1]}")
    echo("\n".join(f"   {line}" for line in notice[1:]))
    applicants = (out_dir / f"{case.name}-applicants.csv").resolve()
    case.X_test.to_csv(applicants)
    echo(
        f"   the same from the command line: shapgov reasons --model-uri "
        f"models:/{mv.name}/{mv.version} --data {applicants} --key applicant --notice {key}"
    )


def challenger_case(case: Case, *, out_dir: Path, echo: Callable[[str], None]) -> Any:
    """A second version of ``case``'s model (deeper trees, without its top input's
    neighbour ``mean radius``), compared with the champion on the test rows in one game
    and logged on its run; then approved against the champion and reported: the
    challenger's report shows the section "Challenger comparison"."""
    import mlflow
    from sklearn.base import clone

    import shapgov
    import shapgov.mlflow

    name = f"shapgov-demo-{case.name}"
    echo(f"\n== challenger: a second version of {name}, compared with the champion")
    dropped = "mean radius"
    model = clone(case.model).set_params(num_leaves=31, n_estimators=200)
    X_train, X_test = case.X_train.drop(columns=[dropped]), case.X_test.drop(columns=[dropped])
    model.fit(X_train, case.y_train)
    challenger = Case(case.name, case.title, model, X_train, X_test, case.y_train,
                      case.y_test, case.flavor)  # fmt: skip
    with mlflow.start_run(run_name=f"{case.name}-challenger"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shapgov.mlflow.explain_and_log(
            model, X_test, y=case.y_test, background=X_train, training=X_train
        )
        info = _log_model(challenger)
    mv = mlflow.register_model(info.model_uri, name)
    result = shapgov.compare_versions(
        f"models:/{name}@champion", f"models:/{name}/{mv.version}", case.X_test,
        y=case.y_test.to_numpy(), background=case.X_train, log=True,
    )  # fmt: skip
    s, auc = result.summary, result.metrics.set_index("metric").loc["roc_auc"]
    moved = result.impact.iloc[0]
    echo(
        f"   v{mv.version} against champion v{s['champion']['version']} in one game: Feature "
        f"Impact rank correlation {s['rank_correlation']:.2f}, score PSI {s['psi']:.3f}; "
        f"ROC AUC {auc['champion']:.4f} -> {auc['challenger']:.4f} (paired bootstrap "
        f"{auc['low']:+.4f} .. {auc['high']:+.4f}); impact moved most: {moved['input']} "
        f"({moved['share_champion']:.1%} -> {moved['share_challenger']:.1%})"
    )
    verdict = shapgov.approve(name, mv.version, against="champion", max_impact_rank_change=3)
    path = shapgov.report(
        model=name, version=mv.version, out=out_dir / f"{case.name}-challenger.html"
    )
    echo(
        f"   approval against the champion (max_impact_rank_change 3): {verdict.verdict}"
        + ("" if verdict.approved else f" ({'; '.join(verdict.reasons)})")
        + f"\n   challenger report with the section 'Challenger comparison': {path.resolve()}"
        + f"\n   again from the registry alone: shapgov compare {name} @champion "
        f"{mv.version} --reproduce"
    )
    return verdict


def tutorial_check(case: Case, *, rows: int, echo: Callable[[str], None]) -> float:
    """The tutorial's fitted MLP explained exactly two ways: the Deep explainer on the MLP
    vertex and Kernel SHAP on the whole pipeline; returns the largest difference."""
    import shapgov

    model, X_train, X_test = case.model, case.X_train, case.X_test
    X = X_test.iloc[:rows]
    deep = shapgov.explain(model, X, background=X_train)
    quiet = {"kernel": {"progress": False}}
    kernel = shapgov.explain(model, X, background=X_train, opaque=True, explainer_options=quiet)
    diff = float(np.abs(deep.values - kernel.values).max())
    echo(
        f"   the tutorial's MLP on {rows} rows against all {len(X_train)} training rows: "
        f"Deep explainer (MLP vertex) and Kernel SHAP (whole pipeline) both exact, "
        f"max |Deep - Kernel| = {diff:.1e}"
    )
    return diff


def run(
    *,
    rows: int = 5,
    out_dir: str | Path = "shapgov-reports",
    tracking_uri: str | None = None,
    only: Sequence[str] = (),
    echo: Callable[[str], None] = print,
) -> list[Any]:
    """The demo on ``tracking_uri`` (default: $MLFLOW_TRACKING_URI, else the embedded
    ``sqlite:///mlflow.db`` in the working directory); returns the approval verdicts.

    :param rows: Rows of the tutorial MLP's Deep-vs-Kernel cross-check.
    :param out_dir: Where the compliance reports (and a demo approval key) go.
    :param tracking_uri: The MLflow tracking and registry store.
    :param only: Names of the cases to run (see :data:`CASE_NAMES`); empty: all six.
    :param echo: Where the progress lines go.
    :returns: One approval verdict per case run, in order.
    :raises InputError: ``only`` names a case the demo does not have.
    """
    unknown = sorted(set(only) - set(CASE_NAMES))
    if unknown:
        raise InputError(f"no demo case named {unknown}; the cases are {list(CASE_NAMES)}")
    import mlflow
    from tqdm.auto import tqdm

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("shapgov-demo")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    echo(f"shapgov demo on {uri}; reports in {out.resolve()}")
    verdicts = []
    todo = [c for c in cases() if not only or c.name in only]
    with (
        demo_review.demo_key(out, echo) as key,
        tqdm(total=len(todo) * len(STEPS), desc="demo", unit="step", leave=False) as progress,
    ):
        for i, case in enumerate(todo, 1):
            echo(f"\n== [{i}/{len(todo)}] {case.title}")
            verdicts.append(run_case(case, out_dir=out, progress=progress, echo=echo))
            if case.name == "diabetes-mlp":
                tutorial_check(case, rows=rows, echo=echo)
            if case.name == "breast-cancer-lightgbm" and verdicts[-1].approved:
                challenger_case(case, out_dir=out, echo=echo)
        if key is not None and todo:
            echo("\n" + demo_review.verify_hint(key, todo[0].name))
        if any(c.reviewed for c in todo):
            echo("\n" + demo_review.review_page_hint(uri, None if key is None else str(key)))
    echo(
        f"\nReports: {out.resolve()}\n"
        f"Browse the runs and the registry: mlflow ui --backend-store-uri {uri}"
    )
    return verdicts
