"""U-Net decoder parts (Ronneberger et al. 2015, section 2, Fig. 1)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def conv_bn_relu(in_ch: int, out_ch: int, stride: int = 1) -> list[nn.Module]:
    """A 3x3 convolution (no bias), batch normalisation, ReLU: the modules, to be unpacked."""
    return [
        nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    ]


def double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU (U-Net's pair of 3x3 convolutions, with batch normalisation)."""
    return nn.Sequential(*conv_bn_relu(in_ch, out_ch), *conv_bn_relu(out_ch, out_ch))


class UpBlock(nn.Module):
    """x2 upsampling, concatenation with the skip (if any), `double_conv`.

    `mode="transpose"` is U-Net's 2x2 "up-convolution" halving the channels; `"bilinear"`
    upsamples without parameters (as TransUNet's cascaded upsampler).
    """

    def __init__(
        self,
        in_ch: int,
        skip_ch: int,
        out_ch: int,
        mode: Literal["bilinear", "transpose"] = "bilinear",
    ) -> None:
        super().__init__()
        self.up: nn.Module | None = None
        if mode == "transpose":
            self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, 2, 2)
            in_ch //= 2
        self.conv = double_conv(in_ch + skip_ch, out_ch)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        if self.up is None:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        else:
            x = self.up(x)
        if skip is not None:
            x = torch.cat([skip, x], dim=1)
        return self.conv(x)
