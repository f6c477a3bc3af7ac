"""BI-RADS consistency regularisation: differentiable morphology of the soft mask -> malignancy
prior, pulled towards the classifier's malignancy probability.

Zhang, Moradi, Saha, "Externally validated multi-task learning via consistency regularization
using differentiable BI-RADS features for breast ultrasound tumor segmentation",
arXiv:2511.15968, 2025 (no public code). The stored abstract says the regulariser "is composed of
differentiable BI-RADS-inspired morphological features" and "mitigates destructive interference
between segmentation and classification"; the arXiv listing (project notes, anchors 1.4) adds
that four such features of the soft mask are combined with learnable weights into a malignancy
prior phi and that the loss is MSE(p_hat, phi), p_hat the classifier's malignancy probability.

Assumed here, because our sources give no formulas:
- the features (the paper's four are not named in our sources): five dimensionless descriptors
  covering the three mass descriptors of the BI-RADS ultrasound lexicon - shape (compactness,
  elongation, solidity), orientation (taller-than-wide) and margin (irregularity, compactness);
  `features` selects a subset;
- phi = sigmoid(w . z + b), z = the log-features standardised by running means and variances of
  the training batches (no gradient; frozen in eval mode, so validation does not move them),
  w and b learnable and initialised to 0 (phi = 0.5 until the prior has learnt a direction);
- the soft mask is the summed softmax of the foreground classes; an image whose soft mask covers
  less than `min_area` of the image has no shape and is left out of the term;
- no gradient is stopped: the term moves the classifier, the mask and (w, b) towards agreement,
  and it is the only thing that trains (w, b): the prior never sees the labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from medmtl.errors import UserError
from medmtl.models import MTLOutput

FEATURES = ("compactness", "elongation", "orientation", "solidity", "irregularity")
_EPS = 1e-6
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8


def soft_area(p: Tensor) -> Tensor:
    """(B,) area in pixels of soft masks p (B, H, W): sum of the foreground probabilities."""
    return p.sum((-2, -1))


def soft_perimeter(p: Tensor) -> Tensor:
    """(B,) boundary length in pixels: total variation of p with Sobel derivatives.

    The gradient magnitude of a mask integrates to its boundary length (coarea formula); Sobel
    derivatives are the most isotropic 3x3 choice: a hard digital disc comes out within 3 % of
    2 pi r at radius 8-60 px, a smooth one within 0.5 %. Outside the image is background and
    the derivatives are taken on the 2-pixel zero-padded map, so a lesion cut by the border has
    that cut in its outline (a half disc on the border: 4 pi A / P^2 = 0.75, not 2) and a
    diffuse mask of level c gets P = c times the image's perimeter rather than 0.
    """
    kernel = torch.stack([_SOBEL_X, _SOBEL_X.T])[:, None].to(p)
    grad = F.conv2d(p[:, None], kernel, padding=2)
    return torch.sqrt(grad.pow(2).sum(1) + _EPS**2).sum((-2, -1))


def central_moments(p: Tensor) -> Tensor:
    """(B, 3) second central moments (var_y, var_x, cov_xy) of p as a density, in pixels^2."""
    height, width = p.shape[-2:]
    y = torch.arange(height, dtype=p.dtype, device=p.device)[:, None]
    x = torch.arange(width, dtype=p.dtype, device=p.device)[None, :]
    mass = soft_area(p) + _EPS

    def mean(v: Tensor) -> Tensor:
        return (p * v).sum((-2, -1)) / mass

    dy, dx = y - mean(y)[:, None, None], x - mean(x)[:, None, None]
    return torch.stack([mean(dy * dy), mean(dx * dx), mean(dx * dy)], 1)


def principal_variances(moments: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues (major, minor) of the 2x2 covariance [[var_y, cov], [cov, var_x]]."""
    var_y, var_x, cov = moments.unbind(1)
    half_trace = (var_y + var_x) / 2
    radius = torch.sqrt(((var_y - var_x) / 2) ** 2 + cov**2 + _EPS**2)
    return half_trace + radius, (half_trace - radius).clamp_min(_EPS)


def compactness(area: Tensor, perimeter: Tensor) -> Tensor:
    """4 pi A / P^2 (isoperimetric quotient): 1 for a disc, smaller for any other shape.

    BI-RADS shape (round/oval vs irregular) and margin (circumscribed vs not): a lobulated,
    angular or spiculated outline lengthens P at equal area (arXiv:2511.15968 abstract:
    "BI-RADS-inspired morphological features").
    """
    return 4 * math.pi * area / (perimeter**2 + _EPS)


def elongation(moments: Tensor) -> Tensor:
    """sqrt(lambda_major / lambda_minor) of the soft covariance: the moment ellipse's axis ratio.

    1 for a disc, a/b for an ellipse of semi-axes a >= b. BI-RADS shape: round vs oval
    (arXiv:2511.15968). Rotation-invariant, so it does not see orientation (`orientation` does).
    """
    major, minor = principal_variances(moments)
    return torch.sqrt(major / minor)


def orientation(moments: Tensor) -> Tensor:
    """sqrt(var_y / var_x): vertical over horizontal extent, > 1 for a taller-than-wide mass.

    BI-RADS orientation: "not parallel" (taller than wide, the long axis crossing the skin line
    at the top of an ultrasound image) is a malignancy sign (arXiv:2511.15968). Meaningless for
    dermoscopy, which has no "up": leave it out of `features` there.
    """
    var_y, var_x, _ = moments.unbind(1)
    return torch.sqrt((var_y + _EPS) / (var_x + _EPS))


def max_filter(x: Tensor, size: int) -> Tensor:
    """Maximum over a `size` x `size` (odd) window around each pixel of x (B, 1, H, W): a row
    then a column max-pool, the same result as a square pool at 2/size of the work."""
    x = F.max_pool2d(x, (size, 1), 1, (size // 2, 0))
    return F.max_pool2d(x, (1, size), 1, (0, size // 2))


def soft_closing(p: Tensor, size: int) -> Tensor:
    """Grey-scale closing of p (B, H, W) by a `size` x `size` square: dilation (max filter),
    then erosion (min filter); fills concavities narrower than about `size` pixels."""
    return -max_filter(-max_filter(p[:, None], size), size)[:, 0]


def solidity(p: Tensor, area: Tensor, closing_size: int) -> Tensor:
    """A / A(closing of p): 1 for a convex mask, smaller when the outline has concavities.

    A differentiable stand-in for solidity (area over convex-hull area): the closing fills the
    notches between lobes and spicules up to `closing_size` pixels wide. BI-RADS shape
    (irregular) and margin (lobulated) (arXiv:2511.15968).
    """
    return area / (soft_area(soft_closing(p, closing_size)) + _EPS)


def irregularity(perimeter: Tensor, moments: Tensor) -> Tensor:
    """P / perimeter of the moment ellipse (Ramanujan's approximation): about 1 for an ellipse.

    Separates boundary roughness from elongation, which `compactness` mixes: BI-RADS margin
    (angular, microlobulated, spiculated vs circumscribed) (arXiv:2511.15968). The moment
    ellipse of a uniform ellipse with semi-axes a, b has variances a^2/4 and b^2/4.
    """
    major, minor = principal_variances(moments)
    a, b = 2 * torch.sqrt(major), 2 * torch.sqrt(minor)
    ellipse = math.pi * (3 * (a + b) - torch.sqrt((3 * a + b) * (a + 3 * b)))
    return perimeter / (ellipse + _EPS)


def default_closing_size(side: int) -> int:
    """Odd closing element of about side / 8 pixels (9 at 64 px, 29 at 224 px)."""
    return 2 * (side // 16) + 1


def morphological_features(p: Tensor, closing_size: int | None = None) -> dict[str, Tensor]:
    """All features of soft masks p (B, H, W) in [0, 1], each (B,), computed in float32.

    `area` and `perimeter` are in pixels; the others are dimensionless (the `FEATURES`).
    """
    with torch.autocast(p.device.type, enabled=False):
        p = p.float()
        area, perimeter, moments = soft_area(p), soft_perimeter(p), central_moments(p)
        size = closing_size or default_closing_size(min(p.shape[-2:]))
        return {
            "area": area,
            "perimeter": perimeter,
            "compactness": compactness(area, perimeter),
            "elongation": elongation(moments),
            "orientation": orientation(moments),
            "solidity": solidity(p, area, size),
            "irregularity": irregularity(perimeter, moments),
        }


class RunningStandardiser(nn.Module):
    """z = (x - mean) / std with the mean and variance tracked over training batches.

    In training mode every batch of at least two rows updates the statistics without gradient,
    as a cumulative average for the first 1 / `momentum` batches and then an exponential moving
    average; in eval mode they are frozen. Buffers, so checkpoints carry them.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-4) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("var", torch.ones(num_features))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        if self.training and len(x) > 1:
            with torch.no_grad():
                rate = max(self.momentum, 1.0 / (int(self.batches) + 1))
                self.mean.lerp_(x.mean(0), rate)
                self.var.lerp_(x.var(0, unbiased=False), rate)
                self.batches += 1
        return (x - self.mean) / torch.sqrt(self.var + self.eps)


class MalignancyPrior(nn.Module):
    """phi = sigmoid(w . z + b): z the standardised log-features of the soft mask (B, H, W).

    arXiv:2511.15968 (per its arXiv listing, project notes anchors 1.4): the morphological
    features are combined with learnable weights into a malignancy prior. Logs make the ratios
    symmetric (a 2:1 and a 1:2 orientation are equally far from 1) and keep a degenerate mask
    from dominating the statistics.
    """

    def __init__(self, features: Sequence[str] = FEATURES, closing_size: int | None = None) -> None:
        super().__init__()
        unknown = sorted(set(features) - set(FEATURES))
        if unknown or not features:
            raise ValueError(f"features must be a non-empty subset of {FEATURES}, got {features}")
        self.features = tuple(features)
        self.closing_size = closing_size
        self.standardise = RunningStandardiser(len(self.features))
        self.linear = nn.Linear(len(self.features), 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, p: Tensor) -> Tensor:
        values = morphological_features(p, self.closing_size)
        x = torch.log(torch.stack([values[k] for k in self.features], 1).clamp_min(_EPS))
        return torch.sigmoid(self.linear(self.standardise(x)))[:, 0]


class BiradsConsistency(nn.Module):
    """MSE(p_hat_malignant, phi(soft mask)) over the images with a lesion-sized soft mask.

    arXiv:2511.15968: consistency regularisation between the classifier's malignancy probability
    (softmax over the class logits, class `malignant_index`) and the prior of `MalignancyPrior`.
    Returns 0 (no gradient) when no image of the batch has `min_area` of foreground.
    """

    def __init__(
        self,
        malignant_index: int,
        features: Sequence[str] = FEATURES,
        min_area: float = 0.005,
        closing_size: int | None = None,
    ) -> None:
        super().__init__()
        self.malignant_index = malignant_index
        self.min_area = min_area
        self.prior = MalignancyPrior(features, closing_size)

    def forward(self, out: MTLOutput) -> Tensor:
        p_malignant = out.cls_logits.float().softmax(1)[:, self.malignant_index]
        mask = out.seg_logits.float().softmax(1)[:, 1:].sum(1)
        valid = soft_area(mask).detach() >= self.min_area * mask.shape[-2] * mask.shape[-1]
        if not valid.any():
            return p_malignant.new_zeros(())
        return F.mse_loss(p_malignant[valid], self.prior(mask[valid]))


def malignant_index(class_names: Sequence[str], malignant_class: str | None) -> int:
    """Index of `malignant_class` in the dataset's class names (e.g. `malignant` for BUSI and
    UDIAT, `melanoma` for ISIC 2017 and PH2); a `UserError` naming the classes otherwise."""
    if malignant_class not in class_names:
        raise UserError(
            f"trainer.malignant_class={malignant_class!r} is not a class of this dataset "
            f"({', '.join(class_names)}); the BI-RADS consistency term needs one"
        )
    return list(class_names).index(malignant_class)
