"""Hervella et al. 2022: U-Net for optic disc/cup segmentation with a glaucoma classifier.

A. S. Hervella, J. Rouco, J. Novo, M. Ortega, "End-to-end multi-task learning for simultaneous
optic disc and cup segmentation and glaucoma classification in eye fundus images", Applied
Soft Computing 116:108347, 2022. No public code was found.

What the paper specifies (from its title and ResFormer's description of it, section 2.1 and
Fig. 1, the only sources the project holds): a CNN encoder-decoder (U-Net) trained end to end
for two tasks at once, pixel-wise optic disc/cup segmentation and image-level glaucoma
classification, the classifier sharing the segmentation network's features.

Assumed here, because the architecture details are not in the stored material:
- the segmentation network is the original U-Net (Ronneberger et al. 2015): five levels of two
  3x3 convolutions with widths 64..1024 (`width` * 1, 2, 4, 8, 16), 2x2 max-pooling, 2x2
  up-convolutions and skip concatenation; batch normalisation is added after each
  convolution, as is usual today, so the shared training recipe converges;
- the classifier reads the segmentation network at every scale of its expanding path: global
  average and global max pooling of the bottleneck and of each decoder level, concatenated,
  then one linear layer. Glaucoma is judged from the optic disc/cup shape, which the decoder
  features encode, so a classifier on decoder features is the natural end-to-end design.
Adaptation shared by all baselines: 2D RGB input, 3 classes, background + lesion
segmentation, widths scaled by `width`, random init.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.models.base import MultiTaskModel
from medmtl.models.blocks.unet import UpBlock, double_conv
from medmtl.models.registry import MTLOutput, register_model


class Hervella2022(MultiTaskModel):
    """U-Net with a multi-scale pooled classifier on the expanding path; side % 16 == 0."""

    side_multiple = 16

    def __init__(self, **sizes: int) -> None:
        super().__init__(**sizes)
        num_classes, num_seg_classes, _, width = self.sizes
        ch = [width * 2**i for i in range(5)]
        self.down = nn.ModuleList(double_conv(3 if i == 0 else ch[i - 1], ch[i]) for i in range(5))
        self.up = nn.ModuleList(
            UpBlock(ch[i + 1], ch[i], ch[i], mode="transpose") for i in reversed(range(4))
        )
        self.seg_head = nn.Conv2d(ch[0], num_seg_classes, 1)
        self.cls_head = nn.Linear(2 * sum(ch), num_classes)

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x)
        skips = []
        y = x
        for i, block in enumerate(self.down):
            y = block(y if i == 0 else F.max_pool2d(y, 2))
            skips.append(y)
        scales = [y]
        for up, skip in zip(self.up, reversed(skips[:4]), strict=True):
            y = up(y, skip)
            scales.append(y)
        pooled = [f.mean((2, 3)) for f in scales] + [f.amax((2, 3)) for f in scales]
        return MTLOutput(self.seg_head(y), self.cls_head(torch.cat(pooled, dim=1)))


@register_model("hervella2022")
def hervella2022(**kwargs: Any) -> Hervella2022:
    """Hervella et al. 2022 (ASOC 116:108347): U-Net with a decoder-side classifier."""
    return Hervella2022(**kwargs)
