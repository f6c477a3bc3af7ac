"""The processed-dataset contract and its loader (written by `medmtl.data.preprocess`).

Contract (docs/architecture.md, "Processed dataset"), in ``data/processed/<dataset>/``:

- ``manifest.parquet``: one row per case, row i <-> array index i, rows sorted by subset
  (train, val, test, all) then case id; columns `MANIFEST_COLUMNS`, plus float
  ``target_<name>`` columns when the release carries regression targets
  (`medmtl.data.targets`); parquet key-value metadata ``medmtl`` = json ``{"dataset",
  "class_names", "size"}``, plus ``channels`` (default 3) and ``targets_note`` (what the
  stored targets are) when they differ from an RGB release without targets. ``mask_file``
  joins several mask files of one case with ``;``.
- ``images.npy``: uint8 (N, S, S, C), bilinear (antialiased) resize of the RGB image (C = 3)
  or of each of the C co-registered phases of a dynamic study (`medmtl.data.dynamic`);
- ``masks.npy``: uint8 (N, S, S) in {0, 1}, nearest resize of the merged mask;
- ``native_masks.npz``: one bool array per case id at native resolution. Written member by
  member (the same format `numpy.savez_compressed` writes), so full-resolution masks never
  have to be held in memory at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medmtl.annotated_parquet import read_annotated
from medmtl.data import targets
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
_MAKE_HINT = "make it with `medmtl preprocess --dataset NAME --raw RAW_DIR --out DIR --size S`"


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
        images: read-only memmap uint8 (N, S, S, C).
        masks: read-only memmap uint8 (N, S, S), values {0, 1}.
        targets_note: What the regression targets are (`medmtl.data.targets`).
    """

    directory: Path
    dataset: str
    class_names: tuple[str, ...]
    size: int
    manifest: pd.DataFrame
    images: np.ndarray
    masks: np.ndarray
    targets_note: str = targets.GEOMETRY_NOTE
    _native: np.lib.npyio.NpzFile | None = field(default=None, repr=False)
    _geometry: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def channels(self) -> int:
        """C of the image arrays: 3 (RGB) or the number of phases."""
        return int(self.images.shape[-1])

    @property
    def target_names(self) -> tuple[str, ...]:
        """The regression targets: the stored ones, else `targets.GEOMETRY`."""
        return targets.stored_names(self.manifest.columns) or targets.GEOMETRY

    def targets(self, case_ids: Sequence[str]) -> np.ndarray:
        """(N, R) float64 regression targets of `case_ids` in `target_names` order: the
        manifest's stored columns, or the geometry of each native mask (computed once)."""
        stored = targets.stored_names(self.manifest.columns)
        if stored:
            frame = self.manifest.set_index("case_id")
            columns = [targets.STORED_PREFIX + name for name in stored]
            return frame.loc[list(case_ids), columns].to_numpy(np.float64)
        for case_id in case_ids:
            if case_id not in self._geometry:
                self._geometry[case_id] = targets.geometry_targets(self.native_mask(case_id))
        return np.stack([self._geometry[case_id] for case_id in case_ids])

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
    size, channels = int(metadata["size"]), int(metadata.get("channels", 3))
    images = np.load(directory / "images.npy", mmap_mode="r")
    masks = np.load(directory / "masks.npy", mmap_mode="r")
    n = len(manifest)
    for name, array, shape in (
        ("images.npy", images, (n, size, size, channels)),
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
        targets_note=metadata.get("targets_note", targets.GEOMETRY_NOTE),
    )
