"""Gende et al. 2022: end-to-end multi-task U-Net for joint segmentation and screening.

M. Gende, J. de Moura, J. Novo, M. Ortega, "End-to-end multi-task learning approaches for
the joint epiretinal membrane segmentation and screening in OCT images", Computerized Medical
Imaging and Graphics 98:102068, 2022. No public code was found.

What the paper specifies (from its abstract, the only part of it in the project's sources):
three end-to-end, fully convolutional multi-task approaches for simultaneous segmentation and
screening (image-level classification) of epiretinal membrane signs in OCT B-scans, each
combined with three "state of the art encoder architectures of reference", trained directly
from annotated images without purpose-specific steps. ResFormer's related work (section 2.1)
describes it as CNN-based, concurrently segmenting and detecting symptoms.

Assumed here, because the stored material does not give the architecture:
- the three approaches are the three places a screening head can read a U-Net:
  `cls_input="encoder"` (global average pooling of the deepest encoder feature, the shared
  encoder of ResFormer Fig. 1 a; the default), `"decoder"` (pooling of the last decoder
  feature) or `"both"` (the two pooled vectors concatenated); a linear layer gives the logits;
- the encoder is ResNet-18 (`encoder_depths=(2, 2, 2, 2)`, basic blocks, He et al. 2016), a
  reference encoder; the decoder is U-Net-style (bilinear x2, concat the encoder skip at the
  same stride including the stem, two 3x3 conv-BN-ReLU) up to full resolution.
Adaptation shared by all baselines: 2D RGB input, 3 classes (softmax logits instead of one
screening output), background + lesion segmentation, widths scaled by `width`, random init.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from medmtl.models.base import MultiTaskModel
from medmtl.models.blocks.resnet import ResNetEncoder
from medmtl.models.blocks.unet import UpBlock
from medmtl.models.registry import MTLOutput, register_model

ClsInput = Literal["encoder", "decoder", "both"]


class Gende2022(MultiTaskModel):
    """ResNet-encoder U-Net with a screening head on encoder and/or decoder; side % 32 == 0."""

    side_multiple = 32

    def __init__(
        self,
        *,
        encoder_depths: Sequence[int] = (2, 2, 2, 2),
        cls_input: ClsInput = "encoder",
        **sizes: int,
    ) -> None:
        super().__init__(**sizes)
        num_classes, num_seg_classes, _, width = self.sizes
        if cls_input not in ("encoder", "decoder", "both"):
            raise ValueError(f"cls_input must be encoder, decoder or both, got {cls_input!r}")
        self.cls_input = cls_input
        self.encoder = ResNetEncoder("basic", tuple(encoder_depths), width)
        ch = self.encoder.channels  # w, w, 2w, 4w, 8w at strides 2..32
        self.up = nn.ModuleList(UpBlock(ch[i + 1], ch[i], ch[i]) for i in reversed(range(4)))
        self.last = UpBlock(ch[0], 0, ch[0])
        self.seg_head = nn.Conv2d(ch[0], num_seg_classes, 1)
        pooled = {"encoder": ch[4], "decoder": ch[0], "both": ch[4] + ch[0]}[cls_input]
        self.cls_head = nn.Linear(pooled, num_classes)

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x)
        feats = self.encoder(x)
        y = feats[4]
        for up, skip in zip(self.up, reversed(feats[:4]), strict=True):
            y = up(y, skip)
        y = self.last(y)
        pooled = []
        if self.cls_input != "decoder":
            pooled.append(feats[4].mean((2, 3)))
        if self.cls_input != "encoder":
            pooled.append(y.mean((2, 3)))
        return MTLOutput(self.seg_head(y), self.cls_head(torch.cat(pooled, dim=1)))


@register_model("gende2022")
def gende2022(**kwargs: Any) -> Gende2022:
    """Gende et al. 2022 (CMIG 98:102068): ResNet-18 U-Net with a screening head."""
    return Gende2022(**kwargs)
