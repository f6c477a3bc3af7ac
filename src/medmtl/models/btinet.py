"""BTI-Net: bidirectional task interaction at every decoder level, gated per image and level.

"BTI-Net", arXiv:2606.29102 (2026); code github.com/C-loud-Nine/BTI-Net_MTL (TensorFlow/Keras),
read as a fact sheet (project notes, anchors 1.2); nothing is copied.

What the abstract says: bidirectional communication at every one of four decoder levels through
Task Interaction Modules (TIM) - spatial boundary context gated into the classification branch,
global semantic priors multiplicatively modulating the decoder - and Uncertainty Proxy Attention
(UPA) gating each TIM output per instance and per level from three signals: cross-task alignment,
scene complexity and prediction confidence, with no extra annotation or inference pass.

What the fact sheet says the code does, and what is reproduced here (widths at width 64):
- decoder levels of 384/192/96/48 channels: transposed conv x2, Attention U-Net gate on the skip,
  concatenation, residual block, dropout 0.3; a head ConvT x2 (24) - conv (16) - 1x1 conv;
- per level, a classification feature: global average pooling of an encoder feature, then
  Dense(256, ReLU);
- TIM, seg -> cls: context = BN(Dense(256, ReLU)(GAP(ReLU(Conv1x1_{c/2}(seg))))),
  cls' = cls + sigmoid(Dense(context)) * context; cls -> seg: seg' = seg * (1 + tau * m),
  m = sigmoid(Dense_c(cls)) * sigmoid(Dense_c(GAP(seg))), tau = 0.7, so the factor lies in
  [1, 1 + tau]: the decoder is enhanced, never attenuated;
- UPA: alignment = cosine(P_s(mean_xy(seg' - seg)), P_c(cls' - cls)) with 64-wide projections,
  complexity = mean |d/dy| + |d/dx| of seg, confidence = log1p(var(cls')); Dense(32, ReLU) -
  Dense(2) - sigmoid -> (w_seg, w_cls); outputs base + w * (enhanced - base);
- classifier: GAP of four encoder features ++ the four level features - Dense(256) - BN -
  Dropout(0.3) - Dense(classes).

What we changed or assumed:
- encoder: the authors fine-tune an ImageNet EfficientNet-B4 (first 50 layers frozen); the
  shared protocol trains from random weights and the project has no EfficientNet, so the
  encoder is the shared ResNet-34 trunk (`blocks.resnet`, 21 M parameters against B4's 18 M).
  Skips are its features at strides 16, 8, 4, 2 and the decoder starts at stride 32 - the
  strides a four-level x2 decoder with a x2 head needs, and those of the authors' skip layers
  (`block2a/3a/4a/6a_expand_activation` precede each stage's strided depthwise convolution:
  112/56/28/14 px at 224; the fact sheet's "56/28/14/7" would not reach 224 px);
- the encoder feature behind level i's classification feature is the ResNet stage at the
  matching depth (strides 32, 16, 8, 4 for levels 1-4), and those four stages are the
  classifier's "four encoder features"; ReLU after the classifier's Dense(256);
- narrow widths: the head's two convolutions and TIM's 1x1 context convolution keep at least
  16 channels, the authors' narrowest layer (nothing changes at width 64), and the head has
  BN-ReLU after both convolutions (the fact sheet lists no normalisation). Scaled plainly to
  width 8 the head had 3 and 2 channels, its ReLUs died in demo training and the mask stayed
  constant; with 8 BN channels it learnt but overfitted a few images erratically; at width 4
  the 1-channel context ReLU was dead at initialisation for 2 seeds in 20;
- not reproduced (the abstract does not name them): the residual-attention blocks on the skips,
  the multi-scale context fusion module, and the authors' losses (focal Tversky with size boost,
  boundary and texture terms; focal CE): the shared trainer applies one loss to every model;
- the complexity signal is computed at every level (the code sets it to 0 below 8 px, which
  never happens at 224 px);
- the stage-2 gate loss is not used: it needs a second training stage with everything but the
  gates frozen and targets built from the batch (min-max-normalised 1 - soft IoU and
  1 - confidence); the shared trainer has one stage and one loss for all models, and the
  abstract describes the gates as unsupervised proxies. `forward_with_gates` returns the gate
  weights, so such a stage or a failure-detection analysis can read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.models.base import MultiTaskModel
from medmtl.models.blocks.attention import AttentionGate
from medmtl.models.blocks.resnet import ResidualBlock, ResNetEncoder
from medmtl.models.registry import MTLOutput, register_model

MIN_WIDTH = 16  # fewest channels of the head and TIM context convs: the authors' narrowest


class BTIOutput(NamedTuple):
    """`MTLOutput` plus the UPA gate weights of every image and decoder level."""

    seg_logits: Tensor  # (B, num_seg_classes, H, W)
    cls_logits: Tensor  # (B, num_classes)
    gates: Tensor  # (B, 4, 2): (w_seg, w_cls) per decoder level, coarse to fine, in (0, 1)


def _up2(in_ch: int, out_ch: int, bias: bool = True) -> nn.ConvTranspose2d:
    """3x3 transposed convolution, stride 2: exactly doubles the side (Keras `padding="same"`)."""
    return nn.ConvTranspose2d(in_ch, out_ch, 3, 2, padding=1, output_padding=1, bias=bias)


def gradient_energy(x: Tensor) -> Tensor:
    """(B,) mean |d/dy| + mean |d/dx| of feature maps x (B, C, H, W): UPA's scene complexity."""
    dy, dx = x[:, :, 1:] - x[:, :, :-1], x[..., 1:] - x[..., :-1]
    return dy.abs().mean((1, 2, 3)) + dx.abs().mean((1, 2, 3))


class TaskInteraction(nn.Module):
    """TIM: boundary context gated into the classification feature, and the classification
    feature modulating the decoder channels by a factor in [1, 1 + tau] (BTI-Net abstract;
    fact sheet for the layers). Both directions read the un-enhanced inputs."""

    def __init__(self, seg_ch: int, clf_dim: int, tau: float) -> None:
        super().__init__()
        mid = max(MIN_WIDTH, seg_ch // 2)
        self.context = nn.Sequential(
            nn.Conv2d(seg_ch, mid, 1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(mid, clf_dim),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(clf_dim),
        )
        self.context_gate = nn.Linear(clf_dim, clf_dim)
        self.from_cls = nn.Linear(clf_dim, seg_ch)
        self.from_seg = nn.Linear(seg_ch, seg_ch)
        self.tau = tau

    def forward(self, seg: Tensor, clf: Tensor) -> tuple[Tensor, Tensor]:
        context = self.context(seg)
        clf_enhanced = clf + torch.sigmoid(self.context_gate(context)) * context
        seg_global = torch.sigmoid(self.from_seg(seg.mean((2, 3))))
        modulation = torch.sigmoid(self.from_cls(clf)) * seg_global
        seg_enhanced = seg * (1 + self.tau * modulation[:, :, None, None])
        return seg_enhanced, clf_enhanced


class UncertaintyProxyGate(nn.Module):
    """UPA: per-image weights (w_seg, w_cls) in (0, 1) from three proxies, blending each TIM
    output with its input: base + w * (enhanced - base) (BTI-Net abstract; fact sheet)."""

    def __init__(self, seg_ch: int, clf_dim: int, proj_dim: int, hidden: int = 32) -> None:
        super().__init__()
        self.seg_proj = nn.Linear(seg_ch, proj_dim)
        self.clf_proj = nn.Linear(clf_dim, proj_dim)
        self.mlp = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2))

    def signals(self, seg: Tensor, seg_enh: Tensor, clf: Tensor, clf_enh: Tensor) -> Tensor:
        """(B, 3): cross-task alignment, scene complexity, prediction confidence."""
        alignment = F.cosine_similarity(
            self.seg_proj((seg_enh - seg).mean((2, 3))), self.clf_proj(clf_enh - clf), dim=1
        )
        confidence = torch.log1p(clf_enh.var(1, correction=0))
        return torch.stack([alignment, gradient_energy(seg), confidence], 1)

    def forward(
        self, seg: Tensor, seg_enh: Tensor, clf: Tensor, clf_enh: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Gated decoder feature, gated classification feature, weights (B, 2)."""
        weights = torch.sigmoid(self.mlp(self.signals(seg, seg_enh, clf, clf_enh)))
        seg_out = seg + weights[:, 0, None, None, None] * (seg_enh - seg)
        return seg_out, clf + weights[:, 1:] * (clf_enh - clf), weights


class BTILevel(nn.Module):
    """One decoder level: x2 up, gated skip, residual block, dropout, then TIM and UPA."""

    def __init__(
        self,
        in_ch: int,
        skip_ch: int,
        enc_ch: int,
        out_ch: int,
        clf_dim: int,
        proj_dim: int,
        tau: float,
        dropout: float,
    ) -> None:
        super().__init__()
        self.up = _up2(in_ch, out_ch)
        self.skip_gate = AttentionGate(skip_ch, out_ch, max(1, out_ch // 2))
        self.block = ResidualBlock(out_ch + skip_ch, out_ch)
        self.dropout = nn.Dropout(dropout)
        self.to_cls = nn.Sequential(nn.Linear(enc_ch, clf_dim), nn.ReLU(inplace=True))
        self.interact = TaskInteraction(out_ch, clf_dim, tau)
        self.gate = UncertaintyProxyGate(out_ch, clf_dim, proj_dim)

    def forward(
        self, y: Tensor, skip: Tensor, encoder_vector: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Decoder feature, classification feature (B, clf_dim) and gate weights (B, 2)."""
        y = self.up(y)
        seg = self.dropout(self.block(torch.cat([y, self.skip_gate(skip, y)], 1)))
        clf = self.to_cls(encoder_vector)
        seg_enhanced, clf_enhanced = self.interact(seg, clf)
        return self.gate(seg, seg_enhanced, clf, clf_enhanced)


class BTINet(MultiTaskModel):
    """ResNet-34 encoder, four BTI decoder levels, two heads; input side divisible by 32."""

    side_multiple = 32

    def __init__(
        self,
        *,
        encoder_depths: Sequence[int] = (3, 4, 6, 3),
        tau: float = 0.7,
        dropout: float = 0.3,
        **sizes: int,
    ) -> None:
        super().__init__(**sizes)
        num_classes, num_seg_classes, _, width = self.sizes
        self.encoder = ResNetEncoder("basic", tuple(encoder_depths), width)
        ch = self.encoder.channels  # strides 2, 4, 8, 16, 32
        dec = [max(1, width * m // 8) for m in (48, 24, 12, 6)]  # 384/192/96/48 at width 64
        clf_dim = 4 * width  # 256 at width 64
        self.levels = nn.ModuleList(
            BTILevel(
                in_ch=(ch[4], *dec)[i],
                skip_ch=ch[3 - i],
                enc_ch=ch[4 - i],
                out_ch=dec[i],
                clf_dim=clf_dim,
                proj_dim=width,
                tau=tau,
                dropout=dropout,
            )
            for i in range(4)
        )
        head = (max(MIN_WIDTH, 3 * width // 8), max(MIN_WIDTH, width // 4))  # 24, 16 at 64
        self.seg_head = nn.Sequential(
            _up2(dec[3], head[0], bias=False),
            nn.BatchNorm2d(head[0]),
            nn.ReLU(inplace=True),
            nn.Conv2d(head[0], head[1], 3, padding=1, bias=False),
            nn.BatchNorm2d(head[1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(head[1], num_seg_classes, 1),
        )
        self.cls_head = nn.Sequential(
            nn.Linear(sum(ch[1:]) + 4 * clf_dim, clf_dim),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(clf_dim),
            nn.Dropout(dropout),
            nn.Linear(clf_dim, num_classes),
        )

    def forward_with_gates(self, x: Tensor) -> BTIOutput:
        """Logits and the UPA weights of every level (for analysis of the gates)."""
        self.check_input(x)
        feats = self.encoder(x)
        pooled = [f.mean((2, 3)) for f in feats[1:]]  # strides 4, 8, 16, 32
        y, level_features, gates = feats[4], [], []
        for i, level in enumerate(self.levels):
            y, clf, weights = level(y, feats[3 - i], pooled[3 - i])
            level_features.append(clf)
            gates.append(weights)
        cls_logits = self.cls_head(torch.cat([*pooled, *level_features], 1))
        return BTIOutput(self.seg_head(y), cls_logits, torch.stack(gates, 1))

    def forward(self, x: Tensor) -> MTLOutput:
        out = self.forward_with_gates(x)
        return MTLOutput(out.seg_logits, out.cls_logits)


@register_model("btinet")
def btinet(**kwargs: Any) -> BTINet:
    """BTI-Net (arXiv:2606.29102): TIM + UPA at every decoder level, ResNet-34 encoder."""
    return BTINet(**kwargs)
