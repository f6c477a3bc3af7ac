"""Residual U-Net with a classification head: the plain multi-task baseline of the spine.

Encoder-decoder of He et al. 2016 residual blocks (ResNet "BasicBlock", two 3x3 convolutions
with an identity or 1x1 projection shortcut) in the U-Net layout of Ronneberger et al. 2015;
the classification head pools the deepest encoder feature (ResFormer paper, Fig. 1 (a): both
heads share the encoder). It is the reference point every published model is compared with.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.models.blocks.resnet import ResidualBlock
from medmtl.models.checks import check_image
from medmtl.models.registry import MTLOutput, register_model


class ResUNet(nn.Module):
    """Four-level residual U-Net; widths `width * (1, 2, 4, 8)`; input side divisible by 16."""

    def __init__(self, num_classes: int, num_seg_classes: int, width: int) -> None:
        super().__init__()
        widths = [width * m for m in (1, 2, 4, 8)]
        self.stem = ResidualBlock(3, widths[0])
        self.down = nn.ModuleList(
            ResidualBlock(widths[i], widths[i + 1], stride=2) for i in range(3)
        )
        self.bottom = ResidualBlock(widths[3], widths[3], stride=2)
        self.up = nn.ModuleList(
            ResidualBlock(widths[i] + (widths[i + 1] if i < 3 else widths[3]), widths[i])
            for i in range(4)
        )
        self.seg_head = nn.Conv2d(widths[0], num_seg_classes, 1)
        self.cls_head = nn.Linear(widths[3], num_classes)

    def forward(self, x: Tensor) -> MTLOutput:
        check_image(x, 16)
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        y = self.bottom(skips[-1])
        cls_logits = self.cls_head(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))
        for i in reversed(range(4)):
            y = F.interpolate(y, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            y = self.up[i](torch.cat([skips[i], y], dim=1))
        return MTLOutput(self.seg_head(y), cls_logits)


@register_model("resunet")
def resunet(
    *, num_classes: int = 3, num_seg_classes: int = 2, width: int = 64, img_size: int = 224
) -> ResUNet:
    """Residual U-Net with a GAP + linear classification head on the bottleneck.

    Takes any image side divisible by 16 (`img_size` only checks that)."""
    if img_size % 16:
        raise ValueError(f"image side must be divisible by 16, got img_size={img_size}")
    return ResUNet(num_classes, num_seg_classes, width)
