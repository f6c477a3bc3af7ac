"""Cell-level provenance of a generated table: `<table>.provenance.json` beside the `.tex`.

Every number a reader sees must lead, by one command (`medmtl audit <tex>`), to the runs,
data and code behind it (DESIGN.md, "Tracking and provenance"). For each cell (model x metric)
the file records the metric and its definition (faithful/clean), the value as rendered, the
dataset, eval set, split and processed-data hashes, every run averaged (seed, MLflow run id
and tracking URI, checkpoint path and sha256, prediction file path and sha256, git commit and
dirty flag, resolved-config hash, subset the checkpoint was selected on) and the statistical
test behind a significance mark (its stats row). Table-level: the stats and split files (path,
sha256), reference model, alpha, the command that re-derives every cell and the creation time.
Paths of files the table was built from are relative to the provenance file's folder, so
table, predictions and stats can move together; checkpoint paths are kept as recorded by
`medmtl evaluate` (relative to the directory commands run from).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medmtl import metrics
from medmtl.errors import UserError
from medmtl.hashing import file_sha256

if TYPE_CHECKING:
    import pandas as pd

    from medmtl.predictions import PredictionFile
    from medmtl.tables import Cell

SCHEMA_VERSION = 1


def provenance_path(tex: Path) -> Path:
    """`results/tables/table4.tex` -> `results/tables/table4.provenance.json`."""
    return tex.with_name(f"{tex.stem}.provenance.json")


def relative_to(path: Path, base: Path) -> str:
    """`path` relative to folder `base`, POSIX style."""
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def jsonable(value: Any) -> Any:
    """numpy scalars -> Python values, NaN -> None, so the file is strict JSON."""
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def run_record(f: PredictionFile, base: Path) -> dict[str, Any]:
    """Lineage of one averaged run, from its prediction file and metadata."""
    keys = ("run_id", "tracking_uri", "checkpoint_sha256", "git_commit", "git_dirty")
    keys += ("config_sha256", "subset", "selection_subset")
    return {
        "seed": f.seed,
        "prediction_file": relative_to(f.path, base),
        "prediction_sha256": f.sha256,
        "checkpoint_path": f.meta["checkpoint"],
        **{key: f.meta[key] for key in keys},
    }


def significance_test(stats: pd.DataFrame, model: str, metric: str | None) -> dict[str, Any] | None:
    """The stats row of `model` on `metric` (None when there is no such test)."""
    rows = stats[(stats["model"] == model) & (stats["metric"] == metric)]
    if rows.empty:
        return None
    return {key: jsonable(value) for key, value in rows.iloc[0].items()}


def build_provenance(
    tex: Path,
    files: list[PredictionFile],
    cells: list[Cell],
    stats: tuple[pd.DataFrame, Mapping[str, Any], Path],
    split: tuple[Mapping[str, Any], Path],
    mark_source: Mapping[str, str],
) -> dict[str, Any]:
    """The provenance document of one table.

    Args:
        tex: Path of the table's `.tex`.
        files: The prediction files the table was built from.
        cells: The rendered cells (`tables.derive_cells`).
        stats: (stats frame, its metadata, its path) as `stats.read_stats` returned them.
        split: (split dict, its path), the split file the runs were trained on.
        mark_source: Table metric -> tested metric whose test sets the cell's mark.
    """
    base = provenance_path(tex).parent
    frame, stats_meta, stats_path = stats
    splits, split_path = split
    meta = files[0].meta
    runs: dict[str, list[dict[str, Any]]] = {}
    for f in sorted(files, key=lambda f: (f.model, f.seed)):
        runs.setdefault(f.model, []).append(run_record(f, base))
    shared = {
        key: meta[key] for key in ("dataset", "eval_set", "subset", "split_sha256", "data_sha256")
    }
    return {
        "schema": SCHEMA_VERSION,
        "table": relative_to(tex, base),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rederive_command": f"medmtl audit {tex}",
        "profile": meta["profile"],
        **shared,
        "class_names": meta["class_names"],
        "models": list(dict.fromkeys(c.model for c in cells)),
        "reference": stats_meta["reference"],
        "alpha": stats_meta["alpha"],
        "stats": {
            "file": relative_to(stats_path, base),
            "sha256": file_sha256(stats_path),
            **{key: stats_meta[key] for key in ("n_boot", "seed", "zero_method")},
        },
        "split": {
            "file": relative_to(split_path, base),
            "sha256": file_sha256(split_path),
            "policy": splits["policy"],
        },
        "cells": [
            {
                "model": c.model,
                "metric": c.metric,
                "definition": metrics.metric_definition(c.metric),
                **shared,
                "value": {"mean": jsonable(c.mean), "sd": jsonable(c.sd), "n_seeds": c.n_seeds},
                "rendered": c.rendered,
                "runs": runs[c.model],
                "test": significance_test(frame, c.model, mark_source.get(c.metric)),
            }
            for c in cells
        ],
    }


def write_provenance(path: Path, document: Mapping[str, Any]) -> None:
    """Write the document as indented, key-sorted strict JSON."""
    path.write_text(json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_provenance(path: Path) -> dict[str, Any]:
    """Read a provenance file.

    Raises:
        UserError: it is missing, not JSON, or of another schema version.
    """
    if not path.is_file():
        raise UserError(f"{path}: provenance file not found (build the table with `medmtl table`)")
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from err
    if document.get("schema") != SCHEMA_VERSION:
        raise UserError(
            f"{path}: provenance schema {document.get('schema')!r}, expected {SCHEMA_VERSION}"
        )
    return document


def runs_by_model(document: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The runs behind each model's cells, in table row order."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for cell in document["cells"]:
        runs.setdefault(cell["model"], cell["runs"])
    return runs
