"""Training of one (model, seed): the protocol of the ResFormer paper, section 4.

"batch size of 8, a learning rate of 0.003, and 100 epochs. The AdamW optimizer ... (0.9, 0.999)
and a weight decay of 0.0001. The checkpoint with lowest validation loss is used for testing."
Augmentation: "random rotation, and horizontal/vertical flip" after resizing.

The loop knows tensors, a model, a loss and an optimiser; `medmtl.commands.train` does the file
and MLflow I/O. The whole dataset lives in memory as uint8 tensors and augmentation runs on the
batch (one affine resample for all images), so a step is never waiting for input: see
`benchmarks/bench_input_pipeline.py`. All randomness (sampling, augmentation, dropout) comes
from the seed and is saved in the last checkpoint, so a killed run resumes to the same result.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm import tqdm

from medmtl.models.inputs import Split, normalise
from medmtl.training.adversarial import Adversary
from medmtl.training.losses import MultiTaskLoss


def seed_everything(seed: int, device: torch.device) -> None:
    """Seed python, numpy and torch; deterministic kernels (CUDA: warn where none exists, e.g.
    bilinear-upsample backward, PyTorch issue 68961).

    The kernels' flag is set as `torch.use_deterministic_algorithms` sets it, without the
    compiler's copy of it: that function imports `torch._inductor` (about 1 s of every job's
    start-up here) only to set `inductor.config.deterministic`, and no job compiles."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch._C._set_deterministic_algorithms(True, warn_only=device.type == "cuda")


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA; a no-op on CPU (same code path on both)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def augment(
    images: Tensor,
    masks: Tensor,
    gen: torch.Generator,
    *,
    hflip: bool,
    vflip: bool,
    rotate_degrees: float,
) -> tuple[Tensor, Tensor]:
    """Random flips and rotation (section 4), one per image, identical for image and mask.

    Flips and rotation form one affine map, so each batch is resampled once: bilinear for the
    image, nearest for the mask; outside the rotated image is zero (background)."""
    n = images.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(rotate_degrees)
    sx = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if hflip else torch.ones(n)
    sy = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if vflip else torch.ones(n)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos * sx, -sin * sy, torch.zeros(n)], 1),
            torch.stack([sin * sx, cos * sy, torch.zeros(n)], 1),
        ],
        1,
    ).to(images.device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", align_corners=False)
    masks = F.grid_sample(masks[:, None].float(), grid, mode="nearest", align_corners=False)
    return images, masks[:, 0].long()


def run_epoch(
    model: nn.Module,
    loss_fn: MultiTaskLoss,
    optimiser: torch.optim.Optimizer,
    data: Split,
    *,
    batch_size: int,
    gen: torch.Generator,
    device: torch.device,
    augment_cfg: dict,
    adversary: Adversary | None = None,
) -> dict[str, float]:
    """One pass over `data` in a seeded random order; returns mean losses per image. With an
    `adversary` (MTI-Net's task-driven discriminator), each batch is an alternating update: the
    model's step with the adversarial term added to its loss, then the discriminator's step on
    the detached outputs (`medmtl.training.adversarial`)."""
    model.train()
    loss_fn.train()
    order = torch.randperm(len(data), generator=gen)
    totals: dict[str, float] = {}
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if len(idx) < 2:  # BatchNorm cannot train on a single image
            continue
        images = normalise(data.images[idx].to(device))
        images, masks = augment(images, data.masks[idx].to(device), gen, **augment_cfg)
        labels = data.labels[idx].to(device)
        targets = None if data.targets is None else data.targets[idx].to(device)
        with autocast(device):
            out = model(images)
            losses = loss_fn(out, masks, labels, targets)
            if adversary is not None:
                losses |= adversary.generator_loss(images, out, losses["loss"])
        optimiser.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimiser.step()
        if adversary is not None:
            losses["adv_d"] = adversary.discriminator_step(images, out, masks, labels, targets)
        accumulate(totals, losses, len(idx))
    return {key: value / len(data) for key, value in totals.items()}


def accumulate(totals: dict[str, float], losses: dict[str, Tensor], n: int) -> None:
    """Add a batch's mean losses times its size `n` to `totals`, key by key (the loss decides
    the keys: `consistency` exists only when that term is on)."""
    for key, value in losses.items():
        totals[key] = totals.get(key, 0.0) + value.item() * n


@torch.no_grad()
def validation_loss(
    model: nn.Module, loss_fn: MultiTaskLoss, data: Split, *, batch_size: int, device: torch.device
) -> dict[str, float]:
    """Mean losses over `data` without augmentation (the checkpoint-selection criterion: the
    task losses only, never an adversarial term)."""
    model.eval()
    loss_fn.eval()
    totals: dict[str, float] = {}
    for start in range(0, len(data), batch_size):
        sl = slice(start, start + batch_size)
        targets = None if data.targets is None else data.targets[sl].to(device)
        with autocast(device):
            losses = loss_fn(
                model(normalise(data.images[sl].to(device))),
                data.masks[sl].to(device),
                data.labels[sl].to(device),
                targets,
            )
        accumulate(totals, losses, len(data.labels[sl]))
    return {key: value / len(data) for key, value in totals.items()}


def save_atomic(obj: object, path: Path) -> None:
    """torch.save to a temporary name, then rename: a killed job never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@dataclass
class TrainState:
    """Everything a resumed run needs to continue exactly where the last epoch ended."""

    epoch: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    history: list[dict[str, float]] | None = None
    mlflow_run_id: str | None = None


def fit(
    model: nn.Module,
    loss_fn: MultiTaskLoss,
    optimiser: torch.optim.Optimizer,
    train: Split,
    val: Split,
    *,
    epochs: int,
    batch_size: int,
    eval_batch_size: int,
    gen: torch.Generator,
    device: torch.device,
    augment_cfg: dict,
    run_dir: Path,
    state: TrainState,
    on_epoch: Callable[[int, dict[str, float]], None],
    adversary: Adversary | None = None,
) -> TrainState:
    """Train from `state.epoch` to `epochs`, keeping `best.pt` (lowest validation loss) and
    `last.pt` (everything needed to resume, including the loss's own state: learnable prior
    weights and running statistics of the consistency term) in `run_dir`; `on_epoch` receives
    each epoch's metrics (for MLflow) once its checkpoint is written, so a job killed in between
    loses no epoch: its resume logs the saved history MLflow lacks (`tracking.log_history`).
    `best.pt` holds the model's weights only; `last.pt` also the `adversary`'s, when given."""
    state.history = state.history or []
    bar = tqdm(
        range(state.epoch + 1, epochs + 1),
        desc=run_dir.name,
        unit="epoch",
        initial=state.epoch,
        total=epochs,
    )
    for epoch in bar:
        started = time.perf_counter()
        train_losses = run_epoch(
            model,
            loss_fn,
            optimiser,
            train,
            batch_size=batch_size,
            gen=gen,
            device=device,
            augment_cfg=augment_cfg,
            adversary=adversary,
        )
        val_losses = validation_loss(model, loss_fn, val, batch_size=eval_batch_size, device=device)
        metrics = {f"train_{k}": v for k, v in train_losses.items()}
        metrics |= {f"val_{k}": v for k, v in val_losses.items()}
        metrics["epoch_seconds"] = time.perf_counter() - started
        if val_losses["loss"] < state.best_val_loss:
            state.best_val_loss, state.best_epoch = val_losses["loss"], epoch
            save_atomic(model.state_dict(), run_dir / "best.pt")
        state.epoch = epoch
        state.history.append({"epoch": epoch, **metrics})
        save_atomic(
            {
                "model": model.state_dict(),
                "loss": loss_fn.state_dict(),
                "optimiser": optimiser.state_dict(),
                "gen": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "state": state.__dict__,
                **({"adversary": adversary.state_dict()} if adversary is not None else {}),
            },
            run_dir / "last.pt",
        )
        on_epoch(epoch, metrics)  # after the checkpoint: a resume re-logs what it holds
        bar.set_postfix(
            train=f"{train_losses['loss']:.3f}",
            val=f"{val_losses['loss']:.3f}",
            best=state.best_epoch,
        )
    return state


def restore(
    path: Path,
    model: nn.Module,
    loss_fn: MultiTaskLoss,
    optimiser: torch.optim.Optimizer,
    gen: torch.Generator,
    adversary: Adversary | None = None,
) -> TrainState:
    """Load `last.pt` into model, loss, optimiser, generators (and the adversary); return the
    saved progress."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(saved["model"])
    loss_fn.load_state_dict(saved["loss"])
    optimiser.load_state_dict(saved["optimiser"])
    gen.set_state(saved["gen"])
    if adversary is not None:
        adversary.load_state_dict(saved["adversary"])
    torch.set_rng_state(saved["torch_rng"])
    return TrainState(**saved["state"])
