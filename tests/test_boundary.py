"""Tests of `medmtl.evaluation.boundary.surface_metrics` (NSD, HD95).

Oracle: MONAI 1.6.1 (test-only). MONAI returns float32 and takes the percentile in float32,
so the public functions agree with ours to float32 precision only; the 1e-9 comparison uses
MONAI's own boundaries and distances (`get_edge_surface_distance`) aggregated in float64 as
`compute_surface_dice` / `compute_hausdorff_distance` aggregate them.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import ndimage

from medmtl.evaluation.boundary import surface_metrics

TOLERANCES = (0.0, 1.0, 2.5)


# --- masks -----------------------------------------------------------------------------------


def _blob(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smoothed Gaussian noise thresholded at a random level: irregular blobs, holes, islands."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field > rng.uniform(-0.5, 0.5) * field.std()


def _disc(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def _rect(shape: tuple[int, int], r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named (truth, pred) pairs, both masks non-empty."""
    rng = np.random.default_rng(20240917)
    cases: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    shapes = [(37, 53), (53, 37), (64, 64), (96, 128), (20, 20)]
    for i in range(12):  # independent blobs
        shape = shapes[i % len(shapes)]
        cases[f"blobs_indep_{i}_{shape[0]}x{shape[1]}"] = (
            _blob(rng, shape, rng.uniform(1.0, 5.0)),
            _blob(rng, shape, rng.uniform(1.0, 5.0)),
        )
    for i in range(8):  # a blob and a noisy version of it (a close prediction)
        shape = shapes[i % len(shapes)]
        field = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(2.0, 5.0))
        noise = ndimage.gaussian_filter(rng.standard_normal(shape), 1.0)
        cases[f"blobs_close_{i}_{shape[0]}x{shape[1]}"] = (field > 0, field + 0.3 * noise > 0)
    cases["noise_bernoulli_37x53"] = (rng.random((37, 53)) < 0.5, rng.random((37, 53)) < 0.3)
    s = (37, 53)
    cases["discs_offset"] = (_disc(s, 18, 26, 10), _disc(s, 20, 30, 8.5))
    cases["discs_concentric"] = (_disc(s, 18, 26, 12), _disc(s, 18, 26, 5))
    cases["disc_vs_annulus"] = (_disc(s, 18, 26, 12), _disc(s, 18, 26, 12) & ~_disc(s, 18, 26, 4))
    cases["disc_clipped_by_corner"] = (_disc(s, 0, 0, 15), _disc(s, 3, 2, 13))
    cases["rect_left_edge_vs_shifted"] = (_rect(s, 5, 30, 0, 20), _rect(s, 8, 33, 0, 24))
    cases["rect_full_width_band"] = (_rect(s, 10, 20, 0, 53), _rect(s, 12, 25, 0, 53))
    cases["rect_whole_image_vs_inner"] = (np.ones(s, dtype=bool), _rect(s, 3, 34, 4, 49))
    cases["rect_opposite_corners"] = (_rect(s, 0, 6, 0, 9), _rect(s, 30, 37, 45, 53))
    cases["rect_bottom_right_corner"] = (_rect(s, 20, 37, 30, 53), _rect(s, 25, 37, 20, 53))
    cases["line_horizontal_vs_shifted"] = (_rect(s, 10, 11, 5, 45), _rect(s, 13, 14, 8, 50))
    cases["line_vertical_on_edge"] = (_rect(s, 0, 37, 0, 1), _rect(s, 0, 37, 2, 3))
    diag = np.eye(37, 53, dtype=bool)
    cases["line_diagonal_vs_shifted"] = (diag, np.roll(diag, 3, axis=1))
    cases["line_vs_rect"] = (_rect(s, 18, 19, 0, 53), _rect(s, 14, 24, 10, 40))
    single = np.zeros(s, dtype=bool)
    single[17, 29] = True
    cases["single_pixel_vs_disc"] = (single, _disc(s, 18, 26, 6))
    big = (300, 260)  # far-apart objects in a large image: the crop must not change anything
    cases["large_far_apart_300x260"] = (_disc(big, 20, 20, 12), _rect(big, 250, 300, 200, 260))
    cases["large_blobs_256x256"] = (_blob(rng, (256, 256), 6.0), _blob(rng, (256, 256), 6.0))
    for name, (t, p) in cases.items():
        assert t.any() and p.any(), name
    return cases


CASES = _cases()


# --- MONAI oracle ----------------------------------------------------------------------------


def _one_hot(mask: np.ndarray):
    """(1, 2, H, W) float tensor: class 0 background, class 1 foreground."""
    import torch

    return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))


@pytest.fixture(scope="module")
def monai_metrics():
    import monai.metrics  # test-only dependency (the dev extra): missing = an error, not a skip

    return monai.metrics


# MONAI 1.6.1 passes its own deprecated `always_return_as_numpy` internally.
MONAI_INTERNAL_WARNING = "ignore:.*always_return_as_numpy:FutureWarning"


@pytest.mark.filterwarnings(MONAI_INTERNAL_WARNING)
@pytest.mark.parametrize("name", list(CASES))
def test_matches_monai_public_functions(name: str, monai_metrics) -> None:
    """compute_surface_dice / compute_hausdorff_distance(percentile=95), float32 outputs."""
    truth, pred = CASES[name]
    h, w = truth.shape
    hd_monai = monai_metrics.compute_hausdorff_distance(
        _one_hot(pred), _one_hot(truth), include_background=False, percentile=95
    ).item()
    for tol in TOLERANCES:
        nsd, hd95 = surface_metrics(truth, pred, tol)
        nsd_monai = monai_metrics.compute_surface_dice(
            _one_hot(pred),
            _one_hot(truth),
            class_thresholds=[tol],
            include_background=False,
            use_subvoxels=False,
        ).item()
        # MONAI divides two integer counts in float32: the correctly rounded float32 of ours.
        assert np.float32(nsd) == np.float32(nsd_monai), (tol, nsd, nsd_monai)
        # torch.quantile in float32: rank 0.95 * (n - 1) has relative error <= 2^-22, so the
        # interpolated value is off by <= n * 2^-22 * (hi - lo) <= H*W * 2^-22 * HD95.
        assert abs(hd95 - hd_monai) <= h * w * 2.0**-21 * max(hd95, 1.0), (hd95, hd_monai)


@pytest.mark.filterwarnings(MONAI_INTERNAL_WARNING)
@pytest.mark.parametrize("name", list(CASES))
def test_matches_monai_definitions_in_float64(name: str, monai_metrics) -> None:
    """MONAI's boundaries and distances, aggregated in float64: equal to ours to 1e-9."""
    import torch
    from monai.metrics import utils

    truth, pred = CASES[name]
    # What compute_surface_dice / compute_hausdorff_distance call per (batch, class).
    _, (d_pred, d_truth), _ = utils.get_edge_surface_distance(
        torch.from_numpy(pred.astype(np.float32)),
        torch.from_numpy(truth.astype(np.float32)),
        distance_metric="euclidean",
        use_subvoxels=False,
        symmetric=True,
    )
    # MONAI's float32 distances are sqrt(integer); squaring and rounding recovers them exactly.
    d_pred, d_truth = (torch.sqrt(torch.round(d.double() ** 2)) for d in (d_pred, d_truth))
    # HD95 as MONAI's _compute_percentile_hausdorff_distance: torch.quantile, both directions.
    hd_ref = max(torch.quantile(d, 0.95).item() for d in (d_pred, d_truth))
    for tol in TOLERANCES:
        matched = int((d_pred <= tol).sum()) + int((d_truth <= tol).sum())
        nsd_ref = matched / (len(d_pred) + len(d_truth))
        nsd, hd95 = surface_metrics(truth, pred, tol)
        assert nsd == pytest.approx(nsd_ref, abs=1e-9), tol
        assert hd95 == pytest.approx(hd_ref, abs=1e-9), tol


# --- hand-worked cases -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["discs_offset", "rect_left_edge_vs_shifted", "line_vs_rect"])
def test_identical_masks_are_perfect(name: str) -> None:
    for mask in CASES[name]:
        assert surface_metrics(mask, mask.copy(), 0.0) == (1.0, 0.0)


def _square_and_shift(k: int) -> tuple[np.ndarray, np.ndarray]:
    """10x10 square at rows/cols 10..19 of a 40x40 image, and the same square k columns right."""
    return _rect((40, 40), 10, 20, 10, 20), _rect((40, 40), 10, 20, 10 + k, 20 + k)


def test_square_shifted_by_one() -> None:
    # Each 36-px boundary: 18 px on the other boundary (top/bottom rows minus one end),
    # 18 px at distance 1 (one end of each of those rows, plus both 8-px side columns).
    truth, pred = _square_and_shift(1)
    assert surface_metrics(truth, pred, 0.0) == (0.5, 1.0)
    assert surface_metrics(truth, pred, 0.5) == (0.5, 1.0)
    assert surface_metrics(truth, pred, 1.0) == (1.0, 1.0)


def test_square_shifted_by_three() -> None:
    # Truth boundary -> pred boundary (the same multiset the other way, by symmetry):
    # top row 7 x 0 and 1, 2, 3; bottom row the same; left column (rows 11..18) 8 x 3;
    # right column 1, 2, 3, 3, 3, 3, 2, 1 (the shifted top/bottom rows are closer there).
    # So 14 x 0, 4 x 1, 4 x 2, 14 x 3; the 95th percentile (rank 33.25 of 0..35) is 3.
    truth, pred = _square_and_shift(3)
    assert surface_metrics(truth, pred, 0.0) == (pytest.approx(14 / 36), 3.0)
    assert surface_metrics(truth, pred, 1.0) == (pytest.approx(18 / 36), 3.0)
    assert surface_metrics(truth, pred, 2.5) == (pytest.approx(22 / 36), 3.0)  # below the shift
    assert surface_metrics(truth, pred, 3.0) == (1.0, 3.0)  # "within" includes equality
    assert surface_metrics(truth, pred, 7.0) == (1.0, 3.0)  # above the shift
    assert surface_metrics(pred, truth, 2.5) == (pytest.approx(22 / 36), 3.0)


def test_hd95_is_symmetric_percentile() -> None:
    # truth: pixel (5, 5); pred: pixels (5, 5) and (5, 15), each pixel its own boundary.
    # truth->pred: [0] -> 0; pred->truth: [0, 10] -> 0 + 0.95 * 10 = 9.5 (linear percentile).
    # A directed (truth->pred) HD95 gives 0, a plain Hausdorff distance 10.
    truth = np.zeros((12, 20), dtype=bool)
    truth[5, 5] = True
    pred = truth.copy()
    pred[5, 15] = True
    assert surface_metrics(truth, pred, 1.0) == (pytest.approx(2 / 3), pytest.approx(9.5))
    assert surface_metrics(pred, truth, 1.0) == (pytest.approx(2 / 3), pytest.approx(9.5))
    assert surface_metrics(truth, pred, 10.0) == (1.0, pytest.approx(9.5))


def test_boundary_is_four_connected_and_includes_image_edge() -> None:
    # truth fills the 5x5 image: its boundary is the 16-px image frame (edge pixels count).
    # pred lacks the centre: boundary = frame + the 4 edge neighbours of the hole (a
    # 4-connected erosion; 8-connectivity would add the 4 diagonal ones), each 1 px from the
    # frame. NSD(0) = (16 + 16) / (16 + 20); pred->truth distances 16 x 0 and 4 x 1, whose
    # 95th percentile (rank 18.05 of 0..19) is 1.
    truth = np.ones((5, 5), dtype=bool)
    pred = truth.copy()
    pred[2, 2] = False
    assert surface_metrics(truth, pred, 0.0) == (pytest.approx(32 / 36), 1.0)
    assert surface_metrics(truth, pred, 1.0) == (1.0, 1.0)


# --- empty masks -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(37, 53), (1, 1), (64, 64)])
def test_both_empty(shape: tuple[int, int]) -> None:
    empty = np.zeros(shape, dtype=bool)
    assert surface_metrics(empty, empty, 0.0) == (1.0, 0.0)
    assert surface_metrics(empty, empty, 2.5) == (1.0, 0.0)


@pytest.mark.parametrize("which", ["truth_empty", "pred_empty"])
def test_one_empty_is_worst(which: str) -> None:
    shape = (37, 53)
    empty, mask = np.zeros(shape, dtype=bool), _disc(shape, 18, 26, 8)
    truth, pred = (empty, mask) if which == "truth_empty" else (mask, empty)
    for tol in TOLERANCES:
        nsd, hd95 = surface_metrics(truth, pred, tol)
        assert nsd == 0.0
        assert hd95 == pytest.approx(math.sqrt(37**2 + 53**2))
    # Worse than any real value: two opposite corner pixels are (36, 52) apart.
    corners = np.zeros(shape, dtype=bool)
    corners[0, 0] = True
    other = np.zeros(shape, dtype=bool)
    other[-1, -1] = True
    assert surface_metrics(corners, other, 0.0)[1] == pytest.approx(math.hypot(36, 52))
    assert surface_metrics(corners, other, 0.0)[1] < hd95


def test_never_nan() -> None:
    shape = (37, 53)
    masks = [np.zeros(shape, dtype=bool), np.ones(shape, dtype=bool), *CASES["discs_offset"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy "empty slice" / "invalid value" warnings
        for truth in masks:
            for pred in masks:
                for tol in TOLERANCES:
                    values = surface_metrics(truth, pred, tol)
                    assert all(type(v) is float and math.isfinite(v) for v in values)
                    assert 0.0 <= values[0] <= 1.0 and values[1] >= 0.0


# --- bad input -------------------------------------------------------------------------------


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(5, 4\)"):
        surface_metrics(np.zeros((4, 5), dtype=bool), np.zeros((5, 4), dtype=bool), 1.0)


def test_not_2d_raises() -> None:
    with pytest.raises(ValueError, match=r"\(2, 4, 5\)"):
        surface_metrics(np.zeros((2, 4, 5), dtype=bool), np.zeros((2, 4, 5), dtype=bool), 1.0)


@pytest.mark.parametrize("tol", [-0.5, float("nan")])
def test_bad_tolerance_raises(tol: float) -> None:
    mask = _disc((20, 20), 10, 10, 5)
    with pytest.raises(ValueError, match="tolerance"):
        surface_metrics(mask, mask, tol)
