"""UDIAT breast ultrasound Dataset B (Yap et al., IEEE JBHI 22(4):1218, 2018): reader of the
released layout, extracted into a folder.

The release (given on request; redistribution not allowed: the user obtains it) holds::

    BUS/original/000001.png ...   images
    BUS/GT/000001.png ...         lesion masks, the same file names
    BUS/DatasetB.xlsx             one row per image: its name and its type (benign/malignant)

163 cases: 109 benign, 54 malignant. The sheet's exact header names are not published, so its
columns are found by name, case-insensitively: the image column is the first of `NAME_HEADERS`
present, the class column the first of `TYPE_HEADERS` (the header row is the first row holding
both). Image names may be numbers (``1``) or text (``000001``, ``000001.png``); they match a
file when they name the same number (or the same stem). The case id is the file stem.

Dataset B has no official split: every case has subset ``all``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmtl.data.classes import DATASET_CLASSES
from medmtl.data.common import RawCase, extracted_cases, release_root, require_none
from medmtl.data.label_sheets import read_xlsx_table
from medmtl.errors import UserError

CLASS_NAMES = DATASET_CLASSES["udiat_b"]
SUBSET = "all"
TOP = "BUS"
LABELS_FILE = "DatasetB.xlsx"
IMAGES_DIR = "original"
MASKS_DIR = "GT"
NAME_HEADERS = ("Image", "Image Name", "Image ID", "Name", "File", "Filename", "File Name", "ID")
TYPE_HEADERS = ("Type", "Class", "Label", "Classification", "Pathology")


def read_udiat(raw_dir: Path) -> Iterator[RawCase]:
    """Return an iterator over every Dataset B case, sorted by case id, after validating them.

    Args:
        raw_dir: the folder the release was extracted into (holding ``BUS/``), or the ``BUS``
            folder itself.

    Raises:
        UserError: the layout is not found, an image has no mask or label row (or the
            reverse), a type is not benign/malignant, a mask's size differs from its image's,
            or an image header is corrupt; the message names the file (and row).
    """
    root = release_root(raw_dir, TOP, LABELS_FILE)
    images, masks = (_png_stems(root / folder) for folder in (IMAGES_DIR, MASKS_DIR))
    labels = _read_labels(root / LABELS_FILE)
    key_of = {_image_key(stem): stem for stem in images}
    label_of = {key_of[key]: label for key, (label, _) in labels.items() if key in key_of}
    require_none(
        [f"{key} (row {row})" for key, (_, row) in labels.items() if key not in key_of],
        f"{root / LABELS_FILE}: label rows with no image in {root / IMAGES_DIR}",
    )
    require_none(images - label_of.keys(), f"{root / IMAGES_DIR}: images with no label row")
    require_none(images - masks, f"{root / IMAGES_DIR}: images with no mask in {MASKS_DIR}/")
    require_none(masks - images, f"{root / MASKS_DIR}: masks with no image in {IMAGES_DIR}/")
    return extracted_cases(
        root,
        SUBSET,
        (
            (stem, label_of[stem], f"{IMAGES_DIR}/{stem}.png", f"{MASKS_DIR}/{stem}.png")
            for stem in sorted(images)
        ),
    )


def _png_stems(folder: Path) -> set[str]:
    if not folder.is_dir():
        raise UserError(f"{folder}: folder missing (UDIAT Dataset B layout: BUS/original, BUS/GT)")
    return {p.stem for p in folder.iterdir() if p.suffix.lower() == ".png"}


def _image_key(name: object) -> str:
    """Canonical image name: ``1``, ``1.0``, ``"000001"`` and ``"000001.png"`` all give ``1``."""
    if isinstance(name, float) and name.is_integer():
        name = int(name)
    text = str(name).strip()
    text = text[: -len(".png")] if text.lower().endswith(".png") else text
    return str(int(text)) if text.isdigit() else text


def _read_labels(path: Path) -> dict[str, tuple[str, int]]:
    """Parse ``DatasetB.xlsx`` into image key -> (class name, sheet row number)."""
    table = read_xlsx_table(path, {"image": NAME_HEADERS, "type": TYPE_HEADERS})
    labels: dict[str, tuple[str, int]] = {}
    for row_number, row in table.iterrows():
        if row["image"] is None and row["type"] is None:
            continue
        key = _image_key(row["image"])
        label = str(row["type"] or "").strip().lower()
        if label not in CLASS_NAMES:
            raise UserError(
                f"{path}: row {row_number}: type {row['type']!r} of image {row['image']!r} is "
                f"not one of {list(CLASS_NAMES)} (any case)"
            )
        if key in labels:
            raise UserError(
                f"{path}: row {row_number}: image {row['image']!r} has another row "
                f"(row {labels[key][1]})"
            )
        labels[key] = (label, row_number)
    return labels
