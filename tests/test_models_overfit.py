"""A few training steps on a handful of images drive both task losses down, for every model."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.nn import functional as F

from medmtl.models import create_model, list_models

SIZE, STEPS = 64, 40


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _toy_batch() -> tuple[Tensor, Tensor, Tensor]:
    """Four images: a bright disk whose colour encodes the class, on a noisy background."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 2, 1])
    colours = torch.tensor([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0]])
    rows, cols = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    images, masks = [], []
    for i, label in enumerate(labels):
        cy, cx, radius = 20 + 8 * i, 40 - 6 * i, 10 + 3 * i
        mask = (rows - cy) ** 2 + (cols - cx) ** 2 < radius**2
        image = 0.3 * torch.randn(3, SIZE, SIZE, generator=gen)
        images.append(image + mask * colours[label][:, None, None])
        masks.append(mask.long())
    return torch.stack(images), torch.stack(masks), labels


def _losses(
    out_seg: Tensor, out_cls: Tensor, masks: Tensor, labels: Tensor
) -> tuple[Tensor, Tensor]:
    """Test-only loss: pixel CE + softmax Dice (lesion channel) and class CE."""
    probs = out_seg.softmax(1)[:, 1]
    target = masks.float()
    dice = 1 - (2 * (probs * target).sum() + 1) / (probs.sum() + target.sum() + 1)
    return F.cross_entropy(out_seg, masks) + dice, F.cross_entropy(out_cls, labels)


@pytest.mark.parametrize("name", list_models())
def test_overfits_a_handful_of_images(name: str) -> None:
    torch.manual_seed(0)
    images, masks, labels = _toy_batch()
    model = create_model(name, img_size=SIZE, width=8).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(STEPS):
        out = model(images)
        seg, cls = _losses(out.seg_logits, out.cls_logits, masks, labels)
        optimizer.zero_grad()
        (seg + cls).backward()
        optimizer.step()
        history.append((seg.item(), cls.item()))
    first_seg, first_cls = history[0]
    last_seg = min(s for s, _ in history[-5:])
    last_cls = min(c for _, c in history[-5:])
    assert last_seg < 0.5 * first_seg, history
    assert last_cls < 0.5 * first_cls, history
