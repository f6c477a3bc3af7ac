"""Regression targets of a processed dataset (issue 14: regression as a task of its own).

Two sources, in this order:

- stored: the manifest's ``target_<name>`` columns, written by a reader whose release carries
  continuous targets (the dynamic-enhancement dataset, `medmtl.data.dynamic`: the parameters of
  each lesion's enhancement curve);
- geometry (our choice, for every dataset with masks: ISIC 2017, BUSI, PH2, UDIAT, the
  synthetic sets): three descriptors of the ground-truth lesion at native resolution, each
  independent of the image's size, so that the same lesion scanned at another resolution has
  the same targets:

  - ``area_fraction``: lesion pixels / image pixels, x100;
  - ``equivalent_diameter``: diameter of the disc of the lesion's area, sqrt(4 A / pi), over
    the geometric mean of the image's sides sqrt(H W), x100;
  - ``elongation``: 1 - sqrt(l_min / l_max), l the eigenvalues of the covariance of the
    lesion's pixel coordinates (0: a disc; towards 1: a line).

  A mask of fewer than two lesion pixels has no geometry (elongation is undefined): its
  targets are NaN, and the case takes no part in the regression (loss, metrics, tests), as an
  empty ground truth takes no part in JI and DSC.
"""

from __future__ import annotations

import math

import numpy as np

GEOMETRY = ("area_fraction", "equivalent_diameter", "elongation")
GEOMETRY_NOTE = (
    "lesion geometry of the ground-truth mask at native resolution (our choice): area "
    "fraction and equivalent diameter in % of the image, elongation 1 - sqrt(minor/major "
    "principal variance)"
)
STORED_PREFIX = "target_"


def geometry_targets(mask: np.ndarray) -> np.ndarray:
    """(3,) `GEOMETRY` values of one boolean mask, NaN without a lesion (module docstring)."""
    mask = np.asarray(mask, bool)
    height, width = mask.shape
    area = int(mask.sum())
    if area < 2:
        return np.full(len(GEOMETRY), np.nan)
    fraction = 100 * area / (height * width)
    diameter = 100 * math.sqrt(4 * area / math.pi) / math.sqrt(height * width)
    covariance = np.cov(np.argwhere(mask).T.astype(float), bias=True)
    minor, major = np.linalg.eigvalsh(covariance)
    elongation = 1 - math.sqrt(max(minor, 0.0) / major) if major > 0 else 0.0
    return np.array([fraction, diameter, elongation])


def stored_names(columns) -> tuple[str, ...]:
    """Names of the stored targets among a manifest's `columns` (``target_<name>``)."""
    return tuple(c.removeprefix(STORED_PREFIX) for c in columns if c.startswith(STORED_PREFIX))
