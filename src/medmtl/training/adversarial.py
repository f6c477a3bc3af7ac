"""Adversarial training of MTI-Net's task-driven discriminator (TDD; arXiv:2511.20793, abstract:
"a novel task-driven discriminator (TDD) to capture internal high-order relationships between
tasks").

The abstract gives no loss or schedule; assumed here (docs/models.md, "MTI-Net"):

- the discriminator D (`medmtl.models.mtinet.TaskDrivenDiscriminator`) sees an image together
  with a joint answer of all tasks - the lesion's foreground map, the standardised regression
  vector and the class probabilities - and tells the ground truth's answer (real: the mask, the
  targets, the label) from the model's (fake). The real mask and label are hard and the model's
  soft, a cue D can use that says nothing of the tasks (Luc et al. 2016, "Semantic
  segmentation using adversarial networks", section 3.1): the real answers are smoothed
  (`SMOOTHING`: 0/1 -> 0.05/0.95 for the mask, one-hot -> 0.9 + 0.1/C for the label) to blunt
  it;
- non-saturating GAN losses with logits: D minimises BCE(D(real), 1) + BCE(D(fake), 0) (halved),
  the model adds `weight` x BCE(D(fake), 1) to its task loss;
- alternating updates on every batch: the model's step first (D frozen), then D's step on the
  model's detached outputs, with its own AdamW (the model's learning rate, betas and weight
  decay);
- both losses are logged per epoch (`adv_g`, `adv_d`), D and its optimiser are saved in
  `last.pt`, so a killed job resumes to the same result; checkpoint selection ignores them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.models import MTLOutput

SMOOTHING = 0.1  # of the real answers (module docstring)


def answers(out: MTLOutput) -> tuple[Tensor | None, Tensor | None, Tensor]:
    """The model's joint answer: foreground probability (B, 1, H, W), standardised targets
    (B, R), class probabilities (B, C); None for a task the model lacks."""
    seg = None if out.seg_logits is None else 1 - out.seg_logits.float().softmax(1)[:, :1]
    reg = None if out.reg is None else out.reg.float()
    return seg, reg, out.cls_logits.float().softmax(1)


class Adversary:
    """The discriminator, its optimiser and the two losses (module docstring)."""

    def __init__(
        self,
        discriminator: nn.Module,
        weight: float,
        lr: float,
        betas: tuple[float, float],
        weight_decay: float,
    ) -> None:
        self.discriminator = discriminator
        self.weight = weight
        self.optimiser = torch.optim.AdamW(
            discriminator.parameters(), lr=lr, betas=betas, weight_decay=weight_decay
        )

    def _logits(self, images: Tensor, seg: Tensor | None, reg: Tensor | None, cls: Tensor):
        return self.discriminator(images, seg, reg, cls)

    def generator_loss(self, images: Tensor, out: MTLOutput, task_loss: Tensor) -> dict:
        """{"loss": task loss + weight x BCE(D(fake), 1), "adv_g": that BCE}, D frozen."""
        self.discriminator.requires_grad_(False)
        try:
            logits = self._logits(images, *answers(out))
        finally:
            self.discriminator.requires_grad_(True)
        adv = F.binary_cross_entropy_with_logits(logits.float(), torch.ones_like(logits.float()))
        return {"loss": task_loss + self.weight * adv, "adv_g": adv}

    def discriminator_step(
        self,
        images: Tensor,
        out: MTLOutput,
        masks: Tensor,
        labels: Tensor,
        targets: Tensor | None,
    ) -> Tensor:
        """One AdamW step of D on the real answer and the model's detached one; its loss. A case
        without targets (NaN: no lesion to measure) shows D the model's own regression as the
        real one, which tells D nothing and keeps NaN out of its loss and weights."""
        self.discriminator.train()
        seg, reg, cls = (None if t is None else t.detach() for t in answers(out))
        real_seg = None if seg is None else masks[:, None].float() * (1 - SMOOTHING) + SMOOTHING / 2
        real_reg = None if reg is None else torch.where(targets.isnan(), reg, targets)
        classes = cls.shape[1]
        real_cls = F.one_hot(labels, classes).float() * (1 - SMOOTHING) + SMOOTHING / classes
        images = images.detach().float()
        real = self._logits(images, real_seg, real_reg, real_cls)
        fake = self._logits(images, seg, reg, cls)
        loss = (
            F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        ) / 2
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        return loss.detach()

    def state_dict(self) -> dict:
        return {
            "discriminator": self.discriminator.state_dict(),
            "optimiser": self.optimiser.state_dict(),
        }

    def load_state_dict(self, saved: dict) -> None:
        self.discriminator.load_state_dict(saved["discriminator"])
        self.optimiser.load_state_dict(saved["optimiser"])
