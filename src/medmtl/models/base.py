"""What every registered model shares: the keyword-only task sizes, their check, the input check.

A model subclasses `MultiTaskModel`, sets `side_multiple` (the input side must be divisible by
it: the product of its downsampling strides) and `fixed_size` (True when layers depend on the
resolution the model was built for: Swin windows, learned position embeddings), passes the
sizes on with ``super().__init__(**sizes)`` and starts `forward` with ``self.check_input(x)``.

`tasks` names the outputs the model has: ``seg`` (segmentation logits), ``cls``
(classification logits), ``reg`` (a vector of `num_targets` continuous targets, standardised);
a task the model lacks is None in its `MTLOutput`. Models that take other inputs than RGB
images (the phases of a dynamic study as channels) set `any_channels` and read `in_channels`.
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
    tasks: ClassVar[tuple[str, ...]] = ("seg", "cls")
    any_channels: ClassVar[bool] = False

    def __init__(
        self,
        *,
        num_classes: int = 3,
        num_seg_classes: int = 2,
        img_size: int = 224,
        width: int = 64,
        in_channels: int = 3,
        num_targets: int = 0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if img_size % self.side_multiple:
            raise ValueError(
                f"{name} needs img_size divisible by {self.side_multiple}, got {img_size}"
            )
        if in_channels != 3 and not self.any_channels:
            raise ValueError(f"{name} takes RGB images (3 channels), got {in_channels} channels")
        if "reg" in self.tasks and num_targets < 1:
            raise ValueError(f"{name} regresses targets: give num_targets >= 1")
        self.sizes = TaskSizes(num_classes, num_seg_classes, img_size, width)
        self.in_channels, self.num_targets = in_channels, num_targets

    def make_discriminator(self) -> nn.Module | None:
        """A discriminator to train against this model (`medmtl.training.adversarial`), or
        None: MTI-Net's task-driven discriminator is the only one."""
        return None

    def check_input(self, x: Tensor) -> None:
        """Raise ValueError unless `x` is an image batch this model can take."""
        size = self.sizes.img_size if self.fixed_size else None
        check_image(x, self.side_multiple, size, self.in_channels)
