"""Train/val/test split files: made once from a manifest, never silently regenerated.

Contract (docs/architecture.md, "Split file"): json ``{"dataset", "policy", "seed",
"cases_sha256", "train", "val", "test"}`` with sorted case ids. `cases_sha256` fingerprints
the cases (id, subset, label, image bytes' sha256), not the manifest file, so re-preprocessing
at another size (demo 64 px -> paper 224 px) keeps the same split. Three policies:

- official: the manifest has train, val and test subsets: they are used as released;
- no official test (e.g. the offline ISIC mirror: training + validation only): the official
  validation part becomes the test set, and a label-stratified random `val_fraction` of the
  official training part becomes the validation set;
- no official split (one subset ``all``, e.g. BUSI): a label-stratified random
  `test_fraction` of all cases becomes the test set, then a label-stratified random
  ``val_fraction / (1 - test_fraction)`` of the rest (so about `val_fraction` of all cases)
  the validation set, and the rest is training (BTI-Net's 70/15/15 is
  ``test_fraction = val_fraction = 0.15``).

Random draws use numpy ``default_rng(seed)``. Per class ``round(fraction * n)`` cases are
drawn, at least one and at most ``n - 1`` when the class has two or more cases. When the
manifest has a ``group_id`` column (cases that must stay together, e.g. duplicates of one
image), whole groups are drawn: a group counts for its most common label, groups are taken
in random order until the class's share is reached, and a group never straddles two splits.

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
    test_fraction: float = 0.15,
) -> dict:
    """Make the split of a processed dataset's manifest.

    Args:
        manifest: rows with at least the `IDENTITY_COLUMNS`, optionally ``group_id``.
        dataset: dataset name recorded in the split.
        seed: seed of the stratified draws (recorded even when unused).
        val_fraction: share of each class moved to validation: of the official training part
            when there is no official test part, of all cases when there is no official
            split; in (0, 1).
        test_fraction: share of each class of all cases drawn as test when there is no
            official split; in (0, 1), with `val_fraction` + `test_fraction` < 1.

    Returns:
        the split dict in contract key order.

    Raises:
        UserError: duplicate case ids, an unsupported combination of subsets, fractions
            out of range, or (no official split) a split that would be empty.
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
        _check_fraction("val_fraction", val_fraction)
        training = manifest[manifest["subset"] == "train"]
        val = _stratified_draw(training, rng=np.random.default_rng(seed), fraction=val_fraction)
        train = sorted(set(ids["train"]) - set(val))
        test = ids["val"]
        policy = (
            f"No official test part, so test = official validation ({len(test)}); "
            f"val = label-stratified random {val_fraction:g} of official training "
            f"({len(val)} of {len(ids['train'])}, numpy default_rng seed {seed}"
            f"{_grouping(manifest)}); train = the rest of official training ({len(train)})."
        )
    elif subsets == {"all"}:
        train, val, test = _three_way(manifest, seed, val_fraction, test_fraction)
        policy = (
            f"No official split, so from all {len(manifest)} cases: test = label-stratified "
            f"random {test_fraction:g} of them ({len(test)}), then val = label-stratified "
            f"random {val_fraction:g}/{1 - test_fraction:g} of the rest ({len(val)}), train = "
            f"the rest ({len(train)}); numpy default_rng seed {seed}{_grouping(manifest)}."
        )
    else:
        raise UserError(
            f"manifest of {dataset} has subsets {sorted(subsets)}; a split needs "
            "train+val+test (official), train+val (validation becomes test) or all (no "
            "official split: drawn at random)"
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


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise UserError(f"{name} must be in (0, 1), got {value}")


def _grouping(manifest: pd.DataFrame) -> str:
    """The policy's words on groups: empty when the manifest has none."""
    if "group_id" not in manifest.columns:
        return ""
    return (
        f"; whole groups of the manifest's group_id ({manifest['group_id'].nunique()} groups) "
        "drawn together, so no group straddles two splits"
    )


def _three_way(
    manifest: pd.DataFrame, seed: int, val_fraction: float, test_fraction: float
) -> tuple[list[str], list[str], list[str]]:
    """Stratified (train, val, test) ids of a manifest without official parts."""
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise UserError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}"
        )
    rng = np.random.default_rng(seed)
    test = _stratified_draw(manifest, rng=rng, fraction=test_fraction)
    rest = manifest[~manifest["case_id"].isin(test)]
    val = _stratified_draw(rest, rng=rng, fraction=val_fraction / (1.0 - test_fraction))
    train = sorted(set(rest["case_id"]) - set(val))
    for name, ids in (("train", train), ("val", val), ("test", test)):
        if not ids:
            raise UserError(
                f"{name} would be empty: {len(manifest)} cases are too few for val_fraction "
                f"{val_fraction:g} and test_fraction {test_fraction:g} per class"
            )
    return train, val, test


def _stratified_draw(rows: pd.DataFrame, *, rng: np.random.Generator, fraction: float) -> list[str]:
    """Draw `fraction` of each label's cases, whole groups at a time (module docstring).

    Groups (``group_id``, else each case alone) are sorted before the random permutation, so
    the draw depends on the seed only, not on row order.
    """
    groups = rows["group_id"] if "group_id" in rows.columns else rows["case_id"]
    members = rows.groupby(groups.to_numpy())["case_id"].agg(sorted)
    group_label = rows.groupby(groups.to_numpy())["label"].agg(lambda s: s.mode().iloc[0])
    drawn: list[str] = []
    for label in sorted(group_label.unique()):
        group_ids = sorted(group_label.index[group_label == label])
        n_cases = sum(len(members[g]) for g in group_ids)
        target = math.floor(fraction * n_cases + 0.5)
        if n_cases >= 2:
            target = min(max(target, 1), n_cases - 1)
        limit = len(group_ids) - 1 if len(group_ids) >= 2 else len(group_ids)
        taken = 0
        for j in rng.permutation(len(group_ids))[:limit]:
            if taken >= target:
                break
            drawn.extend(members[group_ids[j]])
            taken += len(members[group_ids[j]])
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


def load_run_split(path: Path, split_sha256: str) -> dict:
    """Read the split file the runs were trained on, checking it is that file.

    Args:
        path: The split file.
        split_sha256: Its hash as the runs recorded it (prediction metadata `split_sha256`).

    Raises:
        UserError: the file is missing or malformed, or its sha256 differs.
    """
    from medmtl.hashing import file_sha256

    splits = load_splits(path)
    if file_sha256(path) != split_sha256:
        raise UserError(f"{path}: sha256 differs from the split_sha256 of the runs")
    return splits
