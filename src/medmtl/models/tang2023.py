"""Tang et al. 2023 (TransMT-Net): CNN encoder, Transformer on its deepest features, two heads.

S. Tang, X. Yu, C. F. Cheang, Y. Liang, P. Zhao, H. H. Yu, I. C. Choi, "Transformer-based
multi-task learning for classification and segmentation of gastrointestinal tract endoscopic
images", Computers in Biology and Medicine 157:106723, 2023. No public code was found.

What the paper specifies (abstract): one multi-task network, TransMT-Net, learning
classification and segmentation together, in which a Transformer learns global features and
a CNN learns local ones; active learning (not part of the network) for label efficiency.
ResFormer (section 2.1, Fig. 1 c) groups it with the hybrids that "only employ transformers
at the end of the encoder branch".

Assumed here, following that description with the standard design of such hybrids
(TransUNet, Chen et al. 2021, section 3.2):
- CNN: the first three stages of ResNet-50 (bottleneck depths 3/4/6, `encoder_depths`), so the
  Transformer sees a stride-16 map; a 1x1 convolution embeds each position as a token
  ("patch size 1" hybrid embedding) of dimension `embed_ratio * width` (768 at width 64),
  plus a learned position embedding (hence a fixed `img_size`);
- Transformer: `depth=12` pre-norm ViT blocks with `num_heads=12` (ViT-Base);
- segmentation: TransUNet's cascaded upsampler (3x3 conv-BN-ReLU to 8 * width, then four
  bilinear x2 + skip concat + two 3x3 conv-BN-ReLU blocks with the stride-8, 4 and 2 CNN
  features) and a 3x3 output convolution;
- classification: LayerNorm and mean of the Transformer tokens (the global features), linear.
Adaptation shared by all baselines: 2D RGB input, 3 classes, background + lesion
segmentation, widths scaled by `width`, random init.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from medmtl.models.base import MultiTaskModel
from medmtl.models.blocks.resnet import ResNetEncoder
from medmtl.models.blocks.transformer import TransformerBlock
from medmtl.models.blocks.unet import UpBlock
from medmtl.models.registry import MTLOutput, register_model


class Tang2023(MultiTaskModel):
    """ResNet-50 stages 1-3, ViT on stride-16 tokens, cascaded upsampler; fixed `img_size`."""

    side_multiple = 16
    fixed_size = True

    def __init__(
        self,
        *,
        encoder_depths: Sequence[int] = (3, 4, 6),
        embed_ratio: int = 12,
        depth: int = 12,
        num_heads: int = 12,
        **sizes: int,
    ) -> None:
        super().__init__(**sizes)
        num_classes, num_seg_classes, img_size, width = self.sizes
        if len(encoder_depths) != 3:
            raise ValueError("tang2023 uses three CNN stages (stride 16): give 3 encoder_depths")
        dim = embed_ratio * width
        self.cnn = ResNetEncoder("bottleneck", tuple(encoder_depths), width)
        ch = self.cnn.channels  # w (stride 2), 4w, 8w, 16w (stride 16)
        self.embed = nn.Conv2d(ch[3], dim, 1)
        self.pos = nn.Parameter(torch.zeros(1, (img_size // 16) ** 2, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(*(TransformerBlock(dim, num_heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.cls_head = nn.Linear(dim, num_classes)
        self.neck = nn.Sequential(
            nn.Conv2d(dim, 8 * width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(8 * width),
            nn.ReLU(inplace=True),
        )
        out = [4 * width, 2 * width, width, max(1, width // 4)]
        skips = [ch[2], ch[1], ch[0], 0]
        ins = [8 * width] + out[:3]
        self.up = nn.ModuleList(UpBlock(i, s, o) for i, s, o in zip(ins, skips, out, strict=True))
        self.seg_head = nn.Conv2d(out[3], num_seg_classes, 3, 1, 1)

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x)
        stem, s4, s8, s16 = self.cnn(x)
        batch, _, height, width = s16.shape
        tokens = self.norm(self.blocks(self.embed(s16).flatten(2).transpose(1, 2) + self.pos))
        y = self.neck(tokens.transpose(1, 2).reshape(batch, -1, height, width))
        for up, skip in zip(self.up, (s8, s4, stem, None), strict=True):
            y = up(y, skip)
        return MTLOutput(self.seg_head(y), self.cls_head(tokens.mean(1)))


@register_model("tang2023")
def tang2023(**kwargs: Any) -> Tang2023:
    """Tang et al. 2023 TransMT-Net (CBM 157:106723): CNN + Transformer bottleneck, two heads."""
    return Tang2023(**kwargs)
