"""External validation: which trained models are tested on which external sets, and how.

Protocol (BI-RADS consistency paper, arXiv:2511.15968, abstract and "external validation":
models trained on one dataset are evaluated, without fine-tuning, on datasets from other
sites; BTI-Net, arXiv:2606.29102, evaluates the same way across benchmarks): every case of an
external set is predicted by the trained runs as they are, after the same preprocessing as the
training data (the reader of the set's official layout, then `medmtl.data.preprocess` at the
runs' input size). External sets are not split.

Config, params key `external` (a list; `workflow/experiments/` has examples), one entry per
external set::

    - name: udiat_b            # eval set: results/predictions/external/udiat_b/
      dataset: udiat_b         # reader of its official layout (medmtl.data.preprocess)
      source: data/raw/udiat_b # the extracted release; absent = "not available"
      label_map: {benign: benign, malignant: malignant}
      models: [resunet, resformer_sequential]   # optional; default: baseline and reference

`label_map` maps every class of the external set to a class of the training dataset, or to
null when the model cannot predict it: such cases keep label `UNMAPPED_LABEL`, stay
in the segmentation metrics, leave the classification metrics and tests, and are counted per
class in the prediction files, the status file and the table caption (never dropped silently).

Status file (`medmtl external` writes it last, `<predictions>/status.json`): the params it
ran with and one entry per configured set: available or the reason it is not, and for an
available set its processed folder, data hash, number of cases and unmapped counts.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medmtl.data.classes import DATASET_CLASSES
from medmtl.errors import UserError

# Label of a case whose true class the model cannot predict (an external set's class mapped to
# no training class).
UNMAPPED_LABEL = -1
REQUIRED_KEYS = ("name", "dataset", "source", "label_map")
ENTRY_KEYS = (*REQUIRED_KEYS, "models")
STATUS_FILE = "status.json"
STATUS_SCHEMA = 1
_NAME = re.compile(r"[a-z0-9_]+")


@dataclass(frozen=True)
class ExternalSet:
    """One validated `external` entry (module docstring)."""

    name: str
    dataset: str
    source: Path
    label_map: dict[str, str | None]
    models: tuple[str, ...]

    def unavailable_reason(self) -> str | None:
        """None when the source is on disk, else why the set cannot be evaluated."""
        return None if self.source.exists() else f"source {self.source} does not exist"


def parse_external(params: Mapping, where: str = "params.yaml") -> list[ExternalSet]:
    """Validate the `external` list against the params' dataset and models.

    Raises:
        UserError: naming `where` and the key: not a list, an unknown key or dataset, a
            duplicate or malformed name, a label map that misses, invents or mis-targets a
            class, or models outside `models` or without the baseline and reference.
    """
    entries = params["external"]
    if not isinstance(entries, list):
        raise UserError(f"{where}: external: give a list of external sets ([] for none)")
    sets: list[ExternalSet] = []
    for i, entry in enumerate(entries):
        ext = _parse_entry(entry, params, f"{where}: external[{i}]")
        if ext.name in {s.name for s in sets}:
            raise UserError(f"{where}: external[{i}].name: {ext.name!r} is used twice")
        sets.append(ext)
    return sets


def _parse_entry(entry: object, params: Mapping, key: str) -> ExternalSet:
    """One validated `external` entry; `key` names it in errors."""
    if not isinstance(entry, Mapping):
        raise UserError(f"{key}: expected a mapping with keys {', '.join(ENTRY_KEYS)}")
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    missing = [k for k in REQUIRED_KEYS if k not in entry]
    if unknown or missing:
        raise UserError(f"{key}: unknown key(s) {unknown}, missing key(s) {missing}")
    name, dataset = entry["name"], entry["dataset"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError(f"{key}.name: {name!r} must match [a-z0-9_]+")
    if dataset not in DATASET_CLASSES:
        raise UserError(f"{key}.dataset: {dataset!r} is not one of {', '.join(DATASET_CLASSES)}")
    label_map = _check_label_map(
        entry["label_map"],
        DATASET_CLASSES[dataset],
        DATASET_CLASSES[params["dataset"]],
        f"{key}.label_map",
    )
    table_models = [params["baseline_model"], params["reference_model"]]
    models = tuple(entry.get("models") or table_models)
    if not set(models) <= set(params["models"]) or not set(table_models) <= set(models):
        raise UserError(
            f"{key}.models: {list(models)} must be among models {params['models']} and "
            f"hold baseline_model and reference_model {table_models}"
        )
    return ExternalSet(name, dataset, Path(str(entry["source"])), label_map, models)


def _check_label_map(
    label_map: object, external: Sequence[str], train: Sequence[str], key: str
) -> dict[str, str | None]:
    """Every external class once, each to a training class or null (module docstring)."""
    if not isinstance(label_map, Mapping):
        raise UserError(f"{key}: give a mapping external class -> training class (or null)")
    missing = [c for c in external if c not in label_map]
    unknown = [c for c in label_map if c not in external]
    if missing or unknown:
        raise UserError(
            f"{key}: keys must be the external classes {list(external)}; missing {missing}, "
            f"unknown {unknown} (map a class the model cannot predict to null)"
        )
    wrong = {c: t for c, t in label_map.items() if t is not None and t not in train}
    if wrong:
        raise UserError(f"{key}: targets {wrong} are not training classes {list(train)} or null")
    return {c: label_map[c] for c in external}


def map_labels(
    label_names: Sequence[str], label_map: Mapping[str, str | None], class_names: Sequence[str]
) -> tuple[np.ndarray, dict[str, int]]:
    """Training-class index of every case, and the cases the model cannot predict.

    Args:
        label_names: The external class name of each case (manifest `label_name`).
        label_map: External class -> training class or None (validated by `parse_external`).
        class_names: The training classes, in the model's output order.

    Returns:
        (labels, unmapped): int64 labels, `UNMAPPED_LABEL` for a class mapped to None, and the
        number of such cases per external class (classes with no case left out).

    Raises:
        UserError: a case's class is not in the label map.
    """
    unknown = sorted(set(label_names) - set(label_map))
    if unknown:
        raise UserError(f"label map {dict(label_map)} has no entry for the class(es) {unknown}")
    index = {
        c: UNMAPPED_LABEL if t is None else list(class_names).index(t) for c, t in label_map.items()
    }
    labels = np.array([index[name] for name in label_names], dtype=np.int64)
    unmapped = Counter(name for name in label_names if label_map[name] is None)
    return labels, dict(sorted(unmapped.items()))


def write_status(path: Path, status: Mapping[str, Any]) -> None:
    """Write the status file atomically: a status file on disk means the stage finished."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"schema": STATUS_SCHEMA, **status}, indent=2) + "\n")
    tmp.replace(path)


def read_status(path: Path) -> dict[str, Any]:
    """Read a status file written by `medmtl external`.

    Raises:
        UserError: it is missing, not JSON, or of another schema.
    """
    if not path.is_file():
        raise UserError(f"{path}: missing; run `medmtl external` first")
    try:
        status = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from err
    if status.get("schema") != STATUS_SCHEMA:
        raise UserError(f"{path}: schema {status.get('schema')!r}, expected {STATUS_SCHEMA}")
    return status
