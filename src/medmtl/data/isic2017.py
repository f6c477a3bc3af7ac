"""ISIC 2017 (Codella et al., arXiv:1710.05006): official file names and a reader of the layout.

Each official part has three files (Part 2 is not used):

- ``<stem>_Data.zip``: ``<zipstem>/ISIC_XXXXXXX.jpg`` images, plus
  ``ISIC_XXXXXXX_superpixels.png`` files and a ``<zipstem>_metadata.csv`` (both skipped);
- ``<stem>_Part1_GroundTruth.zip``: ``<zipstem>/ISIC_XXXXXXX_segmentation.png`` lesion masks;
- ``<stem>_Part3_GroundTruth.csv``: ``image_id,melanoma,seborrheic_keratosis`` (0.0/1.0);
  nevus is neither.

where ``<stem>`` is ``ISIC-2017_Training``, ``ISIC-2017_Validation`` or ``ISIC-2017_Test_v2``.
The reader reads straight from the zips (nothing is extracted) and validates the pairing before
yielding any case of a part.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from medmtl.data.classes import DATASET_CLASSES
from medmtl.data.common import RawCase, ZipMembers, open_zip, require_none
from medmtl.data.decode import image_size
from medmtl.errors import UserError

CLASS_NAMES = DATASET_CLASSES["isic2017"]
OFFICIAL_URL = "https://isic-challenge-data.s3.amazonaws.com/2017/"
PARTS = ("training", "validation", "test")
SUBSET_OF_PART = {"training": "train", "validation": "val", "test": "test"}
_STEM_OF_PART = {
    "training": "ISIC-2017_Training",
    "validation": "ISIC-2017_Validation",
    "test": "ISIC-2017_Test_v2",
}
_IMAGE_RE = re.compile(r"(ISIC_\d+)\.jpg")
_MASK_RE = re.compile(r"(ISIC_\d+)_segmentation\.png")
_LABEL_COLUMNS = ("image_id", "melanoma", "seborrheic_keratosis")


def part_files(part: str) -> tuple[str, str, str]:
    """Return the official (images zip, masks zip, labels csv) file names of one part.

    Args:
        part: ``training``, ``validation`` or ``test``.

    Raises:
        UserError: unknown part.
    """
    if part not in _STEM_OF_PART:
        raise UserError(f"unknown ISIC 2017 part {part!r}; known: {', '.join(PARTS)}")
    stem = _STEM_OF_PART[part]
    return (f"{stem}_Data.zip", f"{stem}_Part1_GroundTruth.zip", f"{stem}_Part3_GroundTruth.csv")


def archive_names(parts: Iterable[str] = PARTS) -> list[str]:
    """Return the official file names of the given parts, in part order.

    Args:
        parts: any of ``training``, ``validation``, ``test``.
    """
    return [name for part in parts for name in part_files(part)]


def read_isic2017(raw_dir: Path) -> Iterator[RawCase]:
    """Yield every case of the ISIC 2017 parts present in `raw_dir`, part by part.

    A part is present when any of its three files is; then all three must be. Within a part
    cases come sorted by id, after the whole part has been validated: every image has exactly
    one mask of the same size and exactly one label row with 0/1 values, not both 1, and
    every label row and mask has an image.

    Args:
        raw_dir: folder holding the official files (as written by ``medmtl download`` or
            ``medmtl synthesize``).

    Raises:
        UserError: no part present, a part incomplete, or any validation failure; the
            message names the archive (and member) and the problem.
    """
    present = [p for p in PARTS if any((raw_dir / f).exists() for f in part_files(p))]
    if not present:
        raise UserError(
            f"{raw_dir}: no ISIC 2017 files found (expected e.g. {part_files('training')[0]}); "
            "make them with `medmtl download` or `medmtl synthesize`"
        )
    for part in present:
        missing = [f for f in part_files(part) if not (raw_dir / f).exists()]
        if missing:
            raise UserError(f"{raw_dir}: ISIC 2017 {part} part incomplete, missing {missing}")
    for part in present:
        yield from _read_part(raw_dir, part)


def _read_part(raw_dir: Path, part: str) -> list[RawCase]:
    data_path, mask_path, csv_path = (raw_dir / f for f in part_files(part))
    labels = _read_labels(csv_path)
    data_zip, mask_zip = open_zip(data_path), open_zip(mask_path)
    images = _index_members(data_zip, data_path, _IMAGE_RE, skip=_is_skipped_data_member)
    masks = _index_members(mask_zip, mask_path, _MASK_RE, skip=lambda _: False)

    ids_img, ids_lab, ids_mask = images.keys(), labels.keys(), masks.keys()
    require_none(ids_lab - ids_img, f"{csv_path}: label rows with no image in {data_path}")
    require_none(ids_img - ids_lab, f"{data_path}: images with no label row in {csv_path}")
    require_none(ids_img - ids_mask, f"{data_path}: images with no mask in {mask_path}")
    require_none(ids_mask - ids_img, f"{mask_path}: masks with no image in {data_path}")

    files = ZipMembers(
        {m: (data_path, data_zip) for m in images.values()}
        | {m: (mask_path, mask_zip) for m in masks.values()}
    )
    cases = []
    for case_id in sorted(images):
        image_member, mask_member = images[case_id], masks[case_id]
        image_wh = _member_image_size(data_zip, image_member, files.describe(image_member))
        mask_wh = _member_image_size(mask_zip, mask_member, files.describe(mask_member))
        if mask_wh != image_wh:
            raise UserError(
                f"{files.describe(mask_member)}: mask size {mask_wh} differs from image size "
                f"{image_wh} (width, height)"
            )
        cases.append(
            RawCase(
                case_id=case_id,
                subset=SUBSET_OF_PART[part],
                label_name=labels[case_id],
                image_file=image_member,
                mask_files=(mask_member,),
                files=files,
            )
        )
    return cases


def _member_image_size(zf: zipfile.ZipFile, member: str, where: str) -> tuple[int, int]:
    """Return (width, height) of an image member, reading only its header."""
    try:
        with zf.open(member) as fh:
            return image_size(fh, where)
    except (zipfile.BadZipFile, zlib.error) as err:
        raise UserError(f"{where}: cannot read member: {err}") from err


def _is_skipped_data_member(basename: str) -> bool:
    return basename.endswith("_superpixels.png") or basename.endswith("_metadata.csv")


def _index_members(
    zf: zipfile.ZipFile, path: Path, pattern: re.Pattern[str], skip: Callable[[str], bool]
) -> dict[str, str]:
    """Map case id -> member name for members matching `pattern`; other files are errors."""
    found: dict[str, str] = {}
    for member in zf.namelist():
        if member.endswith("/"):
            continue
        basename = PurePosixPath(member).name
        if skip(basename):
            continue
        match = pattern.fullmatch(basename)
        if match is None:
            raise UserError(f"{path}: unexpected member {member} (expected {pattern.pattern})")
        case_id = match.group(1)
        if case_id in found:
            raise UserError(f"{path}: {case_id} appears twice: {found[case_id]} and {member}")
        found[case_id] = member
    return found


def _read_labels(path: Path) -> dict[str, str]:
    """Parse a Part 3 csv into case id -> class name."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read labels csv: {err}") from err
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _LABEL_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise UserError(f"{path}: missing column(s) {missing}; expected {list(_LABEL_COLUMNS)}")
    labels: dict[str, str] = {}
    for line, row in enumerate(reader, start=2):
        case_id = row["image_id"]
        flags = [_parse_flag(row[c], path, line, c) for c in _LABEL_COLUMNS[1:]]
        if case_id in labels:
            raise UserError(f"{path}: line {line}: {case_id} has more than one label row")
        melanoma, keratosis = flags
        if melanoma and keratosis:
            raise UserError(f"{path}: line {line}: {case_id} is labelled both melanoma and SK")
        labels[case_id] = CLASS_NAMES[1 if melanoma else 2 if keratosis else 0]
    return labels


def _parse_flag(value: str | None, path: Path, line: int, column: str) -> bool:
    try:
        number = float(value or "")
    except ValueError:
        number = None
    if number not in (0.0, 1.0):
        raise UserError(f"{path}: line {line}: {column} is {value!r}, expected 0 or 1")
    return number == 1.0
