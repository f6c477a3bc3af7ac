"""Dilated feature enhancement (DFE) module of ResFormer (section 3.2, Fig. 4, equations of DFE).

F^d = BN(Conv1x1(BN(DConv3x3^d(F)))) for d in {6, 12, 18};
F^e = SA(ReLU(F^6 + F^12 + F^18)), SA = CBAM spatial attention.
Every branch keeps the channel count of its input. The dilated convolutions carry no bias
(each is followed by BN); padding equals the dilation so the spatial size is unchanged.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.models.blocks.attention import SpatialAttention


def _branch(channels: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(channels),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
    )


class DilatedFeatureEnhancement(nn.Module):
    """Three parallel dilated branches summed, ReLU, then spatial attention (paper Fig. 4)."""

    def __init__(self, channels: int, dilations: tuple[int, ...] = (6, 12, 18)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(_branch(channels, d) for d in dilations)
        self.attention = SpatialAttention()

    def forward(self, x: Tensor) -> Tensor:
        y = self.branches[0](x)
        for branch in self.branches[1:]:
            y = y + branch(x)
        return self.attention(F.relu(y))
