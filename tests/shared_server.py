"""A shared tracking server as a bank runs one, started by the tests on localhost.

:class:`PostgresCluster`: a temporary cluster of Debian's PostgreSQL server (``initdb`` +
``pg_ctl``; run as the ``postgres`` user when the tests run as root, since PostgreSQL
refuses root), password authentication over TCP, stopped and deleted afterwards.

:class:`TrackingServer`: ``mlflow server`` on that cluster (``--backend-store-uri
postgresql://...``), a local artifact destination served over HTTP, and MLflow's
authentication app (``--app-name basic-auth``, its user store in the same cluster).
It can be stopped and started again on the same port and stores (a restart). MLflow's
job runner (GenAI jobs, which shapgov never submits) is off.
"""

from __future__ import annotations

import configparser
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ADMIN = ("admin", "admin-password-1234")
DB_USER, DB_PASSWORD = "shapgov", "db-password-1234"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's
    ``/usr/lib/postgresql/<major>/bin`` (not on PATH there), newest first."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    return None


class PostgresCluster:
    """A temporary PostgreSQL cluster on 127.0.0.1 (see the module)."""

    def __init__(self) -> None:
        folder = postgres_bin()
        if folder is None:
            raise RuntimeError(
                "no PostgreSQL server here: apt-get install postgresql (.ci/run does)"
            )
        self.bin = folder
        self.root = Path(tempfile.mkdtemp(prefix="shapgov-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as = {}
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self._as = {"user": "postgres", "group": "postgres"}
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd=self.root,
            **self._as,
        )
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr[-2000:]}\n{tail}")

    def start(self) -> PostgresCluster:
        pwfile = self.root / "pw"
        pwfile.write_text(DB_PASSWORD + "\n")
        if self._as:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", DB_USER, "-E", "UTF8", "--no-sync",
            "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
        )  # fmt: skip
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its SQLAlchemy URI (psycopg 3, password)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=DB_USER, password=DB_PASSWORD,
            dbname="postgres", autocommit=True,  # CREATE DATABASE runs outside a transaction
        ) as conn:  # fmt: skip
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class TrackingServer:
    """``mlflow server`` on PostgreSQL with the basic-auth app (see the module)."""

    def __init__(
        self,
        cluster: PostgresCluster,
        root: Path,
        *,
        workers: int = 4,
        app_name: str = "basic-auth",
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.app_name = app_name
        self.env = dict(env or {})  # the server's own (the review page's service user, key)
        self.backend = cluster.create_database("mlflow")
        self.auth_db = cluster.create_database("mlflow_auth")
        self.artifacts = root / "artifacts"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.proc: subprocess.Popen | None = None
        config = configparser.ConfigParser()
        config["mlflow"] = {
            "default_permission": "READ",
            "database_uri": self.auth_db,
            "admin_username": ADMIN[0],
            "admin_password": ADMIN[1],
            "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
            # the password hash (PBKDF2, a million rounds) checked once a minute per user
            # and worker, not on every request: MLflow's own setting for busy servers
            "auth_cache_ttl_seconds": "60",
        }
        self.config = root / "basic_auth.ini"
        with self.config.open("w") as f:
            config.write(f)

    def start(self, timeout: float = 120) -> TrackingServer:
        env = dict(
            os.environ,
            MLFLOW_DISABLE_TELEMETRY="true",
            MLFLOW_AUTH_CONFIG_PATH=str(self.config),
            # CSRF protection of the auth app: one static key for every worker and restart
            MLFLOW_FLASK_SERVER_SECRET_KEY="shapgov-tests-csrf-key",
            # no job runner: MLflow's GenAI jobs (evaluation, prompt optimization), which
            # shapgov never submits, would start seven huey consumers per (re)start, each
            # importing mlflow (about 10 s of CPU on the 2 cores the tests have)
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        )
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            env.pop(name, None)
        env.update(self.env)
        cmd = [
            sys.executable, "-m", "mlflow", "server", "--app-name", self.app_name,
            "--backend-store-uri", self.backend, "--artifacts-destination", str(self.artifacts),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
        ]  # fmt: skip
        log = (self.root / "server.log").open("ab")
        # its own process group, so a stop takes the workers with it
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "mlflow server exited:\n" + (self.root / "server.log").read_text()[-4000:]
                )
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("mlflow server did not start in time")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_user(self, name: str, password: str) -> None:
        """A user of the auth app (by the admin); default permission READ everywhere."""
        from mlflow.server.auth.routes import CREATE_USER

        response = requests.post(
            f"{self.url}{CREATE_USER}",
            json={"username": name, "password": password},
            auth=ADMIN,
            timeout=30,
        )
        response.raise_for_status()

    def grant_model(self, model: str, user: str, permission: str) -> None:
        """Grant ``permission`` (READ, EDIT, MANAGE) on registered model ``model``."""
        from mlflow.server.auth.routes import GRANT_USER_PERMISSION

        response = requests.post(
            f"{self.url}{GRANT_USER_PERMISSION}",
            json={
                "username": user,
                "resource_type": "registered_model",
                "resource_id": model,
                "permission": permission,
            },
            auth=ADMIN,
            timeout=30,
        )
        response.raise_for_status()
