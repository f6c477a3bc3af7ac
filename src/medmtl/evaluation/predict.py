"""Per-case predictions of a trained model: the only input of every metric and test downstream.

For each case: class probabilities (softmax over the classification logits, the authors' and
the paper's decision rule works on them), and segmentation pixel counts TP/FP/FN with the
foreground probability thresholded at 0.5 (section 4, DSC and JI), both at the model's input
size (paper-faithful) and at the image's native size (clean: the ISIC challenge scores there),
and the clean boundary metrics NSD and HD95 at native size (`medmtl.evaluation.boundary`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.evaluation.boundary import surface_metrics
from medmtl.models.inputs import Split, normalise


def pixel_counts(pred: Tensor, truth: Tensor) -> tuple[int, int, int]:
    """(TP, FP, FN) pixel counts of two boolean masks of one image."""
    tp = int((pred & truth).sum())
    return tp, int(pred.sum()) - tp, int(truth.sum()) - tp


@torch.no_grad()
def probabilities(model: nn.Module, images: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
    """Class probabilities (B, C) and foreground probability (B, S, S) of uint8 images
    (B, 3, S, S), on the CPU: softmax over the logits, foreground = 1 - background (fp32, so
    CPU and GPU numbers agree)."""
    out = model(normalise(images.to(device)))
    probs = out.cls_logits.float().softmax(1).cpu()
    return probs, 1.0 - out.seg_logits.float().softmax(1)[:, 0].cpu()


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
) -> pd.DataFrame:
    """One row per case (in `data` order): `prob_<class name>` columns, `pred_label`, and
    `seg_tp/fp/fn` (input size), `native_tp/fp/fn` (native size, bilinear upsampling of the
    foreground probability), `nsd` (x100, tolerance `nsd_tolerance` native pixels) and `hd95`
    (native pixels) of the native-size masks. `native_mask(i)` returns case i's boolean mask
    at native size."""
    model.eval()
    rows = []
    for start in range(0, len(data), batch_size):
        sl = slice(start, start + batch_size)
        probs, foreground = probabilities(model, data.images[sl], device)
        for j in range(len(probs)):
            i = start + j
            truth = native_mask(i)
            upsampled = F.interpolate(
                foreground[j][None, None], size=truth.shape, mode="bilinear", align_corners=False
            )
            native = upsampled[0, 0] > threshold
            nsd, hd95 = surface_metrics(truth, native.numpy(), nsd_tolerance)
            rows.append(
                (
                    *probs[j].tolist(),
                    int(probs[j].argmax()),
                    *pixel_counts(foreground[j] > threshold, data.masks[i].bool()),
                    *pixel_counts(native, torch.from_numpy(truth)),
                    100 * nsd,
                    hd95,
                )
            )
    columns = [f"prob_{name}" for name in class_names] + [
        "pred_label",
        "seg_tp",
        "seg_fp",
        "seg_fn",
        "native_tp",
        "native_fp",
        "native_fn",
        "nsd",
        "hd95",
    ]
    return pd.DataFrame(rows, columns=columns)
