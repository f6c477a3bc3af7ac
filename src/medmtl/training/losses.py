"""The multi-task loss of the ResFormer paper (section 3.3, "Loss function").

    L = lambda_1 * L_wce(y_cls_hat, y_cls) + lambda_2 * L_dice(y_seg_hat, y_seg),
    lambda_1 = 0.25, lambda_2 = 1.

The same loss trains every model, so Table 4 compares architectures, not losses. An optional
third term, the BI-RADS consistency regulariser of arXiv:2511.15968 (`medmtl.training.birads`),
is off unless `trainer.consistency_weight` > 0; its prior has learnable weights, so the
optimiser must include `MultiTaskLoss.parameters()`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.models import MTLOutput
from medmtl.training.birads import BiradsConsistency


def inverse_frequency_weights(labels: np.ndarray, num_classes: int) -> Tensor:
    """w_c = N / (C * n_c) over the training labels: the "weighted" of the paper's L_wce.

    The paper does not print its weights; the authors' code uses exactly these values for
    ISIC 2017 (1.78, 2.62, 0.49 for melanoma, SK, nevus). An absent class gets weight 0.
    """
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def weighted_multilabel_ce(logits: Tensor, labels: Tensor, weights: Tensor | None) -> Tensor:
    """Weighted multi-label cross-entropy: per-class sigmoid BCE on one-hot targets, class-
    weighted, averaged over classes and images (section 3.3, L_wce)."""
    target = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    per_class = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if weights is not None:
        per_class = per_class * weights
    return per_class.mean()


def soft_dice_loss(logits: Tensor, masks: Tensor, eps: float = 1e-5) -> Tensor:
    """1 - soft Dice of the softmax foreground channels against the one-hot mask, pooled over
    the batch (section 3.3, L_dice; section 4, DSC = 2|GT n PR| / (|GT| + |PR|))."""
    probs = logits.float().softmax(dim=1)[:, 1:]
    target = F.one_hot(masks.long(), logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()
    dims = (0, 2, 3)
    intersection = (probs * target).sum(dims)
    denominator = probs.sum(dims) + target.sum(dims)
    return 1.0 - ((2 * intersection + eps) / (denominator + eps)).mean()


class MultiTaskLoss(nn.Module):
    """lambda_1 * L_wce + lambda_2 * L_dice [+ consistency_weight * L_consistency]; a zero weight
    gives the single-task ablations of Table 8 (classification only: lambda_2 = 0; segmentation
    only: lambda_1 = 0). The returned dict has `consistency` only when the term is on."""

    def __init__(
        self,
        cls_weight: float,
        seg_weight: float,
        class_weights: Tensor | None,
        consistency: BiradsConsistency | None = None,
        consistency_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.cls_weight = cls_weight
        self.seg_weight = seg_weight
        self.register_buffer("class_weights", class_weights)
        self.consistency = consistency
        self.consistency_weight = consistency_weight

    def forward(self, out: MTLOutput, masks: Tensor, labels: Tensor) -> dict[str, Tensor]:
        cls = weighted_multilabel_ce(out.cls_logits.float(), labels, self.class_weights)
        seg = soft_dice_loss(out.seg_logits, masks)
        losses = {"loss": self.cls_weight * cls + self.seg_weight * seg, "cls": cls, "seg": seg}
        if self.consistency is not None:
            losses["consistency"] = self.consistency(out)
            losses["loss"] = losses["loss"] + self.consistency_weight * losses["consistency"]
        return losses
