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


@dataclass(frozen=True)
class TargetScale:
    """Standardisation of the regression targets, fitted on the training split: a model learns
    and outputs z = (y - mean) / sd per target (sd 1 where the training values are constant),
    and predictions are restored to the targets' units. Stored in run.json."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    sd: tuple[float, ...]

    @classmethod
    def fit(cls, names: tuple[str, ...], values: np.ndarray) -> TargetScale:
        """Mean and population sd of each column of `values` (N, R), over the cases that
        have targets (rows without NaN).

        Raises:
            ValueError: no case has targets.
        """
        values = values[~np.isnan(values).any(axis=1)]
        if not len(values):
            raise ValueError("no training case has regression targets")
        sd = values.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        return cls(tuple(names), tuple(map(float, values.mean(axis=0))), tuple(map(float, sd)))

    def standardise(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, np.float64) - self.mean) / self.sd

    def restore(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, np.float64) * self.sd + self.mean

    def to_json(self) -> dict:
        return {"names": list(self.names), "mean": list(self.mean), "sd": list(self.sd)}

    @classmethod
    def from_json(cls, data: dict) -> TargetScale:
        return cls(tuple(data["names"]), tuple(data["mean"]), tuple(data["sd"]))


@dataclass
class Split:
    """One subset of a processed dataset as tensors: images (N, C, S, S) uint8, masks (N, S, S)
    uint8 in {0, 1}, labels (N,) int64 and, for a model with a regression task, standardised
    targets (N, R) float32 (`TargetScale`)."""

    images: Tensor
    masks: Tensor
    labels: Tensor
    targets: Tensor | None = None

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        masks: np.ndarray,
        labels: np.ndarray,
        targets: np.ndarray | None = None,
    ) -> Split:
        return cls(
            torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous(),
            torch.from_numpy(np.ascontiguousarray(masks)),
            torch.from_numpy(np.asarray(labels, dtype=np.int64)),
            None if targets is None else torch.from_numpy(np.asarray(targets, np.float32)),
        )

    def __len__(self) -> int:
        return len(self.labels)


def build_model(cfg, num_classes: int, *, in_channels: int = 3, num_targets: int = 0) -> nn.Module:
    """The registered model `cfg.model.name` with the config's options, at `cfg.dataset.img_size`
    for `in_channels` input channels and `num_targets` regression targets (a model without a
    regression task ignores them): what training and every evaluation of its checkpoint must
    build alike."""
    options = {k: v for k, v in cfg.model.items() if k != "name"}
    return create_model(
        cfg.model.name,
        num_classes=num_classes,
        img_size=cfg.dataset.img_size,
        in_channels=in_channels,
        num_targets=num_targets,
        **options,
    )


def resolve_device(name: str) -> torch.device:
    """`auto` -> first CUDA device if present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def normalise(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float centred on 0 (models are randomly initialised, section 4)."""
    return images.float().div_(127.5).sub_(1.0)
