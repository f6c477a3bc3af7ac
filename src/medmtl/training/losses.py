"""The multi-task loss of the ResFormer paper (section 3.3, "Loss function").

    L = lambda_1 * L_wce(y_cls_hat, y_cls) + lambda_2 * L_dice(y_seg_hat, y_seg),
    lambda_1 = 0.25, lambda_2 = 1.

The same loss trains every model, so Table 4 compares architectures, not losses. An optional
third term, the BI-RADS consistency regulariser of arXiv:2511.15968 (`medmtl.training.birads`),
is off unless `trainer.consistency_weight` > 0; its prior has learnable weights, so the
optimiser must include `MultiTaskLoss.parameters()`.

Each term exists only for a task the model has (`MTLOutput`: None for an absent task): a
model with a regression head adds `reg_weight * L_reg`, L_reg the smooth-L1 (Huber, beta 1)
or squared error of its standardised outputs against the standardised targets
(`models.inputs.TargetScale`), averaged over targets and the images that have targets (issue
14; Res-MTNet and MTI-Net state no weights: 1.0 and smooth-L1 are ours). A model without
segmentation has no Dice term.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.errors import UserError
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


REGRESSION_LOSSES = {
    "smooth_l1": F.smooth_l1_loss,  # Huber with beta 1: quadratic within 1 sd, linear beyond
    "mse": F.mse_loss,
}


def regression_loss(loss, predicted: Tensor, targets: Tensor) -> Tensor:
    """`loss` over the images that have targets (a case without a lesion has none: NaN); 0,
    still on the graph, for a batch without any."""
    kept = ~targets.isnan().any(dim=1)
    if not kept.any():
        return predicted.sum() * 0.0
    return loss(predicted[kept], targets[kept])


class MultiTaskLoss(nn.Module):
    """lambda_1 * L_wce + lambda_2 * L_dice [+ reg_weight * L_reg] [+ consistency_weight *
    L_consistency]; a zero weight gives the single-task ablations of Table 8 (classification
    only: lambda_2 = 0; segmentation only: lambda_1 = 0). The returned dict has `seg`, `reg`
    and `consistency` only for the terms the model's tasks and the config have."""

    def __init__(
        self,
        cls_weight: float,
        seg_weight: float,
        class_weights: Tensor | None,
        consistency: BiradsConsistency | None = None,
        consistency_weight: float = 0.0,
        reg_weight: float = 1.0,
        reg_loss: str = "smooth_l1",
    ) -> None:
        super().__init__()
        self.cls_weight = cls_weight
        self.seg_weight = seg_weight
        self.register_buffer("class_weights", class_weights)
        self.consistency = consistency
        self.consistency_weight = consistency_weight
        self.reg_weight = reg_weight
        if reg_loss not in REGRESSION_LOSSES:
            raise UserError(
                f"trainer.reg_loss: {reg_loss!r} is not one of {', '.join(REGRESSION_LOSSES)}"
            )
        self.reg_loss = REGRESSION_LOSSES[reg_loss]

    def forward(
        self, out: MTLOutput, masks: Tensor, labels: Tensor, targets: Tensor | None = None
    ) -> dict[str, Tensor]:
        cls = weighted_multilabel_ce(out.cls_logits.float(), labels, self.class_weights)
        losses = {"loss": self.cls_weight * cls, "cls": cls}
        if out.seg_logits is not None:
            losses["seg"] = soft_dice_loss(out.seg_logits, masks)
            losses["loss"] = losses["loss"] + self.seg_weight * losses["seg"]
        if out.reg is not None:
            losses["reg"] = regression_loss(self.reg_loss, out.reg.float(), targets)
            losses["loss"] = losses["loss"] + self.reg_weight * losses["reg"]
        if self.consistency is not None:
            losses["consistency"] = self.consistency(out)
            losses["loss"] = losses["loss"] + self.consistency_weight * losses["consistency"]
        return losses
