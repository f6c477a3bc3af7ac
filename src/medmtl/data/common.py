"""What every dataset reader shares: the `RawCase` record, archive access, image/mask decoding.

A reader (ISIC 2017, BUSI, PH2, ...) knows its dataset's official layout and yields one
`RawCase` per case; `medmtl.data.preprocess` consumes those records without knowing where
the files live. A record names its image and mask file(s) and carries a `FileSource` that
reads them (for example `ZipMembers`, members of the released zip archives read in place).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
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


@dataclass(frozen=True)
class RawCase:
    """One case as released: identity, official subset, label and where its files are.

    Attributes:
        case_id: the dataset's own id (e.g. ``ISIC_0000000``).
        subset: official part it came from: ``train``, ``val`` or ``test``.
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
