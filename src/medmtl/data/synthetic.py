"""Synthetic dermoscopy-like cases written in the official ISIC 2017 archive layout.

The `demo` profile's data: runs anywhere, needs no download, and goes through the very same
reader (`medmtl.data.isic2017`) and preprocessing as the real release. Three classes that a
small network can tell apart by shape, border and colour:

- nevus: round, regular, uniformly brown blob with a smooth border;
- melanoma: irregular, asymmetric, multi-coloured (black, dark brown, blue-grey, red) blob
  with a ragged border;
- seborrheic keratosis: oval, lighter tan "waxy" blob with a spotty interior.

Each image is a skin-toned background with low-frequency shading, pixel noise, a vignette
and sometimes hair-like dark curves (drawn over the lesion, outside the mask, as in real
images). Lesion size, position, rotation and elongation vary; the mask is exactly the painted
lesion region. Images are ``size`` px wide and ``size`` or ``3/4 size`` px high.

Class proportions follow ISIC 2017 training (nevus 0.68, melanoma 0.19, SK 0.13), with at
least one case of each class in every part. Everything derives from one
``numpy.random.Generator(seed)``, and the zips are written deterministically (sorted entries,
fixed timestamps and attributes), so a seed gives byte-identical files (for a given Pillow).
Ids start at ``ISIC_9000000``, outside the real archive's range.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from medmtl.data.isic2017 import CLASS_NAMES, PARTS, part_files
from medmtl.errors import UserError

PROPORTIONS = (0.68, 0.19, 0.13)  # in CLASS_NAMES order
MIN_SIZE = 32
_FIRST_ID = 9_000_000
_SUPERPIXEL_CASES = 2  # per part: enough to exercise the reader's skipping
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SKIN = (222.0, 178.0, 150.0)
_NEVUS_BROWN = (130.0, 82.0, 55.0)
_SK_TINT = np.asarray((1.0, 0.95, 0.82))  # SK: skin, darker and more yellow-brown
_MELANOMA_PALETTE = (
    (35.0, 25.0, 25.0),  # black
    (85.0, 50.0, 35.0),  # dark brown
    (105.0, 105.0, 135.0),  # blue-grey
    (165.0, 75.0, 70.0),  # red
    (130.0, 85.0, 55.0),  # brown
)
_HAIR = (45.0, 35.0, 30.0)


def write_synthetic(
    out_dir: Path, *, seed: int, n_train: int, n_val: int, n_test: int, size: int
) -> None:
    """Write the nine ISIC 2017 files (Training, Validation, Test_v2) of a synthetic dataset.

    Args:
        out_dir: destination folder (created if missing); each file is written atomically.
        seed: seed of the one random generator everything derives from.
        n_train: number of training cases (>= 3, one per class at least).
        n_val: number of validation cases (>= 3).
        n_test: number of test cases (>= 3).
        size: image width in px (>= 32); heights are ``size`` or ``3/4 size``.

    Raises:
        UserError: a count or the size is too small.
    """
    counts = dict(zip(PARTS, (n_train, n_val, n_test), strict=True))
    for part, n in counts.items():
        if n < len(CLASS_NAMES):
            raise UserError(f"{part} count {n} is too small: every part needs each class once")
    if size < MIN_SIZE:
        raise UserError(f"image size {size} is too small (minimum {MIN_SIZE} px)")
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    next_id = _FIRST_ID
    with tqdm(total=sum(counts.values()), desc="synthesize", unit="img", disable=None) as bar:
        for part, n in counts.items():
            labels = _class_sequence(n, rng)
            ids = [f"ISIC_{next_id + i:07d}" for i in range(n)]
            next_id += n
            _write_part(out_dir, part, ids, labels, rng, size, bar)


def _class_sequence(n: int, rng: np.random.Generator) -> np.ndarray:
    """Shuffled class indices with ISIC-like proportions and every class present."""
    raw = np.asarray(PROPORTIONS) * n
    counts = np.floor(raw).astype(int)
    by_remainder = np.argsort(-(raw - counts), kind="stable")
    counts[by_remainder[: n - counts.sum()]] += 1
    for k in range(len(counts)):
        if counts[k] == 0:
            counts[np.argmax(counts)] -= 1
            counts[k] = 1
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


def _write_part(
    out_dir: Path,
    part: str,
    ids: list[str],
    labels: np.ndarray,
    rng: np.random.Generator,
    size: int,
    bar: tqdm,
) -> None:
    data_name, mask_name, csv_name = part_files(part)
    data_stem, mask_stem = data_name.removesuffix(".zip"), mask_name.removesuffix(".zip")
    data_entries: dict[str, bytes] = {}
    mask_entries: dict[str, bytes] = {}
    label_lines = ["image_id,melanoma,seborrheic_keratosis"]
    metadata_lines = ["image_id,age_approximate,sex"]
    for i, (case_id, label) in enumerate(zip(ids, labels, strict=True)):
        image, mask = draw_case(rng, int(label), size)
        data_entries[f"{data_stem}/{case_id}.jpg"] = _encode(image, "JPEG", quality=95)
        mask_png = _encode(mask.astype(np.uint8) * 255, "PNG")
        mask_entries[f"{mask_stem}/{case_id}_segmentation.png"] = mask_png
        if i < _SUPERPIXEL_CASES:
            superpixels = _encode(_superpixels(mask.shape), "PNG")
            data_entries[f"{data_stem}/{case_id}_superpixels.png"] = superpixels
        melanoma, keratosis = float(label == 1), float(label == 2)
        label_lines.append(f"{case_id},{melanoma},{keratosis}")
        sex = ("female", "male")[int(rng.integers(2))]
        metadata_lines.append(f"{case_id},{5 * int(rng.integers(3, 17))},{sex}")
        bar.update()
    data_entries[f"{data_stem}/{data_stem}_metadata.csv"] = _csv_bytes(metadata_lines)
    _write_zip(out_dir / data_name, data_stem, data_entries)
    _write_zip(out_dir / mask_name, mask_stem, mask_entries)
    _write_atomic(out_dir / csv_name, _csv_bytes(label_lines))


def draw_case(rng: np.random.Generator, label: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw one dermoscopy-like image and its exact lesion mask.

    Args:
        rng: random generator (advanced by the call).
        label: class index into `CLASS_NAMES`.
        size: image width in px.

    Returns:
        (uint8 RGB image (H, W, 3), bool mask (H, W)).
    """
    h, w = (size, size) if rng.random() < 0.5 else (round(0.75 * size), size)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rho, boundary = _lesion_geometry(rng, label, xx, yy)
    mask = rho < boundary
    depth = np.clip(rho / boundary, 0.0, 1.0)  # 0 at the centre, 1 on the border

    skin = np.asarray(_SKIN) * rng.uniform(0.85, 1.08) + rng.uniform(-8, 8, 3)
    image = skin + 8.0 * _smooth_noise(rng, h, w, 3)[..., None]
    lesion = _LESION_PAINTERS[label](rng, depth, skin)
    image = np.where(mask[..., None], lesion, image)
    image += rng.normal(0.0, 3.0, image.shape)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    image *= (1.0 - 0.3 * np.clip(r2 - 0.6, 0.0, None))[..., None]
    _draw_hairs(rng, image)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def _lesion_geometry(
    rng: np.random.Generator, label: int, xx: np.ndarray, yy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Radius of every pixel from the lesion centre, and the border radius in its direction.

    The border is an ellipse (class-dependent elongation, random rotation) whose radius is
    modulated by cosine harmonics: few and weak for nevus/SK (smooth), strong low ones
    (asymmetry) plus high ones (ragged edge) for melanoma.
    """
    h, w = xx.shape
    cx, cy = w * rng.uniform(0.38, 0.62), h * rng.uniform(0.38, 0.62)
    radius = min(h, w) * rng.uniform(0.15, 0.27)
    angle = rng.uniform(0.0, np.pi)
    if label == 0:
        aspect = rng.uniform(1.0, 1.15)
        harmonics = [(k, rng.uniform(0.0, 0.04)) for k in (2, 3)]
    elif label == 1:
        aspect = rng.uniform(1.0, 1.4)
        ragged = rng.choice(np.arange(5, 14), size=4, replace=False)
        harmonics = [(k, rng.uniform(0.06, 0.16)) for k in (1, 2, 3)]
        harmonics += [(int(k), rng.uniform(0.03, 0.07)) for k in ragged]
    else:
        aspect = rng.uniform(1.4, 1.8)
        harmonics = [(k, rng.uniform(0.0, 0.05)) for k in (2, 3, 4)]
    dx, dy = xx - cx, yy - cy
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (dy * np.cos(angle) - dx * np.sin(angle)) * aspect
    rho = np.hypot(u, v)
    phi = np.arctan2(v, u)
    modulation = np.ones_like(phi)
    for k, amplitude in harmonics:
        modulation += amplitude * np.cos(k * phi + rng.uniform(0.0, 2 * np.pi))
    boundary = radius * np.sqrt(aspect) * np.clip(modulation, 0.35, None)
    return rho, boundary


def _paint_nevus(rng: np.random.Generator, depth: np.ndarray, skin: np.ndarray) -> np.ndarray:
    brown = np.asarray(_NEVUS_BROWN) * rng.uniform(0.8, 1.15) + rng.uniform(-6, 6, 3)
    return brown * (0.85 + 0.2 * depth)[..., None]


def _paint_melanoma(rng: np.random.Generator, depth: np.ndarray, skin: np.ndarray) -> np.ndarray:
    h, w = depth.shape
    chosen = rng.choice(len(_MELANOMA_PALETTE), size=3, replace=False)
    colours = np.asarray(_MELANOMA_PALETTE)[chosen]  # (3, 3)
    fields = np.stack([_smooth_noise(rng, h, w, 4) for _ in range(3)], axis=-1) * 3.0
    weights = np.exp(fields - fields.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return (weights @ colours) * (0.9 + 0.15 * depth)[..., None]


def _paint_keratosis(rng: np.random.Generator, depth: np.ndarray, skin: np.ndarray) -> np.ndarray:
    h, w = depth.shape
    tan = skin * _SK_TINT * rng.uniform(0.66, 0.8) + rng.uniform(-6, 6, 3)
    texture = _smooth_noise(rng, h, w, max(8, w // 4))
    lesion = tan + 10.0 * texture[..., None]
    lesion = np.where((texture > 1.4)[..., None], tan * 1.25 + 20.0, lesion)  # milia-like cysts
    return np.where((texture < -1.1)[..., None], tan * 0.65, lesion)  # comedo-like openings


_LESION_PAINTERS = (_paint_nevus, _paint_melanoma, _paint_keratosis)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Standard-normal noise on a (cells+1)^2 grid, bicubically upsampled to (h, w)."""
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC))


def _draw_hairs(rng: np.random.Generator, image: np.ndarray) -> None:
    """With probability 0.3, draw 1-3 thin dark quadratic curves across `image` in place."""
    if rng.random() >= 0.3:
        return
    h, w = image.shape[:2]
    t = np.linspace(0.0, 1.0, 3 * (h + w))[:, None]
    for _ in range(int(rng.integers(1, 4))):
        p0, pc, p1 = rng.uniform((0, 0), (w, h), size=(3, 2))
        points = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * pc + t**2 * p1
        x = np.clip(points[:, 0].astype(int), 0, w - 1)
        y = np.clip(points[:, 1].astype(int), 0, h - 1)
        image[y, x] = _HAIR


def _superpixels(shape: tuple[int, int]) -> np.ndarray:
    """An RGB superpixel-index image as in the official zips (index = R + 256 G), 8 px tiles."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    index = (yy // 8) * (shape[1] // 8 + 1) + xx // 8
    return np.stack([index % 256, index // 256, np.zeros_like(index)], axis=-1).astype(np.uint8)


def _encode(array: np.ndarray, fmt: str, **options: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


def _csv_bytes(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("ascii")


def _write_zip(path: Path, stem: str, entries: dict[str, bytes]) -> None:
    """Write a zip deterministically: a ``stem/`` folder entry then sorted members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        folder = _zip_info(f"{stem}/", 0o40755)
        folder.external_attr |= 0x10  # MS-DOS directory flag
        zf.writestr(folder, b"")
        for name in sorted(entries):
            info = _zip_info(name, 0o100644)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[name])
    _write_atomic(path, buffer.getvalue())


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.create_system = 3  # Unix, whatever the platform, for byte-identical output
    info.external_attr = mode << 16
    return info


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
