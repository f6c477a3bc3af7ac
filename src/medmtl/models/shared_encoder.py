"""The plain shared-encoder baseline of the Res-MTNet and MTI-Net experiments (issue 14).

The simplest hard-parameter-sharing multi-task network (Caruana 1997; Ruder 2017, section
4.1): one encoder shared by every task, one small head per task, no residual connection and no
interaction between the heads, so that what Res-MTNet and MTI-Net add is measured against
nothing but sharing. Our construction, stated because neither paper describes its baseline:

- encoder: a stride-2 3x3 stem, then four stages of four 3x3 conv-BN-ReLU layers (the first
  strided, but the first stage's), widths `width * (1, 2, 4, 8)`: ResNet-18's layout (He et al.
  2016, Table 1: two basic blocks of two convolutions per stage) without its shortcuts, so it
  matches Res-MTNet's depth and widths;
- heads: global average pooling, then one linear layer per task (classes; standardised
  regression targets);
- `shared_encoder_seg` adds the segmentation head MTI-Net is compared with: a U-Net decoder
  (Ronneberger et al. 2015: bilinear x2 upsampling, concatenation with the encoder feature of
  the same scale, two 3x3 conv-BN-ReLU) back to the input size, then a 1x1 convolution.

Inputs: `in_channels` channels (RGB, or the phases of a dynamic study stacked as channels:
early fusion).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.models.base import MultiTaskModel
from medmtl.models.blocks.unet import UpBlock, conv_bn_relu, double_conv
from medmtl.models.registry import MTLOutput, register_model


def plain_stage(in_ch: int, out_ch: int, stride: int, layers: int = 4) -> nn.Sequential:
    """`layers` 3x3 conv-BN-ReLU, the first with `stride`: a stage of ResNet-18 (two basic
    blocks) without its shortcuts."""
    return nn.Sequential(
        *conv_bn_relu(in_ch, out_ch, stride),
        *(m for _ in range(layers - 1) for m in conv_bn_relu(out_ch, out_ch)),
    )


class SharedEncoder(MultiTaskModel):
    """Plain encoder, linear heads (module docstring); `segment` adds the U-Net decoder."""

    side_multiple = 16
    any_channels = True

    def __init__(self, *, segment: bool, **sizes: Any) -> None:
        super().__init__(**sizes)
        num_classes, num_seg_classes, _, width = self.sizes
        widths = [width * m for m in (1, 2, 4, 8)]
        self.stem = nn.Sequential(*conv_bn_relu(self.in_channels, width, 2))
        self.stages = nn.ModuleList(
            plain_stage(widths[max(i - 1, 0)], widths[i], 1 if i == 0 else 2) for i in range(4)
        )
        self.cls_head = nn.Linear(widths[3], num_classes)
        self.reg_head = nn.Linear(widths[3], self.num_targets)
        self.decoder = None
        if segment:
            self.decoder = nn.ModuleList(
                UpBlock(widths[i + 1], widths[i], widths[i]) for i in reversed(range(3))
            )
            self.final = double_conv(widths[0], widths[0])
            self.seg_head = nn.Conv2d(widths[0], num_seg_classes, 1)

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x)
        features = []
        y = self.stem(x)
        for stage in self.stages:
            y = stage(y)
            features.append(y)
        pooled = torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)
        seg = None
        if self.decoder is not None:
            for up, skip in zip(self.decoder, reversed(features[:3]), strict=True):
                y = up(y, skip)
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
            seg = self.seg_head(self.final(y))
        return MTLOutput(seg, self.cls_head(pooled), self.reg_head(pooled))


class _ClsReg(SharedEncoder):
    tasks = ("cls", "reg")


class _SegClsReg(SharedEncoder):
    tasks = ("seg", "cls", "reg")


@register_model("shared_encoder")
def shared_encoder(**kwargs: Any) -> SharedEncoder:
    """Plain shared encoder, linear classification + regression heads (Res-MTNet's baseline)."""
    return _ClsReg(segment=False, **kwargs)


@register_model("shared_encoder_seg")
def shared_encoder_seg(**kwargs: Any) -> SharedEncoder:
    """The plain shared encoder plus a U-Net segmentation decoder (MTI-Net's baseline)."""
    return _SegClsReg(segment=True, **kwargs)
