"""Can Spark's Python workers run shapgov? Checked on the driver before the first job that
needs shapgov in the workers.

Spark starts its Python workers with the interpreter named by ``PYSPARK_PYTHON`` (or the
``spark.pyspark.python`` setting), ``python3`` on the ``PATH`` when unset: not the
driver's own Python. A driver run from a virtual environment that is not activated
(``.venv/bin/python job.py``) therefore gets workers without shapgov, whose tasks would
fail deep inside Spark with ``ModuleNotFoundError: No module named 'shapgov'``. One
one-row job runs a stdlib-only function in a worker (pickled by value, so the worker needs
nothing but Python and pyspark to run it) that imports what the tasks import and reports
what went wrong; the driver turns that into a :class:`~shapgov.errors.WorkerEnvironmentError`
that names ``PYSPARK_PYTHON`` and the fix.
"""

from __future__ import annotations

import sys
from typing import Any

from shapgov.errors import WorkerEnvironmentError

#: what every task imports (the module of :class:`~shapgov.spark.batches.BatchExplainer`)
TASK_MODULE = "shapgov.spark.batches"


def worker_environment(module: str) -> tuple[str, str, str | None]:
    """Run in a worker: ``(sys.executable, Python version, None or why importing
    ``module`` failed)``. Uses nothing but the standard library."""
    import importlib
    import sys

    try:
        importlib.import_module(module)
    except Exception as err:  # any failure to import is the finding reported
        problem: str | None = f"{type(err).__name__}: {err}"
    else:
        problem = None
    return sys.executable, sys.version.split()[0], problem


def check_workers(spark: Any) -> None:
    """Refuse, on the driver, a Spark whose Python workers cannot import shapgov.

    Runs one task (one worker) of :func:`worker_environment`.

    :param spark: The ``SparkSession`` the table belongs to.
    :raises WorkerEnvironmentError: A worker cannot import shapgov (its interpreter and
        the import error are named), or no Python worker could run at all; the message
        names ``PYSPARK_PYTHON`` and how to point it at a Python that has shapgov.
    """
    from pyspark import cloudpickle

    sc = spark.sparkContext
    told = getattr(sc, "pythonExec", None) or "python3"
    here = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(here)  # the worker needs no shapgov to run it
    try:
        found = sc.parallelize([TASK_MODULE], 1).map(worker_environment).collect()
    except Exception as err:  # the job itself failed: no Python worker ran
        raise WorkerEnvironmentError(
            f"Spark could not run a Python worker with PYSPARK_PYTHON={told!r} "
            f"({_failure(err)}). {_fix(told)}"
        ) from err
    finally:
        cloudpickle.unregister_pickle_by_value(here)
    executable, version, problem = found[0]
    if problem is not None:
        raise WorkerEnvironmentError(
            f"Spark's Python workers cannot import shapgov: they run PYSPARK_PYTHON="
            f"{told!r} ({executable}, Python {version}), where importing {TASK_MODULE} "
            f"raised {problem}; this driver runs {sys.executable}. {_fix(told)}"
        )


def _failure(err: Exception) -> str:
    """The task's failure out of Spark's job error (``Cannot run program ...``), else its
    first line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "most recent failure" in line and "): " in line:
            return line.split("): ", 1)[1]
    return lines[0] if lines else repr(err)


def _fix(told: str) -> str:
    return (
        "Point PYSPARK_PYTHON (or spark.pyspark.python) at a Python that has shapgov "
        "installed, on every worker, before the SparkSession starts: for a local Spark "
        "os.environ['PYSPARK_PYTHON'] = sys.executable (or activate the virtual "
        "environment first, so that python3 is its Python); on a cluster, install shapgov "
        f"into the workers' Python (now {told!r})."
    )
