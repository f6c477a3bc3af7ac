"""BI-RADS consistency term (arXiv:2511.15968): features on drawn shapes, the prior and its loss,
and training with the term on (output, resume)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import Tensor

from medmtl.errors import UserError
from medmtl.models import MTLOutput
from medmtl.training.birads import (
    BiradsConsistency,
    MalignancyPrior,
    malignant_index,
    morphological_features,
)

SIDE = 64


def draw(radius: Callable[[Tensor], Tensor], edge: float = 1.0) -> Tensor:
    """(1, SIDE, SIDE) soft mask of the star-shaped region r < radius(theta) about the centre,
    with a sigmoid edge `edge` pixels wide (0: hard mask)."""
    rows, cols = torch.meshgrid(torch.arange(SIDE), torch.arange(SIDE), indexing="ij")
    dy, dx = rows - (SIDE - 1) / 2, cols - (SIDE - 1) / 2
    r, theta = torch.sqrt(dx**2 + dy**2), torch.atan2(dy, dx)
    inside = radius(theta) - r
    return (torch.sigmoid(inside / edge) if edge else (inside >= 0).float())[None]


def disc(r: float) -> Callable[[Tensor], Tensor]:
    return lambda theta: torch.full_like(theta, r)


def ellipse(a: float, b: float, angle: float = 0.0) -> Callable[[Tensor], Tensor]:
    """Semi-axis a along `angle` (radians from the x axis towards +y, i.e. down), b across."""
    return lambda t: (
        a * b / torch.sqrt((b * torch.cos(t - angle)) ** 2 + (a * torch.sin(t - angle)) ** 2)
    )


def star(r: float, depth: float, points: int) -> Callable[[Tensor], Tensor]:
    return lambda theta: r * (1 + depth * torch.cos(points * theta))


@pytest.mark.parametrize("edge", [0.0, 1.0])
def test_disc_is_compact_round_solid_and_regular(edge: float) -> None:
    f = morphological_features(draw(disc(20), edge))
    assert f["area"].item() == pytest.approx(math.pi * 20**2, rel=0.02)
    assert f["perimeter"].item() == pytest.approx(2 * math.pi * 20, rel=0.03)
    assert f["compactness"].item() == pytest.approx(1.0, abs=0.05)
    assert f["elongation"].item() == pytest.approx(1.0, abs=0.01)
    assert f["orientation"].item() == pytest.approx(1.0, abs=0.01)
    assert f["solidity"].item() == pytest.approx(1.0, abs=0.01)
    assert f["irregularity"].item() == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("ratio", [1.5, 2.0, 3.0])
def test_ellipse_elongation_is_its_axis_ratio_at_any_angle(ratio: float) -> None:
    b = 9.0
    for angle in (0.0, 0.6, math.pi / 2):
        f = morphological_features(draw(ellipse(ratio * b, b, angle)))
        assert f["elongation"].item() == pytest.approx(ratio, rel=0.06)
        # a soft edge widens the moment ellipse a little, most for small shapes
        assert f["irregularity"].item() == pytest.approx(1.0, abs=0.07)
    wide = morphological_features(draw(ellipse(2 * b, b)))["orientation"].item()
    tall = morphological_features(draw(ellipse(2 * b, b, math.pi / 2)))["orientation"].item()
    assert wide == pytest.approx(0.5, rel=0.06) and tall == pytest.approx(2.0, rel=0.06)


def test_star_is_less_compact_and_solid_and_more_irregular_than_a_disc() -> None:
    round_ = morphological_features(draw(disc(18)))
    for spiky in (star(18, 0.35, 5), star(18, 0.25, 8)):
        f = morphological_features(draw(spiky))
        assert f["compactness"] < 0.6 * round_["compactness"]
        assert f["solidity"] < round_["solidity"] - 0.04
        assert f["irregularity"] > round_["irregularity"] + 0.25
        assert f["elongation"].item() == pytest.approx(1.0, abs=0.02)  # symmetric: still round


def test_image_border_is_part_of_the_outline() -> None:
    rows, cols = torch.meshgrid(torch.arange(SIDE), torch.arange(SIDE), indexing="ij")
    half_disc = ((rows**2 + (cols - (SIDE - 1) / 2) ** 2) <= 20**2).float()[None]
    exact = 4 * math.pi * (math.pi * 20**2 / 2) / (math.pi * 20 + 40) ** 2  # 0.747
    assert morphological_features(half_disc)["compactness"].item() == pytest.approx(exact, rel=0.03)
    diffuse = morphological_features(torch.full((1, SIDE, SIDE), 0.5))
    assert diffuse["compactness"].item() == pytest.approx(math.pi / 4 / 0.5, rel=0.03)


def _outputs(masks: Tensor, p_malignant: Tensor) -> MTLOutput:
    """Logits whose softmaxes give the soft masks (B, H, W) and, for class 1, `p_malignant`."""
    fg = torch.logit(masks.clamp(1e-4, 1 - 1e-4))
    seg = torch.stack([torch.zeros_like(fg), fg], 1)
    cls = torch.stack([torch.zeros_like(p_malignant), torch.logit(p_malignant)], 1)
    return MTLOutput(seg.requires_grad_(), cls.requires_grad_())


def _masks() -> Tensor:
    return torch.cat([draw(disc(18)), draw(ellipse(24, 10, 0.3)), draw(star(18, 0.3, 6))])


def test_gradients_reach_mask_classifier_and_prior_weights() -> None:
    term = BiradsConsistency(malignant_index=1).train()
    torch.nn.init.ones_(term.prior.linear.weight)
    out = _outputs(_masks(), torch.tensor([0.2, 0.5, 0.9]))
    term(out).backward()
    for grad in (out.seg_logits.grad, out.cls_logits.grad, *(p.grad for p in term.parameters())):
        assert grad is not None and grad.abs().sum() > 0 and torch.isfinite(grad).all()


def test_loss_is_zero_when_the_prior_equals_the_probability() -> None:
    term = BiradsConsistency(malignant_index=1).train()
    term(_outputs(_masks(), torch.full((3,), 0.5)))  # one batch of statistics
    torch.nn.init.normal_(term.prior.linear.weight)
    term.eval()
    seg_logits = _outputs(_masks(), torch.full((3,), 0.5)).seg_logits.detach()
    with torch.no_grad():  # the prior of the soft masks as the term sees them
        phi = term.prior(seg_logits.softmax(1)[:, 1])
    assert phi.std() > 0.01  # the shapes get different priors
    cls_logits = torch.stack([torch.zeros(3), torch.logit(phi)], 1)
    assert term(MTLOutput(seg_logits, cls_logits)).item() == pytest.approx(0.0, abs=1e-12)
    assert term(MTLOutput(seg_logits, -cls_logits)).item() > 1e-3


def test_statistics_move_in_training_only_and_empty_masks_are_skipped() -> None:
    prior = MalignancyPrior()
    prior.eval()(_masks())
    assert prior.standardise.batches.item() == 0
    prior.train()(_masks())
    assert prior.standardise.batches.item() == 1 and prior.standardise.var.min() > 0
    term = BiradsConsistency(malignant_index=1).train()
    assert term(_outputs(torch.zeros(2, SIDE, SIDE), torch.full((2,), 0.7))).item() == 0.0


def test_malignant_class_is_looked_up_by_name() -> None:
    assert malignant_index(("benign", "malignant", "normal"), "malignant") == 1
    assert malignant_index(("nevus", "melanoma", "seborrheic_keratosis"), "melanoma") == 1
    with pytest.raises(UserError, match="nevus, melanoma"):
        malignant_index(("nevus", "melanoma"), "malignant")
    with pytest.raises(ValueError, match="subset"):
        MalignancyPrior(("compactness", "spiculation"))


def _train(processed: tuple[Path, Path], out: Path, uri: str, epochs: int) -> None:
    from medmtl.cli import main

    data_dir, split_file = processed
    args = [
        "train", "profile=tiny", "dataset=synthetic", "model=resunet", "seed=5",
        "trainer=birads", "trainer.malignant_class=melanoma", f"trainer.epochs={epochs}",
        f"data_dir={data_dir}", f"split_file={split_file}", f"out={out}", f"tracking.uri={uri}",
    ]  # fmt: skip
    assert main(args) == 0


def test_training_with_consistency_logs_it_and_resumes_exactly(
    processed_synthetic: tuple[Path, Path], tracking_uri: str, tmp_path: Path
) -> None:
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    _train(processed_synthetic, whole, tracking_uri, epochs=2)
    history = pd.read_csv(whole / "history.csv")
    assert {"train_consistency", "val_consistency"} <= set(history.columns)
    assert history["train_consistency"].notna().all()
    saved = torch.load(whole / "last.pt", weights_only=False)
    assert saved["loss"]["consistency.prior.linear.weight"].abs().sum() > 0  # the prior learnt
    assert saved["loss"]["consistency.prior.standardise.batches"] > 0

    # stop after epoch 1 (as if killed), resume to 2: same history as the uninterrupted run
    _train(processed_synthetic, resumed, tracking_uri, epochs=1)
    (resumed / "run.json").unlink()
    _train(processed_synthetic, resumed, tracking_uri, epochs=2)
    histories = [
        pd.read_csv(d / "history.csv").drop(columns="epoch_seconds") for d in (whole, resumed)
    ]
    pd.testing.assert_frame_equal(histories[0], histories[1])
    assert json.loads((resumed / "run.json").read_text())["epochs"] == 2
