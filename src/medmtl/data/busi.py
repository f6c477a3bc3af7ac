"""BUSI, Breast Ultrasound Images (Al-Dhabyani et al., Data in Brief 28:104863, 2020): reader of
the released ``Dataset_BUSI_with_GT.zip``, straight from the zip.

Layout, one folder per class (``benign`` 437, ``malignant`` 210, ``normal`` 133 images)::

    Dataset_BUSI_with_GT/<class>/<class> (N).png           the image
    Dataset_BUSI_with_GT/<class>/<class> (N)_mask.png      its lesion mask
    Dataset_BUSI_with_GT/<class>/<class> (N)_mask_K.png    extra lesion masks, K = 1, 2, ...

Extra masks (17 images have them) are separate files; a case's masks are OR-merged. Normal
images have all-zero masks. Mask files come as 1-bit, RGB and RGBA PNGs, which
`medmtl.data.decode.decode_mask` reads alike. The case id is the image's name without
``.png`` (e.g. ``benign (4)``) and the label is its class folder.

BUSI has no official split: every case has subset ``all`` (`medmtl.data.splits` draws one).
The release repeats images under several names, some re-cropped or with other caliper marks
and some in two class folders (Pawlowska et al., Data in Brief 2023); `medmtl preprocess`
removes them with `medmtl.data.dedup` before anything is split.

The release has no stable official download URL (it is hosted on a university page and
re-posted on Kaggle), so `medmtl download` needs an explicit source for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from medmtl.data.classes import DATASET_CLASSES
from medmtl.data.common import RawCase, ZipMembers, check_mask_sizes, open_zip, require_none
from medmtl.errors import UserError

CLASS_NAMES = DATASET_CLASSES["busi"]
ARCHIVE = "Dataset_BUSI_with_GT.zip"
SUBSET = "all"
_TOP = "Dataset_BUSI_with_GT"
_MEMBER_RE = re.compile(
    rf"{_TOP}/(?P<folder>[^/]+)/(?P<case>(?P<cls>[a-z]+) \(\d+\))"
    r"(?P<mask>_mask(?:_(?P<extra>\d+))?)?\.png"
)
_EXPECTED = f"{_TOP}/<class>/<class> (N)[_mask[_K]].png, class one of {', '.join(CLASS_NAMES)}"


def read_busi(raw_dir: Path) -> Iterator[RawCase]:
    """Return an iterator over every BUSI case, sorted by case id, after validating them all.

    Every image must have at least one mask, every mask an image, and all of a case's masks
    the image's size.

    Args:
        raw_dir: folder holding ``Dataset_BUSI_with_GT.zip`` (as written by
            ``medmtl download --dataset busi``).

    Raises:
        UserError: the archive is missing or unreadable, a member does not fit the layout,
            an image has no mask or a mask no image, a mask's size differs from its image's,
            or an image header is corrupt; the message names the archive (and member).
    """
    path = raw_dir / ARCHIVE
    if not path.exists():
        raise UserError(
            f"{path} is missing; fetch it with `medmtl download --dataset busi --source "
            "URL_OR_FOLDER --out DIR`"
        )
    archive = open_zip(path)
    images, masks = _index_members(archive.namelist(), path)
    require_none(masks.keys() - images.keys(), f"{path}: masks with no image")
    require_none(images.keys() - masks.keys(), f"{path}: images with no mask")
    mask_members = {case_id: [m for _, m in sorted(found)] for case_id, found in masks.items()}
    files = ZipMembers({m: (path, archive) for m in chain(images.values(), *mask_members.values())})
    cases = [
        RawCase(
            case_id=case_id,
            subset=SUBSET,
            label_name=case_id.split(" ")[0],
            image_file=images[case_id],
            mask_files=tuple(mask_members[case_id]),
            files=files,
        )
        for case_id in sorted(images)
    ]
    for case in cases:
        check_mask_sizes(case)
    return iter(cases)


def _index_members(
    names: list[str], path: Path
) -> tuple[dict[str, str], dict[str, list[tuple[int, str]]]]:
    """Map case id -> image member and case id -> [(K, mask member)], K = 0 for ``_mask``;
    other files are errors."""
    images: dict[str, str] = {}
    masks: dict[str, list[tuple[int, str]]] = {}
    for member in names:
        if member.endswith("/"):
            continue
        match = _MEMBER_RE.fullmatch(member)
        if match is None or match["folder"] != match["cls"] or match["cls"] not in CLASS_NAMES:
            raise UserError(f"{path}: unexpected member {member} (expected {_EXPECTED})")
        if match["mask"]:
            masks.setdefault(match["case"], []).append((int(match["extra"] or 0), member))
        else:
            images[match["case"]] = member
    return images, masks
