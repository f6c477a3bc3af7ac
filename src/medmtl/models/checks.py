"""Input checks shared by the models: a wrong image size fails with a message, not a crash."""

from __future__ import annotations

from torch import Tensor


def check_image(x: Tensor, multiple: int, size: int | None = None, channels: int = 3) -> None:
    """Raise ValueError unless `x` is (B, channels, H, W) with H and W divisible by `multiple`.

    Models whose layers depend on the resolution they were built for (Swin windows, learned
    position embeddings) also pass `size`, and then H and W must both equal it.
    """
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"expected images of shape (B, {channels}, H, W), got {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if height % multiple or width % multiple:
        raise ValueError(
            f"image side must be divisible by {multiple}, got {height}x{width}; "
            f"resize to a multiple of {multiple} (e.g. 64, 128, 224)"
        )
    if size is not None and (height, width) != (size, size):
        raise ValueError(
            f"model was built for img_size={size}, got a {height}x{width} input; "
            f"create it with img_size={height} or resize the images"
        )
