"""What every dataset reader shares: the `RawCase` record, archive access, image/mask decoding.

A reader (ISIC 2017, BUSI, PH2, ...) knows its dataset's official layout and yields one
`RawCase` per case; `medmtl.data.preprocess` consumes those records without knowing where
the files live. A record names its image and mask file(s) and carries a `FileSource` that
reads them: `ZipMembers` (members of the released zip archives, read in place) or
`DirectoryFiles` (files of a release the user extracted into a folder). After the decoders
come the helpers readers share to open and check a release (zip, extracted folder, xlsx
label sheet, pairing and sizes).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from PIL import Image

from medmtl.errors import UserError

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


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
    """

    case_id: str
    subset: str
    label_name: str
    image_file: str
    mask_files: tuple[str, ...]
    files: FileSource

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


def decode_image(data: bytes, where: str) -> np.ndarray:
    """Decode image bytes to an RGB uint8 array (H, W, 3).

    Args:
        data: encoded image (JPEG, PNG, BMP, ...).
        where: file description for the error message.

    Raises:
        UserError: the bytes are not a decodable image.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB"))
    except _DECODE_ERRORS as err:
        raise UserError(f"{where}: cannot decode image: {err}") from err


def decode_mask(data: bytes, where: str) -> np.ndarray:
    """Decode a mask image to bool (H, W): foreground where any colour channel is > 0.

    Handles modes '1' (already bool), 'L'/'I'/'I;16'/'F' (0/1 or 0/255 alike), 'RGB', and
    modes with alpha or a palette ('RGBA', 'LA', 'P', 'PA'): there a pixel is foreground
    only if it is opaque (alpha > 0) and a colour channel is > 0.

    Args:
        data: encoded mask image.
        where: file description for the error message.

    Raises:
        UserError: the bytes are not a decodable image.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.mode in ("P", "PA"):
                img = img.convert("RGBA")
            bands = img.getbands()
            arr = np.asarray(img)
    except _DECODE_ERRORS as err:
        raise UserError(f"{where}: cannot decode mask: {err}") from err
    if arr.ndim == 2:
        return arr > 0
    if "A" in bands:
        alpha = bands.index("A")
        colour = np.delete(arr, alpha, axis=2)
        return (colour > 0).any(axis=2) & (arr[..., alpha] > 0)
    return (arr > 0).any(axis=2)


def image_size(data_stream: io.BufferedIOBase, where: str) -> tuple[int, int]:
    """Read only an image's header and return its (width, height).

    Args:
        data_stream: open binary stream positioned at the image's start.
        where: file description for the error message.

    Raises:
        UserError: the header is not a recognisable image.
    """
    try:
        with Image.open(data_stream) as img:
            return img.size
    except _DECODE_ERRORS as err:
        raise UserError(f"{where}: cannot decode image: {err}") from err


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


def read_xlsx_table(path: Path, columns: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Read the table on the first sheet of an xlsx file, finding its header row by its cells.

    Released label sheets put a title block above the table (PH2: about a dozen rows) and their
    exact header names are not always known (UDIAT), so the header row is the first row that
    holds, for every wanted column, a cell equal to one of its accepted names; names compare
    case-insensitively with runs of white space collapsed, and an earlier name in a list of
    accepted names wins over a later one.

    Args:
        path: the xlsx file.
        columns: output column -> accepted header names, in order of preference.

    Returns:
        the rows below the header row, the wanted columns renamed to the keys of `columns`,
        cells as read (str, int, float, or None when empty); the index is the row's 1-based
        number in the sheet (for error messages).

    Raises:
        UserError: the file is not a readable xlsx, or no row holds all wanted headers (the
            message lists the cells of the row that came closest).
    """
    try:
        sheet = pd.read_excel(path, header=None, dtype=object)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise UserError(f"{path}: cannot read xlsx: {err}") from err
    rows = [[_header_text(cell) for cell in row] for row in sheet.itertuples(index=False)]
    found = [_find_columns(cells, columns) for cells in rows]
    for number, positions in enumerate(found):
        if len(positions) == len(columns):
            table = sheet.iloc[number + 1 :, [positions[c] for c in columns]]
            table = table.set_axis(list(columns), axis=1).set_axis(table.index + 1, axis=0)
            return table.astype(object).where(table.notna(), None)
    closest = max(range(len(rows)), key=lambda r: (len(found[r]), any(rows[r])), default=None)
    cells = [c for c in rows[closest] if c] if closest is not None else []
    wanted = "; ".join(f"{key}: one of {list(names)}" for key, names in columns.items())
    raise UserError(
        f"{path}: no header row with the wanted columns ({wanted}); the closest row "
        f"(row {closest + 1 if closest is not None else '-'}) has columns {cells}"
    )


def _header_text(cell: object) -> str:
    """A header cell as compared: white space collapsed, case folded; '' when empty."""
    return "" if pd.isna(cell) else " ".join(str(cell).split()).casefold()


def _find_columns(cells: list[str], columns: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Position of the first accepted name of each wanted column found in `cells`."""
    positions = {}
    for key, names in columns.items():
        for name in names:
            if _header_text(name) in cells:
                positions[key] = cells.index(_header_text(name))
                break
    return positions
