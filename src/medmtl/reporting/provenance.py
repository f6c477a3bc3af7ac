"""Cell-level provenance of a generated table: `<table>.provenance.json` beside the `.tex`.

Every number a reader sees must lead, by one command (`medmtl audit <tex>`), to the runs,
data and code behind it (DESIGN.md, "Tracking and provenance"). For each cell (model x metric)
the file records the metric and its definition (faithful/clean), the value as rendered, the
dataset, eval set, split and processed-data hashes, every run averaged (seed, MLflow run id
and tracking URI, checkpoint path and sha256, prediction file path and sha256, git commit and
dirty flag, resolved-config hash, subset the checkpoint was selected on) and the statistical
test behind a significance mark (its stats row). Table-level: the stats and split files (path,
sha256), reference model, alpha, the layout (rows, columns, highlights: `tables.Layout`) and the
comparisons tested, the command that re-derives every cell and the creation time. Table 4 and
the ablation tables (Tables 8, 9) share this form.
Paths of files the table was built from are relative to the provenance file's folder, so
table, predictions and stats can move together; checkpoint paths are kept as recorded by
`medmtl evaluate` (relative to the directory commands run from).

The external-validation table (`build_external_provenance`, `"kind": "external"`) records the
same per cell, a cell being (eval set, column): `n`, `<metric>/baseline`, `<metric>/proposed`
(their model's runs) and `<metric>/p` (both models' runs and the test); table-level it adds
the status file of `medmtl external` and every configured set (available or why not, data
hash, label map, cases of classes the model cannot predict).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medmtl.errors import UserError
from medmtl.evaluation import metrics
from medmtl.hashing import file_sha256

if TYPE_CHECKING:
    import pandas as pd

    from medmtl.analysis.stats import Comparison
    from medmtl.evaluation.predictions import PredictionFile
    from medmtl.reporting.external_table import ExternalRow
    from medmtl.reporting.tables import Cell, Layout

SCHEMA_VERSION = 2  # 2: layout and comparisons of Table 4 and the ablation tables


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
    layout: Layout,
    comparisons: list[Comparison],
) -> dict[str, Any]:
    """The provenance document of one table.

    Args:
        tex: Path of the table's `.tex`.
        files: The prediction files the table was built from.
        cells: The rendered cells (`tables.derive_cells`).
        stats: (stats frame, its metadata, its path) as `stats_file.read_stats` returned them.
        split: (split dict, its path), the split file the runs were trained on.
        layout: The table's rows, columns and highlights.
        comparisons: The tests of the stats frame (`stats.compute_comparisons`).
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
        "layout": layout.to_json(),
        "comparisons": [[model, ref, list(tested)] for model, ref, tested in comparisons],
        "reference": stats_meta["reference"],
        "alpha": stats_meta["alpha"],
        "stats": _stats_record(stats_meta, stats_path, base),
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
                "value": _cell_value(c),
                "rendered": c.rendered,
                "runs": runs[c.model],
                "test": significance_test(frame, c.model, c.metric),
            }
            for c in cells
        ],
    }


def _stats_record(stats_meta: Mapping[str, Any], stats_path: Path, base: Path) -> dict[str, Any]:
    """The stats file of a table (path, sha256) and the parameters of its tests."""
    return {
        "file": relative_to(stats_path, base),
        "sha256": file_sha256(stats_path),
        **{key: stats_meta[key] for key in ("n_boot", "seed", "zero_method")},
    }


SET_KEYS = ("name", "dataset", "source", "available", "reason", "data_sha256", "n_cases")
SET_KEYS += ("label_map", "unmapped_labels")


def build_external_provenance(
    tex: Path,
    status: tuple[Mapping[str, Any], Path],
    eval_sets: Mapping[str, list[PredictionFile]],
    rows: Mapping[str, ExternalRow],
    stats: tuple[pd.DataFrame, Mapping[str, Any], Path],
) -> dict[str, Any]:
    """The provenance document of the external-validation table (module docstring).

    Args:
        tex: Path of the table's `.tex`.
        status: (status document, its path), as `medmtl external` wrote it.
        eval_sets: Set name -> its prediction files (`external_table.load_external_sets`).
        rows: The rendered rows of the available sets (`external_table.derive_rows`).
        stats: (stats frame, its metadata, its path) of the table's tests.
    """
    from medmtl.evaluation.predictions import group_by_model
    from medmtl.reporting.external_table import COLUMNS, METRICS, ROLES

    base = provenance_path(tex).parent
    document, status_path = status
    frame, stats_meta, stats_path = stats
    models = dict(zip(ROLES, (document["baseline"], document["proposed"]), strict=True))
    cells = []
    for name, row in rows.items():
        runs = {
            model: [run_record(f, base) for f in files]
            for model, files in group_by_model(eval_sets[name]).items()
        }
        rendered = dict(zip(COLUMNS, row.rendered(), strict=True))
        set_stats = frame[frame["eval_set"] == name]
        specs: list[tuple] = [("n", None, row.n_cases, [], None)]
        for metric in METRICS:
            test = significance_test(set_stats, models["baseline"], metric)
            for role, model in models.items():
                value = _cell_value(row.cells[f"{metric}/{role}"])
                specs.append((f"{metric}/{role}", model, value, runs[model], test))
            both = [*runs[models["baseline"]], *runs[models["proposed"]]]
            specs.append((f"{metric}/p", None, jsonable(row.p_holm[metric]), both, test))
        cells += [_external_cell(name, rendered, *spec) for spec in specs]
    files = [f for files in eval_sets.values() for f in files]
    return {
        "schema": SCHEMA_VERSION,
        "kind": "external",
        "table": relative_to(tex, base),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rederive_command": f"medmtl audit {tex}",
        "profile": files[0].meta["profile"] if files else None,
        "train_dataset": document["train_dataset"],
        "seeds": document["seeds"],
        "baseline": models["baseline"],
        "reference": models["proposed"],
        "alpha": stats_meta["alpha"],
        "stats": _stats_record(stats_meta, stats_path, base),
        "status": {"file": relative_to(status_path, base), "sha256": file_sha256(status_path)},
        "sets": [{key: entry.get(key) for key in SET_KEYS} for entry in document["sets"]],
        "cells": cells,
    }


def _cell_value(cell: Cell) -> dict[str, Any]:
    """Mean, sd and number of seeds of a rendered cell, strict-JSON ready."""
    return {"mean": jsonable(cell.mean), "sd": jsonable(cell.sd), "n_seeds": cell.n_seeds}


def _external_cell(
    eval_set: str,
    rendered: Mapping[str, str],
    column: str,
    model: str | None,
    value: Any,
    runs: list[dict[str, Any]],
    test: dict[str, Any] | None,
) -> dict[str, Any]:
    metric = column.split("/")[0] if "/" in column else None
    return {
        "eval_set": eval_set,
        "column": column,
        "model": model,
        "metric": metric,
        "definition": metrics.metric_definition(metric) if metric else None,
        "value": value,
        "rendered": rendered[column],
        "runs": runs,
        "test": test,
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
    """The runs behind each model's cells, in table row order (Table 4)."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for cell in document["cells"]:
        runs.setdefault(cell["model"], cell["runs"])
    return runs


def external_runs(document: Mapping[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The runs behind the external-validation table: eval set -> model -> runs."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for cell in document["cells"]:
        if cell["model"] is not None:
            runs.setdefault(cell["eval_set"], {}).setdefault(cell["model"], cell["runs"])
    return runs
