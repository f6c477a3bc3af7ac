"""ResFormer: a U-Net whose encoder blocks join a ResNet34 block and a Swin Transformer block.

Bui et al., "Multi-scale feature enhancement in multi-task learning for medical image
analysis", Artificial Intelligence in Medicine 2025 (doi 10.1016/j.artmed.2025.103338,
arXiv 2412.00351). Section numbers, figures and equations below are the paper's.

Architecture (section 3, Fig. 2):
- stem: 7x7 conv (stride 1) + BN + ReLU + 3x3/2 max-pool -> F_0 at H/2 x W/2 x 64 (3.1);
- four encoder levels of ResFormer blocks at 1/2, 1/4, 1/8, 1/16 with widths 64/128/256/512,
  Swin heads 2/4/8/16, joined by PatchMerging = 3x3 stride-2 conv (3.1);
  Sequential block (Fig. 3 a): F^_i = Swin(ResNet(F_i)); Parallel (Fig. 3 b): ResNet + Swin;
- DFE on every skip (3.2, Fig. 4), then the decoder F^d_1 = Up(F^e_4),
  F^d_i = Up(ReLU(BN(Conv3x3(Concat(F^e_{5-i}, F^d_i))))) for i = 2, 3, 4 (3.2);
- heads (3.3): y_cls = FC(FC(Concat(GAP(F^_3), GAP(F^_4)))); y_seg = Conv1x1(F^d_4), the
  softmax over lesion classes + background being applied by the loss.

Choices where the paper is silent or ambiguous (all are keyword options, see
`conf/model/resformer_*.yaml`):
- `res_depths=(3, 4, 6, 3)`: "a convolutional block from the ResNet34 architecture" is read as
  the ResNet34 stage of each level (3/4/6/3 basic blocks, the authors' code does the same);
  the stride-2 downsampling is done by PatchMerging, so every block of a level keeps its width.
- `swin_depth=2`: one W-MSA + SW-MSA pair per level, the "Swin-Transformer block" of Fig. 3 (d).
- `window_size=None` -> img_size // 16 (14 at 224 px, as the authors' code): it divides every
  level's side, so the top levels keep shifted windows and level 4 is one window; per Swin a
  level whose side is not larger than the window uses one unshifted window.
- `cls_hidden=32`: width of the first FC (the authors' code uses 32); no activation between
  the two FCs, as the equation of section 3.3 writes none.
- `drop_path_rate=0.1`: stochastic depth over the Swin blocks, linearly increasing (Swin's
  training recipe; the authors' code uses 0.1); the paper does not mention it.
- Upsample = bilinear x2 (parameter-free; the equations name no learned upsampling).
- The Swin FFN is the standard GELU MLP of the paper; the authors' code adds an ECA layer
  that scrambles tokens and channels, which we do not reproduce.
- The multi-scale patch-embedding shortcuts of the authors' code are not in the paper and
  are not reproduced.
- `use_dfe=False` is the "w/o DFE" ablation of Table 9: skips go to the decoder unchanged.
- `checkpoint_swin=True` (not in the paper; off by default) recomputes the Swin blocks during
  backward instead of keeping their activations: the same values in less memory, for a GPU
  whose memory the paper's size exceeds (`benchmarks/bench_models.py --option
  checkpoint_swin=true` measures both sides).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.models.base import MultiTaskModel
from medmtl.models.blocks.dfe import DilatedFeatureEnhancement
from medmtl.models.blocks.resnet import make_stage
from medmtl.models.blocks.swin import SwinStage
from medmtl.models.registry import MTLOutput, register_model

Variant = Literal["sequential", "parallel"]


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class ResFormerLevel(nn.Module):
    """One encoder level (section 3.1): ResNet34 blocks and Swin blocks, in series or parallel.

    Sequential (Fig. 3 a): F~_i = F^R_i and F^_i = F^T_i. Parallel (Fig. 3 b): both branches
    read F_i and F^_i = F^R_i + F^T_i.
    """

    def __init__(
        self,
        variant: Variant,
        dim: int,
        res_depth: int,
        swin_depth: int,
        num_heads: int,
        side: int,
        window: int,
        drop_path: Sequence[float],
        checkpoint_swin: bool,
    ) -> None:
        super().__init__()
        self.sequential = variant == "sequential"
        self.resnet = make_stage("basic", dim, dim, res_depth, stride=1)
        self.swin = SwinStage(
            dim, swin_depth, num_heads, side, window, drop_path, checkpoint=checkpoint_swin
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.sequential:
            return self.swin(self.resnet(x))
        return self.resnet(x) + self.swin(x)


class ResFormerEncoder(nn.Module):
    """Stem, four ResFormer levels and three PatchMerging convs (section 3.1, Fig. 2)."""

    def __init__(
        self,
        variant: Variant,
        width: int,
        img_size: int,
        res_depths: Sequence[int],
        swin_depth: int,
        num_heads: Sequence[int],
        window: int,
        drop_path_rate: float,
        checkpoint_swin: bool,
    ) -> None:
        super().__init__()
        dims = [width * 2**i for i in range(4)]
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 1, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        n_blocks = 4 * swin_depth
        rates = [drop_path_rate * i / max(1, n_blocks - 1) for i in range(n_blocks)]
        self.levels = nn.ModuleList(
            ResFormerLevel(
                variant,
                dims[i],
                res_depths[i],
                swin_depth,
                num_heads[i],
                img_size // 2 ** (i + 1),
                window,
                rates[i * swin_depth : (i + 1) * swin_depth],
                checkpoint_swin,
            )
            for i in range(4)
        )
        self.merges = nn.ModuleList(nn.Conv2d(dims[i], dims[i + 1], 3, 2, 1) for i in range(3))

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = [self.levels[0](self.stem(x))]
        for merge, level in zip(self.merges, self.levels[1:], strict=True):
            feats.append(level(merge(feats[-1])))
        return feats


class ResFormerDecoder(nn.Module):
    """DFE on the four skips and the concat-conv-upsample decoder of section 3.2."""

    def __init__(self, width: int, use_dfe: bool) -> None:
        super().__init__()
        dims = [width * 2**i for i in range(4)]
        self.enhance = nn.ModuleList(
            DilatedFeatureEnhancement(d) if use_dfe else nn.Identity() for d in dims
        )
        self.fuse = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(dims[i] + dims[i + 1], dims[i], 3, 1, 1, bias=False),
                nn.BatchNorm2d(dims[i]),
                nn.ReLU(inplace=True),
            )
            for i in range(3)
        )

    def forward(self, feats: list[Tensor]) -> Tensor:
        enhanced = [enhance(f) for enhance, f in zip(self.enhance, feats, strict=True)]
        y = _up(enhanced[3])
        for i in (2, 1, 0):
            y = _up(self.fuse[i](torch.cat([enhanced[i], y], dim=1)))
        return y


class ResFormer(MultiTaskModel):
    """ResFormer multi-task network (section 3); input side `img_size`, a multiple of 16."""

    side_multiple = 16
    fixed_size = True

    def __init__(
        self,
        *,
        variant: Variant,
        window_size: int | None = None,
        res_depths: Sequence[int] = (3, 4, 6, 3),
        swin_depth: int = 2,
        num_heads: Sequence[int] = (2, 4, 8, 16),
        cls_hidden: int = 32,
        drop_path_rate: float = 0.1,
        use_dfe: bool = True,
        checkpoint_swin: bool = False,
        **sizes: int,
    ) -> None:
        super().__init__(**sizes)
        num_classes, num_seg_classes, img_size, width = self.sizes
        if variant not in ("sequential", "parallel"):
            raise ValueError(f"variant must be 'sequential' or 'parallel', got {variant!r}")
        if len(res_depths) != 4 or len(num_heads) != 4:
            raise ValueError("res_depths and num_heads need one entry per encoder level (4)")
        self.encoder = ResFormerEncoder(
            variant,
            width,
            img_size,
            res_depths,
            swin_depth,
            num_heads,
            window_size or img_size // 16,
            drop_path_rate,
            checkpoint_swin,
        )
        self.decoder = ResFormerDecoder(width, use_dfe)
        self.seg_head = nn.Conv2d(width, num_seg_classes, 1)
        self.cls_head = nn.Sequential(
            nn.Linear(12 * width, cls_hidden), nn.Linear(cls_hidden, num_classes)
        )

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x)
        feats = self.encoder(x)
        pooled = torch.cat([feats[2].mean((2, 3)), feats[3].mean((2, 3))], dim=1)
        return MTLOutput(self.seg_head(self.decoder(feats)), self.cls_head(pooled))


@register_model("resformer_sequential")
def resformer_sequential(**kwargs: Any) -> ResFormer:
    """ResFormer with Sequential blocks (ResNet34 then Swin, Fig. 3 a) and DFE skips."""
    return ResFormer(variant="sequential", **kwargs)


@register_model("resformer_parallel")
def resformer_parallel(**kwargs: Any) -> ResFormer:
    """ResFormer with Parallel blocks (ResNet34 + Swin summed, Fig. 3 b) and DFE skips."""
    return ResFormer(variant="parallel", **kwargs)
