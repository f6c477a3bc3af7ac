"""Swin Transformer blocks (Liu et al. 2021, "Swin Transformer: hierarchical vision transformer
using shifted windows"), as ResFormer section 3.1 and Fig. 3 (d) use them.

A block is x + W-MSA(LN(x)) then + FFN(LN(x)) (Swin eq. 3); odd blocks use shifted windows
(SW-MSA) computed by a cyclic shift and an attention mask (Swin section 3.2, Fig. 4), and every
block adds the learned relative position bias B of Swin eq. 4. The window partition, the
relative position index and the shift masks are built once per block (they depend only on the
resolution) and kept as non-persistent buffers, and attention runs through
`torch.nn.functional.scaled_dot_product_attention` over all windows at once, so GPUs get fused
kernels and no Python loop visits windows.

As in Swin, a block whose feature side is not larger than the window uses one window of the
whole side and no shift.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from medmtl.models.blocks.transformer import DropPath, FeedForward


def window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) -> (B, nW, window*window, C); windows and tokens in row-major order."""
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window, window, width // window, window, channels)
    x = x.permute(0, 1, 3, 2, 4, 5)
    return x.reshape(batch, (height // window) * (width // window), window * window, channels)


def window_reverse(windows: Tensor, window: int, height: int, width: int) -> Tensor:
    """Inverse of `window_partition`: (B, nW, window*window, C) -> (B, H, W, C)."""
    batch, _, _, channels = windows.shape
    x = windows.view(batch, height // window, width // window, window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(batch, height, width, channels)


def relative_position_index(window: int) -> Tensor:
    """(N, N) index into the (2*window-1)**2 bias table for every token pair (Swin eq. 4)."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)
    return rel[0] * (2 * window - 1) + rel[1]


def shifted_window_mask(side: int, window: int, shift: int) -> Tensor:
    """(nW, N, N) additive mask for SW-MSA on a `side` x `side` map cyclically shifted by `shift`.

    After the shift, a window at the bottom or right edge holds tokens from opposite image
    borders; tokens attend only to tokens of their own region (Swin section 3.2, Fig. 4):
    0 where allowed, -inf elsewhere.
    """
    region = torch.zeros(side, side)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, rows in enumerate(cuts):
        for j, cols in enumerate(cuts):
            region[rows, cols] = 3 * i + j
    ids = window_partition(region[None, :, :, None], window)[0, :, :, 0]
    same = ids[:, :, None] == ids[:, None, :]
    return torch.zeros(same.shape).masked_fill(~same, float("-inf"))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with relative position bias (Swin eq. 4)."""

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer(
            "bias_index", relative_position_index(window).flatten(), persistent=False
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x: (B, nW, N, C) windows; mask: (nW, N, N) additive shift mask or None."""
        batch, n_windows, tokens, dim = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).reshape(batch, n_windows, tokens, 3, heads, dim // heads)
        qkv = qkv.permute(3, 0, 1, 4, 2, 5)  # (3, B, nW, heads, N, d)
        bias = self.bias_table[self.bias_index].view(tokens, tokens, heads).permute(2, 0, 1)
        if mask is None:  # one (heads, N, N) bias broadcast over batch and windows
            q, k, v = qkv.reshape(3, batch * n_windows, heads, tokens, -1).unbind(0)
            attn_mask = bias
        else:  # windows and heads share one axis so the per-window mask broadcasts over B
            q, k, v = qkv.reshape(3, batch, n_windows * heads, tokens, -1).unbind(0)
            attn_mask = (mask[:, None] + bias).reshape(n_windows * heads, tokens, tokens)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask.to(q.dtype))
        out = out.reshape(batch, n_windows, heads, tokens, -1).transpose(2, 3)
        return self.proj(out.reshape(batch, n_windows, tokens, dim))


class SwinBlock(nn.Module):
    """One Swin block on a (B, side, side, C) map: (S)W-MSA and FFN, each pre-LN + residual.

    ResFormer section 3.1: F^W = W-MSA(LN(F)) + F, F' = FFN(LN(F^W)) + F^W, and the shifted
    block likewise with SW-MSA. `window` shrinks to `side` (and the shift is dropped) when the
    map is not larger than the window; otherwise `side` must be a multiple of `window`.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        side: int,
        window: int,
        shift: bool,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if side <= window:
            window, shift = side, False
        if side % window:
            raise ValueError(
                f"Swin window {window} does not divide the feature side {side}; choose a "
                f"window_size that divides it (default img_size // 16 always does)"
            )
        self.window = window
        self.shift = window // 2 if shift else 0
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, mlp_ratio)
        self.drop_path = DropPath(drop_path)
        mask = shifted_window_mask(side, window, self.shift) if self.shift else None
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        _, height, width, _ = x.shape
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        y = self.attn(window_partition(y, self.window), self.mask)
        y = window_reverse(y, self.window, height, width)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.ffn(self.norm2(x)))


class SwinStage(nn.Module):
    """`depth` Swin blocks alternating W-MSA and SW-MSA on a (B, C, side, side) feature map.

    The permutes are the paper's "Splitting" (2D map -> tokens) and "Merging" (tokens -> 2D
    map) of section 3.1; with `depth=2` the stage is the W-MSA + SW-MSA pair of Fig. 3 (d).
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        side: int,
        window: int,
        drop_path: Sequence[float],
        checkpoint: bool = False,
    ) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                SwinBlock(dim, num_heads, side, window, shift=i % 2 == 1, drop_path=drop_path[i])
                for i in range(depth)
            )
        )
        self.checkpoint = checkpoint

    def forward(self, x: Tensor) -> Tensor:
        """With `checkpoint`, a training pass keeps only each block's input and recomputes the
        block (attention maps included) during backward: less memory for more compute, the same
        values (the random state of stochastic depth is replayed)."""
        tokens = x.permute(0, 2, 3, 1)
        recompute = self.checkpoint and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            tokens = (
                activation_checkpoint(block, tokens, use_reentrant=False)
                if recompute
                else block(tokens)
            )
        return tokens.permute(0, 3, 1, 2).contiguous()
