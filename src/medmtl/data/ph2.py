"""PH2 (Mendonca et al., EMBC 2013): reader of the released layout, extracted into a folder.

The release (``PH2Dataset.rar``, redistribution not allowed: the user obtains and extracts it)
holds::

    PH2Dataset/PH2_dataset.xlsx
    PH2Dataset/PH2 Dataset images/IMDxxx/IMDxxx_Dermoscopic_Image/IMDxxx.bmp   the image
    PH2Dataset/PH2 Dataset images/IMDxxx/IMDxxx_lesion/IMDxxx_lesion.bmp       mask, 0/255
    PH2Dataset/PH2 Dataset images/IMDxxx/IMDxxx_roi/...                        colour ROIs, unused

200 cases: 80 common nevi, 80 atypical nevi, 40 melanomas. ``PH2_dataset.xlsx`` has a title
block, then a table whose header row holds ``Image Name`` and the clinical diagnosis columns
``Common Nevus``, ``Atypical Nevus``, ``Melanoma``; an ``X`` in one of them marks the class.
The header row is found by its cells, not by its position. Rows whose image name is not
``IMDxxx`` (blank rows, notes) are not cases; every case folder must have exactly one labelled
row and every labelled row a case folder.

PH2 has no official split: every case has subset ``all``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from medmtl.data.classes import DATASET_CLASSES
from medmtl.data.common import RawCase, extracted_cases, release_root, require_none
from medmtl.data.label_sheets import read_xlsx_table
from medmtl.errors import UserError

CLASS_NAMES = DATASET_CLASSES["ph2"]
SUBSET = "all"
TOP = "PH2Dataset"
LABELS_FILE = "PH2_dataset.xlsx"
IMAGES_DIR = "PH2 Dataset images"
_CLASS_COLUMNS = {
    "common_nevus": "Common Nevus",
    "atypical_nevus": "Atypical Nevus",
    "melanoma": "Melanoma",
}
_CASE_RE = re.compile(r"IMD\d+")


def read_ph2(raw_dir: Path) -> Iterator[RawCase]:
    """Return an iterator over every PH2 case, sorted by case id, after validating them all.

    Args:
        raw_dir: the folder the release was extracted into (holding ``PH2Dataset/``), or the
            ``PH2Dataset`` folder itself.

    Raises:
        UserError: the layout is not found, a case folder lacks its image or lesion mask, a
            case has no label row or a label row no case, a row marks no class or several,
            a mask's size differs from its image's, or an image header is corrupt; the
            message names the file (and row).
    """
    root = release_root(raw_dir, TOP, LABELS_FILE)
    labels = _read_labels(root / LABELS_FILE)
    images_dir = root / IMAGES_DIR
    if not images_dir.is_dir():
        raise UserError(f"{images_dir}: folder missing (the PH2 images live there)")
    case_ids = {p.name for p in images_dir.iterdir() if p.is_dir() and _CASE_RE.fullmatch(p.name)}
    require_none(
        labels.keys() - case_ids, f"{root / LABELS_FILE}: label rows with no folder in {images_dir}"
    )
    require_none(
        case_ids - labels.keys(),
        f"{images_dir}: case folders with no label row in {root / LABELS_FILE}",
    )
    return extracted_cases(
        root,
        SUBSET,
        (
            (
                case_id,
                labels[case_id],
                f"{IMAGES_DIR}/{case_id}/{case_id}_Dermoscopic_Image/{case_id}.bmp",
                f"{IMAGES_DIR}/{case_id}/{case_id}_lesion/{case_id}_lesion.bmp",
            )
            for case_id in sorted(case_ids)
        ),
    )


def _read_labels(path: Path) -> dict[str, str]:
    """Parse ``PH2_dataset.xlsx`` into case id -> class name."""
    wanted = {"image": ["Image Name"]} | {key: [name] for key, name in _CLASS_COLUMNS.items()}
    table = read_xlsx_table(path, wanted)
    labels: dict[str, str] = {}
    for row_number, row in table.iterrows():
        case_id = str(row["image"] or "").strip()
        if not _CASE_RE.fullmatch(case_id):
            continue
        marked = [key for key in _CLASS_COLUMNS if str(row[key] or "").strip().upper() == "X"]
        if len(marked) != 1:
            raise UserError(
                f"{path}: row {row_number}: {case_id} marks {len(marked)} of the classes "
                f"{list(_CLASS_COLUMNS.values())} with X, expected exactly one"
            )
        if case_id in labels:
            raise UserError(f"{path}: row {row_number}: {case_id} has more than one row")
        labels[case_id] = marked[0]
    return labels
