"""Per-image boundary metrics of a predicted 2-D mask: NSD and HD95.

Both metrics compare the boundaries of a ground-truth and a predicted boolean mask at native
resolution with isotropic pixel spacing 1. numpy + scipy.ndimage only (no torch).

Definitions
-----------
- Boundary of a mask: its foreground pixels that a binary erosion with the 4-connected cross
  (``generate_binary_structure(2, 1)``) removes, everything outside the image counting as
  background, so foreground pixels on the image edge are boundary. This is the pixel-count
  boundary of MONAI (``get_mask_edges``, ``use_subvoxels=False``), not the subvoxel contour
  length of Nikolov et al.
- Surface distances: the Euclidean distance from each boundary pixel of one mask to the
  nearest boundary pixel of the other (``distance_transform_edt`` of the other boundary's
  complement).
- NSD, normalised surface distance or surface Dice (Nikolov et al. 2021, arXiv:1809.04430,
  Sec. "Surface DSC"; Metrics Reloaded, Maier-Hein et al. 2024, Nat. Methods, "NSD"):
  (#truth boundary px within ``tolerance`` of the pred boundary + #pred boundary px within
  ``tolerance`` of the truth boundary) / (#truth boundary px + #pred boundary px), where
  "within" is distance <= tolerance. A fraction in [0, 1].
- HD95, 95th percentile Hausdorff distance, symmetric as MONAI's
  ``compute_hausdorff_distance(percentile=95, directed=False)``: the larger of the 95th
  percentiles (numpy's default linear interpolation) of the truth->pred and pred->truth
  distances.

Empty masks (Metrics Reloaded: an explicit value, never a NaN that silently leaves a mean)
------------------------------------------------------------------------------------------
- both empty: NSD ``NSD_BOTH_EMPTY`` (1.0), HD95 ``HD95_BOTH_EMPTY`` (0.0), a perfect match;
- exactly one empty: NSD ``NSD_ONE_EMPTY`` (0.0) and HD95 the worst value, the image diagonal
  sqrt(H^2 + W^2). It exceeds every distance two pixel centres of the image can have
  (at most sqrt((H-1)^2 + (W-1)^2)), so it is worse than any real prediction.
MONAI instead returns NaN (both empty) and inf (one empty) for HD95 and NaN (both empty) for
NSD.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

NSD_BOTH_EMPTY = 1.0
HD95_BOTH_EMPTY = 0.0
NSD_ONE_EMPTY = 0.0
HD_PERCENTILE = 95.0

# 4-connected cross: a pixel is interior iff it and its 4 edge neighbours are foreground.
_CROSS = ndimage.generate_binary_structure(2, 1)


def _worst_distance(shape: tuple[int, ...]) -> float:
    """HD95 of an image where exactly one mask is empty: the diagonal sqrt(H^2 + W^2)."""
    return math.hypot(shape[0], shape[1])


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels removed by a 4-connected erosion; outside the array is background."""
    return mask & ~ndimage.binary_erosion(mask, structure=_CROSS, border_value=0)


def _distances(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Euclidean distance from each `src` pixel to the nearest `dst` pixel (`dst` non-empty)."""
    return ndimage.distance_transform_edt(~dst)[src]


def _crop(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cropped to the bounding box of their union, padded by 1 background pixel.

    Exact: all boundary pixels lie in the box and distances do not depend on translation.
    The background frame makes a foreground pixel on the image edge lose a neighbour in the
    erosion, as outside the image does, so image-edge pixels stay boundary.
    """
    union = truth | pred
    rows = np.flatnonzero(union.any(axis=1))
    cols = np.flatnonzero(union.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return np.pad(truth[box], 1), np.pad(pred[box], 1)


def surface_metrics(truth: np.ndarray, pred: np.ndarray, tolerance: float) -> tuple[float, float]:
    """(NSD, HD95) of one image: ground-truth mask `truth` against predicted mask `pred`.

    Args:
        truth, pred: 2-D masks of the same shape; nonzero pixels are foreground.
        tolerance: NSD tolerance in pixels (>= 0); a boundary pixel counts as matched when
            its distance to the other boundary is <= tolerance.

    Returns:
        NSD in [0, 1] (Nikolov et al. 2021, arXiv:1809.04430; Metrics Reloaded) and the
        symmetric 95th percentile Hausdorff distance in pixels (MONAI's definition); see the
        module docstring for the boundary, the distances and the empty-mask values.

    Raises:
        ValueError: if the masks are not 2-D of the same shape, or tolerance is negative/NaN.
    """
    truth = np.asarray(truth, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if truth.ndim != 2 or truth.shape != pred.shape:
        raise ValueError(
            f"truth and pred must be 2-D masks of the same shape, got truth {truth.shape} "
            f"and pred {pred.shape}"
        )
    if not tolerance >= 0:  # also rejects NaN
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")

    truth_any, pred_any = bool(truth.any()), bool(pred.any())
    if not truth_any and not pred_any:
        return NSD_BOTH_EMPTY, HD95_BOTH_EMPTY
    if not truth_any or not pred_any:
        return NSD_ONE_EMPTY, _worst_distance(truth.shape)

    # A non-empty mask has a non-empty boundary: the erosion removes at least its extreme pixels.
    truth_edge, pred_edge = (_boundary(m) for m in _crop(truth, pred))
    d_truth = _distances(truth_edge, pred_edge)  # truth boundary -> pred boundary
    d_pred = _distances(pred_edge, truth_edge)  # pred boundary -> truth boundary

    matched = np.count_nonzero(d_truth <= tolerance) + np.count_nonzero(d_pred <= tolerance)
    nsd = matched / (d_truth.size + d_pred.size)
    hd95 = max(np.percentile(d_truth, HD_PERCENTILE), np.percentile(d_pred, HD_PERCENTILE))
    return float(nsd), float(hd95)
