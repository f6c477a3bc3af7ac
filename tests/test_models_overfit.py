"""A few training steps on a handful of images drive every task loss down, for every model."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.nn import functional as F

from medmtl.models import create_model, list_models

SIZE, STEPS = 64, 40


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _toy_batch() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Four images: a bright disk whose colour encodes the class, on a noisy background; its
    centre and radius, standardised, are the regression targets."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 2, 1])
    colours = torch.tensor([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0]])
    rows, cols = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    images, masks, targets = [], [], []
    for i, label in enumerate(labels):
        cy, cx, radius = 20 + 8 * i, 40 - 6 * i, 10 + 3 * i
        targets.append([(cy - 32) / 10, (cx - 32) / 10, (radius - 15) / 5])
        mask = (rows - cy) ** 2 + (cols - cx) ** 2 < radius**2
        image = 0.3 * torch.randn(3, SIZE, SIZE, generator=gen)
        images.append(image + mask * colours[label][:, None, None])
        masks.append(mask.long())
    return torch.stack(images), torch.stack(masks), labels, torch.tensor(targets)


def _losses(out, masks: Tensor, labels: Tensor, targets: Tensor) -> dict[str, Tensor]:
    """Test-only losses of the tasks the model has: pixel CE + softmax Dice (lesion channel),
    class CE, MSE of the regression outputs."""
    losses = {"cls": F.cross_entropy(out.cls_logits, labels)}
    if out.seg_logits is not None:
        probs = out.seg_logits.softmax(1)[:, 1]
        target = masks.float()
        dice = 1 - (2 * (probs * target).sum() + 1) / (probs.sum() + target.sum() + 1)
        losses["seg"] = F.cross_entropy(out.seg_logits, masks) + dice
    if out.reg is not None:
        losses["reg"] = F.mse_loss(out.reg, targets)
    return losses


@pytest.mark.parametrize("name", list_models())
def test_overfits_a_handful_of_images(name: str) -> None:
    torch.manual_seed(0)
    images, masks, labels, targets = _toy_batch()
    model = create_model(name, img_size=SIZE, width=8, num_targets=3).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(STEPS):
        losses = _losses(model(images), masks, labels, targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        history.append({task: loss.item() for task, loss in losses.items()})
    assert set(history[0]) == {"cls", *model.tasks}
    for task in history[0]:
        assert min(h[task] for h in history[-5:]) < 0.5 * history[0][task], (task, history)
