"""Decoding of released image and mask files, with errors that name the file."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from medmtl.errors import UserError

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


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


def decode_gray(data: bytes, where: str) -> np.ndarray:
    """Decode a single-channel image (8- or 16-bit, or float) to float64 (H, W), keeping its
    values (no rescaling: a 16-bit phase keeps its 0..65535 range).

    Raises:
        UserError: the bytes are not a decodable image, or it has colour channels.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "F"):
                raise UserError(f"{where}: mode {img.mode}: expected a grayscale image")
            return np.asarray(img, dtype=np.float64)
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
