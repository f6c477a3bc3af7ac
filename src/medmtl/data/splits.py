"""Train/val/test split files: made once from a manifest, never silently regenerated.

Contract (docs/architecture.md, "Split file"): json ``{"dataset", "policy", "seed",
"cases_sha256", "train", "val", "test"}`` with sorted case ids. `cases_sha256` fingerprints
the cases (id, subset, label, image bytes' sha256), not the manifest file, so re-preprocessing
at another size (demo 64 px -> paper 224 px) keeps the same split. Two policies:

- official: the manifest has train, val and test subsets: they are used as released;
- no official test (e.g. the offline ISIC mirror: training + validation only): the official
  validation part becomes the test set, and a label-stratified random `val_fraction` of the
  official training part (numpy ``default_rng(seed)``) becomes the validation set. Per class
  ``round(val_fraction * n)`` cases go to validation, at least one and at most ``n - 1``
  when the class has two or more cases.

`write_splits` writes a file once; rerunning with the same result is a no-op and a different
result is an error, so a split only changes when someone deletes the file on purpose.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from medmtl.errors import UserError

SPLIT_KEYS = ("dataset", "policy", "seed", "cases_sha256", "train", "val", "test")
IDENTITY_COLUMNS = ("case_id", "subset", "label", "image_sha256")


def cases_sha256(manifest: pd.DataFrame) -> str:
    """sha256 of the cases' identity columns, one `id subset label sha` line per case (sorted)."""
    rows = manifest.loc[:, list(IDENTITY_COLUMNS)].astype(str).agg(" ".join, axis=1)
    return hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()


def make_splits(
    manifest: pd.DataFrame,
    *,
    dataset: str,
    seed: int,
    val_fraction: float,
) -> dict:
    """Make the split of a processed dataset's manifest.

    Args:
        manifest: rows with at least the `IDENTITY_COLUMNS`.
        dataset: dataset name recorded in the split.
        seed: seed of the stratified draw (recorded even when unused).
        val_fraction: share of each class of the official training part moved to validation
            when there is no official test part; in (0, 1).

    Returns:
        the split dict in contract key order.

    Raises:
        UserError: duplicate case ids, an unsupported combination of subsets, or a
            `val_fraction` outside (0, 1).
    """
    if manifest["case_id"].duplicated().any():
        raise UserError(f"manifest of {dataset}: case ids are not unique")
    subsets = set(manifest["subset"])
    ids = {s: sorted(manifest.loc[manifest["subset"] == s, "case_id"]) for s in subsets}
    if subsets == {"train", "val", "test"}:
        policy = (
            f"Official parts as released: train = official training ({len(ids['train'])}), "
            f"val = official validation ({len(ids['val'])}), "
            f"test = official test ({len(ids['test'])}); no resampling."
        )
        train, val, test = ids["train"], ids["val"], ids["test"]
    elif subsets == {"train", "val"}:
        if not 0.0 < val_fraction < 1.0:
            raise UserError(f"val_fraction must be in (0, 1), got {val_fraction}")
        training = manifest[manifest["subset"] == "train"]
        val = _stratified_draw(training, seed=seed, fraction=val_fraction)
        train = sorted(set(ids["train"]) - set(val))
        test = ids["val"]
        policy = (
            f"No official test part, so test = official validation ({len(test)}); "
            f"val = label-stratified random {val_fraction:g} of official training "
            f"({len(val)} of {len(ids['train'])}, numpy default_rng seed {seed}); "
            f"train = the rest of official training ({len(train)})."
        )
    else:
        raise UserError(
            f"manifest of {dataset} has subsets {sorted(subsets)}; a split needs "
            "train+val+test (official) or train+val (validation becomes test)"
        )
    return {
        "dataset": dataset,
        "policy": policy,
        "seed": seed,
        "cases_sha256": cases_sha256(manifest),
        "train": train,
        "val": val,
        "test": test,
    }


def _stratified_draw(rows: pd.DataFrame, *, seed: int, fraction: float) -> list[str]:
    """Draw `fraction` of each label's case ids (sorted first, so the draw is reproducible)."""
    rng = np.random.default_rng(seed)
    drawn: list[str] = []
    for label in sorted(rows["label"].unique()):
        ids = sorted(rows.loc[rows["label"] == label, "case_id"])
        n_draw = math.floor(fraction * len(ids) + 0.5)
        if len(ids) >= 2:
            n_draw = min(max(n_draw, 1), len(ids) - 1)
        drawn.extend(ids[j] for j in rng.permutation(len(ids))[:n_draw])
    return sorted(drawn)


def write_splits(splits: dict, path: Path) -> bool:
    """Write a split file once.

    Args:
        splits: dict from `make_splits`.
        path: destination json file.

    Returns:
        True if the file was written, False if an identical one already existed.

    Raises:
        UserError: the file exists with different content.
    """
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            existing = None
        if existing == splits:
            return False
        raise UserError(
            f"{path}: split file exists and differs; delete it deliberately to regenerate"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(splits, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return True


def load_splits(path: Path) -> dict:
    """Read a split file.

    Raises:
        UserError: the file is missing (with the command that makes it) or malformed.
    """
    if not path.exists():
        raise UserError(
            f"{path} is missing; make it with "
            "`medmtl splits --processed data/processed/<dataset> --out " + str(path) + "`"
        )
    try:
        splits = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise UserError(f"{path}: not valid json: {err}") from err
    missing = [k for k in SPLIT_KEYS if not isinstance(splits, dict) or k not in splits]
    if missing:
        raise UserError(f"{path}: missing keys {missing}")
    return splits
