"""A real MLflow server as the tracking store: PostgreSQL (Debian's package; `.ci/run` installs
it) behind `mlflow server --app-name basic-auth`, both on 127.0.0.1 only, credentials in the
tracking URI. The stages train and evaluate against it, and no record, log or error message
holds the password."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from medmtl import tracking

BIN = Path(sys.executable).parent
PASSWORD = "s3cret-Pass-42"  # the server's admin password, for this test only
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*command: str) -> list[str]:
    """`command` as the postgres user (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@pytest.fixture
def postgres():
    """The URI of a fresh PostgreSQL database `mlflow` (password authentication, 127.0.0.1
    only), in a cluster of its own that is removed afterwards."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    assert bins, "PostgreSQL is not installed (.ci/run installs Debian's postgresql package)"
    pg = bins[-1]
    root = Path(tempfile.mkdtemp(prefix="medmtl-pg-"))  # outside pytest's root-only tmp
    data, port = root / "data", _free_port()
    (root / "password").write_text(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    run = {"check": True, "capture_output": True}
    initdb = [str(pg / "initdb"), "-D", str(data), "-U", "mlflow", "--auth=scram-sha-256"]
    subprocess.run(_as_postgres(*initdb, f"--pwfile={root / 'password'}"), **run)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    subprocess.run(_as_postgres(str(pg / "pg_ctl"), "-D", str(data), "-o", options, "-w",
                                "-l", str(root / "log"), "start"), **run)  # fmt: skip
    try:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        subprocess.run([str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow",
                        "mlflow"], env=env, **run)  # fmt: skip
        yield f"postgresql://mlflow:{PASSWORD}@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(_as_postgres(str(pg / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                    "stop"), capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def server(tmp_path: Path, postgres: str):
    """(URI with the credentials, URI without, process) of a basic-auth MLflow server whose
    backend store is `postgres`."""
    port = _free_port()
    env = {**os.environ, "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-key"}  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [BIN / "mlflow", "server", "--app-name", "basic-auth", "--host", "127.0.0.1",
         "--port", str(port), "--backend-store-uri", postgres,
         "--artifacts-destination", str(tmp_path / "artifacts")],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the MLflow server did not start in 90 s"
            time.sleep(0.5)
    yield f"http://admin:{PASSWORD}@127.0.0.1:{port}", f"http://admin@127.0.0.1:{port}", process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _medmtl(*args: str, **env_vars: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", **env_vars}
    return subprocess.run([BIN / "medmtl", *args], capture_output=True, text=True, env=env)


def test_stages_use_a_password_protected_server_and_record_no_password(
    server, postgres, processed_synthetic, tmp_path
):
    uri, redacted, _ = server
    data_dir, split_file = processed_synthetic
    run_dir, predictions = (
        tmp_path / "run",
        tmp_path / "pred" / "synthetic_test/resunet/seed0.parquet",
    )
    done = [
        _medmtl("init-tracking", "--uri", uri, "--out", str(tmp_path / "tracking.json")),
        _medmtl("train", "profile=tiny", "dataset=synthetic", "model=resunet", "seed=0",
                f"data_dir={data_dir}", f"split_file={split_file}", f"out={run_dir}",
                f"tracking.uri={uri}"),
        _medmtl("evaluate", "--run", str(run_dir), "--subset", "test", "--eval-set",
                "synthetic_test", "--nsd-tolerance", "2", "--out", str(predictions),
                MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=PASSWORD),
    ]  # fmt: skip
    for step in done:
        assert step.returncode == 0, step.stderr[-3000:]
    # the evaluation reached the server by the run's redacted URI and the environment's
    # credentials, the way the README says to hand them over
    client = tracking.client(uri)
    experiment = client.get_experiment_by_name("medmtl")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["medmtl.stage"] for r in runs) == ["evaluate:synthetic_test", "train"]
    assert all(r.info.status == "FINISHED" for r in runs)
    train = next(r for r in runs if r.data.tags["medmtl.stage"] == "train")
    assert train.data.params["tracking.uri"] == redacted
    texts = [s.stdout + s.stderr for s in done]
    texts += [p.read_bytes().decode("latin-1") for p in [*run_dir.iterdir(), predictions]]
    texts.append((tmp_path / "tracking.json").read_text())
    texts += [str(r.data.params) + str(r.data.tags) for r in runs]
    for artifact in ("config.yaml", "run.json"):
        texts.append(
            Path(client.download_artifacts(train.info.run_id, artifact, str(tmp_path))).read_text()
        )
    leaks = [
        t[max(0, t.find(PASSWORD) - 80) : t.find(PASSWORD) + 20] for t in texts if PASSWORD in t
    ]
    assert not leaks
    assert pd.read_parquet(predictions).shape[0] > 0
    import psycopg2  # the runs are rows of the PostgreSQL store behind the server

    with psycopg2.connect(postgres) as db, db.cursor() as cursor:
        cursor.execute("SELECT status FROM runs ORDER BY status")
        assert cursor.fetchall() == [("FINISHED",), ("FINISHED",)]
    assert redacted in (run_dir / "run.json").read_text()


def test_a_stopped_server_gives_a_clear_error_without_the_password(server, tmp_path):
    uri, redacted, process = server
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    failed = _medmtl("init-tracking", "--uri", uri, "--out", str(tmp_path / "tracking.json"))
    assert failed.returncode != 0
    assert redacted.removeprefix("http://admin@") in failed.stderr  # names the server
    assert "Connection refused" in failed.stderr or "Failed to establish" in failed.stderr
    assert PASSWORD not in failed.stdout + failed.stderr
    assert not (tmp_path / "tracking.json").exists()  # nothing that looks finished
