"""ResNet building blocks (He et al. 2016, "Deep residual learning for image recognition").

`ResidualBlock` is the basic block of ResNet-18/34 (paper Fig. 2 left, Table 1) and the
"ResNet34 block" of the ResFormer paper (section 3.1, equation for F^R_i); `Bottleneck` is the
1x1-3x3-1x1 block of ResNet-50/101/152 (Fig. 5 right). `ResNetEncoder` stacks them after the
7x7 stride-2 stem and 3x3 max-pool of Table 1, scaled by `width` (64 = the paper's widths).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn
from torch.nn import functional as F


def _projection(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Identity, or the 1x1 projection shortcut "option B" of He et al. section 3.3."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class ResidualBlock(nn.Module):
    """ResNet basic block (He et al. 2016, Fig. 2): conv-BN-ReLU-conv-BN + shortcut, ReLU.

    ResFormer section 3.1: F^R = ReLU(F + BN(Conv3x3(ReLU(BN(Conv3x3(F)))))).
    """

    expansion = 1

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = _projection(in_ch, out_ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck block (He et al. 2016, Fig. 5 right): 1x1, 3x3 (strided), 1x1 x4."""

    expansion = 4

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        mid = out_ch // self.expansion
        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.shortcut = _projection(in_ch, out_ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        return F.relu(self.bn3(self.conv3(y)) + self.shortcut(x))


BlockKind = Literal["basic", "bottleneck"]
_BLOCKS: dict[str, type[ResidualBlock] | type[Bottleneck]] = {
    "basic": ResidualBlock,
    "bottleneck": Bottleneck,
}


def make_stage(kind: BlockKind, in_ch: int, out_ch: int, depth: int, stride: int) -> nn.Sequential:
    """`depth` blocks of `kind`; the first one changes width and applies `stride`."""
    block = _BLOCKS[kind]
    return nn.Sequential(
        *(block(in_ch if i == 0 else out_ch, out_ch, stride if i == 0 else 1) for i in range(depth))
    )


class ResNetEncoder(nn.Module):
    """ResNet trunk without its classifier (He et al. 2016, Table 1), widths scaled by `width`.

    Returns the stem feature (stride 2, `width` channels, before the max-pool) followed by the
    output of each stage (strides 4, 8, 16, 32), so U-Net decoders can use all of them.
    Stage `i` has `width * 2**i * expansion` channels (ResNet-50: 256, 512, 1024, 2048).
    """

    def __init__(self, kind: BlockKind, depths: tuple[int, ...], width: int) -> None:
        super().__init__()
        expansion = _BLOCKS[kind].expansion
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.channels = [width] + [width * 2**i * expansion for i in range(len(depths))]
        self.stages = nn.ModuleList(
            make_stage(kind, self.channels[i], self.channels[i + 1], depth, 1 if i == 0 else 2)
            for i, depth in enumerate(depths)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = [self.stem(x)]
        y = F.max_pool2d(feats[0], 3, 2, 1)
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        return feats
