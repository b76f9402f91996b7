"""Benchmark: shapgov.spark.explain on a local Spark against in-process shapgov.explain.

Workload (issue 19): 30 features, LightGBM 100 trees x 31 leaves (trained on 50,000
rows), path-dependent and interventional (100 background rows). The Spark table is
generated in Spark (``spark.range`` + ``randn``), so the driver never holds it; the job is
forced with the ``noop`` sink (every row explained, nothing written). Prints rows per
second in process (numba on every core) and on Spark (``local[N]``: N tasks, one numba
thread each), their ratio, agreement on the first rows, and the peak RSS of the driver's
Python process and of the JVM.

Run: python benchmarks/bench_spark.py [--rows 1000000] [--master local[2]] [--games both] [--cache]
     python benchmarks/bench_spark.py --rows 4000000 --no-in-process   (driver memory)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ["PYSPARK_PYTHON"] = sys.executable
sys.path.insert(0, str(Path(__file__).parent))

N_FEATURES = 30
SEED = 7


def spark_table(spark, rows: int):
    from pyspark.sql import functions as F

    cols = [F.randn(SEED + j).alias(f"f{j}") for j in range(N_FEATURES)]
    return spark.range(rows).select(F.col("id"), *cols)


def model_and_background(spark):
    """A model trained on 50,000 rows of the same generator, and 100 background rows."""
    import lightgbm as lgb

    train = spark_table(spark, 50_000).toPandas()
    X = train.drop(columns="id")
    y = X.f0 + X.f1 * X.f2 + np.sin(X.f3) + 0.5 * X.f4 * X.f5
    model = lgb.LGBMRegressor(n_estimators=100, num_leaves=31, verbose=-1).fit(X, y)
    return model, X.iloc[:100]


def jvm_peak_mib(spark) -> float:
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--games", choices=("both", "path", "interventional"), default="both")
    parser.add_argument("--no-in-process", action="store_true")
    parser.add_argument("--cache", action="store_true", help="cache the generated table first")
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    import shapgov
    import shapgov.spark

    spark = (
        SparkSession.builder.master(args.master)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    model, bg = model_and_background(spark)
    sdf = spark_table(spark, args.rows).repartition(8 * spark.sparkContext.defaultParallelism)
    if args.cache:  # the table is there, as one read from storage would be: not timed
        sdf = sdf.cache()
        sdf.count()
    games = {"path": ("tree_path_dependent", None), "interventional": ("interventional", bg)}
    chosen = list(games) if args.games == "both" else [args.games]
    print(f"{args.rows:,} rows x {N_FEATURES} features, LightGBM 100 x 31 leaves, {args.master}")
    for name in chosen:
        game, background = games[name]
        options = {"feature_perturbation": game}
        out = shapgov.spark.explain(model, sdf, background=background, keys=["id"], **options)
        start = time.perf_counter()
        out.write.format("noop").mode("overwrite").save()
        t_spark = time.perf_counter() - start
        line = f"  {name:15s} spark {args.rows / t_spark:10,.0f} rows/s ({t_spark:6.1f} s)"
        if not args.no_in_process:
            # in process on the first 200,000 rows of the same table
            local = sdf.filter(sdf.id < 200_000).toPandas().sort_values("id")
            X = local.drop(columns="id")
            shapgov.explain(model, X.iloc[:1000], background=background, **options)  # warm
            start = time.perf_counter()
            e = shapgov.explain(model, X, background=background, **options)
            t_local = time.perf_counter() - start
            rate = len(X) / t_local
            head = out.filter(out.id < 200).toPandas().sort_values("id")
            cols = [f"shap_f{j}" for j in range(N_FEATURES)]
            mask = local["id"].to_numpy() < 200
            diff = float(np.abs(head[cols].to_numpy() - e.values[mask]).max())
            line += (
                f" | in process {rate:10,.0f} rows/s on {len(X):,} rows | spark / in process "
                f"{(args.rows / t_spark) / rate:.2f} | max |diff| {diff:.1e}"
            )
            del local, X, e
        print(line, flush=True)
    driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  driver peak RSS: Python {driver:,.0f} MiB, JVM {jvm_peak_mib(spark):,.0f} MiB")
    spark.stop()


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    main()
