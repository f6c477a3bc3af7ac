"""The only module that talks to MLflow.

Concurrency policy (measured, ../shared/notes/toolchain.md): SQLite stores crash when several
processes create the schema or the experiment at once, and lock under concurrent writers.
So `init_store` runs once, upstream of all parallel jobs (the `init_tracking` stage), and
every later write goes through `_retry`, which backs off while the database is locked.
Runs are addressed by id through `MlflowClient`, never through the global "active run".
"""

from __future__ import annotations

import os
import random
import re
import time
import warnings
from collections.abc import Callable, Mapping
from typing import TypeVar

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# MLflow prints "View run ... at: <tracking URI>" when a run ends, password included.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from medmtl.credentials import redact  # noqa: E402
from medmtl.errors import UserError  # noqa: E402

T = TypeVar("T")
# MLflow's message when a server does not answer (refused, reset, closed, timed out): the
# request's URL, then the transport error, of which the socket error is the useful part
UNREACHABLE = re.compile(r"API request to (\w+://[^/\s]+)\S* failed with exception (.*)", re.S)
SOCKET_ERROR = re.compile(r"\[Errno -?\d+\][^'\"]*|Remote end closed connection[^'\"]*|timed out")
RUN_KEY_TAGS = ("medmtl.stage", "medmtl.output")
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # the UI reads it


def _retry(
    call: Callable[[], T], transient: tuple[str, ...] = ("locked",), attempts: int = 12
) -> T:
    """Run `call`, retrying with jittered exponential back-off while the error message holds
    one of `transient` (by default: SQLite is locked)."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as err:  # sqlalchemy OperationalError or MlflowException wrapping it
            message = str(err).lower()
            if not any(t in message for t in transient) or attempt == attempts - 1:
                if unreachable := UNREACHABLE.search(str(err)):
                    server, exception = unreachable.groups()
                    reason = SOCKET_ERROR.search(exception)
                    reason = reason.group(0) if reason else exception[:200]
                    raise UserError(
                        f"the MLflow tracking server {redact(server)} is unreachable ({reason}): "
                        "is it running? (README, 'Scaling out')"
                    ) from err
                raise
            time.sleep(min(5.0, 0.05 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri)


def store_uri(configured: str) -> str:
    """The store a stage talks to: `MLFLOW_TRACKING_URI` from the environment when set (the
    way to hand a stage credentials), else `configured` (params.yaml `tracking.uri`, or the
    redacted URI a run recorded)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured


def init_store(uri: str, experiment: str) -> str:
    """Create the store and the experiment if absent; return the experiment id. Run it once
    before any parallel job (see module docstring). The experiment is tagged as model
    training (`EXPERIMENT_KIND`), so `mlflow ui` opens on its runs, not on MLflow 3's GenAI
    overview."""
    c = client(uri)
    found = _retry(lambda: c.get_experiment_by_name(experiment))
    experiment_id = (
        found.experiment_id if found else _retry(lambda: c.create_experiment(experiment))
    )
    _retry(lambda: c.set_experiment_tag(experiment_id, *EXPERIMENT_KIND))
    return experiment_id


def experiment_id(uri: str, experiment: str) -> str:
    """Id of an existing experiment; a clear error if `init_store` has not run."""
    found = _retry(lambda: client(uri).get_experiment_by_name(experiment))
    if found is None:
        raise UserError(
            f"MLflow experiment {experiment!r} not found at {redact(uri)}: run "
            "`medmtl init-tracking` first"
        )
    return found.experiment_id


def start_run(uri: str, experiment: str, name: str, tags: Mapping[str, str]) -> str:
    """Create a run; earlier runs of the same job (same `RUN_KEY_TAGS`: stage and output path)
    are soft-deleted, so the store holds one run per job, not one per attempt."""
    if not all(k in tags for k in RUN_KEY_TAGS):
        raise ValueError(f"run tags need {RUN_KEY_TAGS}")
    c = client(uri)
    exp_id = experiment_id(uri, experiment)
    key = " and ".join(f"tags.`{k}` = '{tags[k]}'" for k in RUN_KEY_TAGS)
    for old in _retry(lambda: c.search_runs([exp_id], filter_string=key, max_results=1000)):
        _retry(lambda old=old: c.delete_run(old.info.run_id))
    run = _retry(lambda: c.create_run(exp_id, tags=dict(tags), run_name=name))
    return run.info.run_id


def resume_run(uri: str, run_id: str) -> None:
    """Mark a run RUNNING again after a crash (its logged history stays)."""
    _retry(lambda: client(uri).update_run(run_id, status="RUNNING"))


def log_params(uri: str, run_id: str, params: Mapping[str, object]) -> None:
    items = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
    for start in range(0, len(items), 100):
        chunk = items[start : start + 100]
        _retry(lambda chunk=chunk: client(uri).log_batch(run_id, params=chunk))


def log_metrics(uri: str, run_id: str, metrics: Mapping[str, float], step: int) -> None:
    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step) for k, v in sorted(metrics.items())]
    _retry(lambda: client(uri).log_batch(run_id, metrics=batch))


def log_history(uri: str, run_id: str, history: list[dict[str, float]]) -> list[int]:
    """Log the epochs of `history` (``{"epoch": e, <metric>: value, ...}``, in order) that the
    run does not hold yet, and return them: after a resume, the last checkpointed epoch may not
    have reached MLflow (the job was killed in between). Nothing is logged twice."""
    if not history:
        return []
    key = next(k for k in history[-1] if k != "epoch")
    logged = _retry(lambda: client(uri).get_metric_history(run_id, key))
    last = max((m.step for m in logged), default=0)
    missing = [entry for entry in history if entry["epoch"] > last]
    for entry in missing:
        metrics = {k: v for k, v in entry.items() if k != "epoch"}
        log_metrics(uri, run_id, metrics, int(entry["epoch"]))
    return [int(entry["epoch"]) for entry in missing]


def set_tags(uri: str, run_id: str, tags: Mapping[str, str]) -> None:
    batch = [RunTag(k, str(v)) for k, v in sorted(tags.items())]
    _retry(lambda: client(uri).log_batch(run_id, tags=batch))


def log_text(uri: str, run_id: str, text: str, artifact_file: str) -> None:
    _retry(lambda: client(uri).log_text(run_id, text, artifact_file))


def log_dataset(
    uri: str, run_id: str, frame, *, name: str, source: str, digest: str, context: str
) -> None:
    """Record the data a run read (`mlflow.log_input`): name, content digest and schema."""
    import mlflow
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    with warnings.catch_warnings():  # schema-inference hints meant for model signatures
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(frame, source=source, name=name, digest=digest[:36])
        entity = dataset._to_mlflow_entity()  # infers the schema (again)
    entity = DatasetInput(entity, [InputTag(MLFLOW_DATASET_CONTEXT, context)])
    # Parallel jobs log the same dataset: MLflow checks then inserts it, so one of two racing
    # jobs hits the unique constraint (SQLite: "UNIQUE constraint failed", PostgreSQL:
    # "duplicate key value violates unique constraint"); on retry it finds the row and links it.
    _retry(
        lambda: client(uri).log_inputs(run_id, datasets=[entity]),
        transient=("locked", "unique constraint"),
    )


def log_artifact(uri: str, run_id: str, path: str) -> None:
    """Copy the file at `path` into the run's artifacts."""
    _retry(lambda: client(uri).log_artifact(run_id, path))


def finish_run(uri: str, run_id: str, status: str = "FINISHED") -> None:
    _retry(lambda: client(uri).set_terminated(run_id, status=status))


def run_status(tracking_uri: str, run_id: str) -> str | None:
    """Status of a run ("FINISHED", "RUNNING", ...) or None if it is missing or deleted, or
    its SQLite store does not exist (asking MLflow would create an empty store there)."""
    if tracking_uri.startswith("sqlite:///") and not os.path.isfile(tracking_uri[10:]):
        return None
    try:
        run = _retry(lambda: client(tracking_uri).get_run(run_id))
    except MlflowException:
        return None
    return None if run.info.lifecycle_stage == "deleted" else run.info.status
