"""Per-case predictions of a trained model: the only input of every metric and test downstream.

For each case: class probabilities (softmax over the classification logits, the authors' and
the paper's decision rule works on them), and segmentation pixel counts TP/FP/FN with the
foreground probability thresholded at 0.5 (section 4, DSC and JI), both at the model's input
size (paper-faithful) and at the image's native size (clean: the ISIC challenge scores there),
and the clean boundary metrics NSD and HD95 at native size (`medmtl.evaluation.boundary`);
for a model with a regression task, each target's true and predicted value. A task the model
does not have has no columns (never zeros).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.evaluation.boundary import surface_metrics
from medmtl.evaluation.predictions import TASK_COLUMNS
from medmtl.models import MTLOutput
from medmtl.models.inputs import Split, TargetScale, normalise


def pixel_counts(pred: Tensor, truth: Tensor) -> tuple[int, int, int]:
    """(TP, FP, FN) pixel counts of two boolean masks of one image."""
    tp = int((pred & truth).sum())
    return tp, int(pred.sum()) - tp, int(truth.sum()) - tp


@torch.no_grad()
def outputs(model: nn.Module, images: Tensor, device: torch.device) -> MTLOutput:
    """The model's outputs for uint8 images (B, C, S, S), on the CPU in fp32 (so CPU and GPU
    numbers agree): class probabilities (softmax over the logits), the foreground probability
    (B, S, S) = 1 - background, and the standardised regression outputs; None for a task the
    model lacks."""
    out = model(normalise(images.to(device)))
    probs = out.cls_logits.float().softmax(1).cpu()
    foreground = None if out.seg_logits is None else 1.0 - out.seg_logits.float().softmax(1)[:, 0]
    reg = None if out.reg is None else out.reg.float().cpu()
    return MTLOutput(None if foreground is None else foreground.cpu(), probs, reg)


def probabilities(model: nn.Module, images: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
    """Class probabilities (B, C) and foreground probability (B, S, S) of a segmenting model
    (`outputs`)."""
    foreground, probs, _ = outputs(model, images, device)
    return probs, foreground


@torch.no_grad()
def predict_cases(
    model: nn.Module,
    data: Split,
    class_names: list[str],
    *,
    batch_size: int,
    device: torch.device,
    native_mask: Callable[[int], np.ndarray],
    nsd_tolerance: float,
    threshold: float = 0.5,
    regression: tuple[TargetScale, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per case (in `data` order): `prob_<class name>` columns, `pred_label`; for a
    segmenting model `seg_tp/fp/fn` (input size), `native_tp/fp/fn` (native size, bilinear
    upsampling of the foreground probability), `nsd` (x100, tolerance `nsd_tolerance` native
    pixels) and `hd95` (native pixels) of the native-size masks (`native_mask(i)`: case i's
    boolean mask at native size); for a regressing model, given `regression` = (the run's
    `TargetScale`, the cases' true targets (N, R) in their units), `target_<name>` (true) and
    `pred_<name>` (the model's output restored to the targets' units) per target."""
    model.eval()
    rows, predicted = [], []
    for start in range(0, len(data), batch_size):
        sl = slice(start, start + batch_size)
        foreground, probs, reg = outputs(model, data.images[sl], device)
        if reg is not None:
            predicted.append(reg.numpy())
        for j in range(len(probs)):
            row = [*probs[j].tolist(), int(probs[j].argmax())]
            if foreground is not None:
                row += segmentation_row(
                    foreground[j], data.masks[start + j], native_mask(start + j), nsd_tolerance,
                    threshold,
                )  # fmt: skip
            rows.append(row)
    columns = [f"prob_{name}" for name in class_names] + ["pred_label"]
    if foreground is not None:
        columns += TASK_COLUMNS["seg"]
    frame = pd.DataFrame(rows, columns=columns)
    if predicted:
        if regression is None:
            raise ValueError("a regressing model's predictions need `regression`")
        scale, truth = regression
        values = scale.restore(np.concatenate(predicted))
        for index, name in enumerate(scale.names):
            frame[f"target_{name}"] = np.asarray(truth, np.float64)[:, index]
            frame[f"pred_{name}"] = values[:, index]
    return frame


def segmentation_row(
    foreground: Tensor, mask: Tensor, truth: np.ndarray, nsd_tolerance: float, threshold: float
) -> list:
    """TP/FP/FN at the input size, at native size, then NSD (x100) and HD95 of one case."""
    upsampled = F.interpolate(
        foreground[None, None], size=truth.shape, mode="bilinear", align_corners=False
    )
    native = upsampled[0, 0] > threshold
    nsd, hd95 = surface_metrics(truth, native.numpy(), nsd_tolerance)
    return [
        *pixel_counts(foreground > threshold, mask.bool()),
        *pixel_counts(native, torch.from_numpy(truth)),
        100 * nsd,
        hd95,
    ]
