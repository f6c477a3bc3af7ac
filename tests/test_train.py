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
from medmtl.losses import inverse_frequency_weights, soft_dice_loss, weighted_multilabel_ce
from medmtl.train import augment, normalise

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


def test_train_writes_run_and_one_finished_mlflow_run(processed_synthetic, tracking_uri, tmp_path):
    from medmtl.cli import main

    out = tmp_path / "run"
    assert main(_train_args(processed_synthetic, out, tracking_uri)) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["selection_subset"] == "val" and record["epochs"] == 2
    assert {"best.pt", "last.pt", "config.yaml", "history.csv"} <= {p.name for p in out.iterdir()}
    assert tracking.run_status(tracking_uri, record["mlflow_run_id"]) == "FINISHED"
    # a finished job is not trained again
    assert main(_train_args(processed_synthetic, out, tracking_uri)) == 0
    assert json.loads((out / "run.json").read_text()) == record


def test_killed_training_resumes_to_the_same_result(processed_synthetic, tracking_uri, tmp_path):
    """SIGKILL after the first epoch's checkpoint, re-run, compare with an uninterrupted run."""
    epochs = ["trainer.epochs=8"]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    subprocess.run(
        [BIN / "medmtl", *_train_args(processed_synthetic, whole, tracking_uri, *epochs)],
        check=True,
        env=env,
        capture_output=True,
    )
    job = subprocess.Popen(
        [BIN / "medmtl", *_train_args(processed_synthetic, resumed, tracking_uri, *epochs)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (resumed / "last.pt").exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert not (resumed / "run.json").exists(), "the job finished before it could be killed"
    subprocess.run(
        [BIN / "medmtl", *_train_args(processed_synthetic, resumed, tracking_uri, *epochs)],
        check=True,
        env=env,
        capture_output=True,
    )
    history = [
        pd.read_csv(d / "history.csv").drop(columns="epoch_seconds") for d in (whole, resumed)
    ]
    pd.testing.assert_frame_equal(history[0], history[1])
    weights = [torch.load(d / "best.pt", weights_only=True) for d in (whole, resumed)]
    assert [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])] == []
    run_ids = {json.loads((d / "run.json").read_text())["mlflow_run_id"] for d in (whole, resumed)}
    assert all(tracking.run_status(tracking_uri, r) == "FINISHED" for r in run_ids)
