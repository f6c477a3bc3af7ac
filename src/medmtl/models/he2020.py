"""He et al. 2020: residual U-Net with a multi-label classification head and label dependence.

T. He, J. Hu, Y. Song, J. Guo, Z. Yi, "Multi-task learning for the segmentation of organs at
risk with label dependence", Medical Image Analysis 61:101666, 2020. Public code:
github.com/ithet1007/MTL-SegTHOR (PyTorch 1.1), read for facts only; nothing is copied.

What the paper and its code specify (CT slices, 4 organs at risk):
- a U-like encoder-decoder whose encoder is an ImageNet network without its classifier
  (ResNet-101/152 or DenseNet-121/161/169/201; the README's example run uses ResNet-101);
- decoder: at each of three steps the deeper map is bilinearly upsampled to the skip's size,
  concatenated with it, reduced by BN-ReLU-Conv1x1 and refined by one DenseNet layer
  (BN-ReLU-Conv1x1 to 4*growth, BN-ReLU-Conv3x3 to growth = 48, output concatenated); two
  "backward transitions" (BN-ReLU-Conv1x1, bilinear x2) bring stride 4 back to full size;
- segmentation head BN-ReLU-Conv1x1 (softmax + soft Dice in the paper); the auxiliary task is
  multi-label slice classification (which organs are present), read from the *last decoder
  feature* by BN-ReLU-Conv1x1(-> classes)-global average pooling-sigmoid;
- loss = soft Dice + classification loss, where the classification loss is the weighted mean
  cross-entropy (WMCE) with label dependence: class probabilities are re-weighted by the
  training-set conditional probabilities P(organ B present | organ A present) before BCE.

Adaptation (the same for every baseline): 2D RGB input instead of CT slices, 3 classes,
`num_seg_classes` = background + lesion, widths scaled by `width` (64 = the paper's), random
initialisation (the shared protocol has no ImageNet weights), logits returned (no sigmoid).
Assumed: ResNet-101 (bottleneck depths 3/4/23/3) as the encoder; growth 48 * width / 64.

Loss simplification: the label-dependence WMCE is a loss, not part of the network, and is not
used here: the shared trainer applies one loss to every model (ResFormer paper section 4:
"we adhere strictly to their papers or use open-source codes" - a simplification we state
rather than hide). For ISIC 2017 the three diagnoses are mutually exclusive, so the
conditional-probability matrix is the identity and WMCE reduces to a BCE on probabilities
scaled by 1/3: it would carry no label dependence. A WMCE loss would need only the logits
returned here plus that matrix from the training labels; the model exposes nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.models.base import MultiTaskModel
from medmtl.models.blocks.resnet import ResNetEncoder
from medmtl.models.registry import MTLOutput, register_model


def _bn_relu_conv(in_ch: int, out_ch: int, kernel: int = 1, bias: bool = False) -> nn.Sequential:
    return nn.Sequential(
        nn.BatchNorm2d(in_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=bias),
    )


class DenseLayer(nn.Module):
    """DenseNet-BC layer (Huang et al. 2017, section 3): x ++ conv3x3(conv1x1(x)), pre-activated."""

    def __init__(self, in_ch: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _bn_relu_conv(in_ch, 4 * growth), _bn_relu_conv(4 * growth, growth, 3)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class DenseUp(nn.Module):
    """Decoder step: upsample to the skip, concat, BN-ReLU-Conv1x1 to `out_ch`, one dense layer."""

    def __init__(self, deep_ch: int, skip_ch: int, out_ch: int, growth: int) -> None:
        super().__init__()
        self.reduce = _bn_relu_conv(deep_ch + skip_ch, out_ch, bias=True)
        self.dense = DenseLayer(out_ch, growth)

    def forward(self, deep: Tensor, skip: Tensor) -> Tensor:
        deep = F.interpolate(deep, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        return self.dense(self.reduce(torch.cat([deep, skip], dim=1)))


class BackwardTransition(nn.Module):
    """BN-ReLU-Conv1x1, then bilinear x2 upsampling."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = _bn_relu_conv(in_ch, out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(self.conv(x), scale_factor=2.0, mode="bilinear", align_corners=True)


class He2020(MultiTaskModel):
    """Residual U-Net with dense decoder and decoder-side classification head; side % 32 == 0."""

    side_multiple = 32

    def __init__(
        self,
        *,
        encoder_depths: Sequence[int] = (3, 4, 23, 3),
        **sizes: int,
    ) -> None:
        super().__init__(**sizes)
        num_classes, num_seg_classes, _, width = self.sizes
        growth = max(1, 3 * width // 4)
        self.encoder = ResNetEncoder("bottleneck", tuple(encoder_depths), width)
        ch = self.encoder.channels  # stem, then 4w, 8w, 16w, 32w
        self.up = nn.ModuleList(
            [
                DenseUp(ch[4], ch[3], ch[3], growth),
                DenseUp(ch[3] + growth, ch[2], ch[2], growth),
                DenseUp(ch[2] + growth, ch[1], ch[1], growth),
            ]
        )
        self.back = nn.Sequential(
            BackwardTransition(ch[1] + growth, ch[1]), BackwardTransition(ch[1], ch[1])
        )
        self.seg_head = _bn_relu_conv(ch[1], num_seg_classes, bias=True)
        self.cls_conv = _bn_relu_conv(ch[1], num_classes, bias=True)

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x)
        _, s4, s8, s16, y = self.encoder(x)
        for up, skip in zip(self.up, (s16, s8, s4), strict=True):
            y = up(y, skip)
        y = self.back(y)
        return MTLOutput(self.seg_head(y), self.cls_conv(y).mean((2, 3)))


@register_model("he2020")
def he2020(**kwargs: Any) -> He2020:
    """He et al. 2020 (MedIA 61:101666): residual U-Net, decoder-side multi-label head."""
    return He2020(**kwargs)
