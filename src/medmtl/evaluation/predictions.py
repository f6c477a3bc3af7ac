"""Per-case prediction files: the one place that writes, reads and validates them.

Format (docs/architecture.md, "Prediction file"): `results/predictions/<eval_set>/<model>/
seed<k>.parquet`, one row per case with `case_id`, `label`, `prob_<class>` (softmax),
`pred_label`, and the columns of the run's other tasks (metadata `tasks`; absent: segmentation
and classification, the files of Table 4): segmentation `seg_tp/fp/fn` (model input size),
`native_tp/fp/fn` (native resolution) and the boundary metrics `nsd` (x100) and `hd95` (pixels)
at native resolution (`medmtl.evaluation.boundary`); regression `target_<name>` and
`pred_<name>` per target, in the targets' units, with metadata `regression` (the run's
`models.inputs.TargetScale` as json: names, and the training split's mean and sd, the unit of
the standardised errors) and `targets_note` (what the targets are). A task the run does not
have has no columns.
Parquet key-value metadata `medmtl` holds json with the contract keys `CONTRACT_METADATA`.

Stats, tables and the audit also need `PROVENANCE_METADATA`, beyond the architecture contract
(`medmtl evaluate` writes them): `subset` (the evaluated part, e.g. "test"), `selection_subset`
(the part the checkpoint was selected on, e.g. "val"), `nsd_tolerance` (of the `nsd` column,
native pixels), `checkpoint` (its path as `medmtl
evaluate` was given it, relative to the directory commands run from), `config_sha256` (of the
resolved run config), `profile` and `tracking_uri` (the MLflow store of `run_id`). Every
downstream number is computed from these files alone (DESIGN.md, "Data contracts"), so a
missing column or key is an error naming the file.

External sets (`medmtl external`, `results/predictions/external/<eval_set>/...`): `subset` is
"all" (every case of the set), `dataset` and `data_sha256` are the external set's, and the
metadata adds `train_dataset`, `train_data_sha256`, `label_map` (external class -> training
class or null) and `unmapped_labels` (external class -> number of its cases, labelled
`pipeline.external.UNMAPPED_LABEL` because the model cannot predict the class); a column
`source_label` holds each case's external class name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from medmtl.annotated_parquet import read_annotated, write_annotated
from medmtl.errors import UserError
from medmtl.hashing import file_sha256
from medmtl.pipeline.external import UNMAPPED_LABEL

COUNT_COLUMNS = ("seg_tp", "seg_fp", "seg_fn", "native_tp", "native_fp", "native_fn")
REQUIRED_COLUMNS = ("case_id", "label", "pred_label")
TASK_COLUMNS = {"seg": (*COUNT_COLUMNS, "nsd", "hd95"), "cls": ()}  # reg: per target
TASKS = ("seg", "cls", "reg")
DEFAULT_TASKS = ("seg", "cls")
CONTRACT_METADATA = (
    "model",
    "seed",
    "eval_set",
    "dataset",
    "class_names",
    "run_id",
    "checkpoint_sha256",
    "split_sha256",
    "data_sha256",
    "git_commit",
    "git_dirty",
)
PROVENANCE_METADATA = (
    "subset",
    "selection_subset",
    "checkpoint",
    "config_sha256",
    "profile",
    "tracking_uri",
    "nsd_tolerance",
)
# Keys that must agree across all files of one eval set (one table = one data version).
SHARED_METADATA = (
    "eval_set",
    "dataset",
    "class_names",
    "subset",
    "profile",
    "split_sha256",
    "data_sha256",
    "nsd_tolerance",
    "label_map",  # external sets only (None for the others)
)
_SEED_FILE = re.compile(r"seed(\d+)\.parquet")


@dataclass(frozen=True)
class PredictionFile:
    """One validated prediction file: where it is, its sha256, its rows and its metadata."""

    path: Path
    sha256: str
    frame: pd.DataFrame
    meta: dict[str, Any]

    @property
    def model(self) -> str:
        """The run's name: the registry name of its model, plus `-<ablation>` for an ablation
        run (`medmtl.pipeline.ablation.run_name`)."""
        return self.meta["model"]

    @property
    def seed(self) -> int:
        """Training seed of the run."""
        return self.meta["seed"]

    @property
    def tasks(self) -> tuple[str, ...]:
        """The run's tasks (`tasks_of`)."""
        return tasks_of(self.meta)


def tasks_of(meta: dict[str, Any]) -> tuple[str, ...]:
    """The tasks of a prediction file's run, in `TASKS` order (metadata `tasks`; files without
    it are Table 4's: segmentation and classification)."""
    tasks = meta.get("tasks", DEFAULT_TASKS)
    return tuple(t for t in TASKS if t in tasks)


def regression_columns(meta: dict[str, Any]) -> list[str]:
    """`target_<name>` and `pred_<name>` of each regression target the metadata names."""
    names = meta["regression"]["names"] if "reg" in tasks_of(meta) else []
    return [f"{kind}_{name}" for name in names for kind in ("target", "pred")]


def prob_columns(class_names: list[str]) -> list[str]:
    """Names of the softmax probability columns, in class-index order."""
    return [f"prob_{name}" for name in class_names]


def _validate(frame: pd.DataFrame, meta: dict[str, Any], source: str) -> None:
    """Raise `UserError` naming `source` when columns, metadata or values break the contract."""
    missing_keys = [k for k in (*CONTRACT_METADATA, *PROVENANCE_METADATA) if k not in meta]
    if missing_keys:
        raise UserError(f"{source}: metadata key(s) missing: {', '.join(missing_keys)}")
    if not isinstance(meta["seed"], int) or not isinstance(meta["git_dirty"], bool):
        raise UserError(f"{source}: metadata 'seed' must be an int and 'git_dirty' a bool")
    class_names = meta["class_names"]
    if not (
        isinstance(class_names, list)
        and class_names
        and all(isinstance(c, str) for c in class_names)
    ):
        raise UserError(f"{source}: metadata 'class_names' must be a non-empty list of names")
    tasks = meta.get("tasks", DEFAULT_TASKS)
    if not isinstance(tasks, list | tuple) or "cls" not in tasks or set(tasks) - set(TASKS):
        raise UserError(f"{source}: metadata 'tasks' {tasks!r}: 'cls' and any of seg, reg")
    if "reg" in tasks and not _is_scale(meta.get("regression")):
        raise UserError(f"{source}: metadata 'regression' must give names, mean and sd")
    columns = [*REQUIRED_COLUMNS, *prob_columns(class_names), *regression_columns(meta)]
    columns += [c for task in tasks for c in TASK_COLUMNS.get(task, ())]
    missing_cols = [c for c in columns if c not in frame]
    if missing_cols:
        raise UserError(f"{source}: column(s) missing: {', '.join(missing_cols)}")
    if frame["case_id"].duplicated().any():
        raise UserError(f"{source}: duplicate case_id values")
    labels = frame["label"].to_numpy()
    unmapped = labels == UNMAPPED_LABEL
    mapped = labels[~unmapped]
    if ((mapped < 0) | (mapped >= len(class_names))).any():
        raise UserError(
            f"{source}: 'label' outside 0..{len(class_names) - 1} (or {UNMAPPED_LABEL}: unmapped)"
        )
    if unmapped.sum() != sum(meta.get("unmapped_labels", {}).values()):
        raise UserError(
            f"{source}: {unmapped.sum()} case(s) labelled {UNMAPPED_LABEL} but metadata "
            f"'unmapped_labels' counts {meta.get('unmapped_labels', {})}"
        )
    if "seg" in tasks and (frame[list(COUNT_COLUMNS)].to_numpy() < 0).any():
        raise UserError(f"{source}: negative pixel counts")


def _is_scale(value: object) -> bool:
    """Whether `value` is a `TargetScale` as json: equally long names, mean, sd (sd > 0)."""
    if not isinstance(value, dict) or not all(k in value for k in ("names", "mean", "sd")):
        return False
    names, mean, sd = value["names"], value["mean"], value["sd"]
    return bool(names) and len(names) == len(mean) == len(sd) and all(v > 0 for v in sd)


def write_prediction_file(path: Path, frame: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Validate and write one prediction file with its `medmtl` json metadata.

    Args:
        path: Destination, `results/predictions/<eval_set>/<model>/seed<k>.parquet`.
        frame: One row per case with the contract columns.
        meta: The contract and provenance metadata keys (module docstring).
    """
    _validate(frame, meta, str(path))
    write_annotated(path, frame, meta)


def read_prediction_file(path: Path) -> PredictionFile:
    """Read, hash and validate one prediction file.

    Raises:
        UserError: the file is missing, is not parquet, or breaks the contract.
    """
    frame, meta = read_annotated(path, "prediction file")
    _validate(frame, meta, str(path))
    return PredictionFile(path=path, sha256=file_sha256(path), frame=frame, meta=meta)


def _check_same(files: list[PredictionFile], key: str) -> None:
    first = files[0]
    for other in files[1:]:
        if other.meta.get(key) != first.meta.get(key):
            raise UserError(
                f"{other.path}: metadata {key!r} is {other.meta.get(key)!r} but {first.path} has "
                f"{first.meta.get(key)!r}; one table needs one {key}"
            )


def check_consistent(files: list[PredictionFile]) -> None:
    """Check that the files form one eval set: shared metadata, cases and labels agree.

    Seeds of one model must cover the same cases (the seed average is per case); different
    models may cover different cases (paired tests use the cases both have). A case must
    carry the same label in every file.

    Raises:
        UserError: naming the first offending file.
    """
    if not files:
        raise UserError("no prediction files given")
    for key in SHARED_METADATA:
        _check_same(files, key)
    regressing = [f for f in files if "reg" in f.tasks]
    if regressing:  # one unit for the standardised errors of every model
        _check_same(regressing, "regression")
    seen: set[tuple[str, int]] = set()
    for f in files:
        if (f.model, f.seed) in seen:
            raise UserError(f"{f.path}: second file for model {f.model!r} seed {f.seed}")
        seen.add((f.model, f.seed))
    for model_files in group_by_model(files).values():
        cases, tasks = set(model_files[0].frame["case_id"]), model_files[0].tasks
        for f in model_files[1:]:
            if set(f.frame["case_id"]) != cases:
                raise UserError(f"{f.path}: cases differ from {model_files[0].path}")
            if f.tasks != tasks:
                raise UserError(f"{f.path}: tasks {f.tasks} differ from {model_files[0].path}")
    labels = pd.concat([f.frame[["case_id", "label"]] for f in files]).drop_duplicates()
    conflicting = labels["case_id"][labels["case_id"].duplicated()]
    if len(conflicting):
        raise UserError(f"case {conflicting.iloc[0]!r} has different labels in different files")


def group_by_model(files: list[PredictionFile]) -> dict[str, list[PredictionFile]]:
    """Files per model, each list sorted by seed."""
    groups: dict[str, list[PredictionFile]] = {}
    for f in sorted(files, key=lambda f: (f.model, f.seed)):
        groups.setdefault(f.model, []).append(f)
    return groups


def load_eval_set(
    directory: Path, models: Sequence[str] | None = None, seeds: Sequence[int] | None = None
) -> list[PredictionFile]:
    """Read `<directory>/<model>/seed<k>.parquet` files and check they form one eval set.

    With `models` and `seeds` (e.g. the params' lists), exactly their files are read, so
    files left over from an earlier configuration never enter a table; without, all of them.
    The directory name is the eval set; the model folder and seed file name must agree with
    the file's metadata, so a misplaced file cannot enter the wrong row of a table.

    Raises:
        UserError: no files, a listed file missing, a name that disagrees with the metadata,
            or inconsistent files.
    """
    if models is None or seeds is None:
        paths = sorted(p for p in directory.glob("*/seed*.parquet") if _SEED_FILE.fullmatch(p.name))
    else:
        paths = [directory / m / f"seed{s}.parquet" for m in models for s in seeds]
    if not paths:
        raise UserError(f"{directory}: no <model>/seed<k>.parquet prediction files")
    files = [read_prediction_file(p) for p in paths]
    for f in files:
        expected = (directory.name, f.path.parent.name, int(_SEED_FILE.fullmatch(f.path.name)[1]))
        if (f.meta["eval_set"], f.model, f.seed) != expected:
            raise UserError(
                f"{f.path}: metadata (eval_set, model, seed) = "
                f"{(f.meta['eval_set'], f.model, f.seed)} disagrees with its path {expected}"
            )
    check_consistent(files)
    return files
