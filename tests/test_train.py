"""Loss, augmentation, and the training job: outputs, tracking, resume after a kill."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from medmtl import tracking
from medmtl.models.inputs import normalise
from medmtl.training.loop import augment
from medmtl.training.losses import inverse_frequency_weights, soft_dice_loss, weighted_multilabel_ce

BIN = Path(sys.executable).parent


def test_inverse_frequency_weights_match_isic_counts() -> None:
    labels = np.array([0] * 1372 + [1] * 374 + [2] * 254)  # ISIC 2017 training
    weights = inverse_frequency_weights(labels, 3)
    assert torch.allclose(weights, torch.tensor([2000 / 4116, 2000 / 1122, 2000 / 762]))


def test_weighted_multilabel_ce_is_class_weighted_bce() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    weights = torch.tensor([1.0, 2.0, 3.0])
    expected = (
        -(
            1.0 * math.log(torch.sigmoid(torch.tensor(2.0)))
            + 2.0 * math.log(1 - torch.sigmoid(torch.tensor(-1.0)))
            + 3.0 * math.log(1 - torch.sigmoid(torch.tensor(0.5)))
        )
        / 3
    )
    got = weighted_multilabel_ce(logits, torch.tensor([0]), weights)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_dice_loss_zero_when_perfect_and_near_one_when_disjoint() -> None:
    masks = torch.zeros(2, 8, 8, dtype=torch.long)
    masks[:, 2:6, 2:6] = 1
    perfect = torch.stack([(1 - masks) * 50.0, masks * 50.0], 1).float()
    assert soft_dice_loss(perfect, masks).item() == pytest.approx(0.0, abs=1e-4)
    assert soft_dice_loss(perfect.flip(1), masks).item() == pytest.approx(1.0, abs=1e-4)


def test_augment_moves_image_and_mask_together() -> None:
    gen = torch.Generator().manual_seed(0)
    masks = torch.zeros(16, 32, 32, dtype=torch.uint8)
    masks[:, 4:14, 6:26] = 1  # off-centre, so flips and rotations move it
    images = (masks[:, None].repeat(1, 3, 1, 1) * 255).to(torch.uint8)
    out_images, out_masks = augment(
        normalise(images), masks, gen, hflip=True, vflip=True, rotate_degrees=25
    )
    assert set(out_masks.unique().tolist()) <= {0, 1}
    moved = (out_masks != masks.long()).any(dim=(1, 2))
    assert moved.float().mean() > 0.5
    agree = ((out_images[:, 0] > 0) == (out_masks == 1)).float().mean()
    assert agree > 0.97  # only bilinear edge pixels may differ


def _train_args(
    processed_synthetic: tuple[Path, Path], out: Path, uri: str, *extra: str
) -> list[str]:
    data_dir, split_file = processed_synthetic
    return [
        "train",
        "profile=tiny",
        "dataset=synthetic",
        "model=resunet",
        "seed=3",
        f"data_dir={data_dir}",
        f"split_file={split_file}",
        f"out={out}",
        f"tracking.uri={uri}",
        *extra,
    ]


def test_seeding_turns_on_deterministic_kernels_without_loading_the_compiler() -> None:
    """In a fresh interpreter: the flag `torch.use_deterministic_algorithms` sets is on (warn-only
    off on the CPU), and torch._inductor, which that function would import, is not loaded."""
    probe = (
        "import sys, torch\n"
        "from medmtl.training.loop import seed_everything\n"
        "seed_everything(0, torch.device('cpu'))\n"
        "print(torch.are_deterministic_algorithms_enabled(),"
        " torch.is_deterministic_algorithms_warn_only_enabled(),"
        " 'torch._inductor' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False", "False"]


def test_train_writes_run_and_one_finished_mlflow_run(processed_synthetic, tracking_uri, tmp_path):
    from medmtl.cli import main

    out = tmp_path / "run"
    assert main(_train_args(processed_synthetic, out, tracking_uri)) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["selection_subset"] == "val" and record["epochs"] == 2
    assert record["device"] == "cpu" and record["gpu"] is None
    assert {"best.pt", "last.pt", "config.yaml", "history.csv"} <= {p.name for p in out.iterdir()}
    assert tracking.run_status(tracking_uri, record["mlflow_run_id"]) == "FINISHED"
    tags = tracking.client(tracking_uri).get_run(record["mlflow_run_id"]).data.tags
    expected = {
        "stage": "train",
        "model": "resunet",
        "ablation": str(record["ablation"]),
        "seed": "3",
    }
    assert {k: tags.get(f"medmtl.{k}") for k in expected} == expected  # what the runs view shows
    client = tracking.client(tracking_uri)
    artifacts = {a.path for a in client.list_artifacts(record["mlflow_run_id"])}
    assert {"history.csv", "config.yaml", "run.json"} <= artifacts  # curves.png: medmtl figures
    experiment = client.get_experiment_by_name("medmtl")  # the UI opens on training runs
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    # a finished job is not trained again
    assert main(_train_args(processed_synthetic, out, tracking_uri)) == 0
    assert json.loads((out / "run.json").read_text()) == record


def test_an_evaluation_the_store_did_not_record_leaves_no_prediction_file(
    processed_synthetic, tracking_uri, tmp_path, monkeypatch
):
    """The prediction file appears only once its MLflow run is finished: when the store
    cannot take the evaluation's run, evaluation fails and leaves neither the file nor its
    pending copy."""
    from medmtl.cli import main

    run_dir, out = tmp_path / "run", tmp_path / "pred/seed3.parquet"
    assert main(_train_args(processed_synthetic, run_dir, tracking_uri)) == 0
    evaluate = ["evaluate", "--run", str(run_dir), "--eval-set", "synthetic_test",
                "--nsd-tolerance", "2", "--out", str(out)]  # fmt: skip
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")  # no run there
    assert main(evaluate) == 2
    assert list(out.parent.iterdir()) == []
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the run's own store: the same command succeeds
    assert main(evaluate) == 0
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_a_finished_job_rerun_against_another_store_registers_there(
    processed_synthetic, tracking_uri, tmp_path
):
    """tracking.uri changed after training: the rerun job (run.json gone, last.pt kept) trains
    nothing, opens a run in the new store and logs the whole saved history there."""
    from medmtl.cli import main

    out = tmp_path / "run"
    assert main(_train_args(processed_synthetic, out, tracking_uri)) == 0
    first = json.loads((out / "run.json").read_text())
    (out / "run.json").unlink()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    tracking.init_store(other, "medmtl")
    assert main(_train_args(processed_synthetic, out, other)) == 0
    second = json.loads((out / "run.json").read_text())
    assert second["checkpoint_sha256"] == first["checkpoint_sha256"]  # nothing trained again
    assert second["tracking_uri"] == other and second["mlflow_run_id"] != first["mlflow_run_id"]
    assert tracking.run_status(other, second["mlflow_run_id"]) == "FINISHED"
    history = tracking.client(other).get_metric_history(second["mlflow_run_id"], "train_loss")
    assert [m.step for m in history] == [1, 2]


def test_a_resume_logs_the_checkpointed_epochs_mlflow_lacks_once(tracking_uri):
    tags = {"medmtl.stage": "train", "medmtl.output": "run"}
    run_id = tracking.start_run(tracking_uri, "medmtl", "run", tags)
    tracking.log_metrics(tracking_uri, run_id, {"train_loss": 0.9}, 1)
    history = [{"epoch": 1, "train_loss": 0.9}, {"epoch": 2, "train_loss": 0.7}]
    assert tracking.log_history(tracking_uri, run_id, history) == [2]
    assert tracking.log_history(tracking_uri, run_id, history) == []
    logged = tracking.client(tracking_uri).get_metric_history(run_id, "train_loss")
    assert sorted((m.step, m.value) for m in logged) == [(1, 0.9), (2, 0.7)]


EPOCHS = 8


def _train(processed_synthetic, out: Path, uri: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    args = _train_args(processed_synthetic, out, uri, f"trainer.epochs={EPOCHS}")
    return subprocess.Popen([BIN / "medmtl", *args], env=env, **popen)


def _wait_for(condition, job: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def _saved_epoch(run_dir: Path) -> int:
    return torch.load(run_dir / "last.pt", weights_only=False)["state"]["epoch"]


def _kill_right_after_a_checkpoint(run_dir: Path, job: subprocess.Popen) -> None:
    _wait_for(lambda: (run_dir / "last.pt").exists(), job)
    job.send_signal(signal.SIGKILL)


def _kill_mid_epoch(run_dir: Path, job: subprocess.Popen) -> None:
    """After the second checkpoint, a third of an epoch into the next one."""
    _wait_for(lambda: (run_dir / "last.pt").exists() and _saved_epoch(run_dir) >= 2, job)
    first = (run_dir / "last.pt").stat().st_mtime
    _wait_for(lambda: _saved_epoch(run_dir) >= 3, job)
    time.sleep(((run_dir / "last.pt").stat().st_mtime - first) / 3)
    job.send_signal(signal.SIGKILL)


def _kill_during_the_checkpoint_write(run_dir: Path, job: subprocess.Popen) -> None:
    """A kill inside `save_atomic` leaves a partial `last.pt.tmp` beside the previous,
    complete `last.pt`: made here exactly, since the write itself lasts milliseconds."""
    _wait_for(lambda: (run_dir / "last.pt").exists() and _saved_epoch(run_dir) >= 2, job)
    job.send_signal(signal.SIGKILL)
    job.wait()
    data = (run_dir / "last.pt").read_bytes()
    (run_dir / "last.pt.tmp").write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def uninterrupted(processed_synthetic, tmp_path_factory) -> Path:
    """The same job run without a kill, in a store of its own."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tracking.init_store(uri, "medmtl")
    assert _train(processed_synthetic, folder / "run", uri).wait() == 0
    return folder / "run"


@pytest.mark.parametrize(
    "kill",
    [_kill_right_after_a_checkpoint, _kill_mid_epoch, _kill_during_the_checkpoint_write],
    ids=lambda f: f.__name__.removeprefix("_kill_"),
)
def test_killed_training_resumes_not_restarts(
    processed_synthetic, tracking_uri, tmp_path, uninterrupted, kill
):
    """SIGKILL, re-run: the job resumes from the last checkpoint, runs only the remaining
    epochs, keeps one MLflow run with one continuous history, and ends as an uninterrupted
    run (a restart would give the same weights, so those alone prove nothing)."""
    whole = uninterrupted
    for attempt in range(3):  # a tiny epoch lasts ~0.1 s: a busy machine can miss the moment
        resumed = tmp_path / f"resumed{attempt}"
        job = _train(processed_synthetic, resumed, tracking_uri, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)  # fmt: skip
        kill(resumed, job)
        job.wait()
        if not (resumed / "run.json").exists():
            break
    else:
        pytest.fail("the job finished before it could be killed, three times")
    saved, killed_at = _saved_epoch(resumed), time.time()
    assert 1 <= saved < EPOCHS
    rerun = _train(processed_synthetic, resumed, tracking_uri, stdout=subprocess.PIPE, text=True)
    output, _ = rerun.communicate()
    assert rerun.returncode == 0
    assert f"resuming {resumed} after epoch {saved}" in output
    record = json.loads((resumed / "run.json").read_text())
    assert record["resumed_from_epoch"] == saved and record["epochs"] == EPOCHS
    client = tracking.client(tracking_uri)
    history = client.get_metric_history(record["mlflow_run_id"], "train_loss")
    assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1))  # continuous, no repeat
    after_kill = sorted(m.step for m in history if m.timestamp / 1000 > killed_at)
    # Trained (and logged) after the kill: the remaining epochs only. The saved epoch is logged
    # after the kill too when the job died between its checkpoint and its MLflow log.
    caught_up = f"logged epoch(s) [{saved}] to MLflow" in output
    assert after_kill == [saved] * caught_up + list(range(saved + 1, EPOCHS + 1))
    experiment = client.get_experiment_by_name("medmtl").experiment_id
    job_runs = client.search_runs([experiment], f"tags.`medmtl.output` = '{resumed}'")
    assert [r.info.run_id for r in job_runs] == [record["mlflow_run_id"]]
    assert job_runs[0].info.status == "FINISHED"
    assert not (resumed / "last.pt.tmp").exists()  # the partial write was replaced
    frames = [
        pd.read_csv(d / "history.csv").drop(columns="epoch_seconds") for d in (whole, resumed)
    ]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    weights = [torch.load(d / "best.pt", weights_only=True) for d in (whole, resumed)]
    assert [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])] == []
