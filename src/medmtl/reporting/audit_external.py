"""Audit of the external-validation table (provenance `"kind": "external"`), row by row: its
cells are keyed (eval set, column), so a finding's `model` and `metric` hold the eval set and the
column; p values are re-derived with the Holm correction over the whole table, and the row of a
set that was not available must still say so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from medmtl.analysis.stats import compute_stats_across
from medmtl.errors import UserError
from medmtl.evaluation.predictions import PredictionFile, check_consistent
from medmtl.reporting import external_table, table_tex, tables
from medmtl.reporting.audit_checks import (
    MISMATCH,
    MISSING,
    OK,
    SKIPPED,
    Finding,
    RunStatus,
    check_recorded_file,
    check_run,
    check_tested_means,
    load_run,
)
from medmtl.reporting.provenance import external_runs


def audit_external(
    document: dict[str, Any],
    rows: dict[str, list[str]],
    base: Path,
    run_status: RunStatus,
    tracking_uri: str | None,
) -> list[Finding]:
    """Audit of the external-validation table: files and runs, then every row's cells."""
    findings = [check_recorded_file(document, key, base) for key in ("stats", "status")]
    loaded = {}
    for eval_set, by_model in external_runs(document).items():
        files = []
        for model, runs in by_model.items():
            for run in runs:
                finding, loaded_file = load_run(run, base, model)
                checked = [finding, *check_run(run, model, run_status, tracking_uri)]
                findings += [
                    replace(f, subject=f"{eval_set}: {f.subject}", model=eval_set) for f in checked
                ]
                files += [loaded_file] if loaded_file else []
        if len(files) == sum(map(len, by_model.values())):
            loaded[eval_set] = files
    derived, complete, rederive_findings = _rederive_external(document, loaded)
    findings += rederive_findings
    for entry in document["sets"]:
        findings += _check_external_row(
            entry, rows.get(tables.escape_latex(entry["name"])), derived, complete
        )
    labels = {tables.escape_latex(entry["name"]) for entry in document["sets"]}
    findings += [
        Finding(MISMATCH, f"row {label}", "row not in the provenance")
        for label in sorted(set(rows) - labels)
    ]
    return findings


def _rederive_external(
    document: dict[str, Any], loaded: dict[str, list[PredictionFile]]
) -> tuple[dict[str, external_table.ExternalRow], bool, list[Finding]]:
    """Rows from the loaded files as `medmtl external-table` derives them; p values only when
    every available set's files loaded and are consistent (Holm needs the whole table)."""
    available = [entry["name"] for entry in document["sets"] if entry["available"]]
    complete = set(loaded) == set(available)
    findings = []
    for name, files in loaded.items():
        try:
            check_consistent(files)
        except UserError as err:
            findings.append(Finding(MISMATCH, f"{name} prediction files", str(err), model=name))
            complete = False
    stats = None
    if complete:
        params = document["stats"]
        eval_sets = {name: loaded[name] for name in available}
        stats = compute_stats_across(
            eval_sets,
            document["reference"],
            document["alpha"],
            params["n_boot"],
            params["seed"],
            external_table.METRICS,
        )
    else:
        message = "p values not re-derived: inputs missing or inconsistent"
        findings.append(Finding(SKIPPED, "table", message))
    baseline, proposed = document["baseline"], document["reference"]
    derived = external_table.derive_rows(loaded, stats, baseline, proposed)
    roles = {baseline: "baseline", proposed: "proposed"}
    for name, row in derived.items() if stats is not None else ():
        findings += [
            replace(f, subject=f"{name}: {f.subject}", model=name)
            for f in check_tested_means(
                stats[stats["eval_set"] == name],
                lambda model, metric, row=row: row.cells[f"{metric}/{roles[model]}"],
            )
        ]
    return derived, complete, findings


def _check_external_row(
    entry: dict[str, Any],
    found: list[str] | None,
    derived: dict[str, external_table.ExternalRow],
    complete: bool,
) -> list[Finding]:
    """Compare one row of the `.tex` with its re-derived cells (or its "not available")."""
    name = entry["name"]
    if found is None:
        return [Finding(MISSING, f"row {name}", "row not in the .tex", model=name)]
    if not entry["available"]:
        expected = external_table.MissingRow(name, entry["reason"]).rendered()
        status = OK if found == expected else MISMATCH
        message = f"not available: {entry['reason']}"
        return [Finding(status, f"row {name}", message, expected[0], found[0], model=name)]
    row = derived.get(name)
    if row is None:
        message = "cannot re-derive: prediction files missing"
        return [Finding(MISSING, f"row {name}", message, model=name)]
    if len(found) != len(external_table.COLUMNS):
        return [Finding(MISMATCH, f"row {name}", f"has {len(found)} cells", model=name)]
    findings = []
    for column, expected, cell in zip(external_table.COLUMNS, row.rendered(), found, strict=True):
        subject, shown = f"cell {name},{column}", table_tex.plain_cell(cell)
        if column.endswith("/p") and not complete:
            findings.append(
                Finding(SKIPPED, subject, "p value not re-derived", "", shown, name, column)
            )
        elif cell == expected:
            findings.append(
                Finding(OK, subject, "matches the re-derived value", "", shown, name, column)
            )
        else:
            message = (
                "differs from the value re-derived from the prediction files (hand-edited .tex?)"
            )
            findings.append(
                Finding(
                    MISMATCH, subject, message, table_tex.plain_cell(expected), shown, name, column
                )
            )
    return findings
