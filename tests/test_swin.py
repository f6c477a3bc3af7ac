"""Swin blocks checked against a direct computation on tiny inputs."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from medmtl.models.blocks.swin import (
    SwinBlock,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)


def test_partition_reverse_round_trip() -> None:
    x = torch.randn(2, 8, 12, 5)
    windows = window_partition(x, 4)
    assert windows.shape == (2, 6, 16, 5)
    assert torch.equal(windows[:, 0].reshape(2, 4, 4, 5), x[:, :4, :4])
    assert torch.equal(windows[:, 4].reshape(2, 4, 4, 5), x[:, 4:, 4:8])  # row 1, column 1
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)


def _groups(side: int, window: int, shift: int) -> torch.Tensor:
    """Window id of every pixel for windows offset by `shift`, clipped at the border.

    This is the shifted partition drawn in Swin Fig. 2 (right) in image coordinates, without
    any cyclic shift: rows [0, shift) form their own (smaller) window, then every `window`
    rows a new one starts; the same for columns.
    """
    line = torch.div(torch.arange(side) - shift, window, rounding_mode="floor")
    return (line[:, None] * (side + 1) + line[None, :]).flatten()


def _direct_allowed(side: int, window: int, shift: int) -> torch.Tensor:
    groups = _groups(side, window, shift)
    return groups[:, None] == groups[None, :]


@pytest.mark.parametrize(
    ("side", "window", "shift"), [(8, 4, 2), (12, 6, 3), (16, 4, 2), (6, 3, 1)]
)
def test_shift_mask_matches_direct_partition(side: int, window: int, shift: int) -> None:
    mask = shifted_window_mask(side, window, shift)  # in shifted, windowed coordinates
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    # pixel at shifted position (r, c) came from image position (r + shift, c + shift) mod side
    origin = ((rows + shift) % side) * side + (cols + shift) % side
    origin = window_partition(origin[None, :, :, None], window)[0, :, :, 0]  # (nW, N)
    allowed = torch.zeros(side * side, side * side, dtype=torch.bool)
    for w in range(origin.shape[0]):
        ids = origin[w]
        allowed[ids[:, None], ids[None, :]] = mask[w] == 0
    assert torch.equal(allowed, _direct_allowed(side, window, shift))
    assert set(mask.unique().tolist()) <= {0.0, float("-inf")}


def test_relative_position_index_covers_the_table() -> None:
    window = 3
    index = relative_position_index(window)
    assert index.shape == (9, 9)
    assert torch.equal(
        index.diagonal(), torch.full((9,), (window - 1) * (2 * window - 1) + window - 1)
    )
    assert set(index.flatten().tolist()) == set(range((2 * window - 1) ** 2))


def _direct_block(block: SwinBlock, x: torch.Tensor, shift: int) -> torch.Tensor:
    """Dense attention over the whole map with the partition mask and Swin eq. 4 bias."""
    _, side, _, dim = x.shape
    window, heads = block.window, block.attn.num_heads
    tokens = block.norm1(x).reshape(-1, dim)  # (side*side, C), batch of one
    q, k, v = block.attn.qkv(tokens).reshape(-1, 3, heads, dim // heads).permute(1, 2, 0, 3)
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    dr = rows.flatten()[:, None] - rows.flatten()[None, :]
    dc = cols.flatten()[:, None] - cols.flatten()[None, :]
    allowed = _direct_allowed(side, window, shift)
    table_row = ((dr + window - 1) * (2 * window - 1) + dc + window - 1).clamp(
        0, (2 * window - 1) ** 2 - 1
    )
    bias = block.attn.bias_table[table_row].permute(2, 0, 1)  # (heads, L, L)
    scores = q @ k.transpose(-1, -2) / (dim // heads) ** 0.5 + bias
    scores = scores.masked_fill(~allowed, float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(0, 1).reshape(-1, dim)
    y = x + block.attn.proj(out).reshape(x.shape)
    return y + block.ffn(block.norm2(y))


@pytest.mark.parametrize("shift", [False, True])
def test_block_matches_dense_attention(shift: bool) -> None:
    torch.manual_seed(0)
    block = SwinBlock(dim=8, num_heads=2, side=8, window=4, shift=shift).eval()
    with torch.no_grad():
        block.attn.bias_table.normal_()  # a visible bias, so wrong indexing would show
        x = torch.randn(1, 8, 8, 8)
        expected = _direct_block(block, x, shift=2 if shift else 0)
        assert torch.allclose(block(x), expected, atol=1e-5)


def test_window_adapts_to_small_maps() -> None:
    block = SwinBlock(dim=8, num_heads=2, side=4, window=7, shift=True)
    assert block.window == 4 and block.shift == 0 and block.mask is None
    assert block(torch.randn(2, 4, 4, 8)).shape == (2, 4, 4, 8)


def test_window_must_divide_the_side() -> None:
    with pytest.raises(ValueError, match="does not divide"):
        SwinBlock(dim=8, num_heads=2, side=32, window=7, shift=False)


def test_masks_are_buffers_built_once() -> None:
    block = SwinBlock(dim=8, num_heads=2, side=8, window=4, shift=True)
    assert dict(block.named_buffers())["mask"].shape == (4, 16, 16)
    assert "mask" not in block.state_dict()  # non-persistent: rebuilt, never checkpointed


def test_attention_runs_on_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    sdpa = F.scaled_dot_product_attention

    def counting(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(args[0].shape)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    block = SwinBlock(dim=8, num_heads=2, side=8, window=4, shift=True)
    block(torch.randn(3, 8, 8, 8))
    assert calls == [(3, 4 * 2, 16, 4)]  # one call for all windows: (B, nW * heads, N, d)


@pytest.mark.parametrize("name", ["resformer_sequential", "resformer_parallel"])
def test_checkpointed_swin_gives_the_same_loss_and_gradients(name: str) -> None:
    """`checkpoint_swin` trades memory for compute only: the same loss and, after the recompute
    in backward (stochastic depth on, its random state replayed), the same gradients, bit for
    bit; and the blocks' inner activations are not kept (fewer tensors saved for backward)."""
    from medmtl.models import create_model

    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    results = {}
    for checkpoint in (False, True):
        torch.manual_seed(0)
        model = create_model(name, img_size=32, width=4, drop_path_rate=0.5,
                             checkpoint_swin=checkpoint).train()  # fmt: skip
        torch.manual_seed(1)  # the stochastic-depth draws
        out, saved = _forward_counting_saved_tensors(model, x)
        loss = out.seg_logits.square().mean() + out.cls_logits.square().mean()
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        results[checkpoint] = (loss.detach(), grads, saved)
    (loss0, grads0, saved0), (loss1, grads1, saved1) = results[False], results[True]
    assert torch.equal(loss0, loss1)
    assert all(torch.equal(a, b) for a, b in zip(grads0, grads1, strict=True))
    assert saved1 < saved0


def _forward_counting_saved_tensors(model: torch.nn.Module, x: torch.Tensor):
    """The model's output and how many tensors autograd saved for backward on the way."""
    saved = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.shape)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        return model(x), len(saved)
