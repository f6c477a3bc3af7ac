"""Transformer parts shared by the Swin and ViT blocks.

`FeedForward` is the FFN of Vaswani et al. 2017 (section 3.3) with the GELU of ViT
(Dosovitskiy et al. 2021, eq. 3) and expansion ratio 4, which ResFormer section 3.1 keeps
"consistent with [22]" (Swin). `DropPath` is stochastic depth (Huang et al. 2016) as used by
Swin (Liu et al. 2021, section 4.1). `TransformerBlock` is the pre-norm ViT encoder block
(Dosovitskiy et al. 2021, eqs. 2-3) with global multi-head self-attention.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class FeedForward(nn.Module):
    """Linear(dim -> ratio*dim), GELU, Linear(ratio*dim -> dim)."""

    def __init__(self, dim: int, ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class DropPath(nn.Module):
    """Drop a residual branch for a whole sample with probability `p` during training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x * torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep) / keep


class TransformerBlock(nn.Module):
    """x + MSA(LN(x)), then + FFN(LN(x)); attention by `scaled_dot_product_attention`."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(batch, tokens, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(attn.transpose(1, 2).reshape(batch, tokens, dim))
        return x + self.ffn(self.norm2(x))
