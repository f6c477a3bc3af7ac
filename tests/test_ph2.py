"""`medmtl.data.ph2` on folders written in the published PH2 layout: BMP images and 0/255 lesion
masks, ``PH2_dataset.xlsx`` with a title block above the table, label mapping, broken copies."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from PIL import Image

from medmtl.data.ph2 import CLASS_NAMES, IMAGES_DIR, read_ph2
from medmtl.data.preprocess import preprocess, read_dataset
from medmtl.data.processed import load_processed
from medmtl.errors import UserError

H, W = 28, 36
LABELS = {
    "IMD002": "common_nevus",
    "IMD003": "common_nevus",
    "IMD010": "atypical_nevus",
    "IMD024": "atypical_nevus",
    "IMD058": "melanoma",
}
HEADER = ["Image Name", "Histological Diagnosis", "Common Nevus", "Atypical Nevus", "Melanoma",
          "Asymmetry", "Pigment Network"]  # fmt: skip
MARK_COLUMN = {"common_nevus": 2, "atypical_nevus": 3, "melanoma": 4}


def _lesion(seed: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[4 + seed % 5 : 20, 6 : 30 - seed % 7] = True
    return mask


def _write_sheet(path: Path, rows: list[list[object]], header_row: int, header: list[str]) -> None:
    """The table at `header_row`, below a title block like the release's, a note after it."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.cell(1, 1, "PH² Database")
    for line, text in enumerate(["Legend:", "Asymmetry: 0 - Fully Symmetric", "X - marked"], 3):
        if line < header_row - 1:
            sheet.cell(line, 2, text)
    for column, name in enumerate(header, 1):
        sheet.cell(header_row, column, name)
    for offset, row in enumerate(rows, 1):
        for column, value in enumerate(row, 1):
            sheet.cell(header_row + offset, column, value)
    sheet.cell(header_row + len(rows) + 2, 1, "Image names are folder names")
    book.save(path)


def _label_row(case_id: str, label: str) -> list[object]:
    row: list[object] = [case_id, "Melanoma" if label == "melanoma" else None, None, None, None]
    row[MARK_COLUMN[label]] = "X"
    return [*row, 0, "T"]


def _write_ph2(
    parent: Path,
    labels: dict[str, str] = LABELS,
    *,
    header_row: int = 13,
    header: list[str] = HEADER,
) -> Path:
    """Write the release under ``parent/PH2Dataset``; return `parent`."""
    images = parent / "PH2Dataset" / IMAGES_DIR
    for seed, case_id in enumerate(labels):
        folder = images / case_id
        for sub in ("_Dermoscopic_Image", "_lesion", "_roi"):
            (folder / f"{case_id}{sub}").mkdir(parents=True)
        rng = np.random.default_rng(seed)
        rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(folder / f"{case_id}_Dermoscopic_Image" / f"{case_id}.bmp")
        mask = Image.fromarray(_lesion(seed).astype(np.uint8) * 255)
        mask.save(folder / f"{case_id}_lesion" / f"{case_id}_lesion.bmp")
        mask.save(folder / f"{case_id}_roi" / f"{case_id}_R1_Label4.bmp")
    rows = [_label_row(case_id, label) for case_id, label in labels.items()]
    _write_sheet(parent / "PH2Dataset" / "PH2_dataset.xlsx", rows, header_row, header)
    return parent


def _case_folder(raw: Path, case_id: str) -> Path:
    return raw / "PH2Dataset" / IMAGES_DIR / case_id


@pytest.mark.parametrize("header_row", [13, 12, 2])
def test_reads_layout_and_maps_labels(tmp_path, header_row):
    raw = _write_ph2(tmp_path, header_row=header_row)
    cases = list(read_ph2(raw))
    assert [c.case_id for c in cases] == sorted(LABELS)
    assert {c.case_id: c.label_name for c in cases} == LABELS
    assert {c.subset for c in cases} == {"all"}
    case = cases[0]
    assert case.image_file == f"{IMAGES_DIR}/IMD002/IMD002_Dermoscopic_Image/IMD002.bmp"
    assert case.mask_files == (f"{IMAGES_DIR}/IMD002/IMD002_lesion/IMD002_lesion.bmp",)
    assert case.load_image().shape == (H, W, 3)
    np.testing.assert_array_equal(case.load_mask(), _lesion(0))
    assert case.files.describe(case.image_file).startswith(str(raw / "PH2Dataset"))


def test_the_release_folder_itself_is_accepted_and_headers_compare_loosely(tmp_path):
    loose = [" image   NAME ", "Histological Diagnosis", "common nevus", "ATYPICAL NEVUS",
             "Melanoma ", "Asymmetry", "Pigment Network"]  # fmt: skip
    raw = _write_ph2(tmp_path, header=loose)
    assert {c.case_id: c.label_name for c in read_ph2(raw / "PH2Dataset")} == LABELS


def test_class_names_follow_the_sheet_columns():
    assert CLASS_NAMES == ("common_nevus", "atypical_nevus", "melanoma")


def test_missing_header_lists_the_closest_row(tmp_path):
    raw = _write_ph2(tmp_path, header=["Image", *HEADER[1:]])
    with pytest.raises(
        UserError,
        match=r"PH2_dataset\.xlsx: no header row with the wanted columns .*closest row "
        r"\(row 13\) has columns \['image', 'histological diagnosis', 'common nevus'",
    ):
        read_ph2(raw)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda row: row.__setitem__(3, "X"), r"row 14: IMD002 marks 2 of the classes"),
        (lambda row: row.__setitem__(2, None), r"row 14: IMD002 marks 0 of the classes"),
    ],
    ids=["two-marks", "no-mark"],
)
def test_bad_marks_name_the_row(tmp_path, edit, message):
    raw = _write_ph2(tmp_path)
    rows = [_label_row(case_id, label) for case_id, label in LABELS.items()]
    edit(rows[0])
    _write_sheet(raw / "PH2Dataset" / "PH2_dataset.xlsx", rows, 13, HEADER)
    with pytest.raises(UserError, match=rf"PH2_dataset\.xlsx: {message}"):
        read_ph2(raw)


def test_duplicate_row(tmp_path):
    raw = _write_ph2(tmp_path)
    rows = [_label_row(case_id, label) for case_id, label in LABELS.items()]
    _write_sheet(raw / "PH2Dataset" / "PH2_dataset.xlsx", [*rows, rows[1]], 13, HEADER)
    with pytest.raises(UserError, match=r"row 19: IMD003 has more than one row"):
        read_ph2(raw)


def test_folders_and_rows_must_pair(tmp_path):
    raw = _write_ph2(tmp_path / "a", {**LABELS, "IMD099": "melanoma"})
    _case_folder(raw, "IMD099").rename(_case_folder(raw, "IMD099").with_name("unrelated"))
    with pytest.raises(UserError, match=r"label rows with no folder in .*: IMD099"):
        read_ph2(raw)
    raw = _write_ph2(tmp_path / "b")
    _write_ph2(tmp_path / "c", {"IMD100": "melanoma"})
    _case_folder(tmp_path / "c", "IMD100").rename(_case_folder(raw, "IMD100"))
    with pytest.raises(UserError, match=r"case folders with no label row in .*: IMD100"):
        read_ph2(raw)


def test_missing_or_wrong_size_mask(tmp_path):
    raw = _write_ph2(tmp_path)
    mask = _case_folder(raw, "IMD010") / "IMD010_lesion" / "IMD010_lesion.bmp"
    Image.new("L", (W + 2, H)).save(mask)
    with pytest.raises(
        UserError, match=r"IMD010_lesion\.bmp: mask size \(38, 28\) differs from image size"
    ):
        read_ph2(raw)
    mask.unlink()
    with pytest.raises(UserError, match=r"IMD010_lesion\.bmp: cannot read file"):
        read_ph2(raw)


def test_corrupt_image_names_the_file(tmp_path):
    raw = _write_ph2(tmp_path)
    image = _case_folder(raw, "IMD010") / "IMD010_Dermoscopic_Image" / "IMD010.bmp"
    image.write_bytes(b"BM not really a bitmap")
    with pytest.raises(UserError, match=rf"^{re.escape(str(image))}: cannot decode image"):
        read_ph2(raw)


def test_truncated_image_fails_when_decoded_naming_the_file(tmp_path):
    raw = _write_ph2(tmp_path)
    image = _case_folder(raw, "IMD010") / "IMD010_Dermoscopic_Image" / "IMD010.bmp"
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])  # the header survives, the pixels do not
    case = next(c for c in read_ph2(raw) if c.case_id == "IMD010")
    with pytest.raises(UserError, match=rf"^{re.escape(str(image))}: cannot decode image"):
        case.load_image()


def test_missing_release(tmp_path):
    with pytest.raises(UserError, match=r"neither it nor .*PH2Dataset holds PH2_dataset\.xlsx"):
        read_ph2(tmp_path)


def test_preprocess_registry_entry(tmp_path):
    cases, class_names = read_dataset("ph2", _write_ph2(tmp_path / "raw"))
    preprocess(cases, tmp_path / "out", dataset="ph2", class_names=class_names, size=8)
    data = load_processed(tmp_path / "out")
    assert list(data.manifest["case_id"]) == sorted(LABELS)
    assert list(data.manifest["label"]) == [0, 0, 1, 1, 2]
    assert not (tmp_path / "out" / "dedup_report.csv").exists()
    np.testing.assert_array_equal(data.native_mask("IMD058"), _lesion(4))
