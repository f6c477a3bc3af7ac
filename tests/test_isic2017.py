"""`medmtl.data.isic2017` reader and `medmtl.data.decode` decoding, on synthetic data, broken
copies of it, and the real offline mirror."""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medmtl.data.common import RawCase
from medmtl.data.decode import decode_mask
from medmtl.data.isic2017 import CLASS_NAMES, archive_names, part_files, read_isic2017
from medmtl.errors import UserError

TRAIN_DATA = "ISIC-2017_Training_Data.zip"
TRAIN_MASKS = "ISIC-2017_Training_Part1_GroundTruth.zip"
TRAIN_CSV = "ISIC-2017_Training_Part3_GroundTruth.csv"


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def raw_copy(synthetic_isic2017_raw: Path, tmp_path: Path) -> Path:
    """A writable copy of the synthetic raw folder, to break."""
    return Path(shutil.copytree(synthetic_isic2017_raw, tmp_path / "raw"))


def _rewrite_zip(path: Path, edit: Callable[[dict[str, bytes]], None]) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    edit(members)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _first(members: dict[str, bytes], suffix: str) -> str:
    return sorted(n for n in members if n.endswith(suffix) and "superpixels" not in n)[0]


def _append_member(path: Path, name: str, data: bytes) -> None:
    """Add a second entry named `name` (zipfile allows it, with a warning)."""
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "a") as zf:
        zf.writestr(name, data)


def test_official_file_names():
    assert part_files("test") == (
        "ISIC-2017_Test_v2_Data.zip",
        "ISIC-2017_Test_v2_Part1_GroundTruth.zip",
        "ISIC-2017_Test_v2_Part3_GroundTruth.csv",
    )
    assert archive_names(["training", "validation"]) == [
        TRAIN_DATA,
        TRAIN_MASKS,
        TRAIN_CSV,
        "ISIC-2017_Validation_Data.zip",
        "ISIC-2017_Validation_Part1_GroundTruth.zip",
        "ISIC-2017_Validation_Part3_GroundTruth.csv",
    ]
    assert len(archive_names()) == 9
    with pytest.raises(UserError, match="unknown ISIC 2017 part 'part2'"):
        part_files("part2")


def test_reads_synthetic_parts_pairs_and_labels(synthetic_isic2017_raw):
    cases = list(read_isic2017(synthetic_isic2017_raw))
    assert Counter(c.subset for c in cases) == {"train": 30, "val": 12, "test": 12}
    csv = (synthetic_isic2017_raw / TRAIN_CSV).read_text().splitlines()[1:]
    expected = {}
    for line in csv:
        case_id, melanoma, keratosis = line.split(",")
        expected[case_id] = CLASS_NAMES[1 if melanoma == "1.0" else 2 if keratosis == "1.0" else 0]
    train = [c for c in cases if c.subset == "train"]
    assert {c.case_id: c.label_name for c in train} == expected
    assert [c.case_id for c in train] == sorted(expected)
    case = train[0]
    assert case.image_file == f"ISIC-2017_Training_Data/{case.case_id}.jpg"
    assert case.mask_files == (
        f"ISIC-2017_Training_Part1_GroundTruth/{case.case_id}_segmentation.png",
    )
    image, mask = case.load_image(), case.load_mask()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert mask.dtype == bool and mask.shape == image.shape[:2] and mask.any()


def test_corrupt_image_header_names_member(raw_copy):
    def corrupt(members):
        members[_first(members, ".jpg")] = b"this is not a jpeg"

    _rewrite_zip(raw_copy / TRAIN_DATA, corrupt)
    with pytest.raises(
        UserError, match=r"Training_Data\.zip:.*ISIC_9\d+\.jpg: cannot decode image"
    ):
        list(read_isic2017(raw_copy))


def test_truncated_image_fails_when_decoded(raw_copy):
    def truncate(members):
        name = _first(members, ".jpg")
        members[name] = members[name][: len(members[name]) // 2]

    _rewrite_zip(raw_copy / TRAIN_DATA, truncate)
    case = next(read_isic2017(raw_copy))
    with pytest.raises(UserError, match=rf"{case.case_id}\.jpg: cannot decode image"):
        case.load_image()


def test_missing_mask(raw_copy):
    removed = []

    def drop(members):
        removed.append(_first(members, ".png"))
        del members[removed[0]]

    _rewrite_zip(raw_copy / TRAIN_MASKS, drop)
    case_id = Path(removed[0]).name.removesuffix("_segmentation.png")
    with pytest.raises(
        UserError, match=rf"Training_Data\.zip: images with no mask in .*: {case_id}"
    ):
        list(read_isic2017(raw_copy))


def test_wrong_size_mask(raw_copy):
    def shrink(members):
        members[_first(members, ".png")] = _png(np.zeros((5, 7), np.uint8))

    _rewrite_zip(raw_copy / TRAIN_MASKS, shrink)
    with pytest.raises(
        UserError, match=r"_segmentation\.png: mask size \(7, 5\) differs from image"
    ):
        list(read_isic2017(raw_copy))


def test_csv_id_without_image(raw_copy):
    with open(raw_copy / TRAIN_CSV, "a") as fh:
        fh.write("ISIC_0000001,0.0,1.0\n")
    with pytest.raises(
        UserError, match=r"Part3_GroundTruth\.csv: label rows with no image .*ISIC_0000001"
    ):
        list(read_isic2017(raw_copy))


def test_image_without_label_row(raw_copy):
    csv = raw_copy / TRAIN_CSV
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:-1]))
    missing = lines[-1].split(",")[0]
    with pytest.raises(UserError, match=rf"images with no label row in .*: {missing}"):
        list(read_isic2017(raw_copy))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{id},1.0,1.0", "labelled both melanoma and SK"),
        ("{id},2.0,0.0", "melanoma is '2.0', expected 0 or 1"),
        ("{id},0.0", "seborrheic_keratosis is None, expected 0 or 1"),
    ],
)
def test_bad_label_rows(raw_copy, row, message):
    csv = raw_copy / TRAIN_CSV
    lines = csv.read_text().splitlines()
    case_id = lines[1].split(",")[0]
    lines[1] = row.format(id=case_id)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=rf"{TRAIN_CSV}: line 2: .*{message}"):
        list(read_isic2017(raw_copy))


def test_duplicate_label_row(raw_copy):
    csv = raw_copy / TRAIN_CSV
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(UserError, match="has more than one label row"):
        list(read_isic2017(raw_copy))


def test_unexpected_member(raw_copy):
    def add(members):
        members["ISIC-2017_Training_Data/notes.txt"] = b"hello"

    _rewrite_zip(raw_copy / TRAIN_DATA, add)
    with pytest.raises(UserError, match="unexpected member ISIC-2017_Training_Data/notes.txt"):
        list(read_isic2017(raw_copy))


def test_incomplete_part_and_empty_folder(raw_copy, tmp_path):
    (raw_copy / TRAIN_MASKS).unlink()
    with pytest.raises(UserError, match=f"training part incomplete, missing .*{TRAIN_MASKS}"):
        list(read_isic2017(raw_copy))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no ISIC 2017 files found"):
        list(read_isic2017(tmp_path / "empty"))


def test_not_a_zip(raw_copy):
    (raw_copy / TRAIN_DATA).write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"Training_Data\.zip: not a readable zip archive"):
        list(read_isic2017(raw_copy))


def test_archive_cut_in_the_middle_names_it(raw_copy):
    path = raw_copy / TRAIN_DATA
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=rf"{TRAIN_DATA}: not a readable zip archive"):
        list(read_isic2017(raw_copy))


def test_member_stored_twice_names_archive_and_member(raw_copy):
    case = next(read_isic2017(raw_copy))
    (member,) = case.mask_files
    empty = np.zeros(case.load_mask().shape, np.uint8)  # another mask of the right size
    _append_member(raw_copy / TRAIN_MASKS, member, _png(empty))
    with pytest.raises(
        UserError, match=rf"{TRAIN_MASKS}: members present more than once.*: {re.escape(member)}$"
    ):
        list(read_isic2017(raw_copy))


def test_labels_csv_with_bom_and_crlf_reads_as_plain(raw_copy):
    plain = {c.case_id: c.label_name for c in read_isic2017(raw_copy)}
    csv = raw_copy / TRAIN_CSV
    lines = csv.read_text().splitlines()
    csv.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    assert csv.read_bytes()[:3] == b"\xef\xbb\xbf" and b"\r\n" in csv.read_bytes()
    assert {c.case_id: c.label_name for c in read_isic2017(raw_copy)} == plain


@pytest.mark.parametrize("high", [65535, 1], ids=["0-65535", "0-1"])
def test_16_bit_mask_reads_as_bool(raw_copy, high):
    case = next(read_isic2017(raw_copy))
    lesion = case.load_mask()
    assert lesion.any() and not lesion.all()
    sixteen = _png(lesion.astype(np.uint16) * high)
    with Image.open(io.BytesIO(sixteen)) as img:
        assert img.mode == "I;16"
    _rewrite_zip(raw_copy / TRAIN_MASKS, lambda m: m.update({case.mask_files[0]: sixteen}))
    mask = next(read_isic2017(raw_copy)).load_mask()
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, lesion)


def test_only_present_parts_are_read(raw_copy):
    for name in part_files("test"):
        (raw_copy / name).unlink()
    assert {c.subset for c in read_isic2017(raw_copy)} == {"train", "val"}


@pytest.mark.parametrize(
    "encode",
    [
        lambda m: _png(m.astype(np.uint8)),  # L, 0/1
        lambda m: _png(m.astype(np.uint8) * 255),  # L, 0/255
        lambda m: _png(m.astype(np.uint8) * 255, "1"),
        lambda m: _png(np.stack([m * 200, m * 0, m * 0], -1).astype(np.uint8)),  # RGB, red
        lambda m: _png(
            np.stack([m * 0, m * 0, m * 255, np.full(m.shape, 255)], -1).astype(np.uint8)
        ),
        lambda m: _png(np.stack([m * 255] * 3 + [m * 255], -1).astype(np.uint8)),  # RGBA, clear bg
        lambda m: _png(m.astype(np.uint8) * 255, "P"),
    ],
    ids=["L01", "L0255", "mode1", "RGB", "RGBA", "RGBA-transparent", "P"],
)
def test_decode_mask_modes(encode):
    mask = np.zeros((6, 9), bool)
    mask[1:4, 2:7] = True
    decoded = decode_mask(encode(mask), "m.png")
    assert decoded.dtype == bool
    np.testing.assert_array_equal(decoded, mask)


def test_decode_mask_rejects_garbage():
    with pytest.raises(UserError, match="m.png: cannot decode mask"):
        decode_mask(b"xx", "m.png")


class _DictFiles:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read(self, name: str) -> bytes:
        return self.files[name]

    def describe(self, name: str) -> str:
        return f"dict:{name}"


def test_several_masks_are_or_merged_and_must_agree_in_size():
    a, b = np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.uint8)
    a[0, 0], b[3, 4] = 255, 1
    files = _DictFiles(
        {"a.png": _png(a), "b.png": _png(b), "c.png": _png(np.zeros((2, 2), np.uint8))}
    )
    case = RawCase("x", "train", "nevus", "img", ("a.png", "b.png"), files)
    assert case.load_mask().sum() == 2 and case.load_mask()[3, 4]
    bad = RawCase("x", "train", "nevus", "img", ("a.png", "c.png"), files)
    with pytest.raises(UserError, match=r"dict:c\.png: mask size \(2, 2\) differs"):
        bad.load_mask()


def test_real_mirror_counts_and_a_decoded_subset(isic2017_mirror_dir):
    cases = list(read_isic2017(isic2017_mirror_dir))
    counts = Counter((c.subset, c.label_name) for c in cases)
    assert Counter(c.subset for c in cases) == {"train": 2000, "val": 150}
    assert [counts["train", n] for n in CLASS_NAMES] == [1372, 374, 254]
    assert [counts["val", n] for n in CLASS_NAMES] == [78, 30, 42]
    for case in cases[::100]:
        image, mask = case.load_image(), case.load_mask()
        assert mask.shape == image.shape[:2] and max(image.shape[:2]) <= 256
        assert mask.any()
