"""What training and evaluation must build alike for one run: a subset of the processed data
as tensors, the model's input normalisation, the model from the run's config, and the device.
Training (`medmtl.training.loop`) and prediction (`medmtl.evaluation.predict`) both import
it; neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from medmtl.models import create_model


@dataclass
class Split:
    """One subset of a processed dataset as tensors: images (N, 3, S, S) uint8, masks (N, S, S)
    uint8 in {0, 1}, labels (N,) int64."""

    images: Tensor
    masks: Tensor
    labels: Tensor

    @classmethod
    def from_arrays(cls, images: np.ndarray, masks: np.ndarray, labels: np.ndarray) -> Split:
        return cls(
            torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous(),
            torch.from_numpy(np.ascontiguousarray(masks)),
            torch.from_numpy(np.asarray(labels, dtype=np.int64)),
        )

    def __len__(self) -> int:
        return len(self.labels)


def build_model(cfg, num_classes: int) -> nn.Module:
    """The registered model `cfg.model.name` with the config's options, at `cfg.dataset.img_size`
    (what training and every evaluation of its checkpoint must build alike)."""
    options = {k: v for k, v in cfg.model.items() if k != "name"}
    return create_model(
        cfg.model.name, num_classes=num_classes, img_size=cfg.dataset.img_size, **options
    )


def resolve_device(name: str) -> torch.device:
    """`auto` -> first CUDA device if present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def normalise(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float centred on 0 (models are randomly initialised, section 4)."""
    return images.float().div_(127.5).sub_(1.0)
