"""Does training run right on this device? What a user with a GPU runs first (`make gpu-check`).

No GPU is lent to this project, so the CUDA path is written to be the CPU path with a device
argument (`training.loop`: bf16 autocast on CUDA only, deterministic kernels where they exist).
This check exercises exactly those pieces on the chosen device, per registered model:

1. the same weights give the same outputs on the device as on the CPU (eval mode, fp32; TF32
   convolutions on recent GPUs keep the difference near 1e-3 of the logits' scale);
2. training steps as `training.loop.run_epoch` takes them (normalised uint8 batch, augmentation,
   autocast, the multi-task loss, backward, fused AdamW) give finite losses and gradients, and the
   loss goes down on a batch it sees repeatedly;
3. the step time and, on CUDA, the peak memory, for the record.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from medmtl.models import create_model
from medmtl.models.inputs import normalise
from medmtl.training.loop import augment, autocast, seed_everything
from medmtl.training.losses import MultiTaskLoss

RELATIVE_TOLERANCE = 1e-2  # |device - CPU| / max |CPU logit|, eval mode, fp32 weights
TARGETS = 3  # regression targets of the models that have a regression head
AUGMENT = {"hflip": True, "vflip": True, "rotate_degrees": 15.0}


@dataclass(frozen=True)
class ModelCheck:
    """The figures of one model on one device; `problems` is empty when it passed."""

    model: str
    relative_difference: float
    first_loss: float
    last_loss: float
    step_seconds: float
    peak_mb: float | None
    problems: tuple[str, ...]


def device_report(device: torch.device) -> list[str]:
    """Lines naming the software and the device: what a bug report about this device needs."""
    lines = [f"torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}"]
    if device.type == "cuda":
        index = device.index or 0
        props = torch.cuda.get_device_properties(index)
        lines += [
            f"{torch.cuda.device_count()} CUDA device(s); checking cuda:{index}: {props.name}, "
            f"compute capability {props.major}.{props.minor}, {props.total_memory / 2**30:.1f} GiB",
            f"cuDNN {torch.backends.cudnn.version()}, bf16 {torch.cuda.is_bf16_supported()}",
        ]
    else:
        lines.append(f"device {device}: {torch.get_num_threads()} torch thread(s)")
    return lines


def _batch(n: int, size: int, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """A uint8 image batch with a bright disc as the mask and labels 0..2 (like the synthetic
    data): something a model can fit in a few steps."""
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 4) ** 2
    masks = disc.expand(n, size, size).to(torch.uint8)
    images[:, 0][masks.bool()] = 250
    labels = torch.arange(n) % 3
    return images, masks, labels


def check_model(
    name: str, device: torch.device, *, img_size: int, width: int, batch: int, steps: int
) -> ModelCheck:
    """Checks 1-3 of the module docstring for registered model `name`."""
    seed_everything(0, device)
    gen = torch.Generator().manual_seed(0)
    images, masks, labels = _batch(batch, img_size, gen)
    targets = torch.randn(batch, TARGETS, generator=torch.Generator().manual_seed(1))
    reference = create_model(
        name, img_size=img_size, width=width, num_classes=3, num_targets=TARGETS
    )
    model = copy.deepcopy(reference).to(device)
    problems = []

    with torch.no_grad():
        expected = reference.eval()(normalise(images))
        got = model.eval()(normalise(images.to(device)))
    pairs = [(g, e) for g, e in zip(got, expected, strict=True) if e is not None]
    scale = max(e.abs().max().item() for _, e in pairs)
    difference = max((g.float().cpu() - e).abs().max().item() for g, e in pairs) / max(scale, 1e-12)
    if not difference <= RELATIVE_TOLERANCE:
        problems.append(f"outputs differ from the CPU's by {difference:.2e} of their scale")

    loss_fn = MultiTaskLoss(0.25, 1.0, None, None, 0.0).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, fused=True)
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses, times = [], []
    for _ in range(steps):
        started = time.perf_counter()
        x, y = augment(normalise(images.to(device)), masks.to(device), gen, **AUGMENT)
        with autocast(device):
            loss = loss_fn(model(x), y, labels.to(device), targets.to(device))["loss"]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if not all(p.grad is None or bool(p.grad.isfinite().all()) for p in model.parameters()):
            problems.append(f"non-finite gradient at step {len(losses) + 1}")
            break
        optimiser.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
        losses.append(loss.item())
    if not all(map(torch.isfinite, torch.tensor(losses))):
        problems.append(f"non-finite training loss: {losses}")
    elif len(losses) == steps and not losses[-1] < losses[0]:
        problems.append(
            f"the loss did not go down in {steps} steps ({losses[0]:.3f} -> {losses[-1]:.3f})"
        )
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return ModelCheck(
        model=name,
        relative_difference=difference,
        first_loss=losses[0] if losses else float("nan"),
        last_loss=losses[-1] if losses else float("nan"),
        step_seconds=sorted(times)[len(times) // 2] if times else float("nan"),
        peak_mb=peak,
        problems=tuple(problems),
    )
