"""A real MLflow server as the tracking store: PostgreSQL (Debian's package; `.ci/run` installs
it) behind `mlflow server --app-name basic-auth`, both on 127.0.0.1 only, credentials in the
tracking URI. The stages train and evaluate against it, and no record, log or error message
holds the password."""

from __future__ import annotations

import json
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
from test_pipeline import MODELS, make_project, run, tiny

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


def test_the_tiny_dag_runs_against_the_server_and_fails_cleanly_when_it_stops(
    server, postgres, tmp_path, monkeypatch
):
    """`snakemake --cores 8` on the tiny DAG with `tracking.uri` the server's address and the
    credentials in the environment (README, "Scaling out"): one finished run per (model,
    seed) with its params, metrics and dataset, one finished evaluation run each, and the
    audit passes by asking the server. Then the server stops in the middle of a second run
    of the DAG: the jobs fail naming it, and nothing looks finished that the store lacks."""
    import psycopg2

    uri, redacted, process = server
    address = redacted.replace("admin@", "")  # params.yaml holds no credentials
    synthetic = {"n_train": 24, "n_val": 8, "n_test": 12, "size": 32}
    project = make_project(tmp_path, **tiny(seeds=[0, 1], synthetic=synthetic,
                                            tracking={"uri": address}))  # fmt: skip
    crashed = tmp_path / "crashed"
    shutil.copytree(project, crashed)  # the same commit, for the second run
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    target = "results/tables/table4.tex"
    run(project, "snakemake", "--cores", "8", target)

    client = tracking.client(uri)
    experiment = client.get_experiment_by_name("medmtl").experiment_id
    trained = client.search_runs([experiment], "tags.`medmtl.stage` = 'train'")
    expected = sorted((m, str(s)) for m in MODELS for s in (0, 1))
    assert sorted((r.data.tags["medmtl.model"], r.data.tags["medmtl.seed"]) for r in trained) == (
        expected
    )
    for train in trained:
        assert train.info.status == "FINISHED"
        assert train.data.params["tracking.uri"] == address
        assert {"model.name", "seed", "trainer.epochs", "dataset.name"} <= train.data.params.keys()
        steps = [m.step for m in client.get_metric_history(train.info.run_id, "train_loss")]
        assert steps == [1, 2]  # every epoch of the tiny profile, once
        (dataset,) = train.inputs.dataset_inputs
        assert train.data.tags["medmtl.data_sha256"].startswith(dataset.dataset.digest)
    evaluated = client.search_runs([experiment], "tags.`medmtl.stage` = 'evaluate:synthetic_test'")
    assert sorted(r.data.tags["mlflow.parentRunId"] for r in evaluated) == sorted(
        r.info.run_id for r in trained
    )
    assert all(r.info.status == "FINISHED" and r.data.metrics for r in evaluated)
    with psycopg2.connect(postgres) as db, db.cursor() as cursor:  # rows of the server's store
        cursor.execute("SELECT status, count(*) FROM runs WHERE lifecycle_stage = 'active' "
                       "GROUP BY status")  # fmt: skip
        assert cursor.fetchall() == [("FINISHED", len(trained) + len(evaluated))]
    audit = run(project, "medmtl", "audit", target)
    assert "PASS" in audit and address in audit  # the runs were checked on the server

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # fail in seconds, not minutes
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    dag = subprocess.Popen(["snakemake", "--cores", "8", target], cwd=crashed, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not any(crashed.glob("results/runs/**/last.pt")):
        assert dag.poll() is None and time.monotonic() < deadline, "no training started"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the server stops mid-run
    process.wait()
    said = dag.communicate(timeout=600)[0]
    assert dag.returncode != 0, said[-3000:]
    assert not (crashed / target).exists()
    logs = [p.read_text() for p in crashed.glob("logs/**/*.log")]
    failures = [t for t in logs if "medmtl train: error" in t or "medmtl evaluate: error" in t]
    assert failures, [t[-800:] for t in logs if "error" in t.lower()] or said[-3000:]
    assert all(address.removeprefix("http://") in t for t in failures), failures
    assert not [t for t in [said, *logs] if PASSWORD in t]
    finished = [json.loads(p.read_text())["mlflow_run_id"]
                for p in crashed.glob("results/runs/**/run.json")]  # fmt: skip
    predicted = list(crashed.glob("results/predictions/**/*.parquet"))
    with psycopg2.connect(postgres) as db, db.cursor() as cursor:
        for run_id in finished:  # a job's output exists only for a run the store finished
            cursor.execute("SELECT status FROM runs WHERE run_uuid = %s", (run_id,))
            assert cursor.fetchall() == [("FINISHED",)], run_id
        for path in predicted:
            output = str(path.relative_to(crashed))
            cursor.execute("SELECT r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                           "WHERE t.key = 'medmtl.output' AND t.value = %s "
                           "AND r.lifecycle_stage = 'active'", (output,))  # fmt: skip
            assert cursor.fetchall() == [("FINISHED",)], output


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_jobs_logging_the_same_dataset_at_once_all_succeed(store, request, tmp_path, monkeypatch):
    """Parallel training jobs log the same dataset: MLflow looks the dataset up, then inserts it,
    so when two jobs both look before either inserts, one hits the unique constraint (each
    store words it differently). Here both lookups are made to happen first, every time."""
    import threading

    from mlflow.store.tracking.dbmodels.models import SqlDataset
    from sqlalchemy.orm import Session

    uri = request.getfixturevalue("postgres") if store == "postgresql" else (
        f"sqlite:///{tmp_path / 'mlflow.db'}")  # fmt: skip
    client = tracking.client(uri)
    experiment = client.create_experiment("race")
    runs = [client.create_run(experiment).info.run_id for _ in range(2)]
    both_looked = threading.Barrier(2, timeout=30)
    add_all = Session.add_all

    def insert_after_both_looked(session, objects):
        objects = list(objects)
        if any(isinstance(o, SqlDataset) for o in objects):  # the insert of a new dataset
            both_looked.wait()
        add_all(session, objects)

    monkeypatch.setattr(Session, "add_all", insert_after_both_looked)
    errors = []

    def log(run_id: str) -> None:
        try:
            tracking.log_dataset(uri, run_id, pd.DataFrame({"image": ["a"]}), name="synthetic",
                                 source="data/processed/synthetic", digest="0" * 64,
                                 context="training")  # fmt: skip
        except Exception as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    jobs = [threading.Thread(target=log, args=(run_id,)) for run_id in runs]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    assert not errors
    for run_id in runs:
        (dataset,) = client.get_run(run_id).inputs.dataset_inputs
        assert dataset.dataset.name == "synthetic"
