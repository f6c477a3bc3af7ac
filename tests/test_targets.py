"""Regression targets: the lesion geometry of a mask (by hand on discs, ellipses and lines,
independent of the resolution), no targets without a lesion, and how training and the metrics
leave such cases out."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from medmtl.data.targets import geometry_targets
from medmtl.errors import UserError
from medmtl.evaluation import metrics
from medmtl.models.inputs import TargetScale
from medmtl.training.losses import MultiTaskLoss, regression_loss


def _ellipse(size: int, a: float, b: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5 - size / 2
    return (xx / a) ** 2 + (yy / b) ** 2 <= 1


def test_a_disc_has_its_area_and_diameter_and_no_elongation():
    fraction, diameter, elongation = geometry_targets(_ellipse(400, 100, 100))
    assert fraction == pytest.approx(100 * math.pi * 100**2 / 400**2, rel=1e-3)
    assert diameter == pytest.approx(100 * 200 / 400, rel=1e-3)  # sqrt(4A/pi) = 2r
    assert elongation == pytest.approx(0.0, abs=1e-3)


def test_elongation_is_one_minus_the_axis_ratio_and_one_for_a_line():
    assert geometry_targets(_ellipse(400, 150, 50))[2] == pytest.approx(1 - 50 / 150, abs=2e-3)
    line = np.zeros((20, 20), bool)
    line[5, 2:18] = True
    assert geometry_targets(line)[2] == pytest.approx(1.0)


def test_the_targets_do_not_depend_on_the_resolution():
    small, large = _ellipse(200, 60, 30), _ellipse(400, 120, 60)
    np.testing.assert_allclose(geometry_targets(small), geometry_targets(large), rtol=5e-3)


def test_without_a_lesion_there_are_no_targets_and_the_case_takes_no_part():
    assert np.isnan(geometry_targets(np.zeros((8, 8), bool))).all()
    one = np.zeros((8, 8), bool)
    one[3, 3] = True
    assert np.isnan(geometry_targets(one)).all()
    values = np.array([[1.0, 10.0], [np.nan, np.nan], [3.0, 30.0]])
    scale = TargetScale.fit(("a", "b"), values)  # the lesion-free case is left out
    assert scale.mean == (2.0, 20.0) and scale.sd == (1.0, 10.0)
    predicted = torch.tensor([[0.5, 0.5], [9.0, 9.0], [0.5, 0.5]])
    targets = torch.tensor(scale.standardise(values), dtype=torch.float32)
    expected = torch.nn.functional.mse_loss(predicted[[0, 2]], targets[[0, 2]])
    assert regression_loss(torch.nn.functional.mse_loss, predicted, targets) == expected
    frame = pd.DataFrame(
        {"target_a": values[:, 0], "pred_a": [2.0, 5.0, 3.0], "target_b": values[:, 1],
         "pred_b": [10.0, 5.0, 40.0]}
    )  # fmt: skip
    regression = scale.to_json()
    per_case = metrics.per_image(frame, [], "MAE", regression)
    np.testing.assert_allclose(per_case, [(1 / 1 + 0 / 10) / 2, np.nan, (0 + 10 / 10) / 2])
    summary = metrics.regression_summary(frame, regression)
    assert summary["MAE"] == pytest.approx(np.nanmean(per_case))  # the cell the test compares
    assert summary["MAE_b"] == pytest.approx(5.0)  # over the two cases with a lesion


def test_an_unknown_regression_loss_is_a_clear_error():
    with pytest.raises(UserError, match="trainer.reg_loss: 'l3' is not one of smooth_l1, mse"):
        MultiTaskLoss(0.25, 1.0, torch.ones(3), reg_loss="l3")
