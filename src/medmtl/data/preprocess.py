"""Turn a reader's `RawCase` records into the processed-dataset files (the contract and its
loader: `medmtl.data.processed`).

Beside the contract's files, ``dedup_report.csv`` is written for the `DEDUPLICATED_DATASETS`
only: their duplicate images are found and removed before anything is written
(`medmtl.data.dedup`: one case kept per group of duplicates, none when the group's labels
conflict); one row per group found, with the case kept.

Everything is written into a temporary folder beside the output, then renamed into place
(an older output is moved aside and deleted only after the rename), so an output folder
holding these names is always a complete run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from medmtl.annotated_parquet import write_annotated
from medmtl.data import busi, dedup, dynamic, isic2017, ph2, udiat
from medmtl.data.classes import DATASET_CLASSES
from medmtl.data.common import RawCase
from medmtl.data.processed import MANIFEST_COLUMNS, SUBSET_ORDER
from medmtl.data.targets import STORED_PREFIX
from medmtl.errors import UserError

DEDUP_REPORT = "dedup_report.csv"

Reader = Callable[[Path], Iterator[RawCase]]
READERS: dict[str, Reader] = {
    "isic2017": isic2017.read_isic2017,
    "synthetic": isic2017.read_isic2017,  # written in the ISIC layout
    "busi": busi.read_busi,
    "ph2": ph2.read_ph2,
    "udiat_b": udiat.read_udiat,
    "dynamic": dynamic.read_dynamic,  # multi-phase studies, synthetic or real, one layout
}
DEDUPLICATED_DATASETS = frozenset({"busi"})  # releases known to repeat images (busi.py)


def read_dataset(name: str, raw_dir: Path) -> tuple[Iterator[RawCase], tuple[str, ...]]:
    """Return the cases of dataset `name` found in `raw_dir`, and its class names in order.

    Raises:
        UserError: unknown dataset name (the message lists the known ones).
    """
    if name not in READERS:
        raise UserError(f"unknown dataset {name!r}; known: {', '.join(READERS)}")
    return READERS[name](raw_dir), DATASET_CLASSES[name]


def preprocess(
    cases: Iterable[RawCase],
    out_dir: Path,
    *,
    dataset: str,
    class_names: Sequence[str],
    size: int,
) -> None:
    """Write the processed-dataset files of `cases` into `out_dir` (replacing an old one).

    Args:
        cases: records from a dataset reader (all are read before anything is written).
        out_dir: output folder.
        dataset: dataset name recorded in the manifest metadata; for the
            `DEDUPLICATED_DATASETS` duplicates are removed first and ``dedup_report.csv``
            written.
        class_names: class names in label-index order.
        size: side S of the square arrays.

    Raises:
        UserError: no cases, a duplicate id, an unknown subset or label, an undecodable
            file, or a mask whose size differs from its image's.
    """
    if size < 1:
        raise UserError(f"size must be a positive number of pixels, got {size}")
    ordered = _sorted_cases(cases, class_names)
    report = None
    if dataset in DEDUPLICATED_DATASETS:
        ordered, report = dedup.apply_policy(ordered, dedup.find_duplicates(ordered))
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        if report is not None:
            report.to_csv(tmp / DEDUP_REPORT, index=False)
        manifest = _write_arrays(ordered, tmp, class_names, size)
        metadata = {"dataset": dataset, "class_names": list(class_names), "size": size}
        if ordered[0].channels != 3:
            metadata["channels"] = ordered[0].channels
        if ordered[0].targets:
            metadata["targets_note"] = ordered[0].targets_note or (
                "the release's own targets: " + ", ".join(n for n, _ in ordered[0].targets)
            )
        _write_manifest(manifest, metadata, tmp / "manifest.parquet")
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _sorted_cases(cases: Iterable[RawCase], class_names: Sequence[str]) -> list[RawCase]:
    ordered = []
    seen: set[str] = set()
    for case in cases:
        where = case.files.describe(case.image_file)
        if case.subset not in SUBSET_ORDER:
            raise UserError(f"{where}: subset {case.subset!r} is not one of {SUBSET_ORDER}")
        if case.label_name not in class_names:
            raise UserError(f"{where}: label {case.label_name!r} is not one of {class_names}")
        if case.case_id in seen:
            raise UserError(f"{where}: case id {case.case_id} occurs more than once")
        seen.add(case.case_id)
        ordered.append(case)
    if not ordered:
        raise UserError("the dataset reader found no cases")
    return sorted(ordered, key=lambda c: (SUBSET_ORDER.index(c.subset), c.case_id))


def _write_arrays(
    cases: list[RawCase], folder: Path, class_names: Sequence[str], size: int
) -> pd.DataFrame:
    """Fill images.npy, masks.npy and native_masks.npz; return the manifest rows, with a
    `target_<name>` column per regression target the release carries."""
    n, channels = len(cases), cases[0].channels
    target_names = [name for name, _ in cases[0].targets]
    shape = (n, size, size, channels)
    images = np.lib.format.open_memmap(folder / "images.npy", "w+", np.uint8, shape)
    masks = np.lib.format.open_memmap(folder / "masks.npy", "w+", np.uint8, (n, size, size))
    rows = []
    with zipfile.ZipFile(folder / "native_masks.npz", "w", zipfile.ZIP_DEFLATED) as npz:
        for i, case in enumerate(tqdm(cases, desc="preprocess", unit="case", disable=None)):
            data = case.read_image_bytes()
            image = case.load_image(data)
            where = case.files.describe(case.image_file)
            if image.shape[2] != channels or [t for t, _ in case.targets] != target_names:
                raise UserError(
                    f"{where}: {image.shape[2]} channel(s) and targets "
                    f"{[t for t, _ in case.targets]}, but the first case has {channels} and "
                    f"{target_names}"
                )
            mask = case.load_mask()
            if mask.shape != image.shape[:2]:
                raise UserError(
                    f"{case.files.describe(case.mask_files[0])}: mask size {mask.shape[::-1]} "
                    f"differs from image size {image.shape[1::-1]} (width, height)"
                )
            images[i] = _resize_image(image, size)
            masks[i] = _resize(mask.astype(np.uint8), size, Image.Resampling.NEAREST)
            with npz.open(f"{case.case_id}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(mask, dtype=bool), allow_pickle=False)
            rows.append(
                {
                    "case_id": case.case_id,
                    "subset": case.subset,
                    "label": class_names.index(case.label_name),
                    "label_name": case.label_name,
                    "height": image.shape[0],
                    "width": image.shape[1],
                    "image_file": case.image_file,
                    "mask_file": ";".join(case.mask_files),
                    "image_sha256": hashlib.sha256(data).hexdigest(),
                    **{f"{STORED_PREFIX}{name}": value for name, value in case.targets},
                }
            )
    images.flush()
    masks.flush()
    del images, masks  # close the memory maps before the folder is renamed
    targets = {f"{STORED_PREFIX}{name}": "float64" for name in target_names}
    return pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, *targets]).astype(
        {**MANIFEST_COLUMNS, **targets}
    )


def _resize(array: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize((size, size), resample))


def _resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of an RGB image, or of each phase of a dynamic study (PIL has no mode
    for T channels)."""
    if image.shape[2] == 3:
        return _resize(image, size, Image.Resampling.BILINEAR)
    channels = [
        _resize(image[..., c], size, Image.Resampling.BILINEAR) for c in range(image.shape[2])
    ]
    return np.stack(channels, axis=-1)


def _write_manifest(manifest: pd.DataFrame, metadata: dict, path: Path) -> None:
    import pyarrow as pa

    types = {
        "str": pa.string(),
        "object": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
    }
    schema = pa.schema([(c, types[str(t)]) for c, t in manifest.dtypes.items()])
    write_annotated(path, manifest, metadata, schema)


def _replace_dir(new: Path, target: Path) -> None:
    """Rename `new` to `target`; an existing `target` is moved aside first, then deleted."""
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
