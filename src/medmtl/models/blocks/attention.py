"""Attention on convolutional feature maps: CBAM spatial attention, Attention U-Net gates."""

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


class AttentionGate(nn.Module):
    """Additive attention gate of Attention U-Net (Oktay et al. 2018, section 2, Fig. 2).

    alpha = sigmoid(psi(ReLU(W_x x + W_g g))), output x * alpha: a decoder feature g at the
    resolution of the skip x decides which skip positions pass; W_x, W_g, psi are 1x1
    convolutions (with BN) and `inter_ch` is the width of the joint space.
    """

    def __init__(self, skip_ch: int, gate_ch: int, inter_ch: int) -> None:
        super().__init__()
        self.skip = nn.Sequential(
            nn.Conv2d(skip_ch, inter_ch, 1, bias=False), nn.BatchNorm2d(inter_ch)
        )
        self.gate = nn.Sequential(
            nn.Conv2d(gate_ch, inter_ch, 1, bias=False), nn.BatchNorm2d(inter_ch)
        )
        self.psi = nn.Sequential(
            nn.Conv2d(inter_ch, 1, 1, bias=False), nn.BatchNorm2d(1), nn.Sigmoid()
        )

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        return x * self.psi(torch.relu(self.skip(x) + self.gate(g)))
