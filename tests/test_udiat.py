"""`medmtl.data.udiat` on folders written in the published UDIAT Dataset B layout (``BUS/original``,
``BUS/GT``, ``BUS/DatasetB.xlsx``): header matching, image-name forms, label mapping, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pytest
from PIL import Image

from medmtl.data.preprocess import read_dataset
from medmtl.data.udiat import CLASS_NAMES, read_udiat
from medmtl.errors import UserError

H, W = 30, 40
TYPES = {1: "Benign", 2: "Malignant", 3: "Benign", 10: "malignant", 163: "BENIGN"}


def _lesion(number: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[5 : 10 + number % 9, 8:30] = True
    return mask


def _write_sheet(path: Path, header: list[str], rows: list[list[object]]) -> None:
    book = openpyxl.Workbook()
    for row in [header, *rows]:
        book.active.append(row)
    book.save(path)


def _rows(types: dict[int, str], name=lambda n: n) -> list[list[object]]:
    return [[name(n), kind, "FIBROADENOMA" if kind.lower() == "benign" else "IDC"]
            for n, kind in types.items()]  # fmt: skip


def _write_udiat(
    parent: Path,
    types: dict[int, str] = TYPES,
    header: tuple[str, ...] = ("Image", "Type", "Histology"),
) -> Path:
    """Write the release under ``parent/BUS`` with image names as numbers; return `parent`."""
    root = parent / "BUS"
    for folder in ("original", "GT"):
        (root / folder).mkdir(parents=True)
    for number in types:
        grey = np.random.default_rng(number).integers(0, 256, (H, W), dtype=np.uint8)
        Image.fromarray(grey).save(root / "original" / f"{number:06d}.png")
        Image.fromarray(_lesion(number).astype(np.uint8) * 255).save(
            root / "GT" / f"{number:06d}.png"
        )
    _write_sheet(root / "DatasetB.xlsx", list(header), _rows(types))
    return parent


def test_reads_layout_and_maps_labels(tmp_path):
    raw = _write_udiat(tmp_path)
    cases = list(read_udiat(raw))
    assert [c.case_id for c in cases] == ["000001", "000002", "000003", "000010", "000163"]
    assert [c.label_name for c in cases] == ["benign", "malignant", "benign", "malignant",
                                             "benign"]  # fmt: skip
    assert {c.subset for c in cases} == {"all"} and CLASS_NAMES == ("benign", "malignant")
    case = cases[3]
    assert (case.image_file, case.mask_files) == ("original/000010.png", ("GT/000010.png",))
    assert case.load_image().shape == (H, W, 3)
    np.testing.assert_array_equal(case.load_mask(), _lesion(10))
    assert [c.case_id for c in read_udiat(raw / "BUS")] == [c.case_id for c in cases]


@pytest.mark.parametrize(
    "name",
    [lambda n: f"{n:06d}", lambda n: f"{n:06d}.png", lambda n: str(n), lambda n: float(n)],
    ids=["zero-padded", "file-name", "plain-text", "float"],
)
def test_image_names_in_any_published_form(tmp_path, name):
    raw = _write_udiat(tmp_path)
    _write_sheet(raw / "BUS" / "DatasetB.xlsx", ["Image", "Type"], _rows(TYPES, name))
    assert [c.label_name for c in read_udiat(raw)][:2] == ["benign", "malignant"]


@pytest.mark.parametrize(
    "header",
    [("IMAGE NAME", "class"), ("Name", "Label", "Type of tumour"), ("id", "Classification")],
)
def test_headers_match_case_insensitively(tmp_path, header):
    raw = _write_udiat(tmp_path, header=(*header, "Histology")[:3])
    assert len(list(read_udiat(raw))) == len(TYPES)


def test_preferred_type_column_wins(tmp_path):
    raw = _write_udiat(tmp_path)
    rows = [[n, "cyst", kind] for n, kind in TYPES.items()]
    _write_sheet(raw / "BUS" / "DatasetB.xlsx", ["Image", "Class", "Type"], rows)
    assert [c.label_name for c in read_udiat(raw)][:2] == ["benign", "malignant"]


def test_unmatched_headers_list_the_columns_found(tmp_path):
    raw = _write_udiat(tmp_path, header=("Case", "Tumour", "Histology"))
    with pytest.raises(
        UserError,
        match=r"DatasetB\.xlsx: no header row with the wanted columns \(image: one of "
        r"\['Image'.*type: one of \['Type'.*\); the closest row \(row 1\) has columns "
        r"\['case', 'tumour', 'histology'\]",
    ):
        read_udiat(raw)


def test_unknown_type_names_the_row(tmp_path):
    raw = _write_udiat(tmp_path, {**TYPES, 4: "suspicious"})
    with pytest.raises(
        UserError, match=r"row 7: type 'suspicious' of image 4 is not one of \['benign'"
    ):
        read_udiat(raw)


def test_image_listed_twice_names_the_file_and_both_rows(tmp_path):
    raw = _write_udiat(tmp_path)
    rows = [*_rows(TYPES), ["000002", "Benign", "FIBROADENOMA"]]  # image 2 again, other label
    _write_sheet(raw / "BUS" / "DatasetB.xlsx", ["Image", "Type", "Histology"], rows)
    with pytest.raises(
        UserError,
        match=r"DatasetB\.xlsx: row 7: image '000002' has another row \(row 3\)",
    ):
        read_udiat(raw)


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda bus: (bus / "GT" / "000002.png").unlink(), r"images with no mask in GT/: 000002"),
        (
            lambda bus: (bus / "original" / "000002.png").unlink(),
            r"label rows with no image in .*original: 2 \(row 3\)",
        ),
        (
            lambda bus: Image.new("L", (W, H)).save(bus / "original" / "000077.png"),
            r"original: images with no label row: 000077",
        ),
        (
            lambda bus: Image.new("L", (W, H + 1)).save(bus / "GT" / "000003.png"),
            r"GT/000003\.png: mask size \(40, 31\) differs from image size \(40, 30\)",
        ),
        (
            lambda bus: (bus / "original" / "000163.png").write_bytes(b"not a png"),
            r"original/000163\.png: cannot decode image",
        ),
    ],
    ids=["no-mask", "row-without-image", "image-without-row", "mask-size", "corrupt-image"],
)
def test_validation_errors_name_the_file(tmp_path, break_it, message):
    raw = _write_udiat(tmp_path)
    break_it(raw / "BUS")
    with pytest.raises(UserError, match=message):
        read_udiat(raw)


def test_missing_release_and_registry_name(tmp_path):
    with pytest.raises(UserError, match=r"neither it nor .*BUS holds DatasetB\.xlsx"):
        read_udiat(tmp_path)
    cases, class_names = read_dataset("udiat_b", _write_udiat(tmp_path / "raw"))
    assert class_names == CLASS_NAMES and len(list(cases)) == len(TYPES)
