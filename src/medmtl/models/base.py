"""What every registered model shares: the keyword-only task sizes, their check, the input check.

A model subclasses `MultiTaskModel`, sets `side_multiple` (the input side must be divisible by
it: the product of its downsampling strides) and `fixed_size` (True when layers depend on the
resolution the model was built for: Swin windows, learned position embeddings), passes the
sizes on with ``super().__init__(**sizes)`` and starts `forward` with ``self.check_input(x)``.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from torch import Tensor, nn

from medmtl.models.checks import check_image


class TaskSizes(NamedTuple):
    """The sizes every model is built for (the Hydra `model`/`dataset` keys of the same names)."""

    num_classes: int  # classification classes
    num_seg_classes: int  # segmentation classes, background included
    img_size: int  # input side
    width: int  # base channel width (64 = the papers' widths)


class MultiTaskModel(nn.Module):
    """Base of the registered models: (B, 3, H, W) images -> `MTLOutput` logits."""

    side_multiple: ClassVar[int]
    fixed_size: ClassVar[bool] = False

    def __init__(
        self,
        *,
        num_classes: int = 3,
        num_seg_classes: int = 2,
        img_size: int = 224,
        width: int = 64,
    ) -> None:
        super().__init__()
        if img_size % self.side_multiple:
            raise ValueError(
                f"{type(self).__name__} needs img_size divisible by {self.side_multiple}, "
                f"got {img_size}"
            )
        self.sizes = TaskSizes(num_classes, num_seg_classes, img_size, width)

    def check_input(self, x: Tensor) -> None:
        """Raise ValueError unless `x` is an image batch this model can take."""
        check_image(x, self.side_multiple, self.sizes.img_size if self.fixed_size else None)
