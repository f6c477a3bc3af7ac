"""Turn a reader's `RawCase` records into the processed-dataset files, and load them back.

Contract (docs/architecture.md, "Processed dataset"), in ``data/processed/<dataset>/``:

- ``manifest.parquet``: one row per case, row i <-> array index i, rows sorted by subset
  (train, val, test, all) then case id; columns `MANIFEST_COLUMNS`; parquet key-value metadata
  ``medmtl`` = json ``{"dataset", "class_names", "size"}``. ``mask_file`` joins several mask
  files of one case with ``;``.
- ``images.npy``: uint8 (N, S, S, 3), bilinear (antialiased) resize of the RGB image;
- ``masks.npy``: uint8 (N, S, S) in {0, 1}, nearest resize of the merged mask;
- ``native_masks.npz``: one bool array per case id at native resolution. Written member by
  member (the same format `numpy.savez_compressed` writes), so full-resolution masks never
  have to be held in memory at once;
- ``dedup_report.csv``, for the `DEDUPLICATED_DATASETS` only: their duplicate images are
  found and removed before anything is written (`medmtl.data.dedup`: one case kept per group
  of duplicates, none when the group's labels conflict); one row per group found, with the
  case kept.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from medmtl.annotated_parquet import read_annotated, write_annotated
from medmtl.data import busi, dedup, isic2017, ph2, udiat
from medmtl.data.common import RawCase
from medmtl.errors import UserError
from medmtl.hashing import files_sha256

SUBSET_ORDER = ("train", "val", "test", "all")
MANIFEST_COLUMNS = {
    "case_id": "str",
    "subset": "str",
    "label": "int64",
    "label_name": "str",
    "height": "int64",
    "width": "int64",
    "image_file": "str",
    "mask_file": "str",
    "image_sha256": "str",
}
FILES = ("manifest.parquet", "images.npy", "masks.npy", "native_masks.npz")
DEDUP_REPORT = "dedup_report.csv"
_MAKE_HINT = "make it with `medmtl preprocess --dataset NAME --raw RAW_DIR --out DIR --size S`"

Reader = Callable[[Path], Iterator[RawCase]]
DATASET_READERS: dict[str, tuple[Reader, tuple[str, ...]]] = {
    "isic2017": (isic2017.read_isic2017, isic2017.CLASS_NAMES),
    "synthetic": (isic2017.read_isic2017, isic2017.CLASS_NAMES),  # written in ISIC layout
    "busi": (busi.read_busi, busi.CLASS_NAMES),
    "ph2": (ph2.read_ph2, ph2.CLASS_NAMES),
    "udiat_b": (udiat.read_udiat, udiat.CLASS_NAMES),
}
DEDUPLICATED_DATASETS = frozenset({"busi"})  # releases known to repeat images (busi.py)


def read_dataset(name: str, raw_dir: Path) -> tuple[Iterator[RawCase], tuple[str, ...]]:
    """Return the cases of dataset `name` found in `raw_dir`, and its class names in order.

    Raises:
        UserError: unknown dataset name (the message lists the known ones).
    """
    if name not in DATASET_READERS:
        raise UserError(f"unknown dataset {name!r}; known: {', '.join(DATASET_READERS)}")
    reader, class_names = DATASET_READERS[name]
    return reader(raw_dir), class_names


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
    """Fill images.npy, masks.npy and native_masks.npz; return the manifest rows."""
    n = len(cases)
    images = np.lib.format.open_memmap(folder / "images.npy", "w+", np.uint8, (n, size, size, 3))
    masks = np.lib.format.open_memmap(folder / "masks.npy", "w+", np.uint8, (n, size, size))
    rows = []
    with zipfile.ZipFile(folder / "native_masks.npz", "w", zipfile.ZIP_DEFLATED) as npz:
        for i, case in enumerate(tqdm(cases, desc="preprocess", unit="case", disable=None)):
            data = case.read_image_bytes()
            image = case.load_image(data)
            mask = case.load_mask()
            if mask.shape != image.shape[:2]:
                raise UserError(
                    f"{case.files.describe(case.mask_files[0])}: mask size {mask.shape[::-1]} "
                    f"differs from image size {image.shape[1::-1]} (width, height)"
                )
            images[i] = _resize(image, size, Image.Resampling.BILINEAR)
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
                }
            )
    images.flush()
    masks.flush()
    del images, masks  # close the memory maps before the folder is renamed
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).astype(MANIFEST_COLUMNS)


def _resize(array: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize((size, size), resample))


def _write_manifest(manifest: pd.DataFrame, metadata: dict, path: Path) -> None:
    import pyarrow as pa

    schema = pa.schema(
        [(c, pa.string() if t == "str" else pa.int64()) for c, t in MANIFEST_COLUMNS.items()]
    )
    write_annotated(path, manifest, metadata, schema)


def _replace_dir(new: Path, target: Path) -> None:
    """Rename `new` to `target`; an existing `target` is moved aside first, then deleted."""
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(directory: Path) -> tuple[pd.DataFrame, dict]:
    """Read ``manifest.parquet`` of a processed folder and its ``medmtl`` metadata.

    Raises:
        UserError: the manifest is missing, unreadable or lacks the metadata or columns.
    """
    path = directory / "manifest.parquet"
    manifest, metadata = read_annotated(path, "manifest", _MAKE_HINT)
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise UserError(f"{path}: missing columns {missing}; {_MAKE_HINT}")
    return manifest, metadata


@dataclass
class ProcessedData:
    """A processed dataset: manifest, memory-mapped arrays, lazily read native masks.

    Attributes:
        directory: the processed folder.
        dataset: dataset name from the manifest metadata.
        class_names: class names in label-index order.
        size: side S of the arrays.
        manifest: one row per case; row i <-> array index i.
        images: read-only memmap uint8 (N, S, S, 3).
        masks: read-only memmap uint8 (N, S, S), values {0, 1}.
    """

    directory: Path
    dataset: str
    class_names: tuple[str, ...]
    size: int
    manifest: pd.DataFrame
    images: np.ndarray
    masks: np.ndarray
    _native: np.lib.npyio.NpzFile | None = field(default=None, repr=False)

    def native_mask(self, case_id: str) -> np.ndarray:
        """Return the bool mask of `case_id` at native resolution (read on demand).

        Raises:
            UserError: no mask stored for `case_id`.
        """
        if self._native is None:
            self._native = np.load(self.directory / "native_masks.npz")
        if case_id not in self._native.files:
            raise UserError(f"{self.directory / 'native_masks.npz'}: no mask for {case_id}")
        return self._native[case_id]

    def select(self, case_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images, masks and labels of `case_ids`, in that order, as in-memory copies.

        Raises:
            UserError: an id is not in the manifest (the split belongs to other data).
        """
        row_of = dict(zip(self.manifest["case_id"], range(len(self.manifest)), strict=True))
        missing = [case_id for case_id in case_ids if case_id not in row_of]
        if missing:
            raise UserError(
                f"{self.directory}: {len(missing)} case id(s) of the split are not in the "
                f"manifest (first: {missing[0]}); the split file belongs to other data"
            )
        rows = np.array([row_of[case_id] for case_id in case_ids], dtype=np.int64)
        return self.images[rows], self.masks[rows], self.manifest["label"].to_numpy()[rows]

    def sha256(self) -> str:
        """One sha256 over the processed files (manifest, arrays, native masks)."""
        return files_sha256(self.directory / name for name in FILES)

    def close(self) -> None:
        """Close the native-mask archive if it was opened."""
        if self._native is not None:
            self._native.close()
            self._native = None


def load_processed(directory: Path) -> ProcessedData:
    """Open a processed-dataset folder written by `preprocess`.

    Raises:
        UserError: a file is missing (with the command that makes it) or the arrays do not
            match the manifest.
    """
    missing = [name for name in FILES if not (directory / name).exists()]
    if missing:
        raise UserError(f"{directory}: missing {', '.join(missing)}; {_MAKE_HINT}")
    manifest, metadata = read_manifest(directory)
    size = int(metadata["size"])
    images = np.load(directory / "images.npy", mmap_mode="r")
    masks = np.load(directory / "masks.npy", mmap_mode="r")
    n = len(manifest)
    for name, array, shape in (
        ("images.npy", images, (n, size, size, 3)),
        ("masks.npy", masks, (n, size, size)),
    ):
        if array.shape != shape or array.dtype != np.uint8:
            raise UserError(
                f"{directory / name}: {array.dtype} {array.shape}, expected uint8 {shape} "
                f"(manifest has {n} rows); {_MAKE_HINT}"
            )
    return ProcessedData(
        directory=directory,
        dataset=metadata["dataset"],
        class_names=tuple(metadata["class_names"]),
        size=size,
        manifest=manifest,
        images=images,
        masks=masks,
    )
