"""Res-MTNet: a residual multi-task network for joint classification and regression.

Pan et al., "A Residual Multi-task Network for Joint Classification and Regression in Medical
Imaging", arXiv:2502.19692, 2025. Reimplemented from its abstract, which states: (a) "multi-task
learning ... by sharing feature extraction layer", (b) "introducing residual connections", which
solve "the problem of disappearing gradients, ensuring stable training of deeper networks and
facilitating information sharing between tasks", (c) classification and regression heads
(pulmonary nodules: detection/classification and a regressed quantity).

Everything else is our assumption (docs/models.md, "Res-MTNet"):

- shared feature extractor: ResNet-18's residual trunk (He et al. 2016, Table 1; basic blocks,
  two per stage, widths `width * (1, 2, 4, 8)`) after a stride-2 3x3 stem (the 7x7 stem and
  max-pool of ImageNet-sized inputs would leave 2 x 2 features at 64 px), global average
  pooling, then a shared fully connected layer (8 width -> 4 width, ReLU): the "shared feature
  extraction layer" both tasks read;
- residual task heads: each task refines the shared embedding e with a residual MLP block,
  h = e + W2 ReLU(W1 e) (W1: 4w -> 4w, W2: 4w -> 4w), then a linear output (classes;
  standardised targets). The regression head also receives the classification head's residual
  branch (h_reg = e + branch_reg(e) + branch_cls(e), gradient stopped into the classification
  branch), our reading of residual connections "facilitating information sharing between
  tasks": what the classifier learns adds to the regressor's features, while the regression
  loss does not pull on the classifier.
- widths 64 (the paper's ResNet scale; profiles override `width`); dropout none.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.models.base import MultiTaskModel
from medmtl.models.blocks.resnet import make_stage
from medmtl.models.blocks.unet import conv_bn_relu
from medmtl.models.registry import MTLOutput, register_model


def residual_branch(features: int) -> nn.Sequential:
    """W2 ReLU(W1 e): the branch of a residual MLP block."""
    return nn.Sequential(
        nn.Linear(features, features), nn.ReLU(inplace=True), nn.Linear(features, features)
    )


class ResMTNet(MultiTaskModel):
    """Residual trunk, shared embedding, residual classification and regression heads."""

    side_multiple = 16
    tasks = ("cls", "reg")
    any_channels = True

    def __init__(self, **sizes: Any) -> None:
        super().__init__(**sizes)
        num_classes, _, _, width = self.sizes
        widths = [width * m for m in (1, 2, 4, 8)]
        self.stem = nn.Sequential(*conv_bn_relu(self.in_channels, width, 2))
        self.stages = nn.Sequential(
            *(make_stage("basic", widths[max(i - 1, 0)], widths[i], 2, 1 if i == 0 else 2)
              for i in range(4))
        )  # fmt: skip
        embedding = 4 * width
        self.shared = nn.Sequential(nn.Linear(widths[3], embedding), nn.ReLU(inplace=True))
        self.cls_branch = residual_branch(embedding)
        self.reg_branch = residual_branch(embedding)
        self.cls_out = nn.Linear(embedding, num_classes)
        self.reg_out = nn.Linear(embedding, self.num_targets)

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x)
        pooled = torch.flatten(F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1), 1)
        shared = self.shared(pooled)
        cls_features = self.cls_branch(shared)
        cls_hidden = shared + cls_features
        reg_hidden = shared + self.reg_branch(shared) + cls_features.detach()
        return MTLOutput(None, self.cls_out(cls_hidden), self.reg_out(reg_hidden))


@register_model("res_mtnet")
def res_mtnet(**kwargs: Any) -> ResMTNet:
    """Res-MTNet (arXiv:2502.19692): residual trunk, residual classification + regression heads."""
    return ResMTNet(**kwargs)
