"""Dynamic (multi-phase) studies: reader of one folder per subject, the layout MTI-Net's data
would come in (issue 14; arXiv:2511.20793 uses 238 subjects of private dynamic liver MRI).

Layout (the synthetic set of `medmtl.data.synthetic_dynamic` is written in it)::

    <root>/subjects.csv            subject,label[,subset][,<target>...]
    <root>/targets.txt             optional: one line saying what the target columns are
    <root>/<subject>/phase_00.png  the co-registered phases of the study, in time order,
    <root>/<subject>/phase_01.png  numbered from 00 without gaps; 8- or 16-bit grayscale
    ...
    <root>/<subject>/mask.png      the lesion on the same grid (any value > 0)

``label`` is a class name of `DATASET_CLASSES["dynamic"]` (benign, malignant); ``subset``, when
present, is the official part (train, val, test), else every case is ``all`` and the split
stage draws one; every other column is a continuous regression target (e.g. enhancement-curve
parameters) and must parse as a finite number. Every subject has the same number of phases (two
at least), all of one size, and its mask that size.

Phases are decoded at their bit depth and scaled to uint8 together, by the subject's maximum
over all its phases (x / max x 255; no offset is removed): a ratio of intensities, and so the
relative enhancement (S_t - S_0) / S_0 that the curve parameters describe, survives; the
absolute scanner intensities, which vary between scanners, do not. The phases become the
image's channels, phase t in channel t.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medmtl.data.classes import DATASET_CLASSES
from medmtl.data.common import DirectoryFiles, RawCase, check_mask_sizes, require_none
from medmtl.data.decode import decode_gray
from medmtl.errors import UserError

CLASS_NAMES = DATASET_CLASSES["dynamic"]
SUBJECTS = "subjects.csv"
TARGETS_NOTE = "targets.txt"
SUBSETS = ("train", "val", "test")
_PHASE = re.compile(r"phase_(\d+)\.png")
TARGET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # they become MLflow metric keys (MAE_<name>)


@dataclass(frozen=True)
class PhaseCase(RawCase):
    """A subject's study: `phase_files` in time order are the image's channels (`image_file`
    is the first phase, for messages)."""

    phase_files: tuple[str, ...] = ()

    @property
    def channels(self) -> int:
        return len(self.phase_files)

    def read_image_bytes(self) -> bytes:
        """All phases' bytes, in order (what `image_sha256` hashes)."""
        return b"".join(self.files.read(name) for name in self.phase_files)

    def load_image(self, data: bytes | None = None) -> np.ndarray:
        """uint8 (H, W, T): the phases scaled together (module docstring)."""
        phases = [
            decode_gray(self.files.read(name), self.files.describe(name))
            for name in self.phase_files
        ]
        shapes = {p.shape for p in phases}
        if len(shapes) > 1:
            raise UserError(
                f"{self.files.describe(self.image_file)}: the subject's phases differ in size "
                f"{sorted(s[::-1] for s in shapes)} (width, height)"
            )
        stack = np.stack(phases, axis=-1)
        if stack.min() < 0:
            raise UserError(f"{self.files.describe(self.image_file)}: negative intensities")
        high = float(stack.max())
        scaled = stack / high * 255 if high > 0 else stack
        return np.rint(scaled).astype(np.uint8)


def read_dynamic(raw_dir: Path) -> Iterator[RawCase]:
    """Every subject of a release in the layout above, validated before any is returned.

    Raises:
        UserError: naming the file (and row): no subjects.csv, a missing or unknown column
            value, a target column name that is not an identifier, a target that is not a
            finite number, a subject folder missing or listed twice, phases missing, not
            numbered 00.. without gaps, fewer than two or another count than the other
            subjects', no mask, or a mask of another size.
    """
    table = raw_dir / SUBJECTS
    if not table.is_file():
        raise UserError(f"{table}: missing; a dynamic release lists its subjects there")
    with table.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    columns = list(rows[0]) if rows else []
    if not rows or not {"subject", "label"} <= set(columns):
        raise UserError(f"{table}: needs a header with subject and label and one row per subject")
    targets = [c for c in columns if c not in ("subject", "label", "subset")]
    if bad := [c for c in targets if not TARGET_NAME.fullmatch(c)]:  # MLflow metric keys
        raise UserError(
            f"{table}: target column names must be letters, digits and _ (starting with a "
            f"letter): {', '.join(map(repr, bad))}"
        )
    note_file = raw_dir / TARGETS_NOTE
    note = note_file.read_text().strip() if note_file.is_file() else ""
    files = DirectoryFiles(raw_dir)
    cases, counts = [], {}
    for line, row in enumerate(rows, start=2):
        where = f"{table}, row {line}"
        subject, label = row["subject"].strip(), row["label"].strip()
        if label not in CLASS_NAMES:
            raise UserError(f"{where}: label {label!r} is not one of {', '.join(CLASS_NAMES)}")
        subset = row.get("subset", "all").strip() if "subset" in row else "all"
        if "subset" in row and subset not in SUBSETS:
            raise UserError(f"{where}: subset {subset!r} is not one of {', '.join(SUBSETS)}")
        phases = _phase_files(raw_dir, subject, where)
        counts.setdefault(len(phases), subject)
        cases.append(
            PhaseCase(
                case_id=subject,
                subset=subset,
                label_name=label,
                image_file=phases[0],
                mask_files=(f"{subject}/mask.png",),
                files=files,
                targets=tuple((name, _number(row[name], f"{where}, {name}")) for name in targets),
                targets_note=note,
                phase_files=tuple(phases),
            )
        )
    listed = Counter(c.case_id for c in cases)
    require_none({s for s, n in listed.items() if n > 1}, f"{table}: subjects listed twice")
    if len(counts) > 1:
        raise UserError(
            f"{raw_dir}: subjects have different numbers of phases: "
            + ", ".join(f"{n} ({subject} ...)" for n, subject in sorted(counts.items()))
        )
    for case in cases:
        if not (raw_dir / case.mask_files[0]).is_file():
            raise UserError(f"{raw_dir / case.mask_files[0]}: missing (the subject's lesion mask)")
        check_mask_sizes(case)
    return iter(cases)


def _phase_files(raw_dir: Path, subject: str, where: str) -> list[str]:
    """`subject/phase_NN.png` in time order, checked: two at least, numbered from 00 on."""
    folder = raw_dir / subject
    if not subject or not folder.is_dir():
        raise UserError(f"{where}: subject folder {folder} missing")
    numbered = sorted(
        (int(m[1]), p.name) for p in folder.iterdir() if (m := _PHASE.fullmatch(p.name))
    )
    if [n for n, _ in numbered] != list(range(len(numbered))) or len(numbered) < 2:
        found = ", ".join(name for _, name in numbered) or "none"
        raise UserError(
            f"{folder}: phases must be phase_00.png, phase_01.png, ... without gaps, two at "
            f"least; found {found}"
        )
    return [f"{subject}/{name}" for _, name in numbered]


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"{where}: {text!r} is not a finite number")
    return value
