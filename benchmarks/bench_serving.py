"""Benchmark: explanations served with predictions (issue 17).

Workload: LightGBM 100 trees x 31 leaves on 30 features, 100-row background
(interventional). Prints
1. in-process ``ServedExplainer.explain`` of one row (p50, p99 over 300 rows) and of
   10,000 rows in one call against ``shapgov.explain`` on the same rows (values checked);
2. through ``mlflow models serve --env-manager local`` on localhost (a sqlite registry in
   a temporary directory, an approved version, its explaining model): one row per request,
   4 concurrent clients, p50 / p99 latency and requests per second;
   and, before the server starts, ``mlflow.pyfunc.load_model(uri).predict`` of one row in
   process (p50, p99 over 300 rows);
3. MLflow's own ``mlflow.shap.log_explainer`` with a TreeExplainer when it can be logged
   (it says so when it cannot), its latency per row and whether its values are additive.

Run: python benchmarks/bench_serving.py [--requests N] [--workers W]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# as a serving process runs (see shapgov/mlflow/explaining_model.py): OpenMP threads sleep
# between requests instead of spinning on the cores numba's kernels need
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).parent))
from timing import best_of


def workload(n: int = 20_000, seed: int = 0):
    import lightgbm

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 30)), columns=[f"x{j}" for j in range(30)])
    y = X["x0"] * X["x1"] + np.sin(X["x2"]) + 0.1 * X.iloc[:, 3:].sum(axis=1)
    model = lightgbm.LGBMRegressor(n_estimators=100, num_leaves=31, verbose=-1).fit(X, y)
    return model, X


def in_process(model, X: pd.DataFrame, background: pd.DataFrame, what: str = "") -> None:
    import shapgov
    from shapgov.serving import ServedExplainer

    served = ServedExplainer(model, background=background, top_k=3)
    rows_available = len(X)
    served.explain(X.iloc[:5])
    times = []
    for i in range(min(300, rows_available)):
        row = X.iloc[[i]]
        start = time.perf_counter()
        served.explain(row)
        times.append(time.perf_counter() - start)
    rows = X.iloc[:10_000]
    t_served, out = best_of(lambda: served.explain(rows), 2)
    t_explain, e = best_of(lambda: shapgov.explain(model, rows, background=background), 2)
    shap_cols = [f"shap_{c}" for c in X.columns]
    diff = np.abs(out[shap_cols].to_numpy() - e.values).max()
    print(f"in process (ServedExplainer.explain){what}:")
    p50, p99 = 1e3 * np.median(times), 1e3 * np.quantile(times, 0.99)
    print(f"  one row : p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(
        f"  {len(rows):,} rows in one call: {t_served:.2f} s; shapgov.explain {t_explain:.2f} s "
        f"({t_served / t_explain:.2f}x); max |diff| {diff:.1e}"
    )


def blender(run) -> None:
    """The demo's blender (ColumnTransformer -> VotingRegressor(LightGBM, Ridge, MLP)) on
    diabetes, its training rows as background (as the demo explains it)."""
    from shapgov.demo import _fit, cases

    case = next(c for c in cases() if c.name == "diabetes-blender")
    _fit(case)
    rows = pd.concat([case.X_test] * 70, ignore_index=True)  # 10,290 rows
    run(case.model, rows, case.X_train.iloc[:100], f" — the demo's blender, {len(rows)} rows")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, rows: pd.DataFrame) -> dict:
    body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split"))}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def served(
    model, X: pd.DataFrame, background: pd.DataFrame, requests: int, tmp: Path, workers: int
) -> None:
    import mlflow

    import shapgov
    import shapgov.mlflow
    from shapgov.mlflow.serving import log_explaining_model

    store = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    mlflow.set_experiment("bench-serving")
    with mlflow.start_run():
        shapgov.mlflow.explain_and_log(model, X.iloc[:200], background=background, analyses=False)
        info = mlflow.lightgbm.log_model(model, name="model", input_example=X.iloc[:3])
    version = mlflow.register_model(info.model_uri, "bench").version
    shapgov.approve("bench", version, alias="champion")
    with mlflow.start_run():
        log_explaining_model(
            "models:/bench@champion", background=background, registered_model_name="bench-x"
        )
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("bench-x", "champion", "1")
    loaded = mlflow.pyfunc.load_model("models:/bench-x@champion")
    loaded.predict(X.iloc[[0]])
    times = []
    for i in range(300):
        start = time.perf_counter()
        loaded.predict(X.iloc[[2000 + i]])
        times.append(time.perf_counter() - start)
    print(
        "mlflow.pyfunc.load_model(uri).predict, one row, in process: "
        f"p50 {1e3 * np.median(times):.1f} ms, p99 {1e3 * np.quantile(times, 0.99):.1f} ms"
    )
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": store}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/bench-x@champion",
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        _post(port, X.iloc[[0]])
        latencies: list[float] = []
        bad: list[int] = []

        def client(c: int) -> None:
            for r in range(requests):
                i = 1000 + c * requests + r
                start = time.perf_counter()
                out = pd.DataFrame(_post(port, X.iloc[[i]])["predictions"])
                latencies.append(time.perf_counter() - start)
                rebuilt = out["base_value"].iloc[0] + out.filter(like="shap_").iloc[0].sum()
                if abs(rebuilt - out["prediction"].iloc[0]) > 1e-9:
                    bad.append(i)

        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        lat = np.asarray(latencies)
        print(
            f"mlflow models serve (localhost, {workers} worker(s), one row per request, "
            "4 concurrent clients):"
        )
        print(
            f"  {len(lat)} requests: p50 {1e3 * np.median(lat):.1f} ms, p99 "
            f"{1e3 * np.quantile(lat, 0.99):.1f} ms, {len(lat) / wall:.0f} requests/s; "
            f"non-additive answers: {len(bad)}"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def mlflow_shap(model, X: pd.DataFrame, background: pd.DataFrame, tmp: Path) -> None:
    import mlflow
    import shap

    print("MLflow's own mlflow.shap.log_explainer (TreeExplainer, interventional):")
    try:
        explainer = shap.TreeExplainer(
            model, data=background, feature_perturbation="interventional"
        )
        with mlflow.start_run():
            info = mlflow.shap.log_explainer(explainer, name="shap_explainer")
        loaded = mlflow.pyfunc.load_model(info.model_uri)
    except Exception as err:  # what MLflow's route does with a tree explainer
        print(f"  cannot be logged or loaded: {type(err).__name__}: {str(err)[:200]}")
        return
    loaded.predict(X.iloc[[0]])
    times = []
    for i in range(100):
        start = time.perf_counter()
        values = np.asarray(loaded.predict(X.iloc[[i]]))
        times.append(time.perf_counter() - start)
    rebuilt = explainer.expected_value + values.sum()
    own = model.predict(X.iloc[[99]], raw_score=True)[0]
    print(
        f"  one row in process: p50 {1e3 * np.median(times):.1f} ms; values additive: "
        f"{abs(rebuilt - own) <= 1e-9} (|mismatch| {abs(rebuilt - own):.1e}); no status, "
        "no policy, no base value or prediction in its output"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="per client")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    args = parser.parse_args()
    model, X = workload()
    background = X.iloc[-100:]
    print("LightGBM 100 trees x 31 leaves, 30 features, 100-row background (interventional)")
    in_process(model, X, background)
    blender(in_process)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        served(model, X, background, args.requests, Path(tmp), args.workers)
        mlflow_shap(model, X, background, Path(tmp))


if __name__ == "__main__":
    main()
