"""From logits to a prediction file's row: softmax, the strict 0.5 threshold, bilinear resize to
the native size, TP/FP/FN at both sizes and NSD/HD95 at native size, on hand-made logits."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from medmtl.evaluation.boundary import surface_metrics
from medmtl.evaluation.predict import predict_cases
from medmtl.models.inputs import Split
from medmtl.models.registry import MTLOutput

CLASSES = ["nevus", "melanoma", "seborrheic_keratosis"]
FG = math.log(9)  # foreground logit over a background logit of 0: probability 0.9


class FixedLogits(nn.Module):
    """Returns the given logits, batch after batch, whatever the images."""

    def __init__(self, seg: torch.Tensor, cls: torch.Tensor) -> None:
        super().__init__()
        self.seg, self.cls, self.offset = seg, cls, 0

    def forward(self, images: torch.Tensor) -> MTLOutput:
        batch = slice(self.offset, self.offset + len(images))
        self.offset += len(images)
        return MTLOutput(self.seg[batch], self.cls[batch])


def _seg_logits(foreground: np.ndarray) -> torch.Tensor:
    """(2, 4, 4) logits: background 0, foreground logit per pixel."""
    return torch.stack([torch.zeros(4, 4), torch.tensor(foreground, dtype=torch.float32)])


def _cases():
    case0 = np.full((4, 4), -FG)
    case0[:, :2] = FG  # predicted: columns 0-1
    case0[0, 2] = 0.0  # probability exactly 0.5: not foreground (strict threshold)
    case1 = np.full((4, 4), -FG)  # predicts nothing
    case2 = np.full((4, 4), -FG)
    case2[:2] = FG  # predicted: rows 0-1 of the 4 x 4 input
    seg = torch.stack([_seg_logits(c) for c in (case0, case1, case2)])
    cls = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 0.5]])
    masks = np.zeros((3, 4, 4), np.uint8)
    masks[0, :, :3] = 1  # truth: columns 0-2
    masks[2, :3] = 1
    native = [masks[0].astype(bool), np.zeros((6, 10), bool), np.zeros((8, 4), bool)]
    native[2][:5] = True  # truth at native size 8 x 4: rows 0-4
    return seg, cls, masks, native


def test_predict_cases_counts_pixels_and_boundaries_at_both_sizes():
    seg, cls, masks, native = _cases()
    data = Split.from_arrays(np.zeros((3, 4, 4, 3), np.uint8), masks, np.array([0, 1, 2]))
    frame = predict_cases(
        FixedLogits(seg, cls),
        data,
        CLASSES,
        batch_size=2,  # two batches: rows stay in case order
        device=torch.device("cpu"),
        native_mask=lambda i: native[i],
        nsd_tolerance=1.0,
    )
    probs = frame[[f"prob_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probs, torch.softmax(cls, 1).numpy(), rtol=1e-6)
    assert frame["pred_label"].tolist() == [0, 1, 2]
    seg_counts = frame[["seg_tp", "seg_fp", "seg_fn"]].to_numpy().tolist()
    assert seg_counts == [[8, 0, 4], [0, 0, 0], [8, 0, 4]]
    # native: case 0 is already native size; case 1 an empty 6 x 10 image; case 2 (8 x 4):
    # bilinear rows 0-3 have foreground probability >= 0.7, row 4 0.3 -> 16 px predicted
    native_counts = frame[["native_tp", "native_fp", "native_fn"]].to_numpy().tolist()
    assert native_counts == [[8, 0, 4], [0, 0, 0], [16, 0, 4]]
    predicted_rows = np.zeros((8, 4), bool)
    predicted_rows[:4] = True
    predicted = [masks[0].astype(bool) & (np.arange(4) < 2), np.zeros((6, 10), bool)]
    predicted.append(predicted_rows)
    expected = [surface_metrics(t, p, 1.0) for t, p in zip(native, predicted, strict=True)]
    assert frame["nsd"].tolist() == pytest.approx([100 * nsd for nsd, _ in expected])
    assert frame["hd95"].tolist() == pytest.approx([hd for _, hd in expected])
    assert frame.loc[1, "nsd"] == 100.0 and frame.loc[1, "hd95"] == 0.0  # both empty
