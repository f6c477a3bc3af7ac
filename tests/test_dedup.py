"""`medmtl.data.dedup` on planted duplicates (re-encoded, brightened, re-cropped, chained), the
keep-one / drop-conflicting policy, and grouped splitting (`medmtl.data.splits`)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medmtl.data.common import RawCase
from medmtl.data.dedup import (
    MAX_DISTANCE,
    REPORT_COLUMNS,
    apply_policy,
    find_duplicates,
    fingerprint,
)
from medmtl.data.splits import make_splits


def _texture(seed: int, size: tuple[int, int] = (90, 120)) -> np.ndarray:
    """A smooth random RGB picture (H, W, 3)."""
    small = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(size[::-1], Image.Resampling.BICUBIC))


def _encode(image: np.ndarray, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **options)
    return buffer.getvalue()


def _distance(a: np.ndarray, b: np.ndarray) -> int:
    return (fingerprint(a).dhash ^ fingerprint(b).dhash).bit_count()


class _MemoryFiles:
    """A `FileSource` over in-memory files."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read(self, name: str) -> bytes:
        return self.files[name]

    def describe(self, name: str) -> str:
        return f"memory:{name}"


def _cases(images: dict[str, tuple[str, bytes]]) -> list[RawCase]:
    """Cases from case id -> (label, encoded image); masks are not needed here."""
    files = _MemoryFiles({f"{case_id}.img": data for case_id, (_, data) in images.items()})
    return [
        RawCase(case_id, "all", label, f"{case_id}.img", (), files)
        for case_id, (label, _) in images.items()
    ]


def test_fingerprint_survives_reencoding_brightening_and_small_recrops():
    image = _texture(1)
    assert fingerprint(image) == fingerprint(image.copy())
    jpeg = np.asarray(Image.open(io.BytesIO(_encode(image, "JPEG", quality=90))))
    brighter = np.clip(image.astype(int) + 15, 0, 255).astype(np.uint8)
    recropped = image[2:-2, 3:-3]
    for copy, at_most in ((jpeg, 2), (brighter, 2), (recropped, MAX_DISTANCE)):
        assert fingerprint(copy).pixel_sha256 != fingerprint(image).pixel_sha256
        assert _distance(image, copy) <= at_most
    others = [_distance(image, _texture(seed)) for seed in range(2, 12)]
    assert min(others) > MAX_DISTANCE


def test_exact_hash_is_of_pixels_not_file_bytes():
    image = _texture(3)
    grey = np.repeat(image[..., :1], 3, axis=2)
    as_rgb, as_grey = _encode(grey), _encode(grey[..., 0])
    assert as_rgb != as_grey
    cases = _cases({"a": ("x", as_rgb), "b": ("x", as_grey)})
    report = find_duplicates(cases, max_distance=-1).report
    assert report[["case_ids", "kind", "max_hamming"]].to_dict("records") == [
        {"case_ids": "a;b", "kind": "exact", "max_hamming": 0}
    ]


@pytest.fixture
def planted() -> list[RawCase]:
    """c01 <- exact copy c07; c02 <- brightened c05 (other label); c03 - c04 - c06 re-crops
    shifted by 4 px each, linked as a chain (c03 and c06 alone are too far apart); c08, c09
    unrelated."""
    base = {seed: _texture(seed) for seed in (1, 2, 8, 9)}
    wide = _texture(3, (90, 300))
    crop = {shift: wide[:, shift : shift + 280] for shift in (0, 4, 8)}
    assert _distance(crop[0], crop[8]) > MAX_DISTANCE >= _distance(crop[4], crop[8])
    return _cases(
        {
            "c01": ("benign", _encode(base[1])),
            "c02": ("benign", _encode(base[2])),
            "c03": ("malignant", _encode(crop[0])),
            "c04": ("malignant", _encode(crop[4])),
            "c05": ("malignant", _encode(np.clip(base[2] + 10.0, 0, 255).astype(np.uint8))),
            "c06": ("malignant", _encode(crop[8])),
            "c07": ("benign", _encode(base[1], compress_level=0)),
            "c08": ("benign", _encode(base[8])),
            "c09": ("normal", _encode(base[9])),
        }
    )


def test_planted_duplicates_are_grouped_and_reported(planted):
    duplicates = find_duplicates(planted)
    assert duplicates.group_of == {
        "c01": "c01", "c07": "c01",
        "c02": "c02", "c05": "c02",
        "c03": "c03", "c04": "c03", "c06": "c03",
        "c08": "c08", "c09": "c09",
    }  # fmt: skip
    report = duplicates.report
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert report.drop(columns="max_hamming").to_dict("records") == [
        {"group_id": "c01", "n_cases": 2, "case_ids": "c01;c07", "labels": "benign;benign",
         "kind": "exact", "conflicting_labels": False},
        {"group_id": "c02", "n_cases": 2, "case_ids": "c02;c05", "labels": "benign;malignant",
         "kind": "near", "conflicting_labels": True},
        {"group_id": "c03", "n_cases": 3, "case_ids": "c03;c04;c06",
         "labels": "malignant;malignant;malignant", "kind": "near", "conflicting_labels": False},
    ]  # fmt: skip
    exact, brightened, chain = report["max_hamming"].tolist()
    assert exact == 0 and brightened <= 2 and chain > MAX_DISTANCE  # linked through c04


def test_threshold_controls_near_duplicates(planted):
    exact_only = find_duplicates(planted, max_distance=-1).report
    assert exact_only["case_ids"].tolist() == ["c01;c07"]
    everything = find_duplicates(planted, max_distance=64).report
    assert everything["case_ids"].tolist() == [";".join(c.case_id for c in planted)]


def test_policy_keeps_smallest_id_and_drops_conflicting_groups(planted):
    kept, report = apply_policy(planted, find_duplicates(planted))
    assert [c.case_id for c in kept] == ["c01", "c03", "c08", "c09"]
    assert report["kept"].tolist() == ["c01", "", "c03"]
    shuffled = planted[::-1]
    assert [c.case_id for c in apply_policy(shuffled, find_duplicates(shuffled))[0]] == [
        "c09", "c08", "c03", "c01"
    ]  # fmt: skip


def _grouped_manifest() -> pd.DataFrame:
    """123 cases in 50 groups of 1-4 cases (one label per group), subset all, shuffled."""
    rows = []
    for group in range(50):
        label = group % 3
        for member in range(1 + group % 4):
            case_id = f"g{group:02d}_{member}"
            rows.append({"case_id": case_id, "subset": "all", "label": label,
                         "image_sha256": case_id, "group_id": f"g{group:02d}"})  # fmt: skip
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_grouped_split_never_straddles_and_is_seeded(seed):
    manifest = _grouped_manifest()
    splits = make_splits(manifest, dataset="d", seed=seed, val_fraction=0.15, test_fraction=0.15)
    group_of = dict(zip(manifest["case_id"], manifest["group_id"], strict=True))
    groups = {k: {group_of[c] for c in splits[k]} for k in ("train", "val", "test")}
    assert not groups["train"] & groups["val"]
    assert not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == sorted(manifest["case_id"])
    assert all(splits[k] == sorted(splits[k]) for k in ("train", "val", "test"))
    assert 12 <= len(splits["test"]) <= 26 and 12 <= len(splits["val"]) <= 26
    assert "no group straddles two splits" in splits["policy"]
    again = make_splits(manifest.iloc[::-1], dataset="d", seed=seed, val_fraction=0.15,
                        test_fraction=0.15)  # fmt: skip
    assert again == splits


def test_ungrouped_split_is_exactly_stratified():
    manifest = _grouped_manifest().drop(columns="group_id")
    splits = make_splits(manifest, dataset="d", seed=5, val_fraction=0.15, test_fraction=0.15)
    label = dict(zip(manifest["case_id"], manifest["label"], strict=True))
    per_class = manifest["label"].value_counts().sort_index().tolist()
    for part in ("test", "val"):
        counts = pd.Series([label[c] for c in splits[part]]).value_counts().sort_index()
        assert all(abs(n - 0.15 * total) <= 1 for n, total in zip(counts, per_class, strict=True))
    assert "group" not in splits["policy"]
