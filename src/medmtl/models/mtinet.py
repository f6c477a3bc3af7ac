"""MTI-Net: multi-task interaction adversarial network for lesion segmentation, dynamic
enhancement regression and classification on dynamic (multi-phase) images.

Reimplemented from the abstract of arXiv:2511.20793 (issue 14), which names four parts:
(1) Multi-domain Information Entropy Fusion (MdIEF), "entropy-aware, high-frequency spectral
information to effectively integrate features from both frequency and spectral domains";
(2) "a shallow Transformer network to perform positional encoding, which captures the
relationships within dynamic MRI sequences"; (3) "a task interaction module that establishes
higher-order consistency between segmentation and regression"; (4) a task-driven
discriminator (TDD), trained adversarially (`medmtl.training.adversarial`). Everything below
beyond those names is our assumption (docs/models.md, "MTI-Net"):

- input: the T phases of a study as channels (B, T, H, W); one residual CNN (ResNet basic
  blocks, He et al. 2016) encodes every phase alike into four levels (strides 1, 2, 4, 8;
  widths `width * (1, 2, 4, 8)`);
- temporal encoding (2): the pooled deepest feature of each phase is a token; a learned
  position embedding per phase is added and one pre-norm Transformer encoder layer (Vaswani
  et al. 2017; `heads` heads, feed-forward 2x) relates the phases; a linear score and a softmax
  over the phases give each phase a weight, and every level's features are fused as the
  weighted sum over phases; the weighted sum of the tokens is the study's temporal context;
- MdIEF (1), on the fused deepest level S: three branches, each a 1x1 convolution of
  (a) the frequency domain: S filtered by a learned complex filter on its 2D spectrum (a
      global filter, Rao et al. 2021, GFNet),
  (b) the high spatial frequencies: S with the lower `high_pass` fraction of its spectrum's
      radius removed,
  (c) the spectral (temporal) domain: the magnitudes of the non-constant temporal
      frequencies 1..T//2 of the per-phase features, which carry the enhancement dynamics;
  each branch's spatial entropy (per channel, of the softmax over positions, normalised to
  [0, 1], mean over channels) is its information measure; the branches are weighted by a
  softmax of minus their entropies over a learned temperature (the more concentrated
  branch counts more) and added to S (residual). `use_mdief=False` (`mtinet_no_mdief`)
  leaves S as it is;
- decoder: U-Net upsampling (bilinear, concatenation with the fused level of the same scale,
  two 3x3 conv-BN-ReLU) to full resolution, then a 1x1 segmentation head;
- task interaction (3): segmentation -> regression: the decoder features and each phase's
  first-level features are pooled under the predicted lesion (foreground probability as
  weights); the latter, one vector per phase, is the lesion's enhancement curve in feature
  space, which the parameters to regress describe; with the temporal context and the pooled
  deepest level, a two-layer MLP embeds them: the regression head reads this embedding;
  regression -> segmentation: the embedding modulates the decoder features (FiLM,
  Perez et al. 2018: x (1 + gamma) + beta) before the same segmentation head gives the final
  mask, so mask and regressed parameters are computed from each other;
- classification: a linear layer on the pooled deepest level, the temporal context and the
  interaction embedding;
- TDD (4): `TaskDrivenDiscriminator`; `use_tdd=False` (`mtinet_no_tdd`) trains without it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from medmtl.models.base import MultiTaskModel
from medmtl.models.blocks.resnet import ResidualBlock
from medmtl.models.blocks.unet import UpBlock, conv_bn_relu
from medmtl.models.registry import MTLOutput, register_model


class PhaseEncoder(nn.Module):
    """One residual CNN for every phase: (N, 1, H, W) -> features at strides 1, 2, 4, 8."""

    def __init__(self, width: int) -> None:
        super().__init__()
        widths = [width * m for m in (1, 2, 4, 8)]
        self.stem = nn.Sequential(*conv_bn_relu(1, width))
        self.levels = nn.ModuleList(
            ResidualBlock(widths[max(i - 1, 0)], widths[i], 1 if i == 0 else 2) for i in range(4)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        features, y = [], self.stem(x)
        for level in self.levels:
            y = level(y)
            features.append(y)
        return features


class TemporalEncoding(nn.Module):
    """Phase tokens + learned positions through one Transformer layer -> phase weights."""

    def __init__(self, channels: int, phases: int, heads: int) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(phases, channels))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.layer = nn.TransformerEncoderLayer(
            channels, heads, 2 * channels, dropout=0.0, batch_first=True, norm_first=True
        )
        self.score = nn.Linear(channels, 1, bias=False)  # a softmax over phases ignores a bias

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """(weights (B, T) summing to 1 over the phases, context (B, C))."""
        encoded = self.layer(tokens + self.position)
        weights = self.score(encoded).squeeze(-1).softmax(dim=1)
        return weights, (weights[..., None] * encoded).sum(1)


def spatial_entropy(x: Tensor) -> Tensor:
    """(B,) mean over channels of the entropy of softmax(x) over the positions, in [0, 1]."""
    logits = x.flatten(2)
    log_p = logits.log_softmax(dim=-1)
    entropy = -(log_p.exp() * log_p).sum(-1) / math.log(logits.shape[-1])
    return entropy.mean(1)


class MdIEF(nn.Module):
    """Multi-domain information entropy fusion of the fused deepest level (module docstring)."""

    def __init__(self, channels: int, phases: int, side: int, high_pass: float) -> None:
        super().__init__()
        half = side // 2 + 1
        self.filter = nn.Parameter(torch.ones(channels, side, half, 2) * torch.tensor([1.0, 0.0]))
        fy = torch.fft.fftfreq(side).abs()[:, None]
        fx = torch.fft.rfftfreq(side)[None, :]
        radius = torch.sqrt(fy**2 + fx**2) / math.sqrt(0.5)  # 1 at the corner frequency
        self.register_buffer("high", (radius > high_pass).float(), persistent=False)
        self.frequency = nn.Conv2d(channels, channels, 1)
        self.high_frequency = nn.Conv2d(channels, channels, 1)
        self.spectral = nn.Conv2d(channels * (phases // 2), channels, 1)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(0.1)))

    def forward(self, fused: Tensor, phases: Tensor) -> Tensor:
        """fused (B, C, h, w), phases (B, T, C, h, w) -> (B, C, h, w)."""
        with torch.autocast(fused.device.type, enabled=False):  # FFTs in fp32
            size = fused.shape[-2:]
            spectrum = torch.fft.rfft2(fused.float(), norm="ortho")
            filtered = spectrum * torch.view_as_complex(self.filter)
            branches = [
                self.frequency(torch.fft.irfft2(filtered, s=size, norm="ortho")),
                self.high_frequency(torch.fft.irfft2(spectrum * self.high, s=size, norm="ortho")),
            ]
            temporal = torch.fft.rfft(phases.float(), dim=1, norm="ortho")
            dynamics = temporal[:, 1 : phases.shape[1] // 2 + 1].abs().flatten(1, 2)
            branches.append(self.spectral(dynamics))
            entropies = torch.stack([spatial_entropy(b) for b in branches], 1)  # (B, 3)
            weights = (-entropies / self.log_temperature.exp()).softmax(dim=1)
            mixed = sum(
                w[:, None, None, None] * b for w, b in zip(weights.T, branches, strict=True)
            )
        return fused + mixed.to(fused.dtype)


class MTINet(MultiTaskModel):
    """MTI-Net (module docstring); `use_mdief`, `use_tdd` switch parts (1) and (4) off."""

    side_multiple = 8
    fixed_size = True  # MdIEF's learned spectral filter has the deepest level's size
    tasks = ("seg", "cls", "reg")
    any_channels = True

    def __init__(
        self,
        *,
        use_mdief: bool = True,
        use_tdd: bool = True,
        heads: int = 4,
        high_pass: float = 0.25,
        **sizes: Any,
    ) -> None:
        super().__init__(**sizes)
        num_classes, num_seg_classes, img_size, width = self.sizes
        phases = self.in_channels
        if phases < 2:
            raise ValueError(f"MTI-Net needs a sequence of two phases at least, got {phases}")
        widths = [width * m for m in (1, 2, 4, 8)]
        self.use_tdd = use_tdd
        self.encoder = PhaseEncoder(width)
        self.temporal = TemporalEncoding(widths[3], phases, heads)
        self.mdief = MdIEF(widths[3], phases, img_size // 8, high_pass) if use_mdief else None
        self.decoder = nn.ModuleList(
            UpBlock(widths[i + 1], widths[i], widths[i]) for i in reversed(range(3))
        )
        self.seg_head = nn.Conv2d(widths[0], num_seg_classes, 1)
        embedding = 4 * width
        self.interaction = nn.Sequential(
            nn.Linear(widths[0] * (1 + phases) + 2 * widths[3], embedding),
            nn.ReLU(inplace=True),
            nn.Linear(embedding, embedding),
            nn.ReLU(inplace=True),
        )
        self.film = nn.Linear(embedding, 2 * widths[0])
        self.reg_head = nn.Linear(embedding, self.num_targets)
        self.cls_head = nn.Linear(2 * widths[3] + embedding, num_classes)

    def forward(self, x: Tensor) -> MTLOutput:
        self.check_input(x)
        batch, phases = x.shape[:2]
        levels = self.encoder(x.reshape(batch * phases, 1, *x.shape[-2:]))
        levels = [f.reshape(batch, phases, *f.shape[1:]) for f in levels]  # (B, T, C, h, w)
        weights, context = self.temporal(levels[3].mean((-2, -1)))
        fused = [(weights[:, :, None, None, None] * f).sum(1) for f in levels]
        deepest = fused[3] if self.mdief is None else self.mdief(fused[3], levels[3])
        pooled = deepest.mean((-2, -1))
        y = deepest
        for up, skip in zip(self.decoder, reversed(fused[:3]), strict=True):
            y = up(y, skip)
        first = self.seg_head(y).float().softmax(1)
        lesion = 1 - first[:, :1]  # foreground probability of the first pass
        area = lesion.sum((-2, -1)) + 1e-6
        under = (lesion * y).sum((-2, -1)) / area
        curve = (lesion[:, None] * levels[0]).sum((-2, -1)) / area[:, None]  # (B, T, C)
        embedded = self.interaction(torch.cat([under, curve.flatten(1), context, pooled], 1))
        gamma, beta = self.film(embedded)[:, :, None, None].chunk(2, dim=1)
        seg = self.seg_head(y * (1 + gamma) + beta)
        cls = self.cls_head(torch.cat([pooled, context, embedded], 1))
        return MTLOutput(seg, cls, self.reg_head(embedded))

    def make_discriminator(self) -> nn.Module | None:
        if not self.use_tdd:
            return None
        num_classes, _, _, width = self.sizes
        return TaskDrivenDiscriminator(self.in_channels, self.num_targets, num_classes, width)


class TaskDrivenDiscriminator(nn.Module):
    """D(phases, lesion map, standardised targets, class probabilities) -> real/fake logit.

    Three strided 4x4 convolutions (LeakyReLU 0.2, no normalisation: Radford et al. 2016) over
    the phases and the lesion map, pooled, joined with an embedding of the regression vector
    and the class probabilities, then a two-layer MLP: it judges the answers of all tasks
    together, against the image (what else it can use: `medmtl.training.adversarial`).
    """

    def __init__(self, in_channels: int, num_targets: int, num_classes: int, width: int) -> None:
        super().__init__()
        widths = [width * m for m in (1, 2, 4)]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels + 1, widths[0], 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(widths[0], widths[1], 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(widths[1], widths[2], 4, 2, 1),
            nn.LeakyReLU(0.2),
        )
        self.answers = nn.Sequential(
            nn.Linear(num_targets + num_classes, widths[2]), nn.LeakyReLU(0.2)
        )
        self.head = nn.Sequential(
            nn.Linear(2 * widths[2], widths[2]), nn.LeakyReLU(0.2), nn.Linear(widths[2], 1)
        )

    def forward(self, images: Tensor, seg: Tensor, reg: Tensor, cls: Tensor) -> Tensor:
        spatial = self.features(torch.cat([images, seg.to(images.dtype)], 1)).mean((-2, -1))
        answers = self.answers(torch.cat([reg, cls], 1).to(spatial.dtype))
        return self.head(torch.cat([spatial, answers], 1)).squeeze(1)


@register_model("mtinet")
def mtinet(**kwargs: Any) -> MTINet:
    """MTI-Net (arXiv:2511.20793): phases via Transformer encoding, MdIEF, task interaction, TDD."""
    return MTINet(**kwargs)


@register_model("mtinet_no_mdief")
def mtinet_no_mdief(**kwargs: Any) -> MTINet:
    """MTI-Net without MdIEF (ablation): the fused deepest level is used as it is."""
    return MTINet(use_mdief=False, **kwargs)


@register_model("mtinet_no_tdd")
def mtinet_no_tdd(**kwargs: Any) -> MTINet:
    """MTI-Net trained without its task-driven discriminator (ablation)."""
    return MTINet(use_tdd=False, **kwargs)
