"""Shared fixtures. Names say what they hold, so fixtures added later do not collide."""

from __future__ import annotations

from pathlib import Path

import pytest

ISIC2017_MIRROR = Path(__file__).resolve().parents[2] / "shared/data/mirror/isic2017"


@pytest.fixture(scope="session")
def isic2017_mirror_dir() -> Path:
    """The downscaled offline ISIC 2017 mirror (Training + Validation), read only."""
    assert ISIC2017_MIRROR.is_dir(), f"offline mirror missing: {ISIC2017_MIRROR}"
    return ISIC2017_MIRROR


@pytest.fixture(scope="session")
def synthetic_isic2017_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset in the ISIC 2017 layout (30/12/12 cases, 48 px); read only."""
    from medmtl.data.synthetic import write_synthetic

    out = tmp_path_factory.mktemp("synthetic_isic2017_raw")
    write_synthetic(out, seed=7, n_train=30, n_val=12, n_test=12, size=48)
    return out
