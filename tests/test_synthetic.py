"""`medmtl.data.synthetic`: deterministic, ISIC-2017-layout, every class, exact masks, fast."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medmtl.data.isic2017 import CLASS_NAMES, archive_names, read_isic2017
from medmtl.data.synthetic import write_synthetic
from medmtl.errors import UserError


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_byte_identical_files(tmp_path):
    kwargs = dict(n_train=12, n_val=4, n_test=4, size=40)
    write_synthetic(tmp_path / "a", seed=3, **kwargs)
    write_synthetic(tmp_path / "b", seed=3, **kwargs)
    write_synthetic(tmp_path / "c", seed=4, **kwargs)
    first = _files(tmp_path / "a")
    assert sorted(first) == sorted(archive_names())
    assert first == _files(tmp_path / "b")
    other = _files(tmp_path / "c")
    assert all(first[n] != other[n] for n in first if n.endswith(".zip"))


def test_official_layout(synthetic_isic2017_raw):
    with zipfile.ZipFile(synthetic_isic2017_raw / "ISIC-2017_Training_Data.zip") as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names) and names[0] == "ISIC-2017_Training_Data/"
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    assert "ISIC-2017_Training_Data/ISIC-2017_Training_Data_metadata.csv" in names
    assert sum(n.endswith("_superpixels.png") for n in names) == 2
    assert sum(n.endswith(".jpg") for n in names) == 30
    with zipfile.ZipFile(synthetic_isic2017_raw / "ISIC-2017_Test_v2_Part1_GroundTruth.zip") as zf:
        masks = [n for n in zf.namelist() if not n.endswith("/")]
        mask = Image.open(io.BytesIO(zf.read(masks[0])))
        assert mask.mode == "L" and set(np.unique(np.asarray(mask))) == {0, 255}
    assert all(n.startswith("ISIC-2017_Test_v2_Part1_GroundTruth/ISIC_") for n in masks)
    csv = (synthetic_isic2017_raw / "ISIC-2017_Validation_Part3_GroundTruth.csv").read_text()
    assert csv.splitlines()[0] == "image_id,melanoma,seborrheic_keratosis"
    assert {line.split(",", 1)[1] for line in csv.splitlines()[1:]} <= {
        "0.0,0.0",
        "1.0,0.0",
        "0.0,1.0",
    }


def test_every_part_has_every_class_in_isic_proportions(tmp_path):
    write_synthetic(tmp_path, seed=0, n_train=200, n_val=3, n_test=5, size=32)
    cases = list(read_isic2017(tmp_path))
    for subset in ("train", "val", "test"):
        labels = [c.label_name for c in cases if c.subset == subset]
        assert set(labels) == set(CLASS_NAMES), subset
    train = [c.label_name for c in cases if c.subset == "train"]
    assert [train.count(name) for name in CLASS_NAMES] == [136, 38, 26]


def test_masks_are_exactly_the_painted_lesion(synthetic_isic2017_raw):
    for case in read_isic2017(synthetic_isic2017_raw):
        image, mask = case.load_image().astype(float), case.load_mask()
        assert mask.shape == image.shape[:2] and 0 < mask.mean() < 0.8
        # a ring just outside the lesion looks like skin, the lesion does not
        grown = mask.copy()
        grown[1:] |= mask[:-1]
        grown[:-1] |= mask[1:]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        inside, outside = image[mask].mean(axis=0), image[~grown].mean(axis=0)
        assert np.abs(inside - outside).max() > 20, case.case_id


def _irregularity(mask: np.ndarray) -> float:
    """Border pixels per sqrt(area): smallest for a disc, larger for ragged shapes."""
    border = mask & ~(
        np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1)
    )
    return border.sum() / np.sqrt(mask.sum())


def test_classes_differ_in_border_and_colour(tmp_path):
    write_synthetic(tmp_path, seed=1, n_train=120, n_val=3, n_test=3, size=96)
    by_class: dict[str, list] = {name: [] for name in CLASS_NAMES}
    for case in read_isic2017(tmp_path):
        mask = case.load_mask()
        lesion = case.load_image()[mask].astype(float)
        by_class[case.label_name].append((_irregularity(mask), lesion.std(axis=0).mean()))
    stats = {name: np.mean(values, axis=0) for name, values in by_class.items()}
    assert stats["melanoma"][0] > 1.2 * stats["nevus"][0]  # ragged border
    assert stats["melanoma"][1] > 1.5 * stats["nevus"][1]  # several colours


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n_train=2, n_val=3, n_test=3, size=64), "training count 2"),
        (dict(n_train=3, n_val=3, n_test=3, size=16), "image size 16"),
    ],
)
def test_too_small_requests_are_refused(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        write_synthetic(tmp_path, seed=0, **kwargs)
