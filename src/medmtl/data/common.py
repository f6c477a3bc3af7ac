"""What every dataset reader shares: the `RawCase` record, archive access, image/mask decoding.

A reader (ISIC 2017, BUSI, PH2, ...) knows its dataset's official layout and yields one
`RawCase` per case; `medmtl.data.preprocess` consumes those records without knowing where
the files live. A record names its image and mask file(s) and carries a `FileSource` that
reads them: `ZipMembers` (members of the released zip archives, read in place) or
`DirectoryFiles` (files of a release the user extracted into a folder). Then the helpers readers
share to open and check a release (zip, extracted folder, pairing and sizes); decoding is in
`medmtl.data.decode`, xlsx label sheets in `medmtl.data.label_sheets`.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from medmtl.data.decode import decode_image, decode_mask, image_size
from medmtl.errors import UserError


class FileSource(Protocol):
    """Reads the files a `RawCase` names."""

    def read(self, name: str) -> bytes:
        """Return the bytes of file `name`; raise `UserError` if it cannot be read."""
        ...

    def describe(self, name: str) -> str:
        """Return where `name` lives, for error messages (e.g. ``archive.zip:member``)."""
        ...


class ZipMembers:
    """Members of one or more open zip archives; each member name belongs to one archive.

    The archives stay open as long as this object (and so any `RawCase` using it) lives, so
    records can be loaded after the reader that made them has finished.
    """

    def __init__(self, members: Mapping[str, tuple[Path, zipfile.ZipFile]]) -> None:
        """Args:
        members: member name -> (archive path, the open archive holding it).
        """
        self._members = dict(members)

    def read(self, name: str) -> bytes:
        """Return the uncompressed bytes of member `name`."""
        archive, zf = self._members[name]
        try:
            return zf.read(name)
        except (zipfile.BadZipFile, zlib.error, OSError) as err:
            raise UserError(f"{archive}: cannot read member {name}: {err}") from err

    def describe(self, name: str) -> str:
        """Return ``<archive path>:<member>``."""
        return f"{self._members[name][0]}:{name}"


class DirectoryFiles:
    """Files of an extracted release under one folder, named by their ``/``-separated path
    relative to it (so a reader names files the same way as zip members)."""

    def __init__(self, root: Path) -> None:
        """Args:
        root: the release's top folder.
        """
        self._root = root

    def read(self, name: str) -> bytes:
        """Return the bytes of file `name`."""
        try:
            return (self._root / name).read_bytes()
        except OSError as err:
            raise UserError(f"{self.describe(name)}: cannot read file: {err.strerror}") from err

    def describe(self, name: str) -> str:
        """Return the file's full path."""
        return str(self._root / name)


@dataclass(frozen=True)
class RawCase:
    """One case as released: identity, official subset, label and where its files are.

    Attributes:
        case_id: the dataset's own id (e.g. ``ISIC_0000000``).
        subset: official part it came from: ``train``, ``val`` or ``test``; ``all`` for a
            release without an official split.
        label_name: class name, one of the reader's class names.
        image_file: name of the image file (archive member) in `files`.
        mask_files: names of the mask file(s); several masks are OR-merged.
        files: reads `image_file` and `mask_files`.
        targets: (name, value) of the release's continuous regression targets, if any
            (`medmtl.data.targets`), the same names for every case of a release.
        targets_note: what those targets are, for captions.
    """

    case_id: str
    subset: str
    label_name: str
    image_file: str
    mask_files: tuple[str, ...]
    files: FileSource
    targets: tuple[tuple[str, float], ...] = ()
    targets_note: str = ""

    @property
    def channels(self) -> int:
        """Channels of `load_image`'s array: 3 (RGB)."""
        return 3

    def read_image_bytes(self) -> bytes:
        """Return the image file's bytes exactly as released (what `image_sha256` hashes)."""
        return self.files.read(self.image_file)

    def load_image(self, data: bytes | None = None) -> np.ndarray:
        """Decode the image to RGB.

        Args:
            data: the image bytes if already read (avoids a second read), else None.

        Returns:
            uint8 array (H, W, 3).
        """
        if data is None:
            data = self.read_image_bytes()
        return decode_image(data, self.files.describe(self.image_file))

    def load_mask(self) -> np.ndarray:
        """Decode and OR-merge the mask file(s).

        Returns:
            bool array (H, W), True on the lesion.
        """
        merged: np.ndarray | None = None
        for name in self.mask_files:
            mask = decode_mask(self.files.read(name), self.files.describe(name))
            if merged is None:
                merged = mask
            elif mask.shape != merged.shape:
                raise UserError(
                    f"{self.files.describe(name)}: mask size {mask.shape[::-1]} differs from "
                    f"the case's other mask {merged.shape[::-1]} (width, height)"
                )
            else:
                merged |= mask
        if merged is None:
            raise UserError(f"{self.files.describe(self.image_file)}: case has no mask file")
        return merged


def open_zip(path: Path) -> zipfile.ZipFile:
    """Open a released zip archive.

    Raises:
        UserError: `path` is missing or not a zip archive (e.g. cut short), or holds two
            entries with the same name (reading one of them would be a silent pick).
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"{path}: not a readable zip archive: {err}") from err
    repeated = [name for name, count in Counter(archive.namelist()).items() if count > 1]
    if repeated:
        archive.close()
        require_none(
            repeated, f"{path}: members present more than once, so which copy to read is unclear"
        )
    return archive


def release_root(raw_dir: Path, top: str, marker: str) -> Path:
    """Find the top folder of an extracted release: ``raw_dir/top``, or `raw_dir` itself.

    Args:
        raw_dir: the folder the user gave.
        top: name of the release's top folder (e.g. ``PH2Dataset``).
        marker: an entry the top folder holds (e.g. ``PH2_dataset.xlsx``).

    Raises:
        UserError: neither ``raw_dir/top`` nor `raw_dir` holds `marker`.
    """
    for root in (raw_dir / top, raw_dir):
        if (root / marker).exists():
            return root
    raise UserError(
        f"{raw_dir}: neither it nor {raw_dir / top} holds {marker}; pass the folder the "
        f"release was extracted into (the one holding {top}/)"
    )


def require_none(names: Iterable[str], problem: str) -> None:
    """Raise `UserError` ``<problem>: <first five names> and N more`` if `names` is not empty."""
    ordered = sorted(names)
    if ordered:
        more = f" and {len(ordered) - 5} more" if len(ordered) > 5 else ""
        raise UserError(f"{problem}: {', '.join(ordered[:5])}{more}")


def check_mask_sizes(case: RawCase) -> None:
    """Check, from the file headers only, that every mask file of `case` has its image's size.

    Raises:
        UserError: a file is not a recognisable image, or a mask's (width, height) differs
            from the image's; the message names the file.
    """
    image_wh = _header_size(case.files, case.image_file)
    for name in case.mask_files:
        mask_wh = _header_size(case.files, name)
        if mask_wh != image_wh:
            raise UserError(
                f"{case.files.describe(name)}: mask size {mask_wh} differs from image size "
                f"{image_wh} (width, height)"
            )


def extracted_cases(
    root: Path, subset: str, entries: Iterable[tuple[str, str, str, str]]
) -> Iterator[RawCase]:
    """Cases of a release extracted into `root`, one image and one mask file each, checked for
    matching sizes before any is returned.

    Args:
        root: The release folder; file names are relative to it.
        subset: The official part every case belongs to.
        entries: (case id, label name, image file, mask file) per case, in order.

    Raises:
        UserError: as `check_mask_sizes`.
    """
    files = DirectoryFiles(root)
    cases = [
        RawCase(
            case_id=case_id,
            subset=subset,
            label_name=label,
            image_file=image,
            mask_files=(mask,),
            files=files,
        )
        for case_id, label, image, mask in entries
    ]
    for case in cases:
        check_mask_sizes(case)
    return iter(cases)


def _header_size(files: FileSource, name: str) -> tuple[int, int]:
    return image_size(io.BytesIO(files.read(name)), files.describe(name))
