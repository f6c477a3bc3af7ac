"""Attention gates on convolutional feature maps."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SpatialAttention(nn.Module):
    """CBAM spatial attention (Woo et al. 2018, section 3, eq. 3).

    M_s(F) = sigmoid(conv7x7([AvgPool_c(F); MaxPool_c(F)])), output F * M_s(F): channel-wise
    mean and max give a 2-channel map, a 7x7 convolution and a sigmoid weight every position.
    ResFormer uses it as the "SA" that ends the DFE module (section 3.2, Fig. 4).
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))
