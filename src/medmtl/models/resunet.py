"""Residual U-Net with a classification head: the plain multi-task baseline of the spine.

Encoder-decoder of He et al. 2016 residual blocks (ResNet "BasicBlock", two 3x3 convolutions
with an identity or 1x1 projection shortcut) in the U-Net layout of Ronneberger et al. 2015;
the classification head pools the deepest encoder feature (ResFormer paper, Fig. 1 (a): both
heads share the encoder). It is the reference point every published model is compared with.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.models.base import MultiTaskModel
from medmtl.models.blocks.resnet import ResidualBlock
from medmtl.models.registry import MTLOutput, register_model


class ResUNet(MultiTaskModel):
    """Four-level residual U-Net; widths `width * (1, 2, 4, 8)`; input side divisible by 16."""

    side_multiple = 16

    def __init__(self, **sizes: int) -> None:
        super().__init__(**sizes)
        num_classes, num_seg_classes, _, width = self.sizes
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
        self.check_input(x)
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
def resunet(**kwargs: Any) -> ResUNet:
    """Residual U-Net with a GAP + linear classification head on the bottleneck.

    Takes any image side divisible by 16 (`img_size` only checks that)."""
    return ResUNet(**kwargs)
